//! Reading one value: timestamps in the shapes real exports use, money without floats,
//! integers, and text normalised to NFKC with collapsed whitespace. Pure functions.

use std::{str::FromStr, sync::LazyLock};

use chrono::{
    DateTime, NaiveDate, NaiveDateTime, TimeZone, Timelike,
    format::{Item, Parsed, StrftimeItems},
};
use chrono_tz::Tz;
use rust_decimal::{Decimal, RoundingStrategy, prelude::ToPrimitive};
use unicode_normalization::{IsNormalized, UnicodeNormalization};

/// Why a value could not be read; the variant is the quarantine reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("bad number: {0}")]
    BadNumber(String),
    #[error("unparseable date: {0}")]
    BadDate(String),
    #[error("bad value: {0}")]
    BadValue(String),
}

impl ValueError {
    /// The short reason counted in summaries and stored in quarantine.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::BadNumber(_) => "bad number",
            Self::BadDate(_) => "unparseable date",
            Self::BadValue(_) => "bad value",
        }
    }
}

/// Epoch seconds (UTC) from the shapes DESIGN.md lists: RFC 3339 (`2024-05-01T13:00:00Z`,
/// with any offset), naive `2024-05-01 13:00:00` / `2024-05-01T13:00:00` (with optional
/// fractions), dates `2024-05-01` / `2024/05/01` (midnight), `2024/05/01 13:00[:00]`, and epoch
/// seconds or milliseconds. Naive values are wall-clock time in `tz`; a time skipped by DST
/// is read as the instant after the gap, a repeated one as its first occurrence. `format`, a
/// chrono format string from a mapping, is tried first.
pub fn parse_timestamp(text: &str, format: Option<&DateFormat>, tz: Tz) -> Result<i64, ValueError> {
    let t = text.trim();
    let bad = || ValueError::BadDate(format!("`{t}`"));
    if t.is_empty() {
        return Err(ValueError::BadDate("empty".to_owned()));
    }
    if let Some(fmt) = format {
        let mut parsed = Parsed::new();
        if chrono::format::parse(&mut parsed, t, fmt.items.iter()).is_ok() {
            if let Ok(dt) = parsed.to_datetime() {
                return Ok(dt.timestamp());
            }
            if let Ok(naive) = parsed.to_naive_datetime_with_offset(0) {
                return local(naive, tz).ok_or_else(bad);
            }
            if let Ok(date) = parsed.to_naive_date() {
                return local(date.and_time(chrono::NaiveTime::MIN), tz).ok_or_else(bad);
            }
        }
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = t.parse().map_err(|_| bad())?;
        // 13 digits and more are milliseconds (from 2001-09-09 on); fewer are seconds.
        let secs = if t.len() >= 13 { n / 1000 } else { n };
        // Beyond the calendar (year 262142) no date can be shown or computed from it.
        return DateTime::from_timestamp(secs, 0)
            .map(|_| secs)
            .ok_or_else(|| ValueError::BadDate(format!("`{t}` is out of range")));
    }
    if let Some(naive) = fast_naive(t) {
        return local(naive, tz).ok_or_else(bad);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp());
    }
    for items in SHAPES.iter() {
        let mut parsed = Parsed::new();
        if chrono::format::parse(&mut parsed, t, items.iter()).is_err() {
            continue;
        }
        if let Ok(dt) = parsed.to_datetime() {
            return Ok(dt.timestamp());
        }
        if let Ok(naive) = parsed.to_naive_datetime_with_offset(0) {
            return local(naive, tz).ok_or_else(bad);
        }
        if let Ok(date) = parsed.to_naive_date() {
            return local(date.and_time(chrono::NaiveTime::MIN), tz).ok_or_else(bad);
        }
    }
    Err(bad())
}

/// A mapping's `date_format`, compiled once.
#[derive(Debug, Clone)]
pub struct DateFormat {
    pub text: String,
    items: Vec<Item<'static>>,
}

