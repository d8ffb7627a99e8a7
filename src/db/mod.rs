//! The database: connecting (SQLite or PostgreSQL, chosen by the URL), migrating, and the
//! typed errors the repository functions return.

pub mod bulk;
pub mod entities;
pub mod repo;

use std::{str::FromStr, time::Duration};

use chrono::{DateTime, SubsecRound, Utc};
use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
    sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
};

pub type Db = DatabaseConnection;

/// Errors at the repository boundary; callers branch on `NotFound` and `Conflict`.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("unknown {what} {id}")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database could not be reached or refused us; the reason in words.
    #[error("{0}")]
    Connect(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

pub type Result<T = (), E = RepoError> = std::result::Result<T, E>;

impl RepoError {
    /// `id` as given, control characters escaped: a typed newline keeps the error on one
    /// line.
    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            what,
            id: id
                .to_string()
                .chars()
                .flat_map(|c| match c.is_control() {
                    true => c.escape_default().collect::<Vec<_>>(),
                    false => vec![c],
                })
                .collect(),
        }
    }

    /// Whether the database could not be reached (see [`unreachable`]).
    pub fn is_unreachable(&self) -> bool {
        match self {
            Self::Db(e) => unreachable(e),
            Self::Connect(_) => true,
            _ => false,
        }
    }
}

/// Whether `e` says the database could not be reached or the connection broke, rather than
/// that a statement failed: the same step may succeed once the database is back. A dropped
/// connection shows up as a query or execution error (sea-orm wraps whatever sqlx returned
/// there), so those are looked into too.
pub fn unreachable(e: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx::Error};
    match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                Error::Io(_)
                | Error::Tls(_)
                | Error::PoolTimedOut
                | Error::PoolClosed
                | Error::WorkerCrashed => true,
                // PostgreSQL's connection exceptions (class 08) and its shutting down or
                // starting up (57P01..57P03).
                Error::Database(d) => d.code().is_some_and(|c| {
                    c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")
                }),
                _ => false,
            }
        }
        _ => false,
    }
}

/// How long connecting may take when the caller has no setting (tests, benchmarks).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the database the settings name, failing within `connect_timeout` with the reason.
pub async fn open(settings: &crate::config::DatabaseSettings) -> Result<Db> {
    connect_sized(
        &settings.url,
        settings.max_connections,
        1,
        settings.connect_timeout,
    )
    .await
}

/// Each SQLite connection's page cache, in KiB.
pub const SQLITE_CACHE_KB: u32 = 128 * 1024;

/// Opens the database named by `url`.
///
/// SQLite gets WAL mode (readers never block the writer), `synchronous = NORMAL` (durable at
/// checkpoints, safe against process crashes), a busy timeout for other processes holding the
/// write lock, a large page cache, and one connection per pool (the scheduler's writes need
/// no more: SQLite has one writer). PostgreSQL gets a pool of `max_connections`.
pub async fn connect(url: &str, max_connections: u32) -> Result<Db> {
    connect_sized(url, max_connections, 1, DEFAULT_CONNECT_TIMEOUT).await
}

