//! Mappings: how a foreign export becomes canonical rows. Column renames, constants, a date
//! format and source time zone, a currency multiplier, a column derived from another
//! column's prefix (`C…` invoices are cancellations), and skip rules with counted reasons.
//!
//! ```toml
//! entity = "orders"
//! timezone = "Europe/London"
//! date_format = "%Y-%m-%d %H:%M:%S"
//! currency_multiplier = 1.0
//! [columns]                 # canonical = "source column"
//! order_id = "InvoiceNo"
//! [constants]               # canonical = "fixed value"
//! [derive.status]           # canonical column from a source column's prefix
//! from = "InvoiceNo"
//! prefixes = { C = "cancelled" }
//! default = "paid"
//! [[skip]]                  # rows to leave out, counted by reason
//! reason = "no customer id"
//! column = "CustomerID"
//! empty = true              # or: prefix = "A", equals = "x", matches = "re", not_matches = "re"
//! ```
//!
//! A mapping may read a file made for another entity: customers and products derived from
//! an order export keep the first row seen for each id.

use std::{collections::BTreeMap, path::Path, str::FromStr};

use chrono_tz::Tz;
use regex::Regex;
use rust_decimal::Decimal;
use serde::Deserialize;
use toml::Spanned;

use super::{
    entity::{Entity, ValueRules},
    read::Values,
    values::decimal_from_f64,
};
use crate::pipeline::Problem;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    entity: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    delimiter: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
    date_format: Option<Spanned<String>>,
    currency_multiplier: Option<Spanned<f64>>,
    #[serde(default)]
    columns: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    constants: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    derive: BTreeMap<String, Spanned<RawDerive>>,
    #[serde(default)]
    skip: Vec<Spanned<RawSkip>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDerive {
    from: String,
    prefixes: BTreeMap<String, String>,
    default: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSkip {
    reason: String,
    column: String,
    #[serde(default)]
    empty: bool,
    prefix: Option<String>,
    equals: Option<String>,
    matches: Option<String>,
    not_matches: Option<String>,
}

/// A value from a source column's prefix.
#[derive(Debug, Clone)]
pub struct Derive {
    pub from: String,
    /// Longest prefixes first, so `CX` wins over `C`.
    pub prefixes: Vec<(String, String)>,
    pub default: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Test {
    Empty,
    Prefix(String),
    Equals(String),
    Matches(Regex),
    NotMatches(Regex),
}

#[derive(Debug, Clone)]
pub struct Skip {
    pub reason: String,
    pub column: String,
    pub test: Test,
}

/// A validated mapping.
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    pub entity: Option<Entity>,
    pub format: Option<super::read::Format>,
    pub timezone: Option<Tz>,
    pub date_format: Option<super::values::DateFormat>,
    pub currency_multiplier: Option<Decimal>,
    /// canonical → source column
    pub columns: BTreeMap<String, String>,
    pub constants: BTreeMap<String, String>,
    pub derive: BTreeMap<String, Derive>,
    pub skip: Vec<Skip>,
}

impl Mapping {
    pub fn load(path: &Path) -> Result<Self, Vec<Problem>> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![Problem {
                file: file.clone(),
                line: 1,
                message: format!("cannot read mapping: {e}"),
            }]
        })?;
        Self::parse(&file, &text)
    }

    /// Parses mapping text; every problem is reported as `FILE:LINE: reason`.
    pub fn parse(file: &str, text: &str) -> Result<Self, Vec<Problem>> {
        let line_at = |span: std::ops::Range<usize>| {
            text[..span.start.min(text.len())].matches('\n').count() + 1
        };
        let mut problems = Vec::new();
        let mut problem = |span: std::ops::Range<usize>, message: String| {
            problems.push(Problem {
                file: file.to_owned(),
                line: line_at(span),
                message,
            })
        };
        let raw: RawMapping = toml::from_str(text).map_err(|e| {
            vec![Problem {
                file: file.to_owned(),
                line: e.span().map(line_at).unwrap_or(1),
                message: e.message().trim().to_owned(),
            }]
        })?;
        let mut m = Mapping::default();
        if let Some(e) = &raw.entity {
            match Entity::from_str(e.get_ref()) {
                Ok(entity) => m.entity = Some(entity),
                Err(reason) => problem(e.span(), reason),
            }
        }
        let delimiter = match &raw.delimiter {
            Some(d) => match d.get_ref().as_bytes() {
                [b] => *b,
                _ if d.get_ref() == "\\t" => b'\t',
                _ => {
                    problem(d.span(), "delimiter must be one character".to_owned());
                    b','
                }
            },
            None => b',',
        };
        if let Some(f) = &raw.format {
            match f.get_ref().as_str() {
                "csv" => m.format = Some(super::read::Format::Csv { delimiter }),
                "jsonl" | "json" => m.format = Some(super::read::Format::JsonLines),
                other => problem(
                    f.span(),
                    format!("unknown format `{other}` (expected csv or jsonl)"),
                ),
            }
        } else if raw.delimiter.is_some() {
            m.format = Some(super::read::Format::Csv { delimiter });
        }
        if let Some(tz) = &raw.timezone {
            match tz.get_ref().parse::<Tz>() {
                Ok(z) => m.timezone = Some(z),
                Err(_) => problem(tz.span(), format!("unknown time zone `{}`", tz.get_ref())),
            }
        }
        if let Some(f) = &raw.date_format {
            // A format with no date or time fields would read any string as midnight.
            if !f.get_ref().contains('%') {
                problem(
                    f.span(),
                    format!("date_format `{}` has no % fields", f.get_ref()),
                );
            }
            match super::values::DateFormat::new(f.get_ref()) {
                Ok(df) => m.date_format = Some(df),
                Err(e) => problem(f.span(), e),
            }
        }
        if let Some(x) = &raw.currency_multiplier {
            match decimal_from_f64(*x.get_ref()) {
                Some(d) if *x.get_ref() > 0.0 => m.currency_multiplier = Some(d),
                _ => problem(
                    x.span(),
                    "currency_multiplier must be a positive number".to_owned(),
                ),
            }
        }
        let known = |name: &str| match m.entity {
            Some(e) => e.columns().contains(&name),
            None => Entity::ALL.iter().any(|e| e.columns().contains(&name)),
        };
        for (canonical, source) in &raw.columns {
            if !known(canonical) {
                problem(
                    source.span(),
                    format!(
                        "`{canonical}` is not a canonical column{}",
                        for_entity(m.entity)
                    ),
                );
            }
            m.columns
                .insert(canonical.clone(), source.get_ref().clone());
        }
        for (canonical, value) in &raw.constants {
            if value.get_ref().contains('\0') {
                // Read values with one are refused (no database text holds a NUL): so is this.
                problem(
                    value.span(),
                    format!("constant `{canonical}` holds a NUL character"),
                );
            }
            if !known(canonical) {
                problem(
                    value.span(),
                    format!(
                        "`{canonical}` is not a canonical column{}",
                        for_entity(m.entity)
                    ),
                );
            }
            m.constants
                .insert(canonical.clone(), value.get_ref().clone());
        }
        for (canonical, d) in &raw.derive {
            if !known(canonical) {
                problem(
                    d.span(),
                    format!(
                        "`{canonical}` is not a canonical column{}",
                        for_entity(m.entity)
                    ),
                );
            }
            let r = d.get_ref();
            if r.prefixes
                .values()
                .chain(&r.default)
                .any(|v| v.contains('\0'))
            {
                problem(
                    d.span(),
                    format!("derived `{canonical}` holds a NUL character"),
                );
            }
            let mut prefixes: Vec<(String, String)> = r.prefixes.clone().into_iter().collect();
            prefixes.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
            m.derive.insert(
                canonical.clone(),
                Derive {
                    from: r.from.clone(),
                    prefixes,
                    default: r.default.clone(),
                },
            );
        }
        for s in &raw.skip {
            let r = s.get_ref();
            let regex = |re: &str| {
                Regex::new(re).map_err(|e| format!("bad regular expression `{re}`: {e}"))
            };
            let tests: Vec<Result<Test, String>> = [
                r.empty.then_some(Ok(Test::Empty)),
                r.prefix.clone().map(|p| Ok(Test::Prefix(p))),
                r.equals.clone().map(|v| Ok(Test::Equals(v))),
                r.matches.as_deref().map(|re| regex(re).map(Test::Matches)),
                r.not_matches
                    .as_deref()
                    .map(|re| regex(re).map(Test::NotMatches)),
            ]
            .into_iter()
            .flatten()
            .collect();
            match tests.as_slice() {
                [Ok(test)] => m.skip.push(Skip {
                    reason: r.reason.clone(),
                    column: r.column.clone(),
                    test: test.clone(),
                }),
                [Err(e)] => problem(s.span(), e.clone()),
                [] => problem(
                    s.span(),
                    "skip rule needs one test: empty, prefix, equals, matches or not_matches"
                        .to_owned(),
                ),
                _ => problem(
                    s.span(),
                    "skip rule has more than one test; write one rule per test".to_owned(),
                ),
            }
        }
        if problems.is_empty() {
            Ok(m)
        } else {
            problems.sort_by_key(|p| p.line);
            Err(problems)
        }
    }

    /// The rules for reading values, with `default_tz` when the mapping sets no zone.
    pub fn value_rules(&self, default_tz: Tz) -> ValueRules {
        ValueRules {
            timezone: self.timezone.unwrap_or(default_tz),
            date_format: self.date_format.clone(),
            currency_multiplier: self.currency_multiplier.unwrap_or(Decimal::ONE),
        }
    }

    /// The source column a canonical column is read from (itself when not renamed).
    pub fn source_of<'a>(&'a self, canonical: &'a str) -> &'a str {
        self.columns
            .get(canonical)
            .map_or(canonical, String::as_str)
    }

    /// Checks a CSV header provides every required column of `entity`; the message names
    /// what is missing and what the file has.
    pub fn check_header(&self, entity: Entity, header: &[String]) -> Result<(), String> {
        let mut missing = Vec::new();
        for &col in entity.required() {
            if self.constants.contains_key(col) {
                continue;
            }
            let source = match self.derive.get(col) {
                Some(d) => d.from.as_str(),
                None => self.source_of(col),
            };
            if !header.iter().any(|h| h == source) {
                missing.push(if source == col {
                    format!("`{col}`")
                } else {
                    format!("`{source}` (for {col})")
                });
            }
        }
        for rule in &self.skip {
            if !header.contains(&rule.column) {
                missing.push(format!("`{}` (in a skip rule)", rule.column));
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the header lacks {} (it has: {})",
                missing.join(", "),
                header.join(", ")
            ))
        }
    }

    /// Resolves the mapping against one file: where each canonical column of `entity` and
    /// each skip rule's column is (`header` is empty for JSON Lines, whose keys are looked up
    /// per record).
    pub fn plan(&self, entity: Entity, header: &[String]) -> Plan {
        let field = |name: &str| Field {
            index: header.iter().position(|h| h == name),
            key: name.to_owned(),
        };
        let columns = entity
            .columns()
            .iter()
            .map(|&col| {
                let source = if let Some(c) = self.constants.get(col) {
                    Source::Constant(c.clone())
                } else if let Some(d) = self.derive.get(col) {
                    Source::Derived(field(&d.from), d.clone())
                } else {
                    Source::Field(field(self.source_of(col)))
                };
                (col, source)
            })
            .collect();
        let skip = self
            .skip
            .iter()
            .map(|rule| (field(&rule.column), rule.clone()))
            .collect();
        Plan { columns, skip }
    }
}

