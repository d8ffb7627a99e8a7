//! Ingest: files (CSV or JSON Lines, optionally gzipped) or HTTP responses become rows of
//! the five entities. A record that cannot be read goes to the quarantine with its source,
//! line, raw text and reason, and the rest goes on. Sources are remembered by checksum, rows
//! by natural key, so re-ingesting the same file or the same ids adds nothing; a crashed load
//! is retried from scratch under the same source id, and a file with too many bad rows
//! (`max_bad_ratio`) keeps nothing.
//!
//! Rows go to the lake (`crate::lake::load`): parsing and Parquet encoding run on a
//! blocking thread that streams the source into one file, so memory stays flat however
//! large the file; one catalog commit then makes the rows visible and the source complete.

pub mod entity;
pub mod mapping;
pub mod read;
pub mod values;

use std::{
    collections::BTreeMap,
    io::Read as _,
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use chrono_tz::Tz;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use self::{entity::Entity, mapping::Mapping, read::Format};
use self::{
    entity::parse_row,
    read::{Records, Values},
};
use crate::{
    db::{
        RepoError,
        entities::SourceState,
        repo::sources::{self, Begin, Counts, Rejected},
    },
    lake::{Lake, LakeError, load::Sink},
    pipeline::Problem,
};

/// Records between progress reports.
const PROGRESS_EVERY: u64 = 100_000;
/// Quarantined rows kept with their text (all are counted).
const MAX_QUARANTINE_KEPT: usize = 100_000;

/// How to ingest.
#[derive(Debug, Clone)]
pub struct Options {
    /// Fraction of unreadable rows above which the whole source is rejected.
    pub max_bad_ratio: f64,
    /// Zone of naive timestamps when the mapping sets none.
    pub timezone: Tz,
    /// Overrides the format guessed from the file name (and the mapping's).
    pub format: Option<Format>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_bad_ratio: 0.05,
            timezone: chrono_tz::UTC,
            format: None,
        }
    }
}

/// What came of one source.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub entity: String,
    pub source: String,
    /// Records read (the header excluded).
    pub read: u64,
    /// Rows new to the database (for order lines, also rows whose status changed).
    pub loaded: u64,
    /// Rows whose key was already stored (same file again, same ids elsewhere, exact
    /// duplicate lines).
    pub duplicates: u64,
    pub quarantined: u64,
    /// Quarantined rows by reason.
    pub reasons: BTreeMap<String, u64>,
    /// Rows left out by the mapping's skip rules, by reason.
    pub skipped: u64,
    pub skip_reasons: BTreeMap<String, u64>,
    /// This checksum was fully loaded before; nothing was read.
    pub already_ingested: bool,
    /// More than `max_bad_ratio` of the rows were unreadable: nothing was kept.
    pub rejected: bool,
    pub seconds: f64,
}

