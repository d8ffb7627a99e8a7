//! Customer intelligence: the model registry, customer profiles (segments), churn and intent
//! scores, review sentiment (per review, per product), and the customers' mean sentiment as a
//! feature.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Models::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Models::Id))
                    .col(string(Models::Kind))
                    .col(integer(Models::Version))
                    .col(string(Models::Algorithm))
                    .col(text(Models::Params))
                    .col(text(Models::Metrics))
                    .col(string(Models::Status))
                    .col(string_null(Models::AsOf))
                    .col(text(Models::Payload))
                    .col(timestamp_with_time_zone(Models::TrainedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("ux_models_kind_version")
                    .table(Models::Table)
                    .col(Models::Kind)
                    .col(Models::Version)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CustomerProfiles::Table)
                    .if_not_exists()
                    .col(string(CustomerProfiles::CustomerId))
                    .col(string(CustomerProfiles::AsOf))
                    .col(integer(CustomerProfiles::Segment))
                    .col(string(CustomerProfiles::SegmentLabel))
                    .col(double(CustomerProfiles::Pc1))
                    .col(double(CustomerProfiles::Pc2))
                    .col(small_integer(CustomerProfiles::RScore))
                    .col(small_integer(CustomerProfiles::FScore))
                    .col(small_integer(CustomerProfiles::MScore))
                    .col(big_integer(CustomerProfiles::ModelId))
                    .primary_key(
                        Index::create()
                            .col(CustomerProfiles::CustomerId)
                            .col(CustomerProfiles::AsOf),
                    )
                    .to_owned(),
            )
            .await?;

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
            .await?;

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
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ProductSentiment::Table)
                    .if_not_exists()
                    .col(string(ProductSentiment::ProductId).primary_key())
                    .col(big_integer(ProductSentiment::Reviews))
                    .col(double(ProductSentiment::MeanScore))
                    .col(double_null(ProductSentiment::MeanRating))
                    .to_owned(),
            )
            .await?;

        manager
            .alter_table(
                Table::alter()
                    .table(CustomerFeatures::Table)
                    .add_column(double_null(CustomerFeatures::MeanSentiment))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(CustomerFeatures::Table)
                    .drop_column(CustomerFeatures::MeanSentiment)
                    .to_owned(),
            )
            .await?;
        for table in [
            ProductSentiment::Table.into_iden(),
            ReviewSentiment::Table.into_iden(),
            CustomerScores::Table.into_iden(),
            CustomerProfiles::Table.into_iden(),
            Models::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Models {
    Table,
    Id,
    Kind,
    Version,
    Algorithm,
    Params,
    Metrics,
    Status,
    AsOf,
    Payload,
    TrainedAt,
}

#[derive(DeriveIden)]
enum CustomerProfiles {
    Table,
    CustomerId,
    AsOf,
    Segment,
    SegmentLabel,
    Pc1,
    Pc2,
    RScore,
    FScore,
    MScore,
    ModelId,
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

#[derive(DeriveIden)]
enum ReviewSentiment {
    Table,
    ReviewId,
    Score,
    Label,
    ModelId,
}

#[derive(DeriveIden)]
enum ProductSentiment {
    Table,
    ProductId,
    Reviews,
    MeanScore,
    MeanRating,
}

#[derive(DeriveIden)]
enum CustomerFeatures {
    Table,
    MeanSentiment,
}
