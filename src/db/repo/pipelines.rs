//! Pipelines and their applied versions.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::LockType,
};
use sha2::{Digest, Sha256};

use crate::{
    db::{
        Db, RepoError, Result, begin_write,
        entities::{pipeline, pipeline_version, run},
        has_row_locks, now,
    },
    pipeline::{LoadedPipeline, PipelineSpec},
};

/// A pipeline with its current version and, when asked for, its latest run.
#[derive(Debug, Clone)]
pub struct PipelineView {
    pub pipeline: pipeline::Model,
    pub version: pipeline_version::Model,
    pub spec: Arc<CompiledSpec>,
    pub last_run: Option<run::Model>,
}

/// A spec with its DAG edges worked out once.
#[derive(Debug)]
pub struct CompiledSpec {
    pub spec: PipelineSpec,
    /// `(job name, upstream indices)` in spec order.
    pub edges: Vec<(String, Vec<usize>)>,
    /// Downstream indices of each job.
    pub down: Vec<Vec<usize>>,
    pub index: HashMap<String, usize>,
}

impl CompiledSpec {
    pub fn new(spec: PipelineSpec) -> Self {
        let index: HashMap<String, usize> = spec
            .jobs
            .iter()
            .enumerate()
            .map(|(i, j)| (j.name.clone(), i))
            .collect();
        let edges = spec
            .jobs
            .iter()
            .map(|j| {
                (
                    j.name.clone(),
                    j.after
                        .iter()
                        .filter_map(|a| index.get(a).copied())
                        .collect(),
                )
            })
            .collect::<Vec<(String, Vec<usize>)>>();
        let mut down = vec![Vec::new(); edges.len()];
        for (i, (_, ups)) in edges.iter().enumerate() {
            for &u in ups {
                down[u].push(i);
            }
        }
        Self {
            spec,
            edges,
            down,
            index,
        }
    }

    pub fn from_version(version: &pipeline_version::Model) -> Result<Self> {
        let spec: PipelineSpec = serde_json::from_str(&version.spec)
            .map_err(|e| RepoError::Corrupt(format!("pipeline version {}: {e}", version.id)))?;
        Ok(Self::new(spec))
    }
}

/// Versions never change once stored, so their parsed specs are cached by id.
#[derive(Default, Clone)]
pub struct SpecCache {
    inner: Arc<Mutex<HashMap<i64, Arc<CompiledSpec>>>>,
}

impl SpecCache {
    pub async fn get(
        &self,
        db: &impl ConnectionTrait,
        version_id: i64,
    ) -> Result<Arc<CompiledSpec>> {
        if let Some(hit) = self.lookup(version_id) {
            return Ok(hit);
        }
        let version = pipeline_version::Entity::find_by_id(version_id)
            .one(db)
            .await?
            .ok_or_else(|| RepoError::not_found("pipeline version", version_id))?;
        let compiled = Arc::new(CompiledSpec::from_version(&version)?);
        if let Ok(mut map) = self.inner.lock() {
            map.insert(version_id, compiled.clone());
        }
        Ok(compiled)
    }

