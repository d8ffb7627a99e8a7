//! The `customer_scores` dataset: each customer's churn and purchase-intent probabilities
//! from the champion models, one partition per as-of date. `retrain` replaces a date's
//! partition in one commit; readers take the newest date.

use std::sync::Arc;

use datafusion::arrow::{
    array::{Float64Array, Int64Array, StringArray},
    record_batch::RecordBatch,
};

use super::{Dataset, Lake, Result, arrays};
use crate::db::repo::lake::Removes;

/// One date's scores: `customers[i]` has `churn[i]` and `intent[i]` (none without a
/// champion of that kind).
pub struct Scores {
    pub as_of: String,
    pub customers: Vec<String>,
    pub churn: Option<(Vec<f64>, i64)>,
    pub intent: Option<(Vec<f64>, i64)>,
}

/// Replaces the scores of `scores.as_of` with `scores`.
pub async fn store(lake: &Lake, scores: Scores) -> Result<u64> {
    let part = scores.as_of.clone();
    super::write::commit_batch(
        lake,
        Dataset::Scores,
        Some(part.clone()),
        Removes::Part(part),
        move || {
            let n = scores.customers.len();
            // Each kind's probabilities move into their column; a missing champion is a
            // null column.
            let column = |p: Option<(Vec<f64>, i64)>| match p {
                Some((v, id)) => (Float64Array::from(v), Int64Array::from(vec![Some(id); n])),
                None => (
                    Float64Array::from(vec![None; n]),
                    Int64Array::from(vec![None; n]),
                ),
            };
            let (churn, churn_model) = column(scores.churn);
            let (intent, intent_model) = column(scores.intent);
            let written = chrono::Utc::now().timestamp_micros();
            // Columns of unequal lengths are refused here.
            Ok(RecordBatch::try_new(
                Dataset::Scores.schema(),
                vec![
                    Arc::new(StringArray::from(scores.customers)),
                    Arc::new(StringArray::from(vec![scores.as_of.as_str(); n])),
                    Arc::new(churn),
                    Arc::new(intent),
                    Arc::new(churn_model),
                    Arc::new(intent_model),
                    Arc::new(Int64Array::from(vec![written; n])),
                ],
            )?)
        },
    )
    .await
}

/// The scores of the newest date: `(customer_id, churn, intent, churn model, intent model)`,
/// by customer.
pub type Row = (String, Option<f64>, Option<f64>, Option<i64>, Option<i64>);

pub async fn latest(lake: &Lake) -> Result<Vec<Row>> {
    latest_of(lake, None).await
}

/// As [`latest`], for the customers of `only` (an SQL literal list) or everyone.
pub async fn latest_of(lake: &Lake, only: Option<&str>) -> Result<Vec<Row>> {
    let only = super::only(only, "customer_id");
    let batches = lake
        .query(&format!(
            "SELECT customer_id, churn_probability, intent_probability, churn_model_id, \
             intent_model_id FROM customer_scores \
             WHERE as_of = (SELECT MAX(as_of) FROM customer_scores){only} ORDER BY customer_id"
        ))
        .await?;
    let mut out = Vec::new();
    for b in &batches {
        let ids = arrays::strings(b, 0)?;
        let churn = arrays::floats(b, 1)?;
        let intent = arrays::floats(b, 2)?;
        let churn_model = arrays::ints(b, 3)?;
        let intent_model = arrays::ints(b, 4)?;
        for ((((id, c), i), cm), im) in ids
            .into_iter()
            .zip(churn)
            .zip(intent)
            .zip(churn_model)
            .zip(intent_model)
        {
            out.push((id, c, i, cm, im));
        }
    }
    Ok(out)
}

/// The newest date with churn probabilities, and how many customers fall in each of
/// `buckets` equal slices of [0, 1] (the last one closed).
pub async fn churn_histogram(lake: &Lake, buckets: usize) -> Result<Option<(String, Vec<i64>)>> {
    let batches = lake
        .query(
            "SELECT as_of, churn_probability FROM customer_scores \
             WHERE churn_probability IS NOT NULL AND as_of = \
             (SELECT MAX(as_of) FROM customer_scores WHERE churn_probability IS NOT NULL)",
        )
        .await?;
    let mut as_of = None;
    let mut counts = vec![0i64; buckets.max(1)];
    for b in &batches {
        let dates = arrays::strings(b, 0)?;
        for (date, p) in dates.into_iter().zip(arrays::floats(b, 1)?) {
            as_of.get_or_insert(date);
            // The bucket whose lower bound `p` reaches: `[0, 0.1)` … `[0.9, 1]` for ten.
            if let Some(p) = p {
                let n = counts.len();
                let slot = (0..n)
                    .rev()
                    .find(|&b| p >= b as f64 / n as f64)
                    .unwrap_or(0);
                counts[slot] += 1;
            }
        }
    }
    Ok(as_of.map(|d| (d, counts)))
}
