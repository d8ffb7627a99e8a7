//! The audit log: who did what, when.

use sea_orm::{ActiveValue::Set, EntityTrait, QueryOrder, QuerySelect};
use serde_json::Value;

use crate::db::{Db, Result, entities::audit_log, now};

/// The person at the keyboard: `$USER@host`.
pub fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    format!("{user}@{}", gethostname::gethostname().to_string_lossy())
}

pub async fn record(db: &Db, action: &str, target: &str, details: Value) -> Result {
    audit_log::Entity::insert(audit_log::ActiveModel {
        at: Set(now()),
        actor: Set(actor()),
        action: Set(action.to_owned()),
        target: Set(target.to_owned()),
        details: Set(details.to_string()),
        ..Default::default()
    })
    .exec(db)
    .await?;
    Ok(())
}

pub async fn list(db: &Db, limit: u64) -> Result<Vec<audit_log::Model>> {
    Ok(audit_log::Entity::find()
        .order_by_desc(audit_log::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}
