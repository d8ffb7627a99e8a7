//! The synthetic shop behind `patron demo`: customers, products, orders, browsing events and
//! reviews, written as files under an inbox folder for the pipelines to ingest.
//!
//! This module owns the shape of that data: the file layout, the canonical columns, the value
//! rules and the dirty rows (a small, counted share of broken or odd lines, so that ingestion has
//! something real to cope with). Every value is drawn from seeded ChaCha streams and written as
//! soon as it is drawn, so the same [`ShopSpec`] always gives byte-identical files, and memory
//! stays flat in the number of customers: only the product catalogue (a few bytes per product)
//! and one customer's rows at a time are held.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs::File,
    io::{BufWriter, Write as _},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};
use chrono::{Datelike as _, NaiveDate, NaiveTime};
use rand::{Rng as _, SeedableRng as _, seq::SliceRandom as _};
use rand_chacha::ChaCha8Rng;

/// What to generate.
#[derive(Debug, Clone)]
pub struct ShopSpec {
    /// Number of customers (default 10 000).
    pub customers: usize,
    /// Number of products (default 100 000).
    pub products: usize,
    /// Mean orders per customer (default 10). Orders have about 1.1 lines each, and the number
    /// of orders is drawn so that order lines ≈ customers × this.
    pub orders_per_customer: usize,
    /// Seed of every random stream (default 42).
    pub seed: u64,
    /// The last day of data (the CLI passes today).
    pub end: NaiveDate,
    /// Share of each entity's rows written broken, per kind of breakage (default 0.005). Clamped
    /// to 0..=0.1; 0 gives clean files.
    pub dirty_fraction: f64,
}

/// The end date of the default spec.
const DEFAULT_END: NaiveDate = match NaiveDate::from_ymd_opt(2026, 11, 28) {
    Some(date) => date,
    None => NaiveDate::MIN,
};

