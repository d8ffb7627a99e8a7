//! Output shared by commands: tables for people, JSON shapes for machines, and time
//! formatting.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use comfy_table::{ContentArrangement, Table, presets::NOTHING};
use serde::Serialize;

use crate::db::{
    entities::{attempt, job_run},
    repo::runs::{RunDetail, RunRow},
};

/// A borderless table with a header row.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().map(|h| h.to_uppercase()));
    t
}

pub fn time(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".to_owned())
}

/// `1.2s`, `3m04s`, `2h05m`; `-` when it has not started.
pub fn duration(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> String {
    let Some(start) = start else {
        return "-".to_owned();
    };
    let end = end.unwrap_or_else(Utc::now);
    human_ms((end - start).num_milliseconds().max(0))
}

pub fn human_ms(ms: i64) -> String {
    match ms {
        ms if ms < 1_000 => format!("{ms}ms"),
        ms if ms < 60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        ms if ms < 3_600_000 => format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60),
        ms => format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60),
    }
}

fn ms_between(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> Option<i64> {
    Some((end? - start?).num_milliseconds())
}

#[derive(Debug, Serialize)]
pub struct RunJson {
    pub id: i64,
    pub pipeline: String,
    pub state: String,
    pub trigger: String,
    pub run_key: String,
    pub logical_time: DateTime<Utc>,
    pub params: BTreeMap<String, String>,
    pub reruns: i32,
    pub cancel_requested: bool,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// From the first start to the last end (across reruns).
    pub duration_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs: Option<Vec<JobJson>>,
    /// The first execution and each rerun (`runs show` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executions: Option<Vec<ExecutionJson>>,
}

#[derive(Debug, Serialize)]
pub struct ExecutionJson {
    /// 0 for the first execution, then the rerun's number.
    pub number: i32,
    /// `all`, `failed_only` or `from:JOB` for a rerun; null for the first.
    pub scope: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub state: String,
}

#[derive(Debug, Serialize)]
pub struct JobJson {
    pub name: String,
    pub kind: String,
    pub state: String,
    pub error: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub attempts: Vec<AttemptJson>,
}

#[derive(Debug, Serialize)]
pub struct AttemptJson {
    pub number: i32,
    pub state: String,
    pub worker_id: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

impl RunJson {
    pub fn from_row(row: &RunRow) -> Self {
        let r = &row.run;
        Self {
            id: r.id,
            pipeline: row.pipeline.clone(),
            state: r.state.to_string(),
            trigger: r.trigger.to_string(),
            run_key: r.run_key.clone(),
            logical_time: r.logical_time,
            params: serde_json::from_str(&r.params).unwrap_or_default(),
            reruns: r.reruns,
            cancel_requested: r.cancel_requested,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            duration_ms: ms_between(r.started_at, r.finished_at),
            jobs: None,
            executions: None,
        }
    }

    pub fn from_detail(d: &RunDetail) -> Self {
        let mut json = Self::from_row(&RunRow {
            run: d.run.clone(),
            pipeline: d.pipeline.clone(),
        });
        json.jobs = Some(d.jobs.iter().map(|(j, a)| JobJson::new(j, a)).collect());
        json.executions = Some(
            d.executions()
                .into_iter()
                .map(|e| ExecutionJson {
                    number: e.number,
                    duration_ms: ms_between(e.started_at, e.finished_at),
                    scope: e.scope,
                    requested_at: e.requested_at,
                    started_at: e.started_at,
                    finished_at: e.finished_at,
                    state: e.state.to_string(),
                })
                .collect(),
        );
        json
    }
}

impl JobJson {
    fn new(job: &job_run::Model, attempts: &[attempt::Model]) -> Self {
        Self {
            name: job.job_name.clone(),
            kind: job.kind.clone(),
            state: job.state.to_string(),
            error: job.error.clone(),
            started_at: job.started_at,
            finished_at: job.finished_at,
            attempts: attempts
                .iter()
                .map(|a| AttemptJson {
                    number: a.number,
                    state: a.state.to_string(),
                    worker_id: a.worker_id.clone(),
                    started_at: a.started_at,
                    finished_at: a.finished_at,
                    error: a.error.clone(),
                })
                .collect(),
        }
    }
}

/// The human view of one run: a header and a job table.
pub fn print_run_detail(d: &RunDetail) {
    let r = &d.run;
    println!(
        "run {} of {}  state {}  trigger {}  key {}",
        r.id, d.pipeline, r.state, r.trigger, r.run_key
    );
    println!(
        "logical time {}  started {}  finished {}  duration {}{}",
        time(Some(r.logical_time)),
        time(r.started_at),
        time(r.finished_at),
        duration(r.started_at, r.finished_at),
        if r.reruns > 0 {
            format!("  reruns {}", r.reruns)
        } else {
            String::new()
        }
    );
    let params = d.params();
    if !params.is_empty() {
        let list: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("params {}", list.join(" "));
    }
    if r.reruns > 0 {
        let mut t = table(&[
            "execution",
            "requested",
            "started",
            "finished",
            "duration",
            "state",
        ]);
        for e in d.executions() {
            t.add_row(vec![
                match &e.scope {
                    None => "first".to_owned(),
                    Some(scope) => format!("rerun {} ({})", e.number, scope.replace('_', " ")),
                },
                time(Some(e.requested_at)),
                time(e.started_at),
                time(e.finished_at),
                duration(e.started_at, e.finished_at),
                e.state.to_string(),
            ]);
        }
        println!("{t}");
    }
    let mut t = table(&["job", "kind", "state", "attempts", "duration", "error"]);
    for (job, attempts) in &d.jobs {
        let last = attempts.last();
        t.add_row(vec![
            job.job_name.clone(),
            job.kind.clone(),
            job.state.to_string(),
            attempts.len().to_string(),
            duration(
                job.started_at,
                job.finished_at.or(last.and_then(|a| a.finished_at)),
            ),
            job.error.clone().unwrap_or_default(),
        ]);
    }
    println!("{t}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human_ms(250), "250ms");
        assert_eq!(human_ms(1_250), "1.2s");
        assert_eq!(human_ms(184_000), "3m04s");
        assert_eq!(human_ms(7_500_000), "2h05m");
    }
}
