//! Cron schedules in a time zone, with a stated daylight-saving policy.
//!
//! croner parses the expression (six fields with seconds, the usual five, or seven with a
//! year; day-of-month and day-of-week are OR-ed as in Vixie cron). Fire instants are computed
//! here, not by croner's own zone handling nor by tokio-cron-scheduler (which freezes a job's
//! UTC offset when the job is created, see DEPENDENCIES.md): croner walks the *local wall
//! clock* as if it had no DST, and each matching local time is mapped to instants by this
//! policy:
//!
//! - a local time that exists once fires once;
//! - a local time skipped by spring-forward fires once, at the first valid instant after the
//!   gap (several skipped times collapse into that one firing);
//! - a local time repeated by fall-back fires once (at its first occurrence), unless the
//!   schedule fires more than once in that clock hour: then it fires in both passes, so an
//!   every-15-minutes job keeps its real-time cadence.

use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::{Cron, parser::CronParser};

#[derive(Debug, Clone)]
pub struct Schedule {
    expr: String,
    tz: Tz,
    cron: Cron,
}

/// Offsets change by at most a few hours at a transition; scanning this far around one is
/// enough to order every candidate correctly.
const TRANSITION_WINDOW: Duration = Duration::hours(3);

impl Schedule {
    /// Parses `expr` (5, 6 or 7 fields, or a nickname such as `@daily`) in the IANA zone `tz`.
    pub fn parse(expr: &str, tz: &str) -> Result<Self, String> {
        let tz = Tz::from_str(tz).map_err(|_| {
            format!("unknown time zone `{tz}` (expected an IANA name such as `Europe/Berlin`)")
        })?;
        let fields = expr.split_whitespace().count();
        if expr.trim_start().starts_with('@') {
            let nick = expr.trim().to_lowercase();
            if !NICKNAMES.contains(&nick.as_str()) {
                return Err(format!(
                    "unknown cron nickname `{}` (known: {})",
                    expr.trim(),
                    NICKNAMES.join(", ")
                ));
            }
        } else if !(5..=7).contains(&fields) {
            return Err(format!(
                "cron expression `{expr}` has {fields} fields; expected 6 (sec min hour dom mon dow) or the usual 5 (min hour dom mon dow)"
            ));
        } else {
            check_fields(expr).map_err(|e| format!("invalid cron expression `{expr}`: {e}"))?;
        }
        let cron = CronParser::new()
            .parse(expr)
            .map_err(|e| format!("invalid cron expression `{expr}`: {e}"))?;
        // A pattern that never matches (e.g. 30 February) would make every lookup fail.
        cron.find_next_occurrence(&Utc::now(), false)
            .map_err(|e| format!("cron expression `{expr}` never fires: {e}"))?;
        Ok(Self {
            expr: expr.to_owned(),
            tz,
            cron,
        })
    }

    pub fn expr(&self) -> &str {
        &self.expr
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first fire instant strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local_after = self.local(after);
        let steady = self.offset_at(after - TRANSITION_WINDOW) == self.offset_at(after);
        if steady {
            // Fast path: no transition just behind us; if the next local match maps to one
            // instant with the same offset, nothing earlier can exist.
            let naive = self.next_local(local_after)?;
            if let LocalResult::Single(t) = self.tz.from_local_datetime(&naive) {
                let t = t.with_timezone(&Utc);
                if self.offset_at(t) == self.offset_at(after) && t > after {
                    return Some(t);
                }
            }
        }
        // Near a transition: collect candidates from a little before, keep the earliest.
        let mut cursor = local_after - TRANSITION_WINDOW;
        let mut best: Option<DateTime<Utc>> = None;
        loop {
            let naive = self.next_local(cursor)?;
            if let Some(b) = best
                && naive > self.local(b) + TRANSITION_WINDOW
            {
                return best;
            }
            for t in self.instants(naive) {
                if t > after && best.is_none_or(|b| t < b) {
                    best = Some(t);
                }
            }
            cursor = naive;
        }
    }

