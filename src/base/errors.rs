//! Errors as one line: for messages that embed a cause (a journal note, a log line, a
//! report entry), where the command layer's multi-line error printing does not apply; and
//! input quoted in a message with its control characters escaped (no CR/LF or escape
//! sequence from a file reaches a terminal or a log as itself).

/// `s` with every control character written as an escape (`\n`, `\r`, `\t`, `\u{1b}`).
pub fn escape_control(s: &str) -> String {
    escape(s, false)
}

/// `s` with every control character but line breaks and tabs escaped: for whole messages
/// printed to a terminal or a log (a CR, a backspace or an escape sequence from input is
/// shown, not obeyed).
pub fn escape_terminal(s: &str) -> String {
    escape(s, true)
}

fn escape(s: &str, keep_lines: bool) -> String {
    let kept = |c: char| keep_lines && (c == '\n' || c == '\t');
    if !s.chars().any(|c| c.is_control() && !kept(c)) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            c if kept(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The error and its causes as one string (for messages embedded in reports).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