/// Like [`connect`], with `sqlite_connections` connections on SQLite. The daemon gives jobs a
/// pool of their own: their long reads (WAL lets readers run beside the writer) must not keep
/// the scheduler waiting for its one connection.
///
/// A PostgreSQL server is first reached with one plain connection: the pool retries failed
/// connections until its acquire timeout and then reports only that it timed out, where this
/// says within `connect_timeout` what went wrong (refused, unknown host, bad password, no
/// such database).
pub async fn connect_sized(
    url: &str,
    max_connections: u32,
    sqlite_connections: u32,
    connect_timeout: Duration,
) -> Result<Db> {
    let mut options = ConnectOptions::new(url.to_owned());
    options.sqlx_logging(false);
    if url.starts_with("sqlite:") {
        // Validate the URL here so the error names it; sea-orm parses it again below.
        SqliteConnectOptions::from_str(url)
            .map_err(|e| DbErr::Custom(format!("bad SQLite URL {url}: {e}")))?;
        options
            .max_connections(sqlite_connections.max(1))
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(600))
            .idle_timeout(None::<Duration>)
            .max_lifetime(None::<Duration>)
            .map_sqlx_sqlite_opts(|o| {
                // A 128 MB page cache per connection (the default is 2 MB): bulk loads insert into indexes of
                // tens of millions of keys, and random inserts thrash a small cache.
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(30))
                    .foreign_keys(true)
                    .pragma("cache_size", format!("-{SQLITE_CACHE_KB}"))
                    .pragma("temp_store", "memory")
            });
    } else {
        probe_postgres(url, connect_timeout).await?;
        options
            .max_connections(max_connections)
            .min_connections(1)
            .connect_timeout(connect_timeout)
            .acquire_timeout(Duration::from_secs(30).max(connect_timeout));
    }
    // Two processes opening a new SQLite file at once both switch it to WAL, which needs the
    // file to themselves; SQLite refuses one of them at once ("database is locked") rather
    // than wait, as waiting could deadlock. The loser tries again until `connect_timeout`.
    let started = std::time::Instant::now();
    loop {
        match Database::connect(options.clone()).await {
            Err(e) if url.starts_with("sqlite:") && is_locked(&e) => {
                if started.elapsed() >= connect_timeout {
                    return Err(e.into());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return Ok(other?),
        }
    }
}

/// Whether SQLite said the database is locked (`SQLITE_BUSY`, code 5).
fn is_locked(e: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx::Error};
    match e {
        DbErr::Conn(RuntimeErr::SqlxError(e)) | DbErr::Exec(RuntimeErr::SqlxError(e)) => {
            matches!(e.as_ref(), Error::Database(d) if d.code().as_deref() == Some("5"))
        }
        _ => false,
    }
}

/// Opens and closes one connection to the PostgreSQL server at `url`, within `timeout`.
async fn probe_postgres(url: &str, timeout: Duration) -> Result {
    use sea_orm::sqlx::{Connection as _, postgres::PgConnectOptions, postgres::PgConnection};
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| RepoError::Connect(format!("bad PostgreSQL URL: {e}")))?;
    let target = format!("{}:{}", options.get_host(), options.get_port());
    match tokio::time::timeout(timeout, PgConnection::connect_with(&options)).await {
        Err(_) => Err(RepoError::Connect(format!(
            "{target} did not answer within {}",
            humantime::format_duration(timeout)
        ))),
        Ok(Err(e)) => Err(RepoError::Connect(connect_failure(&e, &options, &target))),
        Ok(Ok(conn)) => {
            // Closing politely only saves the server a log line; a failure changes nothing.
            let _ = conn.close().await;
            Ok(())
        }
    }
}

/// Why connecting failed, in words (sqlx's own text is either terse or carries the server's
/// source locations).
fn connect_failure(
    e: &sea_orm::sqlx::Error,
    options: &sea_orm::sqlx::postgres::PgConnectOptions,
    target: &str,
) -> String {
    use sea_orm::sqlx::Error;
    match e {
        Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                format!("connection refused: nothing listens on {target}")
            }
            std::io::ErrorKind::TimedOut => format!("connecting to {target} timed out"),
            _ if io.to_string().contains("lookup") => {
                format!("unknown host {}", options.get_host())
            }
            _ => format!("cannot reach {target}: {io}"),
        },
        Error::Tls(tls) => format!("TLS with {target} failed: {tls}"),
        Error::Database(db) => {
            let user = options.get_username();
            let database = options.get_database().unwrap_or(user);
            match db.code().as_deref() {
                Some("28P01") => format!("password authentication failed for user {user}"),
                Some("28000") => format!("the server refused user {user}: {}", db.message()),
                Some("3D000") => format!("database {database} does not exist on {target}"),
                Some("53300") => format!("{target} has too many connections"),
                Some("57P03") => format!("{target} is starting up or shutting down"),
                _ => format!("{target} refused the connection: {}", db.message()),
            }
        }
        Error::Configuration(c) => format!("bad PostgreSQL URL: {c}"),
        Error::Protocol(p) => format!(
            "{target} does not answer like a PostgreSQL server: {}",
            without_location(p)
        ),
        other => format!(
            "cannot connect to {target}: {}",
            without_location(&other.to_string())
        ),
    }
}

/// `message (sqlx_postgres::connection::tls:95)` → `message`: sqlx appends where in its
/// source an error was raised, which means nothing to a user.
fn without_location(message: &str) -> &str {
    match message
        .trim_end()
        .strip_suffix(')')
        .and_then(|m| m.rsplit_once(" ("))
    {
        Some((text, location)) if location.contains("::") => text,
        _ => message,
    }
}

