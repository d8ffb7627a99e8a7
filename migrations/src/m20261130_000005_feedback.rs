//! The feedback loop: a watermark per incremental consumer, one row per feedback pass with
//! what it touched, the serving artifact of a recommendation model (read by `feedback`
//! between nightly runs), and the indexes that let a pass find new rows and the affected
//! customers' history without scanning every order and event.
//!
//! `source_id` grows with every load, so its indexes are appended to, not rewritten: cheap
//! on bulk loads. The `customer_id` indexes cost more on a load; `feedback` needs them to
//! read a few thousand customers' history out of millions of rows in seconds.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Watermarks::Table)
                    .if_not_exists()
                    .col(string(Watermarks::Name).primary_key())
                    .col(big_integer(Watermarks::Position))
                    // Who is folding data past the position right now, and until when:
                    // two passes never work on the same span at once.
                    .col(string_null(Watermarks::Holder))
                    .col(big_integer_null(Watermarks::HeldUntil))
                    .col(timestamp_with_time_zone(Watermarks::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(FeedbackPasses::Table)
                    .if_not_exists()
                    .col(big_pk_auto(FeedbackPasses::Id))
                    .col(big_integer_null(FeedbackPasses::RunId))
                    .col(big_integer(FeedbackPasses::FromSource))
                    .col(big_integer(FeedbackPasses::ToSource))
                    .col(big_integer(FeedbackPasses::Orders))
                    .col(big_integer(FeedbackPasses::Events))
                    .col(big_integer(FeedbackPasses::RecClicks))
                    .col(big_integer(FeedbackPasses::Reviews))
                    .col(big_integer(FeedbackPasses::Customers))
                    .col(big_integer(FeedbackPasses::Features))
                    .col(big_integer(FeedbackPasses::ReviewsScored))
                    .col(big_integer(FeedbackPasses::Products))
                    .col(big_integer(FeedbackPasses::Recommendations))
                    .col(big_integer_null(FeedbackPasses::ModelId))
                    .col(double(FeedbackPasses::Seconds))
                    .col(timestamp_with_time_zone(FeedbackPasses::CreatedAt))
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
        for (name, table, col) in [
            ("ix_orders_source", "orders", "source_id"),
            ("ix_events_source", "events", "source_id"),
            ("ix_reviews_source", "reviews", "source_id"),
            ("ix_orders_customer", "orders", "customer_id"),
            ("ix_events_customer", "events", "customer_id"),
        ] {
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name(name)
                        .table(Alias::new(table))
                        .col(Alias::new(col))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            ("ix_orders_source", "orders"),
            ("ix_events_source", "events"),
            ("ix_reviews_source", "reviews"),
            ("ix_orders_customer", "orders"),
            ("ix_events_customer", "events"),
        ] {
            manager
                .drop_index(Index::drop().name(name).table(Alias::new(table)).to_owned())
                .await?;
        }
        for table in [
            Watermarks::Table.into_iden(),
            FeedbackPasses::Table.into_iden(),
            ModelArtifacts::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Watermarks {
    Table,
    Name,
    Position,
    Holder,
    HeldUntil,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum FeedbackPasses {
    Table,
    Id,
    RunId,
    FromSource,
    ToSource,
    Orders,
    Events,
    RecClicks,
    Reviews,
    Customers,
    Features,
    ReviewsScored,
    Products,
    Recommendations,
    ModelId,
    Seconds,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ModelArtifacts {
    Table,
    ModelId,
    Format,
    Bytes,
}
