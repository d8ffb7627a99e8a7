//! One commit of the lake's catalog: the files it added (and removed) became visible
//! together.

use sea_orm::entity::prelude::*;

use super::LakeCommitKind;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "lake_commits")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub dataset: String,
    pub kind: LakeCommitKind,
    pub source_id: Option<i64>,
    pub files: i64,
    pub rows: i64,
    pub at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
