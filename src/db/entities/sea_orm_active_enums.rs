//! Every state the scheduler stores, as enums saved as lowercase text.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// The life of a run: `queued → running → succeeded | failed | cancelled`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    #[sea_orm(string_value = "queued")]
    Queued,
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    #[sea_orm(string_value = "failed")]
    Failed,
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
}

impl RunState {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// The life of one job inside one run.
///
/// `waiting → ready → running → succeeded | failed | upstream_failed | skipped | cancelled`;
/// a failed attempt with retries left goes back to `ready` with a `not_before` time.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    #[sea_orm(string_value = "waiting")]
    Waiting,
    #[sea_orm(string_value = "ready")]
    Ready,
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    #[sea_orm(string_value = "failed")]
    Failed,
    #[sea_orm(string_value = "upstream_failed")]
    UpstreamFailed,
    #[sea_orm(string_value = "skipped")]
    Skipped,
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
}

impl JobState {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::UpstreamFailed | Self::Skipped | Self::Cancelled
        )
    }

    /// Downstream jobs may start once every upstream is in one of these states.
    pub fn satisfies_downstream(self) -> bool {
        matches!(self, Self::Succeeded | Self::Skipped)
    }
}

/// How one try of a job ended (or that it is still running).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum AttemptState {
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    #[sea_orm(string_value = "failed")]
    Failed,
    /// The job ran past its `timeout` and was killed.
    #[sea_orm(string_value = "timed_out")]
    TimedOut,
    /// The worker stopped heartbeating (crashed or cut off); the reaper gave the job back.
    #[sea_orm(string_value = "lost")]
    Lost,
    /// A user cancelled the run.
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
    /// The daemon shut down before the job finished; the job goes back to `ready`.
    #[sea_orm(string_value = "interrupted")]
    Interrupted,
}

/// What created a run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    #[sea_orm(string_value = "cron")]
    Cron,
    #[sea_orm(string_value = "manual")]
    Manual,
    #[sea_orm(string_value = "backfill")]
    Backfill,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "stopped")]
    Stopped,
}

/// Where an attempt log line came from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    #[sea_orm(string_value = "stdout")]
    Stdout,
    #[sea_orm(string_value = "stderr")]
    Stderr,
    /// Written by patron itself: attempt start, timeout, retry decision.
    #[sea_orm(string_value = "patron")]
    Patron,
}

/// What became of an ingested source.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum SourceState {
    /// Being loaded (or a load that crashed: the retry deletes its rows and starts over).
    #[sea_orm(string_value = "loading")]
    Loading,
    #[sea_orm(string_value = "complete")]
    Complete,
    /// Too many unreadable rows (`max_bad_ratio`): nothing from it was kept.
    #[sea_orm(string_value = "rejected")]
    Rejected,
}

/// Where a model stands in the registry.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum ModelStatus {
    /// The one used for scoring, per kind.
    #[sea_orm(string_value = "champion")]
    Champion,
    /// Trained and evaluated, not (or not yet) better than the champion.
    #[sea_orm(string_value = "challenger")]
    Challenger,
    /// A former champion.
    #[sea_orm(string_value = "retired")]
    Retired,
}

macro_rules! display_as_db_value {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.to_value())
            }
        }
        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$t as ActiveEnum>::try_from_value(&s.to_owned()).map_err(|_| {
                    let known: Vec<String> =
                        <$t as sea_orm::Iterable>::iter().map(|v| v.to_value()).collect();
                    format!("unknown value `{s}` (expected one of: {})", known.join(", "))
                })
            }
        }
    )*};
}

display_as_db_value!(
    RunState,
    JobState,
    AttemptState,
    Trigger,
    WorkerState,
    LogStream,
    SourceState,
    ModelStatus
);

/// What a commit of the lake's catalog did.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum LakeCommitKind {
    /// An ingested source's rows.
    #[sea_orm(string_value = "load")]
    Load,
    /// A derived dataset (or one partition of it) written anew, replacing what it held.
    #[sea_orm(string_value = "replace")]
    Replace,
    /// Files rewritten into fewer, deduplicated ones.
    #[sea_orm(string_value = "compact")]
    Compact,
}
