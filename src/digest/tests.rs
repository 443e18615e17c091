//! Tests of the digest renderer on the fixed sample issue (fixed clock, sorted input).

use unicode_width::UnicodeWidthStr;

use super::fixture::{self, fixture_template_with, project};
use super::html::digest_links_visible_to;
use super::templates::TemplateError;
use super::*;

const URL: &str = "https://analyst.example.org/unsubscribe?t=AQJrMQ-sample&list=x";

fn render(config: &Config, issue: &Issue) -> (Digest, Rendered) {
    let d = Digest::prepare(config, issue, fixture::now()).expect("prepare");
    let s = fixture::subscriber("anna.petrova@example.org", "Anna Petrova");
    let r = d.render_for(&s, URL).expect("render");
    (d, r)
}

fn is_lone_url(line: &str) -> bool {
    let t = line.trim();
    let t = t
        .strip_prefix('[')
        .and_then(|r| r.split_once("] "))
        .map_or(t, |(_, u)| u);
    !t.contains(char::is_whitespace)
        && (t.starts_with("https://") || t.starts_with("http://") || t.starts_with("mailto:"))
}

fn with_article_text(issue: &mut Issue, i: usize, text: &str) {
    let a = &mut issue.articles[i];
    a.lead = text.to_string();
    a.paragraphs[0] = text.to_string();
    a.body_html = format!("<p>{}</p>{text}", crate::base::escape_html(text));
}

#[test]
fn snapshot_of_the_html_part() {
    let (_, r) = render(&fixture::config(), &fixture::issue(4));
    insta::assert_snapshot!("html_part", r.html);
}

#[test]
fn snapshot_of_the_text_part_and_subject() {
    let (_, r) = render(&fixture::config(), &fixture::issue(4));
    insta::assert_snapshot!("text_part", format!("Subject: {}\n\n{}", r.subject, r.text));
}

#[test]
fn rendering_is_reproducible() {
    let (_, a) = render(&fixture::config(), &fixture::issue(5));
    let mut shuffled = fixture::issue(5);
    shuffled.articles.reverse();
    let (_, b) = render(&fixture::config(), &shuffled);
    assert_eq!(a, b);
}

#[test]
fn script_in_an_article_is_inert_in_html_and_plain_in_text() {
    let evil = "Attack <script>alert(\"x\")</script> & <b>bold</b> claims";
    for body in ["lead", "full"] {
        let (_, config) = project(&[], &format!("[digest]\nbody = \"{body}\"\n"));
        let mut issue = fixture::issue(3);
        with_article_text(&mut issue, 0, evil);
        issue.articles[0].title = "Title with <script>x()</script>".into();
        let (_, r) = render(&config, &issue);
        let lower = r.html.to_ascii_lowercase();
        assert!(!lower.contains("<script"), "{body}: live script in HTML");
        assert!(
            r.html.contains("Attack &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt; claims"),
            "{body}: the text is not shown escaped"
        );
        assert!(r.text.contains(evil), "{body}: text part changed the data");
        assert!(r.text.contains("Title with <script>x()</script>"));
        for entity in ["&lt;", "&gt;", "&amp;", "&quot;", "&#39;", "&nbsp;"] {
            assert!(
                !r.text.contains(entity),
                "{body}: {entity} leaked into the text"
            );
        }
    }
}

#[test]
fn every_link_in_the_html_appears_in_the_text() {
    for body in ["lead", "full"] {
        let (_, config) = project(&[], &format!("[digest]\nbody = \"{body}\"\n"));
        let mut issue = fixture::issue(5);
        issue.articles[1].body_html.push_str(
            "<p>See <a href=\"https://example.org/report?id=7&amp;p=2\">the report</a>.</p>",
        );
        let (_, r) = render(&config, &issue);
        let (_, report) = html::canonicalize(&r.html, "");
        assert!(report.links.len() > 5, "{body}: {:?}", report.links);
        for link in &report.links {
            assert!(
                r.text.contains(&link.href),
                "{body}: {} is in the HTML but not in the text",
                link.href
            );
        }
        if body == "full" {
            assert!(r.text.contains("https://example.org/report?id=7&p=2"));
        }
    }
}

