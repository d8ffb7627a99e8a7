//! Recommendations: each customer's current top-N products with the score, the source that
//! produced them and the history item that explains them.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Recommendations::Table)
                    .if_not_exists()
                    .col(string(Recommendations::CustomerId))
                    .col(small_integer(Recommendations::Rank))
                    .col(string(Recommendations::ProductId))
                    .col(double(Recommendations::Score))
                    .col(string(Recommendations::Source))
                    .col(string_null(Recommendations::BecauseProductId))
                    .col(big_integer(Recommendations::ModelId))
                    .primary_key(
                        Index::create()
                            .col(Recommendations::CustomerId)
                            .col(Recommendations::Rank),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("ix_recommendations_model")
                    .table(Recommendations::Table)
                    .col(Recommendations::ModelId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Recommendations::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Recommendations {
    Table,
    CustomerId,
    Rank,
    ProductId,
    Score,
    Source,
    BecauseProductId,
    ModelId,
}