impl Default for ShopSpec {
    fn default() -> Self {
        Self {
            customers: 10_000,
            products: 100_000,
            orders_per_customer: 10,
            seed: 42,
            end: DEFAULT_END,
            dirty_fraction: 0.005,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct ShopSummary {
    // The counts are of good rows only: dirty rows and repeated lines are not in them.
    pub customers: u64,
    pub products: u64,
    /// Order lines, the "anomaly" and "before signup" ones included (they are readable).
    pub order_lines: u64,
    /// Orders with at least one good line.
    pub orders: u64,
    pub events: u64,
    pub reviews: u64,
    /// dirty rows written, by kind ("wrong column count", "bad number", "unparseable date", "missing id", "invalid UTF-8")
    ///
    /// Also the odd but readable order lines: "exact duplicate" (not counted in `order_lines`),
    /// "anomaly" (quantity ≤ 0 or price 0) and "before signup". Every key is present, even at 0.
    pub dirty: BTreeMap<String, u64>,
    /// customers per latent behaviour ("loyal", "regular", "occasional", "churning")
    pub behaviours: BTreeMap<String, u64>,
}

/// Writes the shop as files under `inbox` and returns what was written. Same spec → byte-identical files.
///
/// Files: `customers/customers.csv`, `products/products.csv`, `orders/orders.csv`,
/// `events/events.csv` and `reviews/reviews.jsonl`, each folder created when missing.
pub fn generate(spec: &ShopSpec, inbox: &Path) -> Result<ShopSummary> {
    let rate = if spec.dirty_fraction.is_finite() {
        spec.dirty_fraction.clamp(0.0, MAX_DIRTY)
    } else {
        0.0
    };
    let year = spec.end.year();
    let mut summary = ShopSummary::default();
    for label in DIRTY_LABELS {
        summary.dirty.insert(label.to_string(), 0);
    }

    let mut products = Table::create(inbox, &PRODUCTS, stream(spec.seed, 11), rate, year)?;
    let catalog = write_products(spec.products, &mut products, &mut stream(spec.seed, 1))?;
    summary.products = products.finish(&mut summary.dirty)?;

    let mut shop = Shop::open(spec, inbox, catalog, rate)?;
    for index in 0..spec.customers {
        shop.customer(index)?;
    }
    shop.finish(summary)
}

// ---------------------------------------------------------------------------------------------
// Shared constants and small helpers
// ---------------------------------------------------------------------------------------------

const DAY: i64 = 86_400;
/// Signups are spread over the three years before the end.
const SIGNUP_SPAN: i64 = 3 * 365 * DAY;
/// Mean lines per order: most orders have a single line.
const LINES_PER_ORDER: f64 = 1.1;
/// Lines per order are capped so one unlucky draw cannot make a huge basket.
const MAX_LINES_PER_ORDER: usize = 8;
/// Reviews per customer wanted at the default volume (about 2 per buyer).
const REVIEWS_PER_CUSTOMER: f64 = 2.0;
/// Past this dirty fraction the broken rows of the five kinds would crowd out good ones.
const MAX_DIRTY: f64 = 0.1;
/// Each kind of rare row appears within this many rows, so short files still have one.
const FIRST_WITHIN: f64 = 150.0;

const DUPLICATE: &str = "exact duplicate";
const ANOMALY: &str = "anomaly";
const BEFORE_SIGNUP: &str = "before signup";
/// Every key of [`ShopSummary::dirty`], present even when zero so the summary has one shape.
const DIRTY_LABELS: [&str; 8] = [
    "wrong column count",
    "bad number",
    "unparseable date",
    "missing id",
    "invalid UTF-8",
    DUPLICATE,
    ANOMALY,
    BEFORE_SIGNUP,
];

/// One independent random stream per purpose, so each is deterministic on its own.
fn stream(seed: u64, id: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(id);
    rng
}

/// Draws an index in proportion to `weights` (zero weights are never drawn).
fn weighted(rng: &mut ChaCha8Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut r = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if r < *w {
            return i;
        }
        r -= w;
    }
    weights.len().saturating_sub(1)
}

/// A uniformly drawn item; the word lists it is used on are static and never empty.
fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// A uniformly drawn word of a static, non-empty list.
fn word(rng: &mut ChaCha8Rng, words: &[&'static str]) -> &'static str {
    words[rng.random_range(0..words.len())]
}

/// Two different indices below `n` (the same one when `n` is 1).
fn two_of(rng: &mut ChaCha8Rng, n: usize) -> (usize, usize) {
    let first = rng.random_range(0..n);
    if n < 2 {
        return (first, first);
    }
    (first, (first + rng.random_range(1..n)) % n)
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // 1 - u is in (0, 1], so the logarithm is finite.
    let u1 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A Poisson draw: exact for small means, normal approximation for large ones.
fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> u64 {
    if mean.is_nan() || mean <= 0.0 {
        return 0;
    }
    if mean >= 30.0 {
        return (mean + mean.sqrt() * normal(rng)).round().max(0.0) as u64;
    }
    let limit = (-mean).exp();
    let mut product = rng.random::<f64>();
    let mut k = 0;
    while product > limit {
        product *= rng.random::<f64>();
        k += 1;
    }
    k
}

/// A rank in `0..n` drawn Zipf-like (exponent 1.05), by inverting the continuous CDF: O(1) and
/// table-free, which keeps large catalogues cheap.
fn zipf(rng: &mut ChaCha8Rng, n: usize) -> Option<usize> {
    const ONE_MINUS_S: f64 = 1.0 - 1.05;
    if n == 0 {
        return None;
    }
    let top = (n as f64 + 1.0).powf(ONE_MINUS_S);
    let u: f64 = rng.random();
    let x = (1.0 + u * (top - 1.0)).powf(1.0 / ONE_MINUS_S);
    Some((x as usize).saturating_sub(1).min(n - 1))
}

/// `1234` cents → `12.34`.
fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Timestamps in mixed shapes
// ---------------------------------------------------------------------------------------------

/// Weights of the shapes Z, offset, naive, date-only and epoch for most timestamps…
const SHAPES: [f64; 5] = [0.3, 0.25, 0.25, 0.0, 0.2];
/// …and for `signup_at`, the only column that may lose its time of day.
const SIGNUP_SHAPES: [f64; 5] = [0.25, 0.2, 0.2, 0.15, 0.2];
/// UTC offsets (minutes, text) the offset shape is written with.
const OFFSETS: [(i64, &str); 8] = [
    (480, "+08:00"),
    (-300, "-05:00"),
    (60, "+01:00"),
    (330, "+05:30"),
    (-480, "-08:00"),
    (540, "+09:00"),
    (-180, "-03:00"),
    (0, "+00:00"),
];

/// UTC calendar fields of a second since the epoch.
struct Civil {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
}

/// Splits seconds since the epoch into UTC calendar fields; infallible and cheap, unlike a trip
/// through chrono's `Option`-returning constructors for every row.
fn civil(at: i64) -> Civil {
    let days = at.div_euclid(DAY);
    let secs = at.rem_euclid(DAY);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    Civil {
        year: yoe + era * 400 + i64::from(month <= 2),
        month,
        day,
        hour: secs / 3_600,
        minute: secs / 60 % 60,
        second: secs % 60,
    }
}

/// `YYYY-MM-DD` + `sep` + `hh:mm:ss` of `at` in UTC.
fn iso(at: i64, sep: char) -> String {
    let c = civil(at);
    format!(
        "{:04}-{:02}-{:02}{sep}{:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// `at` written in one of the shapes, drawn per row with `weights` (see [`SHAPES`]).
fn timestamp(rng: &mut ChaCha8Rng, at: i64, weights: &[f64; 5]) -> String {
    match weighted(rng, weights) {
        0 => format!("{}Z", iso(at, 'T')),
        1 => {
            let (minutes, text) = *pick(rng, &OFFSETS);
            format!("{}{text}", iso(at + minutes * 60, 'T'))
        }
        2 => iso(at, ' '),
        3 => {
            let c = civil(at);
            format!("{:04}/{:02}/{:02}", c.year, c.month, c.day)
        }
        _ => at.to_string(),
    }
}

/// The last second of `date`, UTC.
fn end_of(date: NaiveDate) -> i64 {
    date.and_time(NaiveTime::MIN).and_utc().timestamp() + DAY - 1
}

// ---------------------------------------------------------------------------------------------
// Files: good rows, broken rows, rare rows
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Jsonl,
}

/// One file's layout, and which columns the broken rows break.
#[derive(Debug)]
struct Schema {
    dir: &'static str,
    file: &'static str,
    format: Format,
    columns: &'static [&'static str],
    id: usize,
    /// Numeric columns: broken by "bad number", and written as JSON numbers in JSON Lines.
    numbers: &'static [usize],
    date: Option<usize>,
    /// The free-text column that gets the invalid UTF-8.
    text: usize,
}

const CUSTOMERS: Schema = Schema {
    dir: "customers",
    file: "customers.csv",
    format: Format::Csv,
    columns: &["customer_id", "signup_at", "birth_year", "gender", "region"],
    id: 0,
    numbers: &[2],
    date: Some(1),
    text: 4,
};

const PRODUCTS: Schema = Schema {
    dir: "products",
    file: "products.csv",
    format: Format::Csv,
    columns: &["product_id", "title", "description", "category", "price"],
    id: 0,
    numbers: &[4],
    date: None,
    text: 1,
};

const ORDERS: Schema = Schema {
    dir: "orders",
    file: "orders.csv",
    format: Format::Csv,
    columns: &[
        "order_id",
        "customer_id",
        "product_id",
        "quantity",
        "unit_price",
        "ordered_at",
        "status",
    ],
    id: 0,
    numbers: &[3, 4],
    date: Some(5),
    text: 6,
};

const EVENTS: Schema = Schema {
    dir: "events",
    file: "events.csv",
    format: Format::Csv,
    columns: &[
        "event_id",
        "customer_id",
        "product_id",
        "kind",
        "occurred_at",
        "duration_s",
    ],
    id: 0,
    numbers: &[5],
    date: Some(4),
    text: 3,
};

const REVIEWS: Schema = Schema {
    dir: "reviews",
    file: "reviews.jsonl",
    format: Format::Jsonl,
    columns: &[
        "review_id",
        "customer_id",
        "product_id",
        "rating",
        "text",
        "created_at",
    ],
    id: 0,
    numbers: &[3],
    date: Some(5),
    text: 4,
};

/// The ways a dirty row is broken; each makes the row unreadable for that one reason only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Broken {
    Columns,
    Number,
    Date,
    Id,
    Utf8,
}

impl Broken {
    const ALL: [Self; 5] = [
        Self::Columns,
        Self::Number,
        Self::Date,
        Self::Id,
        Self::Utf8,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Columns => "wrong column count",
            Self::Number => "bad number",
            Self::Date => "unparseable date",
            Self::Id => "missing id",
            Self::Utf8 => "invalid UTF-8",
        }
    }
}

/// Places rare rows through a stream whose length is not known in advance: the first early (so a
/// short stream still has one), then about every `1 / rate` rows, jittered so that they line up
/// with nothing.
#[derive(Debug, Clone, Copy)]
struct Every {
    next: f64,
    gap: f64,
}

impl Every {
    fn new(rate: f64, rng: &mut ChaCha8Rng) -> Self {
        if rate.is_nan() || rate <= 0.0 {
            return Self {
                next: f64::INFINITY,
                gap: f64::INFINITY,
            };
        }
        let gap = 1.0 / rate;
        Self {
            next: rng.random::<f64>() * gap.min(FIRST_WITHIN),
            gap,
        }
    }

    /// Whether row `pos` (counted from 0) is a rare one; a hit moves on to the next slot, a miss
    /// leaves a due slot for the next row.
    fn hit(&mut self, pos: u64, rng: &mut ChaCha8Rng) -> bool {
        if (pos as f64) < self.next {
            return false;
        }
        self.next += self.gap * rng.random_range(0.5..1.5);
        true
    }
}

/// Where a file's lines go. CSV is quoted by the csv crate; JSON Lines are rendered here, one
/// line at a time, so that a broken line can be cut short.
enum Sink {
    Csv(Box<csv::Writer<BufWriter<File>>>),
    Jsonl { out: BufWriter<File>, line: Vec<u8> },
}

/// One output file. Fields are bytes, not strings, so broken rows can carry invalid UTF-8.
struct Table {
    schema: &'static Schema,
    path: PathBuf,
    sink: Sink,
    rng: ChaCha8Rng,
    broken: [Every; 5],
    year: i32,
    rows: u64,
    good: u64,
    dirty: BTreeMap<&'static str, u64>,
}

impl Table {
    fn create(
        inbox: &Path,
        schema: &'static Schema,
        mut rng: ChaCha8Rng,
        rate: f64,
        year: i32,
    ) -> Result<Self> {
        let dir = inbox.join(schema.dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(schema.file);
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let out = BufWriter::with_capacity(1 << 16, file);
        let sink = match schema.format {
            // Flexible: the "wrong column count" rows are written through the same writer.
            Format::Csv => Sink::Csv(Box::new(
                csv::WriterBuilder::new().flexible(true).from_writer(out),
            )),
            Format::Jsonl => Sink::Jsonl {
                out,
                line: Vec::new(),
            },
        };
        // A file without a date column cannot get an unparseable date.
        let broken = Broken::ALL.map(|kind| {
            let applies = kind != Broken::Date || schema.date.is_some();
            Every::new(if applies { rate } else { 0.0 }, &mut rng)
        });
        let mut table = Self {
            schema,
            path,
            sink,
            rng,
            broken,
            year,
            rows: 0,
            good: 0,
            dirty: BTreeMap::new(),
        };
        if schema.format == Format::Csv {
            table.put(schema.columns, false)?;
        }
        Ok(table)
    }

    /// The fate of the next row: `Some(kind)` when it is due to be written broken.
    fn fate(&mut self) -> Option<Broken> {
        let pos = self.rows;
        self.rows += 1;
        let rng = &mut self.rng;
        Broken::ALL
            .into_iter()
            .zip(self.broken.iter_mut())
            .find_map(|(kind, every)| every.hit(pos, rng).then_some(kind))
    }

    fn write_good(&mut self, row: &[String]) -> Result<()> {
        self.put(row, false)?;
        self.good += 1;
        Ok(())
    }

    /// Writes `row` once more (rendering is deterministic, so the line is byte-identical to the
    /// one before), counted under `label`.
    fn repeat(&mut self, row: &[String], label: &'static str) -> Result<()> {
        self.put(row, false)?;
        self.count(label);
        Ok(())
    }

    fn count(&mut self, label: &'static str) {
        *self.dirty.entry(label).or_insert(0) += 1;
    }

    /// Writes `row` broken in the way `kind` says, and nothing else wrong with it.
    fn write_broken(&mut self, kind: Broken, row: &[String]) -> Result<()> {
        let schema = self.schema;
        let mut fields: Vec<Vec<u8>> = row.iter().map(|f| f.as_bytes().to_vec()).collect();
        match kind {
            Broken::Columns => {
                // JSON Lines have no columns to miss: those lines are cut short instead.
                if schema.format == Format::Csv {
                    if self.rng.random_bool(0.5) {
                        fields.pop();
                    } else if let Some(last) = fields.last().cloned() {
                        fields.push(last);
                    }
                }
            }
            Broken::Number => {
                let column = *pick(&mut self.rng, schema.numbers);
                if let Some(field) = fields.get_mut(column) {
                    *field = bad_number(schema.columns[column], field, &mut self.rng).into_bytes();
                }
            }
            Broken::Date => {
                if let Some(field) = schema.date.and_then(|d| fields.get_mut(d)) {
                    *field = bad_date(self.year, &mut self.rng).into_bytes();
                }
            }
            Broken::Id => {
                if let Some(field) = fields.get_mut(schema.id) {
                    field.clear();
                }
            }
            Broken::Utf8 => {
                if let Some(field) = fields.get_mut(schema.text) {
                    let at = char_boundary(field, field.len() / 2);
                    field.splice(at..at, [0xFF, 0xFE]);
                }
            }
        }
        self.put(&fields, kind == Broken::Columns)?;
        self.count(kind.label());
        Ok(())
    }

    /// Writes one line; `truncate` cuts a JSON line short (see [`truncate_json`]).
    fn put<T: AsRef<[u8]>>(&mut self, fields: &[T], truncate: bool) -> Result<()> {
        let written = match &mut self.sink {
            Sink::Csv(writer) => writer.write_record(fields).map_err(anyhow::Error::from),
            Sink::Jsonl { out, line } => {
                line.clear();
                json_line(line, self.schema, fields);
                if truncate {
                    truncate_json(line, &mut self.rng);
                }
                out.write_all(line).map_err(anyhow::Error::from)
            }
        };
        written.with_context(|| format!("writing {}", self.path.display()))
    }

    /// Flushes the file, adds its dirty counts to `dirty` and returns its number of good rows.
    fn finish(self, dirty: &mut BTreeMap<String, u64>) -> Result<u64> {
        let flushed = match self.sink {
            Sink::Csv(mut writer) => writer.flush(),
            Sink::Jsonl { mut out, .. } => out.flush(),
        };
        flushed.with_context(|| format!("writing {}", self.path.display()))?;
        for (label, n) in self.dirty {
            *dirty.entry(label.to_string()).or_insert(0) += n;
        }
        Ok(self.good)
    }
}

/// A value that no number parser accepts, in the spirit of the column.
fn bad_number(column: &str, current: &[u8], rng: &mut ChaCha8Rng) -> String {
    let words: &[&str] = match column {
        "quantity" => &["two", "three", "one"],
        "rating" => &["five", "four", "one"],
        "duration_s" => &["abc", "ten", "?"],
        "birth_year" => &["19x5", "nineteen", "198O"],
        // Prices: a decimal comma plus junk, `12.50` → `12,5x`.
        _ => {
            let text = String::from_utf8_lossy(current);
            let (units, cents) = text.split_once('.').unwrap_or((&text, "0"));
            let first = cents.chars().next().unwrap_or('0');
            return format!("{units},{first}x");
        }
    };
    pick(rng, words).to_string()
}

/// A value that no timestamp parser accepts.
fn bad_date(year: i32, rng: &mut ChaCha8Rng) -> String {
    match rng.random_range(0..5) {
        0 => format!("31/31/{year}"),
        1 => "yesterday".to_string(),
        2 => format!("{year}-13-45 25:61:00"),
        3 => format!("{year}-02-30T10:00:00Z"),
        _ => "not a date".to_string(),
    }
}

/// The nearest UTF-8 character boundary at or before `at`.
fn char_boundary(bytes: &[u8], mut at: usize) -> usize {
    while at > 0 && bytes.get(at).is_some_and(|b| b & 0xC0 == 0x80) {
        at -= 1;
    }
    at
}

/// Cuts a rendered JSON line somewhere in its middle (on a character boundary, so it stays valid
/// UTF-8): an object that never closes is invalid JSON whatever the cut.
fn truncate_json(line: &mut Vec<u8>, rng: &mut ChaCha8Rng) {
    let len = line.len().saturating_sub(1);
    let cut = char_boundary(line, rng.random_range(len / 3..=len * 2 / 3));
    line.truncate(cut.max(1));
    line.push(b'\n');
}

/// One JSON Lines object: numeric columns as JSON numbers when they are plain digits, everything
/// else as strings.
fn json_line<T: AsRef<[u8]>>(out: &mut Vec<u8>, schema: &Schema, fields: &[T]) {
    out.push(b'{');
    for (i, (key, value)) in schema.columns.iter().zip(fields).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_string(out, key.as_bytes());
        out.push(b':');
        let value = value.as_ref();
        let digits = !value.is_empty() && value.iter().all(u8::is_ascii_digit);
        if schema.numbers.contains(&i) && digits {
            out.extend_from_slice(value);
        } else {
            json_string(out, value);
        }
    }
    out.extend_from_slice(b"}\n");
}

/// A JSON string. Bytes that are not UTF-8 are copied raw on purpose: that is how the
/// "invalid UTF-8" rows of a JSON Lines file are made.
fn json_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for chunk in bytes.utf8_chunks() {
        for &b in chunk.valid().as_bytes() {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0..0x20 => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
                _ => out.push(b),
            }
        }
        out.extend_from_slice(chunk.invalid());
    }
    out.push(b'"');
}

// ---------------------------------------------------------------------------------------------
// Products
// ---------------------------------------------------------------------------------------------

/// Pairs of words: English, Chinese.
type Words = &'static [(&'static str, &'static str)];

/// A kind of product, with the materials and sizes that fit it (so that titles do not mix a
/// kettle with shoe sizes).
struct Noun {
    en: &'static str,
    zh: &'static str,
    materials: Words,
    specs: Words,
}

const fn noun(en: &'static str, zh: &'static str, materials: Words, specs: Words) -> Noun {
    Noun {
        en,
        zh,
        materials,
        specs,
    }
}

/// A product category and the words its titles, descriptions and reviews are built from. Every
/// list holds English and Chinese side by side, so one drawn item reads the same in both.
struct Category {
    name: &'static str,
    weight: f64,
    /// Price range in cents; prices are drawn log-uniformly within it.
    price: (f64, f64),
    nouns: &'static [Noun],
    adjectives: Words,
    features: Words,
    uses: Words,
}

// One line per noun reads better than rustfmt's one line per word here.
#[rustfmt::skip]
const CATEGORIES: [Category; 12] = [
    Category {
        name: "home",
        weight: 10.0,
        price: (300.0, 25_000.0),
        nouns: &[
            noun("Throw Pillow", "抱枕", &[("Cotton", "纯棉"), ("Velvet", "丝绒"), ("Linen", "亚麻")], &[("45 x 45 cm", "45x45厘米"), ("Set of 2", "2个装")]),
            noun("Table Lamp", "台灯", &[("Wooden", "实木"), ("Ceramic", "陶瓷"), ("Metal", "金属")], &[("LED", "LED"), ("Warm White", "暖白光")]),
            noun("Storage Box", "收纳盒", &[("Fabric", "布艺"), ("Plastic", "塑料"), ("Bamboo", "竹制")], &[("Set of 3", "3个装"), ("30 L", "30升")]),
            noun("Wall Clock", "挂钟", &[("Wooden", "实木"), ("Metal", "金属")], &[("30 cm", "30厘米"), ("Silent", "静音")]),
            noun("Bath Towel", "浴巾", &[("Cotton", "纯棉"), ("Bamboo Fibre", "竹纤维")], &[("70 x 140 cm", "70x140厘米"), ("Set of 2", "2条装")]),
            noun("Curtain", "窗帘", &[("Linen", "亚麻"), ("Velvet", "丝绒"), ("Polyester", "涤纶")], &[("Blackout", "全遮光"), ("2 Panels", "2片装")]),
            noun("Scented Candle", "香薰蜡烛", &[("Soy Wax", "大豆蜡"), ("Beeswax", "蜂蜡")], &[("200 g", "200克"), ("Lavender", "薰衣草味")]),
            noun("Photo Frame", "相框", &[("Wooden", "实木"), ("Glass", "玻璃"), ("Metal", "金属")], &[("A4", "A4"), ("6 inch", "6寸")]),
        ],
        adjectives: &[("Cozy", "舒适"), ("Modern", "现代"), ("Minimalist", "简约"), ("Nordic", "北欧风"), ("Classic", "经典")],
        features: &[("soft to the touch", "手感柔软"), ("easy to clean", "易清洗"), ("fade resistant", "不易褪色"), ("fits any room", "百搭各种风格")],
        uses: &[("the living room", "客厅"), ("the bedroom", "卧室"), ("gifting", "送礼"), ("small apartments", "小户型")],
    },
    Category {
        name: "kitchen",
        weight: 10.0,
        price: (250.0, 30_000.0),
        nouns: &[
            noun("Kettle", "电水壶", &[("Stainless Steel", "不锈钢"), ("Glass", "玻璃")], &[("1.7 L", "1.7升"), ("1500 W", "1500瓦")]),
            noun("Frying Pan", "炒锅", &[("Cast Iron", "铸铁"), ("Non-Stick", "不粘")], &[("28 cm", "28厘米"), ("32 cm", "32厘米")]),
            noun("Chef Knife", "菜刀", &[("Stainless Steel", "不锈钢"), ("Damascus Steel", "大马士革钢")], &[("20 cm", "20厘米"), ("with Sheath", "带刀套")]),
            noun("Cutting Board", "砧板", &[("Bamboo", "竹制"), ("Wooden", "实木"), ("Plastic", "塑料")], &[("Large", "大号"), ("Set of 3", "3件套")]),
            noun("Vacuum Flask", "保温杯", &[("Stainless Steel", "不锈钢"), ("Titanium", "钛")], &[("500 ml", "500毫升"), ("350 ml", "350毫升")]),
            noun("Blender", "搅拌机", &[("Glass", "玻璃"), ("Stainless Steel", "不锈钢")], &[("1.5 L", "1.5升"), ("800 W", "800瓦")]),
            noun("Rice Cooker", "电饭煲", &[("Ceramic-Coated", "陶瓷内胆"), ("Stainless Steel", "不锈钢")], &[("3 L", "3升"), ("5 L", "5升")]),
            noun("Mixing Bowl", "搅拌碗", &[("Stainless Steel", "不锈钢"), ("Glass", "玻璃"), ("Ceramic", "陶瓷")], &[("Set of 3", "3件套"), ("24 cm", "24厘米")]),
        ],
        adjectives: &[("Professional", "专业"), ("Compact", "小巧"), ("Heavy-Duty", "加厚"), ("Household", "家用"), ("Premium", "高端")],
        features: &[("dishwasher safe", "可洗碗机清洗"), ("easy to clean", "易清洗"), ("BPA free", "不含双酚A"), ("heat resistant up to 220°C", "耐热220°C")],
        uses: &[("everyday cooking", "日常烹饪"), ("family meals", "家庭聚餐"), ("the office", "办公室"), ("camping", "露营")],
    },
    Category {
        name: "garden",
        weight: 6.0,
        price: (200.0, 15_000.0),
        nouns: &[
            noun("Garden Hose", "浇花水管", &[("Rubber", "橡胶"), ("Expandable", "伸缩")], &[("15 m", "15米"), ("30 m", "30米")]),
            noun("Pruning Shears", "修枝剪", &[("Steel", "钢制"), ("Carbon Steel", "碳钢")], &[("20 cm", "20厘米"), ("Bypass", "剪刀式")]),
            noun("Flower Pot", "花盆", &[("Terracotta", "陶土"), ("Ceramic", "陶瓷"), ("Plastic", "塑料")], &[("20 cm", "20厘米"), ("Pack of 6", "6个装")]),
            noun("Solar Lamp", "太阳能灯", &[("Stainless Steel", "不锈钢"), ("Plastic", "塑料")], &[("Pack of 4", "4个装"), ("Warm White", "暖白光")]),
            noun("Watering Can", "洒水壶", &[("Plastic", "塑料"), ("Galvanised Steel", "镀锌钢")], &[("5 L", "5升"), ("2 L", "2升")]),
            noun("Seed Kit", "种子套装", &[("Herb", "香草"), ("Vegetable", "蔬菜")], &[("12 Varieties", "12种"), ("Starter Pack", "入门装")]),
            noun("Garden Gloves", "园艺手套", &[("Leather", "真皮"), ("Nitrile", "丁腈")], &[("Size M", "M码"), ("3 Pairs", "3双装")]),
        ],
        adjectives: &[("Durable", "耐用"), ("Weatherproof", "防水"), ("Lightweight", "轻便"), ("Ergonomic", "人体工学")],
        features: &[("UV resistant", "抗紫外线"), ("rust proof", "防锈"), ("easy to store", "方便收纳")],
        uses: &[("balconies", "阳台"), ("vegetable gardens", "菜园"), ("indoor plants", "室内绿植")],
    },
    Category {
        name: "toys",
        weight: 7.0,
        price: (300.0, 12_000.0),
        nouns: &[
            noun("Building Blocks", "积木", &[("Wooden", "木质"), ("Plastic", "塑料")], &[("100 Pieces", "100块"), ("500 Pieces", "500块")]),
            noun("Plush Bear", "毛绒熊", &[("Plush", "毛绒"), ("Organic Cotton", "有机棉")], &[("30 cm", "30厘米"), ("60 cm", "60厘米")]),
            noun("Puzzle", "拼图", &[("Cardboard", "纸质"), ("Wooden", "木质")], &[("1000 Pieces", "1000片"), ("500 Pieces", "500片")]),
            noun("Toy Car", "玩具车", &[("Die-Cast", "合金"), ("Plastic", "塑料")], &[("Remote Control", "遥控"), ("Set of 4", "4辆装")]),
            noun("Kite", "风筝", &[("Nylon", "尼龙"), ("Polyester", "涤纶")], &[("1.5 m", "1.5米"), ("with String", "带线轮")]),
            noun("Board Game", "桌游", &[("Card", "卡牌"), ("Strategy", "策略")], &[("2-6 Players", "2-6人"), ("Ages 8+", "8岁以上")]),
            noun("Doll", "娃娃", &[("Cloth", "布艺"), ("Vinyl", "搪胶")], &[("30 cm", "30厘米"), ("with Outfits", "含换装")]),
        ],
        adjectives: &[("Colourful", "彩色"), ("Educational", "益智"), ("Classic", "经典"), ("Mini", "迷你")],
        features: &[("safe non-toxic paint", "环保无毒"), ("rounded edges", "圆角设计"), ("develops creativity", "锻炼动手能力")],
        uses: &[("toddlers", "幼儿"), ("family game nights", "家庭游戏"), ("birthday gifts", "生日礼物")],
    },
    Category {
        name: "books",
        weight: 9.0,
        price: (400.0, 6_000.0),
        nouns: &[
            noun("Cookbook", "菜谱", &[("Hardcover", "精装"), ("Paperback", "平装")], &[("2nd Edition", "第二版"), ("320 Pages", "320页")]),
            noun("Novel", "小说", &[("Hardcover", "精装"), ("Paperback", "平装")], &[("Vol. 1", "第一卷"), ("2nd Edition", "第二版")]),
            noun("Travel Guide", "旅行指南", &[("Paperback", "平装"), ("Pocket-Size", "口袋版")], &[("Updated Edition", "最新版"), ("with Maps", "附地图")]),
            noun("Picture Book", "儿童绘本", &[("Hardcover", "精装"), ("Board-Book", "纸板书")], &[("Ages 3+", "3岁以上"), ("Set of 5", "5册")]),
            noun("History Book", "历史书", &[("Hardcover", "精装"), ("Paperback", "平装")], &[("Vol. 2", "第二卷"), ("480 Pages", "480页")]),
            noun("Poetry Collection", "诗集", &[("Hardcover", "精装"), ("Paperback", "平装")], &[("Bilingual", "双语版"), ("Selected", "精选")]),
            noun("Study Guide", "学习指南", &[("Paperback", "平装"), ("Spiral-Bound", "线圈装")], &[("with Answers", "附答案"), ("2nd Edition", "第二版")]),
        ],
        adjectives: &[("Bestselling", "畅销"), ("Illustrated", "插图"), ("Classic", "经典"), ("Award-Winning", "获奖")],
        features: &[("beautifully illustrated", "插图精美"), ("easy to read", "通俗易懂"), ("printed on recycled paper", "环保纸印刷")],
        uses: &[("long trips", "长途旅行"), ("bedtime reading", "睡前阅读"), ("students", "学生")],
    },
    Category {
        name: "beauty",
        weight: 8.0,
        price: (300.0, 9_000.0),
        nouns: &[
            noun("Face Cream", "面霜", &[("Hyaluronic", "玻尿酸"), ("Vitamin C", "维生素C"), ("Aloe Vera", "芦荟")], &[("50 ml", "50毫升"), ("30 ml", "30毫升")]),
            noun("Lipstick", "口红", &[("Matte", "哑光"), ("Satin", "缎光")], &[("Red", "正红色"), ("Nude", "裸色")]),
            noun("Shampoo", "洗发水", &[("Argan Oil", "摩洛哥坚果油"), ("Tea Tree", "茶树")], &[("400 ml", "400毫升"), ("750 ml", "750毫升")]),
            noun("Sunscreen", "防晒霜", &[("Mineral", "物理"), ("Water-Resistant", "防水")], &[("SPF 50", "SPF50"), ("60 ml", "60毫升")]),
            noun("Face Mask", "面膜", &[("Sheet", "贴片"), ("Clay", "泥膜")], &[("Pack of 10", "10片装"), ("100 g", "100克")]),
            noun("Hand Cream", "护手霜", &[("Shea Butter", "乳木果"), ("Rose", "玫瑰")], &[("75 ml", "75毫升"), ("Set of 3", "3支装")]),
            noun("Perfume", "香水", &[("Floral", "花香"), ("Woody", "木质香")], &[("50 ml", "50毫升"), ("100 ml", "100毫升")]),
        ],
        adjectives: &[("Hydrating", "保湿"), ("Gentle", "温和"), ("Natural", "天然"), ("Long-Lasting", "持久")],
        features: &[("suitable for sensitive skin", "敏感肌可用"), ("fragrance free", "无香精"), ("absorbs quickly", "吸收快")],
        uses: &[("daily care", "日常护理"), ("dry skin", "干性皮肤"), ("travel", "旅行")],
    },
    Category {
        name: "sports",
        weight: 8.0,
        price: (500.0, 25_000.0),
        nouns: &[
            noun("Yoga Mat", "瑜伽垫", &[("TPE", "TPE"), ("Natural Rubber", "天然橡胶")], &[("6 mm", "6毫米"), ("183 x 61 cm", "183x61厘米")]),
            noun("Running Shoes", "跑鞋", &[("Mesh", "网面"), ("Knit", "飞织")], &[("Size 42", "42码"), ("Size 38", "38码")]),
            noun("Dumbbell", "哑铃", &[("Cast Iron", "铸铁"), ("Rubber-Coated", "包胶")], &[("2 x 5 kg", "5公斤x2"), ("10 kg", "10公斤")]),
            noun("Jump Rope", "跳绳", &[("Steel Cable", "钢丝"), ("PVC", "PVC")], &[("3 m", "3米"), ("with Counter", "带计数")]),
            noun("Sports Bottle", "运动水壶", &[("Tritan", "Tritan"), ("Stainless Steel", "不锈钢")], &[("750 ml", "750毫升"), ("1 L", "1升")]),
            noun("Tennis Racket", "网球拍", &[("Carbon Fibre", "碳纤维"), ("Aluminium", "铝合金")], &[("Grip 2", "2号柄"), ("with Cover", "含拍套")]),
            noun("Cycling Gloves", "骑行手套", &[("Gel-Padded", "硅胶垫"), ("Mesh", "网面")], &[("Size L", "L码"), ("Half-Finger", "半指")]),
        ],
        adjectives: &[("Non-Slip", "防滑"), ("Breathable", "透气"), ("Adjustable", "可调节"), ("Pro", "专业")],
        features: &[("sweat resistant", "防汗"), ("lightweight design", "轻量化设计"), ("1-year warranty", "保修一年")],
        uses: &[("home workouts", "居家健身"), ("the gym", "健身房"), ("outdoor training", "户外训练")],
    },
    Category {
        name: "electronics",
        weight: 9.0,
        price: (800.0, 90_000.0),
        nouns: &[
            noun("Wireless Earbuds", "无线耳机", &[("In-Ear", "入耳式"), ("Open-Ear", "开放式")], &[("Bluetooth 5.3", "蓝牙5.3"), ("30 h Battery", "续航30小时")]),
            noun("Power Bank", "充电宝", &[("Aluminium", "铝合金"), ("Magnetic", "磁吸")], &[("10000 mAh", "10000毫安"), ("20000 mAh", "20000毫安")]),
            noun("USB-C Cable", "数据线", &[("Braided", "编织"), ("Silicone", "硅胶")], &[("2 m", "2米"), ("100 W", "100瓦")]),
            noun("Bluetooth Speaker", "蓝牙音箱", &[("Waterproof", "防水"), ("Fabric", "布面")], &[("20 W", "20瓦"), ("IPX7", "IPX7")]),
            // Inch marks, so that some titles need RFC 4180 quote doubling.
            noun("Laptop Sleeve", "电脑内胆包", &[("Neoprene", "氯丁橡胶"), ("Felt", "毛毡"), ("Leather", "皮质")], &[("15.6\"", "15.6英寸"), ("13\"", "13英寸")]),
            noun("Smart Watch", "智能手表", &[("Aluminium", "铝合金"), ("Stainless Steel", "不锈钢")], &[("44 mm", "44毫米"), ("GPS", "GPS")]),
            noun("Webcam", "摄像头", &[("USB", "USB"), ("Wide-Angle", "广角")], &[("1080p", "1080P"), ("4K", "4K")]),
            noun("Keyboard", "键盘", &[("Mechanical", "机械"), ("Wireless", "无线")], &[("87 Keys", "87键"), ("Backlit", "背光")]),
        ],
        adjectives: &[("Fast", "高速"), ("Portable", "便携"), ("Smart", "智能"), ("Ultra-Thin", "超薄")],
        features: &[("plug and play", "即插即用"), ("2-year warranty", "保修两年"), ("compact and light", "小巧轻便")],
        uses: &[("commuting", "通勤"), ("the home office", "居家办公"), ("gaming", "游戏")],
    },
    Category {
        name: "fashion",
        weight: 10.0,
        price: (500.0, 20_000.0),
        nouns: &[
            noun("T-Shirt", "T恤", &[("Cotton", "纯棉"), ("Linen", "亚麻")], &[("Size M", "M码"), ("Size L", "L码")]),
            noun("Jeans", "牛仔裤", &[("Denim", "牛仔"), ("Stretch Denim", "弹力牛仔")], &[("W32", "32码"), ("W28", "28码")]),
            noun("Hoodie", "卫衣", &[("Fleece", "加绒"), ("Cotton", "纯棉")], &[("Size XL", "XL码"), ("Navy", "藏青色")]),
            noun("Scarf", "围巾", &[("Wool", "羊毛"), ("Cashmere", "羊绒"), ("Silk", "真丝")], &[("180 cm", "180厘米"), ("Grey", "灰色")]),
            noun("Sneakers", "运动鞋", &[("Canvas", "帆布"), ("Leather", "真皮")], &[("Size 40", "40码"), ("White", "白色")]),
            noun("Backpack", "双肩包", &[("Nylon", "尼龙"), ("Canvas", "帆布"), ("Leather", "真皮")], &[("20 L", "20升"), ("Black", "黑色")]),
            noun("Dress", "连衣裙", &[("Chiffon", "雪纺"), ("Cotton", "纯棉"), ("Silk", "真丝")], &[("Size S", "S码"), ("Floral", "碎花")]),
        ],
        adjectives: &[("Slim-Fit", "修身"), ("Oversized", "宽松"), ("Casual", "休闲"), ("Vintage", "复古")],
        features: &[("machine washable", "可机洗"), ("true to size", "尺码标准"), ("soft and breathable", "柔软透气")],
        uses: &[("everyday wear", "日常穿搭"), ("autumn and winter", "秋冬"), ("weekends", "周末出行")],
    },
    Category {
        name: "grocery",
        weight: 9.0,
        price: (100.0, 4_000.0),
        nouns: &[
            noun("Green Tea", "绿茶", &[("Loose-Leaf", "散装"), ("Jasmine", "茉莉")], &[("250 g", "250克"), ("100 Bags", "100包")]),
            noun("Coffee Beans", "咖啡豆", &[("Arabica", "阿拉比卡"), ("Dark Roast", "深烘")], &[("1 kg", "1公斤"), ("500 g", "500克")]),
            noun("Olive Oil", "橄榄油", &[("Extra Virgin", "特级初榨"), ("Cold-Pressed", "冷榨")], &[("500 ml", "500毫升"), ("1 L", "1升")]),
            noun("Dark Chocolate", "黑巧克力", &[("70% Cocoa", "70%可可"), ("Sea Salt", "海盐")], &[("100 g", "100克"), ("Pack of 5", "5块装")]),
            noun("Rice", "大米", &[("Jasmine", "香米"), ("Brown", "糙米")], &[("5 kg", "5公斤"), ("2.5 kg", "2.5公斤")]),
            noun("Honey", "蜂蜜", &[("Wildflower", "百花"), ("Acacia", "槐花")], &[("500 g", "500克"), ("250 g", "250克")]),
            noun("Instant Noodles", "方便面", &[("Spicy Beef", "香辣牛肉"), ("Seafood", "海鲜")], &[("Pack of 5", "5包装"), ("Cup", "杯装")]),
            noun("Mixed Nuts", "坚果", &[("Roasted", "烘焙"), ("Unsalted", "原味")], &[("750 g", "750克"), ("30 Packs", "30小包")]),
        ],
        adjectives: &[("Organic", "有机"), ("Premium", "精选"), ("Classic", "经典"), ("Family-Size", "家庭装")],
        features: &[("carefully selected", "精心挑选"), ("rich flavour", "口感浓郁"), ("sealed for freshness", "密封保鲜")],
        uses: &[("breakfast", "早餐"), ("afternoon tea", "下午茶"), ("the pantry", "家庭常备")],
    },
    Category {
        name: "pets",
        weight: 6.0,
        price: (200.0, 12_000.0),
        nouns: &[
            noun("Cat Litter", "猫砂", &[("Tofu", "豆腐"), ("Bentonite", "膨润土")], &[("10 L", "10升"), ("6 kg", "6公斤")]),
            noun("Dog Food", "狗粮", &[("Chicken", "鸡肉"), ("Salmon", "三文鱼")], &[("2 kg", "2公斤"), ("10 kg", "10公斤")]),
            noun("Pet Bed", "宠物窝", &[("Plush", "毛绒"), ("Memory Foam", "记忆棉")], &[("Medium", "中号"), ("Large", "大号")]),
            noun("Chew Toy", "磨牙玩具", &[("Rubber", "橡胶"), ("Nylon", "尼龙")], &[("Pack of 3", "3个装"), ("Small", "小号")]),
            noun("Leash", "牵引绳", &[("Nylon", "尼龙"), ("Leather", "皮质")], &[("1.5 m", "1.5米"), ("Retractable 5 m", "5米伸缩")]),
            noun("Scratching Post", "猫抓板", &[("Sisal", "剑麻"), ("Cardboard", "瓦楞纸")], &[("60 cm", "60厘米"), ("Large", "大号")]),
            noun("Pet Bowl", "宠物碗", &[("Stainless Steel", "不锈钢"), ("Ceramic", "陶瓷")], &[("Set of 2", "2个装"), ("500 ml", "500毫升")]),
        ],
        adjectives: &[("Cozy", "舒适"), ("Durable", "耐用"), ("Odour-Control", "除臭"), ("Premium", "优选")],
        features: &[("vet approved", "兽医推荐"), ("easy to clean", "易清洗"), ("built for daily use", "经久耐用")],
        uses: &[("cats", "猫咪"), ("puppies", "幼犬"), ("large dogs", "大型犬")],
    },
    Category {
        name: "stationery",
        weight: 7.0,
        price: (100.0, 5_000.0),
        nouns: &[
            noun("Notebook", "笔记本", &[("Kraft Paper", "牛皮纸"), ("Leather", "皮面")], &[("A5", "A5"), ("200 Pages", "200页")]),
            noun("Gel Pen", "中性笔", &[("Quick-Dry", "速干"), ("Retractable", "按动")], &[("0.5 mm", "0.5毫米"), ("Pack of 12", "12支装")]),
            noun("Highlighter", "荧光笔", &[("Pastel", "柔色"), ("Dual-Tip", "双头")], &[("Pack of 6", "6支装"), ("Chisel Tip", "斜头")]),
            noun("Desk Organizer", "桌面收纳架", &[("Bamboo", "竹制"), ("Metal Mesh", "金属网")], &[("5 Compartments", "5格"), ("Large", "大号")]),
            noun("Sticky Notes", "便利贴", &[("Neon", "荧光"), ("Kraft", "牛皮纸")], &[("76 x 76 mm", "76x76毫米"), ("12 Pads", "12本")]),
            noun("Ruler", "直尺", &[("Steel", "钢制"), ("Acrylic", "亚克力")], &[("30 cm", "30厘米"), ("12\"", "12英寸")]),
            noun("Planner", "手帐", &[("Leather", "皮面"), ("Linen", "布面")], &[("Undated", "无日期"), ("Weekly", "周计划")]),
        ],
        adjectives: &[("Minimalist", "简约"), ("Colourful", "彩色"), ("Student", "学生"), ("Premium", "高档")],
        features: &[("smooth writing", "书写顺滑"), ("no ink bleed", "不洇墨"), ("lay-flat binding", "可平摊")],
        uses: &[("school", "上学"), ("the office", "办公"), ("journaling", "做手帐")],
    },
];

const EN_BRANDS: &[&str] = &[
    "Norda",
    "Kivo",
    "Lumen & Co",
    "Brightway",
    "Oakline",
    "Maple",
    "Zest",
];
const ZH_BRANDS: &[&str] = &["优品", "简居", "乐享", "青木", "星辰"];

/// Share of products with Chinese titles and descriptions.
const CHINESE_PRODUCTS: f64 = 0.2;

/// What the rest of the generation needs to know about a product: eight bytes each.
#[derive(Debug, Clone, Copy)]
struct Product {
    price: u32,
    category: u8,
    noun: u8,
    chinese: bool,
    /// Index into [`RATINGS`]: good, average or poor.
    quality: u8,
}

/// The products, and their popularity order per category.
struct Catalog {
    products: Vec<Product>,
    /// Product indices per category, most popular first.
    by_category: Vec<Vec<u32>>,
    /// Running total of category sizes, to draw a category in proportion to its size.
    cumulative: Vec<u64>,
}

impl Catalog {
    fn new(products: Vec<Product>, rng: &mut ChaCha8Rng) -> Self {
        let mut by_category = vec![Vec::new(); CATEGORIES.len()];
        for (i, product) in products.iter().enumerate() {
            if let Some(list) = by_category.get_mut(usize::from(product.category)) {
                list.push(i as u32);
            }
        }
        // Popularity rank is unrelated to id order.
        for list in &mut by_category {
            list.shuffle(rng);
        }
        let mut total = 0;
        let cumulative = by_category
            .iter()
            .map(|list| {
                total += list.len() as u64;
                total
            })
            .collect();
        Self {
            products,
            by_category,
            cumulative,
        }
    }

