//! Errors as one line: for messages that embed a cause (a journal note, a log line, a
//! report entry), where the command layer's multi-line error printing does not apply.

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
