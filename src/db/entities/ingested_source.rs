//! A file (or HTTP source) that `ingest` has read, by checksum, with what came of it.

use sea_orm::entity::prelude::*;

use super::SourceState;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ingested_sources")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub entity: String,
    pub source: String,
    pub checksum: String,
    pub bytes: i64,
    pub state: SourceState,
    pub rows_read: i64,
    pub loaded: i64,
    pub duplicates: i64,
    pub skipped: i64,
    pub quarantined: i64,
    pub started_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
