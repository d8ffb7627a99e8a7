//! The lake (DESIGN.md section 5): raw and derived analytics data move out of SQL into
//! Parquet files under `lake.path`; the control database keeps only the catalog of which
//! files make up each dataset.
//!
//! - `lake_commits`: one row per catalog commit (a load, a compaction, a replacement).
//! - `lake_files`: the files; a file is live from its commit until a later commit removes it
//!   (`removed_at`), after which `patron lake vacuum` may delete it.
//!
//! The raw tables go: a table that holds rows is renamed `legacy_<name>` (nothing is lost;
//! `patron lake import-legacy` moves its rows into the lake), an empty one is dropped.
//! Features are derived and are recomputed into the lake, so `customer_features` is dropped.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Raw tables that move into the lake, in DESIGN.md order.
pub const RAW_TABLES: [&str; 5] = ["customers", "products", "orders", "events", "reviews"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LakeCommits::Table)
                    .if_not_exists()
                    .col(pk_auto(LakeCommits::Id).big_integer())
                    .col(string(LakeCommits::Dataset))
                    .col(string(LakeCommits::Kind))
                    .col(big_integer_null(LakeCommits::SourceId))
                    .col(big_integer(LakeCommits::Files))
                    .col(big_integer(LakeCommits::Rows))
                    .col(big_integer(LakeCommits::At))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LakeFiles::Table)
                    .if_not_exists()
                    .col(pk_auto(LakeFiles::Id).big_integer())
                    .col(string(LakeFiles::Dataset))
                    .col(string_null(LakeFiles::Part))
                    .col(string_uniq(LakeFiles::Path))
                    .col(big_integer(LakeFiles::Rows))
                    .col(big_integer(LakeFiles::Bytes))
                    .col(big_integer_null(LakeFiles::SourceId))
                    .col(boolean(LakeFiles::Overlaps))
                    .col(big_integer(LakeFiles::CommitId))
                    .col(big_integer(LakeFiles::CommittedAt))
                    .col(big_integer_null(LakeFiles::RemovedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("lake_files_live")
                    .table(LakeFiles::Table)
                    .col(LakeFiles::Dataset)
                    .col(LakeFiles::RemovedAt)
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        for table in RAW_TABLES.into_iter().chain(["customer_features"]) {
            if !manager.has_table(table).await? {
                continue;
            }
            let has_rows = db
                .query_one_raw(sea_orm::Statement::from_string(
                    manager.get_database_backend(),
                    format!("SELECT 1 AS one FROM {table} LIMIT 1"),
                ))
                .await?
                .is_some();
            if has_rows && table != "customer_features" {
                manager
                    .rename_table(
                        Table::rename()
                            .table(Alias::new(table), Alias::new(format!("legacy_{table}")))
                            .to_owned(),
                    )
                    .await?;
            } else {
                manager
                    .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                    .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The raw tables are not recreated: their data lives in the lake now.
        manager
            .drop_table(Table::drop().table(LakeFiles::Table).if_exists().to_owned())
            .await?;
        manager
            .drop_table(
                Table::drop()
                    .table(LakeCommits::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum LakeCommits {
    Table,
    Id,
    Dataset,
    Kind,
    SourceId,
    Files,
    Rows,
    At,
}

#[derive(DeriveIden)]
enum LakeFiles {
    Table,
    Id,
    Dataset,
    Part,
    Path,
    Rows,
    Bytes,
    SourceId,
    Overlaps,
    CommitId,
    CommittedAt,
    RemovedAt,
}
