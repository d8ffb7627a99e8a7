//! `noop`: succeeds at once. For joins in a DAG, placeholders and scheduler benchmarks.

use serde_json::Value;

use super::{Job, JobContext, JobResult, parse_params};

pub struct Noop;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {}

#[async_trait::async_trait]
impl Job for Noop {
    fn kind(&self) -> &'static str {
        "noop"
    }

    fn check_params(&self, params: &Value) -> Result<(), String> {
        parse_params::<Params>(params).map(|_| ())
    }

    fn shardable(&self) -> bool {
        true
    }

    async fn run(&self, _ctx: &JobContext) -> JobResult {
        Ok(())
    }
}