impl DateFormat {
    pub fn new(text: &str) -> Result<Self, String> {
        let items = StrftimeItems::new(text)
            .parse_to_owned()
            .map_err(|e| format!("bad date_format `{text}`: {e}"))?;
        Ok(Self {
            text: text.to_owned(),
            items,
        })
    }
}

/// The shapes tried after the fast paths, compiled once: naive with seconds (and fractions),
/// slashes, no seconds, offsets written without `T`, and dates.
static SHAPES: LazyLock<Vec<Vec<Item<'static>>>> = LazyLock::new(|| {
    [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y/%m/%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f %z",
        "%Y-%m-%d",
        "%Y/%m/%d",
    ]
    .iter()
    .filter_map(|f| StrftimeItems::new(f).parse_to_owned().ok())
    .collect()
});

/// `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS` exactly, the most common shape, read
/// without the general parser.
fn fast_naive(t: &str) -> Option<NaiveDateTime> {
    let b = t.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b' ' || b[10] == b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?.and_hms_opt(
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    )
}

fn local(naive: NaiveDateTime, tz: Tz) -> Option<i64> {
    if let Some(t) = tz.from_local_datetime(&naive).earliest() {
        return Some(t.timestamp());
    }
    // In a spring-forward gap: the first valid instant after it (gaps end on a minute).
    let mut probe = naive.with_second(0)?.with_nanosecond(0)?;
    for _ in 0..(26 * 60) {
        probe += chrono::Duration::minutes(1);
        if let Some(t) = tz.from_local_datetime(&probe).earliest() {
            return Some(t.timestamp());
        }
    }
    None
}

/// Integer cents from a decimal amount (`12.5`, `-3`, `1,234.50`, `€ 9.99`), multiplied by
/// `multiplier` (a currency conversion) and rounded half away from zero. No floats involved.
pub fn parse_money_cents(text: &str, multiplier: Decimal) -> Result<i64, ValueError> {
    let t = text.trim();
    let cleaned: String = t
        .chars()
        .filter(|c| !matches!(c, ',' | '_' | ' ' | '$' | '€' | '£' | '¥'))
        .collect();
    if cleaned.is_empty() {
        return Err(ValueError::BadNumber(format!("`{t}` is not an amount")));
    }
    let amount = Decimal::from_str(&cleaned)
        .or_else(|_| Decimal::from_scientific(&cleaned))
        .map_err(|_| ValueError::BadNumber(format!("`{t}` is not an amount")))?;
    let out_of_range = || ValueError::BadNumber(format!("`{t}` is out of range"));
    // Checked: a decimal's 96 bits overflow (and `*` panics) long before i64 cents do not.
    let cents = amount
        .checked_mul(multiplier)
        .and_then(|a| a.checked_mul(Decimal::ONE_HUNDRED))
        .ok_or_else(out_of_range)?
        .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
    cents.to_i64().ok_or_else(out_of_range)
}

/// A whole number; `3.0` is accepted, `3.5` is not.
pub fn parse_int(text: &str) -> Result<i64, ValueError> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i64>() {
        return Ok(n);
    }
    match Decimal::from_str(t) {
        Ok(d) if d.fract().is_zero() => d
            .to_i64()
            .ok_or_else(|| ValueError::BadNumber(format!("`{t}` is out of range"))),
        _ => Err(ValueError::BadNumber(format!(
            "`{t}` is not a whole number"
        ))),
    }
}

pub fn parse_float(text: &str) -> Result<f64, ValueError> {
    let t = text.trim();
    match t.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(f),
        _ => Err(ValueError::BadNumber(format!("`{t}` is not a number"))),
    }
}

/// Unicode NFKC (full-width letters and digits become ASCII, ligatures split), every run of
/// whitespace becomes one space, and the ends are trimmed.
pub fn normalize_text(text: &str) -> String {
    // Most text is already normal: one check and one copy, no decomposing and no pushing
    // a char at a time (this ran for every text cell of every ingested row).
    let spaced = !is_collapsed(text);
    if text.is_ascii() || unicode_normalization::is_nfkc_quick(text.chars()) == IsNormalized::Yes {
        return if spaced {
            collapse_spaces(text.chars(), text.len())
        } else {
            text.to_owned()
        };
    }
    collapse_spaces(text.nfkc(), text.len())
}

