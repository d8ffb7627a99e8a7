//! One trained model in the registry: what it is, how it was trained, how it scored, and the
//! model itself (serialized JSON).

use sea_orm::entity::prelude::*;

use super::ModelStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "models")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `churn`, `intent`, `segments`, `sentiment`, …
    pub kind: String,
    pub version: i32,
    pub algorithm: String,
    /// JSON object.
    #[sea_orm(column_type = "Text")]
    pub params: String,
    /// JSON object: AUC, log-loss, lift, … on the validation set.
    #[sea_orm(column_type = "Text")]
    pub metrics: String,
    pub status: ModelStatus,
    /// The as-of date of the data it was trained on.
    pub as_of: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    pub trained_at: DateTimeUtc,
    /// Set when the shards of one sharded job build this model together (see
    /// `repo::models::register_shared`).
    pub share_key: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
