//! Keeping the lake tidy: `compact` rewrites a dataset's files into one deduplicated file
//! (per partition) under one catalog commit, and `vacuum` deletes the files nobody reads
//! any more: those a commit replaced, and those a crashed writer never recorded.

use std::{
    collections::{BTreeMap, HashSet},
    path::Path,
    time::{Duration, SystemTime},
};

use serde::Serialize;

use super::{Dataset, Lake, LakeError, Result, io, write};
use crate::db::{
    RepoError,
    entities::{LakeCommitKind, lake_file},
    repo::lake::{self as catalog, Commit, Removes},
};

/// One dataset as `lake ls` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub dataset: String,
    pub rows: i64,
    pub bytes: i64,
    pub files: Vec<ListedFile>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ListedFile {
    /// Relative to the lake's path.
    pub path: String,
    pub rows: i64,
    pub bytes: i64,
    pub part: Option<String>,
    /// The ingested source that wrote it.
    pub load: Option<i64>,
    pub committed_at: String,
}

/// The committed files, by dataset (`only` one, if given).
pub async fn list(lake: &Lake, only: Option<Dataset>) -> Result<Vec<Listing>> {
    let files = catalog::all_live(lake.db()).await?;
    let mut out = Vec::new();
    for dataset in Dataset::ALL {
        if only.is_some_and(|d| d != dataset) {
            continue;
        }
        let mine: Vec<&lake_file::Model> = files
            .iter()
            .filter(|f| f.dataset == dataset.name())
            .collect();
        out.push(Listing {
            dataset: dataset.name().to_owned(),
            rows: mine.iter().map(|f| f.rows).sum(),
            bytes: mine.iter().map(|f| f.bytes).sum(),
            files: mine
                .iter()
                .map(|f| ListedFile {
                    path: f.path.clone(),
                    rows: f.rows,
                    bytes: f.bytes,
                    part: f.part.clone(),
                    load: f.source_id,
                    committed_at: chrono::DateTime::from_timestamp(f.committed_at, 0)
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_default(),
                })
                .collect(),
        });
    }
    Ok(out)
}

/// What a compaction did to one dataset (or partition).
#[derive(Debug, Clone, Serialize)]
pub struct Compacted {
    pub dataset: String,
    pub part: Option<String>,
    pub files_before: usize,
    pub rows_before: i64,
    pub rows_after: i64,
}

/// Rewrites each dataset (`only` one, if given) whose live files are several, or hold
/// overlapping keys, into one file of the newest row per key. Rows committed while it runs
/// stay as they are: the commit removes exactly the files it read.
pub async fn compact(lake: &Lake, only: Option<Dataset>) -> Result<Vec<Compacted>> {
    let mut out = Vec::new();
    for dataset in Dataset::ALL {
        if only.is_some_and(|d| d != dataset) || dataset == Dataset::Anomalies {
            continue;
        }
        let live = catalog::live(lake.db(), dataset.name()).await?;
        let mut parts: BTreeMap<Option<String>, Vec<lake_file::Model>> = BTreeMap::new();
        for f in live {
            parts.entry(f.part.clone()).or_default().push(f);
        }
        for (part, files) in parts {
            if files.len() < 2 && !files.iter().any(|f| f.overlaps) {
                continue;
            }
            out.push(compact_files(lake, dataset, part, &files).await?);
        }
    }
    Ok(out)
}

