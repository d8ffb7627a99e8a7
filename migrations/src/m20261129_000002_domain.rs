//! Domain tables: what `ingest` loads (customers, products, order lines, events, reviews),
//! what it rejects (quarantine), which sources it has seen (checksums), and the customer
//! features `features` computes.
//!
//! Timestamps here are UTC epoch seconds (BIGINT) and money is integer cents: these tables
//! hold tens of millions of rows, and integers are compact, fast to compare on both backends
//! and never rounded like floats. For the same reason they carry no secondary indexes: every
//! index slows bulk loads, and the rare delete by `source_id` (a rejected or crashed load)
//! can afford a scan.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IngestedSources::Table)
                    .if_not_exists()
                    .col(big_pk_auto(IngestedSources::Id))
                    .col(string(IngestedSources::Entity))
                    .col(string(IngestedSources::Source))
                    .col(string(IngestedSources::Checksum))
                    .col(big_integer(IngestedSources::Bytes))
                    .col(string(IngestedSources::State))
                    .col(big_integer(IngestedSources::RowsRead).default(0))
                    .col(big_integer(IngestedSources::Loaded).default(0))
                    .col(big_integer(IngestedSources::Duplicates).default(0))
                    .col(big_integer(IngestedSources::Skipped).default(0))
                    .col(big_integer(IngestedSources::Quarantined).default(0))
                    .col(timestamp_with_time_zone(IngestedSources::StartedAt))
                    .col(timestamp_with_time_zone_null(IngestedSources::FinishedAt))
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "ux_ingested_sources_entity_checksum",
            IngestedSources::Table,
            &[IngestedSources::Entity, IngestedSources::Checksum],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Customers::Table)
                    .if_not_exists()
                    .col(string(Customers::CustomerId).primary_key())
                    .col(big_integer_null(Customers::SignupAt))
                    .col(integer_null(Customers::BirthYear))
                    .col(string_null(Customers::Gender))
                    .col(string_null(Customers::Region))
                    .col(big_integer(Customers::SourceId))
                    .col(string_null(Customers::Anomaly))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Products::Table)
                    .if_not_exists()
                    .col(string(Products::ProductId).primary_key())
                    .col(text(Products::Title))
                    .col(text(Products::Description))
                    .col(string(Products::Category))
                    .col(big_integer_null(Products::PriceCents))
                    .col(big_integer(Products::SourceId))
                    .col(string_null(Products::Anomaly))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Orders::Table)
                    .if_not_exists()
                    .col(string(Orders::OrderId))
                    .col(big_integer(Orders::LineKey))
                    .col(string(Orders::CustomerId))
                    .col(string(Orders::ProductId))
                    .col(big_integer(Orders::Quantity))
                    .col(big_integer(Orders::UnitPriceCents))
                    .col(big_integer(Orders::OrderedAt))
                    .col(string(Orders::Status))
                    .col(big_integer(Orders::SourceId))
                    .col(string_null(Orders::Anomaly))
                    // Order ids first: exports come roughly in order-id order, so the key index grows
                    // at its end instead of at random places (the line key alone is a hash).
                    .primary_key(Index::create().col(Orders::OrderId).col(Orders::LineKey))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .if_not_exists()
                    .col(string(Events::EventId).primary_key())
                    .col(string(Events::CustomerId))
                    .col(string_null(Events::ProductId))
                    .col(string(Events::Kind))
                    .col(big_integer(Events::OccurredAt))
                    .col(double_null(Events::DurationS))
                    .col(big_integer(Events::SourceId))
                    .col(string_null(Events::Anomaly))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Reviews::Table)
                    .if_not_exists()
                    .col(string(Reviews::ReviewId).primary_key())
                    .col(string(Reviews::CustomerId))
                    .col(string(Reviews::ProductId))
                    .col(small_integer(Reviews::Rating))
                    .col(text(Reviews::Text))
                    .col(big_integer(Reviews::CreatedAt))
                    .col(big_integer(Reviews::SourceId))
                    .col(string_null(Reviews::Anomaly))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Quarantine::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Quarantine::Id))
                    .col(string(Quarantine::Entity))
                    .col(string(Quarantine::Source))
                    .col(big_integer(Quarantine::Line))
                    .col(string(Quarantine::Reason))
                    .col(text_null(Quarantine::Detail))
                    .col(text(Quarantine::Raw))
                    .col(big_integer_null(Quarantine::SourceId))
                    .col(timestamp_with_time_zone(Quarantine::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_quarantine_source",
            Quarantine::Table,
            &[Quarantine::SourceId],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(CustomerFeatures::Table)
                    .if_not_exists()
                    .col(string(CustomerFeatures::CustomerId))
                    .col(string(CustomerFeatures::AsOf))
                    .col(double(CustomerFeatures::RecencyDays))
                    .col(big_integer(CustomerFeatures::Frequency))
                    .col(double(CustomerFeatures::Monetary))
                    .col(double(CustomerFeatures::TenureDays))
                    .col(double(CustomerFeatures::AvgBasket))
                    .col(big_integer(CustomerFeatures::DistinctProducts))
                    .col(double(CustomerFeatures::CancelRate))
                    .col(big_integer(CustomerFeatures::NEvents))
                    .col(double(CustomerFeatures::BrowseSeconds))
                    .col(big_integer(CustomerFeatures::NReviews))
                    .col(double_null(CustomerFeatures::MeanRating))
                    .col(timestamp_with_time_zone(CustomerFeatures::ComputedAt))
                    .primary_key(
                        Index::create()
                            .col(CustomerFeatures::CustomerId)
                            .col(CustomerFeatures::AsOf),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_customer_features_as_of",
            CustomerFeatures::Table,
            &[CustomerFeatures::AsOf],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            CustomerFeatures::Table.into_iden(),
            Quarantine::Table.into_iden(),
            Reviews::Table.into_iden(),
            Events::Table.into_iden(),
            Orders::Table.into_iden(),
            Products::Table.into_iden(),
            Customers::Table.into_iden(),
            IngestedSources::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

async fn index<T: IntoIden + Copy + 'static, C: IntoIden + Copy + 'static>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: T,
    cols: &[C],
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.if_not_exists().name(name).table(table);
    for &c in cols {
        index.col(c);
    }
    manager.create_index(index.to_owned()).await
}

async fn unique<T: IntoIden + Copy + 'static, C: IntoIden + Copy + 'static>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: T,
    cols: &[C],
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.if_not_exists().name(name).table(table).unique();
    for &c in cols {
        index.col(c);
    }
    manager.create_index(index.to_owned()).await
}

#[derive(DeriveIden, Clone, Copy)]
enum IngestedSources {
    Table,
    Id,
    Entity,
    Source,
    Checksum,
    Bytes,
    State,
    RowsRead,
    Loaded,
    Duplicates,
    Skipped,
    Quarantined,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Customers {
    Table,
    CustomerId,
    SignupAt,
    BirthYear,
    Gender,
    Region,
    SourceId,
    Anomaly,
}

#[derive(DeriveIden, Clone, Copy)]
enum Products {
    Table,
    ProductId,
    Title,
    Description,
    Category,
    PriceCents,
    SourceId,
    Anomaly,
}

#[derive(DeriveIden, Clone, Copy)]
enum Orders {
    Table,
    LineKey,
    OrderId,
    CustomerId,
    ProductId,
    Quantity,
    UnitPriceCents,
    OrderedAt,
    Status,
    SourceId,
    Anomaly,
}

#[derive(DeriveIden, Clone, Copy)]
enum Events {
    Table,
    EventId,
    CustomerId,
    ProductId,
    Kind,
    OccurredAt,
    DurationS,
    SourceId,
    Anomaly,
}

#[derive(DeriveIden, Clone, Copy)]
enum Reviews {
    Table,
    ReviewId,
    CustomerId,
    ProductId,
    Rating,
    Text,
    CreatedAt,
    SourceId,
    Anomaly,
}

#[derive(DeriveIden, Clone, Copy)]
enum Quarantine {
    Table,
    Id,
    Entity,
    Source,
    Line,
    Reason,
    Detail,
    Raw,
    SourceId,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum CustomerFeatures {
    Table,
    CustomerId,
    AsOf,
    RecencyDays,
    Frequency,
    Monetary,
    TenureDays,
    AvgBasket,
    DistinctProducts,
    CancelRate,
    NEvents,
    BrowseSeconds,
    NReviews,
    MeanRating,
    ComputedAt,
}
