//! A recommendation's reason says what the customer did: `because_kind` is `bought`,
//! `carted` or `viewed` (with `because_product_id` the other product they did it with, or
//! none when they did it with the recommended product itself), or `popular_in_segment` /
//! `popular` for a popularity pick. Lists written before have none and are replaced by the
//! next `recommend` run.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Recommendations::Table)
                    .add_column(string_null(Recommendations::BecauseKind))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Recommendations::Table)
                    .drop_column(Recommendations::BecauseKind)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Recommendations {
    Table,
    BecauseKind,
}
