//! One rerun of a run: what it reran, when, and how the execution before it had ended.

use sea_orm::entity::prelude::*;

use super::RunState;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "run_reruns")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub run_id: i64,
    /// 1 for the first rerun (the run's `reruns` after it).
    pub number: i32,
    /// `all`, `failed_only` or `from:JOB`.
    #[sea_orm(column_type = "Text")]
    pub scope: String,
    pub requested_at: DateTimeUtc,
    /// When the rerun's run went from queued to running.
    pub started_at: Option<DateTimeUtc>,
    /// How the execution before this rerun ended, and when.
    pub previous_state: RunState,
    pub previous_finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