    /// A category drawn in proportion to its size; `None` for an empty catalogue.
    fn any_category(&self, rng: &mut ChaCha8Rng) -> Option<usize> {
        let total = *self.cumulative.last()?;
        if total == 0 {
            return None;
        }
        let r = rng.random_range(0..total);
        Some(self.cumulative.partition_point(|&c| c <= r))
    }

    /// A product of `category`, by Zipf-like popularity.
    fn in_category(&self, category: usize, rng: &mut ChaCha8Rng) -> Option<u32> {
        let list = self.by_category.get(category)?;
        list.get(zipf(rng, list.len())?).copied()
    }

    /// A product from the whole catalogue, by popularity.
    fn popular(&self, rng: &mut ChaCha8Rng) -> Option<u32> {
        let category = self.any_category(rng)?;
        self.in_category(category, rng)
    }

    fn get(&self, product: u32) -> Option<&Product> {
        self.products.get(product as usize)
    }
}

fn product_id(index: u32) -> String {
    format!("P{:07}", u64::from(index) + 1)
}

/// Writes the products and returns the catalogue the orders are drawn from.
fn write_products(count: usize, table: &mut Table, rng: &mut ChaCha8Rng) -> Result<Catalog> {
    let weights: Vec<f64> = CATEGORIES.iter().map(|c| c.weight).collect();
    let mut products = Vec::with_capacity(count);
    for index in 0..count {
        let category = weighted(rng, &weights);
        let cat = &CATEGORIES[category];
        let noun = rng.random_range(0..cat.nouns.len());
        let chinese = rng.random_bool(CHINESE_PRODUCTS);
        let price = draw_price(cat, rng);
        let quality = weighted(rng, &QUALITY_SHARES) as u8;
        let (title, description) = if chinese {
            zh_product(cat, &cat.nouns[noun], rng)
        } else {
            en_product(cat, &cat.nouns[noun], rng)
        };
        let row = [
            product_id(index as u32),
            title,
            description,
            cat.name.to_string(),
            money(i64::from(price)),
        ];
        table.write_good(&row)?;
        // Products are referenced by orders, so a broken row is an extra copy, never the only one.
        if let Some(kind) = table.fate() {
            table.write_broken(kind, &row)?;
        }
        products.push(Product {
            price,
            category: category as u8,
            noun: noun as u8,
            chinese,
            quality,
        });
    }
    Ok(Catalog::new(products, rng))
}

/// A price in cents, log-uniform in the category's range, mostly with shop-like endings.
fn draw_price(cat: &Category, rng: &mut ChaCha8Rng) -> u32 {
    let (low, high) = cat.price;
    let cents = (low.ln() + rng.random::<f64>() * (high.ln() - low.ln())).exp() as u32;
    let units = cents / 100;
    match rng.random_range(0..10) {
        0..6 => units * 100 + 99,
        6..8 => units * 100 + 50,
        _ => cents.max(1),
    }
}

/// Lower-cases a product name for use inside a sentence, keeping words such as `USB-C`, `TPE`
/// or `T-Shirt` as they are.
fn in_sentence(name: &str) -> String {
    let words: Vec<String> = name
        .split(' ')
        .map(|word| {
            if word.chars().filter(|c| c.is_uppercase()).count() > 1 {
                word.to_string()
            } else {
                word.to_lowercase()
            }
        })
        .collect();
    words.join(" ")
}

fn en_product(cat: &Category, noun: &Noun, rng: &mut ChaCha8Rng) -> (String, String) {
    let (adjective, _) = *pick(rng, cat.adjectives);
    let (material, _) = *pick(rng, noun.materials);
    let mut title = String::new();
    if rng.random_bool(0.4) {
        title.push_str(word(rng, EN_BRANDS));
        title.push(' ');
    }
    let _ = write!(title, "{adjective} {material} {}", noun.en);
    if rng.random_bool(0.6) {
        let (spec, _) = *pick(rng, noun.specs);
        let _ = write!(title, " {spec}");
    }
    let (a, b) = two_of(rng, cat.features.len());
    let (usage, _) = *pick(rng, cat.uses);
    let description = format!(
        "{adjective} {} for {usage}. {}, {}.",
        in_sentence(noun.en),
        capitalise(cat.features[a].0),
        cat.features[b].0,
    );
    (title, description)
}

fn zh_product(cat: &Category, noun: &Noun, rng: &mut ChaCha8Rng) -> (String, String) {
    let (_, adjective) = *pick(rng, cat.adjectives);
    let (_, material) = *pick(rng, noun.materials);
    let mut title = String::new();
    if rng.random_bool(0.4) {
        title.push_str(word(rng, ZH_BRANDS));
    }
    let _ = write!(title, "{adjective}{material}{}", noun.zh);
    if rng.random_bool(0.7) {
        let (_, spec) = *pick(rng, noun.specs);
        let _ = write!(title, " {spec}");
    }
    let (a, b) = two_of(rng, cat.features.len());
    let (_, usage) = *pick(rng, cat.uses);
    let description = format!(
        "{adjective}{}，{}，{}，适合{usage}。",
        noun.zh, cat.features[a].1, cat.features[b].1
    );
    (title, description)
}

// ---------------------------------------------------------------------------------------------
// Reviews' text
// ---------------------------------------------------------------------------------------------

const EN_INTENSIFIERS: &[&str] = &["very", "really", "extremely", "super", "absolutely"];
const EN_GREAT: &[&str] = &["great", "excellent", "fantastic", "wonderful", "perfect"];
const EN_GOOD: &[&str] = &["good", "solid", "nice", "decent", "sturdy"];
const EN_PRAISE: &[&str] = &[
    "Would buy again.",
    "Highly recommend.",
    "Arrived quickly.",
    "Worth every penny.",
    "Not disappointed at all.",
];
const EN_MINOR: &[&str] = &[
    "a bit pricey",
    "shipping was slow",
    "the box was damaged",
    "the instructions are unclear",
    "it is smaller than expected",
    "the colour is slightly off",
];
const EN_MIXED: &[&str] = &[
    "It's okay.",
    "Average quality.",
    "Does the job.",
    "Nothing special.",
];
const EN_BAD: &[&str] = &["poor", "cheap", "flimsy", "terrible", "awful", "useless"];
const EN_COMPLAINTS: &[&str] = &[
    "Would not recommend.",
    "Very disappointed.",
    "Not worth the money.",
    "Returned it.",
    "Stopped working after a week.",
    "Not as described.",
];

const ZH_INTENSIFIERS: &[&str] = &["非常", "很", "特别", "超级", "真的很"];
/// Positive words that also read right after 不, for the negated complaints.
const ZH_GOOD: &[&str] = &["好用", "满意", "喜欢", "划算", "实用", "漂亮"];
const ZH_PRAISE: &[&str] = &[
    "推荐",
    "会回购",
    "物流很快",
    "包装很好",
    "五星好评",
    "值得购买",
    "性价比高",
];
const ZH_MINOR: &[&str] = &[
    "有点贵",
    "物流有点慢",
    "包装一般",
    "颜色和图片有差别",
    "说明书不清楚",
    "尺寸偏小",
];
const ZH_MIXED: &[&str] = &["还可以", "一般般", "中规中矩", "凑合能用", "没有想象中好"];
const ZH_BAD: &[&str] = &[
    "质量不好",
    "不好用",
    "做工粗糙",
    "和描述不符",
    "用了两天就坏了",
    "味道很大",
];
const ZH_COMPLAINTS: &[&str] = &["很失望", "不推荐", "不会再买了", "已经退货了", "太差了"];

/// Shares of good, average and poor products.
const QUALITY_SHARES: [f64; 3] = [0.7, 0.2, 0.1];
/// Ratings 1..=5 per product quality: overall skewed positive, yet some products are rated
/// clearly worse than others.
const RATINGS: [[f64; 5]; 3] = [
    [0.05, 0.04, 0.09, 0.27, 0.55],
    [0.12, 0.12, 0.26, 0.28, 0.22],
    [0.40, 0.22, 0.18, 0.12, 0.08],
];

/// A review whose wording agrees with `rating`: praise for 4–5, mixed for 3, complaints for
/// 1–2, with negations ("not good", "不好用"), intensifiers and contrasts ("but", "但是") mixed in.
fn review_text(rng: &mut ChaCha8Rng, rating: u8, noun: (&str, &str), chinese: bool) -> String {
    if chinese {
        zh_review(rng, rating, noun.1)
    } else {
        en_review(rng, rating, &in_sentence(noun.0))
    }
}

fn en_review(rng: &mut ChaCha8Rng, rating: u8, noun: &str) -> String {
    let very = word(rng, EN_INTENSIFIERS);
    let form = rng.random_range(0..3);
    match (rating, form) {
        (5, 0) => format!(
            "{} {} {noun}! {}",
            capitalise(very),
            word(rng, EN_GREAT),
            word(rng, EN_PRAISE)
        ),
        (5, 1) => format!("Love this {noun}. {}", word(rng, EN_PRAISE)),
        (5, _) => format!(
            "{} quality, {very} happy with it. {}",
            capitalise(word(rng, EN_GREAT)),
            word(rng, EN_PRAISE)
        ),
        (4, 0) => format!(
            "{} {noun}, but {}.",
            capitalise(word(rng, EN_GOOD)),
            word(rng, EN_MINOR)
        ),
        (4, 1) => format!(
            "Not bad at all, {very} {} for the price.",
            word(rng, EN_GOOD)
        ),
        (4, _) => format!(
            "{} {noun}. {}",
            capitalise(word(rng, EN_GOOD)),
            word(rng, EN_PRAISE)
        ),
        (3, 0) => format!(
            "{} The {noun} works, but {}.",
            word(rng, EN_MIXED),
            word(rng, EN_MINOR)
        ),
        (3, 1) => format!(
            "Not great, not terrible. {}.",
            capitalise(word(rng, EN_MINOR))
        ),
        (3, _) => format!("Decent {noun}, but {}.", word(rng, EN_MINOR)),
        (_, 0) => format!(
            "{} {} {noun}. {}",
            capitalise(very),
            word(rng, EN_BAD),
            word(rng, EN_COMPLAINTS)
        ),
        (_, 1) => format!("Not good. {}", word(rng, EN_COMPLAINTS)),
        (_, _) => format!(
            "Looks nice, but the {noun} is {very} {}. {}",
            word(rng, EN_BAD),
            word(rng, EN_COMPLAINTS)
        ),
    }
}

fn zh_review(rng: &mut ChaCha8Rng, rating: u8, noun: &str) -> String {
    let very = word(rng, ZH_INTENSIFIERS);
    let form = rng.random_range(0..3);
    match (rating, form) {
        (5, 0) => format!("{very}{}，{}", word(rng, ZH_GOOD), word(rng, ZH_PRAISE)),
        (5, 1) => format!(
            "这个{noun}{very}{}，{}",
            word(rng, ZH_GOOD),
            word(rng, ZH_PRAISE)
        ),
        (5, _) => format!("质量{very}好，{}", word(rng, ZH_PRAISE)),
        (4, 0) => format!("不错，{}", word(rng, ZH_PRAISE)),
        (4, 1) => format!("挺{}的，就是{}", word(rng, ZH_GOOD), word(rng, ZH_MINOR)),
        (4, _) => format!("{noun}整体满意，但是{}", word(rng, ZH_MINOR)),
        (3, 0) => format!("{}，但是{}", word(rng, ZH_MIXED), word(rng, ZH_MINOR)),
        (3, _) => format!("{noun}{}，不过{}", word(rng, ZH_MIXED), word(rng, ZH_MINOR)),
        (_, 0) => format!("{}，{}", word(rng, ZH_BAD), word(rng, ZH_COMPLAINTS)),
        (_, 1) => format!(
            "{very}不{}，{}",
            word(rng, ZH_GOOD),
            word(rng, ZH_COMPLAINTS)
        ),
        (_, _) => format!(
            "这个{noun}{}，{}",
            word(rng, ZH_BAD),
            word(rng, ZH_COMPLAINTS)
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Customers and what they do
// ---------------------------------------------------------------------------------------------

const BEHAVIOURS: [&str; 4] = ["loyal", "regular", "occasional", "churning"];
const BEHAVIOUR_SHARES: [f64; 4] = [0.15, 0.35, 0.35, 0.15];
/// Relative buying rate per behaviour; divided by its mean so that the overall mean is the
/// spec's `orders_per_customer`.
const BEHAVIOUR_RATES: [f64; 4] = [2.6, 1.1, 0.35, 0.8];
const LOYAL: usize = 0;
const CHURNING: usize = 3;

const GENDERS: [&str; 4] = ["f", "m", "x", ""];
const GENDER_SHARES: [f64; 4] = [0.46, 0.44, 0.03, 0.07];
const REGIONS: [&str; 5] = ["north", "south", "east", "west", "central"];
const REGION_SHARES: [f64; 5] = [0.2, 0.22, 0.24, 0.16, 0.18];
const STATUSES: [&str; 3] = ["paid", "cancelled", "refunded"];
const STATUS_SHARES: [f64; 3] = [0.9, 0.06, 0.04];
const QUANTITY_SHARES: [f64; 5] = [0.8, 0.12, 0.05, 0.02, 0.01];

/// The latent state of one customer, alive only while their rows are written.
struct Customer {
    id: String,
    signup: i64,
    /// The last moment the customer acts: the end for most, months earlier for churners.
    active_end: i64,
    behaviour: usize,
    preferred: [u8; 3],
    preferred_len: usize,
    /// Expected order lines of this customer.
    lines: f64,
}

impl Customer {
    /// A product as this customer picks one: mostly from a preferred category.
    fn pick_product(&self, catalog: &Catalog, rng: &mut ChaCha8Rng, loyalty: f64) -> Option<u32> {
        if self.preferred_len > 0 && rng.random_bool(loyalty) {
            let category = self.preferred[rng.random_range(0..self.preferred_len)];
            return catalog.in_category(usize::from(category), rng);
        }
        catalog.popular(rng)
    }
}

#[derive(Debug, Clone, Copy)]
enum EventKind {
    View,
    Click,
    Cart,
    RecClick,
}

impl EventKind {
    fn name(self) -> &'static str {
        match self {
            Self::View => "view",
            Self::Click => "click",
            Self::Cart => "cart",
            Self::RecClick => "rec_click",
        }
    }

    /// Seconds spent: views are read, the rest are quick.
    fn duration(self, rng: &mut ChaCha8Rng) -> u32 {
        match self {
            Self::View => 5 + (295.0 * rng.random::<f64>().powi(2)) as u32,
            Self::Cart => rng.random_range(1..=20),
            Self::Click => rng.random_range(0..=5),
            Self::RecClick => rng.random_range(1..=10),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Event {
    at: i64,
    product: u32,
    kind: EventKind,
}

/// A product at a moment: a purchase that may be reviewed, or the review of one.
#[derive(Debug, Clone, Copy)]
struct Dated {
    at: i64,
    product: u32,
}

/// The draws for rare order lines, apart from the main stream.
struct Rare {
    rng: ChaCha8Rng,
    duplicate: Every,
    anomaly: Every,
    before_signup: Every,
}

/// Everything written per customer: the four files and the state that spans customers.
struct Shop {
    end: i64,
    orders_per_customer: f64,
    rate_mean: f64,
    review_chance: f64,
    catalog: Catalog,
    rng: ChaCha8Rng,
    rare: Rare,
    customers: Table,
    orders: Table,
    events: Table,
    reviews: Table,
    next_order: u64,
    next_event: u64,
    next_review: u64,
    good_lines: u64,
    good_orders: u64,
    behaviours: [u64; 4],
    // Per-customer buffers, reused so the loop does not allocate them anew.
    times: Vec<i64>,
    basket: Vec<u32>,
    trail: Vec<Event>,
    /// Good, paid lines of the current customer, which they may review.
    bought: Vec<Dated>,
    reviewed: Vec<Dated>,
}

impl Shop {
    fn open(spec: &ShopSpec, inbox: &Path, catalog: Catalog, rate: f64) -> Result<Self> {
        let seed = spec.seed;
        let year = spec.end.year();
        let mut rare_rng = stream(seed, 3);
        let rare = Rare {
            duplicate: Every::new(rate, &mut rare_rng),
            anomaly: Every::new(rate * 0.4, &mut rare_rng),
            before_signup: Every::new(rate * 0.2, &mut rare_rng),
            rng: rare_rng,
        };
        let orders_per_customer = spec.orders_per_customer as f64;
        // Reviews come from paid lines (90%) of which a few are not reviewable or too recent.
        let review_chance = if orders_per_customer > 0.0 {
            (REVIEWS_PER_CUSTOMER / (0.8 * orders_per_customer)).min(1.0)
        } else {
            0.0
        };
        Ok(Self {
            end: end_of(spec.end),
            orders_per_customer,
            rate_mean: BEHAVIOUR_SHARES
                .iter()
                .zip(BEHAVIOUR_RATES)
                .map(|(share, rate)| share * rate)
                .sum(),
            review_chance,
            catalog,
            rng: stream(seed, 2),
            rare,
            customers: Table::create(inbox, &CUSTOMERS, stream(seed, 12), rate, year)?,
            orders: Table::create(inbox, &ORDERS, stream(seed, 13), rate, year)?,
            events: Table::create(inbox, &EVENTS, stream(seed, 14), rate, year)?,
            reviews: Table::create(inbox, &REVIEWS, stream(seed, 15), rate, year)?,
            next_order: 0,
            next_event: 0,
            next_review: 0,
            good_lines: 0,
            good_orders: 0,
            behaviours: [0; 4],
            times: Vec::new(),
            basket: Vec::new(),
            trail: Vec::new(),
            bought: Vec::new(),
            reviewed: Vec::new(),
        })
    }

    /// Draws customer number `index`, writes them and everything they did.
    fn customer(&mut self, index: usize) -> Result<()> {
        let customer = self.draw_customer(index);
        self.behaviours[customer.behaviour] += 1;
        let rng = &mut self.rng;
        let birth_year = (1986.0 + 13.0 * normal(rng)).round().clamp(1945.0, 2008.0) as i64;
        let row = [
            customer.id.clone(),
            timestamp(rng, customer.signup, &SIGNUP_SHAPES),
            birth_year.to_string(),
            GENDERS[weighted(rng, &GENDER_SHARES)].to_string(),
            REGIONS[weighted(rng, &REGION_SHARES)].to_string(),
        ];
        self.customers.write_good(&row)?;
        // Orders refer to customers, so a broken row is an extra copy, never the only one.
        if let Some(kind) = self.customers.fate() {
            self.customers.write_broken(kind, &row)?;
        }
        self.shop(&customer)
    }

    fn draw_customer(&mut self, index: usize) -> Customer {
        let rng = &mut self.rng;
        let behaviour = weighted(rng, &BEHAVIOUR_SHARES);
        let churn_gap = if behaviour == CHURNING {
            rng.random_range(120..=180) * DAY
        } else {
            0
        };
        let earliest = self.end - SIGNUP_SPAN;
        let latest = if behaviour == CHURNING {
            self.end - churn_gap - 90 * DAY
        } else {
            self.end - 3_600
        };
        let signup = rng.random_range(earliest..=latest);
        let active_end = self.end - churn_gap;
        // Longer-standing customers have had more time to buy; dividing by the mean active time
        // for this behaviour keeps the overall mean at `orders_per_customer`.
        let mean_active = ((active_end - earliest) + (active_end - latest)) as f64 / 2.0;
        let tenure = (active_end - signup) as f64 / mean_active;
        // Lognormal spread with mean 1, so that customers of one behaviour still differ.
        let spread = (0.5 * normal(rng) - 0.125).exp();
        let lines = self.orders_per_customer * BEHAVIOUR_RATES[behaviour] / self.rate_mean
            * tenure
            * spread;
        let mut preferred = [0u8; 3];
        let wanted = 1 + weighted(rng, &[0.4, 0.4, 0.2]);
        let mut preferred_len = 0;
        for _ in 0..wanted * 4 {
            if preferred_len == wanted {
                break;
            }
            let Some(category) = self.catalog.any_category(rng) else {
                break;
            };
            let category = category as u8;
            if !preferred[..preferred_len].contains(&category) {
                preferred[preferred_len] = category;
                preferred_len += 1;
            }
        }
        Customer {
            id: format!("C{:06}", index + 1),
            signup,
            active_end,
            behaviour,
            preferred,
            preferred_len,
            lines,
        }
    }

    /// Writes the customer's orders, then their browsing trail and reviews, each sorted by time.
    fn shop(&mut self, customer: &Customer) -> Result<()> {
        self.trail.clear();
        self.bought.clear();
        let orders = poisson(&mut self.rng, customer.lines / LINES_PER_ORDER);
        let mut times = std::mem::take(&mut self.times);
        times.clear();
        times.extend((0..orders).map(|_| self.order_time(customer)));
        times.sort_unstable();
        for &at in &times {
            self.order(customer, at)?;
        }
        self.times = times;
        self.browse(customer);
        self.write_trail(customer)?;
        self.write_reviews(customer)
    }

    /// When an order is placed: uniform over the active time, loyal customers leaning recent.
    fn order_time(&mut self, customer: &Customer) -> i64 {
        let start = customer.signup + 600;
        let span = (customer.active_end - start).max(0) as f64;
        let u: f64 = self.rng.random();
        let frac = if customer.behaviour == LOYAL {
            u.sqrt()
        } else {
            u
        };
        start + (frac * span) as i64
    }

    /// Writes one order: its lines, the events that led to them, and what may be reviewed.
    fn order(&mut self, customer: &Customer, at: i64) -> Result<()> {
        let order_number = self.next_order;
        self.next_order += 1;
        let order_id = format!("O{:08}", self.next_order);
        let before_signup = self
            .rare
            .before_signup
            .hit(order_number, &mut self.rare.rng);
        let at = if before_signup {
            customer.signup - self.rng.random_range(2 * DAY..60 * DAY)
        } else {
            at
        };
        let status = STATUSES[weighted(&mut self.rng, &STATUS_SHARES)];
        let mut lines = 1;
        while lines < MAX_LINES_PER_ORDER && self.rng.random_bool(1.0 - 1.0 / LINES_PER_ORDER) {
            lines += 1;
        }
        self.basket.clear();
        let mut any_good = false;
        for _ in 0..lines {
            let Some(product) = customer.pick_product(&self.catalog, &mut self.rng, 0.8) else {
                break;
            };
            // One line per product, so that identical lines are always the counted duplicates.
            if self.basket.contains(&product) {
                continue;
            }
            self.basket.push(product);
            let line = Line {
                order_id: &order_id,
                product,
                at,
                status,
                before_signup,
            };
            any_good |= self.order_line(customer, &line)?;
            if !before_signup {
                self.lead_up(customer, product, at);
            }
        }
        if any_good {
            self.good_orders += 1;
        }
        Ok(())
    }

    /// Writes one order line; returns whether it was written good.
    fn order_line(&mut self, customer: &Customer, line: &Line<'_>) -> Result<bool> {
        let rng = &mut self.rng;
        let Some(product) = self.catalog.get(line.product) else {
            return Ok(false);
        };
        let mut quantity = 1 + weighted(rng, &QUANTITY_SHARES) as i64;
        let mut price = i64::from(product.price);
        if rng.random_bool(0.15) {
            price = (price as f64 * (1.0 - rng.random_range(0.10..0.30))).round() as i64;
        }
        let anomaly = self.rare.anomaly.hit(self.orders.rows, &mut self.rare.rng);
        if anomaly {
            match rng.random_range(0..3) {
                0 => quantity = 0,
                1 => quantity = -rng.random_range(1..=2),
                _ => price = 0,
            }
        }
        let row = [
            line.order_id.to_string(),
            customer.id.clone(),
            product_id(line.product),
            quantity.to_string(),
            money(price),
            timestamp(rng, line.at, &SHAPES),
            line.status.to_string(),
        ];
        if let Some(kind) = self.orders.fate() {
            self.orders.write_broken(kind, &row)?;
            return Ok(false);
        }
        self.orders.write_good(&row)?;
        self.good_lines += 1;
        if anomaly {
            self.orders.count(ANOMALY);
        }
        if line.before_signup {
            self.orders.count(BEFORE_SIGNUP);
        }
        if self.rare.duplicate.hit(self.good_lines, &mut self.rare.rng) {
            self.orders.repeat(&row, DUPLICATE)?;
        }
        if line.status == "paid" && !anomaly && !line.before_signup {
            self.bought.push(Dated {
                at: line.at,
                product: line.product,
            });
        }
        Ok(true)
    }

    /// The events before a purchase: views, often a cart, sometimes a recommendation click.
    fn lead_up(&mut self, customer: &Customer, product: u32, at: i64) {
        let rng = &mut self.rng;
        let mut seen = |kind, before: i64| {
            self.trail.push(Event {
                at: (at - before).max(customer.signup),
                product,
                kind,
            });
        };
        let views = 1 + usize::from(rng.random_bool(0.1));
        for _ in 0..views {
            seen(EventKind::View, rng.random_range(120..3 * DAY));
        }
        for (kind, chance, earliest) in [
            (EventKind::Cart, 0.4, 1_800),
            (EventKind::RecClick, 0.1, 2 * DAY),
            (EventKind::Click, 0.1, DAY),
        ] {
            if rng.random_bool(chance) {
                seen(kind, rng.random_range(30..earliest));
            }
        }
    }

    /// Browsing that led nowhere: popular products, mostly in the preferred categories.
    fn browse(&mut self, customer: &Customer) {
        let rng = &mut self.rng;
        let count = poisson(rng, 0.2 * customer.lines + 1.0);
        for _ in 0..count {
            let Some(product) = customer.pick_product(&self.catalog, rng, 0.6) else {
                return;
            };
            let kind = match weighted(rng, &[0.65, 0.25, 0.1]) {
                0 => EventKind::View,
                1 => EventKind::Click,
                _ => EventKind::RecClick,
            };
            let at = rng.random_range(customer.signup..=customer.active_end);
            self.trail.push(Event { at, product, kind });
        }
    }

    fn write_trail(&mut self, customer: &Customer) -> Result<()> {
        self.trail.sort_by_key(|e| e.at);
        for i in 0..self.trail.len() {
            let event = self.trail[i];
            self.next_event += 1;
            let rng = &mut self.rng;
            let row = [
                format!("E{:09}", self.next_event),
                customer.id.clone(),
                product_id(event.product),
                event.kind.name().to_string(),
                timestamp(rng, event.at, &SHAPES),
                event.kind.duration(rng).to_string(),
            ];
            match self.events.fate() {
                Some(kind) => self.events.write_broken(kind, &row)?,
                None => self.events.write_good(&row)?,
            }
        }
        Ok(())
    }

    /// Reviews of paid purchases, a few days to a month later, one per product at most.
    fn write_reviews(&mut self, customer: &Customer) -> Result<()> {
        self.reviewed.clear();
        for i in 0..self.bought.len() {
            let bought = self.bought[i];
            if !self.rng.random_bool(self.review_chance)
                || self.reviewed.iter().any(|r| r.product == bought.product)
            {
                continue;
            }
            let at = bought.at + self.rng.random_range(DAY..30 * DAY);
            if at <= self.end {
                self.reviewed.push(Dated {
                    at,
                    product: bought.product,
                });
            }
        }
        self.reviewed.sort_by_key(|r| r.at);
        for i in 0..self.reviewed.len() {
            let review = self.reviewed[i];
            self.write_review(customer, review)?;
        }
        Ok(())
    }

    fn write_review(&mut self, customer: &Customer, review: Dated) -> Result<()> {
        let Some(&product) = self.catalog.get(review.product) else {
            return Ok(());
        };
        let rng = &mut self.rng;
        let ratings = RATINGS
            .get(usize::from(product.quality))
            .unwrap_or(&RATINGS[0]);
        let rating = 1 + weighted(rng, ratings) as u8;
        let chinese = rng.random_bool(if product.chinese { 0.8 } else { 0.07 });
        let noun = CATEGORIES
            .get(usize::from(product.category))
            .and_then(|c| c.nouns.get(usize::from(product.noun)))
            .map_or(("item", "商品"), |n| (n.en, n.zh));
        self.next_review += 1;
        let row = [
            format!("R{:08}", self.next_review),
            customer.id.clone(),
            product_id(review.product),
            rating.to_string(),
            review_text(rng, rating, noun, chinese),
            timestamp(rng, review.at, &SHAPES),
        ];
        match self.reviews.fate() {
            Some(kind) => self.reviews.write_broken(kind, &row),
            None => self.reviews.write_good(&row),
        }
    }

    /// Flushes every file and completes `summary`.
    fn finish(self, mut summary: ShopSummary) -> Result<ShopSummary> {
        summary.customers = self.customers.finish(&mut summary.dirty)?;
        summary.order_lines = self.orders.finish(&mut summary.dirty)?;
        summary.orders = self.good_orders;
        summary.events = self.events.finish(&mut summary.dirty)?;
        summary.reviews = self.reviews.finish(&mut summary.dirty)?;
        for (name, n) in BEHAVIOURS.iter().zip(self.behaviours) {
            summary.behaviours.insert(name.to_string(), n);
        }
        Ok(summary)
    }
}

/// What one order line shares with its order.
struct Line<'a> {
    order_id: &'a str,
    product: u32,
    at: i64,
    status: &'static str,
    before_signup: bool,
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap, HashSet};

    use chrono::{DateTime, NaiveDateTime};

    use super::*;

    const FILES: [&str; 5] = [
        "customers/customers.csv",
        "products/products.csv",
        "orders/orders.csv",
        "events/events.csv",
        "reviews/reviews.jsonl",
    ];

    fn small(seed: u64) -> ShopSpec {
        ShopSpec {
            customers: 300,
            products: 2_000,
            orders_per_customer: 10,
            seed,
            end: NaiveDate::from_ymd_opt(2026, 3, 15).unwrap(),
            dirty_fraction: 0.005,
        }
    }

    /// A folder of its own under the system temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("patron-shop-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            Self(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn contents(dir: &Path) -> Vec<Vec<u8>> {
        FILES
            .iter()
            .map(|f| std::fs::read(dir.join(f)).unwrap())
            .collect()
    }

    /// Every timestamp shape the generator writes, as seconds since the epoch.
    fn parse_ts(text: &str) -> Option<i64> {
        if let Ok(t) = DateTime::parse_from_rfc3339(text) {
            return Some(t.timestamp());
        }
        if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S") {
            return Some(t.and_utc().timestamp());
        }
        if let Ok(d) = NaiveDate::parse_from_str(text, "%Y/%m/%d") {
            return Some(d.and_time(NaiveTime::MIN).and_utc().timestamp());
        }
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text.parse().ok();
        }
        None
    }

    /// A row as a reader sees it: its fields when it is readable, or why it is not.
    type Verdict = Result<Vec<String>, &'static str>;

    fn check_fields(fields: Vec<String>, schema: &Schema) -> Verdict {
        if fields[schema.id].is_empty() {
            return Err("missing id");
        }
        for &i in schema.numbers {
            let ok = if schema.columns[i].ends_with("price") {
                fields[i].parse::<f64>().is_ok()
            } else {
                fields[i].parse::<i64>().is_ok()
            };
            if !ok {
                return Err("bad number");
            }
        }
        if let Some(d) = schema.date
            && parse_ts(&fields[d]).is_none()
        {
            return Err("unparseable date");
        }
        Ok(fields)
    }

    fn check_csv(record: &csv::ByteRecord, schema: &Schema) -> Verdict {
        if record.len() != schema.columns.len() {
            return Err("wrong column count");
        }
        let fields = record
            .iter()
            .map(|f| String::from_utf8(f.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "invalid UTF-8")?;
        check_fields(fields, schema)
    }

    fn check_json(line: &[u8], schema: &Schema) -> Verdict {
        let text = std::str::from_utf8(line).map_err(|_| "invalid UTF-8")?;
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|_| "wrong column count")?;
        let object = value.as_object().ok_or("wrong column count")?;
        if object.len() != schema.columns.len() {
            return Err("wrong column count");
        }
        let mut fields = Vec::new();
        for (i, key) in schema.columns.iter().enumerate() {
            let field = match object.get(*key) {
                Some(serde_json::Value::String(s)) if !schema.numbers.contains(&i) => s.clone(),
                Some(serde_json::Value::String(s)) => format!("not a JSON number: {s}"),
                Some(serde_json::Value::Number(n)) => n.to_string(),
                _ => return Err("wrong column count"),
            };
            fields.push(field);
        }
        check_fields(fields, schema)
    }

    /// The readable rows of one file, and the unreadable ones counted by reason.
    #[derive(Default)]
    struct Checked {
        good: Vec<Vec<String>>,
        dirty: BTreeMap<&'static str, u64>,
    }

    fn check_file(dir: &Path, schema: &Schema) -> Checked {
        let path = dir.join(schema.dir).join(schema.file);
        let verdicts: Vec<Verdict> = match schema.format {
            Format::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .flexible(true)
                    .from_path(&path)
                    .unwrap();
                let header = reader.byte_headers().unwrap().clone();
                assert_eq!(
                    header.iter().collect::<Vec<_>>(),
                    schema
                        .columns
                        .iter()
                        .map(|c| c.as_bytes())
                        .collect::<Vec<_>>()
                );
                reader
                    .byte_records()
                    .map(|r| check_csv(&r.unwrap(), schema))
                    .collect()
            }
            Format::Jsonl => std::fs::read(&path)
                .unwrap()
                .split(|&b| b == b'\n')
                .filter(|line| !line.is_empty())
                .map(|line| check_json(line, schema))
                .collect(),
        };
        let mut checked = Checked::default();
        for verdict in verdicts {
            match verdict {
                Ok(fields) => checked.good.push(fields),
                Err(reason) => *checked.dirty.entry(reason).or_insert(0) += 1,
            }
        }
        checked
    }

