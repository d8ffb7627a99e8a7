//! Reads and writes of loyalty: the point ledger (insert only, never updated), tiers,
//! campaigns and their allocation plans. Every ledger write is `ON CONFLICT (key) DO
//! NOTHING`: the key of an effect decides whether it happened, so a retry, a rerun or a
//! second daemon writing the same effect changes nothing.

use std::collections::{HashMap, HashSet};

use sea_orm::{ConnectionTrait, Statement, Value};
use serde::Serialize;

use super::intelligence::{placeholder, write_all};
use crate::{
    db::{
        Db, RepoError, Result, begin_write,
        bulk::{self, Cell, TableSpec},
        literal_list,
    },
    loyalty::{Candidate, Entry, EntryKind, Standing},
    pipeline::Shard,
};

pub static LEDGER_TABLE: TableSpec = TableSpec {
    table: "point_ledger",
    columns: &[
        "key",
        "customer_id",
        "kind",
        "points",
        "at",
        "available_at",
        "expires_at",
        "order_id",
        "basis_cents",
        "campaign_id",
        "reason",
        "run_id",
    ],
    pg_types: &[
        "text", "text", "text", "bigint", "bigint", "bigint", "bigint", "text", "bigint", "bigint",
        "text", "bigint",
    ],
    on_conflict: "ON CONFLICT (key) DO NOTHING",
    sqlite_upsert: None,
    pg_distinct_on: None,
};

/// A ledger row to write.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    pub key: String,
    pub customer_id: String,
    pub kind: EntryKind,
    pub points: i64,
    pub at: i64,
    pub available_at: i64,
    pub expires_at: Option<i64>,
    pub order_id: Option<String>,
    pub basis_cents: Option<i64>,
    pub campaign_id: Option<i64>,
    pub reason: Option<String>,
    pub run_id: Option<i64>,
}

impl NewEntry {
    fn cells(self) -> Vec<Cell> {
        vec![
            Cell::Text(self.key),
            Cell::Text(self.customer_id),
            Cell::Text(self.kind.as_str().to_owned()),
            Cell::Int(self.points),
            Cell::Int(self.at),
            Cell::Int(self.available_at),
            Cell::OptInt(self.expires_at),
            Cell::OptText(self.order_id),
            Cell::OptInt(self.basis_cents),
            Cell::OptInt(self.campaign_id),
            Cell::OptText(self.reason),
            Cell::OptInt(self.run_id),
        ]
    }
}

/// Ledger rows per transaction. The customer index takes rows at random pages: a
/// transaction writes each page it touched once, so larger ones write far fewer pages per
/// row (at a million customers, 50,000-row transactions spent 11 µs a row).
const LEDGER_BATCH: usize = 250_000;

/// Writes ledger rows; those whose key exists are skipped. Returns how many were new.
pub async fn append(db: &Db, rows: Vec<NewEntry>) -> Result<u64> {
    // Converted a chunk at a time: a first pass at scale earns millions of rows, and a
    // second copy of them all as cells cost gigabytes.
    let mut rows = rows.into_iter();
    let mut written = 0;
    loop {
        let chunk: Vec<Vec<Cell>> = rows
            .by_ref()
            .take(LEDGER_BATCH)
            .map(NewEntry::cells)
            .collect();
        if chunk.is_empty() {
            return Ok(written);
        }
        written += write_all(db, &LEDGER_TABLE, chunk, LEDGER_BATCH).await?;
    }
}

fn corrupt(what: &str) -> impl Fn(anyhow::Error) -> RepoError + '_ {
    move |e| RepoError::Corrupt(format!("reading {what}: {e}"))
}

/// The orders that have an earn row.
pub async fn earned_order_ids(db: &Db) -> Result<Vec<String>> {
    let mut out = Vec::new();
    bulk::fetch_each::<(String,)>(
        db,
        "SELECT order_id FROM point_ledger WHERE kind = 'earn' AND order_id IS NOT NULL",
        None,
        |(id,)| out.push(id),
    )
    .await
    .map_err(corrupt("point_ledger"))?;
    Ok(out)
}

/// An earned order with lines that are no longer paid.
#[derive(Debug, Clone, PartialEq)]
pub struct Refunded {
    pub order_id: String,
    pub customer_id: String,
    pub earned: i64,
    pub basis_cents: i64,
    pub paid_cents: i64,
    /// Sum of the reverse rows so far (≤ 0).
    pub reversed: i64,
}

