//! The recommendation jobs' control-plane reads and writes: where models' serving artifacts
//! are, and the shape of dealings read from the lake. Dealings and lists live in the lake.

use sea_orm::{ConnectionTrait, Statement};

use crate::db::{Db, Result};

/// One customer's dealings with one product, summed by kind; ids as stored (`String`) or
/// dense (`u32`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dealings<Id = String> {
    pub customer: Id,
    pub product: Id,
    /// Distinct paid orders containing the product.
    pub purchases: u32,
    pub carts: u32,
    pub clicks: u32,
    pub rec_clicks: u32,
    pub views: u32,
    /// Epoch seconds of the last dealing of any kind.
    pub last_at: i64,
}

/// Dealings before `split` and before `end` (`split` ≤ `end`), and the `(customer, product)`
/// pairs bought in `[split, end)`, from one scan of orders and one of events: the
/// `recommend` job's time split without reading the tables twice. Ids are mapped to dense
/// ones as rows arrive (rows of unknown customers or products are left out), so a million
/// customers' dealings are held as integers, not strings.
pub struct SplitDealings {
    pub before_split: Vec<Dealings<u32>>,
    pub before_end: Vec<Dealings<u32>>,
    pub bought_after_split: Vec<(u32, u32)>,
}

/// Records model `model_id`'s artifact file (`path`, relative to the lake) in `format`, and
/// forgets those of models of its kind that can no longer serve (neither it nor the
/// champion). Returns the paths no longer recorded, for the caller to remove: the model's
/// own earlier file (a retried job stores again) and the dropped models'.
pub async fn record_model_file(
    db: &Db,
    model_id: i64,
    format: &str,
    path: &str,
    bytes: i64,
) -> Result<Vec<String>> {
    let backend = db.get_database_backend();
    // A write transaction from the start: on SQLite a read that later writes fails at once
    // ("database is locked") when another writer came between.
    let txn = crate::db::begin_write(db).await?;
    let mut gone: Vec<String> = Vec::new();
    for row in txn
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            super::intelligence::placeholder(
                backend,
                "DELETE FROM model_files WHERE model_id = ? OR model_id IN \
                 (SELECT id FROM models WHERE kind = (SELECT kind FROM models WHERE id = ?) \
                 AND status <> 'champion') RETURNING path",
            ),
            [model_id.into(), model_id.into()],
        ))
        .await?
    {
        gone.push(row.try_get_by_index(0)?);
    }
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        super::intelligence::placeholder(
            backend,
            "INSERT INTO model_files (model_id, format, path, bytes) VALUES (?, ?, ?, ?)",
        ),
        [model_id.into(), format.into(), path.into(), bytes.into()],
    ))
    .await?;
    txn.commit().await?;
    gone.retain(|p| p != path);
    Ok(gone)
}

/// The recorded artifact file of a model (relative to the lake), if it is in `format`.
pub async fn model_file(db: &Db, model_id: i64, format: &str) -> Result<Option<String>> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            super::intelligence::placeholder(
                backend,
                "SELECT path FROM model_files WHERE model_id = ? AND format = ?",
            ),
            [model_id.into(), format.into()],
        ))
        .await?;
    Ok(row.map(|r| r.try_get_by_index::<String>(0)).transpose()?)
}

/// Every recorded model file (relative to the lake), for `lake vacuum`.
pub async fn model_file_paths(db: &Db) -> Result<Vec<String>> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT path FROM model_files".to_owned(),
        ))
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get_by_index::<String>(0))
        .collect::<std::result::Result<_, _>>()?)
}