/// Compacts `files` (live files of one partition of `dataset`) into one.
pub async fn compact_files(
    lake: &Lake,
    dataset: Dataset,
    part: Option<String>,
    files: &[lake_file::Model],
) -> Result<Compacted> {
    let ctx = lake.session_with(files).await?;
    let stream = ctx
        .sql(&format!(
            "SELECT {} FROM {dataset} d{}",
            dataset.file_columns("d"),
            dataset
                .sorted_by()
                .map(|o| format!(" ORDER BY {o}"))
                .unwrap_or_default()
        ))
        .await?
        .execute_stream()
        .await?;
    let dir = match &part {
        Some(p) => write::part_dir(dataset, Some(p)),
        _ => format!("{dataset}/compacted"),
    };
    let file =
        write::write_stream(lake, write::new_name(&dir), dataset, stream, part.clone()).await?;
    let rows_after = file.rows;
    let path = file.path.clone();
    let add = if file.rows > 0 {
        vec![file]
    } else {
        let _ = std::fs::remove_file(lake.abs(&path));
        vec![]
    };
    let committed = catalog::commit(
        lake.db(),
        Commit {
            dataset: dataset.name().to_owned(),
            kind: LakeCommitKind::Compact,
            add,
            removes: Removes::Files(files.iter().map(|f| f.id).collect()),
            source: None,
            checked_at: None,
        },
    )
    .await;
    if let Err(e) = committed {
        let _ = std::fs::remove_file(lake.abs(&path));
        return Err(match e {
            RepoError::Conflict(m) => LakeError::Other(format!("compaction gave way: {m}")),
            e => e.into(),
        });
    }
    Ok(Compacted {
        dataset: dataset.name().to_owned(),
        part,
        files_before: files.len(),
        rows_before: files.iter().map(|f| f.rows).sum(),
        rows_after,
    })
}

impl std::fmt::Display for Compacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{}: {} files, {} rows -> 1 file, {} rows",
            self.dataset,
            self.part
                .as_ref()
                .map(|p| format!(" as of {p}"))
                .unwrap_or_default(),
            self.files_before,
            self.rows_before,
            self.rows_after
        )
    }
}

/// What a vacuum deleted.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Vacuumed {
    /// Files a commit replaced.
    pub replaced: u64,
    /// Files no commit recorded (a crashed or refused writer's).
    pub unrecorded: u64,
    pub bytes: u64,
}

/// Deletes replaced files and unrecorded ones older than `grace` (a writer still working,
/// or a query still reading, is left alone).
pub async fn vacuum(lake: &Lake, grace: Duration) -> Result<Vacuumed> {
    let mut done = Vacuumed::default();
    let now = chrono::Utc::now().timestamp();
    let known = catalog::all_files(lake.db()).await?;
    let mut forget = Vec::new();
    for f in &known {
        if let Some(removed) = f.removed_at
            && now - removed >= grace.as_secs() as i64
        {
            let path = lake.abs(&f.path);
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    done.replaced += 1;
                    done.bytes += f.bytes as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path)(e)),
            }
            forget.push(f.id);
        }
    }
    catalog::forget(lake.db(), &forget).await?;
    // Model files are recorded apart (`model_files`); one written by a job killed before
    // recording it is swept like an unrecorded Parquet file.
    let models = crate::db::repo::recommend::model_file_paths(lake.db()).await?;
    let recorded: HashSet<&str> = known
        .iter()
        .map(|f| f.path.as_str())
        .chain(models.iter().map(String::as_str))
        .collect();
    let cutoff = SystemTime::now()
        .checked_sub(grace)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    sweep(lake.root(), lake.root(), &recorded, cutoff, &mut done)?;
    Ok(done)
}

fn sweep(
    root: &Path,
    dir: &Path,
    recorded: &HashSet<&str>,
    cutoff: SystemTime,
    done: &mut Vacuumed,
) -> Result {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let meta = entry.metadata().map_err(io(&path))?;
        if meta.is_dir() {
            sweep(root, &path, recorded, cutoff, done)?;
            // Only now-empty folders go; removing a non-empty one fails harmlessly.
            if path != root {
                let _ = std::fs::remove_dir(&path);
            }
            continue;
        }
        let name = path.to_string_lossy();
        if ![".parquet", ".parquet.tmp", ".bin", ".bin.tmp"]
            .iter()
            .any(|end| name.ends_with(end))
        {
            continue;
        }
        let rel = path
            .strip_prefix(root)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let old = meta.modified().is_ok_and(|m| m <= cutoff);
        if !recorded.contains(rel.as_str()) && old {
            std::fs::remove_file(&path).map_err(io(&path))?;
            done.unrecorded += 1;
            done.bytes += meta.len();
        }
    }
    Ok(())
}
