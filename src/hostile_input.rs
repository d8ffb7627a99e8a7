//! Bad input, tried on purpose, against the pure parsers: pipeline files, ingest mappings,
//! campaign files, and the CSV / JSON Lines readers with the values they hold.
//!
//! What every property asks: nothing panics; every rejection names a line that exists and
//! says why (for a hostile value, the line of that value); a hostile line in a good file is
//! refused at its own line while every good row still reads as itself; an accepted campaign
//! reads back as itself. `CASES` cases per property keep `cargo test` fast
//! (`PROPTEST_CASES=20000 cargo test --lib hostile_input` digs deeper); failures are not
//! persisted to files (a shrunk case is printed instead).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Datelike as _, NaiveDate};
use proptest::{prelude::*, sample::select, test_runner::Config};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::{
    ingest::{
        entity::{Entity, Row, ValueRules, parse_row},
        mapping::Mapping,
        read::{Format, Records, Values},
        values::{
            DateFormat, normalize_text, parse_float, parse_int, parse_money_cents, parse_timestamp,
        },
    },
    loyalty::Campaign,
    pipeline::{KindCatalog, KindProblem, parse_source},
};

/// Cases per property (`PROPTEST_CASES` asks for more, for a deeper run by hand).
const CASES: u32 = 256;

fn config() -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(CASES),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Pieces of what users and attackers write: quotes, escapes, SQL, LIKE wildcards, TOML and
/// CSV syntax, NUL and other controls, BOMs, bidi overrides, emoji, CJK, numbers at and past
/// every limit, dates that are not.
const FRAGMENTS: &[&str] = &[
    "'",
    "\"",
    "\\",
    "%",
    "_",
    "\0",
    "'; DROP TABLE runs; --",
    "\" OR 1=1 --",
    "[",
    "]",
    "[[job]]",
    "[pipeline]",
    "=",
    "\n",
    "\r\n",
    "\r",
    "#",
    "{",
    "}",
    ",",
    ";",
    "\t",
    "\u{feff}",
    "\u{202e}",
    "\u{200b}",
    "🙂",
    "客户",
    "Ｃ１",
    "\"\"\"",
    "'''",
    "\\u0000",
    "\\x",
    "nan",
    "inf",
    "-inf",
    "1e999",
    "-0",
    "0x10",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "79228162514264337593543950335",
    "7.9e28",
    "0.0001",
    "2026-02-30",
    "2026-13-01",
    "9999-99-99",
    "+262143-12-31",
    "1970-01-01T00:00:00Z",
    "24:60:60",
    "%Y",
    "%",
    "%-",
    "%#z",
    "%.3f",
    "%:z",
    "(a+)+$",
    "[^",
    "(?",
    "*",
    "a",
    "x",
    " ",
    "   ",
    "",
];

/// Text made of hostile fragments, or any string at all.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec(select(FRAGMENTS), 0..12).prop_map(|v| v.concat()),
        1 => any::<String>(),
        1 => "[a-z]{1,3}".prop_map(|s| s.repeat(2_000)),
    ]
}

/// `valid` three times in four, else something hostile: most cases then pass the other
/// checks and reach the one under test.
fn valid_or_hostile(valid: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![3 => Just(valid.to_owned()), 1 => hostile()]
}

