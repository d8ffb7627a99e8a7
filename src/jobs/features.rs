//! `features`: customer features as of a date (`params.as_of`, else the run's `as_of`, else
//! its logical date), and of `also_days_before` days before it, computed in one pass and
//! kept per date in the lake's `features` dataset, so retraining never recomputes a past
//! date. Rows dated on or after the day after `as_of` do not count, and anomalous rows (see
//! `clean`) are left out. The arithmetic is `analytics::features`, the queries
//! `lake::features`.

use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::Value;

use super::{Job, JobContext, JobError, JobResult, parse_params};
pub use crate::lake::features::{FeatureMatrix, MODEL_COLUMNS, Scope, cutoff};
use crate::lake::{Lake, features::date_text};

pub struct Features;

/// Checks an `as_of` param at validation time (the job reads it through
/// [`JobContext::as_of`]).
pub fn check_as_of(as_of: Option<&str>) -> Result<(), String> {
    match as_of {
        Some(t) => NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d")
            .map(|_| ())
            .map_err(|e| format!("as_of `{t}` is not a YYYY-MM-DD date: {e}")),
        None => Ok(()),
    }
}

/// The job's as-of date ([`JobContext::as_of`]), with features computed for it if they are
/// not stored yet.
pub async fn ensure_features(ctx: &JobContext) -> Result<String, JobError> {
    let as_of = ctx.as_of()?;
    ensure_features_at(&ctx.lake()?, &[as_of])
        .await
        .map_err(super::failed)?;
    Ok(date_text(as_of))
}

/// Features as of each of `dates`, computed (in one pass) for those not stored yet.
pub async fn ensure_features_at(lake: &Lake, dates: &[NaiveDate]) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    for d in dates {
        if !crate::lake::features::has(lake, *d).await? && !missing.contains(d) {
            missing.push(*d);
        }
    }
    if !missing.is_empty() {
        compute_and_store(lake, &missing, Scope::default()).await?;
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    as_of: Option<String>,
    /// Also compute features this many days before `as_of` (e.g. `[90, 180]`, the dates
    /// `retrain` labels its training rows with).
    #[serde(default)]
    also_days_before: Vec<u32>,
}

#[async_trait::async_trait]
impl Job for Features {
    fn kind(&self) -> &'static str {
        "features"
    }

    /// Its `as_of` (`JobContext::as_of`) may come from the run.
    fn run_params(&self) -> crate::pipeline::RunParamUse {
        crate::pipeline::RunParamUse::Reads(&["as_of"])
    }

    fn check_params(&self, params: &Value) -> Result<(), String> {
        let p: Params = parse_params(params)?;
        if let Some(a) = &p.as_of {
            NaiveDate::parse_from_str(a, "%Y-%m-%d").map_err(|e| format!("as_of `{a}`: {e}"))?;
        }
        if p.also_days_before.iter().any(|d| *d == 0 || *d > 3660) {
            return Err("also_days_before: each must be 1 to 3660 days".to_owned());
        }
        Ok(())
    }

    fn shardable(&self) -> bool {
        true
    }

    async fn run(&self, ctx: &JobContext) -> JobResult {
        let p: Params = parse_params(&ctx.params_value()).map_err(JobError::Fatal)?;
        let as_of = ctx.as_of()?;
        let mut dates = vec![as_of];
        for days in &p.also_days_before {
            if let Some(d) = as_of.checked_sub_days(chrono::Days::new(u64::from(*days))) {
                dates.push(d);
            }
        }
        let started = std::time::Instant::now();
        let written = compute_and_store(
            &ctx.lake()?,
            &dates,
            Scope {
                only: None,
                shard: ctx.shard,
            },
        )
        .await
        .map_err(|e| JobError::Failed(e.to_string()))?;
        let per_date: Vec<String> = dates
            .iter()
            .zip(&written)
            .map(|(d, n)| format!("{n} customers as of {d}"))
            .collect();
        ctx.log.info(format!(
            "features{}: {} in {:.2}s",
            ctx.shard_note(),
            per_date.join(", "),
            started.elapsed().as_secs_f64()
        ));
        Ok(())
    }
}

/// Computes and stores features for each of `dates` (one pass over the data) for `scope`'s
/// customers. Returns the customers written per date.
pub async fn compute_and_store(
    lake: &Lake,
    dates: &[NaiveDate],
    scope: Scope<'_>,
) -> anyhow::Result<Vec<usize>> {
    Ok(crate::lake::features::compute_and_store(lake, dates, scope).await?)
}

/// Every customer's features as of `as_of` (`YYYY-MM-DD`), as model rows.
pub async fn matrix_at(lake: &Lake, as_of: &str) -> anyhow::Result<FeatureMatrix> {
    let date = NaiveDate::parse_from_str(as_of, "%Y-%m-%d")?;
    Ok(crate::lake::features::matrix(lake, date).await?)
}
