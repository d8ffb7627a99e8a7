//! `clean`: marks anomalous rows with a reason instead of dropping them, so features and
//! models can leave them out while people can still see them.
//!
//! Rules: a paid order line with a non-positive quantity or price; an order dated before its
//! customer's signup; any row dated in the future (after `as_of` plus `future_tolerance`).
//! The marks are recomputed from scratch each run into the lake's `anomalies` dataset,
//! replacing the previous marks in one commit, so the job is idempotent and a fixed row
//! loses its mark (`crate::lake::clean`).
//!
//! Row-level cleaning happens as rows are loaded (see `crate::ingest`): timestamps become UTC
//! (naive ones read in the source's zone), text is NFKC-normalised with collapsed whitespace,
//! statuses and kinds are normalised, and exact duplicate lines are stored once. Doing it there
//! writes every row once instead of twice, which the scale case needs.

use serde::Deserialize;
use serde_json::Value;

use super::{Job, JobContext, JobError, JobResult, parse_params};

pub struct Clean;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Rows dated after the end of this day (plus the tolerance) are "future". Default: the
    /// run's logical date.
    #[serde(default)]
    as_of: Option<String>,
    #[serde(default = "tolerance")]
    future_tolerance: String,
}

fn tolerance() -> String {
    "1d".to_owned()
}

#[async_trait::async_trait]
impl Job for Clean {
    fn kind(&self) -> &'static str {
        "clean"
    }

    /// Its `as_of` (`JobContext::as_of`) may come from the run.
    fn run_params(&self) -> crate::pipeline::RunParamUse {
        crate::pipeline::RunParamUse::Reads(&["as_of"])
    }

    fn check_params(&self, params: &Value) -> Result<(), String> {
        let p: Params = parse_params(params)?;
        crate::pipeline::load::parse_duration(&p.future_tolerance)
            .map_err(|e| format!("future_tolerance: {e}"))?;
        if let Some(a) = &p.as_of {
            chrono::NaiveDate::parse_from_str(a, "%Y-%m-%d")
                .map_err(|e| format!("as_of `{a}`: {e}"))?;
        }
        Ok(())
    }

    async fn run(&self, ctx: &JobContext) -> JobResult {
        let p: Params = parse_params(&ctx.params_value()).map_err(JobError::Fatal)?;
        let tolerance =
            crate::pipeline::load::parse_duration(&p.future_tolerance).map_err(JobError::Fatal)?;
        let as_of = ctx.as_of()?;
        let limit = as_of
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp())
            .ok_or_else(|| JobError::Fatal(format!("as_of {as_of} is out of range")))?
            + tolerance.as_secs() as i64;
        let lake = ctx.lake()?;
        let marks = crate::lake::clean::mark(&lake, limit)
            .await
            .map_err(super::failed)?;
        for dataset in ["orders", "events", "reviews", "customers"] {
            let parts: Vec<String> = marks
                .iter()
                .filter(|(d, _, _)| d == dataset)
                .map(|(_, reason, n)| format!("{reason} {n}"))
                .collect();
            ctx.log.info(format!(
                "{dataset}: anomalies now: {}",
                if parts.is_empty() {
                    "none".to_owned()
                } else {
                    parts.join(", ")
                }
            ));
        }
        if ctx.cancel.is_cancelled() {
            return Err(JobError::Cancelled);
        }
        Ok(())
    }
}