/// `s` as a one-line TOML basic string (controls escaped, so line numbers stay put).
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\U{:08X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A one-line TOML array of strings.
fn toml_strs(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", items.join(", "))
}

/// The last line of `text` (1-based): a problem may name it, or the line after a final
/// newline.
fn last_line(text: &str) -> usize {
    text.matches('\n').count() + 1
}

// ---------------------------------------------------------------- pipeline files

/// Knows `noop` (no params) and `command` (a string `program`), as the real catalogue does.
struct Kinds;

impl KindCatalog for Kinds {
    fn check(&self, kind: &str, params: &Value) -> Result<(), KindProblem> {
        match kind {
            "noop" => Ok(()),
            "command" => match params.get("program") {
                Some(Value::String(_)) => Ok(()),
                _ => Err(KindProblem::BadParams("missing field `program`".into())),
            },
            other => Err(KindProblem::Unknown(format!("unknown kind `{other}`"))),
        }
    }

    fn shardable(&self, kind: &str) -> bool {
        kind == "noop"
    }
}

const GOOD_PIPELINE: &str = r#"[pipeline]
name = "nightly"
schedule = "0 30 2 * * *"
timezone = "Asia/Shanghai"
max_active_runs = 2

[[job]]
name = "a"
kind = "noop"

[[job]]
name = "b"
kind = "command"
after = ["a"]
params = { program = "true" }
retries = 3
retry_backoff = "100ms"
timeout = "10m"
"#;

/// Checks a pipeline parse: problems name `p.toml`, a line of the text (one of `lines` when
/// given) and a reason.
fn check_pipeline(text: &str, lines: Option<&[usize]>) -> Result<(), TestCaseError> {
    match parse_source("p.toml", text, &Kinds) {
        Ok(spec) => {
            prop_assert!(!spec.jobs.is_empty());
        }
        Err(problems) => {
            prop_assert!(!problems.is_empty(), "a rejection without a problem");
            for p in &problems {
                prop_assert_eq!(&p.file, "p.toml");
                prop_assert!(
                    (1..=last_line(text)).contains(&p.line),
                    "line {} of {}: {}",
                    p.line,
                    last_line(text),
                    p.message
                );
                if let Some(lines) = lines {
                    prop_assert!(lines.contains(&p.line), "{p} not on a value's line");
                }
                prop_assert!(!p.message.trim().is_empty(), "{p:?}");
            }
        }
    }
    Ok(())
}

/// A character index of `text` turned into a byte index on a char boundary.
fn boundary(text: &str, at: usize) -> usize {
    text.char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .nth(at % (text.chars().count() + 1))
        .unwrap_or(text.len())
}

/// `text` with `insert` put at char `at` and `delete` chars removed after it.
fn mutate(text: &str, at: usize, delete: usize, insert: &str) -> String {
    let start = boundary(text, at);
    let rest = &text[start..];
    let end = start
        + rest
            .char_indices()
            .nth(delete)
            .map_or(rest.len(), |(i, _)| i);
    format!("{}{insert}{}", &text[..start], &text[end..])
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn pipeline_files_of_any_text_are_refused_by_line(text in prop_oneof![hostile(), any::<String>()]) {
        check_pipeline(&text, None)?;
    }

    #[test]
    fn a_mutated_pipeline_file_is_refused_by_line(
        at in any::<usize>(),
        delete in 0usize..40,
        insert in hostile(),
    ) {
        check_pipeline(&mutate(GOOD_PIPELINE, at, delete, &insert), None)?;
    }

    /// Hostile values in every field are blamed on their own lines.
    #[test]
    fn hostile_pipeline_values_are_blamed_on_their_lines(
        name in valid_or_hostile("nightly"),
        schedule in valid_or_hostile("0 30 2 * * *"),
        timezone in valid_or_hostile("Asia/Shanghai"),
        job in valid_or_hostile("b"),
        after in valid_or_hostile("a"),
        timeout in valid_or_hostile("10m"),
        pool in valid_or_hostile("heavy"),
        sla in valid_or_hostile("1h"),
    ) {
        let text = format!(
            "[pipeline]\nname = {}\nschedule = {}\ntimezone = {}\nsla = {}\n\n\
             [[job]]\nname = \"a\"\nkind = \"noop\"\n\n\
             [[job]]\nname = {}\nkind = \"noop\"\nafter = [{}]\ntimeout = {}\npool = {}\n",
            toml_str(&name), toml_str(&schedule), toml_str(&timezone), toml_str(&sla),
            toml_str(&job), toml_str(&after), toml_str(&timeout), toml_str(&pool),
        );
        // The value lines, and the second job table's first line.
        check_pipeline(&text, Some(&[2, 3, 4, 5, 11, 12, 14, 15, 16]))?;
    }

    /// A misspelt key anywhere is named, at its line.
    #[test]
    fn an_unknown_key_is_named_at_its_line(
        jobs in 1usize..5,
        pick in any::<prop::sample::Index>(),
        key in "[a-z][a-z_]{0,12}",
    ) {
        let known = ["name", "kind", "params", "after", "retries", "retry_backoff", "timeout",
                     "pool", "shards"];
        prop_assume!(!known.contains(&key.as_str()));
        let target = pick.index(jobs);
        let mut text = String::from("[pipeline]\nname = \"p\"\n");
        let mut line = 0;
        for j in 0..jobs {
            text.push_str(&format!("\n[[job]]\nname = \"j{j}\"\nkind = \"noop\"\n"));
            if j == target {
                line = last_line(&text);
                text.push_str(&format!("{key} = 1\n"));
            }
        }
        let problems = parse_source("p.toml", &text, &Kinds).expect_err("an unknown key");
        prop_assert!(
            problems.iter().any(|p| p.line == line && p.message.contains(&key)),
            "{problems:?} does not name `{key}` at line {line}"
        );
    }
}

// ---------------------------------------------------------------- ingest mappings

const GOOD_MAPPING: &str = r#"entity = "orders"
timezone = "Europe/London"
date_format = "%Y-%m-%d %H:%M:%S"
currency_multiplier = 1.0
[columns]
order_id = "InvoiceNo"
customer_id = "CustomerID"
[constants]
status = "paid"
[derive.status]
from = "InvoiceNo"
prefixes = { C = "cancelled" }
default = "paid"
[[skip]]
reason = "no customer id"
column = "CustomerID"
empty = true
"#;

fn check_mapping(text: &str, lines: Option<&[usize]>) -> Result<Option<Mapping>, TestCaseError> {
    match Mapping::parse("m.toml", text) {
        Ok(m) => Ok(Some(m)),
        Err(problems) => {
            prop_assert!(!problems.is_empty(), "a rejection without a problem");
            for p in &problems {
                prop_assert_eq!(&p.file, "m.toml");
                prop_assert!((1..=last_line(text)).contains(&p.line), "{p}");
                if let Some(lines) = lines {
                    prop_assert!(lines.contains(&p.line), "{p} not on a value's line");
                }
                prop_assert!(!p.message.trim().is_empty(), "{p:?}");
            }
            Ok(None)
        }
    }
}

fn tz() -> impl Strategy<Value = chrono_tz::Tz> {
    select(vec![
        chrono_tz::UTC,
        chrono_tz::Europe::London,
        chrono_tz::America::Sao_Paulo,
        chrono_tz::Pacific::Kiritimati,
        chrono_tz::Pacific::Apia,
        chrono_tz::Asia::Kathmandu,
    ])
}

/// Reads a record through a mapping's plan and the row parser: whatever comes out, no panic.
fn read_through(m: &Mapping, header: &[String], fields: &[String], tz: chrono_tz::Tz) {
    let record = csv::StringRecord::from(fields.to_vec());
    let values = Values::Csv(record);
    for entity in Entity::ALL {
        let plan = m.plan(entity, header);
        let _ = plan.skip_reason(&values);
        let _ = m.check_header(entity, header);
        let _ = parse_row(entity, |c| plan.value(&values, c), &m.value_rules(tz));
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mappings_of_any_text_are_refused_by_line(text in prop_oneof![hostile(), any::<String>()]) {
        check_mapping(&text, None)?;
    }

    #[test]
    fn a_mutated_mapping_is_refused_by_line(
        at in any::<usize>(),
        delete in 0usize..40,
        insert in hostile(),
    ) {
        check_mapping(&mutate(GOOD_MAPPING, at, delete, &insert), None)?;
    }

    /// Hostile values in every field are blamed on their own lines; an accepted mapping reads
    /// hostile records without panicking.
    #[test]
    fn hostile_mapping_values_are_blamed_on_their_lines(
        entity in valid_or_hostile("orders"),
        format in prop_oneof![Just("csv".to_owned()), Just("jsonl".to_owned()), hostile()],
        delimiter in valid_or_hostile(";"),
        timezone in valid_or_hostile("Europe/London"),
        date_format in valid_or_hostile("%d/%m/%Y %H:%M"),
        multiplier in prop_oneof![
            3 => 0.01..100.0f64,
            1 => prop_oneof![any::<f64>(), Just(f64::NAN), Just(f64::INFINITY), Just(1e300)],
        ],
        column in hostile(),
        constant in hostile(),
        prefix in hostile(),
        pattern in valid_or_hostile("^C"),
        fields in prop::collection::vec(hostile(), 0..8),
        tz in tz(),
    ) {
        let multiplier = toml::Value::Float(multiplier).to_string();
        let text = format!(
            "entity = {}\nformat = {}\ndelimiter = {}\ntimezone = {}\ndate_format = {}\n\
             currency_multiplier = {multiplier}\n\
             [columns]\norder_id = {}\n[constants]\nstatus = {}\n\
             [derive.customer_id]\nfrom = \"Invoice\"\nprefixes = {{ {} = \"x\" }}\n\
             [[skip]]\nreason = \"r\"\ncolumn = \"Invoice\"\nmatches = {}\n",
            toml_str(&entity), toml_str(&format), toml_str(&delimiter), toml_str(&timezone),
            toml_str(&date_format), toml_str(&column), toml_str(&constant), toml_str(&prefix),
            toml_str(&pattern),
        );
        // Each value's line, and the first line of the table holding it.
        let lines = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18];
        if let Some(m) = check_mapping(&text, Some(&lines))? {
            // What a mapping writes into rows holds no NUL (no database text can).
            let clean = m.constants.values().all(|v| !v.contains('\0'))
                && m.derive.values().all(|d| {
                    d.prefixes.iter().all(|(_, v)| !v.contains('\0'))
                        && d.default.as_deref().is_none_or(|v| !v.contains('\0'))
                });
            prop_assert!(clean, "a NUL in what the mapping writes");
            let header: Vec<String> = ["Invoice".to_owned(), column.clone()]
                .into_iter()
                .chain(fields.iter().cloned())
                .collect();
            read_through(&m, &header, &fields, tz);
        }
    }
}

// ---------------------------------------------------------------- campaign files

fn check_campaign(
    result: &Result<Campaign, Vec<crate::loyalty::campaign::Problem>>,
    text: &str,
    lines: Option<&[usize]>,
) -> Result<(), TestCaseError> {
    if let Err(problems) = result {
        prop_assert!(!problems.is_empty(), "a rejection without a problem");
        for p in problems {
            prop_assert!((1..=last_line(text)).contains(&p.line), "{p:?}");
            if let Some(lines) = lines {
                prop_assert!(lines.contains(&p.line), "{p:?} not on a value's line");
            }
            prop_assert!(!p.message.trim().is_empty(), "{p:?}");
        }
    }
    Ok(())
}

const GOOD_CAMPAIGN: &str = r#"[campaign]
name = "win-back"
starts = "2026-07-01"
ends = "2026-07-31"
budget_points = 100000
per_customer_cap = 500

[target]
segments = ["at risk"]
churn_probability = [0.6, 1.0]

[reward]
fixed_points = 200
"#;

/// Days across chrono's whole range, its very ends included.
fn any_day() -> impl Strategy<Value = NaiveDate> {
    let (min, max) = (
        NaiveDate::MIN.num_days_from_ce(),
        NaiveDate::MAX.num_days_from_ce(),
    );
    prop_oneof![(min..=max), (max - 62..=max), (min..=min + 62),]
        .prop_map(|d| NaiveDate::from_num_days_from_ce_opt(d).unwrap())
}

/// A `[low, high]` range, valid half the time.
fn range() -> impl Strategy<Value = String> {
    let float = || {
        prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::NEG_INFINITY),
            -2.0..2.0f64
        ]
    };
    prop_oneof![
        (0.0..1.0f64, 0.0..1.0f64).prop_map(|(a, b)| vec![a.min(b), a.max(b)]),
        prop::collection::vec(float(), 0..4),
    ]
    .prop_map(|v| toml::Value::Array(v.into_iter().map(toml::Value::Float).collect()).to_string())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn campaigns_of_any_text_are_refused_by_line(
        text in prop_oneof![hostile(), any::<String>()],
        day in any_day(),
    ) {
        check_campaign(&Campaign::parse(&text), &text, None)?;
        check_campaign(&Campaign::for_month(&text, day), &text, None)?;
    }

    #[test]
    fn a_mutated_campaign_is_refused_by_line(
        at in any::<usize>(),
        delete in 0usize..40,
        insert in hostile(),
    ) {
        let text = mutate(GOOD_CAMPAIGN, at, delete, &insert);
        check_campaign(&Campaign::parse(&text), &text, None)?;
    }

    /// Hostile values are blamed on their lines; an accepted campaign is stored (as
    /// `to_toml`) and read back as itself; a monthly template works for any month.
    #[test]
    fn hostile_campaign_values_are_blamed_and_accepted_ones_read_back(
        name in prop_oneof![Just("win-back".to_owned()), hostile()],
        starts in prop_oneof![3 => Just("2026-07-01".to_owned()), 1 => hostile()],
        ends in prop_oneof![3 => Just("2026-07-31".to_owned()), 1 => hostile()],
        budget in prop_oneof![1 => any::<i64>(), 3 => 1..1_000_000i64],
        cap in prop_oneof![1 => any::<i64>(), 3 => 1..1_000i64],
        segments in prop::collection::vec(hostile(), 0..3),
        churn in range(),
        days in range(),
        reward in prop_oneof![
            prop_oneof![any::<i64>(), 1..1_000i64].prop_map(|p| format!("fixed_points = {p}")),
            prop_oneof![any::<f64>(), 1.0..5.0f64, Just(f64::NAN)]
                .prop_map(|m| format!("multiplier = {}", toml::Value::Float(m))),
        ],
        day in any_day(),
    ) {
        let segments = toml_strs(&segments);
        let head = format!("[campaign]\nname = {}\n", toml_str(&name));
        let rest = format!(
            "budget_points = {budget}\nper_customer_cap = {cap}\n\
             [target]\nsegments = {segments}\nchurn_probability = {churn}\n\
             days_since_last_order = {days}\n[reward]\n{reward}\n"
        );
        let dated = format!(
            "{head}starts = {}\nends = {}\n{rest}",
            toml_str(&starts),
            toml_str(&ends)
        );
        let result = Campaign::parse(&dated);
        check_campaign(&result, &dated, Some(&[1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12]))?;
        if let Ok(c) = result {
            prop_assert_eq!(Campaign::parse(&c.to_toml()), Ok(c.clone()));
            prop_assert!(c.window().0 <= c.window().1);
        }
        // Without dates: a monthly template, its problems on the same kinds of lines.
        let monthly = format!("{head}{rest}");
        let result = Campaign::for_month(&monthly, day);
        check_campaign(&result, &monthly, Some(&[1, 2, 3, 4, 6, 7, 8, 9, 10]))?;
        if let Ok(c) = result {
            prop_assert_eq!(c.starts.day(), 1);
            prop_assert!(c.starts <= day && day <= c.ends);
            prop_assert_eq!(Campaign::parse(&c.to_toml()), Ok(c.clone()));
        }
    }
}

