//! `compact`: rewrites lake datasets into one deduplicated file each (per as-of date for
//! features), so frequent small loads do not pile up files, then deletes the files earlier
//! compactions replaced once they are older than `lake.vacuum_grace` (a query may still
//! read them until then). See `crate::lake::maintain`.

use serde::Deserialize;
use serde_json::Value;

use super::{Job, JobContext, JobError, JobResult, failed, parse_params};
use crate::lake::{Dataset, maintain};

pub struct Compact;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Only this dataset (default: all).
    #[serde(default)]
    dataset: Option<String>,
    /// Also vacuum afterwards.
    #[serde(default = "yes")]
    vacuum: bool,
}

fn yes() -> bool {
    true
}

fn dataset(p: &Params) -> Result<Option<Dataset>, String> {
    p.dataset
        .as_deref()
        .map(|d| {
            Dataset::parse(d).ok_or_else(|| {
                format!(
                    "dataset `{d}` is not one of {}",
                    Dataset::ALL.map(Dataset::name).join(", ")
                )
            })
        })
        .transpose()
}

#[async_trait::async_trait]
impl Job for Compact {
    fn kind(&self) -> &'static str {
        "compact"
    }

    fn check_params(&self, params: &Value) -> Result<(), String> {
        let p: Params = parse_params(params)?;
        dataset(&p).map(|_| ())
    }

    async fn run(&self, ctx: &JobContext) -> JobResult {
        let p: Params = parse_params(&ctx.params_value()).map_err(JobError::Fatal)?;
        let only = dataset(&p).map_err(JobError::Fatal)?;
        let lake = ctx.lake()?;
        let done = maintain::compact(&lake, only).await.map_err(failed)?;
        if done.is_empty() {
            ctx.log.info("nothing to compact");
        }
        for c in &done {
            ctx.log.info(c.to_string());
        }
        if p.vacuum {
            let v = maintain::vacuum(&lake, ctx.settings.lake.vacuum_grace)
                .await
                .map_err(failed)?;
            ctx.log.info(format!(
                "vacuum: deleted {} replaced and {} unrecorded files ({} bytes)",
                v.replaced, v.unrecorded, v.bytes
            ));
        }
        Ok(())
    }
}