/// The earn rows of `changed` orders (`(order_id, cents still paid)`), with what was
/// reversed of each so far.
pub async fn refunded_orders(db: &Db, changed: &[(String, i64)]) -> Result<Vec<Refunded>> {
    let paid: HashMap<&str, i64> = changed.iter().map(|(o, c)| (o.as_str(), *c)).collect();
    let mut out = Vec::new();
    for chunk in changed.chunks(super::CHUNK) {
        let list = literal_list(chunk.iter().map(|(o, _)| o.as_str()));
        bulk::fetch_each::<(String, String, i64, i64, i64)>(
            db,
            &format!(
                "SELECT l.order_id, l.customer_id, l.points, COALESCE(l.basis_cents, 0), \
                   COALESCE((SELECT CAST(SUM(r.points) AS BIGINT) FROM point_ledger r \
                             WHERE r.kind = 'reverse' AND r.order_id = l.order_id), 0) \
                 FROM point_ledger l WHERE l.kind = 'earn' AND l.order_id IN ({list})"
            ),
            None,
            |(order_id, customer_id, earned, basis_cents, reversed)| {
                let paid_cents = paid.get(order_id.as_str()).copied().unwrap_or(0);
                out.push(Refunded {
                    order_id,
                    customer_id,
                    earned,
                    basis_cents,
                    paid_cents,
                    reversed,
                })
            },
        )
        .await
        .map_err(corrupt("point_ledger"))?;
    }
    Ok(out)
}

type Row = (
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<String>,
);

fn entry(
    (key, customer, kind, points, at, available_at, expires_at, order_id): Row,
) -> (String, Entry) {
    (
        customer,
        Entry {
            key,
            kind: EntryKind::parse(&kind).unwrap_or(EntryKind::Adjust),
            points,
            at,
            available_at,
            expires_at,
            order_id,
        },
    )
}

const ENTRY_COLUMNS: &str =
    "key, customer_id, kind, points, at, available_at, expires_at, order_id";

/// Every row of the customers who hold a lot that expired by `now` (and may have no expire
/// row yet).
///
/// `seen` is what an earlier expiry pass covered: lots that expired by `seen.at` and
/// were written by `seen.id` were dealt with then (expired, or used up), so only lots that
/// expired since, or were written since (a late order's back-dated lot), are looked at.
pub async fn with_due_lots(
    db: &Db,
    now: i64,
    seen: ExpirySeen,
) -> Result<HashMap<String, Vec<Entry>>> {
    let ExpirySeen { at, id } = seen;
    // Lots an expire row already closed are not told apart here (millions of key lookups
    // at random pages on a first pass): FIFO honours those rows and expires nothing twice.
    let mut due = Vec::new();
    bulk::fetch_each::<(String,)>(
        db,
        &format!(
            "SELECT DISTINCT {UNINDEXED_CUSTOMER} FROM point_ledger WHERE points > 0 \
             AND expires_at <= $1 AND (expires_at > {at} OR id > {id})"
        ),
        Some(now),
        |(c,)| due.push(c),
    )
    .await
    .map_err(corrupt("point_ledger"))?;
    let mut out: HashMap<String, Vec<Entry>> = HashMap::new();
    if due.len() <= WHOLE_SCAN_FROM {
        for only in in_lists("customer_id", Some(&due)) {
            bulk::fetch_each::<Row>(
                db,
                &format!("SELECT {ENTRY_COLUMNS} FROM point_ledger WHERE 1 = 1{only}"),
                None,
                |row| {
                    let (c, e) = entry(row);
                    out.entry(c).or_default().push(e);
                },
            )
            .await
            .map_err(corrupt("point_ledger"))?;
        }
        return Ok(out);
    }
    // Many customers (a first pass): one scan of the table in its own order, where the
    // customer index would fetch every row from a random page.
    let due: HashSet<String> = due.into_iter().collect();
    bulk::fetch_each::<Row>(
        db,
        &format!("SELECT {ENTRY_COLUMNS} FROM point_ledger"),
        None,
        |row| {
            if due.contains(&row.1) {
                let (c, e) = entry(row);
                out.entry(c).or_default().push(e);
            }
        },
    )
    .await
    .map_err(corrupt("point_ledger"))?;
    Ok(out)
}

/// The customer column as an expression, for `SELECT DISTINCT`: on the bare column SQLite
/// walks the whole customer index and fetches every row from a random page to test the
/// `WHERE` (21 s over a million customers' ledger), where this scans the table (or the
/// id range) and sorts.
const UNINDEXED_CUSTOMER: &str = "customer_id || ''";

/// From how many customers reading the whole ledger is faster than looking each one's rows
/// up in the customer index.
const WHOLE_SCAN_FROM: usize = 20_000;

