//! The `Job` trait, the registry of kinds, and the context an attempt runs with.
//!
//! A kind validates its params when a pipeline is validated (so a bad pipeline never reaches
//! the daemon) and again when it runs. Kinds from DESIGN.md section 7 that this build does not
//! have yet are known by name, so a pipeline naming them fails validation with a clear reason.

pub mod clean;
pub mod command;
pub mod compact;
pub mod features;
pub mod feedback;
pub mod http;
pub mod ingest;
pub mod noop;
pub mod points;
pub mod profile;
pub mod recommend;
pub mod retrain;
pub mod sentiment;
mod steps;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{
    db::{Db, entities::LogStream},
    pipeline::{KindCatalog, KindProblem, RunParamUse, Shard},
};

/// How a job failed. The executor decides about retries from this.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth retrying (exit code, HTTP status, network error).
    #[error("{0}")]
    Failed(String),
    /// Retrying cannot help (bad params, program not found).
    #[error("{0}")]
    Fatal(String),
    /// The attempt's cancellation token fired and the job stopped.
    #[error("cancelled")]
    Cancelled,
}

pub type JobResult = Result<(), JobError>;

/// A retryable failure from any error (database, thread join, serialisation).
pub(crate) fn failed(e: impl std::fmt::Display) -> JobError {
    JobError::Failed(e.to_string())
}

#[async_trait::async_trait]
pub trait Job: Send + Sync {
    fn kind(&self) -> &'static str;

    /// Checks `params` (a JSON object) without side effects.
    fn check_params(&self, params: &Value) -> Result<(), String>;

    /// Whether a job of this kind may set `shards = N`: it then processes only the customers
    /// of `ctx.shard` (or, like `command`, is told its shard).
    fn shardable(&self) -> bool {
        false
    }

    /// The run params (`trigger --param`) this kind reads itself, beyond the same-named
    /// params of the job that [`apply_run_params`] replaces.
    fn run_params(&self) -> RunParamUse {
        RunParamUse::Reads(&[])
    }

    /// Runs one attempt. Must stop promptly when `ctx.cancel` fires.
    async fn run(&self, ctx: &JobContext) -> JobResult;
}

/// One line for the attempt log.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub attempt_id: i64,
    pub stream: LogStream,
    pub line: String,
    pub at: DateTime<Utc>,
}

/// Where a job writes its log. The daemon batches lines into the database, ahead of the
/// attempt's outcome; tests collect them in memory.
#[derive(Clone)]
pub struct LogSink {
    attempt_id: i64,
    send: Arc<dyn Fn(LogLine) + Send + Sync>,
}

impl LogSink {
    pub fn new(attempt_id: i64, send: Arc<dyn Fn(LogLine) + Send + Sync>) -> Self {
        Self { attempt_id, send }
    }

    /// A sink feeding a channel.
    pub fn channel(attempt_id: i64, tx: mpsc::UnboundedSender<LogLine>) -> Self {
        // The receiver outlives every attempt; if it is gone the line has nowhere to go.
        Self::new(attempt_id, Arc::new(move |line| drop(tx.send(line))))
    }

    pub fn line(&self, stream: LogStream, line: impl Into<String>) {
        (self.send)(LogLine {
            attempt_id: self.attempt_id,
            stream,
            line: line.into(),
            at: Utc::now(),
        });
    }

    pub fn info(&self, line: impl Into<String>) {
        self.line(LogStream::Patron, line);
    }
}

/// Where a job reports the process groups it starts. The scheduler records them with the
/// attempt, so that a daemon starting on the same host after this one died can end them
/// before the job is retried.
#[derive(Clone)]
pub struct GroupSink(Arc<dyn Fn(command::host::Group) + Send + Sync>);

impl GroupSink {
    pub fn new(report: Arc<dyn Fn(command::host::Group) + Send + Sync>) -> Self {
        Self(report)
    }

    pub fn started(&self, group: command::host::Group) {
        (self.0)(group)
    }
}