    /// Fire instants in `(from, to]`, at most `limit` of them (the earliest).
    pub fn ticks_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut cursor = from;
        while out.len() < limit {
            match self.next_after(cursor) {
                Some(t) if t <= to => {
                    out.push(t);
                    cursor = t;
                }
                _ => break,
            }
        }
        out
    }

    /// The latest fire instant at or before `at`, looking back at most `horizon`.
    pub fn last_at_or_before(&self, at: DateTime<Utc>, horizon: Duration) -> Option<DateTime<Utc>> {
        // Walk forward from the horizon; schedules with a tick every second over a long
        // horizon would be slow, so step the horizon out gradually.
        let mut window = Duration::minutes(1).min(horizon);
        loop {
            let mut last = None;
            let mut cursor = at - window;
            while let Some(t) = self.next_after(cursor) {
                if t > at {
                    break;
                }
                last = Some(t);
                cursor = t;
            }
            if last.is_some() || window >= horizon {
                return last;
            }
            window = (window * 8).min(horizon);
        }
    }

    fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        t.with_timezone(&self.tz).naive_local()
    }

    fn offset_at(&self, t: DateTime<Utc>) -> i32 {
        self.tz
            .offset_from_utc_datetime(&t.naive_utc())
            .fix()
            .local_minus_utc()
    }

    /// The next wall-clock time strictly after `naive` that matches, ignoring DST.
    fn next_local(&self, naive: NaiveDateTime) -> Option<NaiveDateTime> {
        self.cron
            .find_next_occurrence(&Utc.from_utc_datetime(&naive), false)
            .ok()
            .map(|t| t.naive_utc())
    }

    /// The instants a matching wall-clock time fires at, by the policy in the module docs.
    fn instants(&self, naive: NaiveDateTime) -> Vec<DateTime<Utc>> {
        match self.tz.from_local_datetime(&naive) {
            LocalResult::Single(t) => vec![t.with_timezone(&Utc)],
            LocalResult::Ambiguous(a, b) => {
                let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
                let (first, second) = if a <= b { (a, b) } else { (b, a) };
                if self.fires_more_than_once_in_hour_of(naive) {
                    vec![first, second]
                } else {
                    vec![first]
                }
            }
            LocalResult::None => self.first_instant_after_gap(naive).into_iter().collect(),
        }
    }

    fn fires_more_than_once_in_hour_of(&self, naive: NaiveDateTime) -> bool {
        let Some(hour_start) = naive.with_minute(0).and_then(|t| t.with_second(0)) else {
            return false;
        };
        let end = hour_start + Duration::hours(1);
        let before = hour_start - Duration::seconds(1);
        match self.next_local(before) {
            Some(first) if first < end => self.next_local(first).is_some_and(|second| second < end),
            _ => false,
        }
    }

    fn first_instant_after_gap(&self, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
        let mut probe = naive.with_second(0)?.with_nanosecond(0)?;
        // Gaps are at most a day long (Samoa skipped 30 December 2011).
        for _ in 0..(26 * 60) {
            probe += Duration::minutes(1);
            if let Some(t) = self.tz.from_local_datetime(&probe).earliest() {
                return Some(t.with_timezone(&Utc));
            }
        }
        None
    }
}

/// The nicknames croner knows.
const NICKNAMES: [&str; 6] = [
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@hourly",
];

/// One field of a cron expression: its name and the values it takes.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
}