/// What an expiry pass covered: lots expiring by `at`, among the rows up to ledger id `id`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpirySeen {
    pub at: i64,
    pub id: i64,
}

const EXPIRED_AT: &str = "points-expired-at";
const EXPIRED_ID: &str = "points-expired-id";
const EARNED_LOAD: &str = "points-earned-load";
const EARNED_BEFORE: &str = "points-earned-before";
const TIERED_ID: &str = "points-tiered-id";
const TIERED_AT: &str = "points-tiered-at";

/// The name of a watermark of `shard`'s customers (each shard keeps its own; a new shard
/// count starts from nothing, which only costs one full look).
fn mark(name: &str, shard: Option<Shard>) -> String {
    match shard {
        None => name.to_owned(),
        Some(s) => format!("{name}:{}/{}", s.index, s.count),
    }
}

async fn marks<const N: usize>(db: &Db, names: [String; N]) -> Result<[i64; N]> {
    let mut out = [0; N];
    for (slot, name) in out.iter_mut().zip(&names) {
        *slot = super::watermarks::watermark(db, name).await?;
    }
    Ok(out)
}

async fn set_marks<const N: usize>(db: &Db, marks: [(String, i64); N]) -> Result {
    for (name, position) in marks {
        super::watermarks::set_watermark(db, &name, position).await?;
    }
    Ok(())
}

/// What earlier expiry passes over `shard`'s customers covered (nothing on a new database).
pub async fn expiry_seen(db: &Db, shard: Option<Shard>) -> Result<ExpirySeen> {
    let [at, id] = marks(db, [mark(EXPIRED_AT, shard), mark(EXPIRED_ID, shard)]).await?;
    Ok(ExpirySeen { at, id })
}

/// Records what an expiry pass covered (watermarks never move back).
pub async fn set_expiry_seen(db: &Db, shard: Option<Shard>, seen: ExpirySeen) -> Result {
    set_marks(
        db,
        [
            (mark(EXPIRED_AT, shard), seen.at),
            (mark(EXPIRED_ID, shard), seen.id),
        ],
    )
    .await
}

/// What an earning pass covered: the loads up to `load` (`ingested_sources` ids), and
/// orders timed before `before`. Zero: nothing yet, the next pass looks at every order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EarnSeen {
    pub load: i64,
    pub before: i64,
}

pub async fn earn_seen(db: &Db, shard: Option<Shard>) -> Result<EarnSeen> {
    let [load, before] = marks(db, [mark(EARNED_LOAD, shard), mark(EARNED_BEFORE, shard)]).await?;
    Ok(EarnSeen { load, before })
}

pub async fn set_earn_seen(db: &Db, shard: Option<Shard>, seen: EarnSeen) -> Result {
    set_marks(
        db,
        [
            (mark(EARNED_LOAD, shard), seen.load),
            (mark(EARNED_BEFORE, shard), seen.before),
        ],
    )
    .await
}

/// What a tier pass covered: ledger rows up to `id`, at `at`, under the tier rules whose
/// fingerprint is `rules` (other rules: nothing covered, every customer is looked at).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TiersSeen {
    pub id: i64,
    pub at: i64,
}

fn tier_marks(shard: Option<Shard>, rules: u64) -> [String; 2] {
    [
        mark(&format!("{TIERED_ID}:{rules:016x}"), shard),
        mark(&format!("{TIERED_AT}:{rules:016x}"), shard),
    ]
}

pub async fn tiers_seen(db: &Db, shard: Option<Shard>, rules: u64) -> Result<TiersSeen> {
    let [id, at] = marks(db, tier_marks(shard, rules)).await?;
    Ok(TiersSeen { id, at })
}

pub async fn set_tiers_seen(db: &Db, shard: Option<Shard>, rules: u64, seen: TiersSeen) -> Result {
    let [id, at] = tier_marks(shard, rules);
    set_marks(db, [(id, seen.id), (at, seen.at)]).await
}

/// The newest ledger row id (0 when empty).
pub async fn last_ledger_id(db: &Db) -> Result<i64> {
    // CAST: PostgreSQL types a bare 0 as int4, which does not read as i64.
    totals(
        db,
        "SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT), CAST(0 AS BIGINT) FROM point_ledger",
    )
    .await
    .map(|(id, _)| id)
}

/// A customer's earn and reversal rows since a date: their sum, and the oldest row's time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub points: i64,
    pub oldest: Option<i64>,
}