// ---------------------------------------------------------------- CSV and JSON Lines

/// Every record of `data`, checked: lines rise and exist, a refusal has a reason, nothing
/// holds a NUL (PostgreSQL text cannot).
fn read_checked(data: &[u8], format: Format) -> Result<Vec<(u64, bool)>, TestCaseError> {
    // CSV ends a line at `\n`, `\r\n` or a lone `\r`; JSON Lines at `\n` only.
    let lone_cr = data
        .iter()
        .enumerate()
        .filter(|&(i, b)| *b == b'\r' && data.get(i + 1) != Some(&b'\n'))
        .count();
    let lone_cr = if format == Format::JsonLines {
        0
    } else {
        lone_cr
    };
    let lines = (data.iter().filter(|b| **b == b'\n').count() + lone_cr) as u64 + 1;
    let Ok(mut records) = Records::from_bytes(data.to_vec(), format) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut last = 0;
    while let Ok(Some(r)) = records.next_record() {
        prop_assert!(
            r.line > last && r.line <= lines,
            "line {} of {lines}",
            r.line
        );
        last = r.line;
        match &r.values {
            Ok(Values::Csv(fields)) => {
                prop_assert!(fields.iter().all(|f| !f.contains('\0')), "{fields:?}");
            }
            Ok(Values::Json(map)) => prop_assert!(
                map.iter()
                    .all(|(k, v)| !k.contains('\0') && !v.contains('\0')),
                "{map:?}"
            ),
            Err((e, raw)) => {
                prop_assert!(!e.reason().is_empty());
                prop_assert!(!raw.contains('\0'), "{raw:?}");
            }
        }
        out.push((r.line, r.values.is_ok()));
    }
    Ok(out)
}