/// A source column, by position in a CSV header or by key in JSON.
#[derive(Debug, Clone)]
struct Field {
    index: Option<usize>,
    key: String,
}

impl Field {
    fn get<'a>(&self, values: &'a Values) -> Option<&'a str> {
        values.field(self.index, &self.key)
    }
}

#[derive(Debug, Clone)]
enum Source {
    Field(Field),
    Constant(String),
    Derived(Field, Derive),
}

/// A mapping resolved against one file.
#[derive(Debug, Clone)]
pub struct Plan {
    columns: Vec<(&'static str, Source)>,
    skip: Vec<(Field, Skip)>,
}

impl Plan {
    /// The canonical column's raw value in a record: a constant, a derived value, or the
    /// (renamed) source column.
    pub fn value<'a>(&'a self, values: &'a Values, canonical: &str) -> Option<&'a str> {
        let (_, source) = self.columns.iter().find(|(c, _)| *c == canonical)?;
        match source {
            Source::Constant(c) => Some(c.as_str()),
            Source::Field(f) => f.get(values),
            Source::Derived(f, d) => {
                let from = f.get(values).unwrap_or("").trim_start();
                d.prefixes
                    .iter()
                    .find(|(p, _)| from.starts_with(p.as_str()))
                    .map(|(_, v)| v.as_str())
                    .or(d.default.as_deref())
            }
        }
    }