/// Points earned (less reversals) since `since`, per customer with any: everyone's, or
/// those of `among` only.
pub async fn earned_since(
    db: &Db,
    since: i64,
    among: Option<&[String]>,
) -> Result<HashMap<String, Window>> {
    let mut out: HashMap<String, Window> = HashMap::new();
    let mut add = |(c, points, at): (String, i64, i64)| {
        let w = out.entry(c).or_default();
        w.points += points;
        w.oldest = Some(w.oldest.map_or(at, |o| o.min(at)));
    };
    let Some(among) = among else {
        // Everyone: the rows in the table's order, summed here. Grouped in SQL, SQLite
        // walks the customer index and fetches each row from a random page (26 s at a
        // million customers).
        bulk::fetch_each::<(String, i64, i64)>(
            db,
            "SELECT customer_id, points, at FROM point_ledger \
             WHERE kind IN ('earn', 'reverse') AND at >= $1",
            Some(since),
            &mut add,
        )
        .await
        .map_err(corrupt("point_ledger"))?;
        return Ok(out);
    };
    for only in in_lists("customer_id", Some(among)) {
        bulk::fetch_each::<(String, i64, i64)>(
            db,
            &format!(
                "SELECT customer_id, CAST(SUM(points) AS BIGINT), CAST(MIN(at) AS BIGINT) \
                 FROM point_ledger WHERE kind IN ('earn', 'reverse') AND at >= $1{only} \
                 GROUP BY customer_id"
            ),
            Some(since),
            &mut add,
        )
        .await
        .map_err(corrupt("point_ledger"))?;
    }
    Ok(out)
}

/// Ids a literal `IN` list holds at most: short statements, few round trips.
const LIST_CHUNK: usize = 2_000;

/// The customers with an earn or reversal row after ledger id `after`.
pub async fn tier_customers_since(db: &Db, after: i64) -> Result<Vec<String>> {
    let mut out = Vec::new();
    bulk::fetch_each::<(String,)>(
        db,
        &format!(
            "SELECT DISTINCT {UNINDEXED_CUSTOMER} FROM point_ledger \
             WHERE id > $1 AND kind IN ('earn', 'reverse')"
        ),
        Some(after),
        |(c,)| out.push(c),
    )
    .await
    .map_err(corrupt("point_ledger"))?;
    Ok(out)
}

/// The customers whose tier must be looked at again by `now` with no new ledger row.
pub async fn tier_rechecks_due(db: &Db, now: i64) -> Result<Vec<String>> {
    let mut out = Vec::new();
    bulk::fetch_each::<(String,)>(
        db,
        "SELECT customer_id FROM customer_tiers WHERE recheck_at IS NOT NULL AND recheck_at <= $1",
        Some(now),
        |(c,)| out.push(c),
    )
    .await
    .map_err(corrupt("customer_tiers"))?;
    Ok(out)
}

/// Which of `orders` have an earn row.
pub async fn earned_among(db: &Db, orders: &[String]) -> Result<HashSet<String>> {
    let mut out = HashSet::new();
    for only in in_lists("order_id", Some(orders)) {
        bulk::fetch_each::<(String,)>(
            db,
            &format!("SELECT order_id FROM point_ledger WHERE kind = 'earn'{only}"),
            None,
            |(o,)| {
                out.insert(o);
            },
        )
        .await
        .map_err(corrupt("point_ledger"))?;
    }
    Ok(out)
}

/// The stored tiers: everyone's, or those of `among` only.
pub async fn standings(db: &Db, among: Option<&[String]>) -> Result<HashMap<String, Standing>> {
    let mut out = HashMap::new();
    for only in in_lists("customer_id", among) {
        bulk::fetch_each::<(String, String, Option<i64>)>(
            db,
            &format!(
                "SELECT customer_id, tier, downgraded_at FROM customer_tiers WHERE 1 = 1{only}"
            ),
            None,
            |(c, tier, downgraded_at)| {
                out.insert(
                    c,
                    Standing {
                        tier,
                        downgraded_at,
                    },
                );
            },
        )
        .await
        .map_err(corrupt("customer_tiers"))?;
    }
    Ok(out)
}

/// ` AND column IN (…)` clauses that cover `among` a chunk each, or one empty clause for
/// everyone.
fn in_lists(column: &str, among: Option<&[String]>) -> Vec<String> {
    match among {
        None => vec![String::new()],
        Some(among) => among
            .chunks(LIST_CHUNK)
            .map(|c| {
                format!(
                    " AND {column} IN ({})",
                    literal_list(c.iter().map(String::as_str))
                )
            })
            .collect(),
    }
}

