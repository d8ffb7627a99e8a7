//! Attempt logs: bulk appends from the daemon, reads for `patron logs`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::CHUNK;
use crate::{
    db::{
        Db, Result,
        entities::{LogStream, attempt, attempt_log, job_run},
    },
    jobs::LogLine,
};

pub async fn append(db: &Db, lines: &[LogLine]) -> Result {
    for chunk in lines.chunks(CHUNK) {
        let rows: Vec<attempt_log::ActiveModel> = chunk
            .iter()
            .map(|l| attempt_log::ActiveModel {
                attempt_id: Set(l.attempt_id),
                stream: Set(l.stream),
                line: Set(l.line.clone()),
                at: Set(l.at),
                ..Default::default()
            })
            .collect();
        attempt_log::Entity::insert_many(rows).exec(db).await?;
    }
    Ok(())
}

/// One log line with where it came from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogEntry {
    pub id: i64,
    pub job: String,
    pub attempt: i32,
    pub stream: LogStream,
    pub at: DateTime<Utc>,
    pub line: String,
}

/// Lines of a run (optionally one job) with id greater than `after`, oldest first.
pub async fn list(
    db: &Db,
    run_id: i64,
    job: Option<&str>,
    after: i64,
    limit: u64,
) -> Result<Vec<LogEntry>> {
    let mut jobs = job_run::Entity::find()
        .select_only()
        .column(job_run::Column::Id)
        .column(job_run::Column::JobName)
        .filter(job_run::Column::RunId.eq(run_id));
    if let Some(job) = job {
        // A sharded job's name means all its shards (`JOB:0`, `JOB:1`, …).
        jobs = jobs.filter(
            sea_orm::Condition::any()
                .add(job_run::Column::JobName.eq(job))
                .add(job_run::Column::JobName.starts_with(format!("{job}:"))),
        );
    }
    let jobs: HashMap<i64, String> = jobs
        .into_tuple::<(i64, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let job_ids: Vec<i64> = jobs.keys().copied().collect();
    let mut attempts: HashMap<i64, (String, i32)> = HashMap::new();
    for chunk in job_ids.chunks(CHUNK) {
        let rows: Vec<(i64, i64, i32)> = attempt::Entity::find()
            .select_only()
            .column(attempt::Column::Id)
            .column(attempt::Column::JobRunId)
            .column(attempt::Column::Number)
            .filter(attempt::Column::JobRunId.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        for (id, job_run_id, number) in rows {
            attempts.insert(
                id,
                (jobs.get(&job_run_id).cloned().unwrap_or_default(), number),
            );
        }
    }
    let attempt_ids: Vec<i64> = attempts.keys().copied().collect();
    let mut out = Vec::new();
    for chunk in attempt_ids.chunks(CHUNK) {
        let rows = attempt_log::Entity::find()
            .filter(attempt_log::Column::AttemptId.is_in(chunk.to_vec()))
            .filter(attempt_log::Column::Id.gt(after))
            .order_by_asc(attempt_log::Column::Id)
            .limit(limit)
            .all(db)
            .await?;
        out.extend(rows.into_iter().map(|r| {
            let (job, attempt) = attempts.get(&r.attempt_id).cloned().unwrap_or_default();
            LogEntry {
                id: r.id,
                job,
                attempt,
                stream: r.stream,
                at: r.at,
                line: r.line,
            }
        }));
    }
    out.sort_by_key(|e| e.id);
    out.truncate(limit as usize);
    Ok(out)
}
