//! Where attempts' processes run: the process groups `command` attempts started, and the
//! running attempts a starting daemon looks at to find those whose daemon died.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, sea_query::Expr};

use super::CHUNK;
use crate::{
    db::{
        Db, Result,
        entities::{AttemptState, attempt, worker},
    },
    pipeline::recovery::HeldAttempt,
};

/// Records the process group each attempt started, on `host`: (attempt, pgid, the group
/// leader's start time).
pub async fn record_groups(db: &Db, host: &str, groups: &[(i64, i32, Option<i64>)]) -> Result {
    for &(attempt_id, pgid, start) in groups {
        attempt::Entity::update_many()
            .col_expr(attempt::Column::HostKey, Expr::value(host))
            .col_expr(attempt::Column::Pgid, Expr::value(pgid))
            .col_expr(attempt::Column::PgidStart, Expr::value(start))
            .filter(attempt::Column::Id.eq(attempt_id))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Running attempts held by `worker_id` or by a worker registered on `host`, or whose
/// process group is on `host`, with what is known of their workers.
pub async fn held_here(db: &Db, worker_id: &str, host: &str) -> Result<Vec<HeldAttempt>> {
    let workers: HashMap<String, worker::Model> = worker::Entity::find()
        .filter(worker::Column::HostKey.eq(host))
        .all(db)
        .await?
        .into_iter()
        .map(|w| (w.id.clone(), w))
        .collect();
    let mut holders: Vec<String> = workers.keys().cloned().collect();
    holders.push(worker_id.to_owned());
    let mut out = Vec::new();
    for chunk in holders.chunks(CHUNK) {
        let rows = attempt::Entity::find()
            .filter(attempt::Column::State.eq(AttemptState::Running))
            .filter(
                Condition::any()
                    .add(attempt::Column::WorkerId.is_in(chunk.to_vec()))
                    .add(attempt::Column::HostKey.eq(host)),
            )
            .all(db)
            .await?;
        out.extend(rows);
    }
    out.sort_by_key(|a| a.id);
    out.dedup_by_key(|a| a.id);
    Ok(out
        .into_iter()
        .map(|a| {
            let w = workers.get(&a.worker_id);
            HeldAttempt {
                attempt_id: a.id,
                job_run_id: a.job_run_id,
                number: a.number,
                worker_host: w.and_then(|w| w.host_key.clone()),
                worker_pid: w.map(|w| w.pid),
                worker_start: w.and_then(|w| w.proc_start),
                worker_id: a.worker_id,
                host: a.host_key,
                pgid: a.pgid,
                pgid_start: a.pgid_start,
            }
        })
        .collect())
}

/// The recorded process groups of `attempt_ids`: attempt → (host, pgid, leader start).
pub async fn groups_of(
    db: &Db,
    attempt_ids: &[i64],
) -> Result<HashMap<i64, (String, i32, Option<i64>)>> {
    let mut out = HashMap::new();
    for chunk in attempt_ids.chunks(CHUNK) {
        let rows = attempt::Entity::find()
            .filter(attempt::Column::Id.is_in(chunk.to_vec()))
            .filter(attempt::Column::Pgid.is_not_null())
            .all(db)
            .await?;
        for a in rows {
            if let (Some(host), Some(pgid)) = (a.host_key, a.pgid) {
                out.insert(a.id, (host, pgid, a.pgid_start));
            }
        }
    }
    Ok(out)
}