#[test]
fn unsubscribe_link_is_visible_in_html_and_present_in_text() {
    let (_, r) = render(&fixture::config(), &fixture::issue(3));
    assert!(digest_links_visible_to(&r.html, URL));
    assert!(
        r.text.trim_end().ends_with(URL),
        "the URL is not at the end"
    );
    assert!(r
        .html
        .contains("https://analyst.example.org/unsubscribe?t=AQJrMQ-sample&amp;list=x"));
}

#[test]
fn text_lines_fit_in_78_columns() {
    for body in ["lead", "full"] {
        let (_, config) = project(&[], &format!("[digest]\nbody = \"{body}\"\n"));
        let mut issue = fixture::issue(5);
        issue.articles[2].title = "An Exceptionally Long Title About Pipelines, Ports, Railways and the Politics of Transit Across the Caspian Region".into();
        let (_, r) = render(&config, &issue);
        for line in r.text.lines() {
            assert!(
                line.width() <= 78 || is_lone_url(line),
                "{body}: {} columns: {line:?}",
                line.width()
            );
        }
    }
}

#[test]
fn html_of_a_twelve_article_issue_is_under_100_kb() {
    for body in ["lead", "full"] {
        let (_, config) = project(&[], &format!("[digest]\nbody = \"{body}\"\n"));
        let issue = fixture::sample_issue();
        assert_eq!(issue.articles.len(), 12);
        let (_, r) = render(&config, &issue);
        assert!(r.html.len() < 100 * 1024, "{body}: {} bytes", r.html.len());
    }
}

#[test]
fn style_appears_only_in_head_and_is_small() {
    let custom = fixture_template_with(
        "<body class=\"body-root\">",
        "<body class=\"body-root\"><style data-css-inline=\"keep\">p { color: red; }</style>",
    );
    let (_dir, config) = project(&[("digest.html.tera", &custom)], "");
    let (d, r) = render(&config, &fixture::issue(2));
    let head_end = r.html.find("</head>").expect("a head");
    let styles: Vec<usize> = r.html.match_indices("<style").map(|(i, _)| i).collect();
    assert_eq!(styles.len(), 1, "one <style> block (media queries) is kept");
    assert!(styles.iter().all(|i| *i < head_end));
    let rep = d.html_report();
    assert!(rep.head_style_bytes > 100 && rep.head_style_bytes < 16 * 1024);
    assert!(rep
        .removed
        .iter()
        .any(|m| m.contains("<style> block outside <head>")));
    // and the layout CSS was inlined
    assert!(r.html.contains("style=\"font-family: Georgia, serif;"));
}

fn subscribers_for_equality() -> Vec<Subscriber> {
    let mut list = vec![
        fixture::subscriber("anna.petrova@example.org", "Anna Petrova"),
        fixture::subscriber("j.smith@example.com", ""),
        fixture::subscriber("Mehmet.Yilmaz@example.net", "Mehmet Yılmaz"),
        fixture::subscriber("zoe@example.org", "<Zoë & \"Bo\"> O'Neil"),
        fixture::subscriber("lena@example.de", "Müller, Lena"),
        fixture::subscriber("odd@example.org", "  padded\r\nname\t"),
    ];
    list[2]
        .attrs
        .insert("city".into(), "İstanbul & <Ankara>".into());
    list
}

