//! Churn and intent scores move to the lake (`customer_scores` dataset, DESIGN.md section
//! 5). They are derived data: the next `retrain` run scores every customer into the lake.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(CustomerScores::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CustomerScores::Table)
                    .if_not_exists()
                    .col(string(CustomerScores::CustomerId))
                    .col(string(CustomerScores::AsOf))
                    .col(double_null(CustomerScores::ChurnProbability))
                    .col(double_null(CustomerScores::IntentProbability))
                    .col(big_integer_null(CustomerScores::ChurnModelId))
                    .col(big_integer_null(CustomerScores::IntentModelId))
                    .primary_key(
                        Index::create()
                            .col(CustomerScores::CustomerId)
                            .col(CustomerScores::AsOf),
                    )
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum CustomerScores {
    Table,
    CustomerId,
    AsOf,
    ChurnProbability,
    IntentProbability,
    ChurnModelId,
    IntentModelId,
}
