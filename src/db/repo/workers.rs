//! Daemon processes and their heartbeats.

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    sea_query::{Expr, OnConflict},
};

use crate::db::{
    Db, Result,
    entities::{WorkerState, worker},
    now,
};

/// This process as a worker: where it runs and which process it is there.
pub struct Process<'a> {
    pub host: &'a str,
    pub pid: u32,
    /// See [`worker::Model::host_key`].
    pub host_key: &'a str,
    /// See [`worker::Model::proc_start`].
    pub start: Option<i64>,
}

/// Registers (or re-registers) a worker as running.
pub async fn register(db: &Db, id: &str, process: Process<'_>) -> Result {
    let t = now();
    worker::Entity::insert(worker::ActiveModel {
        id: Set(id.to_owned()),
        host: Set(process.host.to_owned()),
        pid: Set(process.pid as i32),
        host_key: Set(Some(process.host_key.to_owned())),
        proc_start: Set(process.start),
        version: Set(env!("CARGO_PKG_VERSION").to_owned()),
        state: Set(WorkerState::Running),
        started_at: Set(t),
        heartbeat_at: Set(t),
        stopped_at: Set(None),
    })
    .on_conflict(
        OnConflict::column(worker::Column::Id)
            .update_columns([
                worker::Column::Host,
                worker::Column::Pid,
                worker::Column::Version,
                worker::Column::State,
                worker::Column::StartedAt,
                worker::Column::HeartbeatAt,
                worker::Column::StoppedAt,
                worker::Column::HostKey,
                worker::Column::ProcStart,
            ])
            .to_owned(),
    )
    .exec(db)
    .await?;
    Ok(())
}

pub async fn touch(db: &Db, id: &str) -> Result {
    worker::Entity::update_many()
        .col_expr(worker::Column::HeartbeatAt, Expr::value(now()))
        .filter(worker::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn stop(db: &Db, id: &str) -> Result {
    let t = now();
    worker::Entity::update_many()
        .col_expr(worker::Column::State, Expr::value(WorkerState::Stopped))
        .col_expr(worker::Column::StoppedAt, Expr::value(t))
        .col_expr(worker::Column::HeartbeatAt, Expr::value(t))
        .filter(worker::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn list(db: &Db) -> Result<Vec<worker::Model>> {
    Ok(worker::Entity::find()
        .order_by_desc(worker::Column::HeartbeatAt)
        .all(db)
        .await?)
}

/// Whether some worker is running and heartbeated within `within`.
pub async fn any_alive(db: &Db, within: std::time::Duration) -> Result<bool> {
    let since = now() - chrono::Duration::from_std(within).unwrap_or_default();
    let n = worker::Entity::find()
        .filter(worker::Column::State.eq(WorkerState::Running))
        .filter(worker::Column::HeartbeatAt.gte(since))
        .count(db)
        .await?;
    Ok(n > 0)
}
