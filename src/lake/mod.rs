//! The data plane (DESIGN.md section 5): customers, products, orders, events, reviews and
//! the derived datasets as Parquet files under `lake.path`, queried with DataFusion. Which
//! files make up a dataset is the catalog's business (`db::repo::lake`), so a reader sees
//! a load's rows all at once or not at all. DataFusion queries live in this module only.

pub mod arrays;
pub mod clean;
pub mod features;
pub mod legacy;
pub mod load;
pub mod maintain;
pub mod model_files;
pub mod profiles;
pub mod read;
pub mod recommendations;
pub mod schema;
pub mod scores;
pub mod sentiment;
pub mod write;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use datafusion::{
    arrow::record_batch::RecordBatch,
    datasource::{
        MemTable,
        file_format::parquet::ParquetFormat,
        listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl},
    },
    error::DataFusionError,
    execution::runtime_env::RuntimeEnvBuilder,
    prelude::{SessionConfig, SessionContext},
};

pub use self::schema::Dataset;
use crate::{
    config::Settings,
    db::{Db, RepoError, entities::lake_file, repo},
};

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error(
        "lake.path is not set: with PostgreSQL the lake must be a folder every daemon sees \
         (set [lake] path in the settings file or PATRON__LAKE__PATH)"
    )]
    NoPath,
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("query engine: {0}")]
    Engine(#[from] DataFusionError),
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] datafusion::parquet::errors::ParquetError),
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("{0}")]
    Other(String),
}

impl From<sea_orm::DbErr> for LakeError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Repo(e.into())
    }
}

pub type Result<T = (), E = LakeError> = std::result::Result<T, E>;

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LakeError + '_ {
    move |error| LakeError::Io {
        path: path.display().to_string(),
        error,
    }
}

/// The lake: its folder and the control database that holds its catalog.
#[derive(Clone)]
pub struct Lake {
    root: PathBuf,
    db: Db,
    memory_limit: usize,
}

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lake").field("root", &self.root).finish()
    }
}

impl Lake {
    /// The lake the settings name: `lake.path`, else beside the SQLite file
    /// (`x/patron.db` → `x/patron.lake`). PostgreSQL needs `lake.path`.
    pub fn open(settings: &Settings, db: Db) -> Result<Self> {
        let root = path_of(settings).ok_or(LakeError::NoPath)?;
        Ok(Self {
            root,
            db,
            memory_limit: (settings.lake.memory_limit_mb as usize).max(64) << 20,
        })
    }

    /// A lake at `root` (tests, tools).
    pub fn at(root: impl Into<PathBuf>, db: Db) -> Self {
        Self {
            root: root.into(),
            db,
            memory_limit: 2048 << 20,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// A catalog path made absolute.
    pub fn abs(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// A query session with every dataset's committed files registered as tables: `orders`
    /// (newest row per key), `clean_orders` (without the rows `clean` marked), and so on
    /// for each raw dataset; `features` holds every as-of date.
    pub async fn session(&self) -> Result<SessionContext> {
        let files = repo::lake::all_live(&self.db).await?;
        self.session_with(&files).await
    }

    /// As [`Lake::session`], over `files` (a catalog snapshot the caller holds).
    pub async fn session_with(&self, files: &[lake_file::Model]) -> Result<SessionContext> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(self.memory_limit, 1.0)
            .build_arc()?;
        let config = SessionConfig::new()
            .with_target_partitions(
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2),
            )
            .with_batch_size(64 * 1024);
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let anomalies = files.iter().any(|f| f.dataset == Dataset::Anomalies.name());
        for dataset in Dataset::ALL {
            let mine: Vec<&lake_file::Model> = files
                .iter()
                .filter(|f| f.dataset == dataset.name())
                .collect();
            self.register_dataset(&ctx, dataset.name(), dataset, &mine)
                .await?;
        }
        // The clean views read `anomalies`, registered above.
        for dataset in Dataset::ALL {
            if schema::time_column(dataset).is_some() || dataset == Dataset::Products {
                let clean = if anomalies {
                    without_anomalies(dataset)
                } else {
                    format!("SELECT * FROM {dataset}")
                };
                register_view(&ctx, &format!("clean_{dataset}"), &clean).await?;
            }
        }
        Ok(ctx)
    }

    /// Registers `files` (of `dataset`) as table `NAME_files`, and the view `name` over it:
    /// timestamps in seconds, and the newest row per key when some file overlaps others.
    pub async fn register_dataset(
        &self,
        ctx: &SessionContext,
        name: &str,
        dataset: Dataset,
        files: &[&lake_file::Model],
    ) -> Result {
        let raw = format!("{name}_files");
        self.register_files(ctx, &raw, dataset, files)?;
        let base = format!("SELECT {} FROM {raw}", dataset.columns());
        let view = if files.iter().any(|f| f.overlaps) {
            newest_per_key(dataset, &base)
        } else {
            base
        };
        register_view(ctx, name, &view).await
    }

    /// Registers the view `name` on `ctx` (a session of this lake): `dataset`'s newest rows
    /// of the keys whose first column is in `among`, a table with one text column `id`,
    /// less the rows `clean` marked when `clean`. Rows are picked from the files before the
    /// newest row of each key is: after an upsert load, the full view ranks every row of
    /// the dataset, this one only the rows of a day's keys.
    pub async fn register_subset(
        &self,
        ctx: &SessionContext,
        name: &str,
        dataset: Dataset,
        among: &str,
        clean: bool,
    ) -> Result {
        let id = dataset.key()[0];
        let base = format!(
            "SELECT {} FROM {dataset}_files WHERE {id} IN (SELECT id FROM {among})",
            dataset.columns()
        );
        let newest = newest_per_key(dataset, &base);
        let view = if clean {
            marked_out(dataset, &format!("({newest})"))
        } else {
            newest
        };
        register_view(ctx, name, &view).await
    }

    /// Registers `files` (all of `dataset`) as table `name`.
    fn register_files(
        &self,
        ctx: &SessionContext,
        name: &str,
        dataset: Dataset,
        files: &[&lake_file::Model],
    ) -> Result {
        let schema = dataset.schema();
        if files.is_empty() {
            let table = MemTable::try_new(schema, vec![vec![]])?;
            ctx.register_table(name, Arc::new(table))?;
            return Ok(());
        }
        let urls = files
            .iter()
            .map(|f| ListingTableUrl::parse(self.abs(&f.path).to_string_lossy()))
            .collect::<Result<Vec<_>, _>>()?;
        let options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(schema);
        ctx.register_table(name, Arc::new(ListingTable::try_new(config)?))?;
        Ok(())
    }

    /// The newest partition (as-of date) with live files of `dataset`.
    pub async fn newest_part(&self, dataset: Dataset) -> Result<Option<String>> {
        Ok(repo::lake::live(&self.db, dataset.name())
            .await?
            .into_iter()
            .filter_map(|f| f.part)
            .max())
    }

    /// Runs `sql` and collects the result.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let ctx = self.session().await?;
        collect(&ctx, sql).await
    }
}