    struct Shopped {
        _dir: Scratch,
        summary: ShopSummary,
        customers: Checked,
        products: Checked,
        orders: Checked,
        events: Checked,
        reviews: Checked,
    }

    fn shop(name: &str, spec: &ShopSpec) -> Shopped {
        let dir = Scratch::new(name);
        let summary = generate(spec, &dir.0).unwrap();
        Shopped {
            summary,
            customers: check_file(&dir.0, &CUSTOMERS),
            products: check_file(&dir.0, &PRODUCTS),
            orders: check_file(&dir.0, &ORDERS),
            events: check_file(&dir.0, &EVENTS),
            reviews: check_file(&dir.0, &REVIEWS),
            _dir: dir,
        }
    }

    /// The order lines without the repeated ones, and how many were repeats.
    fn unique_lines(orders: &Checked) -> (Vec<&Vec<String>>, u64) {
        let mut seen = HashSet::new();
        let mut repeats = 0;
        let mut lines = Vec::new();
        for line in &orders.good {
            if seen.insert(line) {
                lines.push(line);
            } else {
                repeats += 1;
            }
        }
        (lines, repeats)
    }

    fn has_cjk(text: &str) -> bool {
        text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
    }

    #[test]
    fn same_spec_gives_identical_files_and_another_seed_does_not() {
        let (a, b, c) = (Scratch::new("a"), Scratch::new("b"), Scratch::new("c"));
        generate(&small(1), &a.0).unwrap();
        generate(&small(1), &b.0).unwrap();
        generate(&small(2), &c.0).unwrap();
        let (a, b, c) = (contents(&a.0), contents(&b.0), contents(&c.0));
        assert_eq!(a, b);
        for (a, c) in a.iter().zip(&c) {
            assert_ne!(a, c);
        }
    }

