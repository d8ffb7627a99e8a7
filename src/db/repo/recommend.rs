//! Reads and writes of the recommendation jobs: interactions per (customer, product), product
//! text, current recommendations and how they fare.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, Statement};

use crate::db::{
    Db, RepoError, Result,
    bulk::{self, Cell, TableSpec},
};

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

fn corrupt(what: &str) -> impl Fn(anyhow::Error) -> RepoError + '_ {
    move |e| RepoError::Corrupt(format!("reading {what}: {e}"))
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

/// Each customer's segment label in the latest profiles (for cold-start popularity).
pub async fn segments(db: &Db) -> Result<HashMap<String, String>> {
    segments_of(db, None).await
}

/// As [`segments`], for the customers a subquery selects (`None`: everyone).
pub async fn segments_of(db: &Db, customers: Option<&str>) -> Result<HashMap<String, String>> {
    let only = customers
        .map(|q| format!(" AND customer_id IN ({q})"))
        .unwrap_or_default();
    let mut out = HashMap::new();
    bulk::fetch_each::<(String, String)>(
        db,
        &format!(
            "SELECT customer_id, segment_label FROM customer_profiles \
             WHERE as_of = (SELECT MAX(as_of) FROM customer_profiles){only}"
        ),
        None,
        |(c, s)| {
            out.insert(c, s);
        },
    )
    .await
    .map_err(corrupt("customer_profiles"))?;
    Ok(out)
}

pub static RECOMMENDATIONS_TABLE: TableSpec = TableSpec {
    table: "recommendations",
    columns: &[
        "customer_id",
        "rank",
        "product_id",
        "score",
        "source",
        "because_product_id",
        "model_id",
        "because_kind",
    ],
    pg_types: &[
        "text",
        "smallint",
        "text",
        "double precision",
        "text",
        "text",
        "bigint",
        "text",
    ],
    on_conflict: "ON CONFLICT (customer_id, rank) DO NOTHING",
    sqlite_upsert: None,
    pg_distinct_on: None,
};

/// One stored recommendation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredRecommendation {
    pub rank: i64,
    pub product_id: String,
    pub score: f64,
    pub source: String,
    /// Another product the customer dealt with, that the recommendation is like.
    pub because: Option<String>,
    /// What the customer did with `because` (or, without one, with the product itself):
    /// `bought`, `carted`, `viewed`; or `popular_in_segment`, `popular`.
    pub because_kind: Option<String>,
    /// The reason in words, as `patron recommend` shows it.
    pub reason: String,
    pub model_id: i64,
}

/// The reason a customer is told, from a stored recommendation's source, `because` and
/// `because_kind`. Lists stored before reasons had kinds name no kind: their product is only
/// said to be similar.
pub fn reason_text(source: &str, because: Option<&str>, kind: Option<&str>) -> String {
    let kind = kind.or((source == "popularity").then_some("popular"));
    match (kind, because) {
        (Some("bought"), Some(p)) => format!("because you bought {p}"),
        (Some("carted"), Some(p)) => format!("because you put {p} in your cart"),
        (Some("viewed"), Some(p)) => format!("because you viewed {p}"),
        (Some("bought"), None) => "you bought it before".to_owned(),
        (Some("carted"), None) => "you put it in your cart".to_owned(),
        (Some("viewed"), None) => "you viewed it".to_owned(),
        (Some("popular_in_segment"), _) => "popular with customers in your segment".to_owned(),
        (Some("popular"), _) => "popular with customers".to_owned(),
        (_, Some(p)) => format!("similar to {p}"),
        (_, None) => String::new(),
    }
}

/// Replaces the recommendations of `shard`'s customers (`None`: everyone's) with `rows`
/// (cells in `RECOMMENDATIONS_TABLE` order). A crash half-way leaves a partial set that the
/// next run replaces whole.
pub async fn replace_shard(
    db: &Db,
    shard: Option<crate::pipeline::Shard>,
    rows: Vec<Vec<Cell>>,
) -> Result<u64> {
    super::shards::delete_where(db, "recommendations", "1 = 1", Vec::new(), shard).await?;
    super::intelligence::write_all(db, &RECOMMENDATIONS_TABLE, rows, 50_000).await
}