    fn lookup(&self, version_id: i64) -> Option<Arc<CompiledSpec>> {
        self.inner.lock().ok()?.get(&version_id).cloned()
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ApplyOutcome {
    pub name: String,
    pub version: i32,
    pub changed: bool,
    pub path: String,
}

pub fn checksum(source: &str) -> String {
    format!("{:x}", Sha256::digest(source.as_bytes()))
}

/// Stores `loaded` as the pipeline's new current version, unless its source is unchanged.
/// A changed schedule or time zone clears the stored next fire time so the daemon replans.
pub async fn apply(db: &Db, loaded: &LoadedPipeline) -> Result<ApplyOutcome> {
    let spec_json = serde_json::to_string(&loaded.spec)
        .map_err(|e| RepoError::Corrupt(format!("cannot serialize spec: {e}")))?;
    let sum = checksum(&loaded.source);
    let txn = begin_write(db).await?;
    let t = now();
    let name = &loaded.spec.name;
    let existing = pipeline::Entity::find()
        .filter(pipeline::Column::Name.eq(name.as_str()))
        .one(&txn)
        .await?;
    let pipeline = match existing {
        Some(p) => p,
        None => {
            pipeline::ActiveModel {
                name: Set(name.clone()),
                paused: Set(false),
                current_version_id: Set(None),
                next_fire_at: Set(None),
                created_at: Set(t),
                updated_at: Set(t),
                ..Default::default()
            }
            .insert(&txn)
            .await?
        }
    };
    let latest = pipeline_version::Entity::find()
        .filter(pipeline_version::Column::PipelineId.eq(pipeline.id))
        .order_by_desc(pipeline_version::Column::Version)
        .one(&txn)
        .await?;
    if let Some(latest) = &latest
        && latest.checksum == sum
    {
        return Ok(ApplyOutcome {
            name: name.clone(),
            version: latest.version,
            changed: false,
            path: loaded.path.clone(),
        });
    }
    let schedule_changed = match &latest {
        Some(v) => CompiledSpec::from_version(v)?.spec.schedule != loaded.spec.schedule,
        None => true,
    };
    let version = pipeline_version::ActiveModel {
        pipeline_id: Set(pipeline.id),
        version: Set(latest.as_ref().map_or(1, |v| v.version + 1)),
        checksum: Set(sum),
        source_path: Set(loaded.path.clone()),
        source: Set(loaded.source.clone()),
        spec: Set(spec_json),
        created_at: Set(t),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let mut active: pipeline::ActiveModel = pipeline.into();
    active.current_version_id = Set(Some(version.id));
    active.updated_at = Set(t);
    if schedule_changed {
        active.next_fire_at = Set(None);
    }
    active.update(&txn).await?;
    txn.commit().await?;
    Ok(ApplyOutcome {
        name: name.clone(),
        version: version.version,
        changed: true,
        path: loaded.path.clone(),
    })
}

/// Every pipeline with a current version, by name, with its latest run.
pub async fn list(db: &Db, specs: &SpecCache) -> Result<Vec<PipelineView>> {
    let pipelines = pipeline::Entity::find()
        .order_by_asc(pipeline::Column::Name)
        .all(db)
        .await?;
    let mut out = Vec::with_capacity(pipelines.len());
    for p in pipelines {
        if let Some(view) = view(db, specs, p, true).await? {
            out.push(view);
        }
    }
    Ok(out)
}

/// Pipelines without the latest run: what the daemon's trigger loop needs.
pub async fn list_for_triggers(db: &Db, specs: &SpecCache) -> Result<Vec<PipelineView>> {
    let pipelines = pipeline::Entity::find().all(db).await?;
    let mut out = Vec::with_capacity(pipelines.len());
    for p in pipelines {
        if let Some(view) = view(db, specs, p, false).await? {
            out.push(view);
        }
    }
    Ok(out)
}

async fn view(
    db: &Db,
    specs: &SpecCache,
    pipeline: pipeline::Model,
    with_last_run: bool,
) -> Result<Option<PipelineView>> {
    let Some(version_id) = pipeline.current_version_id else {
        return Ok(None);
    };
    let version = pipeline_version::Entity::find_by_id(version_id)
        .one(db)
        .await?
        .ok_or_else(|| RepoError::not_found("pipeline version", version_id))?;
    let spec = specs.get(db, version_id).await?;
    let last_run = if with_last_run {
        run::Entity::find()
            .filter(run::Column::PipelineId.eq(pipeline.id))
            .order_by_desc(run::Column::Id)
            .one(db)
            .await?
    } else {
        None
    };
    Ok(Some(PipelineView {
        pipeline,
        version,
        spec,
        last_run,
    }))
}

pub async fn get(db: &Db, specs: &SpecCache, name: &str) -> Result<PipelineView> {
    let pipeline = find(db, name).await?;
    view(db, specs, pipeline, true)
        .await?
        .ok_or_else(|| RepoError::not_found("pipeline", name))
}

pub async fn find(db: &impl ConnectionTrait, name: &str) -> Result<pipeline::Model> {
    // No name holds a NUL (names are checked), and PostgreSQL refuses one in any text: a
    // filter typed with one finds nothing rather than failing as a lost database.
    if name.contains('\0') {
        return Err(RepoError::not_found("pipeline", name));
    }
    pipeline::Entity::find()
        .filter(pipeline::Column::Name.eq(name))
        .one(db)
        .await?
        .ok_or_else(|| RepoError::not_found("pipeline", name))
}

/// Locks the pipeline row for the rest of the transaction on PostgreSQL (SQLite's write
/// transaction already excludes other writers).
pub async fn lock(db: &impl ConnectionTrait, id: i64) -> Result<pipeline::Model> {
    let mut query = pipeline::Entity::find_by_id(id);
    if has_row_locks(db) {
        query = query.lock(LockType::Update);
    }
    query
        .one(db)
        .await?
        .ok_or_else(|| RepoError::not_found("pipeline", id))
}

/// Pauses or resumes; returns whether anything changed. Pausing forgets the next fire time:
/// ticks missed while paused are not caught up on resume.
pub async fn set_paused(db: &Db, name: &str, paused: bool) -> Result<bool> {
    let txn = begin_write(db).await?;
    let p = find(&txn, name).await?;
    if p.paused == paused {
        return Ok(false);
    }
    let mut active: pipeline::ActiveModel = p.into();
    active.paused = Set(paused);
    active.next_fire_at = Set(None);
    active.updated_at = Set(now());
    active.update(&txn).await?;
    txn.commit().await?;
    Ok(true)
}

pub async fn set_next_fire(db: &Db, id: i64, at: Option<DateTime<Utc>>) -> Result {
    pipeline::Entity::update_many()
        .col_expr(
            pipeline::Column::NextFireAt,
            sea_orm::sea_query::Expr::value(at),
        )
        .filter(pipeline::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Ids of pipelines and their versions, a cheap fingerprint of what is applied.
pub async fn fingerprint(db: &Db) -> Result<Vec<(i64, Option<i64>, bool)>> {
    Ok(pipeline::Entity::find()
        .select_only()
        .column(pipeline::Column::Id)
        .column(pipeline::Column::CurrentVersionId)
        .column(pipeline::Column::Paused)
        .order_by_asc(pipeline::Column::Id)
        .into_tuple()
        .all(db)
        .await?)
}