    #[test]
    fn summary_matches_the_files() {
        let s = shop("summary", &small(7));
        assert_eq!(s.customers.good.len() as u64, s.summary.customers);
        assert_eq!(s.summary.customers, 300);
        assert_eq!(s.products.good.len() as u64, s.summary.products);
        assert_eq!(s.summary.products, 2_000);
        let (lines, repeats) = unique_lines(&s.orders);
        assert_eq!(lines.len() as u64, s.summary.order_lines);
        assert_eq!(repeats, s.summary.dirty[DUPLICATE]);
        let orders: HashSet<&str> = lines.iter().map(|l| l[0].as_str()).collect();
        assert_eq!(orders.len() as u64, s.summary.orders);
        assert_eq!(s.events.good.len() as u64, s.summary.events);
        assert_eq!(s.reviews.good.len() as u64, s.summary.reviews);

        for kind in Broken::ALL {
            let label = kind.label();
            let found: u64 = [&s.customers, &s.products, &s.orders, &s.events, &s.reviews]
                .iter()
                .map(|c| c.dirty.get(label).copied().unwrap_or(0))
                .sum();
            assert_eq!(found, s.summary.dirty[label], "{label}");
        }

        let anomalies = lines
            .iter()
            .filter(|l| l[3].parse::<i64>().unwrap() <= 0 || l[4] == "0.00")
            .count() as u64;
        assert_eq!(anomalies, s.summary.dirty[ANOMALY]);
        let signups: HashMap<&str, i64> = s
            .customers
            .good
            .iter()
            .map(|c| (c[0].as_str(), parse_ts(&c[1]).unwrap()))
            .collect();
        let early = lines
            .iter()
            .filter(|l| parse_ts(&l[5]).unwrap() < signups[l[1].as_str()])
            .count() as u64;
        assert_eq!(early, s.summary.dirty[BEFORE_SIGNUP]);
        assert_eq!(s.summary.behaviours.values().sum::<u64>(), 300);
        assert_eq!(s.summary.dirty.len(), DIRTY_LABELS.len());
    }