#[test]
fn fast_path_equals_a_full_render_for_several_subscribers() {
    let custom = fixture_template_with(
        "<div class=\"masthead-meta\">",
        "<p>Dear {{ subscriber.name }} ({{ subscriber.attrs.city }}), <a href=\"mailto:{{ subscriber.email }}\">you</a></p><div class=\"masthead-meta\">",
    );
    let (_dir, config) = project(
        &[("digest.html.tera", &custom)],
        "[digest]\nsubject = \"Hi {{ subscriber.name }}: {{ issue.title }}\"\n",
    );
    let d = Digest::prepare(&config, &fixture::issue(3), fixture::now()).unwrap();
    assert_eq!(d.path(), RenderPath::Fast);
    assert_eq!(d.attrs_used(), ["city"]);
    for (i, s) in subscribers_for_equality().iter().enumerate() {
        let url = format!("https://analyst.example.org/unsubscribe?t=tok{i}&x=<{i}>");
        let fast = d.render_for(s, &url).unwrap();
        let full = d.render_full_for(s, &url).unwrap();
        assert_eq!(fast, full, "subscriber {}", s.email);
    }
    let zoe = d
        .render_for(&fixture::subscriber("zoe@example.org", "Zoë"), URL)
        .unwrap();
    assert!(zoe.subject.starts_with("Hi Zoë: Issue 5"));
    assert!(zoe.html.contains("Dear Zoë ()"));
    let anon = d
        .render_for(&fixture::subscriber("x@example.org", ""), URL)
        .unwrap();
    assert!(anon.subject.starts_with("Hi : Issue 5"), "{}", anon.subject);
}

#[test]
fn default_templates_use_the_fast_path_with_segments_for_email_and_unsubscribe_url() {
    let d = Digest::prepare(&fixture::config(), &fixture::issue(3), fixture::now()).unwrap();
    let [subject, html, text] = d.fast.as_ref().expect("fast path");
    assert!(subject
        .segments
        .iter()
        .all(|s| matches!(s, Segment::Lit(_))));
    for part in [html, text] {
        let fields: Vec<&Field> = part
            .segments
            .iter()
            .filter_map(|s| match s {
                Segment::Field(f) => Some(f),
                _ => None,
            })
            .collect();
        assert!(fields.contains(&&Field::Email));
        assert!(fields.contains(&&Field::UnsubscribeUrl));
    }
    assert_eq!(html.escape, Escape::Html);
    assert_eq!(text.escape, Escape::None);
}

#[test]
fn template_using_subscriber_name_wordcount_falls_back_to_full_rendering() {
    let custom = fixture_template_with(
        "<div class=\"masthead-meta\">",
        "<p>HELLO {{ subscriber.name | upper }} ({{ subscriber.name | wordcount }})</p><div class=\"masthead-meta\">",
    );
    let (_dir, config) = project(&[("digest.html.tera", &custom)], "");
    let d = Digest::prepare(&config, &fixture::issue(3), fixture::now()).unwrap();
    match d.path() {
        RenderPath::Full(reason) => {
            assert!(
                reason.contains("`subscriber.name` goes through the filter `wordcount`"),
                "{reason}"
            );
            assert!(reason.contains("digest.html.tera"), "{reason}");
        }
        RenderPath::Fast => panic!("expected the full-render fallback"),
    }
    assert!(d.fast.is_none());
    let r = d
        .render_for(&fixture::subscriber("zoe@example.org", "Zoë Bo"), URL)
        .unwrap();
    assert!(r.html.contains("HELLO ZOË BO (2)"));
}

#[test]
fn common_filters_on_subscriber_data_stay_on_the_fast_path_and_match_a_full_render() {
    let custom = fixture_template_with(
        "<div class=\"masthead-meta\">",
        "<p>HELLO {{ subscriber.name | upper }}, {{ subscriber.name | default(value=\"<reader>\") | title }}</p><div class=\"masthead-meta\">",
    );
    let (_dir, config) = project(&[("digest.html.tera", &custom)], "");
    let d = Digest::prepare(&config, &fixture::issue(3), fixture::now()).unwrap();
    assert_eq!(d.path(), RenderPath::Fast);
    for name in ["Zoë Bo", "", "o'neil & <co>"] {
        let s = fixture::subscriber("zoe@example.org", name);
        let quick = d.render_for(&s, URL).unwrap();
        assert_eq!(quick, d.render_full_for(&s, URL).unwrap(), "{name:?}");
    }
    let r = d
        .render_for(&fixture::subscriber("zoe@example.org", "Zoë Bo"), URL)
        .unwrap();
    assert!(r.html.contains("HELLO ZOË BO, Zoë Bo"), "{}", r.html);
    let r = d
        .render_for(&fixture::subscriber("zoe@example.org", ""), URL)
        .unwrap();
    assert!(r.html.contains("HELLO , &lt;Reader&gt;"), "{}", r.html);
}

