//! The model registry: every trained model with its metrics, and one champion per kind.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::Expr,
};

use crate::db::{
    Db, RepoError, Result, begin_write,
    entities::{ModelStatus, model},
    has_row_locks, now,
};

/// What to store.
#[derive(Debug, Clone)]
pub struct NewModel {
    pub kind: String,
    pub algorithm: String,
    pub params: serde_json::Value,
    pub metrics: serde_json::Value,
    pub as_of: Option<String>,
    pub payload: String,
}

/// Stores a model as a challenger with the next version of its kind.
pub async fn register(db: &Db, new: NewModel) -> Result<model::Model> {
    Ok(register_keyed(db, new, None).await?.0)
}

/// Stores a model once per `key`: the first caller creates it and gets `true`; every later
/// caller with the same key (the other shards of a sharded job, or a retry) gets the stored
/// row and `false`, and should use it rather than its own.
pub async fn register_shared(db: &Db, new: NewModel, key: &str) -> Result<(model::Model, bool)> {
    register_keyed(db, new, Some(key)).await
}

async fn register_keyed(db: &Db, new: NewModel, key: Option<&str>) -> Result<(model::Model, bool)> {
    let txn = begin_write(db).await?;
    if has_row_locks(&txn) {
        // Registrations take turns (SQLite's write transaction already does): two daemons
        // must not give out the same version, nor both create a shared model.
        txn.execute_unprepared("SELECT pg_advisory_xact_lock(7305001)")
            .await?;
    }
    if let Some(key) = key
        && let Some(existing) = model::Entity::find()
            .filter(model::Column::ShareKey.eq(key))
            .one(&txn)
            .await?
    {
        txn.commit().await?;
        return Ok((existing, false));
    }
    let latest: Option<i32> = model::Entity::find()
        .select_only()
        .column(model::Column::Version)
        .filter(model::Column::Kind.eq(new.kind.as_str()))
        .order_by_desc(model::Column::Version)
        .into_tuple()
        .one(&txn)
        .await?;
    let row = model::ActiveModel {
        kind: Set(new.kind),
        version: Set(latest.unwrap_or(0) + 1),
        algorithm: Set(new.algorithm),
        params: Set(new.params.to_string()),
        metrics: Set(new.metrics.to_string()),
        status: Set(ModelStatus::Challenger),
        as_of: Set(new.as_of),
        payload: Set(new.payload),
        trained_at: Set(now()),
        share_key: Set(key.map(str::to_owned)),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok((row, true))
}

/// The model registered under a shared key (see [`register_shared`]), if any yet.
pub async fn shared(db: &Db, key: &str) -> Result<Option<model::Model>> {
    Ok(model::Entity::find()
        .filter(model::Column::ShareKey.eq(key))
        .one(db)
        .await?)
}

/// The current champion of a kind.
pub async fn champion(db: &Db, kind: &str) -> Result<Option<model::Model>> {
    Ok(model::Entity::find()
        .filter(model::Column::Kind.eq(kind))
        .filter(model::Column::Status.eq(ModelStatus::Champion))
        .one(db)
        .await?)
}

/// Makes `id` the champion of its kind; the previous champion is retired.
pub async fn promote(db: &Db, id: i64) -> Result {
    let txn = begin_write(db).await?;
    let m = model::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| RepoError::not_found("model", id))?;
    model::Entity::update_many()
        .col_expr(model::Column::Status, Expr::value(ModelStatus::Retired))
        .filter(model::Column::Kind.eq(m.kind.as_str()))
        .filter(model::Column::Status.eq(ModelStatus::Champion))
        .exec(&txn)
        .await?;
    let mut active: model::ActiveModel = m.into();
    active.status = Set(ModelStatus::Champion);
    active.update(&txn).await?;
    txn.commit().await?;
    Ok(())
}

/// Replaces a model's metrics (e.g. click-through tracked after training).
pub async fn set_metrics(db: &Db, id: i64, metrics: &serde_json::Value) -> Result {
    model::Entity::update_many()
        .col_expr(model::Column::Metrics, Expr::value(metrics.to_string()))
        .filter(model::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Models without their payloads (which can be large), newest first.
pub async fn list(db: &Db, kind: Option<&str>) -> Result<Vec<model::Model>> {
    let mut q = model::Entity::find()
        .select_only()
        .columns([
            model::Column::Id,
            model::Column::Kind,
            model::Column::Version,
            model::Column::Algorithm,
            model::Column::Params,
            model::Column::Metrics,
            model::Column::Status,
            model::Column::AsOf,
            model::Column::TrainedAt,
        ])
        .column_as(Expr::value(""), "payload")
        .order_by_desc(model::Column::Id);
    if let Some(k) = kind {
        q = q.filter(model::Column::Kind.eq(k));
    }
    Ok(q.into_model::<model::Model>().all(db).await?)
}

pub async fn get(db: &Db, id: i64) -> Result<model::Model> {
    model::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| RepoError::not_found("model", id))
}