    #[test]
    fn rows_refer_to_known_customers_and_products_and_end_by_the_end_date() {
        let spec = small(3);
        let s = shop("refs", &spec);
        let end = end_of(spec.end);
        let customers: HashSet<&str> = s.customers.good.iter().map(|c| c[0].as_str()).collect();
        let products: HashSet<&str> = s.products.good.iter().map(|p| p[0].as_str()).collect();
        for c in &s.customers.good {
            let signup = parse_ts(&c[1]).unwrap();
            assert!(signup <= end && signup >= end - SIGNUP_SPAN - DAY, "{c:?}");
        }
        let mut first_bought: HashMap<(&str, &str), i64> = HashMap::new();
        for l in &s.orders.good {
            assert!(customers.contains(l[1].as_str()) && products.contains(l[2].as_str()));
            let at = parse_ts(&l[5]).unwrap();
            assert!(at <= end, "{l:?}");
            let first = first_bought.entry((&l[1], &l[2])).or_insert(at);
            *first = (*first).min(at);
        }
        let signups: HashMap<&str, i64> = s
            .customers
            .good
            .iter()
            .map(|c| (c[0].as_str(), parse_ts(&c[1]).unwrap()))
            .collect();
        for e in &s.events.good {
            assert!(customers.contains(e[1].as_str()) && products.contains(e[2].as_str()));
            let at = parse_ts(&e[4]).unwrap();
            assert!(at <= end && at >= signups[e[1].as_str()], "{e:?}");
        }
        for r in &s.reviews.good {
            let at = parse_ts(&r[5]).unwrap();
            assert!(at <= end, "{r:?}");
            let bought = first_bought[&(r[1].as_str(), r[2].as_str())];
            assert!(at > bought, "review before purchase: {r:?}");
        }
        // The last day of data is the end date.
        let last = s.events.good.iter().map(|e| parse_ts(&e[4]).unwrap()).max();
        assert!(last.unwrap() > end - DAY);
    }

