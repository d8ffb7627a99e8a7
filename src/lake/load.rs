//! A load: an ingested source's rows become one Parquet file, checked against what is
//! committed, then recorded in one catalog commit that also marks the source complete.
//!
//! Keys follow DESIGN.md: a row whose key is already committed with the same values adds
//! nothing (it counts as a duplicate and is left out of the file); one with other values
//! is kept, and readers take the newest load's row. An order line seen again cancelled or
//! refunded takes that status; a paid copy never turns it back.

use std::{collections::HashSet, sync::Arc};

use datafusion::arrow::{
    array::{
        ArrayRef, Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
        TimestampMillisecondBuilder,
    },
    record_batch::RecordBatch,
};

use super::{Dataset, Lake, LakeError, Result, arrays, collect, write::FileWriter};
use crate::{
    db::{
        entities::{LakeCommitKind, lake_file},
        repo::{
            lake::{self as catalog, Commit, NewFile, Removes, SourceEnd},
            sources::Counts,
        },
    },
    ingest::entity::{Entity, OrderStatus, Row},
};

/// Rows per Arrow batch.
const BATCH: usize = 64 * 1024;

/// The folder of one load's files.
pub fn load_dir(dataset: Dataset, source_id: i64) -> String {
    format!("{dataset}/load={source_id}")
}

/// Streams parsed rows into the load's Parquet file, leaving out repeats of a key within
/// the file. Runs on a blocking thread.
pub struct Sink {
    entity: Entity,
    source_id: i64,
    rows: Vec<Row>,
    /// Key hashes seen in this file (xxh3, as order `line_key`s already are: 8 bytes a row
    /// instead of the key's text).
    seen: HashSet<u64>,
    /// Order lines with a cancelled or refunded row in the file.
    not_paid: HashSet<u64>,
    /// Order lines written as paid whose cancelled or refunded copy came later: their paid
    /// row is taken out of the file at the end, so the file holds one row per key and
    /// readers need no deduplication.
    superseded: HashSet<u64>,
    repeats: u64,
    lake: Lake,
    /// Batches go to a thread that encodes the Parquet file, so parsing and compressing
    /// use a core each.
    batches: Option<std::sync::mpsc::SyncSender<RecordBatch>>,
    encoder: Option<std::thread::JoinHandle<Result<FileWriter>>>,
}

impl Sink {
    pub fn new(lake: &Lake, entity: Entity, source_id: i64) -> Result<Self> {
        let dataset = Dataset::of(entity);
        let rel = super::write::new_name(&load_dir(dataset, source_id));
        let mut file = FileWriter::create(lake, rel, dataset)?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<RecordBatch>(2);
        let encoder = std::thread::Builder::new()
            .name("parquet-encoder".to_owned())
            .spawn(move || {
                for batch in rx {
                    file.write(&batch)?;
                }
                Ok(file)
            })
            .map_err(|e| LakeError::Other(format!("starting the Parquet encoder: {e}")))?;
        Ok(Self {
            entity,
            source_id,
            rows: Vec::with_capacity(BATCH),
            seen: HashSet::new(),
            not_paid: HashSet::new(),
            superseded: HashSet::new(),
            repeats: 0,
            lake: lake.clone(),
            batches: Some(tx),
            encoder: Some(encoder),
        })
    }

    pub fn push(&mut self, row: Row) -> Result {
        let key = key_hash(&row);
        let not_paid = matches!(&row, Row::Order(o) if o.status != OrderStatus::Paid);
        if !self.seen.insert(key) {
            // The first cancelled or refunded copy of a line outranks the paid one already
            // written; any other copy adds nothing.
            if not_paid && self.not_paid.insert(key) {
                self.superseded.insert(key);
            } else {
                self.repeats += 1;
                return Ok(());
            }
        } else if not_paid {
            self.not_paid.insert(key);
        }
        self.rows.push(row);
        if self.rows.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        let batch = to_batch(self.entity, &rows, self.source_id)?;
        let sent = self
            .batches
            .as_ref()
            .is_some_and(|tx| tx.send(batch).is_ok());
        if sent {
            Ok(())
        } else {
            // The encoder stopped: its error says why.
            self.join().map(|_| ())
        }
    }

