//! Watermarks: a named position an incremental consumer has folded data up to (the
//! `feedback` pass over loads, the `points` expiry over the ledger), and who holds it while
//! folding, so two consumers of the same name never work on one span at once.

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use super::intelligence::placeholder;
use crate::db::{Db, Result};

/// A watermark's position; 0 when it was never set.
pub async fn watermark(db: &Db, name: &str) -> Result<i64> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            placeholder(backend, "SELECT position FROM watermarks WHERE name = ?"),
            [name.into()],
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0))
}

/// Takes the watermark for `holder` until `until` (epoch seconds), unless someone else
/// holds it and their hold has not run out. The same holder (a retried attempt of the same
/// job run) takes it back at once. Returns whether it is held now.
pub async fn hold(db: &Db, name: &str, holder: &str, now: i64, until: i64) -> Result<bool> {
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        placeholder(
            backend,
            "INSERT INTO watermarks (name, position, updated_at) VALUES (?, 0, ?) \
             ON CONFLICT (name) DO NOTHING",
        ),
        [name.into(), crate::db::now().into()],
    ))
    .await?;
    let res = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            placeholder(
                backend,
                "UPDATE watermarks SET holder = ?, held_until = ? WHERE name = ? \
                 AND (holder IS NULL OR held_until IS NULL OR held_until < ? OR holder = ?)",
            ),
            [
                holder.into(),
                until.into(),
                name.into(),
                now.into(),
                holder.into(),
            ],
        ))
        .await?;
    Ok(res.rows_affected() == 1)
}

/// Who holds a watermark, if anyone.
pub async fn holder(db: &Db, name: &str) -> Result<Option<String>> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            placeholder(backend, "SELECT holder FROM watermarks WHERE name = ?"),
            [name.into()],
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get_by_index::<Option<String>>(0))
        .transpose()?
        .flatten())
}

/// Lets go of a watermark held by `holder`.
pub async fn release(db: &Db, name: &str, holder: &str) -> Result {
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        placeholder(
            backend,
            "UPDATE watermarks SET holder = NULL, held_until = NULL WHERE name = ? AND holder = ?",
        ),
        [name.into(), holder.into()],
    ))
    .await?;
    Ok(())
}

/// Moves a watermark to `position` (never backwards).
pub async fn set_watermark(db: &Db, name: &str, position: i64) -> Result {
    let backend = db.get_database_backend();
    let now = crate::db::now();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO watermarks (name, position, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET position = GREATEST(watermarks.position, excluded.position), \
             updated_at = excluded.updated_at"
        }
        _ => {
            "INSERT INTO watermarks (name, position, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET position = MAX(watermarks.position, excluded.position), \
             updated_at = excluded.updated_at"
        }
    };
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        [name.into(), position.into(), now.into()],
    ))
    .await?;
    Ok(())
}
