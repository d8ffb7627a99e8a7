//! Ingested sources (checksums, so a file is loaded once) and the quarantine of rows that
//! could not be read.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::CHUNK;
use crate::db::{
    Db, RepoError, Result, begin_write,
    entities::{SourceState, ingested_source, quarantine},
    now,
};

/// What to do with a source about to be ingested.
#[derive(Debug)]
pub enum Begin {
    /// Loaded completely before: nothing to do.
    Done(ingested_source::Model),
    /// Load it under this source id. A previous attempt that crashed or was rejected left
    /// `stale_rows` (its id is reused; the caller deletes them first).
    Load { id: i64, retry: bool },
}

pub async fn begin(
    db: &Db,
    entity: &str,
    source: &str,
    checksum: &str,
    bytes: u64,
) -> Result<Begin> {
    let txn = begin_write(db).await?;
    let existing = ingested_source::Entity::find()
        .filter(ingested_source::Column::Entity.eq(entity))
        .filter(ingested_source::Column::Checksum.eq(checksum))
        .one(&txn)
        .await?;
    let t = now();
    let begin = match existing {
        Some(s) if s.state == SourceState::Complete => Begin::Done(s),
        Some(s) => {
            let id = s.id;
            let mut active: ingested_source::ActiveModel = s.into();
            active.state = Set(SourceState::Loading);
            active.source = Set(source.to_owned());
            active.started_at = Set(t);
            active.finished_at = Set(None);
            active.update(&txn).await?;
            quarantine::Entity::delete_many()
                .filter(quarantine::Column::SourceId.eq(id))
                .exec(&txn)
                .await?;
            Begin::Load { id, retry: true }
        }
        None => {
            let row = ingested_source::ActiveModel {
                entity: Set(entity.to_owned()),
                source: Set(source.to_owned()),
                checksum: Set(checksum.to_owned()),
                bytes: Set(bytes as i64),
                state: Set(SourceState::Loading),
                rows_read: Set(0),
                loaded: Set(0),
                duplicates: Set(0),
                skipped: Set(0),
                quarantined: Set(0),
                started_at: Set(t),
                finished_at: Set(None),
                ..Default::default()
            }
            .insert(&txn)
            .await?;
            Begin::Load {
                id: row.id,
                retry: false,
            }
        }
    };
    txn.commit().await?;
    Ok(begin)
}

/// Counts recorded when a source is finished.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub read: u64,
    pub loaded: u64,
    pub duplicates: u64,
    pub skipped: u64,
    pub quarantined: u64,
}

pub async fn finish(
    db: &impl sea_orm::ConnectionTrait,
    id: i64,
    state: SourceState,
    counts: Counts,
) -> Result {
    let active = ingested_source::ActiveModel {
        id: Set(id),
        state: Set(state),
        rows_read: Set(counts.read as i64),
        loaded: Set(counts.loaded as i64),
        duplicates: Set(counts.duplicates as i64),
        skipped: Set(counts.skipped as i64),
        quarantined: Set(counts.quarantined as i64),
        finished_at: Set(Some(now())),
        ..Default::default()
    };
    active.update(db).await?;
    Ok(())
}

/// One unreadable row.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub line: u64,
    pub reason: String,
    pub detail: String,
    pub raw: String,
}

pub async fn quarantine(
    db: &Db,
    entity: &str,
    source: &str,
    source_id: i64,
    rows: &[Rejected],
) -> Result {
    let t = now();
    for chunk in rows.chunks(CHUNK) {
        let models: Vec<quarantine::ActiveModel> = chunk
            .iter()
            .map(|r| quarantine::ActiveModel {
                entity: Set(entity.to_owned()),
                source: Set(source.to_owned()),
                line: Set(r.line as i64),
                reason: Set(r.reason.clone()),
                detail: Set(Some(r.detail.clone())),
                raw: Set(r.raw.clone()),
                source_id: Set(Some(source_id)),
                created_at: Set(t),
                ..Default::default()
            })
            .collect();
        quarantine::Entity::insert_many(models).exec(db).await?;
    }
    Ok(())
}

#[derive(Debug, Default, Clone)]
pub struct QuarantineFilter {
    pub entity: Option<String>,
    pub reason: Option<String>,
    /// 0: no limit.
    pub limit: u64,
}

pub async fn list_quarantine(db: &Db, filter: &QuarantineFilter) -> Result<Vec<quarantine::Model>> {
    let mut q = quarantine::Entity::find().order_by_asc(quarantine::Column::Id);
    if filter.limit > 0 {
        q = q.limit(filter.limit);
    }
    if let Some(e) = &filter.entity {
        q = q.filter(quarantine::Column::Entity.eq(e.as_str()));
    }
    if let Some(r) = &filter.reason {
        // A prefix of the reason, wildcards escaped: `--reason %` finds nothing.
        q = q.filter(quarantine::Column::Reason.like(super::starts_with(r)));
    }
    Ok(q.all(db).await?)
}

pub async fn count_quarantine(db: &Db) -> Result<u64> {
    Ok(quarantine::Entity::find().count(db).await?)
}

pub async fn get_quarantine(db: &Db, id: i64) -> Result<quarantine::Model> {
    quarantine::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| RepoError::not_found("quarantined row", id))
}

pub async fn list_sources(db: &Db, limit: u64) -> Result<Vec<ingested_source::Model>> {
    Ok(ingested_source::Entity::find()
        .order_by_desc(ingested_source::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// Row counts of the lake's raw datasets, quarantine by reason and anomalies by reason: what
/// `patron demo` and `patron data` print.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct DataStats {
    pub rows: std::collections::BTreeMap<String, i64>,
    pub quarantined: std::collections::BTreeMap<String, i64>,
    pub anomalies: std::collections::BTreeMap<String, i64>,
    pub features: std::collections::BTreeMap<String, i64>,
}

/// Quarantined rows by `entity: reason`.
pub async fn quarantine_counts(db: &Db) -> Result<std::collections::BTreeMap<String, i64>> {
    use sea_orm::{ConnectionTrait, Statement};
    let mut out = std::collections::BTreeMap::new();
    for r in db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT entity, reason, COUNT(*) AS n FROM quarantine GROUP BY entity, reason"
                .to_owned(),
        ))
        .await?
    {
        let entity: String = r.try_get("", "entity")?;
        let reason: String = r.try_get("", "reason")?;
        let n: i64 = r.try_get("", "n")?;
        out.insert(format!("{entity}: {reason}"), n);
    }
    Ok(out)
}
