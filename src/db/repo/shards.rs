//! What sharded jobs need from the database: deleting only their own customers' rows. The
//! shard of a customer is a hash computed in Rust (`pipeline::shard`), which neither SQLite
//! nor PostgreSQL can compute the same way, so the ids are read and the owned ones deleted
//! by list.

use sea_orm::{ConnectionTrait, Statement, Value};

use super::{CHUNK, intelligence::placeholder};
use crate::{
    db::{Db, Result},
    pipeline::Shard,
};

/// Deletes the rows of `table` matching `condition` (SQL with `?` for each of `values`)
/// whose `customer_id` belongs to `shard`; with no shard, every matching row. Returns the
/// rows deleted.
pub async fn delete_where(
    db: &Db,
    table: &str,
    condition: &str,
    values: Vec<Value>,
    shard: Option<Shard>,
) -> Result<u64> {
    let backend = db.get_database_backend();
    let Some(shard) = shard else {
        let sql = placeholder(backend, &format!("DELETE FROM {table} WHERE {condition}"));
        return Ok(db
            .execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?
            .rows_affected());
    };
    let ids: Vec<String> = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            placeholder(
                backend,
                &format!("SELECT DISTINCT customer_id FROM {table} WHERE {condition}"),
            ),
            values.clone(),
        ))
        .await?
        .iter()
        .map(|r| r.try_get_by_index::<String>(0))
        .collect::<std::result::Result<_, _>>()?;
    let owned: Vec<String> = ids.into_iter().filter(|id| shard.owns(id)).collect();
    // One transaction for every chunk: one commit, and no half-cleared shard.
    let txn = crate::db::begin_write(db).await?;
    let mut deleted = 0;
    for chunk in owned.chunks(CHUNK) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = placeholder(
            backend,
            &format!("DELETE FROM {table} WHERE {condition} AND customer_id IN ({marks})"),
        );
        let mut bound = values.clone();
        bound.extend(chunk.iter().map(|id| Value::from(id.clone())));
        deleted += txn
            .execute_raw(Statement::from_sql_and_values(backend, sql, bound))
            .await?
            .rows_affected();
    }
    txn.commit().await?;
    Ok(deleted)
}