/// A tier to store.
pub struct TierRow {
    pub customer_id: String,
    pub tier: String,
    pub earned_12m: i64,
    /// Whether the tier moved (`changed_at` and `downgraded_at` are written only then).
    pub changed: bool,
    pub changed_at: i64,
    pub downgraded_at: Option<i64>,
    /// When to look at this customer again with no new ledger row (NULL: not before one).
    pub recheck_at: Option<i64>,
}

/// Inserts or replaces tiers, in statements of a few hundred rows. A row whose tier did
/// not move keeps its `changed_at` and `downgraded_at`.
pub async fn store_tiers(db: &Db, rows: &[TierRow]) -> Result<u64> {
    let backend = db.get_database_backend();
    let (moved, kept): (Vec<&TierRow>, Vec<&TierRow>) = rows.iter().partition(|r| r.changed);
    let mut n = 0;
    for (rows, update) in [
        (
            moved,
            "tier = excluded.tier, earned_12m = excluded.earned_12m, changed_at = excluded.changed_at, \
             downgraded_at = excluded.downgraded_at, recheck_at = excluded.recheck_at",
        ),
        (
            kept,
            "earned_12m = excluded.earned_12m, recheck_at = excluded.recheck_at",
        ),
    ] {
        for chunk in rows.chunks(super::CHUNK) {
            let mut sql = String::from(
                "INSERT INTO customer_tiers (customer_id, tier, earned_12m, changed_at, downgraded_at, recheck_at) VALUES ",
            );
            let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 6);
            for (i, r) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str("(?, ?, ?, ?, ?, ?)");
                values.push(r.customer_id.clone().into());
                values.push(r.tier.clone().into());
                values.push(r.earned_12m.into());
                values.push(r.changed_at.into());
                values.push(r.downgraded_at.into());
                values.push(r.recheck_at.into());
            }
            sql.push_str(" ON CONFLICT (customer_id) DO UPDATE SET ");
            sql.push_str(update);
            db.execute_raw(Statement::from_sql_and_values(
                backend,
                placeholder(backend, &sql),
                values,
            ))
            .await?;
            n += chunk.len() as u64;
        }
    }
    Ok(n)
}

/// A customer's balance at `now`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Balance {
    pub customer_id: String,
    /// Spendable points.
    pub balance: i64,
    /// Earned, not spendable yet.
    pub pending: i64,
    pub tier: Option<String>,
}

pub async fn balance(db: &Db, customer: &str, now: i64) -> Result<Balance> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            placeholder(
                backend,
                "SELECT CAST(COALESCE(SUM(CASE WHEN available_at <= ? OR points < 0 THEN points END), 0) AS BIGINT), \
                        CAST(COALESCE(SUM(CASE WHEN available_at > ? AND points > 0 THEN points END), 0) AS BIGINT), \
                        (SELECT tier FROM customer_tiers WHERE customer_id = ?) \
                 FROM point_ledger WHERE customer_id = ?",
            ),
            [now.into(), now.into(), customer.into(), customer.into()],
        ))
        .await?;
    let (balance, pending, tier) = match row {
        Some(r) => (
            r.try_get_by_index::<i64>(0)?,
            r.try_get_by_index::<i64>(1)?,
            r.try_get_by_index::<Option<String>>(2)?,
        ),
        None => (0, 0, None),
    };
    Ok(Balance {
        customer_id: customer.to_owned(),
        balance,
        pending,
        tier,
    })
}

/// One row of a customer's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryRow {
    pub kind: String,
    pub points: i64,
    pub key: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub available_at: String,
    pub reason: Option<String>,
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(|| t.to_string(), |d| d.to_rfc3339())
}

/// A customer's ledger, oldest first.
pub async fn history(db: &Db, customer: &str) -> Result<Vec<HistoryRow>> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            placeholder(
                backend,
                "SELECT kind, points, key, at, expires_at, available_at, reason FROM point_ledger \
                 WHERE customer_id = ? ORDER BY at, id",
            ),
            [customer.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(HistoryRow {
                kind: r.try_get_by_index(0)?,
                points: r.try_get_by_index(1)?,
                key: r.try_get_by_index(2)?,
                created_at: rfc3339(r.try_get_by_index(3)?),
                expires_at: r.try_get_by_index::<Option<i64>>(4)?.map(rfc3339),
                available_at: rfc3339(r.try_get_by_index(5)?),
                reason: r.try_get_by_index(6)?,
            })
        })
        .collect()
}

