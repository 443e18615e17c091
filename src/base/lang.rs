//! The publication's language: its code and direction, month and weekday names, and the
//! words of the built-in templates and unsubscribe pages, for each language fortnight ships
//! (`en`, `ru`). A `[words]` table in the config overrides single words; this module only
//! holds the tables and the date formatting that uses them.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};

/// A language fortnight has built-in words for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    #[default]
    En,
    Ru,
}

/// The languages, by code, for error messages.
pub const LANGUAGE_CODES: &[&str] = &["en", "ru"];

const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const MONTHS_RU: [&str; 12] = [
    "январь",
    "февраль",
    "март",
    "апрель",
    "май",
    "июнь",
    "июль",
    "август",
    "сентябрь",
    "октябрь",
    "ноябрь",
    "декабрь",
];
/// The month after a day number: "27 февраля".
const MONTHS_RU_GENITIVE: [&str; 12] = [
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
];
const MONTHS_RU_SHORT: [&str; 12] = [
    "янв", "фев", "мар", "апр", "мая", "июн", "июл", "авг", "сен", "окт", "ноя", "дек",
];
const WEEKDAYS_RU: [&str; 7] = [
    "понедельник",
    "вторник",
    "среда",
    "четверг",
    "пятница",
    "суббота",
    "воскресенье",
];
const WEEKDAYS_RU_SHORT: [&str; 7] = ["пн", "вт", "ср", "чт", "пт", "сб", "вс"];

/// The built-in words: (key, English, Russian). `{publication}` and `{address}` are
/// placeholders the unsubscribe pages fill in.
const WORDS: &[(&str, &str, &str)] = &[
    ("issue", "Issue", "Выпуск"),
    ("issue_of", "Issue of", "Выпуск от"),
    ("in_this_issue", "In this issue", "В этом выпуске"),
    ("by", "By", "Автор:"),
    ("min_read", "min read", "мин чтения"),
    ("read", "Read", "Читать"),
    ("links", "Links", "Ссылки"),
    (
        "subscribed_because",
        "You are receiving this email because you subscribed to",
        "Вы получаете это письмо, потому что подписались на",
    ),
    ("with_address", "with the address", "с адресом"),
    ("unsubscribe", "Unsubscribe", "Отписаться"),
    (
        "unsubscribe_how",
        "opens a page where one button takes you off the list; no further issues will come.",
        "откроет страницу, где одна кнопка исключит вас из рассылки; новых выпусков не будет.",
    ),
    ("page_unsubscribe_title", "Unsubscribe", "Отписка"),
    (
        "page_confirm",
        "Stop sending {publication} to {address}?",
        "Больше не присылать «{publication}» на {address}?",
    ),
    (
        "page_mistake",
        "Opened this page by mistake? Close it: nothing has changed.",
        "Открыли эту страницу по ошибке? Просто закройте её: ничего не изменилось.",
    ),
    ("page_done_title", "You are unsubscribed", "Вы отписались"),
    (
        "page_done",
        "{address} is unsubscribed. You will get no more issues.",
        "Адрес {address} исключён из рассылки. Новых выпусков не будет.",
    ),
    (
        "page_already",
        "{address} was already off the list. You will get no more issues.",
        "Адреса {address} уже не было в рассылке. Новых выпусков не будет.",
    ),
    (
        "page_invalid_title",
        "This unsubscribe link is not valid",
        "Эта ссылка для отписки недействительна",
    ),
    (
        "page_invalid",
        "The link may have been cut short or changed on its way here, or the address it was \
         made for is no longer on the list. Open the unsubscribe link of a recent issue again \
         (the whole link), or reply to that issue and ask to be removed.",
        "Ссылка могла обрезаться или измениться по дороге, или адреса, для которого она \
         сделана, уже нет в рассылке. Откройте ссылку для отписки из недавнего выпуска ещё раз \
         (целиком) или ответьте на это письмо с просьбой исключить вас.",
    ),
    (
        "page_incomplete_title",
        "This unsubscribe link is incomplete",
        "Ссылка для отписки неполная",
    ),
    (
        "page_incomplete",
        "Open the unsubscribe link of a recent issue again (the whole link).",
        "Откройте ссылку для отписки из недавнего выпуска ещё раз (целиком).",
    ),
];

/// The words of one language, with the config's overrides applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words(BTreeMap<&'static str, String>);

impl Words {
    /// The word for `key` (a key of the built-in table; unknown keys give "").
    pub fn get(&self, key: &str) -> &str {
        self.0.get(key).map_or("", String::as_str)
    }

    /// Every (key, word), for the template context.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.0.iter().map(|(k, v)| (*k, v.as_str()))
    }
}

