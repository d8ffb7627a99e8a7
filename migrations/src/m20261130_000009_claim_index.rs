//! Claims take the oldest ready job runs (`WHERE state = 'ready' ORDER BY id LIMIT n`): an
//! index on (state, id) serves that as a range scan instead of sorting every ready row on
//! every claim, which slowed wide fan-outs as the table grew.

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
                    .name("ix_job_runs_state_id")
                    .table(Alias::new("job_runs"))
                    .col(Alias::new("state"))
                    .col(Alias::new("id"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_job_runs_state_id")
                    .table(Alias::new("job_runs"))
                    .to_owned(),
            )
            .await
    }
}
