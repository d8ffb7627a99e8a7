//! Profiles and recommendations move to the lake (`customer_profiles` and `recommendations`
//! datasets, DESIGN.md section 5), and a recommendation model's serving artifact moves out
//! of the database into a file beside the lake: `model_files` records where it is. All are
//! derived: the next `profile` and `recommend` runs write them again.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Recommendations::Table.into_iden(),
            ModelArtifacts::Table.into_iden(),
            CustomerProfiles::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(ModelFiles::Table)
                    .if_not_exists()
                    .col(big_integer(ModelFiles::ModelId).primary_key())
                    .col(string(ModelFiles::Format))
                    .col(string(ModelFiles::Path))
                    .col(big_integer(ModelFiles::Bytes))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(ModelFiles::Table)
                    .if_exists()
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
                    .table(ModelArtifacts::Table)
                    .if_not_exists()
                    .col(big_integer(ModelArtifacts::ModelId).primary_key())
                    .col(string(ModelArtifacts::Format))
                    .col(blob(ModelArtifacts::Bytes))
                    .to_owned(),
            )
            .await?;
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
                    .col(string_null(Recommendations::BecauseKind))
                    .primary_key(
                        Index::create()
                            .col(Recommendations::CustomerId)
                            .col(Recommendations::Rank),
                    )
                    .to_owned(),
            )
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
    BecauseKind,
}

#[derive(DeriveIden)]
enum ModelArtifacts {
    Table,
    ModelId,
    Format,
    Bytes,
}

#[derive(DeriveIden)]
enum ModelFiles {
    Table,
    ModelId,
    Format,
    Path,
    Bytes,
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
