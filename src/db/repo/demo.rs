//! What `patron demo` needs to know about a database before it touches it: whether the demo
//! made it (a marker row in the audit log, written when the demo first set it up), and, if
//! not, whether anything is stored in it already.

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use serde_json::Value;

use crate::db::{
    Db, Result,
    entities::{audit_log, run},
};

/// The audit action of the marker.
pub const MARKER: &str = "demo database";

/// Tables whose rows mean "someone's data is here".
const DATA_TABLES: &[&str] = &[
    "pipelines",
    "runs",
    "ingested_sources",
    "lake_files",
    "point_ledger",
    "campaigns",
    "models",
];

/// The details of the marker the demo wrote when it set this database up, if it did.
pub async fn marker(db: &Db) -> Result<Option<Value>> {
    let row = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq(MARKER))
        .order_by_asc(audit_log::Column::Id)
        .one(db)
        .await?;
    Ok(row.map(|r| serde_json::from_str(&r.details).unwrap_or(Value::Null)))
}

/// Records that the demo set this database up, with what it needs to reuse it.
pub async fn mark(db: &Db, details: Value) -> Result {
    super::audit::record(db, MARKER, "this database", details).await
}

/// Whether a demo of an earlier patron (which wrote no marker) ran here: its runs are keyed
/// `demo__…`.
pub async fn has_demo_runs(db: &Db) -> Result<bool> {
    let keys: Vec<String> = run::Entity::find()
        .select_only()
        .column(run::Column::RunKey)
        .filter(run::Column::RunKey.starts_with("demo"))
        .limit(100)
        .into_tuple()
        .all(db)
        .await?;
    Ok(keys.iter().any(|k| k.starts_with("demo__")))
}

/// The tables of [`DATA_TABLES`] that hold at least one row.
pub async fn tables_with_rows(db: &Db) -> Result<Vec<&'static str>> {
    let backend = db.get_database_backend();
    let mut out = Vec::new();
    for table in DATA_TABLES {
        let row = db
            .query_one_raw(Statement::from_string(
                backend,
                format!("SELECT 1 FROM {table} LIMIT 1"),
            ))
            .await?;
        if row.is_some() {
            out.push(*table);
        }
    }
    Ok(out)
}