/// No leading, trailing or repeated whitespace, and no whitespace other than ' '.
fn is_collapsed(text: &str) -> bool {
    let mut previous_space = true;
    for c in text.chars() {
        let space = c.is_whitespace();
        if space && (previous_space || c != ' ') {
            return false;
        }
        previous_space = space;
    }
    !previous_space || text.is_empty()
}

fn collapse_spaces(chars: impl Iterator<Item = char>, capacity: usize) -> String {
    let mut out = String::with_capacity(capacity);
    let mut pending_space = false;
    for c in chars {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    out
}

/// Mappings write multipliers as TOML floats; they are read through their decimal text so
/// `0.85` stays exactly 0.85.
pub fn decimal_from_f64(value: f64) -> Option<Decimal> {
    Decimal::from_str(&value.to_string()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const UTC: Tz = chrono_tz::UTC;
    const LONDON: Tz = chrono_tz::Europe::London;

    fn ts(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    #[test]
    fn every_listed_timestamp_shape_reads() {
        let noon = ts("2024-05-01T13:00:00Z");
        for text in [
            "2024-05-01T13:00:00Z",
            "2024-05-01T21:00:00+08:00",
            "2024-05-01 13:00:00",
            "2024-05-01T13:00:00",
            "2024-05-01 13:00:00.000",
            "2024/05/01 13:00",
            "2024-05-01 13:00",
            " 1714568400 ",
            "1714568400000",
        ] {
            assert_eq!(parse_timestamp(text, None, UTC), Ok(noon), "{text}");
        }
        assert_eq!(
            parse_timestamp("2024/05/01", None, UTC),
            Ok(ts("2024-05-01T00:00:00Z"))
        );
        assert_eq!(
            parse_timestamp("2024-05-01", None, UTC),
            Ok(ts("2024-05-01T00:00:00Z"))
        );
    }

    #[test]
    fn naive_times_are_read_in_the_source_zone() {
        // London is on BST (UTC+1) in May and on GMT in December.
        assert_eq!(
            parse_timestamp("2024-05-01 13:00:00", None, LONDON),
            Ok(ts("2024-05-01T12:00:00Z"))
        );
        assert_eq!(
            parse_timestamp("2009-12-01 07:45:00", None, LONDON),
            Ok(ts("2009-12-01T07:45:00Z"))
        );
        // Explicit offsets ignore the zone.
        assert_eq!(
            parse_timestamp("2024-05-01T13:00:00Z", None, LONDON),
            Ok(ts("2024-05-01T13:00:00Z"))
        );
        // 01:30 on 2024-03-31 does not exist in London: read as 02:00 BST = 01:00 UTC.
        assert_eq!(
            parse_timestamp("2024-03-31 01:30:00", None, LONDON),
            Ok(ts("2024-03-31T01:00:00Z"))
        );
        // 01:30 on 2024-10-27 happens twice: the first (BST) is taken.
        assert_eq!(
            parse_timestamp("2024-10-27 01:30:00", None, LONDON),
            Ok(ts("2024-10-27T00:30:00Z"))
        );
    }

    #[test]
    fn a_mapping_format_is_tried_first() {
        let f = DateFormat::new("%d/%m/%Y %H:%M").unwrap();
        assert_eq!(
            parse_timestamp("01/05/2024 13:00", Some(&f), UTC),
            Ok(ts("2024-05-01T13:00:00Z"))
        );
        let f = DateFormat::new("%d.%m.%Y").unwrap();
        assert_eq!(
            parse_timestamp("01.05.2024", Some(&f), UTC),
            Ok(ts("2024-05-01T00:00:00Z"))
        );
        let f = DateFormat::new("%Y-%m-%d %H:%M:%S%z").unwrap();
        assert_eq!(
            parse_timestamp("2024-05-01 15:00:00+0200", Some(&f), UTC),
            Ok(ts("2024-05-01T13:00:00Z"))
        );
        assert!(DateFormat::new("%Q").is_err());
    }

    #[test]
    fn unreadable_dates_are_errors() {
        for text in [
            "",
            "yesterday",
            "31/31/2026",
            "2026-13-45 25:61:00",
            "2024-02-30",
        ] {
            let err = parse_timestamp(text, None, UTC).unwrap_err();
            assert_eq!(err.reason(), "unparseable date", "{text}");
        }
    }

    #[test]
    fn money_is_exact_cents() {
        let one = Decimal::ONE;
        assert_eq!(parse_money_cents("6.95", one), Ok(695));
        assert_eq!(parse_money_cents("12.5", one), Ok(1250));
        assert_eq!(parse_money_cents("1,234.50", one), Ok(123_450));
        assert_eq!(parse_money_cents("£ 3", one), Ok(300));
        assert_eq!(parse_money_cents("-2.50", one), Ok(-250));
        assert_eq!(
            parse_money_cents("0.005", one),
            Ok(1),
            "half away from zero"
        );
        // A multiplier converts currency: 0.85 × 10.00 = 8.50, computed exactly.
        let eur = decimal_from_f64(0.85).unwrap();
        assert_eq!(parse_money_cents("10.00", eur), Ok(850));
        assert_eq!(
            parse_money_cents("0.1", decimal_from_f64(3.0).unwrap()),
            Ok(30)
        );
        for bad in ["", "12,5x", "abc", "1.2.3"] {
            assert_eq!(
                parse_money_cents(bad, one).unwrap_err().reason(),
                "bad number",
                "{bad}"
            );
        }
    }

    #[test]
    fn integers_and_floats() {
        assert_eq!(parse_int(" 42 "), Ok(42));
        assert_eq!(parse_int("3.0"), Ok(3));
        assert!(parse_int("3.5").is_err());
        assert!(parse_int("two").is_err());
        assert_eq!(parse_float("2.5"), Ok(2.5));
        assert!(parse_float("NaN").is_err());
        assert!(parse_float("abc").is_err());
    }

    #[test]
    fn text_is_nfkc_with_collapsed_whitespace() {
        assert_eq!(
            normalize_text("  ＷＨＩＴＥ\tcherry \n lights "),
            "WHITE cherry lights"
        );
        assert_eq!(normalize_text("ﬁne　１２３"), "fine 123");
        assert_eq!(normalize_text("不锈钢 保温杯"), "不锈钢 保温杯");
        assert_eq!(normalize_text(" \t "), "");
        // Text already normal is copied as it is; any stray whitespace sends it the long way.
        assert_eq!(normalize_text(""), "");
        assert_eq!(normalize_text("plain words"), "plain words");
        assert_eq!(normalize_text("two  spaces"), "two spaces");
        assert_eq!(normalize_text("a\tb"), "a b");
        assert_eq!(normalize_text("trailing "), "trailing");
        assert_eq!(normalize_text("café 保温杯"), "café 保温杯");
        assert_eq!(normalize_text("café  ﬁne"), "café fine");
    }

    #[test]
    fn amounts_and_times_past_every_limit_say_so() {
        for text in [
            "79228162514264337593543950335",
            "7.9e27",
            "-7.9e27",
            "92233720368547758.08",
        ] {
            let e = parse_money_cents(text, Decimal::ONE).unwrap_err();
            assert!(e.to_string().contains("out of range"), "{text}: {e}");
        }
        assert_eq!(
            parse_money_cents("1", Decimal::MAX).unwrap_err().reason(),
            "bad number"
        );
        assert_eq!(
            parse_money_cents("92233720368547758.07", Decimal::ONE),
            Ok(i64::MAX)
        );
        // Milliseconds past the calendar's last second, +262142-12-31T23:59:59Z.
        for text in [
            "9223372036854775807",
            "99999999999999999",
            "8210266876800000",
        ] {
            let e = parse_timestamp(text, None, UTC).unwrap_err();
            assert!(e.to_string().contains("out of range"), "{text}: {e}");
        }
        assert_eq!(
            parse_timestamp("8210266876799999", None, UTC),
            Ok(8_210_266_876_799)
        );
    }
}