/// Everything an attempt may use.
#[derive(Clone)]
pub struct JobContext {
    pub run_id: i64,
    pub pipeline: String,
    pub job: String,
    pub attempt: i32,
    pub logical_time: DateTime<Utc>,
    /// `--param` values of the run, all of them (also those no job param is named after).
    pub run_params: BTreeMap<String, String>,
    /// The job's params with same-named run params applied.
    pub params: Map<String, Value>,
    pub timeout: Option<Duration>,
    /// The customers this job run processes, when its job is sharded.
    pub shard: Option<Shard>,
    /// How many times the run was rerun (0 for its first execution).
    pub reruns: i32,
    pub cancel: CancellationToken,
    pub log: LogSink,
    pub groups: GroupSink,
    pub db: Db,
    pub http: reqwest::Client,
    pub settings: Arc<crate::config::Settings>,
}

impl JobContext {
    /// The lake the settings name (a job that needs it fails without it).
    pub fn lake(&self) -> Result<crate::lake::Lake, JobError> {
        crate::lake::Lake::open(&self.settings, self.db.clone())
            .map_err(|e| JobError::Fatal(e.to_string()))
    }

    pub fn params_value(&self) -> Value {
        Value::Object(self.params.clone())
    }

    /// Whether this job run processes `customer_id` (always, when not sharded).
    pub fn owns(&self, customer_id: &str) -> bool {
        self.shard.is_none_or(|s| s.owns(customer_id))
    }

    /// A key the shards of one job in one execution of a run share (and a retry of any of
    /// them reuses), so that what they build together, such as a model version, is made
    /// once: `RUN.RERUNS/JOB`.
    pub fn shared_key(&self) -> String {
        format!(
            "{}.{}/{}",
            self.run_id,
            self.reruns,
            crate::pipeline::shard::base_name(&self.job)
        )
    }

    /// ` (shard i of n)` for log lines, or nothing.
    pub fn shard_note(&self) -> String {
        self.shard.map(|s| format!(" ({s})")).unwrap_or_default()
    }

    /// The run's `as_of` date: the job param, else the run param, else the run's logical
    /// date (UTC).
    pub fn as_of(&self) -> Result<chrono::NaiveDate, JobError> {
        let text = self
            .params
            .get("as_of")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| self.run_params.get("as_of").cloned());
        match text {
            Some(t) => chrono::NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d")
                .map_err(|e| JobError::Fatal(format!("as_of `{t}` is not a YYYY-MM-DD date: {e}"))),
            None => Ok(self.logical_time.date_naive()),
        }
    }
}

/// The kinds this build can run.
#[derive(Clone)]
pub struct Registry {
    kinds: BTreeMap<&'static str, Arc<dyn Job>>,
}

impl Registry {
    pub fn builtin() -> Self {
        let mut registry = Self {
            kinds: BTreeMap::new(),
        };
        registry.add(Arc::new(noop::Noop));
        registry.add(Arc::new(command::Command));
        registry.add(Arc::new(http::Http));
        registry.add(Arc::new(ingest::Ingest));
        registry.add(Arc::new(clean::Clean));
        registry.add(Arc::new(compact::Compact));
        registry.add(Arc::new(features::Features));
        registry.add(Arc::new(profile::Profile));
        registry.add(Arc::new(retrain::Retrain));
        registry.add(Arc::new(sentiment::SentimentJob));
        registry.add(Arc::new(recommend::Recommend));
        registry.add(Arc::new(feedback::Feedback));
        registry.add(Arc::new(points::Points));
        registry
    }

    pub fn add(&mut self, job: Arc<dyn Job>) {
        self.kinds.insert(job.kind(), job);
    }

    pub fn get(&self, kind: &str) -> Option<Arc<dyn Job>> {
        self.kinds.get(kind).cloned()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.kinds.keys().copied().collect()
    }
}

impl KindCatalog for Registry {
    fn shardable(&self, kind: &str) -> bool {
        self.kinds.get(kind).is_some_and(|k| k.shardable())
    }

    fn run_params(&self, kind: &str) -> RunParamUse {
        self.kinds
            .get(kind)
            .map_or(RunParamUse::Reads(&[]), |k| k.run_params())
    }