impl Report {
    /// Adds another source's counts (for a summary over several files).
    pub fn absorb(&mut self, other: &Report) {
        self.read += other.read;
        self.loaded += other.loaded;
        self.duplicates += other.duplicates;
        self.quarantined += other.quarantined;
        self.skipped += other.skipped;
        for (k, v) in &other.reasons {
            *self.reasons.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.skip_reasons {
            *self.skip_reasons.entry(k.clone()).or_default() += v;
        }
        self.rejected |= other.rejected;
        self.seconds += other.seconds;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("{0}")]
    Unreadable(String),
    /// A CSV file with nothing in it, not even a header row.
    #[error("{0} is empty: a CSV file needs at least its header row")]
    Empty(String),
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Mapping(Vec<Problem>),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("writing rows: {0}")]
    Lake(#[from] LakeError),
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
}

/// Where records come from.
#[derive(Debug, Clone)]
pub enum Input {
    File(PathBuf),
    /// An HTTP response body (or several pages joined), named by its URL.
    Bytes {
        name: String,
        data: Arc<Vec<u8>>,
    },
}

impl Input {
    pub fn name(&self) -> String {
        match self {
            Self::File(p) => p.display().to_string(),
            Self::Bytes { name, .. } => name.clone(),
        }
    }
}

/// Progress: bytes consumed of the total.
pub type ProgressFn = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// Ingests one source into `entity`'s dataset of the lake.
pub async fn ingest(
    lake: &Lake,
    input: Input,
    entity: Entity,
    mapping: Option<&Mapping>,
    options: &Options,
    progress: Option<ProgressFn>,
) -> Result<Report, IngestError> {
    let started = Instant::now();
    let db = lake.db();
    let name = input.name();
    let mapping = mapping.cloned().unwrap_or_default();
    if let Some(m) = mapping.entity
        && m != entity
    {
        return Err(IngestError::Unreadable(format!(
            "the mapping is for {m}, not {entity}"
        )));
    }
    let (checksum, bytes) = checksum(&input).await?;
    let mut report = Report {
        entity: entity.to_string(),
        source: name.clone(),
        ..Default::default()
    };
    // A retried source (a crashed or rejected attempt) reuses its id; nothing of the earlier
    // attempt was committed, and its unrecorded files are left for `lake vacuum`.
    let source_id = match sources::begin(db, entity.name(), &name, &checksum, bytes).await? {
        Begin::Done(_) => {
            report.already_ingested = true;
            report.seconds = started.elapsed().as_secs_f64();
            return Ok(report);
        }
        Begin::Load { id, .. } => id,
    };

    let format = options
        .format
        .or(mapping.format)
        .unwrap_or_else(|| match &input {
            Input::File(p) => Format::from_path(p),
            Input::Bytes { .. } => Format::JsonLines,
        });
    let rules = mapping.value_rules(options.timezone);
    let sink = Sink::new(lake, entity, source_id)?;
    let read = tokio::task::spawn_blocking(move || {
        let records = match &input {
            Input::File(p) => Records::open(p, format),
            Input::Bytes { data, .. } => Records::from_bytes(data.as_ref().clone(), format),
        }
        .map_err(|error| IngestError::Io {
            path: input.name(),
            error,
        });
        let records = match records {
            Ok(r) if r.is_empty_csv() => Err(IngestError::Empty(input.name())),
            other => other,
        };
        let mut sink = sink;
        let summary = records.and_then(|records| {
            read_records(
                records,
                &input.name(),
                entity,
                &mapping,
                &rules,
                bytes,
                &mut sink,
                progress,
            )
        });
        match summary {
            Ok(summary) => Ok((summary, sink.finish()?)),
            Err(e) => {
                sink.abandon();
                Err(e)
            }
        }
    })
    .await
    .map_err(|e| IngestError::Unreadable(format!("reader thread failed: {e}")))?;
    let (read, (file, repeats)) = match read {
        Ok(r) => r,
        Err(e) => {
            sources::finish(db, source_id, SourceState::Rejected, Counts::default()).await?;
            return Err(e);
        }
    };

    report.read = read.read;
    report.skipped = read.skip_reasons.values().sum();
    report.skip_reasons = read.skip_reasons;
    report.quarantined = read.quarantined;
    report.reasons = read.reasons;
    let considered = report.read.saturating_sub(report.skipped).max(1);
    report.rejected = report.quarantined as f64 / considered as f64 > options.max_bad_ratio;
    sources::quarantine(db, entity.name(), &name, source_id, &read.rejected).await?;
    let counts = Counts {
        read: report.read,
        loaded: 0,
        duplicates: 0,
        skipped: report.skipped,
        quarantined: report.quarantined,
    };
    if report.rejected {
        if let Some(f) = &file {
            let _ = std::fs::remove_file(lake.abs(&f.path));
        }
        sources::finish(db, source_id, SourceState::Rejected, counts).await?;
    } else {
        let loaded =
            crate::lake::load::commit(lake, entity, source_id, file, repeats, counts).await?;
        report.loaded = loaded.rows;
        report.duplicates = loaded.duplicates;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

async fn checksum(input: &Input) -> Result<(String, u64), IngestError> {
    let input = input.clone();
    tokio::task::spawn_blocking(move || match &input {
        Input::Bytes { data, .. } => Ok((
            format!("{:x}", Sha256::digest(data.as_slice())),
            data.len() as u64,
        )),
        Input::File(path) => {
            let io = |error| IngestError::Io {
                path: path.display().to_string(),
                error,
            };
            let mut file = std::fs::File::open(path).map_err(io)?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut total = 0u64;
            loop {
                let n = file.read(&mut buf).map_err(io)?;
                if n == 0 {
                    break;
                }
                total += n as u64;
                hasher.update(&buf[..n]);
            }
            Ok((format!("{:x}", hasher.finalize()), total))
        }
    })
    .await
    .map_err(|e| IngestError::Unreadable(format!("checksum thread failed: {e}")))?
}

#[derive(Debug, Default)]
struct ReadSummary {
    read: u64,
    quarantined: u64,
    reasons: BTreeMap<String, u64>,
    skip_reasons: BTreeMap<String, u64>,
    rejected: Vec<Rejected>,
}

#[allow(clippy::too_many_arguments)]
fn read_records(
    mut records: Records,
    name: &str,
    entity: Entity,
    mapping: &Mapping,
    rules: &entity::ValueRules,
    total_bytes: u64,
    sink: &mut Sink,
    progress: Option<ProgressFn>,
) -> Result<ReadSummary, IngestError> {
    if matches!(records.format(), Format::Csv { .. }) {
        mapping
            .check_header(entity, records.header())
            .map_err(IngestError::Unreadable)?;
    }
    let plan = mapping.plan(entity, records.header());
    let delimiter = records.delimiter();
    let mut summary = ReadSummary::default();
    let reject =
        |summary: &mut ReadSummary, line: u64, reason: &str, detail: String, raw: String| {
            summary.quarantined += 1;
            *summary.reasons.entry(reason.to_owned()).or_default() += 1;
            if summary.rejected.len() < MAX_QUARANTINE_KEPT {
                summary.rejected.push(Rejected {
                    line,
                    reason: reason.to_owned(),
                    detail,
                    raw,
                });
            }
        };
    // A source that breaks off (a truncated or corrupt `.gz`) is named with the line reached.
    while let Some(record) = records.next_record().map_err(|error| IngestError::Io {
        path: format!("{name}:{}", records.line()),
        error,
    })? {
        summary.read += 1;
        match record.values {
            Err((e, raw)) => reject(&mut summary, record.line, e.reason(), e.to_string(), raw),
            Ok(values) => {
                if let Some(reason) = plan.skip_reason(&values) {
                    *summary.skip_reasons.entry(reason.to_owned()).or_default() += 1;
                } else {
                    match parse_row(entity, |col| plan.value(&values, col), rules) {
                        Ok(row) => sink.push(row)?,
                        Err(e) => reject(
                            &mut summary,
                            record.line,
                            e.reason(),
                            e.to_string(),
                            values.raw(delimiter),
                        ),
                    }
                }
            }
        }
        if summary.read % PROGRESS_EVERY == 0
            && let Some(p) = &progress
        {
            p(records.bytes_read(), total_bytes);
        }
    }
    if let Some(p) = &progress {
        p(total_bytes, total_bytes);
    }
    Ok(summary)
}

/// Values of a JSON record for tests and HTTP pages: a convenience to build `Values`.
pub fn json_values(map: serde_json::Map<String, serde_json::Value>) -> Values {
    Values::Json(
        map.into_iter()
            .map(|(k, v)| (k, read::json_text(v)))
            .collect(),
    )
}

/// Files matching a glob, sorted; a plain path matches itself.
pub fn expand(pattern: &Path) -> Result<Vec<PathBuf>, String> {
    let text = pattern.display().to_string();
    let paths = glob::glob(&text).map_err(|e| format!("bad path pattern `{text}`: {e}"))?;
    let mut out: Vec<PathBuf> = paths
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    Ok(out)
}

/// Checks a mapping file exists and is valid.
pub fn load_mapping(path: &Path) -> Result<Mapping, IngestError> {
    Mapping::load(path).map_err(IngestError::Mapping)
}