    #[test]
    fn about_a_fifth_of_products_and_reviews_are_chinese() {
        let s = shop("chinese", &small(5));
        let share = |rows: &[Vec<String>], column: usize| {
            rows.iter().filter(|r| has_cjk(&r[column])).count() as f64 / rows.len() as f64
        };
        let titles = share(&s.products.good, 1);
        assert!((0.1..=0.3).contains(&titles), "{titles}");
        let reviews = share(&s.reviews.good, 4);
        assert!((0.1..=0.35).contains(&reviews), "{reviews}");
    }

    #[test]
    fn orders_hold_every_kind_of_dirty_row() {
        let s = shop("dirty", &small(11));
        for kind in Broken::ALL {
            assert!(s.orders.dirty.get(kind.label()) >= Some(&1), "{kind:?}");
            assert!(s.events.dirty.get(kind.label()) >= Some(&1), "{kind:?}");
            assert!(s.reviews.dirty.get(kind.label()) >= Some(&1), "{kind:?}");
        }
        for label in [DUPLICATE, ANOMALY, BEFORE_SIGNUP] {
            assert!(s.summary.dirty[label] >= 1, "{label}");
        }
    }

    #[test]
    fn zero_dirty_fraction_writes_clean_files() {
        let spec = ShopSpec {
            dirty_fraction: 0.0,
            ..small(13)
        };
        let s = shop("clean", &spec);
        assert!(
            s.summary.dirty.values().all(|&n| n == 0),
            "{s:?}",
            s = s.summary
        );
        for checked in [&s.customers, &s.products, &s.orders, &s.events, &s.reviews] {
            assert!(checked.dirty.is_empty());
        }
    }

