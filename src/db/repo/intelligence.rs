//! Reads and writes of the intelligence jobs: feature rows as a matrix, who bought in a
//! window, profiles, scores and review sentiment.

use std::collections::HashSet;

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::db::{
    Db, Result,
    bulk::{self, Cell, TableSpec},
};

/// Feature columns used by the churn and intent models (a missing mean rating or sentiment
/// reads as 0 with a 0/1 flag beside it).
pub const MODEL_COLUMNS: [&str; 14] = [
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
    "avg_basket",
    "distinct_products",
    "cancel_rate",
    "n_events",
    "browse_seconds",
    "n_reviews",
    "mean_rating",
    "has_rating",
    "mean_sentiment",
    "has_sentiment",
];

/// Every customer's features as of a date, as model rows.
#[derive(Debug, Default, Clone)]
pub struct FeatureMatrix {
    pub customers: Vec<String>,
    /// Row-major, `MODEL_COLUMNS.len()` values per customer.
    pub values: Vec<f64>,
}

impl FeatureMatrix {
    pub fn width() -> usize {
        MODEL_COLUMNS.len()
    }

    pub fn row(&self, i: usize) -> &[f64] {
        let w = Self::width();
        &self.values[i * w..(i + 1) * w]
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        MODEL_COLUMNS.iter().position(|c| *c == name)
    }
}

pub async fn features_at(db: &Db, as_of: &str) -> Result<FeatureMatrix> {
    let mut m = FeatureMatrix::default();
    bulk::fetch_each::<(String, f64, i64, f64, f64, f64, i64, f64, i64, f64, i64, Option<f64>, Option<f64>)>(
        db,
        &format!(
            "SELECT customer_id, recency_days, frequency, monetary, tenure_days, avg_basket, distinct_products, \
             cancel_rate, n_events, browse_seconds, n_reviews, mean_rating, mean_sentiment \
             FROM customer_features WHERE as_of = '{}' ORDER BY customer_id",
            as_of.replace('\'', "")
        ),
        None,
        |(id, r, f, m_, t, b, p, c, e, s, n, rating, sentiment)| {
            m.customers.push(id);
            m.values.extend_from_slice(&[
                r,
                f as f64,
                m_,
                t,
                b,
                p as f64,
                c,
                e as f64,
                s,
                n as f64,
                rating.unwrap_or(0.0),
                f64::from(u8::from(rating.is_some())),
                sentiment.unwrap_or(0.0),
                f64::from(u8::from(sentiment.is_some())),
            ]);
        },
    )
    .await
    .map_err(|e| crate::db::RepoError::Corrupt(format!("reading features: {e}")))?;
    Ok(m)
}

/// Whether features for `as_of` are stored.
pub async fn has_features(db: &Db, as_of: &str) -> Result<bool> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            placeholder(
                backend,
                "SELECT COUNT(*) FROM customer_features WHERE as_of = ?",
            ),
            [as_of.into()],
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0)
        > 0)
}

/// Customers with a paid, non-anomalous order in `[from, to)` (epoch seconds).
pub async fn buyers_between(db: &Db, from: i64, to: i64) -> Result<HashSet<String>> {
    let mut out = HashSet::new();
    bulk::fetch_each::<(String,)>(
        db,
        &format!(
            "SELECT DISTINCT customer_id FROM orders WHERE status = 'paid' AND anomaly IS NULL \
             AND ordered_at >= {from} AND ordered_at < {to}"
        ),
        None,
        |(id,)| {
            out.insert(id);
        },
    )
    .await
    .map_err(|e| crate::db::RepoError::Corrupt(format!("reading orders: {e}")))?;
    Ok(out)
}

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

/// Deletes the rows of `table` for `as_of` (before writing a fresh set): all of them, or
/// only `shard`'s customers'.
pub async fn clear_as_of(
    db: &Db,
    table: &str,
    as_of: &str,
    shard: Option<crate::pipeline::Shard>,
) -> Result {
    super::shards::delete_where(db, table, "as_of = ?", vec![as_of.into()], shard).await?;
    Ok(())
}