/// A PostgreSQL array parameter of `values` (all of type `ty`, none NULL: the driver cannot
/// bind a NULL element), for statements that take rows as arrays (`UNNEST($1::bigint[], …)`).
/// `'a','b'`: text as an SQL literal list (for `IN (...)`), quotes doubled. Both SQL
/// databases and DataFusion read it.
pub fn literal_list<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for v in values {
        if !out.is_empty() {
            out.push(',');
        }
        out.push('\'');
        out.push_str(&v.replace('\'', "''"));
        out.push('\'');
    }
    out
}

pub fn pg_array(ty: sea_orm::sea_query::ArrayType, values: Vec<sea_orm::Value>) -> sea_orm::Value {
    sea_orm::Value::Array(ty, Some(Box::new(values)))
}

/// Key of the PostgreSQL advisory lock that serialises migrations across processes.
const MIGRATION_LOCK: i64 = 0x7061_7472_6f6e; // "patron"

/// Applies every pending migration; the names of those it applied. Processes starting
/// together take turns (an advisory lock on PostgreSQL, the write lock on SQLite), so they
/// never race to create a table, and each reports only what it applied itself.
pub async fn migrate(db: &Db) -> Result<Vec<String>> {
    if db.get_database_backend() != DbBackend::Postgres {
        // On SQLite the whole upgrade is one `BEGIN IMMEDIATE` transaction: a second process
        // waits for the first, then finds nothing pending.
        if Migrator::get_pending_migrations(db).await?.is_empty() {
            return Ok(Vec::new());
        }
        let txn = begin_write(db).await?;
        let applied = Migrator::get_pending_migrations(&txn).await?;
        let applied: Vec<String> = applied.iter().map(|m| m.name().to_owned()).collect();
        Migrator::up(&txn, None).await?;
        txn.commit().await?;
        return Ok(applied);
    }
    let lock_err = |e: sea_orm::sqlx::Error| DbErr::Custom(format!("migration lock: {e}"));
    let mut conn = db
        .get_postgres_connection_pool()
        .acquire()
        .await
        .map_err(lock_err)?;
    sea_orm::sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(lock_err)?;
    let result = async {
        let applied = Migrator::get_pending_migrations(db).await?;
        let applied: Vec<String> = applied.iter().map(|m| m.name().to_owned()).collect();
        Migrator::up(db, None).await?;
        Ok::<_, DbErr>(applied)
    }
    .await;
    // The lock also ends with the session; unlocking early lets the next process go.
    let _ = sea_orm::sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await;
    Ok(result?)
}

/// Begins a transaction that writes. On SQLite it takes the write lock at `BEGIN IMMEDIATE`,
/// so a read-then-write transaction never fails with `SQLITE_BUSY_SNAPSHOT` when another
/// process wrote in between; it waits on the busy timeout instead.
pub async fn begin_write(db: &Db) -> Result<DatabaseTransaction> {
    let options = TransactionOptions {
        sqlite_transaction_mode: (db.get_database_backend() == DbBackend::Sqlite)
            .then_some(SqliteTransactionMode::Immediate),
        ..Default::default()
    };
    Ok(db.begin_with_options(options).await?)
}

/// Whether row locks (`FOR UPDATE SKIP LOCKED`) exist; SQLite serialises writers instead.
pub fn has_row_locks(db: &impl ConnectionTrait) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}

/// The current time, rounded to microseconds: what both backends store, so a value read back
/// compares equal to the value written.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The file of a `sqlite:` URL (`sqlite://patron.db?mode=rwc` → `patron.db`), if it is one.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

/// The PostgreSQL channel daemons listen on for work: a new run, a rerun, a finished job
/// that made others ready. Polling remains the fallback (and SQLite's only way).
pub const WAKE_CHANNEL: &str = "patron_wake";

/// Tells listening daemons there is work (PostgreSQL `NOTIFY`; nothing on SQLite). Best
/// effort: a lost notification costs one poll interval.
pub async fn wake_daemons(db: &Db) {
    use sea_orm::ConnectionTrait as _;
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        let _ = db
            .execute_unprepared(&format!("NOTIFY {WAKE_CHANNEL}"))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_locations_are_cut_from_driver_messages() {
        assert_eq!(
            without_location(
                "unexpected response from SSLRequest: 0x48 (sqlx_postgres::connection::tls:95)"
            ),
            "unexpected response from SSLRequest: 0x48"
        );
        assert_eq!(
            without_location("plain (not a location)"),
            "plain (not a location)"
        );
    }
}
