//! Tiers are recomputed only for the customers whose tier can have moved (issue 15: at a
//! million customers, summing the whole ledger's last 12 months every night took 19 s).
//! `recheck_at` is when a customer's tier must be looked at again with no new ledger row:
//! when the oldest earn or reversal of their 12-month window leaves it, or when a downgrade
//! held back by the downgrade period becomes allowed. NULL: not before a new row. Rows from
//! before this migration get 0 (look again at once); the first pass after it looks at every
//! customer anyway.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(CustomerTiers::Table)
                    .add_column(big_integer_null(CustomerTiers::RecheckAt).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(CustomerTiers::Table)
                    .drop_column(CustomerTiers::RecheckAt)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum CustomerTiers {
    Table,
    RecheckAt,
}
