//! Bulk writes, bypassing the ORM: prepared multi-row `INSERT`s on SQLite and `COPY` into a
//! staging table on PostgreSQL (DEPENDENCIES.md: the ORM's `insert_many` is limited by bind
//! parameters and is slow at millions of rows). Each call is one transaction; callers pass
//! batches of a few tens of thousands of rows, short enough for the daemon's heartbeats to get
//! the connection in between.

use sea_orm::{
    DbBackend,
    sqlx::{self, AssertSqlSafe, PgPool, SqlitePool},
};

use crate::db::Db;

/// One value to write.
#[derive(Debug, Clone)]
pub enum Cell {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
    OptFloat(Option<f64>),
}

/// Picks rows out of a batch.
pub type RowTest = fn(&[Cell]) -> bool;

/// Where rows of one kind go.
pub struct TableSpec {
    pub table: &'static str,
    pub columns: &'static [&'static str],
    /// PostgreSQL types of `columns`, for the COPY staging table.
    pub pg_types: &'static [&'static str],
    /// What to do when the key already exists (the PostgreSQL clause; SQLite uses
    /// `INSERT OR IGNORE`, plus `sqlite_upsert` for the rows it selects).
    pub on_conflict: &'static str,
    /// Rows that must update an existing row on SQLite (with this conflict clause) rather than
    /// be ignored. Kept apart because an upsert needs a statement journal and `OR IGNORE`
    /// does not, which makes bulk loads of millions of rows much faster.
    pub sqlite_upsert: Option<(&'static str, RowTest)>,
    /// For `DO UPDATE` conflicts on PostgreSQL, which cannot touch one row twice in one
    /// statement: the key column and the order that picks the row kept among duplicates of a
    /// batch (`SELECT DISTINCT ON (key) … ORDER BY key, …`).
    pub pg_distinct_on: Option<(&'static str, &'static str)>,
}

/// Inserts `rows` into `spec.table` in one transaction; returns how many rows were new (or,
/// for order lines, changed status).
pub async fn write(db: &Db, spec: &TableSpec, rows: &[Vec<Cell>]) -> Result<u64, sqlx::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    if spec.columns.len() != spec.pg_types.len() {
        // A spec out of step with itself would silently drop columns from the staging table.
        return Err(sqlx::Error::Protocol(format!(
            "{}: {} columns but {} PostgreSQL types",
            spec.table,
            spec.columns.len(),
            spec.pg_types.len()
        )));
    }
    match db.get_database_backend() {
        DbBackend::Postgres => write_pg(db.get_postgres_connection_pool(), spec, rows).await,
        _ => write_sqlite(db.get_sqlite_connection_pool(), spec, rows).await,
    }
}

/// Batches above this many rows get a page cache of `BIG_CACHE_KB` while they are written.
const BIG_BATCH: usize = 100_000;
const BIG_CACHE_KB: u32 = 512 * 1024;

async fn write_sqlite(
    pool: &SqlitePool,
    spec: &TableSpec,
    rows: &[Vec<Cell>],
) -> Result<u64, sqlx::Error> {
    let (upserts, mut plain): (Vec<&Vec<Cell>>, Vec<&Vec<Cell>>) = match spec.sqlite_upsert {
        Some((_, applies)) => rows.iter().partition(|r| applies(r)),
        None => (Vec::new(), rows.iter().collect()),
    };
    // Inserting in key order (the key is the first column) touches each index page once per
    // batch instead of once per row: far fewer pages to write at the commit.
    // Stable, so among rows with one key the first in the file is the one kept.
    plain.sort_by(|a, b| cmp_cells(a.first(), b.first()));
    let mut conn = pool.acquire().await?;
    // A large batch touches pages all over the indexes: a page cache that holds them
    // keeps SQLite from spilling dirty pages mid-transaction. Back to the usual size after.
    if rows.len() > BIG_BATCH {
        sqlx::query(AssertSqlSafe(format!(
            "PRAGMA cache_size = -{BIG_CACHE_KB}"
        )))
        .execute(&mut *conn)
        .await?;
    }
    let result = async {
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
        let mut written = insert_sqlite(&mut tx, spec, &plain, "INSERT OR IGNORE", "").await?;
        if let Some((conflict, _)) = spec.sqlite_upsert {
            written += insert_sqlite(&mut tx, spec, &upserts, "INSERT", conflict).await?;
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(written)
    }
    .await;
    if rows.len() > BIG_BATCH {
        sqlx::query(AssertSqlSafe(format!(
            "PRAGMA cache_size = -{}",
            crate::db::SQLITE_CACHE_KB
        )))
        .execute(&mut *conn)
        .await?;
    }
    result
}

async fn insert_sqlite(
    conn: &mut sqlx::SqliteConnection,
    spec: &TableSpec,
    rows: &[&Vec<Cell>],
    verb: &str,
    conflict: &str,
) -> Result<u64, sqlx::Error> {
    // Up to 500 rows per statement, within SQLite's 32,766 bound parameters.
    let per_statement = (30_000 / spec.columns.len()).clamp(1, 500);
    let mut written = 0;
    for chunk in rows.chunks(per_statement) {
        let sql = insert_sql(spec, chunk.len(), verb, conflict);
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for row in chunk {
            for cell in row.iter() {
                query = match cell {
                    Cell::Text(s) => query.bind(s.as_str()),
                    Cell::OptText(s) => query.bind(s.as_deref()),
                    Cell::Int(n) => query.bind(*n),
                    Cell::OptInt(n) => query.bind(*n),
                    Cell::OptFloat(f) => query.bind(*f),
                };
            }
        }
        written += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(written)
}

fn cmp_cells(a: Option<&Cell>, b: Option<&Cell>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(Cell::Text(x)), Some(Cell::Text(y))) => x.cmp(y),
        (Some(Cell::Int(x)), Some(Cell::Int(y))) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}

fn insert_sql(spec: &TableSpec, rows: usize, verb: &str, conflict: &str) -> String {
    let one = format!("({})", vec!["?"; spec.columns.len()].join(","));
    format!(
        "{verb} INTO {} ({}) VALUES {} {conflict}",
        spec.table,
        spec.columns.join(","),
        vec![one; rows].join(","),
    )
    .trim_end()
    .to_owned()
}

async fn write_pg(pool: &PgPool, spec: &TableSpec, rows: &[Vec<Cell>]) -> Result<u64, sqlx::Error> {
    let stage = format!("patron_stage_{}", spec.table);
    let columns = spec.columns.join(",");
    let typed: Vec<String> = spec
        .columns
        .iter()
        .zip(spec.pg_types)
        .map(|(c, t)| format!("{c} {t}"))
        .collect();
    let mut tx = pool.begin().await?;
    sqlx::query(AssertSqlSafe(format!(
        "CREATE TEMP TABLE IF NOT EXISTS {stage} ({}) ON COMMIT DELETE ROWS",
        typed.join(",")
    )))
    .execute(&mut *tx)
    .await?;
    let mut copy = tx
        .copy_in_raw(&format!(
            "COPY {stage} ({columns}) FROM STDIN WITH (FORMAT csv)"
        ))
        .await?;
    let mut buf = Vec::with_capacity(1 << 20);
    for row in rows {
        csv_line(row, &mut buf);
        if buf.len() > (1 << 20) {
            copy.send(std::mem::take(&mut buf)).await?;
        }
    }
    if !buf.is_empty() {
        copy.send(buf).await?;
    }
    copy.finish().await?;
    let select = match spec.pg_distinct_on {
        Some((key, order)) => {
            format!("SELECT DISTINCT ON ({key}) {columns} FROM {stage} ORDER BY {key}, {order}")
        }
        None => format!("SELECT {columns} FROM {stage}"),
    };
    let written = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {} ({columns}) {select} {}",
        spec.table, spec.on_conflict
    )))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(written)
}

