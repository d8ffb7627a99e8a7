//! Sharded jobs (`shards = N`): the shards of one job build one model version together, so a
//! model row may carry the key they share (`RUN.RERUNS/JOB`); the first shard to register
//! the model creates the row and the others find it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("models"))
                    .add_column(ColumnDef::new(Alias::new("share_key")).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_models_share_key")
                    .table(Alias::new("models"))
                    .col(Alias::new("share_key"))
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ux_models_share_key")
                    .table(Alias::new("models"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("models"))
                    .drop_column(Alias::new("share_key"))
                    .to_owned(),
            )
            .await
    }
}
