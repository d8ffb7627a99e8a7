//! Loyalty: the append-only point ledger (one row per balance change, unique idempotency
//! key), campaigns and their allocation plans, and customers' tiers.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PointLedger::Table)
                    .if_not_exists()
                    .col(big_pk_auto(PointLedger::Id))
                    // What makes a retried or concurrent write of the same effect a no-op.
                    .col(string_uniq(PointLedger::Key))
                    .col(string(PointLedger::CustomerId))
                    .col(string(PointLedger::Kind))
                    .col(big_integer(PointLedger::Points))
                    .col(big_integer(PointLedger::At))
                    .col(big_integer(PointLedger::AvailableAt))
                    .col(big_integer_null(PointLedger::ExpiresAt))
                    .col(string_null(PointLedger::OrderId))
                    .col(big_integer_null(PointLedger::BasisCents))
                    .col(big_integer_null(PointLedger::CampaignId))
                    .col(text_null(PointLedger::Reason))
                    .col(big_integer_null(PointLedger::RunId))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("ix_point_ledger_customer", PointLedger::CustomerId),
            ("ix_point_ledger_order", PointLedger::OrderId),
            ("ix_point_ledger_campaign", PointLedger::CampaignId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name(name)
                        .table(PointLedger::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Campaigns::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Campaigns::Id))
                    .col(string(Campaigns::Name))
                    .col(string(Campaigns::State))
                    .col(text(Campaigns::Source))
                    .col(text(Campaigns::Spec))
                    .col(timestamp_with_time_zone(Campaigns::CreatedAt))
                    .col(timestamp_with_time_zone_null(Campaigns::LaunchedAt))
                    .col(big_integer_null(Campaigns::RunId))
                    .col(big_integer_null(Campaigns::Customers))
                    .col(big_integer_null(Campaigns::Points))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CampaignAllocations::Table)
                    .if_not_exists()
                    .col(big_integer(CampaignAllocations::CampaignId))
                    .col(string(CampaignAllocations::CustomerId))
                    .col(big_integer(CampaignAllocations::Points))
                    .col(text(CampaignAllocations::Why))
                    .primary_key(
                        Index::create()
                            .col(CampaignAllocations::CampaignId)
                            .col(CampaignAllocations::CustomerId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CustomerTiers::Table)
                    .if_not_exists()
                    .col(string(CustomerTiers::CustomerId).primary_key())
                    .col(string(CustomerTiers::Tier))
                    .col(big_integer(CustomerTiers::Earned12m))
                    .col(big_integer(CustomerTiers::ChangedAt))
                    .col(big_integer_null(CustomerTiers::DowngradedAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            PointLedger::Table.into_iden(),
            Campaigns::Table.into_iden(),
            CampaignAllocations::Table.into_iden(),
            CustomerTiers::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum PointLedger {
    Table,
    Id,
    Key,
    CustomerId,
    Kind,
    Points,
    At,
    AvailableAt,
    ExpiresAt,
    OrderId,
    BasisCents,
    CampaignId,
    Reason,
    RunId,
}

#[derive(DeriveIden)]
enum Campaigns {
    Table,
    Id,
    Name,
    State,
    Source,
    Spec,
    CreatedAt,
    LaunchedAt,
    RunId,
    Customers,
    Points,
}

#[derive(DeriveIden)]
enum CampaignAllocations {
    Table,
    CampaignId,
    CustomerId,
    Points,
    Why,
}

#[derive(DeriveIden)]
enum CustomerTiers {
    Table,
    CustomerId,
    Tier,
    #[sea_orm(iden = "earned_12m")]
    Earned12m,
    ChangedAt,
    DowngradedAt,
}
