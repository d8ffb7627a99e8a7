//! One try of a job run, with the lease its worker holds while it runs.

use sea_orm::entity::prelude::*;

use super::AttemptState;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "attempts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub job_run_id: i64,
    pub number: i32,
    pub state: AttemptState,
    pub worker_id: String,
    pub started_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
    /// The lease: the worker heartbeats it forward; once it passes, the reaper reclaims the job.
    pub lease_expires_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    /// The host the attempt's processes run on (see `jobs::command::host::HostKey`).
    #[sea_orm(column_type = "Text", nullable)]
    pub host_key: Option<String>,
    /// The process group a `command` attempt started, and its leader's start time (clock
    /// ticks after boot), so a later daemon on the host can end it.
    pub pgid: Option<i32>,
    pub pgid_start: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