    /// The first skip rule this record matches, if any.
    pub fn skip_reason(&self, values: &Values) -> Option<&str> {
        self.skip.iter().find_map(|(field, rule)| {
            let value = field.get(values).unwrap_or("").trim();
            let hit = match &rule.test {
                Test::Empty => value.is_empty(),
                Test::Prefix(p) => value.starts_with(p.as_str()),
                Test::Equals(v) => value == v,
                Test::Matches(re) => re.is_match(value),
                Test::NotMatches(re) => !re.is_match(value),
            };
            hit.then_some(rule.reason.as_str())
        })
    }
}

fn for_entity(entity: Option<Entity>) -> String {
    entity.map(|e| format!(" of {e}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETAIL: &str = r#"
entity = "orders"
timezone = "Europe/London"
date_format = "%Y-%m-%d %H:%M:%S"
currency_multiplier = 1.0
[columns]
order_id = "InvoiceNo"
product_id = "StockCode"
customer_id = "CustomerID"
quantity = "Quantity"
unit_price = "UnitPrice"
ordered_at = "InvoiceDate"
[derive.status]
from = "InvoiceNo"
prefixes = { C = "cancelled" }
default = "paid"
[[skip]]
reason = "no customer id"
column = "CustomerID"
empty = true
[[skip]]
reason = "not a product"
column = "StockCode"
not_matches = "^[0-9]{5}[A-Za-z]*$"
"#;

    #[test]
    fn a_retail_mapping_renames_derives_and_skips() {
        let m = Mapping::parse("m.toml", RETAIL).unwrap();
        assert_eq!(m.entity, Some(Entity::Orders));
        let header: Vec<String> = [
            "InvoiceNo",
            "StockCode",
            "Quantity",
            "InvoiceDate",
            "UnitPrice",
            "CustomerID",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        m.check_header(Entity::Orders, &header).unwrap();
        let plan = m.plan(Entity::Orders, &header);
        let rec = |fields: &[&str]| Values::Csv(csv::StringRecord::from(fields.to_vec()));

        let cancelled = rec(&[
            "C489449",
            "22087",
            "-12",
            "2009-12-01 10:33:00",
            "0.85",
            "16321",
        ]);
        assert_eq!(plan.skip_reason(&cancelled), None);
        assert_eq!(plan.value(&cancelled, "status"), Some("cancelled"));
        assert_eq!(plan.value(&cancelled, "order_id"), Some("C489449"));
        assert_eq!(plan.value(&cancelled, "unit_price"), Some("0.85"));

        let paid = rec(&[
            "489434",
            "85048",
            "12",
            "2009-12-01 07:45:00",
            "6.95",
            "13085",
        ]);
        assert_eq!(plan.value(&paid, "status"), Some("paid"));

        let anonymous = rec(&["489434", "85048", "12", "2009-12-01 07:45:00", "6.95", ""]);
        assert_eq!(plan.skip_reason(&anonymous), Some("no customer id"));
        let postage = rec(&[
            "489434",
            "POST",
            "1",
            "2009-12-01 07:45:00",
            "18.00",
            "13085",
        ]);
        assert_eq!(plan.skip_reason(&postage), Some("not a product"));
    }

    #[test]
    fn a_missing_header_column_is_named() {
        let m = Mapping::parse("m.toml", RETAIL).unwrap();
        let header = vec!["InvoiceNo".to_owned(), "StockCode".to_owned()];
        let err = m.check_header(Entity::Orders, &header).unwrap_err();
        assert!(err.contains("`Quantity` (for quantity)"), "{err}");
        assert!(err.contains("`CustomerID` (for customer_id)"), "{err}");
    }

    #[test]
    fn problems_have_lines() {
        let bad = "entity = \"order\"\ntimezone = \"Mars/Base\"\n[columns]\nqty = \"Quantity\"\n[[skip]]\nreason = \"x\"\ncolumn = \"A\"\n[[skip]]\nreason = \"y\"\ncolumn = \"B\"\nmatches = \"(\"\n";
        let problems: Vec<String> = Mapping::parse("m.toml", bad)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(
            problems[0].starts_with("m.toml:1: unknown entity `order`"),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("m.toml:2: unknown time zone"),
            "{problems:?}"
        );
        assert!(
            problems[2].starts_with("m.toml:4: `qty` is not a canonical column"),
            "{problems:?}"
        );
        assert!(
            problems[3].starts_with("m.toml:5: skip rule needs one test"),
            "{problems:?}"
        );
        assert!(
            problems[4].contains("bad regular expression"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_nul_in_a_constant_or_derived_value_is_refused_at_its_line() {
        let p = Mapping::parse(
            "m.toml",
            "entity = \"customers\"\n[constants]\nregion = \"north\\u0000\"\n\
             [derive.gender]\nfrom = \"g\"\nprefixes = { f = \"female\" }\ndefault = \"\\u0000\"\n",
        )
        .unwrap_err();
        let got: Vec<String> = p.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "m.toml:3: constant `region` holds a NUL character",
                "m.toml:4: derived `gender` holds a NUL character",
            ]
        );
    }
}