    /// Ends the encoder thread and takes back its file.
    fn join(&mut self) -> Result<FileWriter> {
        self.batches = None;
        let encoder = self
            .encoder
            .take()
            .ok_or_else(|| LakeError::Other("the Parquet encoder already ended".to_owned()))?;
        encoder
            .join()
            .map_err(|_| LakeError::Other("the Parquet encoder panicked".to_owned()))?
    }

    /// Completes the file; `None` when no row was written. Also returns the rows left out
    /// as repeats.
    pub fn finish(mut self) -> Result<(Option<NewFile>, u64)> {
        self.flush()?;
        let file = self.join()?;
        if file.rows() == 0 {
            file.abandon();
            return Ok((None, self.repeats));
        }
        let written = file.finish(None, false)?;
        if self.superseded.is_empty() {
            return Ok((Some(written), self.repeats));
        }
        let kept = without_superseded(&self.lake, &written, &self.superseded)?;
        Ok((Some(kept), self.repeats + self.superseded.len() as u64))
    }

    pub fn abandon(mut self) {
        if let Ok(file) = self.join() {
            file.abandon();
        }
    }
}

/// `written` (an orders file) rewritten without the paid rows of `superseded` lines.
fn without_superseded(
    lake: &Lake,
    written: &NewFile,
    superseded: &HashSet<u64>,
) -> Result<NewFile> {
    use datafusion::{
        arrow::{
            array::{AsArray, BooleanArray},
            compute::filter_record_batch,
            datatypes::Int64Type,
        },
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder,
    };
    let path = lake.abs(&written.path);
    let file = std::fs::File::open(&path).map_err(super::io(&path))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)?
        .with_batch_size(BATCH)
        .build()?;
    let dir = written
        .path
        .rsplit_once('/')
        .map(|(d, _)| d.to_owned())
        .ok_or_else(|| LakeError::Other(format!("bad lake path {}", written.path)))?;
    let schema = Dataset::Orders.schema();
    let mut out = FileWriter::create(lake, super::write::new_name(&dir), Dataset::Orders)?;
    for batch in reader {
        let batch = super::write::conform(&batch?, &schema)?;
        let ids = batch.column(0).as_string::<i32>();
        let keys = batch.column(1).as_primitive::<Int64Type>();
        let status = batch.column(7).as_string::<i32>();
        let keep: BooleanArray = (0..batch.num_rows())
            .map(|r| {
                Some(
                    status.value(r) != "paid"
                        || !superseded.contains(&order_key(ids.value(r), keys.value(r))),
                )
            })
            .collect();
        out.write(&filter_record_batch(&batch, &keep)?)?;
    }
    let kept = out.finish(None, false)?;
    std::fs::remove_file(&path).map_err(super::io(&path))?;
    Ok(kept)
}

fn order_key(order_id: &str, line_key: i64) -> u64 {
    let mut b = Vec::with_capacity(order_id.len() + 9);
    b.extend_from_slice(order_id.as_bytes());
    b.push(0);
    b.extend_from_slice(&line_key.to_le_bytes());
    xxhash_rust::xxh3::xxh3_64(&b)
}

fn key_hash(row: &Row) -> u64 {
    let text = |s: &str| xxhash_rust::xxh3::xxh3_64(s.as_bytes());
    match row {
        Row::Customer(c) => text(&c.customer_id),
        Row::Product(p) => text(&p.product_id),
        Row::Order(o) => order_key(&o.order_id, o.line_key()),
        Row::Event(e) => text(&e.event_id),
        Row::Review(r) => text(&r.review_id),
    }
}