pub static PROFILES_TABLE: TableSpec = TableSpec {
    table: "customer_profiles",
    columns: &[
        "customer_id",
        "as_of",
        "segment",
        "segment_label",
        "pc1",
        "pc2",
        "r_score",
        "f_score",
        "m_score",
        "model_id",
    ],
    pg_types: &[
        "text",
        "text",
        "integer",
        "text",
        "double precision",
        "double precision",
        "smallint",
        "smallint",
        "smallint",
        "bigint",
    ],
    on_conflict: "ON CONFLICT (customer_id, as_of) DO NOTHING",
    sqlite_upsert: None,
    pg_distinct_on: None,
};

pub static SCORES_TABLE: TableSpec = TableSpec {
    table: "customer_scores",
    columns: &[
        "customer_id",
        "as_of",
        "churn_probability",
        "intent_probability",
        "churn_model_id",
        "intent_model_id",
    ],
    pg_types: &[
        "text",
        "text",
        "double precision",
        "double precision",
        "bigint",
        "bigint",
    ],
    on_conflict: "ON CONFLICT (customer_id, as_of) DO NOTHING",
    sqlite_upsert: None,
    pg_distinct_on: None,
};

pub static REVIEW_SENTIMENT_TABLE: TableSpec = TableSpec {
    table: "review_sentiment",
    columns: &["review_id", "score", "label", "model_id"],
    pg_types: &["text", "double precision", "text", "bigint"],
    on_conflict: "ON CONFLICT (review_id) DO NOTHING",
    sqlite_upsert: None,
    pg_distinct_on: None,
};

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

/// Reviews without a sentiment score yet: `(review_id, text)`, at most `limit`.
pub async fn unscored_reviews(db: &Db, limit: u64) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    bulk::fetch_each::<(String, String)>(
        db,
        &format!(
            "SELECT r.review_id, r.text FROM reviews r LEFT JOIN review_sentiment s ON s.review_id = r.review_id \
             WHERE s.review_id IS NULL ORDER BY r.review_id LIMIT {limit}"
        ),
        None,
        |row| out.push(row),
    )
    .await
    .map_err(|e| crate::db::RepoError::Corrupt(format!("reading reviews: {e}")))?;
    Ok(out)
}

/// Reviews the classifier could learn from (with text, not anomalous).
pub async fn count_rated_reviews(db: &Db) -> Result<u64> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) FROM reviews WHERE anomaly IS NULL AND text <> ''",
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0)
        .max(0) as u64)
}

/// Forgets every review's score, so the next `sentiment` run scores all of them again.
pub async fn clear_review_sentiment(db: &Db) -> Result {
    db.execute_unprepared("DELETE FROM review_sentiment")
        .await?;
    Ok(())
}

/// Up to `limit` rated reviews with text (the first by id), for training.
pub async fn rated_reviews(db: &Db, limit: u64) -> Result<Vec<(String, u8)>> {
    let mut out = Vec::new();
    bulk::fetch_each::<(String, i16)>(
        db,
        &format!("SELECT text, rating FROM reviews WHERE anomaly IS NULL AND text <> '' ORDER BY review_id LIMIT {limit}"),
        None,
        |(text, rating)| out.push((text, rating.clamp(1, 5) as u8)),
    )
    .await
    .map_err(|e| crate::db::RepoError::Corrupt(format!("reading reviews: {e}")))?;
    Ok(out)
}

/// Recomputes every product's mean sentiment and rating from the scored reviews.
pub async fn refresh_product_sentiment(db: &Db) -> Result<u64> {
    let backend = db.get_database_backend();
    db.execute_unprepared("DELETE FROM product_sentiment")
        .await?;
    let done = db
        .execute_raw(Statement::from_string(
            backend,
            "INSERT INTO product_sentiment (product_id, reviews, mean_score, mean_rating) \
             SELECT r.product_id, COUNT(*), AVG(s.score), AVG(CAST(r.rating AS DOUBLE PRECISION)) \
             FROM reviews r JOIN review_sentiment s ON s.review_id = r.review_id \
             WHERE r.anomaly IS NULL GROUP BY r.product_id"
                .to_owned(),
        ))
        .await?;
    Ok(done.rows_affected())
}
