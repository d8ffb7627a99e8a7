//! One job inside one run.

use sea_orm::entity::prelude::*;

use super::JobState;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "job_runs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub run_id: i64,
    pub job_name: String,
    pub kind: String,
    pub state: JobState,
    /// Attempts started so far; the next attempt gets number `attempts + 1`.
    pub attempts: i32,
    /// Failed or timed-out attempts in the current round (consumes `retries`).
    pub failures: i32,
    /// Attempts lost with a dead worker in the current round (not charged to `retries`).
    pub losses: i32,
    /// Upstream jobs not yet succeeded (or skipped); the job becomes ready at zero.
    pub pending_upstreams: i32,
    pub not_before: Option<DateTimeUtc>,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    /// The job's pool, if any (see `[pools]`).
    pub pool: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
