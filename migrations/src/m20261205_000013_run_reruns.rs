//! A run's history across reruns. A rerun used to overwrite the run's start and end, so after
//! `rerun --failed-only` a run that took an hour said it took four milliseconds. Now the run
//! keeps its first start and its last end, and each rerun is a row: what it reran, when it
//! was asked for and started, and how the execution before it had ended (state and time).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RunReruns {
    Table,
    Id,
    RunId,
    Number,
    Scope,
    RequestedAt,
    StartedAt,
    PreviousState,
    PreviousFinishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RunReruns::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(RunReruns::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(RunReruns::RunId).big_integer().not_null())
                    .col(ColumnDef::new(RunReruns::Number).integer().not_null())
                    .col(ColumnDef::new(RunReruns::Scope).text().not_null())
                    .col(
                        ColumnDef::new(RunReruns::RequestedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RunReruns::StartedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new(RunReruns::PreviousState).string().not_null())
                    .col(
                        ColumnDef::new(RunReruns::PreviousFinishedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(RunReruns::Table, RunReruns::RunId)
                            .to(Alias::new("runs"), Alias::new("id"))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_run_reruns_run_number")
                    .table(RunReruns::Table)
                    .col(RunReruns::RunId)
                    .col(RunReruns::Number)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RunReruns::Table).to_owned())
            .await
    }
}
