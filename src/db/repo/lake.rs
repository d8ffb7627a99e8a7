//! The lake's catalog: which Parquet files make up each dataset. A writer puts its files in
//! place first and then records them here in one transaction ([`commit`]); until then no
//! reader sees them, and files nobody recorded are litter for `patron lake vacuum`.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, sea_query::Expr,
};

use super::{
    CHUNK,
    sources::{self, Counts},
};
use crate::db::{
    Db, RepoError, Result, begin_write,
    entities::{LakeCommitKind, SourceState, lake_commit, lake_file},
};

/// A file about to be recorded.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub path: String,
    pub part: Option<String>,
    pub rows: i64,
    pub bytes: i64,
    pub overlaps: bool,
}

/// The files a commit takes out of a dataset.
#[derive(Debug, Clone)]
pub enum Removes {
    Nothing,
    /// These files, all of which must still be live (else the commit is refused: someone
    /// else replaced them first).
    Files(Vec<i64>),
    /// Every live file of the partition (an exact `part`).
    Part(String),
    /// Every live file of the dataset.
    All,
}

/// The load a commit completes: its source is marked complete with these counts in the same
/// transaction, so a source is complete exactly when its rows are visible.
#[derive(Debug, Clone, Copy)]
pub struct SourceEnd {
    pub id: i64,
    pub counts: Counts,
}

#[derive(Debug, Clone)]
pub struct Commit {
    pub dataset: String,
    pub kind: LakeCommitKind,
    pub add: Vec<NewFile>,
    pub removes: Removes,
    pub source: Option<SourceEnd>,
    /// Another commit to this dataset after this one (by id) means the writer checked its
    /// rows against an older state: its files are then marked as overlapping, so readers
    /// keep the newest row per key.
    pub checked_at: Option<i64>,
}

/// What a commit did.
#[derive(Debug, Clone, Copy)]
pub struct Committed {
    pub id: i64,
    pub removed: u64,
}

/// Records `commit`'s files (and removals) in one transaction.
pub async fn commit(db: &Db, commit: Commit) -> Result<Committed> {
    let txn = begin_write(db).await?;
    // Commits to one dataset take turns (SQLite's writers always do): a load must see every
    // load committed before it, to mark its file as overlapping them.
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        txn.execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [
                (xxhash_rust::xxh3::xxh3_64(format!("lake:{}", commit.dataset).as_bytes()) as i64)
                    .into(),
            ],
        ))
        .await?;
    }
    let at = chrono::Utc::now().timestamp();
    let mut overlaps_all = false;
    if let Some(checked) = commit.checked_at {
        let later = lake_commit::Entity::find()
            .filter(lake_commit::Column::Dataset.eq(&commit.dataset))
            .filter(lake_commit::Column::Id.gt(checked))
            .filter(lake_commit::Column::Kind.eq(LakeCommitKind::Load))
            .one(&txn)
            .await?;
        overlaps_all = later.is_some();
    }
    let row = lake_commit::ActiveModel {
        dataset: Set(commit.dataset.clone()),
        kind: Set(commit.kind),
        source_id: Set(commit.source.map(|s| s.id)),
        files: Set(commit.add.len() as i64),
        rows: Set(commit.add.iter().map(|f| f.rows).sum()),
        at: Set(at),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let live = || {
        lake_file::Entity::update_many()
            .col_expr(lake_file::Column::RemovedAt, Expr::value(at))
            .filter(lake_file::Column::Dataset.eq(&commit.dataset))
            .filter(lake_file::Column::RemovedAt.is_null())
            .filter(lake_file::Column::CommitId.ne(row.id))
    };
    let removed = match &commit.removes {
        Removes::Nothing => 0,
        Removes::All => live().exec(&txn).await?.rows_affected,
        Removes::Part(part) => {
            live()
                .filter(lake_file::Column::Part.eq(part.as_str()))
                .exec(&txn)
                .await?
                .rows_affected
        }
        Removes::Files(ids) => {
            let mut n = 0;
            for chunk in ids.chunks(CHUNK) {
                n += live()
                    .filter(lake_file::Column::Id.is_in(chunk.to_vec()))
                    .exec(&txn)
                    .await?
                    .rows_affected;
            }
            if n != ids.len() as u64 {
                return Err(RepoError::Conflict(format!(
                    "{}: {} of the {} files being replaced were replaced by another writer first",
                    commit.dataset,
                    ids.len() as u64 - n,
                    ids.len()
                )));
            }
            n
        }
    };
    for chunk in commit.add.chunks(CHUNK) {
        let rows: Vec<lake_file::ActiveModel> = chunk
            .iter()
            .map(|f| lake_file::ActiveModel {
                dataset: Set(commit.dataset.clone()),
                part: Set(f.part.clone()),
                path: Set(f.path.clone()),
                rows: Set(f.rows),
                bytes: Set(f.bytes),
                source_id: Set(commit.source.map(|s| s.id)),
                overlaps: Set(f.overlaps || overlaps_all),
                commit_id: Set(row.id),
                committed_at: Set(at),
                removed_at: Set(None),
                ..Default::default()
            })
            .collect();
        lake_file::Entity::insert_many(rows).exec(&txn).await?;
    }
    if let Some(source) = commit.source {
        sources::finish(&txn, source.id, SourceState::Complete, source.counts).await?;
    }
    // Test hook: the process dies with the commit's transaction open.
    crate::fault::point("commit-open");
    txn.commit().await?;
    Ok(Committed {
        id: row.id,
        removed,
    })
}

/// The newest commit's id (0 when there is none): what a writer checked against.
pub async fn last_commit(db: &Db) -> Result<i64> {
    Ok(lake_commit::Entity::find()
        .order_by_desc(lake_commit::Column::Id)
        .one(db)
        .await?
        .map_or(0, |c| c.id))
}

/// The live files of `dataset`, oldest first.
pub async fn live(db: &Db, dataset: &str) -> Result<Vec<lake_file::Model>> {
    Ok(lake_file::Entity::find()
        .filter(lake_file::Column::Dataset.eq(dataset))
        .filter(lake_file::Column::RemovedAt.is_null())
        .order_by_asc(lake_file::Column::Id)
        .all(db)
        .await?)
}

/// Every live file, by dataset then age.
pub async fn all_live(db: &Db) -> Result<Vec<lake_file::Model>> {
    Ok(lake_file::Entity::find()
        .filter(lake_file::Column::RemovedAt.is_null())
        .order_by_asc(lake_file::Column::Dataset)
        .order_by_asc(lake_file::Column::Id)
        .all(db)
        .await?)
}

/// Every file the catalog knows, live or removed: what vacuum must not delete unless removed.
pub async fn all_files(db: &Db) -> Result<Vec<lake_file::Model>> {
    Ok(lake_file::Entity::find()
        .order_by_asc(lake_file::Column::Id)
        .all(db)
        .await?)
}

/// Forgets removed files once they are deleted from disk.
pub async fn forget(db: &Db, ids: &[i64]) -> Result<u64> {
    let mut n = 0;
    for chunk in ids.chunks(CHUNK) {
        n += lake_file::Entity::delete_many()
            .filter(lake_file::Column::Id.is_in(chunk.to_vec()))
            .filter(lake_file::Column::RemovedAt.is_not_null())
            .exec(db)
            .await?
            .rows_affected;
    }
    Ok(n)
}
