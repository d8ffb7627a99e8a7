//! The `customer_profiles` dataset: each customer's segment (with its label), PCA
//! coordinates and RFM scores, one partition per as-of date. `profile` replaces a date's
//! partition in one commit; a shard of it appends its customers' rows, which win over older
//! ones. Readers take the newest date.

use std::{collections::HashMap, sync::Arc};

use datafusion::arrow::{
    array::{Float64Array, Int64Array, StringArray},
    record_batch::RecordBatch,
};

use super::{Dataset, Lake, Result, arrays};
use crate::db::repo::lake::Removes;

/// One date's profiles as columns: row `i` is `customers[i]`'s.
#[derive(Debug, Default)]
pub struct Profiles {
    pub as_of: String,
    pub model_id: i64,
    pub customers: Vec<String>,
    pub segments: Vec<i64>,
    pub labels: Vec<String>,
    pub pc1: Vec<f64>,
    pub pc2: Vec<f64>,
    pub r_scores: Vec<i64>,
    pub f_scores: Vec<i64>,
    pub m_scores: Vec<i64>,
}

/// Writes `profiles`: the whole date's (`whole`), replacing what it held, or some
/// customers' (a shard's), whose rows then win. Returns the rows written.
pub async fn store(lake: &Lake, profiles: Profiles, whole: bool) -> Result<u64> {
    let part = profiles.as_of.clone();
    let removes = if whole {
        Removes::Part(part.clone())
    } else {
        Removes::Nothing
    };
    super::write::commit_batch(lake, Dataset::Profiles, Some(part), removes, move || {
        let p = profiles;
        let n = p.customers.len();
        let written = chrono::Utc::now().timestamp_micros();
        // Columns of unequal lengths are refused here.
        Ok(RecordBatch::try_new(
            Dataset::Profiles.schema(),
            vec![
                Arc::new(StringArray::from(p.customers)),
                Arc::new(StringArray::from(vec![p.as_of.as_str(); n])),
                Arc::new(Int64Array::from(p.segments)),
                Arc::new(StringArray::from(p.labels)),
                Arc::new(Float64Array::from(p.pc1)),
                Arc::new(Float64Array::from(p.pc2)),
                Arc::new(Int64Array::from(p.r_scores)),
                Arc::new(Int64Array::from(p.f_scores)),
                Arc::new(Int64Array::from(p.m_scores)),
                Arc::new(Int64Array::from(vec![p.model_id; n])),
                Arc::new(Int64Array::from(vec![written; n])),
            ],
        )?)
    })
    .await
}

/// The newest date with profiles (the name of its partition).
async fn newest(lake: &Lake) -> Result<Option<String>> {
    lake.newest_part(Dataset::Profiles).await
}

/// Each customer's segment label in the newest profiles, for the customers of `only` (an
/// SQL literal list) or everyone.
pub async fn segments(lake: &Lake, only: Option<&str>) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    let Some(as_of) = newest(lake).await? else {
        return Ok(out);
    };
    let only = super::only(only, "customer_id");
    for b in lake
        .query(&format!(
            "SELECT customer_id, segment_label FROM customer_profiles WHERE as_of = {}{only}",
            super::literal_list([as_of.as_str()])
        ))
        .await?
    {
        out.extend(
            arrays::strings(&b, 0)?
                .into_iter()
                .zip(arrays::strings(&b, 1)?),
        );
    }
    Ok(out)
}

/// Customers per segment of the newest profiles, largest first, with their as-of date.
pub async fn segment_sizes(lake: &Lake) -> Result<Option<(String, Vec<(String, i64)>)>> {
    let Some(as_of) = newest(lake).await? else {
        return Ok(None);
    };
    let mut sizes = Vec::new();
    for b in lake
        .query(&format!(
            "SELECT segment_label, COUNT(*) AS n FROM customer_profiles WHERE as_of = {} \
             GROUP BY segment_label ORDER BY n DESC, segment_label",
            super::literal_list([as_of.as_str()])
        ))
        .await?
    {
        sizes.extend(
            arrays::strings(&b, 0)?
                .into_iter()
                .zip(arrays::ints_or_zero(&b, 1)?),
        );
    }
    Ok(Some((as_of, sizes)))
}

/// The newest profiles as text cells in export order: customer_id, segment, segment_label,
/// pc1, pc2, r_score, f_score, m_score; for the customers of `only` (an SQL literal list) or
/// everyone.
pub async fn latest_rows(lake: &Lake, only: Option<&str>) -> Result<Vec<Vec<String>>> {
    let Some(as_of) = newest(lake).await? else {
        return Ok(Vec::new());
    };
    let only = super::only(only, "customer_id");
    let mut out = Vec::new();
    for b in lake
        .query(&format!(
            "SELECT customer_id, segment, segment_label, pc1, pc2, r_score, f_score, m_score \
             FROM customer_profiles WHERE as_of = {}{only} ORDER BY customer_id",
            super::literal_list([as_of.as_str()])
        ))
        .await?
    {
        let ids = arrays::strings(&b, 0)?;
        let segments = arrays::ints_or_zero(&b, 1)?;
        let labels = arrays::strings(&b, 2)?;
        let pc1 = arrays::floats(&b, 3)?;
        let pc2 = arrays::floats(&b, 4)?;
        let r = arrays::ints_or_zero(&b, 5)?;
        let f = arrays::ints_or_zero(&b, 6)?;
        let m = arrays::ints_or_zero(&b, 7)?;
        let float = |v: Option<f64>| v.map(arrays::rounded).unwrap_or_default();
        for i in 0..ids.len() {
            out.push(vec![
                ids[i].clone(),
                segments[i].to_string(),
                labels[i].clone(),
                float(pc1[i]),
                float(pc2[i]),
                r[i].to_string(),
                f[i].to_string(),
                m[i].to_string(),
            ]);
        }
    }
    Ok(out)
}