/// Bytes of a hostile file: fragments (as bytes), invalid UTF-8, or anything.
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        hostile().prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..400),
        prop::collection::vec(
            prop_oneof![
                hostile().prop_map(String::into_bytes),
                Just(vec![0xff, 0xfe]),
                Just(vec![0xc3]),
            ],
            0..10
        )
        .prop_map(|v| v.concat()),
    ]
}

const HEADER: &str = "order_id,customer_id,product_id,quantity,unit_price,ordered_at,status";

/// A good order line and the row it is.
fn good_order() -> impl Strategy<Value = (String, Row)> {
    (
        "[A-Z][A-Z0-9]{0,8}",
        "C[0-9]{1,6}",
        "P[0-9]{1,6}",
        1..1_000i64,
        0..10_000_000i64,
        0..4_000_000_000i64,
    )
        .prop_map(|(order, customer, product, quantity, cents, at)| {
            let line = format!(
                "{order},{customer},{product},{quantity},{}.{:02},{at},paid",
                cents / 100,
                cents % 100
            );
            let row = Row::Order(crate::ingest::entity::OrderLine {
                order_id: order,
                customer_id: customer,
                product_id: product,
                quantity,
                unit_price_cents: cents,
                ordered_at: at,
                status: crate::ingest::entity::OrderStatus::Paid,
            });
            (line, row)
        })
}

