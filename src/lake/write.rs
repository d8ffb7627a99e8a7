//! Writing Parquet files into the lake. A file is written under a temporary name and renamed
//! when complete, so a file with a final name is always whole; it becomes part of a dataset
//! only when the catalog records it.

use std::{fs::File, path::PathBuf};

use datafusion::{
    arrow::{datatypes::SchemaRef, record_batch::RecordBatch},
    execution::SendableRecordBatchStream,
    parquet::{
        arrow::ArrowWriter,
        basic::{Compression, ZstdLevel},
        file::properties::WriterProperties,
        schema::types::ColumnPath,
    },
};
use futures::StreamExt;

use super::{Dataset, Lake, LakeError, Result, io};
use crate::db::{
    entities::LakeCommitKind,
    repo::lake::{self as catalog, Commit, NewFile, Removes},
};

/// The folder of `dataset`'s files in `part` (an as-of date): `features/as_of=2026-06-30`,
/// or the dataset's own folder without one.
pub fn part_dir(dataset: Dataset, part: Option<&str>) -> String {
    match part {
        Some(p) => format!("{dataset}/as_of={p}"),
        None => dataset.name().to_owned(),
    }
}

/// Writes the batch `build` makes (on a blocking thread: it encodes) as one file of
/// `dataset` in `part`, and commits it in one transaction with `removes`: what it replaces.
/// A file that replaces nothing overlaps the live ones, and its rows win per key; an empty
/// one is not kept, and a commit that would neither add nor remove is not made. Returns the
/// rows written.
pub async fn commit_batch(
    lake: &Lake,
    dataset: Dataset,
    part: Option<String>,
    removes: Removes,
    build: impl FnOnce() -> Result<RecordBatch> + Send + 'static,
) -> Result<u64> {
    let adds_only = matches!(removes, Removes::Nothing);
    let writer = lake.clone();
    let file_part = part.clone();
    let file = tokio::task::spawn_blocking(move || -> Result<Option<NewFile>> {
        let batch = build()?;
        if batch.num_rows() == 0 {
            return Ok(None);
        }
        let name = new_name(&part_dir(dataset, file_part.as_deref()));
        let mut file = FileWriter::create(&writer, name, dataset)?;
        file.write(&batch)?;
        Ok(Some(file.finish(file_part, adds_only)?))
    })
    .await
    .map_err(|e| LakeError::Other(format!("{dataset} writer failed: {e}")))??;
    let rows = file.as_ref().map_or(0, |f| f.rows as u64);
    if file.is_none() && adds_only {
        return Ok(0);
    }
    catalog::commit(
        lake.db(),
        Commit {
            dataset: dataset.name().to_owned(),
            kind: if adds_only {
                LakeCommitKind::Load
            } else {
                LakeCommitKind::Replace
            },
            add: file.into_iter().collect(),
            removes,
            source: None,
            checked_at: None,
        },
    )
    .await?;
    Ok(rows)
}

/// A unique file name in `dir` (relative to the lake's root).
pub fn new_name(dir: &str) -> String {
    format!(
        "{dir}/part-{:x}-{:08x}.parquet",
        chrono::Utc::now().timestamp_micros(),
        rand::random::<u32>()
    )
}

pub struct FileWriter {
    rel: String,
    tmp: PathBuf,
    path: PathBuf,
    writer: ArrowWriter<File>,
    rows: u64,
}

impl FileWriter {
    /// Starts the file `rel` (relative to the lake's root) of `dataset`.
    pub fn create(lake: &Lake, rel: String, dataset: Dataset) -> Result<Self> {
        let path = lake.abs(&rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let tmp = path.with_extension("parquet.tmp");
        let file = File::create(&tmp).map_err(io(&tmp))?;
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
            .set_max_row_group_row_count(Some(dataset.row_group()));
        for column in dataset.distinct_columns() {
            props = props.set_column_dictionary_enabled(ColumnPath::from(*column), false);
        }
        let writer = ArrowWriter::try_new(file, dataset.schema(), Some(props.build()))?;
        Ok(Self {
            rel,
            tmp,
            path,
            writer,
            rows: 0,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result {
        self.rows += batch.num_rows() as u64;
        Ok(self.writer.write(batch)?)
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Closes the file, flushes it to disk and gives it its final name.
    pub fn finish(self, part: Option<String>, overlaps: bool) -> Result<NewFile> {
        let file = self.writer.into_inner()?;
        file.sync_all().map_err(io(&self.tmp))?;
        let bytes = file.metadata().map_err(io(&self.tmp))?.len();
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(io(&self.path))?;
        Ok(NewFile {
            path: self.rel,
            part,
            rows: self.rows as i64,
            bytes: bytes as i64,
            overlaps,
        })
    }

    /// Gives up the file (nothing was committed).
    pub fn abandon(self) {
        drop(self.writer);
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// `batch` with `schema`'s column types and names (a query may return text as views, or
/// widen a nullable flag).
pub fn conform(
    batch: &RecordBatch,
    schema: &SchemaRef,
) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

/// Writes a query's result stream to the file `rel` of `dataset`; encoding runs on a
/// blocking thread.
pub async fn write_stream(
    lake: &Lake,
    rel: String,
    dataset: Dataset,
    mut stream: SendableRecordBatchStream,
    part: Option<String>,
) -> Result<NewFile> {
    let schema = dataset.schema();
    let mut writer = FileWriter::create(lake, rel, dataset)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<RecordBatch>(2);
    let encoder = tokio::task::spawn_blocking(move || {
        while let Some(batch) = rx.blocking_recv() {
            if let Err(e) = writer.write(&batch) {
                writer.abandon();
                return Err(e);
            }
        }
        writer.finish(part, false)
    });
    let mut failed = None;
    while let Some(batch) = stream.next().await {
        match batch.and_then(|b| Ok(conform(&b, &schema)?)) {
            Ok(b) => {
                if tx.send(b).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let written = encoder
        .await
        .map_err(|e| LakeError::Other(format!("parquet writer thread failed: {e}")))?;
    match failed {
        Some(e) => {
            if let Ok(f) = &written {
                let _ = std::fs::remove_file(lake.abs(&f.path));
            }
            Err(e.into())
        }
        None => written,
    }
}
