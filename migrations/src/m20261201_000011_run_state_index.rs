//! Whether a run has unfinished jobs is asked after every batch of completions: an index on
//! job runs by (run, state) answers it from a few index entries, where the run index alone
//! reads every job run of the run (ten thousand for a wide fan-out, at every completion).

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
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
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