/// Whether a ledger row names the customer.
pub async fn in_ledger(db: &Db, customer: &str) -> Result<bool> {
    let backend = db.get_database_backend();
    Ok(db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            placeholder(
                backend,
                "SELECT 1 WHERE EXISTS (SELECT 1 FROM point_ledger WHERE customer_id = ?)",
            ),
            [customer.into()],
        ))
        .await?
        .is_some())
}

// ---- campaigns ----

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredCampaign {
    pub id: i64,
    pub name: String,
    pub state: String,
    pub source: String,
    pub spec: serde_json::Value,
    pub created_at: String,
    pub launched_at: Option<String>,
    pub run_id: Option<i64>,
    pub customers: Option<i64>,
    pub points: Option<i64>,
}

const CAMPAIGN_COLUMNS: &str =
    "id, name, state, source, spec, created_at, launched_at, run_id, customers, points";

fn campaign_of(r: &sea_orm::QueryResult) -> Result<StoredCampaign> {
    let spec: String = r.try_get_by_index(4)?;
    let ts = |i: usize| -> Result<Option<String>> {
        Ok(
            r.try_get_by_index::<Option<chrono::DateTime<chrono::Utc>>>(i)?
                .map(|t| t.to_rfc3339()),
        )
    };
    Ok(StoredCampaign {
        id: r.try_get_by_index(0)?,
        name: r.try_get_by_index(1)?,
        state: r.try_get_by_index(2)?,
        source: r.try_get_by_index(3)?,
        spec: serde_json::from_str(&spec).unwrap_or(serde_json::Value::Null),
        created_at: ts(5)?.unwrap_or_default(),
        launched_at: ts(6)?,
        run_id: r.try_get_by_index(7)?,
        customers: r.try_get_by_index(8)?,
        points: r.try_get_by_index(9)?,
    })
}

pub async fn create_campaign(
    db: &Db,
    name: &str,
    source: &str,
    spec: &serde_json::Value,
) -> Result<i64> {
    insert_campaign(db, name, source, spec).await
}

async fn insert_campaign(
    db: &impl ConnectionTrait,
    name: &str,
    source: &str,
    spec: &serde_json::Value,
) -> Result<i64> {
    let backend = db.get_database_backend();
    let sql = "INSERT INTO campaigns (name, state, source, spec, created_at) VALUES (?, 'draft', ?, ?, ?) RETURNING id";
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            placeholder(backend, sql),
            [
                name.into(),
                source.into(),
                spec.to_string().into(),
                crate::db::now().into(),
            ],
        ))
        .await?
        .ok_or_else(|| RepoError::Corrupt("campaign insert returned nothing".to_owned()))?;
    Ok(row.try_get_by_index(0)?)
}

/// The oldest campaign named `name`, or a new draft of it: `(id, created)`. Serialised per
/// name (an advisory lock on PostgreSQL, the write lock on SQLite), so two attempts making
/// the same month's campaign at once find one campaign, not two.
pub async fn find_or_create_campaign(
    db: &Db,
    name: &str,
    source: &str,
    spec: &serde_json::Value,
) -> Result<(i64, bool)> {
    let txn = begin_write(db).await?;
    let backend = txn.get_database_backend();
    if backend == sea_orm::DbBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "SELECT pg_advisory_xact_lock($1)",
            [name_lock(name).into()],
        ))
        .await?;
    }
    let found = txn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            placeholder(
                backend,
                "SELECT id FROM campaigns WHERE name = ? ORDER BY id LIMIT 1",
            ),
            [name.into()],
        ))
        .await?;
    if let Some(row) = found {
        let id = row.try_get_by_index(0)?;
        txn.commit().await?;
        return Ok((id, false));
    }
    let id = insert_campaign(&txn, name, source, spec).await?;
    txn.commit().await?;
    Ok((id, true))
}

/// A stable advisory-lock key for a campaign name (FNV-1a, so every daemon agrees).
fn name_lock(name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "patron campaign ".bytes().chain(name.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

pub async fn campaigns(db: &Db) -> Result<Vec<StoredCampaign>> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns ORDER BY id"),
        ))
        .await?;
    rows.iter().map(campaign_of).collect()
}

pub async fn campaign(db: &Db, id: i64) -> Result<StoredCampaign> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            placeholder(
                backend,
                &format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = ?"),
            ),
            [id.into()],
        ))
        .await?
        .ok_or_else(|| RepoError::not_found("campaign", id))?;
    campaign_of(&row)
}