#[test]
fn condition_on_an_attribute_value_falls_back_and_renders_per_subscriber() {
    let custom = fixture_template_with(
        "<div class=\"masthead-meta\">",
        "{% if subscriber.attrs.plan == \"pro\" %}<p>PRO READER</p>{% endif %}<div class=\"masthead-meta\">",
    );
    let (_dir, config) = project(&[("digest.html.tera", &custom)], "");
    let d = Digest::prepare(&config, &fixture::issue(2), fixture::now()).unwrap();
    assert!(matches!(d.path(), RenderPath::Full(r) if r.contains("condition")));
    let mut pro = fixture::subscriber("p@example.org", "P");
    pro.attrs.insert("plan".into(), "pro".into());
    let free = fixture::subscriber("f@example.org", "F");
    assert!(d.render_for(&pro, URL).unwrap().html.contains("PRO READER"));
    assert!(!d
        .render_for(&free, URL)
        .unwrap()
        .html
        .contains("PRO READER"));
}

#[test]
fn probes_catch_what_the_syntax_check_cannot() {
    // css-inline writes `class` values without escaping them, so a name printed there comes
    // out differently from a substituted one: the probe with `<`, `&` and `"` exposes it.
    let custom = fixture_template_with(
        "<div class=\"masthead-meta\">",
        "<p class=\"{{ subscriber.name }}\">x</p><div class=\"masthead-meta\">",
    );
    let (_dir, config) = project(&[("digest.html.tera", &custom)], "");
    let d = Digest::prepare(&config, &fixture::issue(2), fixture::now()).unwrap();
    assert!(
        matches!(d.path(), RenderPath::Full(r) if r.contains("substitution cannot reproduce")),
        "{:?}",
        d.path()
    );
}

fn prepare_err(files: &[(&str, &str)], extra: &str) -> String {
    let (_dir, config) = project(files, extra);
    let err = Digest::prepare(&config, &fixture::issue(3), fixture::now()).unwrap_err();
    assert!(err.downcast_ref::<TemplateError>().is_some(), "{err:#}");
    crate::base::error_chain(err.as_ref())
}

#[test]
fn syntax_error_names_the_file_and_line() {
    let msg = prepare_err(
        &[("digest.txt.tera", "line one\nline two\n{{ issue.title }\n")],
        "",
    );
    assert!(msg.starts_with("syntax error"), "{msg}");
    assert!(msg.contains("templates/digest.txt.tera line 3"), "{msg}");
}

#[test]
fn unknown_variable_names_file_line_suggestion_and_context() {
    let custom = "{{ issue.title }}\n{% for section in sections %}{% for article in section.articles %}\n{{ artcle.title }}\n{% endfor %}{% endfor %}\n{{ unsubscribe_url }}";
    let msg = prepare_err(&[("digest.txt.tera", custom)], "");
    assert!(
        msg.starts_with("unknown variable `artcle.title` in templates/digest.txt.tera line 3; did you mean `article.title`?"),
        "{msg}"
    );
    assert!(
        msg.contains("the context has: publication, issue, sections"),
        "{msg}"
    );
    // the whole chain: Tera's own messages follow
    assert!(msg.contains("Variable `artcle.title` not found"), "{msg}");
}

#[test]
fn unknown_filter_names_the_filter_and_line() {
    let msg = prepare_err(
        &[(
            "partials/footer.html.tera",
            "<tr><td>\n{{ publication.name | uppr }}\n<a href=\"{{ unsubscribe_url }}\">u</a></td></tr>",
        )],
        "",
    );
    assert!(
        msg.starts_with("unknown filter `uppr` in templates/partials/footer.html.tera line 2"),
        "{msg}"
    );
    assert!(msg.contains("date_format, excerpt, wrap"), "{msg}");
}

