//! The validated form of a pipeline file, as stored (JSON) with each applied version.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{graph, schedule::Schedule, shard::Shard};

/// Retry backoff when a job does not set `retry_backoff`.
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleSpec>,
    pub catchup: bool,
    pub max_active_runs: u32,
    /// A run still unfinished this long after it was created is reported to
    /// `notify.webhook_url` (once).
    #[serde(
        default,
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub sla: Option<Duration>,
    pub jobs: Vec<JobSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleSpec {
    /// The cron expression as written (five, six or seven fields).
    pub cron: String,
    /// IANA time zone name the expression is read in.
    pub timezone: String,
}

impl ScheduleSpec {
    pub fn compile(&self) -> Result<Schedule, String> {
        Schedule::parse(&self.cron, &self.timezone)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub params: Map<String, Value>,
    #[serde(default)]
    pub after: Vec<String>,
    /// Retries after the first failed attempt.
    #[serde(default)]
    pub retries: u32,
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    #[serde(default, with = "humantime_serde::option")]
    pub timeout: Option<Duration>,
    /// The pool whose size (`[pools]` in the settings) limits how many jobs of it run at
    /// once across every daemon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Set on each job a `shards = N` job was expanded into (see [`super::shard`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
}

impl PipelineSpec {
    pub fn job(&self, name: &str) -> Option<&JobSpec> {
        self.jobs.iter().find(|j| j.name == name)
    }

    /// The jobs a name given on the command line means: the job of that name, or every shard
    /// of a sharded job (`features` → `features:0`, `features:1`, …). Empty if neither.
    pub fn resolve(&self, name: &str) -> Vec<String> {
        if self.job(name).is_some() {
            return vec![name.to_owned()];
        }
        self.jobs
            .iter()
            .filter(|j| j.shard.is_some() && super::shard::base_name(&j.name) == name)
            .map(|j| j.name.clone())
            .collect()
    }

    /// Jobs in an order where every job comes after its upstreams. Validated specs have no
    /// cycle, so this only fails on a spec that bypassed validation.
    pub fn topo_order(&self) -> Result<Vec<&JobSpec>, graph::Cycle> {
        let order = graph::topo_order(&self.edges())?;
        Ok(order.into_iter().map(|i| &self.jobs[i]).collect())
    }

    /// `(job, its upstream indices)` for every job, in file order.
    pub fn edges(&self) -> Vec<(String, Vec<usize>)> {
        let index = |name: &str| self.jobs.iter().position(|j| j.name == name);
        self.jobs
            .iter()
            .map(|j| {
                (
                    j.name.clone(),
                    j.after.iter().filter_map(|a| index(a)).collect(),
                )
            })
            .collect()
    }

    /// `job` and every job downstream of it, transitively.
    pub fn downstream_of(&self, job: &str) -> Vec<String> {
        let mut out = vec![job.to_owned()];
        let mut i = 0;
        while i < out.len() {
            let current = out[i].clone();
            for j in &self.jobs {
                if j.after.contains(&current) && !out.contains(&j.name) {
                    out.push(j.name.clone());
                }
            }
            i += 1;
        }
        out
    }
}