/// Moves a campaign from one of `from` to `to`; false if it was in none of them.
pub async fn set_campaign_state(db: &Db, id: i64, from: &[&str], to: &str) -> Result<bool> {
    let backend = db.get_database_backend();
    let states = from
        .iter()
        .map(|s| format!("'{}'", s.replace('\'', "")))
        .collect::<Vec<_>>()
        .join(", ");
    let res = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            placeholder(
                backend,
                &format!("UPDATE campaigns SET state = ? WHERE id = ? AND state IN ({states})"),
            ),
            [to.into(), id.into()],
        ))
        .await?;
    Ok(res.rows_affected() > 0)
}

/// Links a campaign to the run launching it.
pub async fn set_campaign_run(db: &Db, id: i64, run_id: i64) -> Result {
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        placeholder(backend, "UPDATE campaigns SET run_id = ? WHERE id = ?"),
        [run_id.into(), id.into()],
    ))
    .await?;
    Ok(())
}

/// Rows per statement when storing a plan: 4 bound values each, well inside both backends'
/// limits on bound parameters.
const PLAN_ROWS_PER_STATEMENT: usize = 2_000;

/// Stores a campaign's allocation plan and moves the campaign from `draft` or `launching` to
/// `planned`, in one transaction. Returns false, storing nothing, when the campaign has left
/// those states (another attempt planned it first, or it was cancelled): a plan, once stored,
/// is never replaced, so every attempt pays the same customers the same points even if the
/// data behind the targeting changed in between. A plan is whole or absent, never partial.
pub async fn plan_once(db: &Db, id: i64, plan: &[crate::loyalty::Allocation]) -> Result<bool> {
    let txn = begin_write(db).await?;
    let backend = txn.get_database_backend();
    // First, so that on PostgreSQL the row lock queues a concurrent planner behind this one
    // (it then finds the state moved and stores nothing); SQLite has one writer anyway.
    let moved = txn
        .execute_raw(Statement::from_sql_and_values(
            backend,
            placeholder(
                backend,
                "UPDATE campaigns SET state = 'planned' WHERE id = ? AND state IN ('draft', 'launching')",
            ),
            [id.into()],
        ))
        .await?
        .rows_affected();
    if moved == 0 {
        txn.rollback().await?;
        return Ok(false);
    }
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        placeholder(
            backend,
            "DELETE FROM campaign_allocations WHERE campaign_id = ?",
        ),
        [id.into()],
    ))
    .await?;
    for chunk in plan.chunks(PLAN_ROWS_PER_STATEMENT) {
        let mut sql = String::with_capacity(80 + chunk.len() * 16);
        sql.push_str(
            "INSERT INTO campaign_allocations (campaign_id, customer_id, points, why) VALUES ",
        );
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 4);
        for (i, a) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str("(?, ?, ?, ?)");
            values.push(id.into());
            values.push(a.customer_id.clone().into());
            values.push(a.points.into());
            values.push(a.why.join("; ").into());
        }
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            placeholder(backend, &sql),
            values,
        ))
        .await?;
    }
    txn.commit().await?;
    Ok(true)
}

/// Pays a planned campaign in one statement: one earn row per allocation, keyed
/// `campaign:ID:CUSTOMER`. Returns the rows that were new. A campaign that is not planned
/// (its plan may be missing or partial) pays nothing.
pub async fn pay_plan(
    db: &Db,
    id: i64,
    name: &str,
    at: i64,
    expires_at: Option<i64>,
    run_id: i64,
) -> Result<u64> {
    let backend = db.get_database_backend();
    let expires = expires_at.map_or("NULL".to_owned(), |e| e.to_string());
    let sql = format!(
        "INSERT INTO point_ledger (key, customer_id, kind, points, at, available_at, expires_at, campaign_id, reason, run_id) \
         SELECT 'campaign:{id}:' || customer_id, customer_id, 'earn', points, {at}, {at}, {expires}, {id}, ?, {run_id} \
         FROM campaign_allocations WHERE campaign_id = {id} \
         AND EXISTS (SELECT 1 FROM campaigns WHERE id = {id} AND state IN ('planned', 'launched')) \
         ON CONFLICT (key) DO NOTHING"
    );
    let res = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            placeholder(backend, &sql),
            [format!("campaign {name}").into()],
        ))
        .await?;
    Ok(res.rows_affected())
}

/// `(customers, points)` of a campaign: from the ledger once paid.
pub async fn paid(db: &Db, id: i64) -> Result<(i64, i64)> {
    totals(db, &format!("SELECT COUNT(*), CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM point_ledger WHERE campaign_id = {id}")).await
}

/// `(customers, points)` of a campaign's plan.
pub async fn planned(db: &Db, id: i64) -> Result<(i64, i64)> {
    totals(db, &format!("SELECT COUNT(*), CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM campaign_allocations WHERE campaign_id = {id}")).await
}