/// Runs `sql` on `ctx` and collects the result.
pub async fn collect(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    let started = std::time::Instant::now();
    let out = ctx.sql(sql).await?.collect().await?;
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        rows = arrays::rows(&out),
        sql = %sql.chars().take(120).collect::<String>(),
        "lake query"
    );
    Ok(out)
}

async fn register_view(ctx: &SessionContext, name: &str, sql: &str) -> Result {
    ctx.sql(&format!("CREATE VIEW {name} AS {sql}")).await?;
    Ok(())
}

/// The newest row per key of the rows `base` selects (DESIGN.md section 5: the newest
/// committed load wins).
fn newest_per_key(dataset: Dataset, base: &str) -> String {
    // A recommendation list is many rows under one key, all written together: `RANK` keeps
    // every row of the newest one.
    let number = if dataset == Dataset::Recommendations {
        "RANK"
    } else {
        "ROW_NUMBER"
    };
    let columns: Vec<String> = dataset
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    format!(
        "SELECT {cols} FROM (SELECT *, {number}() OVER (PARTITION BY {key} ORDER BY {order}) AS _rank \
         FROM ({base})) WHERE _rank = 1",
        cols = columns.join(", "),
        key = dataset.key().join(", "),
        order = dataset.newest_first(),
    )
}

/// `dataset`'s rows that `clean` did not mark.
fn without_anomalies(dataset: Dataset) -> String {
    marked_out(dataset, dataset.name())
}

/// The rows of `rows` (a table, or a parenthesised query, of `dataset`'s rows) that `clean`
/// did not mark.
fn marked_out(dataset: Dataset, rows: &str) -> String {
    let id = dataset.key()[0];
    let on = if dataset == Dataset::Orders {
        format!("d.{id} = a.id AND d.line_key = a.line_key")
    } else {
        format!("d.{id} = a.id")
    };
    format!(
        "SELECT d.* FROM {rows} d LEFT ANTI JOIN \
         (SELECT id, line_key FROM anomalies WHERE dataset = '{dataset}') a ON {on}"
    )
}

/// Where the settings put the lake, if they say.
pub fn path_of(settings: &Settings) -> Option<PathBuf> {
    if !settings.lake.path.trim().is_empty() {
        return Some(PathBuf::from(settings.lake.path.trim()));
    }
    let file = crate::db::sqlite_file(&settings.database.url)?;
    Some(file.with_extension("lake"))
}

pub use crate::db::literal_list;

/// ` AND column IN (list)` for a literal list of customers, or nothing for everyone.
pub fn only(customers: Option<&str>, column: &str) -> String {
    customers
        .map(|list| format!(" AND {column} IN ({list})"))
        .unwrap_or_default()
}