#[test]
fn broken_subject_template_names_the_config_key() {
    let msg = prepare_err(&[], "[digest]\nsubject = \"{{ issue.titel }}\"\n");
    assert!(msg.contains("unknown variable `issue.titel`"), "{msg}");
    assert!(msg.contains("`[digest] subject` of"), "{msg}");
    assert!(msg.contains("did you mean `issue.title`"), "{msg}");
}

#[test]
fn get_env_cannot_read_the_environment_from_subject_or_templates() {
    // PATH is set in every test environment; its value must never reach a rendering.
    let path = std::env::var("PATH").expect("PATH is set");
    for (files, extra) in [
        (
            vec![],
            "[digest]\nsubject = \"{{ get_env(name='PATH') }}\"\n",
        ),
        (
            vec![],
            "[digest]\npreheader = \"{{ get_env(name='PATH', default='x') }}\"\n",
        ),
        (
            vec![(
                "digest.txt.tera",
                "{{ get_env(name=\"PATH\") }}\n{{ unsubscribe_url }}",
            )],
            "",
        ),
    ] {
        let msg = prepare_err(&files, extra);
        assert!(msg.contains("`get_env` is not available"), "{msg}");
        assert!(
            msg.contains("`[digest] subject` of")
                || msg.contains("`[digest] preheader` of")
                || msg.contains("templates/digest.txt.tera line 1"),
            "{msg}"
        );
        assert!(!msg.contains(&path), "{msg}");
    }
}

#[test]
fn user_templates_override_builtins_and_may_add_partials() {
    let (_dir, config) = project(
        &[
            (
                "digest.txt.tera",
                "{% include \"partials/mine.txt.tera\" %}\n{{ unsubscribe_url }}",
            ),
            (
                "partials/mine.txt.tera",
                "MY TEXT {{ issue.date | date_format(fmt=\"%d.%m.%Y\") }}",
            ),
        ],
        "",
    );
    let (d, r) = render(&config, &fixture::issue(2));
    assert!(r.text.starts_with("MY TEXT 27.02.2002\n"), "{}", r.text);
    assert!(r.html.contains("In this issue"), "the HTML stays built in");
    let used = d.templates_in_use();
    assert!(used
        .iter()
        .any(|(n, d)| n == "partials/mine.txt.tera"
            && d.ends_with("templates/partials/mine.txt.tera")));
}

#[test]
fn sections_follow_the_configured_order_then_alphabetical_and_empty_ones_are_omitted() {
    let mut issue = fixture::issue(12);
    issue.articles[0].section = Some("Zeta Notes".into());
    issue.articles[1].section = Some("Book Reviews".into());
    issue.articles[2].section = None;
    // No Field Reports at all.
    issue
        .articles
        .retain(|a| a.section.as_deref() != Some("Field Reports"));
    let config = fixture::config();
    let names: Vec<Option<String>> = context::ordered_sections(&config, &issue)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        [
            Some("Analytical Articles".to_string()),
            Some("News Digest".to_string()),
            Some("Book Reviews".to_string()),
            Some("Zeta Notes".to_string()),
            None
        ]
    );
    let (_, r) = render(&config, &issue);
    assert!(!r.text.contains("FIELD REPORTS"));
    let pos = |s: &str| r.text.find(s).unwrap();
    assert!(pos("ANALYTICAL ARTICLES") < pos("NEWS DIGEST"));
    assert!(pos("NEWS DIGEST") < pos("BOOK REVIEWS"));
    assert!(pos("BOOK REVIEWS") < pos("ZETA NOTES"));
}