fn csv_row(values: &Values, header: &[String]) -> Option<Row> {
    let index = |c: &str| header.iter().position(|h| h == c);
    parse_row(
        Entity::Orders,
        |c| values.field(index(c), c),
        &ValueRules::default(),
    )
    .ok()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_read_as_csv_or_json_lines(
        data in hostile_bytes(),
        delimiter in select(vec![b',', b';', b'\t', b'|', b'"', b'\n', 0u8]),
    ) {
        read_checked(&data, Format::Csv { delimiter })?;
        read_checked(&data, Format::JsonLines)?;
        let mut with_header = format!("{HEADER}\n").into_bytes();
        with_header.extend_from_slice(&data);
        read_checked(&with_header, Format::Csv { delimiter: b',' })?;
    }

    /// A hostile line among good ones: refused (if at all) at its own line, and every good
    /// row still reads as itself. CSV lines hold no `"` (a quote legitimately opens a field
    /// that runs on to the next lines).
    #[test]
    fn a_hostile_line_in_a_good_csv_file_loses_no_good_row(
        good in prop::collection::vec(good_order(), 1..8),
        bad in hostile_bytes(),
        at in any::<prop::sample::Index>(),
    ) {
        let mut bad: Vec<u8> = bad.into_iter().filter(|b| !matches!(b, b'"' | b'\n' | b'\r')).collect();
        // A blank line is no record: make it one.
        bad.push(b'x');
        let at = at.index(good.len() + 1);
        let mut data = format!("{HEADER}\n").into_bytes();
        for (i, (line, _)) in good.iter().enumerate() {
            if i == at {
                data.extend_from_slice(&bad);
                data.push(b'\n');
            }
            data.extend_from_slice(line.as_bytes());
            data.push(b'\n');
        }
        if at == good.len() {
            data.extend_from_slice(&bad);
            data.push(b'\n');
        }
        let bad_line = at as u64 + 2;
        let mut records = Records::from_bytes(data, Format::Csv { delimiter: b',' }).unwrap();
        let header = records.header().to_vec();
        let mut rows = Vec::new();
        while let Some(r) = records.next_record().unwrap() {
            match r.values {
                Ok(v) => {
                    if r.line != bad_line {
                        rows.push(csv_row(&v, &header));
                    }
                }
                Err((e, _)) => prop_assert_eq!(r.line, bad_line, "{}", e),
            }
        }
        let expected: Vec<Option<Row>> = good.into_iter().map(|(_, row)| Some(row)).collect();
        prop_assert_eq!(rows, expected);
    }

    #[test]
    fn a_hostile_line_in_a_good_json_lines_file_loses_no_good_row(
        good in prop::collection::vec(good_order(), 1..8),
        bad in hostile_bytes(),
        at in any::<prop::sample::Index>(),
    ) {
        let bad: Vec<u8> = bad.into_iter().filter(|b| *b != b'\n').collect();
        let at = at.index(good.len() + 1);
        let json = |line: &str| {
            let keys = HEADER.split(',');
            let map: serde_json::Map<String, Value> = keys
                .zip(line.split(','))
                .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
                .collect();
            Value::Object(map).to_string()
        };
        let mut data = Vec::new();
        for (i, (line, _)) in good.iter().enumerate() {
            if i == at {
                data.extend_from_slice(&bad);
                data.push(b'\n');
            }
            data.extend_from_slice(json(line).as_bytes());
            data.push(b'\n');
        }
        if at == good.len() {
            data.extend_from_slice(&bad);
            data.push(b'\n');
        }
        let bad_line = at as u64 + 1;
        let mut records = Records::from_bytes(data, Format::JsonLines).unwrap();
        let mut rows = Vec::new();
        while let Some(r) = records.next_record().unwrap() {
            match r.values {
                Ok(v) => {
                    if r.line != bad_line {
                        rows.push(csv_row(&v, &[]));
                    }
                }
                Err((e, _)) => prop_assert_eq!(r.line, bad_line, "{}", e),
            }
        }
        let expected: Vec<Option<Row>> = good.into_iter().map(|(_, row)| Some(row)).collect();
        prop_assert_eq!(rows, expected);
    }

    /// Every value parser takes any text: a value or a reason, never a panic.
    #[test]
    fn values_of_any_text_read_or_say_why(
        text in prop_oneof![hostile(), any::<String>()],
        format in prop_oneof![Just(None), hostile().prop_map(Some)],
        multiplier in prop_oneof![
            Just(Decimal::ONE),
            Just(Decimal::MAX),
            Just(Decimal::MIN),
            any::<i64>().prop_map(Decimal::from),
            (any::<i64>(), 0u32..28).prop_map(|(n, s)| Decimal::new(n, s)),
        ],
        tz in tz(),
    ) {
        let format = format.and_then(|f| DateFormat::new(&f).ok());
        if let Ok(t) = parse_timestamp(&text, format.as_ref(), tz) {
            prop_assert!(chrono::DateTime::from_timestamp(t, 0).is_some(), "{t}");
        }
        let _ = parse_money_cents(&text, multiplier);
        let _ = parse_int(&text);
        if let Ok(f) = parse_float(&text) {
            prop_assert!(f.is_finite());
        }
        let once = normalize_text(&text);
        prop_assert_eq!(normalize_text(&once), once.clone(), "not idempotent");
        prop_assert_eq!(once.trim(), once.as_str());
    }

    /// Money reads exactly, however large, or says it is out of range.
    #[test]
    fn amounts_read_exactly_or_are_out_of_range(cents in any::<i64>(), scale in 0u32..6) {
        let text = Decimal::new(cents, 2).to_string();
        prop_assert_eq!(parse_money_cents(&text, Decimal::ONE), Ok(cents));
        // Past 28 digits a decimal cannot hold it; past i64 cents it is out of range.
        let big = format!("{cents}{}", "0".repeat(scale as usize * 5));
        let exact = Decimal::from_str_exact(&big)
            .ok()
            .and_then(|d| d.checked_mul(Decimal::from(10_000)))
            .and_then(|d| i64::try_from(d).ok());
        prop_assert_eq!(parse_money_cents(&big, Decimal::ONE_HUNDRED).ok(), exact);
    }
}
