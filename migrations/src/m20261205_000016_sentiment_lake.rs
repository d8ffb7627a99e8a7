//! Review sentiment moves to the lake (`review_sentiment` dataset, DESIGN.md section 5).
//! The table's scores are derived data: the next `sentiment` run finds the lake's dataset
//! empty and scores every review again with the champion classifier, so nothing is lost.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(ReviewSentiment::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ReviewSentiment::Table)
                    .if_not_exists()
                    .col(string(ReviewSentiment::ReviewId).primary_key())
                    .col(double(ReviewSentiment::Score))
                    .col(string(ReviewSentiment::Label))
                    .col(big_integer_null(ReviewSentiment::ModelId))
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum ReviewSentiment {
    Table,
    ReviewId,
    Score,
    Label,
    ModelId,
}