/// The keys of the word table (for error messages and docs).
pub fn word_keys() -> impl Iterator<Item = &'static str> {
    WORDS.iter().map(|(k, _, _)| *k)
}

impl Language {
    /// `en` or `ru` (case-insensitive, region ignored: `ru-RU`).
    pub fn parse(code: &str) -> Option<Language> {
        let primary = code.trim().split(['-', '_']).next().unwrap_or("");
        match primary.to_ascii_lowercase().as_str() {
            "en" => Some(Language::En),
            "ru" => Some(Language::Ru),
            _ => None,
        }
    }

    /// The BCP 47 code for `lang=`.
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Ru => "ru",
        }
    }

    /// The text direction for `dir=` (both shipped languages are left to right).
    pub fn dir(self) -> &'static str {
        "ltr"
    }

    /// The built-in words, with `overrides` (already checked against [`word_keys`]) on top.
    pub fn words(self, overrides: &BTreeMap<String, String>) -> Words {
        Words(
            WORDS
                .iter()
                .map(|&(key, en, ru)| {
                    let word = overrides.get(key).cloned().unwrap_or_else(|| {
                        match self {
                            Language::En => en,
                            Language::Ru => ru,
                        }
                        .to_string()
                    });
                    (key, word)
                })
                .collect(),
        )
    }

    /// Formats `date` with a strftime format, month and weekday names (`%B`, `%b`, `%A`,
    /// `%a`) in this language; Russian months after a day number take the genitive
    /// ("27 февраля 2002"). `Err` names a bad format.
    pub fn format_date(self, date: NaiveDate, fmt: &str) -> Result<String, String> {
        let fmt = match self {
            Language::En => fmt.to_string(),
            Language::Ru => localise_format(date, fmt),
        };
        let items = chrono::format::StrftimeItems::new(&fmt).parse().map_err(|_| {
            format!("`{fmt}` is not a valid date format (see strftime: %-d %B %Y gives 27 February 2002)")
        })?;
        Ok(date.format_with_items(items.iter()).to_string())
    }
}

/// `fmt` with the name specifiers replaced by Russian names (`%` in them cannot occur).
fn localise_format(date: NaiveDate, fmt: &str) -> String {
    let month = date.month0() as usize;
    let weekday = date.weekday().num_days_from_monday() as usize;
    let has_day = ["%d", "%-d", "%e", "%_d"].iter().any(|d| fmt.contains(d));
    let mut out = String::with_capacity(fmt.len() + 16);
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some('B') => {
                chars.next();
                out.push_str(if has_day {
                    MONTHS_RU_GENITIVE[month]
                } else {
                    MONTHS_RU[month]
                });
            }
            Some('b') | Some('h') => {
                chars.next();
                out.push_str(MONTHS_RU_SHORT[month]);
            }
            Some('A') => {
                chars.next();
                out.push_str(WEEKDAYS_RU[weekday]);
            }
            Some('a') => {
                chars.next();
                out.push_str(WEEKDAYS_RU_SHORT[weekday]);
            }
            Some('%') => {
                chars.next();
                out.push_str("%%");
            }
            _ => out.push('%'),
        }
    }
    out
}

/// English month names, for tests that check no English leaks into another language.
pub const ENGLISH_MONTHS: [&str; 12] = MONTHS_EN;

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn russian_dates_use_russian_month_names_in_the_right_case() {
        let ru = Language::Ru;
        assert_eq!(
            ru.format_date(d("2002-02-27"), "%-d %B %Y").unwrap(),
            "27 февраля 2002"
        );
        assert_eq!(
            ru.format_date(d("2002-02-27"), "%B %Y").unwrap(),
            "февраль 2002"
        );
        assert_eq!(
            ru.format_date(d("2002-02-27"), "%a, %-d %b; 100%%")
                .unwrap(),
            "ср, 27 фев; 100%"
        );
        assert_eq!(
            Language::En
                .format_date(d("2002-02-27"), "%-d %B %Y")
                .unwrap(),
            "27 February 2002"
        );
        assert!(ru.format_date(d("2002-02-27"), "%Q").is_err());
    }

    #[test]
    fn every_word_exists_in_both_languages_and_overrides_win() {
        let mut o = BTreeMap::new();
        o.insert("read".to_string(), "Lire".to_string());
        let w = Language::Ru.words(&o);
        assert_eq!(w.get("read"), "Lire");
        assert_eq!(w.get("unsubscribe"), "Отписаться");
        for (_, en, ru) in WORDS {
            assert!(!en.is_empty() && !ru.is_empty() && en != ru);
        }
        assert_eq!(Language::parse("ru-RU"), Some(Language::Ru));
        assert_eq!(Language::parse("de"), None);
    }
}