#[test]
fn issue_number_counts_from_the_configured_first_issue() {
    let config = fixture::config();
    let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    assert_eq!(context::issue_number(&config, d("2002-01-02")), Some(1));
    assert_eq!(context::issue_number(&config, d("2002-02-27")), Some(5));
    assert_eq!(context::issue_number(&config, d("2001-12-01")), None);
    let (_, no_number) = project(&[], "");
    let mut c = no_number;
    c.publication.first_issue_number = None;
    assert_eq!(context::issue_number(&c, d("2002-02-27")), None);
}

#[test]
fn full_body_puts_whole_articles_in_both_parts() {
    let (_, config) = project(&[], "[digest]\nbody = \"full\"\n");
    let issue = fixture::issue(1);
    let (_, r) = render(&config, &issue);
    let last = issue.articles[0].paragraphs.last().unwrap();
    assert!(r.html.contains(last.as_str()));
    let first_words: String = last
        .split_whitespace()
        .take(4)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(r.text.contains(&first_words));
    let (_, lead) = render(&fixture::config(), &issue);
    assert!(!lead.html.contains(last.as_str()));
}

#[test]
fn non_web_article_urls_are_replaced_by_the_publication_site() {
    let mut issue = fixture::issue(1);
    issue.articles[0].url = "javascript:alert(1)".into();
    let (_, r) = render(&fixture::config(), &issue);
    assert!(!r.html.contains("javascript"));
    assert!(!r.text.contains("javascript"));
}

#[test]
fn crlf_templates_give_lf_text() {
    let (_dir, config) = project(
        &[(
            "digest.txt.tera",
            "A\r\n\r\n\r\n\r\nB {{ issue.date }}\r\n{{ unsubscribe_url }}\r\n",
        )],
        "",
    );
    let (_, r) = render(&config, &fixture::issue(1));
    assert_eq!(r.text, format!("A\n\nB 2002-02-27\n{URL}\n"));
}

#[test]
fn personal_values_with_control_characters_take_the_full_path() {
    let d = Digest::prepare(&fixture::config(), &fixture::issue(2), fixture::now()).unwrap();
    let odd = fixture::subscriber("odd@example.org", "Line\r\nBreak");
    assert_eq!(
        d.render_for(&odd, URL).unwrap(),
        d.render_full_for(&odd, URL).unwrap()
    );
}

#[test]
fn a_russian_edition_has_lang_ru_russian_months_and_no_english_template_words() {
    let mut config = fixture::config();
    config.publication.language = "ru".into();
    let (_, r) = render(&config, &fixture::russian_issue());
    assert!(r.html.contains("<html lang=\"ru\""), "{}", &r.html[..200]);
    // The issue of 27 February 2002: the month in the genitive after the day.
    assert!(r.html.contains("27 февраля 2002"), "{}", r.html);
    assert!(r.text.contains("27 февраля 2002"));
    assert!(r.subject.contains("27 февраля 2002") || !r.subject.contains("February"));
    for english in crate::base::lang::ENGLISH_MONTHS {
        assert!(
            !r.html.contains(english) && !r.text.contains(english),
            "{english}"
        );
    }
    // The built-in templates' words: none of the English ones is left (the sample's
    // section names and the postal address are the editor's data, not template words).
    // What a reader sees: the body's text without tags (class names are not words).
    let body = r.html.split("</head>").nth(1).unwrap_or("");
    let tags = regex::Regex::new(r"<[^>]*>").unwrap();
    let mut visible = decode_entities_for_test(&tags.replace_all(body, " ")) + &r.text;
    for data in [
        "Analytical Articles",
        "Field Reports",
        "News Digest",
        "The Caucasus Analyst",
        "Example Institute, 1 Example Row, Washington, DC 20000",
    ] {
        visible = visible.replace(data, "").replace(&data.to_uppercase(), "");
    }
    for word in [
        "Issue",
        "In this issue",
        "By ",
        "min read",
        "Read",
        "Links",
        "LINKS",
        "receiving",
        "subscribed",
        "address",
        "Unsubscribe",
        "one click",
        "further issues",
    ] {
        assert!(
            !visible.contains(word),
            "English `{word}` in a Russian edition"
        );
    }
    // A [words] override wins.
    config.words.insert("read".into(), "Дальше".into());
    let (_, r) = render(&config, &fixture::russian_issue());
    assert!(r.html.contains("Дальше: Новый коридор"), "{}", r.html);
}