/// Rows of one entity as an Arrow batch in its dataset's schema.
pub fn to_batch(entity: Entity, rows: &[Row], source_id: i64) -> Result<RecordBatch> {
    let n = rows.len();
    let text = || StringBuilder::with_capacity(n, n * 12);
    let int = || Int64Builder::with_capacity(n);
    let time = || TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    // Seconds become the files' milliseconds.
    let ms = |t: i64| t.saturating_mul(1000);
    let mut load = int();
    for _ in 0..n {
        load.append_value(source_id);
    }
    let columns: Vec<ArrayRef> = match entity {
        Entity::Customers => {
            let (mut id, mut signup, mut year, mut gender, mut region) = (
                text(),
                time(),
                Int32Builder::with_capacity(n),
                text(),
                text(),
            );
            for r in rows {
                if let Row::Customer(c) = r {
                    id.append_value(&c.customer_id);
                    signup.append_option(c.signup_at.map(ms));
                    year.append_option(c.birth_year);
                    gender.append_option(c.gender.as_deref());
                    region.append_option(c.region.as_deref());
                }
            }
            vec![
                Arc::new(id.finish()),
                Arc::new(signup.finish()),
                Arc::new(year.finish()),
                Arc::new(gender.finish()),
                Arc::new(region.finish()),
            ]
        }
        Entity::Products => {
            let (mut id, mut title, mut desc, mut cat, mut price) =
                (text(), text(), text(), text(), int());
            for r in rows {
                if let Row::Product(p) = r {
                    id.append_value(&p.product_id);
                    title.append_value(&p.title);
                    desc.append_value(&p.description);
                    cat.append_value(&p.category);
                    price.append_option(p.price_cents);
                }
            }
            vec![
                Arc::new(id.finish()),
                Arc::new(title.finish()),
                Arc::new(desc.finish()),
                Arc::new(cat.finish()),
                Arc::new(price.finish()),
            ]
        }
        Entity::Orders => {
            let (mut id, mut key, mut customer, mut product) = (text(), int(), text(), text());
            let (mut qty, mut price, mut at, mut status) = (int(), int(), time(), text());
            for r in rows {
                if let Row::Order(o) = r {
                    id.append_value(&o.order_id);
                    key.append_value(o.line_key());
                    customer.append_value(&o.customer_id);
                    product.append_value(&o.product_id);
                    qty.append_value(o.quantity);
                    price.append_value(o.unit_price_cents);
                    at.append_value(ms(o.ordered_at));
                    status.append_value(o.status.as_str());
                }
            }
            vec![
                Arc::new(id.finish()),
                Arc::new(key.finish()),
                Arc::new(customer.finish()),
                Arc::new(product.finish()),
                Arc::new(qty.finish()),
                Arc::new(price.finish()),
                Arc::new(at.finish()),
                Arc::new(status.finish()),
            ]
        }
        Entity::Events => {
            let (mut id, mut customer, mut product, mut kind) = (text(), text(), text(), text());
            let (mut at, mut duration) = (time(), Float64Builder::with_capacity(n));
            for r in rows {
                if let Row::Event(e) = r {
                    id.append_value(&e.event_id);
                    customer.append_value(&e.customer_id);
                    product.append_option(e.product_id.as_deref());
                    kind.append_value(e.kind.as_str());
                    at.append_value(ms(e.occurred_at));
                    duration.append_option(e.duration_s);
                }
            }
            vec![
                Arc::new(id.finish()),
                Arc::new(customer.finish()),
                Arc::new(product.finish()),
                Arc::new(kind.finish()),
                Arc::new(at.finish()),
                Arc::new(duration.finish()),
            ]
        }
        Entity::Reviews => {
            let (mut id, mut customer, mut product) = (text(), text(), text());
            let (mut rating, mut body, mut at) = (Int16Builder::with_capacity(n), text(), time());
            for r in rows {
                if let Row::Review(v) = r {
                    id.append_value(&v.review_id);
                    customer.append_value(&v.customer_id);
                    product.append_value(&v.product_id);
                    rating.append_value(v.rating);
                    body.append_value(&v.text);
                    at.append_value(ms(v.created_at));
                }
            }
            vec![
                Arc::new(id.finish()),
                Arc::new(customer.finish()),
                Arc::new(product.finish()),
                Arc::new(rating.finish()),
                Arc::new(body.finish()),
                Arc::new(at.finish()),
            ]
        }
    };
    let mut columns = columns;
    columns.push(Arc::new(load.finish()));
    Ok(RecordBatch::try_new(Dataset::of(entity).schema(), columns)?)
}

/// What a committed load added.
#[derive(Debug, Clone, Copy, Default)]
pub struct Loaded {
    /// Rows that add something (new keys, or new values for a key).
    pub rows: u64,
    /// Rows left out because a committed row (or an earlier row of the file) says the same.
    pub duplicates: u64,
}

