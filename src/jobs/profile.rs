//! `profile`: segments every customer from their features as of a date (robust scaling,
//! PCA coordinates, k-means with human labels, RFM 1–5 scores; see `analytics::segments`),
//! stores one profile per customer in the lake (`customer_profiles`) with the segmentation model, which becomes the current one.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Job, JobContext, JobError, JobResult, failed, parse_params};
use crate::{
    analytics::segments::{self, SegmentInput, SegmentModel, SegmentParams},
    db::repo::{self, models::NewModel},
    lake::profiles::Profiles,
};

pub struct Profile;

/// Fewest customers worth segmenting.
const MIN_CUSTOMERS: usize = 10;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    as_of: Option<String>,
    /// Number of segments; by default chosen by silhouette over 3..=8.
    #[serde(default)]
    k: Option<usize>,
    /// Customers the model is fitted on (everyone is assigned).
    #[serde(default = "sample")]
    sample: usize,
    #[serde(default = "seed")]
    seed: u64,
}

fn sample() -> usize {
    20_000
}
fn seed() -> u64 {
    42
}

#[async_trait::async_trait]
impl Job for Profile {
    fn kind(&self) -> &'static str {
        "profile"
    }

    /// Its `as_of` (`JobContext::as_of`) may come from the run.
    fn run_params(&self) -> crate::pipeline::RunParamUse {
        crate::pipeline::RunParamUse::Reads(&["as_of"])
    }

    fn check_params(&self, params: &Value) -> Result<(), String> {
        let p: Params = parse_params(params)?;
        super::features::check_as_of(p.as_of.as_deref())?;
        if let Some(k) = p.k
            && !(2..=20).contains(&k)
        {
            return Err("k must be between 2 and 20".to_owned());
        }
        if p.sample < 100 {
            return Err("sample must be at least 100".to_owned());
        }
        Ok(())
    }

    fn shardable(&self) -> bool {
        true
    }

    async fn run(&self, ctx: &JobContext) -> JobResult {
        let p: Params = parse_params(&ctx.params_value()).map_err(JobError::Fatal)?;
        let as_of = super::features::ensure_features(ctx).await?;
        let started = std::time::Instant::now();
        let matrix = super::features::matrix_at(&ctx.lake()?, &as_of)
            .await
            .map_err(failed)?;
        // A new shop has too few customers to segment; that is not a failure of the night.
        if matrix.customers.len() < MIN_CUSTOMERS {
            ctx.log.info(format!(
                "only {} customers have features as of {as_of} (segmenting needs {MIN_CUSTOMERS}); profiles skipped",
                matrix.customers.len()
            ));
            return Ok(());
        }
        let col = |name: &str| matrix.column(name).unwrap_or(0);
        let (r, f, m, t) = (
            col("recency_days"),
            col("frequency"),
            col("monetary"),
            col("tenure_days"),
        );
        let inputs: Vec<SegmentInput> = (0..matrix.customers.len())
            .map(|i| {
                let row = matrix.row(i);
                SegmentInput {
                    recency_days: row[r],
                    frequency: row[f],
                    monetary: row[m],
                    tenure_days: row[t],
                }
            })
            .collect();
        let params = SegmentParams {
            k: p.k,
            sample: p.sample,
            seed: p.seed,
            ..SegmentParams::default()
        };
        // Shards share one model: the first to finish fitting registers it, the others
        // (and any retry) score with the stored one, so every customer of the run is in a
        // segment of the same model.
        let key = ctx.shared_key();
        let stored = repo::models::shared(&ctx.db, &key).await.map_err(failed)?;
        let loaded = started.elapsed().as_secs_f64();
        let (model, registered) = match stored {
            Some(row) => (stored_model(&row)?, row),
            None => {
                let sample = inputs.clone();
                let model = tokio::task::spawn_blocking(move || segments::fit(&sample, &params))
                    .await
                    .map_err(|e| JobError::Failed(format!("segmentation thread: {e}")))?
                    .map_err(|e| JobError::Failed(format!("segmentation: {e}")))?;
                let new = NewModel {
                    kind: "segments".to_owned(),
                    algorithm: "kmeans".to_owned(),
                    params: json!({ "k": model.k(), "sample": p.sample, "seed": p.seed }),
                    metrics: json!({}),
                    as_of: Some(as_of.clone()),
                    payload: serde_json::to_string(&model)
                        .map_err(|e| JobError::Failed(e.to_string()))?,
                };
                let (row, created) = repo::models::register_shared(&ctx.db, new, &key)
                    .await
                    .map_err(failed)?;
                if created {
                    (model, row)
                } else {
                    (stored_model(&row)?, row)
                }
            }
        };

        // Only this shard's customers are scored and stored.
        let (customers, inputs): (Vec<String>, Vec<SegmentInput>) = matrix
            .customers
            .into_iter()
            .zip(inputs)
            .filter(|(id, _)| ctx.owns(id))
            .unzip();
        let scorer = model.clone();
        let assigned = tokio::task::spawn_blocking(move || scorer.assign(&inputs))
            .await
            .map_err(|e| JobError::Failed(format!("segmentation thread: {e}")))?;

        let fitted = started.elapsed().as_secs_f64();
        // Population sizes per segment (the model's own summary counts its fitting sample);
        // a sharded job counts the customers of the shard that wrote the summary.
        let counts = model.counts(&assigned);
        let total = assigned.len().max(1) as f64;
        let segments: Vec<Value> = model
            .summary()
            .iter()
            .map(|s| {
                let n = counts.get(s.segment).copied().unwrap_or(0);
                json!({
                    "segment": s.segment,
                    "label": s.label,
                    "customers": n,
                    "share": n as f64 / total,
                    "mean": s.mean,
                })
            })
            .collect();
        let mut summary = json!({
            "silhouette": model.silhouette(),
            "explained_variance": model.explained_variance(),
            "smallest_share": counts.iter().copied().min().unwrap_or(0) as f64 / total,
            "segments": segments,
        });
        if let Some(shard) = ctx.shard {
            summary["counted_on"] = json!(shard.to_string());
        }
        repo::models::set_metrics(&ctx.db, registered.id, &summary)
            .await
            .map_err(failed)?;
        repo::models::promote(&ctx.db, registered.id)
            .await
            .map_err(failed)?;

        let mut rows = Profiles {
            as_of: as_of.clone(),
            model_id: registered.id,
            ..Profiles::default()
        };
        for (id, s) in customers.into_iter().zip(assigned) {
            rows.customers.push(id);
            rows.segments.push(s.segment as i64);
            rows.labels.push(s.label);
            rows.pc1.push(s.pc1);
            rows.pc2.push(s.pc2);
            rows.r_scores.push(i64::from(s.r_score));
            rows.f_scores.push(i64::from(s.f_score));
            rows.m_scores.push(i64::from(s.m_score));
        }
        let n = crate::lake::profiles::store(&ctx.lake()?, rows, ctx.shard.is_none())
            .await
            .map_err(failed)?;
        let sizes: Vec<String> = model
            .summary()
            .iter()
            .map(|s| {
                format!(
                    "{} {}",
                    s.label,
                    counts.get(s.segment).copied().unwrap_or(0)
                )
            })
            .collect();
        ctx.log.info(format!(
            "profiles as of {as_of}{}: {n} customers in {} segments (model {}, silhouette {:.3}) in {:.2}s (load {loaded:.2}s, fit {:.2}s, store {:.2}s): {}",
            ctx.shard_note(),
            model.k(),
            registered.id,
            model.silhouette(),
            started.elapsed().as_secs_f64(),
            fitted - loaded,
            started.elapsed().as_secs_f64() - fitted,
            sizes.join(", ")
        ));
        Ok(())
    }
}

/// The segmentation model stored in a registry row.
fn stored_model(row: &crate::db::entities::model::Model) -> Result<SegmentModel, JobError> {
    serde_json::from_str(&row.payload)
        .map_err(|e| JobError::Failed(format!("model {} cannot be read: {e}", row.id)))
}