const SECOND: Field = Field {
    name: "second",
    min: 0,
    max: 59,
};
const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
};
const DAY_OF_MONTH: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
};
const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    min: 0,
    max: 7,
};
const YEAR: Field = Field {
    name: "year",
    min: 1,
    max: 5000,
};

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Checks each field of a 5-, 6- or 7-field expression against what croner accepts, and says
/// which field is wrong and why (croner's own errors do not name the field): numbers within
/// the field's range, `*`, ranges `a-b`, lists `a,b`, steps `*/n`, `a/n`, `a-b/n` with n ≥ 1,
/// month and weekday names, `?`, `L` and `nW` in day-of-month, `L`, `nL` and `n#k` in
/// day-of-week.
fn check_fields(expr: &str) -> Result<(), String> {
    let parts: Vec<&str> = expr.split_whitespace().collect();
    let fields: &[Field] = match parts.len() {
        5 => &[MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK],
        6 => &[SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK],
        _ => &[SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK, YEAR],
    };
    for (text, field) in parts.iter().zip(fields) {
        check_field(text, field)?;
    }
    Ok(())
}

fn check_field(text: &str, field: &Field) -> Result<(), String> {
    let name = field.name;
    let mut upper = text.to_uppercase();
    if field.name == MONTH.name {
        for (i, m) in MONTH_NAMES.iter().enumerate() {
            upper = upper.replace(m, &(i + 1).to_string());
        }
    }
    if field.name == DAY_OF_WEEK.name {
        for (i, d) in DAY_NAMES.iter().enumerate() {
            upper = upper.replace(d, &i.to_string());
        }
        // croner's `+` prefix: day-of-month AND day-of-week.
        if let Some(rest) = upper.strip_prefix('+') {
            upper = rest.to_owned();
        }
    }
    let days = field.name == DAY_OF_MONTH.name || field.name == DAY_OF_WEEK.name;
    if upper == "*" || (days && upper == "?") {
        return Ok(());
    }
    let number = |t: &str| -> Result<u32, String> {
        let n: u32 = t.parse().map_err(|_| {
            format!(
                "{name} `{t}` in `{text}` is not a number (a field is a number, `*`, a range like 1-5, a list like 1,3 or a step like */15)"
            )
        })?;
        if n < field.min || n > field.max {
            let note = if field.name == DAY_OF_WEEK.name {
                " (0 and 7 are Sunday)"
            } else {
                ""
            };
            return Err(format!(
                "{name} {n} is outside {}–{}{note}",
                field.min, field.max
            ));
        }
        Ok(n)
    };
    let range = |t: &str| -> Result<(), String> {
        match t.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (number(a)?, number(b)?);
                if a > b {
                    return Err(format!(
                        "{name} range {a}-{b} runs backwards (write the smaller number first)"
                    ));
                }
                Ok(())
            }
            None => number(t).map(drop),
        }
    };
    for item in upper.split(',') {
        if item.is_empty() {
            return Err(format!("{name} field `{text}` has an empty list item"));
        }
        if let Some((base, step)) = item.split_once('/') {
            match step.parse::<u32>() {
                Ok(0) => {
                    return Err(format!(
                        "{name} step `{item}` is 0; a step must be at least 1"
                    ));
                }
                Ok(_) => {}
                Err(_) => {
                    return Err(format!(
                        "{name} step `{item}`: `{step}` is not a number (write e.g. */15)"
                    ));
                }
            }
            if base != "*" {
                range(base)?;
            }
        } else if days && item == "L" {
        } else if field.name == DAY_OF_MONTH.name
            && let Some(day) = item.strip_suffix('W')
        {
            number(day)?;
        } else if field.name == DAY_OF_WEEK.name
            && let Some(day) = item.strip_suffix('L')
        {
            number(day)?;
        } else if field.name == DAY_OF_WEEK.name
            && let Some((day, nth)) = item.split_once('#')
        {
            number(day)?;
            if !matches!(nth.parse::<u32>(), Ok(1..=5)) {
                return Err(format!(
                    "day-of-week `{item}`: the number after # must be 1–5 (which week of the month)"
                ));
            }
        } else {
            range(item)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn fires(expr: &str, tz: &str, from: &str, n: usize) -> Vec<String> {
        let s = Schedule::parse(expr, tz).unwrap();
        let mut t = utc(from);
        (0..n)
            .map(|_| {
                t = s.next_after(t).unwrap();
                t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
            })
            .collect()
    }

    #[test]
    fn six_fields_start_with_seconds_and_five_fields_are_accepted() {
        assert_eq!(
            fires("15 30 2 * * *", "UTC", "2026-01-01T00:00:00Z", 1),
            ["2026-01-01T02:30:15Z"]
        );
        assert_eq!(
            fires("30 2 * * *", "UTC", "2026-01-01T00:00:00Z", 1),
            ["2026-01-01T02:30:00Z"]
        );
    }

    fn cron_error(expr: &str) -> String {
        Schedule::parse(expr, "UTC").unwrap_err()
    }

    #[test]
    fn a_bad_field_is_named_with_its_range() {
        for (expr, reason) in [
            ("61 * * * *", "minute 61 is outside 0–59"),
            ("0 61 * * * *", "minute 61 is outside 0–59"),
            ("61 0 * * * *", "second 61 is outside 0–59"),
            ("0 25 * * *", "hour 25 is outside 0–23"),
            ("0 0 25 * * *", "hour 25 is outside 0–23"),
            ("0 0 32 * *", "day-of-month 32 is outside 1–31"),
            ("0 0 0 0 * *", "day-of-month 0 is outside 1–31"),
            ("0 0 1 13 *", "month 13 is outside 1–12"),
            (
                "0 0 * * 8",
                "day-of-week 8 is outside 0–7 (0 and 7 are Sunday)",
            ),
            ("0 0 0 * * 1-9", "day-of-week 9 is outside 0–7"),
            ("0 0 * * * * 6000", "year 6000 is outside 1–5000"),
            (
                "*/0 * * * *",
                "minute step `*/0` is 0; a step must be at least 1",
            ),
            ("0 */x * * * *", "minute step `*/X`: `X` is not a number"),
            ("0 abc * * * *", "minute `ABC` in `abc` is not a number"),
            ("0 0 5-1 * * *", "hour range 5-1 runs backwards"),
            (
                "0 0 0 1,,2 * *",
                "day-of-month field `1,,2` has an empty list item",
            ),
            (
                "0 0 * * MON#6",
                "day-of-week `1#6`: the number after # must be 1–5",
            ),
            ("0 0 10-70/5 * * *", "hour 70 is outside 0–23"),
        ] {
            let err = cron_error(expr);
            assert!(
                err.starts_with(&format!("invalid cron expression `{expr}`: {reason}")),
                "{expr}: {err}"
            );
        }
        assert!(cron_error("@fortnightly").contains("unknown cron nickname `@fortnightly`"));
    }

    #[test]
    fn the_field_check_accepts_what_croner_accepts() {
        for expr in [
            "* * * * *",
            "*/15 * * * *",
            "0 30 2 * * *",
            "0 0 12 13 * FRI",
            "0 0 9 * * MON-FRI",
            "0 0 0 1 JAN,jul *",
            "0 0 0 L * *",
            "0 0 0 15W * *",
            "0 0 0 * * 5L",
            "0 0 0 * * 1#2",
            "0 0 0 ? * 0,7",
            "0 0 0 1 * +MON",
            "0 5-55/10 8-18 * * *",
            "0 10/5 * * * *",
            "0 0 0 1 1 * 2030",
            "@daily",
            "@hourly",
        ] {
            assert!(
                Schedule::parse(expr, "UTC").is_ok(),
                "{expr}: {:?}",
                Schedule::parse(expr, "UTC").err()
            );
        }
    }

    #[test]
    fn bad_expressions_and_zones_are_explained() {
        assert!(
            Schedule::parse("* * *", "UTC")
                .unwrap_err()
                .contains("3 fields")
        );
        assert!(
            Schedule::parse("0 61 * * * *", "UTC")
                .unwrap_err()
                .contains("invalid cron")
        );
        assert!(
            Schedule::parse("0 0 * * * *", "Mars/Olympus")
                .unwrap_err()
                .contains("time zone")
        );
    }

    #[test]
    fn day_of_month_and_day_of_week_are_ored() {
        // Noon on the 13th, or on any Friday. 2026-03-01 is a Sunday.
        assert_eq!(
            fires("0 0 12 13 * FRI", "UTC", "2026-03-01T00:00:00Z", 3),
            [
                "2026-03-06T12:00:00Z",
                "2026-03-13T12:00:00Z",
                "2026-03-20T12:00:00Z"
            ]
        );
    }

    #[test]
    fn wall_clock_time_holds_across_spring_forward() {
        // 09:00 Berlin is 08:00 UTC in winter, 07:00 UTC from 2026-03-29.
        assert_eq!(
            fires("0 0 9 * * *", "Europe/Berlin", "2026-03-27T12:00:00Z", 3),
            [
                "2026-03-28T08:00:00Z",
                "2026-03-29T07:00:00Z",
                "2026-03-30T07:00:00Z"
            ]
        );
    }

    #[test]
    fn a_skipped_local_time_fires_once_at_the_next_valid_instant() {
        // 02:30 does not exist in Berlin on 2026-03-29 (02:00 CET -> 03:00 CEST = 01:00 UTC).
        assert_eq!(
            fires("0 30 2 * * *", "Europe/Berlin", "2026-03-27T12:00:00Z", 3),
            [
                "2026-03-28T01:30:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-30T00:30:00Z"
            ]
        );
        // Every 15 minutes: 02:00..02:45 are all skipped and collapse into one firing at 03:00.
        assert_eq!(
            fires("0 */15 * * * *", "Europe/Berlin", "2026-03-29T00:30:00Z", 4),
            [
                "2026-03-29T00:45:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-29T01:15:00Z",
                "2026-03-29T01:30:00Z"
            ]
        );
    }

    #[test]
    fn a_repeated_local_time_fires_once_for_daily_and_hourly_schedules() {
        // Berlin 2026-10-25: 03:00 CEST -> 02:00 CET; 02:30 happens at 00:30Z and 01:30Z.
        assert_eq!(
            fires("0 30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
        );
        // Hourly at :00: 02:00 fires once (00:00Z); the next is 03:00 CET = 02:00Z.
        assert_eq!(
            fires("0 0 * * * *", "Europe/Berlin", "2026-10-24T22:30:00Z", 3),
            [
                "2026-10-24T23:00:00Z",
                "2026-10-25T00:00:00Z",
                "2026-10-25T02:00:00Z"
            ]
        );
    }

    #[test]
    fn a_repeated_hour_fires_twice_for_schedules_more_frequent_than_hourly() {
        assert_eq!(
            fires("0 */30 * * * *", "Europe/Berlin", "2026-10-24T23:45:00Z", 5),
            [
                "2026-10-25T00:00:00Z",
                "2026-10-25T00:30:00Z",
                "2026-10-25T01:00:00Z",
                "2026-10-25T01:30:00Z",
                "2026-10-25T02:00:00Z"
            ]
        );
    }

    #[test]
    fn next_after_is_strict_and_ticks_between_is_half_open() {
        let s = Schedule::parse("0 0 * * * *", "UTC").unwrap();
        let t = utc("2026-01-01T05:00:00Z");
        assert_eq!(s.next_after(t), Some(utc("2026-01-01T06:00:00Z")));
        let ticks = s.ticks_between(t, utc("2026-01-01T08:00:00Z"), 100);
        assert_eq!(ticks.len(), 3);
        assert_eq!(s.ticks_between(t, utc("2026-01-01T08:00:00Z"), 2).len(), 2);
        assert_eq!(
            s.last_at_or_before(utc("2026-01-01T08:30:00Z"), Duration::days(1)),
            Some(utc("2026-01-01T08:00:00Z"))
        );
    }

    #[test]
    fn asia_shanghai_has_no_dst() {
        assert_eq!(
            fires("0 30 2 * * *", "Asia/Shanghai", "2026-01-01T00:00:00Z", 1),
            ["2026-01-01T18:30:00Z"]
        );
    }
}