/// One row as a COPY CSV line: NULL is an empty unquoted field, text is always quoted.
fn csv_line(row: &[Cell], out: &mut Vec<u8>) {
    use std::io::Write as _;
    for (i, cell) in row.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let text = match cell {
            Cell::Text(s) => Some(s.as_str()),
            Cell::OptText(s) => s.as_deref(),
            Cell::Int(n) => {
                let _ = write!(out, "{n}");
                continue;
            }
            Cell::OptInt(n) => {
                if let Some(n) = n {
                    let _ = write!(out, "{n}");
                }
                continue;
            }
            Cell::OptFloat(f) => {
                if let Some(f) = f {
                    let _ = write!(out, "{f}");
                }
                continue;
            }
        };
        if let Some(text) = text {
            out.push(b'"');
            for b in text.bytes() {
                if b == b'"' {
                    out.push(b'"');
                }
                out.push(b);
            }
            out.push(b'"');
        }
    }
    out.push(b'\n');
}

/// Streams a query's rows, decoded into tuples, to `each` (the raw pool is faster than the
/// ORM's generic rows at millions of rows, and streaming keeps memory flat). `$1` is the one
/// optional bind; SQLite accepts it too.
pub async fn fetch_each<T>(
    db: &Db,
    sql: &str,
    bind: Option<i64>,
    mut each: impl FnMut(T),
) -> anyhow::Result<()>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + Send
        + Unpin,
{
    use futures::TryStreamExt as _;
    let sql = AssertSqlSafe(sql.to_owned());
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let mut q = sqlx::query_as::<_, T>(sql);
            if let Some(b) = bind {
                q = q.bind(b);
            }
            let mut rows = q.fetch(db.get_postgres_connection_pool());
            while let Some(row) = rows.try_next().await? {
                each(row);
            }
        }
        _ => {
            let mut q = sqlx::query_as::<_, T>(sql);
            if let Some(b) = bind {
                q = q.bind(b);
            }
            let mut rows = q.fetch(db.get_sqlite_connection_pool());
            while let Some(row) = rows.try_next().await? {
                each(row);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_lines_quote_text_and_leave_nulls_empty() {
        let mut out = Vec::new();
        csv_line(
            &[
                Cell::Text("a \"b\", c".into()),
                Cell::OptText(None),
                Cell::Int(-3),
                Cell::OptInt(None),
                Cell::OptFloat(Some(1.5)),
                Cell::Text(String::new()),
            ],
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a \"\"b\"\", c\",,-3,,1.5,\"\"\n"
        );
    }

    #[test]
    fn insert_sql_has_one_placeholder_group_per_row() {
        let spec = TableSpec {
            table: "t",
            columns: &["a", "b"],
            pg_types: &["text", "bigint"],
            on_conflict: "ON CONFLICT (a) DO NOTHING",
            sqlite_upsert: None,
            pg_distinct_on: None,
        };
        assert_eq!(
            insert_sql(&spec, 2, "INSERT OR IGNORE", ""),
            "INSERT OR IGNORE INTO t (a,b) VALUES (?,?),(?,?)"
        );
    }
}
