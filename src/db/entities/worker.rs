//! A daemon process and its heartbeat.

use sea_orm::entity::prelude::*;

use super::WorkerState;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub host: String,
    pub pid: i32,
    pub version: String,
    pub state: WorkerState,
    pub started_at: DateTimeUtc,
    pub heartbeat_at: DateTimeUtc,
    pub stopped_at: Option<DateTimeUtc>,
    /// Host name, boot id and PID namespace: where `pid` means this process.
    #[sea_orm(column_type = "Text", nullable)]
    pub host_key: Option<String>,
    /// The process's start time (clock ticks after boot), which tells it from a later process
    /// that reused its pid.
    pub proc_start: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
