//! Attempt logs: bulk appends from the daemon, reads for `patron logs`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};

use super::CHUNK;
use crate::pipeline::shard;
use crate::{
    db::{
        Db, Result,
        entities::{LogStream, attempt, attempt_log, job_run},
    },
    jobs::LogLine,
};

pub async fn append(db: &Db, lines: &[LogLine]) -> Result {
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        return append_unnest(db, lines).await;
    }
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

/// On PostgreSQL, every line in one statement, the columns bound as arrays (the ORM's
/// multi-row insert binds four parameters per line and is parsed anew for each size).
async fn append_unnest(db: &Db, lines: &[LogLine]) -> Result {
    use crate::db::pg_array as array;
    use sea_orm::{Value, sea_query::ArrayType};
    if lines.is_empty() {
        return Ok(());
    }
    let values = vec![
        array(
            ArrayType::BigInt,
            lines
                .iter()
                .map(|l| Value::BigInt(Some(l.attempt_id)))
                .collect(),
        ),
        array(
            ArrayType::String,
            lines
                .iter()
                .map(|l| Value::String(Some(sea_orm::ActiveEnum::to_value(&l.stream))))
                .collect(),
        ),
        array(
            ArrayType::String,
            lines
                .iter()
                .map(|l| Value::String(Some(l.line.clone())))
                .collect(),
        ),
        array(
            ArrayType::ChronoDateTimeUtc,
            lines
                .iter()
                .map(|l| Value::ChronoDateTimeUtc(Some(l.at)))
                .collect(),
        ),
    ];
    db.execute_raw(Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        "INSERT INTO attempt_logs (attempt_id, stream, line, at) \
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::timestamptz[])",
        values,
    ))
    .await?;
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
        jobs = jobs.filter(
            sea_orm::Condition::any()
                .add(job_run::Column::JobName.eq(job))
                .add(job_run::Column::JobName.starts_with(format!("{job}:"))),
        );
    }
    // A sharded job's name means all its shards (`JOB:0`, `JOB:1`, …); the exact test is
    // here, as `_` in a name is a wildcard to the `LIKE` above.
    let jobs: HashMap<i64, String> = jobs
        .into_tuple::<(i64, String)>()
        .all(db)
        .await?
        .into_iter()
        .filter(|(_, name)| job.is_none_or(|j| name == j || shard::base_name(name) == j))
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
