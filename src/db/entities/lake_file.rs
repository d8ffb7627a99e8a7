//! One Parquet file of the lake: live from its commit until a later commit removes it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "lake_files")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub dataset: String,
    /// The partition within the dataset (`as_of` date for features), if it has any.
    pub part: Option<String>,
    /// Relative to the lake's root.
    pub path: String,
    pub rows: i64,
    pub bytes: i64,
    /// The ingested source (load) that wrote it.
    pub source_id: Option<i64>,
    /// Holds keys that rows of other live files also hold: readers keep the newest per key.
    pub overlaps: bool,
    pub commit_id: i64,
    pub committed_at: i64,
    pub removed_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
