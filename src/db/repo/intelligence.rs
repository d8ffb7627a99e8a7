//! Control-plane writes of the intelligence jobs (product sentiment) and the helpers the
//! other repositories share: placeholders and chunked bulk writes.

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::db::{
    Db, Result,
    bulk::{self, Cell, TableSpec},
};

/// `sql` with its `?`s as `$1`, `$2`, … on PostgreSQL.
pub(crate) fn placeholder(backend: DbBackend, sql: &str) -> String {
    if backend != DbBackend::Postgres {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes rows in transactions of `batch` rows; returns how many were written.
pub async fn write_all(
    db: &Db,
    spec: &TableSpec,
    rows: Vec<Vec<Cell>>,
    batch: usize,
) -> Result<u64> {
    let mut written = 0;
    for chunk in rows.chunks(batch.max(1)) {
        written += bulk::write(db, spec, chunk)
            .await
            .map_err(|e| crate::db::RepoError::Corrupt(format!("writing {}: {e}", spec.table)))?;
    }
    Ok(written)
}

/// Replaces every product's mean sentiment and rating (computed from the lake's reviews).
pub async fn replace_product_sentiment(db: &Db, rows: Vec<(String, i64, f64, f64)>) -> Result<u64> {
    let txn = crate::db::begin_write(db).await?;
    txn.execute_unprepared("DELETE FROM product_sentiment")
        .await?;
    let n = rows.len() as u64;
    for chunk in rows.chunks(super::CHUNK) {
        let mut values = Vec::with_capacity(chunk.len() * 4);
        let mut tuples = Vec::with_capacity(chunk.len());
        for (product, reviews, score, rating) in chunk {
            let at = values.len();
            tuples.push(match db.get_database_backend() {
                DbBackend::Postgres => {
                    format!("(${}, ${}, ${}, ${})", at + 1, at + 2, at + 3, at + 4)
                }
                _ => "(?, ?, ?, ?)".to_owned(),
            });
            values.push(product.clone().into());
            values.push((*reviews).into());
            values.push((*score).into());
            values.push((*rating).into());
        }
        txn.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            format!(
                "INSERT INTO product_sentiment (product_id, reviews, mean_score, mean_rating) VALUES {}",
                tuples.join(", ")
            ),
            values,
        ))
        .await?;
    }
    txn.commit().await?;
    Ok(n)
}
