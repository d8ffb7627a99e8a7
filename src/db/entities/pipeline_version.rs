//! One applied version of a pipeline file: its source text and the validated spec as JSON.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pipeline_versions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub pipeline_id: i64,
    pub version: i32,
    pub checksum: String,
    pub source_path: String,
    #[sea_orm(column_type = "Text")]
    pub source: String,
    /// `pipeline::PipelineSpec` serialized as JSON.
    #[sea_orm(column_type = "Text")]
    pub spec: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