/// Replaces the recommendations of the customers a subquery selects (`None`: everyone)
/// with `rows`. Rerunning with the same rows leaves the same lists.
pub async fn replace_of(db: &Db, customers: Option<&str>, rows: Vec<Vec<Cell>>) -> Result<u64> {
    match customers {
        Some(q) => {
            db.execute_unprepared(&format!(
                "DELETE FROM recommendations WHERE customer_id IN ({q})"
            ))
            .await?
        }
        None => db.execute_unprepared("DELETE FROM recommendations").await?,
    };
    super::intelligence::write_all(db, &RECOMMENDATIONS_TABLE, rows, 50_000).await
}

/// Stores the serving artifact of a recommendation model and drops those of models that
/// can no longer serve (every other `recommend` model that is not the champion).
pub async fn store_artifact(db: &Db, model_id: i64, bytes: Vec<u8>) -> Result {
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        super::intelligence::placeholder(
            backend,
            // A retried job may store the same model's artifact again.
            "INSERT INTO model_artifacts (model_id, format, bytes) VALUES (?, ?, ?) \
             ON CONFLICT (model_id) DO UPDATE SET format = excluded.format, bytes = excluded.bytes",
        ),
        [model_id.into(), ARTIFACT_FORMAT.into(), bytes.into()],
    ))
    .await?;
    db.execute_unprepared(&format!(
        "DELETE FROM model_artifacts WHERE model_id <> {model_id} AND model_id IN \
         (SELECT id FROM models WHERE kind = 'recommend' AND status <> 'champion')"
    ))
    .await?;
    Ok(())
}

/// The format written by this version; an artifact in another is not read.
pub const ARTIFACT_FORMAT: &str = "bincode-1/serve-v1";

/// The serving artifact of a model, if stored in this version's format.
pub async fn artifact(db: &Db, model_id: i64) -> Result<Option<Vec<u8>>> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            super::intelligence::placeholder(
                backend,
                "SELECT bytes FROM model_artifacts WHERE model_id = ? AND format = ?",
            ),
            [model_id.into(), ARTIFACT_FORMAT.into()],
        ))
        .await?;
    Ok(row.map(|r| r.try_get_by_index::<Vec<u8>>(0)).transpose()?)
}

/// Whether a model's serving artifact is stored in this version's format.
pub async fn has_artifact(db: &Db, model_id: i64) -> Result<bool> {
    let backend = db.get_database_backend();
    Ok(db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            super::intelligence::placeholder(
                backend,
                "SELECT 1 FROM model_artifacts WHERE model_id = ? AND format = ?",
            ),
            [model_id.into(), ARTIFACT_FORMAT.into()],
        ))
        .await?
        .is_some())
}

/// A customer's current recommendations, best first.
pub async fn for_customer(db: &Db, customer: &str) -> Result<Vec<StoredRecommendation>> {
    let backend = db.get_database_backend();
    let sql = super::intelligence::placeholder(
        backend,
        "SELECT rank, product_id, score, source, because_product_id, model_id, because_kind \
         FROM recommendations WHERE customer_id = ? ORDER BY rank",
    );
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [customer.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            let product_id: String = r.try_get_by_index(1)?;
            let because: Option<String> = r.try_get_by_index(4)?;
            let because_kind: Option<String> = r.try_get_by_index(6)?;
            // A list stored before reasons had kinds may name the product itself.
            let because = because.filter(|b| because_kind.is_some() || *b != product_id);
            let source: String = r.try_get_by_index(3)?;
            Ok(StoredRecommendation {
                rank: i64::from(r.try_get_by_index::<i16>(0)?),
                score: r.try_get_by_index(2)?,
                reason: reason_text(&source, because.as_deref(), because_kind.as_deref()),
                source,
                product_id,
                because,
                because_kind,
                model_id: r.try_get_by_index(5)?,
            })
        })
        .collect()
}

/// The `(customer, product)` pairs a recommendation model's lists hold.
pub async fn recommended_pairs(db: &Db, model_id: i64) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    bulk::fetch_each::<(String, String)>(
        db,
        &format!(
            "SELECT DISTINCT customer_id, product_id FROM recommendations WHERE model_id = {model_id}"
        ),
        None,
        |pair| out.push(pair),
    )
    .await
    .map_err(corrupt("recommendations"))?;
    Ok(out)
}
