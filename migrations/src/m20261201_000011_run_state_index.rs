//! Whether a run has unfinished jobs is asked after every batch of completions: an index on
//! job runs by (run, state) answers it from a few index entries, where the run index alone
//! reads every job run of the run (ten thousand for a wide fan-out, at every completion).
//!
//! The (state, not_before) index goes: claims read ready job runs through (state, id) since
//! migration 9, and every index costs an entry at each of a job run's four state changes.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("ix_job_runs_run_state")
                    .table(Alias::new("job_runs"))
                    .col(Alias::new("run_id"))
                    .col(Alias::new("state"))
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .if_exists()
                    .name("ix_job_runs_state_not_before")
                    .table(Alias::new("job_runs"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("ix_job_runs_state_not_before")
                    .table(Alias::new("job_runs"))
                    .col(Alias::new("state"))
                    .col(Alias::new("not_before"))
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("ix_job_runs_run_state")
                    .table(Alias::new("job_runs"))
                    .to_owned(),
            )
            .await
    }
}