fn decode_entities_for_test(s: &str) -> String {
    super::html::decode_entities(s)
}

/// WCAG 2.x contrast ratio of two `#rrggbb` colours.
fn contrast(a: &str, b: &str) -> f64 {
    let lum = |hex: &str| {
        let c = |i: usize| {
            let v = f64::from(u8::from_str_radix(&hex[1 + 2 * i..3 + 2 * i], 16).unwrap()) / 255.0;
            if v <= 0.03928 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * c(0) + 0.7152 * c(1) + 0.0722 * c(2)
    };
    let (x, y) = (lum(a), lum(b));
    (x.max(y) + 0.05) / (x.min(y) + 0.05)
}

#[test]
fn the_html_part_holds_up_on_phones_in_outlook_and_in_dark_mode() {
    let mut config = fixture::config();
    config.digest.body = crate::config::BodyMode::Full;
    let mut issue = fixture::issue(3);
    let long_url = format!("https://analyst.example.org/{}", "a".repeat(200));
    issue.articles[0].body_html = format!(
        "<p>See {long_url} now.</p>\n<pre>{}</pre>\n<table><tr><td>{}</td></tr></table>\n",
        "x".repeat(300),
        "wide ".repeat(80)
    );
    let (_, r) = render(&config, &issue);
    let h = &r.html;
    // Nothing widens the layout past a 375 px screen: long words break, pre wraps,
    // tables and images are capped (checked structurally: no browser in the tests).
    let body_div = h.split("<div class=\"body\"").nth(1).unwrap();
    let style = body_div.split('>').next().unwrap();
    assert!(
        style.contains("overflow-wrap: anywhere") && style.contains("word-break: break-word"),
        "{style}"
    );
    assert!(
        h.contains("<pre style=\"max-width: 100%;") && h.contains("white-space: pre-wrap"),
        "{h}"
    );
    assert!(h.contains("<table style=\"max-width: 100%;"), "{h}");
    // Outlook desktop: the Office namespace and settings, padding on the button's cell.
    assert!(h.contains("xmlns:o=\"urn:schemas-microsoft-com:office:office\""));
    assert!(h.contains("<o:OfficeDocumentSettings>"));
    assert!(h.contains("class=\"button-cell\" bgcolor=\"#9b2915\" style=\"background-color: #9b2915;border-radius: 3px;padding: 9px 16px;"), "{h}");
    // Unique, descriptive link text: one "Read: TITLE" per article.
    let reads: Vec<&str> = h
        .split(">Read: ")
        .skip(1)
        .map(|s| s.split('<').next().unwrap())
        .collect();
    assert_eq!(reads.len(), 3);
    assert!(reads.iter().collect::<std::collections::HashSet<_>>().len() == 3);
    assert!(!h.contains("Read the article"));
    // Dark mode in both dialects, and Apple's data detectors reset.
    assert!(h.contains("@media (prefers-color-scheme: dark)") && h.contains("[data-ogsc] .body"));
    assert!(h.contains("a[x-apple-data-detectors]"));
    for (fg, bg) in [
        ("#e8e6e3", "#1e1e1e"),
        ("#b5b0a8", "#1e1e1e"),
        ("#ff9a85", "#1e1e1e"),
        ("#b5b0a8", "#181818"),
        ("#ffffff", "#9b2915"),
    ] {
        assert!(h.contains(fg) && (h.contains(bg) || bg == "#9b2915"));
        assert!(
            contrast(fg, bg) >= 4.5,
            "{fg} on {bg}: {:.2}",
            contrast(fg, bg)
        );
    }
    // The footer says what the link does: a page with one button, not "one click".
    assert!(h.contains("opens a page where one button takes you off the list"));
    assert!(!h.contains("with one click"));
}
