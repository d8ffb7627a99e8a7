//! Stored customer features.

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::db::{Db, RepoError, Result};

/// Feature rows as text cells (customer_id first, then `FEATURE_COLUMNS`) for `as_of`, or for
/// the latest as-of date when `None`.
pub async fn export(
    db: &Db,
    as_of: Option<chrono::NaiveDate>,
) -> Result<(String, Vec<Vec<String>>)> {
    let backend = db.get_database_backend();
    let as_of = match as_of {
        Some(d) => d.format("%Y-%m-%d").to_string(),
        None => db
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT MAX(as_of) AS as_of FROM customer_features",
            ))
            .await?
            .and_then(|r| r.try_get::<Option<String>>("", "as_of").ok().flatten())
            .ok_or_else(|| {
                RepoError::Conflict(
                    "no features are stored yet (run the features job first)".to_owned(),
                )
            })?,
    };
    let sql = format!(
        "SELECT customer_id, {} FROM customer_features WHERE as_of = {} ORDER BY customer_id",
        crate::jobs::features::FEATURE_COLUMNS.join(", "),
        if backend == DbBackend::Postgres {
            "$1"
        } else {
            "?"
        }
    );
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [as_of.clone().into()],
        ))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut cells = vec![row.try_get::<String>("", "customer_id")?];
        for (i, col) in crate::jobs::features::FEATURE_COLUMNS.iter().enumerate() {
            let cell = match i {
                // frequency, distinct_products, n_events, n_reviews are integers
                1 | 5 | 7 | 9 => row.try_get::<i64>("", col)?.to_string(),
                _ => row
                    .try_get::<Option<f64>>("", col)?
                    .map(|v| format!("{}", (v * 1e6).round() / 1e6))
                    .unwrap_or_default(),
            };
            cells.push(cell);
        }
        out.push(cells);
    }
    if out.is_empty() {
        return Err(RepoError::Conflict(format!(
            "no features are stored as of {as_of}"
        )));
    }
    Ok((as_of, out))
}
