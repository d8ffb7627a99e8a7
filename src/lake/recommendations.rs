//! The `recommendations` dataset: each customer's current top-N products with the reason
//! for each. A full `recommend` run replaces the dataset in one commit; a shard of it, or a
//! `feedback` pass, appends the lists of its customers, and a customer's newest list wins
//! whole. Files are sorted by customer in small row groups, so `patron recommend C` reads
//! one group of one file.

use std::sync::Arc;

use datafusion::arrow::{
    array::{Float64Array, Int64Array, StringBuilder},
    record_batch::RecordBatch,
};

use super::{Dataset, Lake, Result, arrays};
use crate::db::repo::lake::Removes;

/// Ranked lists as the dataset's columns, sorted by customer then rank. Text goes straight
/// into Arrow builders: ten million rows as `String`s took gigabytes.
#[derive(Debug, Default)]
pub struct Lists {
    customers: StringBuilder,
    ranks: Vec<i64>,
    products: StringBuilder,
    scores: Vec<f64>,
    sources: StringBuilder,
    because: StringBuilder,
    because_kinds: StringBuilder,
    model_id: i64,
}

impl Lists {
    /// Empty lists of model `model_id`.
    pub fn new(model_id: i64) -> Self {
        Lists {
            model_id,
            ..Lists::default()
        }
    }

    /// Adds `customer`'s `rank`-th recommendation.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        customer: &str,
        rank: i64,
        product: &str,
        score: f64,
        source: &str,
        because: Option<&str>,
        because_kind: Option<&str>,
    ) {
        self.customers.append_value(customer);
        self.ranks.push(rank);
        self.products.append_value(product);
        self.scores.push(score);
        self.sources.append_value(source);
        self.because.append_option(because);
        self.because_kinds.append_option(because_kind);
    }

    pub fn len(&self) -> usize {
        self.ranks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranks.is_empty()
    }
}

/// Whose lists a write replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replaces {
    /// Everyone's: the dataset becomes these lists.
    Everyone,
    /// The customers the lists are for (a shard, or the customers a feedback pass touched).
    TheirCustomers,
}

/// Writes `lists` as one file and commits it; returns the rows written.
pub async fn store(lake: &Lake, mut lists: Lists, replaces: Replaces) -> Result<u64> {
    let removes = match replaces {
        Replaces::Everyone => Removes::All,
        Replaces::TheirCustomers => Removes::Nothing,
    };
    super::write::commit_batch(lake, Dataset::Recommendations, None, removes, move || {
        let n = lists.len();
        let written = chrono::Utc::now().timestamp_micros();
        Ok(RecordBatch::try_new(
            Dataset::Recommendations.schema(),
            vec![
                Arc::new(lists.customers.finish()),
                Arc::new(Int64Array::from(std::mem::take(&mut lists.ranks))),
                Arc::new(lists.products.finish()),
                Arc::new(Float64Array::from(std::mem::take(&mut lists.scores))),
                Arc::new(lists.sources.finish()),
                Arc::new(lists.because.finish()),
                Arc::new(Int64Array::from(vec![lists.model_id; n])),
                Arc::new(lists.because_kinds.finish()),
                Arc::new(Int64Array::from(vec![written; n])),
            ],
        )?)
    })
    .await
}

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
/// `because_kind`. A list without kinds only says its product is similar.
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

/// A customer's current recommendations, best first. Reads the files directly (not the
/// view, which ranks every customer's lists) and keeps the newest list found.
pub async fn for_customer(lake: &Lake, customer: &str) -> Result<Vec<StoredRecommendation>> {
    let batches = lake
        .query(&format!(
            "SELECT rank, product_id, score, source, because_product_id, model_id, because_kind, \
             _written FROM recommendations_files WHERE customer_id = {} ORDER BY _written DESC, rank",
            super::literal_list([customer])
        ))
        .await?;
    let mut out = Vec::new();
    let mut newest = None;
    for b in &batches {
        let ranks = arrays::ints_or_zero(b, 0)?;
        let products = arrays::strings(b, 1)?;
        let scores = arrays::floats(b, 2)?;
        let sources = arrays::strings(b, 3)?;
        let because = arrays::texts(b, 4)?;
        let models = arrays::ints_or_zero(b, 5)?;
        let kinds = arrays::texts(b, 6)?;
        let written = arrays::ints_or_zero(b, 7)?;
        for i in 0..b.num_rows() {
            if *newest.get_or_insert(written[i]) != written[i] {
                return Ok(out);
            }
            out.push(StoredRecommendation {
                rank: ranks[i],
                product_id: products[i].clone(),
                score: scores[i].unwrap_or_default(),
                reason: reason_text(&sources[i], because[i].as_deref(), kinds[i].as_deref()),
                source: sources[i].clone(),
                because: because[i].clone(),
                because_kind: kinds[i].clone(),
                model_id: models[i],
            });
        }
    }
    Ok(out)
}

/// The `(customer, product)` pairs of the current lists a recommendation model made.
pub async fn pairs_of_model(lake: &Lake, model_id: i64) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for b in lake
        .query(&format!(
            "SELECT DISTINCT customer_id, product_id FROM recommendations WHERE model_id = {model_id}"
        ))
        .await?
    {
        out.extend(arrays::strings(&b, 0)?.into_iter().zip(arrays::strings(&b, 1)?));
    }
    Ok(out)
}

/// Every current recommendation as `(customer_id, rank, product_id, score, source)`, by
/// customer and rank.
pub async fn all(lake: &Lake) -> Result<Vec<(String, i64, String, f64, String)>> {
    let mut out = Vec::new();
    for b in lake
        .query(
            "SELECT customer_id, rank, product_id, score, source FROM recommendations \
             ORDER BY customer_id, rank",
        )
        .await?
    {
        let customers = arrays::strings(&b, 0)?;
        let ranks = arrays::ints_or_zero(&b, 1)?;
        let products = arrays::strings(&b, 2)?;
        let scores = arrays::floats(&b, 3)?;
        let sources = arrays::strings(&b, 4)?;
        for ((((c, r), p), s), src) in customers
            .into_iter()
            .zip(ranks)
            .zip(products)
            .zip(scores)
            .zip(sources)
        {
            out.push((c, r, p, s.unwrap_or_default(), src));
        }
    }
    Ok(out)
}