    fn check(&self, kind: &str, params: &Value) -> Result<(), KindProblem> {
        match self.kinds.get(kind) {
            Some(job) => job.check_params(params).map_err(KindProblem::BadParams),
            None => Err(KindProblem::Unknown(format!(
                "unknown kind `{kind}` (available: {})",
                self.names().join(", ")
            ))),
        }
    }
}

/// Typed params from a JSON object, with serde's message on failure.
pub fn parse_params<T: serde::de::DeserializeOwned>(params: &Value) -> Result<T, String> {
    serde_json::from_value(params.clone()).map_err(|e| e.to_string())
}

/// Applies run params to a job's params: a run param replaces the job param of the same name,
/// converted to that param's type (`--param retries=3` stays a number).
pub fn apply_run_params(
    job_params: &Map<String, Value>,
    run_params: &BTreeMap<String, String>,
) -> Result<Map<String, Value>, String> {
    let mut out = job_params.clone();
    for (key, text) in run_params {
        let Some(current) = out.get(key) else {
            continue;
        };
        let value = match current {
            Value::String(_) | Value::Null => Value::String(text.clone()),
            Value::Bool(_) => Value::Bool(
                text.parse()
                    .map_err(|_| format!("run param {key}={text}: expected true or false"))?,
            ),
            Value::Number(n) if n.is_i64() || n.is_u64() => Value::from(
                text.parse::<i64>()
                    .map_err(|_| format!("run param {key}={text}: expected an integer"))?,
            ),
            Value::Number(_) => serde_json::Number::from_f64(
                text.parse::<f64>()
                    .map_err(|_| format!("run param {key}={text}: expected a number"))?,
            )
            .map(Value::Number)
            .ok_or_else(|| format!("run param {key}={text}: not a finite number"))?,
            Value::Array(_) | Value::Object(_) => serde_json::from_str(text)
                .map_err(|e| format!("run param {key}: expected JSON ({e})"))?,
        };
        out.insert(key.clone(), value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn run_params_replace_same_named_job_params_keeping_types() {
        let job =
            json!({"as_of": "2020-01-01", "limit": 5, "ratio": 0.5, "dry": false, "args": ["a"]});
        let job = job.as_object().unwrap();
        let run: BTreeMap<String, String> = [
            ("as_of", "1997-09-30"),
            ("limit", "7"),
            ("ratio", "0.25"),
            ("dry", "true"),
            ("args", "[\"b\",\"c\"]"),
            ("unrelated", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let out = apply_run_params(job, &run).unwrap();
        assert_eq!(
            Value::Object(out),
            json!({"as_of": "1997-09-30", "limit": 7, "ratio": 0.25, "dry": true, "args": ["b", "c"]})
        );
    }

    #[test]
    fn a_run_param_of_the_wrong_type_is_an_error() {
        let job = json!({"limit": 5});
        let run = BTreeMap::from([("limit".to_owned(), "many".to_owned())]);
        let err = apply_run_params(job.as_object().unwrap(), &run).unwrap_err();
        assert!(err.contains("expected an integer"), "{err}");
    }

    #[test]
    fn kinds_declare_the_run_params_they_read() {
        let r = Registry::builtin();
        for kind in ["clean", "features", "profile", "recommend", "retrain"] {
            assert_eq!(r.run_params(kind), RunParamUse::Reads(&["as_of"]), "{kind}");
        }
        assert_eq!(
            r.run_params("points"),
            RunParamUse::Reads(&["as_of", "campaign"])
        );
        assert_eq!(r.run_params("command"), RunParamUse::Any);
        for kind in ["noop", "http", "ingest", "sentiment", "feedback", "compact"] {
            assert_eq!(r.run_params(kind), RunParamUse::Reads(&[]), "{kind}");
        }
    }

    #[test]
    fn unknown_kinds_are_explained() {
        let r = Registry::builtin();
        for kind in ["feedback", "points", "recommend"] {
            assert!(r.get(kind).is_some(), "{kind}");
        }
        let Err(KindProblem::Unknown(m)) = r.check("teleport", &json!({})) else {
            panic!()
        };
        assert!(
            m.contains("unknown kind `teleport`") && m.contains("command"),
            "{m}"
        );
    }
}