/// Checks the load's file against the committed rows and commits it, completing the source.
/// `counts` are the source's counts apart from `loaded` and `duplicates`, which this fills
/// in.
pub async fn commit(
    lake: &Lake,
    entity: Entity,
    source_id: i64,
    file: Option<NewFile>,
    repeats: u64,
    mut counts: Counts,
) -> Result<Loaded> {
    crate::fault::point("load-written");
    let dataset = Dataset::of(entity);
    let checked_at = catalog::last_commit(lake.db()).await?;
    let live = catalog::live(lake.db(), dataset.name()).await?;
    let file = match file {
        Some(f) if !live.is_empty() => against_committed(lake, dataset, f, &live).await?,
        other => other,
    };
    let rows = file.as_ref().map_or(0, |f| f.rows as u64);
    let written = counts
        .read
        .saturating_sub(counts.skipped + counts.quarantined);
    let loaded = Loaded {
        rows,
        duplicates: written.saturating_sub(rows).max(repeats),
    };
    counts.loaded = loaded.rows;
    counts.duplicates = loaded.duplicates;
    crate::fault::point("load-checked");
    catalog::commit(
        lake.db(),
        Commit {
            dataset: dataset.name().to_owned(),
            kind: LakeCommitKind::Load,
            add: file.into_iter().collect(),
            removes: Removes::Nothing,
            source: Some(SourceEnd {
                id: source_id,
                counts,
            }),
            checked_at: Some(checked_at),
        },
    )
    .await?;
    Ok(loaded)
}

/// `file` without the rows that add nothing to the committed ones (a new file when some
/// were left out), marked as overlapping when some of its keys are committed with other
/// values.
async fn against_committed(
    lake: &Lake,
    dataset: Dataset,
    file: NewFile,
    live: &[lake_file::Model],
) -> Result<Option<NewFile>> {
    let ctx = lake.session_with(live).await?;
    let incoming = lake_file::Model {
        id: 0,
        dataset: dataset.name().to_owned(),
        part: None,
        path: file.path.clone(),
        rows: file.rows,
        bytes: file.bytes,
        source_id: None,
        overlaps: false,
        commit_id: 0,
        committed_at: 0,
        removed_at: None,
    };
    lake.register_dataset(&ctx, "incoming", dataset, &[&incoming])
        .await?;
    // The committed rows of the incoming keys only: once files overlap, the whole dataset's
    // view ranks every row for its newest (at scale, a day's load took 96 s so).
    let id = dataset.key()[0];
    ctx.sql(&format!(
        "CREATE VIEW incoming_keys AS SELECT DISTINCT {id} AS id FROM incoming"
    ))
    .await?;
    lake.register_subset(&ctx, "committed", dataset, "incoming_keys", false)
        .await?;
    let on_key = dataset
        .key()
        .iter()
        .map(|k| format!("i.{k} = d.{k}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let known = arrays::single_int(
        &collect(
            &ctx,
            &format!("SELECT COUNT(*) FROM incoming i LEFT SEMI JOIN committed d ON {on_key}"),
        )
        .await?,
    )?;
    if known == 0 {
        return Ok(Some(file));
    }
    let same = dataset
        .schema()
        .fields()
        .iter()
        .map(|f| f.name())
        .filter(|c| *c != "_load" && !dataset.key().contains(&c.as_str()))
        .map(|c| format!("(i.{c} IS NOT DISTINCT FROM d.{c})"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let adds_nothing = if dataset == Dataset::Orders {
        format!("(({same}) OR (i.status = 'paid' AND d.status <> 'paid'))")
    } else {
        format!("({same})")
    };
    let keep = format!(
        "SELECT {} FROM incoming i LEFT ANTI JOIN committed d ON {on_key} AND {adds_nothing}",
        dataset.file_columns("i")
    );
    let kept =
        arrays::single_int(&collect(&ctx, &format!("SELECT COUNT(*) FROM ({keep})")).await?)?;
    let dropped = file.rows - kept;
    let changed = known - dropped;
    if dropped == 0 {
        return Ok(Some(NewFile {
            overlaps: file.overlaps || changed > 0,
            ..file
        }));
    }
    let stream = ctx.sql(&keep).await?.execute_stream().await?;
    let dir = file
        .path
        .rsplit_once('/')
        .map(|(d, _)| d.to_owned())
        .ok_or_else(|| LakeError::Other(format!("bad lake path {}", file.path)))?;
    let mut kept_file =
        super::write::write_stream(lake, super::write::new_name(&dir), dataset, stream, None)
            .await?;
    let _ = std::fs::remove_file(lake.abs(&file.path));
    kept_file.overlaps = file.overlaps || changed > 0;
    if kept_file.rows == 0 {
        let _ = std::fs::remove_file(lake.abs(&kept_file.path));
        return Ok(None);
    }
    Ok(Some(kept_file))
}