    #[test]
    fn volumes_follow_the_spec() {
        let spec = ShopSpec {
            customers: 1_000,
            ..small(17)
        };
        let s = shop("volumes", &spec).summary;
        let per_customer = |n: u64| n as f64 / 1_000.0;
        assert!((8.0..=12.0).contains(&per_customer(s.order_lines)), "{s:?}");
        assert!((16.0..=24.0).contains(&per_customer(s.events)), "{s:?}");
        assert!((1.5..=2.5).contains(&per_customer(s.reviews)), "{s:?}");
        let lines_per_order = s.order_lines as f64 / s.orders as f64;
        assert!((1.03..=1.2).contains(&lines_per_order), "{s:?}");
        for (name, share) in BEHAVIOURS.iter().zip(BEHAVIOUR_SHARES) {
            let got = s.behaviours[*name] as f64 / 1_000.0;
            assert!((got - share).abs() < 0.05, "{name}: {got}");
        }
    }

    #[test]
    fn review_text_agrees_with_rating() {
        let s = shop("sentiment", &small(19));
        let positive = [
            "great",
            "excellent",
            "fantastic",
            "wonderful",
            "perfect",
            "good",
        ]
        .iter()
        .chain(["solid", "nice", "decent", "sturdy", "Love", "不错", "满意"].iter())
        .chain(ZH_GOOD)
        .chain(["好，"].iter());
        let positive: Vec<&str> = positive.copied().collect();
        let negative: Vec<&str> = EN_BAD
            .iter()
            .chain(EN_COMPLAINTS)
            .chain(ZH_BAD)
            .chain(ZH_COMPLAINTS)
            .chain(["Not good"].iter())
            .copied()
            .collect();
        for r in &s.reviews.good {
            let rating: u8 = r[3].parse().unwrap();
            let text = r[4].to_lowercase();
            let says = |words: &[&str]| words.iter().any(|w| text.contains(&w.to_lowercase()));
            match rating {
                4 | 5 => assert!(says(&positive) && !says(&negative), "{r:?}"),
                3 => assert!(says(&["but", "但是", "不过", "Not great"]), "{r:?}"),
                _ => assert!(says(&negative), "{r:?}"),
            }
        }
    }

    #[test]
    fn timestamps_parse_back_in_every_shape() {
        let mut rng = stream(1, 1);
        let mut shapes = [0; 5];
        for _ in 0..5_000 {
            let at = rng.random_range(0..4_000_000_000);
            let text = timestamp(&mut rng, at, &SIGNUP_SHAPES);
            let back = parse_ts(&text).unwrap();
            let shape = if text.contains('/') {
                assert_eq!(back, at - at.rem_euclid(DAY));
                3
            } else {
                assert_eq!(back, at, "{text}");
                match text.as_bytes() {
                    t if t.ends_with(b"Z") => 0,
                    t if t.len() == 25 => 1,
                    t if t.len() == 19 => 2,
                    _ => 4,
                }
            };
            shapes[shape] += 1;
        }
        assert!(shapes.iter().all(|&n| n > 500), "{shapes:?}");
    }

    #[test]
    fn churners_stop_buying_months_before_the_end() {
        let dir = Scratch::new("churn");
        let spec = small(23);
        let catalog = Catalog::new(Vec::new(), &mut stream(1, 1));
        let mut shop = Shop::open(&spec, &dir.0, catalog, 0.0).unwrap();
        let mut churners = 0;
        for i in 0..2_000 {
            let customer = shop.draw_customer(i);
            assert!(customer.signup < customer.active_end);
            for _ in 0..20 {
                let at = shop.order_time(&customer);
                assert!(at >= customer.signup && at <= customer.active_end);
                if customer.behaviour == CHURNING {
                    assert!(at <= shop.end - 120 * DAY);
                }
            }
            churners += usize::from(customer.behaviour == CHURNING);
        }
        assert!(churners > 200);
    }

    #[test]
    fn popularity_is_skewed() {
        let mut rng = stream(1, 2);
        let mut counts = vec![0u32; 1_000];
        for _ in 0..100_000 {
            counts[zipf(&mut rng, 1_000).unwrap()] += 1;
        }
        assert!(counts[0] > 5 * counts[20], "{:?}", &counts[..25]);
        assert!(counts[0] > 50 * counts[900], "{:?}", &counts[900..910]);
        assert_eq!(zipf(&mut rng, 0), None);
    }

    #[test]
    fn word_lists_are_usable() {
        for category in &CATEGORIES {
            assert!(!category.nouns.is_empty() && category.nouns.len() < 256);
            for noun in category.nouns {
                assert!(!noun.materials.is_empty() && !noun.specs.is_empty());
            }
            assert!(!category.adjectives.is_empty());
            assert!(category.features.len() >= 2 && !category.uses.is_empty());
            assert!(category.price.0 >= 100.0 && category.price.0 < category.price.1);
        }
    }

    #[test]
    fn per_product_state_stays_small() {
        // 100 000 products must stay a few hundred KB, whatever the number of customers.
        assert_eq!(std::mem::size_of::<Product>(), 8);
    }

    #[test]
    fn civil_matches_chrono() {
        let mut rng = stream(1, 3);
        for _ in 0..10_000 {
            let at = rng.random_range(-5_000_000_000..5_000_000_000);
            let expected = DateTime::from_timestamp(at, 0).unwrap();
            assert_eq!(
                iso(at, 'T'),
                expected.format("%Y-%m-%dT%H:%M:%S").to_string()
            );
        }
    }
}
