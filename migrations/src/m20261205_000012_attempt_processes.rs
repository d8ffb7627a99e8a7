//! Where an attempt's processes run, so that a daemon can end them when their owner died.
//!
//! A `command` attempt records its process group (`pgid`, and the group leader's start time,
//! which tells the group from a later one that reused the number) and the host it runs on.
//! A worker records its host and its own start time: a daemon starting on the same host then
//! knows, without waiting out a lease, which workers there are dead (their process is gone or
//! is another one), ends the process groups of their attempts and retries those at once.
//!
//! A host key is the host name, the kernel's boot id and the PID namespace: process ids mean
//! the same thing only between processes that share all three.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (table, column, type): one ALTER per column, as SQLite takes one change per statement.
const COLUMNS: [(&str, &str, Kind); 5] = [
    ("workers", "host_key", Kind::Text),
    ("workers", "proc_start", Kind::BigInt),
    ("attempts", "host_key", Kind::Text),
    ("attempts", "pgid", Kind::Int),
    ("attempts", "pgid_start", Kind::BigInt),
];

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Int,
    BigInt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column, kind) in COLUMNS {
            let mut def = ColumnDef::new(Alias::new(column));
            match kind {
                Kind::Text => def.text(),
                Kind::Int => def.integer(),
                Kind::BigInt => def.big_integer(),
            };
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .add_column(def.null())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column, _) in COLUMNS.into_iter().rev() {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .drop_column(Alias::new(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
