//! One execution of a pipeline for one run key.

use sea_orm::entity::prelude::*;

use super::{RunState, Trigger};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "runs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub pipeline_id: i64,
    pub pipeline_version_id: i64,
    /// Unique per pipeline: the cron instant (RFC 3339, UTC) or a manual key.
    pub run_key: String,
    pub trigger: Trigger,
    pub logical_time: DateTimeUtc,
    /// Run parameters as a JSON object of strings.
    #[sea_orm(column_type = "Text")]
    pub params: String,
    pub state: RunState,
    pub cancel_requested: bool,
    pub reruns: i32,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    /// When a daemon reported the run past its pipeline's `sla` (once).
    pub sla_missed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
