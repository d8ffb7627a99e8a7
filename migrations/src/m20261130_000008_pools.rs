//! Pools: a job run remembers its pool, and `pools` holds each pool's size (synced from the
//! settings by every daemon at start), so claims can hold a pool's limit across daemons.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(JobRuns::Table)
                    .add_column(string_null(JobRuns::Pool))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Pools::Table)
                    .if_not_exists()
                    .col(string(Pools::Name).primary_key())
                    .col(integer(Pools::Size))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Pools::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(JobRuns::Table)
                    .drop_column(JobRuns::Pool)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum JobRuns {
    Table,
    Pool,
}

#[derive(DeriveIden)]
enum Pools {
    Table,
    Name,
    Size,
}