async fn totals(db: &Db, sql: &str) -> Result<(i64, i64)> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .await?;
    Ok(match row {
        Some(r) => (r.try_get_by_index(0)?, r.try_get_by_index(1)?),
        None => (0, 0),
    })
}

/// Marks a planned campaign launched with what it paid; false if it was not `planned` (an
/// attempt running alongside marked it first).
pub async fn finish_campaign(db: &Db, id: i64, customers: i64, points: i64) -> Result<bool> {
    let backend = db.get_database_backend();
    let res = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            placeholder(
                backend,
                "UPDATE campaigns SET state = 'launched', launched_at = ?, customers = ?, points = ? \
                 WHERE id = ? AND state = 'planned'",
            ),
            [crate::db::now().into(), customers.into(), points.into(), id.into()],
        ))
        .await?;
    Ok(res.rows_affected() > 0)
}

/// What targeting knows of every customer (latest segment, tier, scores and features,
/// region, paid spend inside the campaign's window), as far as `campaign` needs it.
/// What the lake knows for targeting: every clean customer's region, the latest features
/// (`recency_days`, `mean_sentiment`, `frequency`) and paid spend in the campaign's window.
#[derive(Debug, Clone, Default)]
pub struct LakeFacts {
    pub customers: Vec<(String, Option<String>)>,
    pub features: Vec<(String, Option<f64>, Option<f64>, i64)>,
    pub spend: Vec<(String, i64)>,
    /// The newest churn and intent probabilities: `(customer_id, churn, intent)`.
    pub scores: Vec<(String, Option<f64>, Option<f64>)>,
    /// Each customer's segment label in the newest profiles.
    pub segments: HashMap<String, String>,
}

/// Which lake facts `campaign` needs.
#[derive(Debug, Clone, Copy)]
pub struct Needs {
    pub features: bool,
    pub spend: bool,
    pub scores: bool,
    pub segments: bool,
}

pub fn needs_facts(campaign: &crate::loyalty::Campaign) -> Needs {
    let target = &campaign.target;
    Needs {
        features: target.days_since_last_order.is_some() || target.mean_sentiment.is_some(),
        spend: matches!(campaign.reward, crate::loyalty::Reward::Multiplier(_)),
        scores: target.churn_probability.is_some() || target.intent_probability.is_some(),
        segments: !target.segments.is_empty(),
    }
}

pub async fn candidates(
    db: &Db,
    campaign: &crate::loyalty::Campaign,
    facts: LakeFacts,
) -> Result<Vec<Candidate>> {
    let target = &campaign.target;
    let segments = !target.segments.is_empty();
    let tiers = !target.tiers.is_empty();
    let mut by_id: HashMap<String, Candidate> = HashMap::new();
    for (id, region) in facts.customers {
        by_id.insert(
            id.clone(),
            Candidate {
                customer_id: id,
                region,
                ..Candidate::default()
            },
        );
    }
    if segments {
        for (id, s) in facts.segments {
            if let Some(c) = by_id.get_mut(&id) {
                c.segment = Some(s);
            }
        }
    }
    if tiers {
        bulk::fetch_each::<(String, String)>(
            db,
            "SELECT customer_id, tier FROM customer_tiers",
            None,
            |(id, t)| {
                if let Some(c) = by_id.get_mut(&id) {
                    c.tier = Some(t);
                }
            },
        )
        .await
        .map_err(corrupt("customer_tiers"))?;
    }
    for (id, churn, intent) in facts.scores {
        if let Some(c) = by_id.get_mut(&id) {
            c.churn = churn;
            c.intent = intent;
        }
    }
    for (id, recency, sentiment, frequency) in facts.features {
        if let Some(c) = by_id.get_mut(&id) {
            // Recency means nothing for a customer who never bought.
            c.days_since_last_order = recency.filter(|_| frequency > 0);
            c.mean_sentiment = sentiment;
        }
    }
    for (id, spend) in facts.spend {
        if let Some(c) = by_id.get_mut(&id) {
            c.window_spend_cents = spend;
        }
    }
    Ok(by_id.into_values().collect())
}

/// Sums `points` per kind over the whole ledger (for `patron stats`-like summaries).
pub async fn totals_by_kind(db: &Db) -> Result<Vec<(String, i64, i64)>> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT kind, COUNT(*), CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM point_ledger GROUP BY kind ORDER BY kind",
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get_by_index(0)?,
                r.try_get_by_index(1)?,
                r.try_get_by_index(2)?,
            ))
        })
        .collect()
}
