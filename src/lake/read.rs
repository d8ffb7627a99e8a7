//! The thin DataFusion queries the analytics jobs read raw data through (DESIGN.md
//! section 5): the same shapes they read from SQL before, now from the lake's clean views.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use datafusion::{
    arrow::{
        array::{Array, AsArray, StringBuilder},
        datatypes::{DataType, Field, Int64Type, Schema},
        record_batch::RecordBatch,
    },
    datasource::MemTable,
    prelude::SessionContext,
};

use futures::StreamExt;

use super::{Dataset, Lake, Result, arrays, collect, literal_list, only};
use crate::db::repo::recommend::{Dealings, SplitDealings};

/// Registers `ids` as a one-column table `name(id)`.
pub fn register_ids(ctx: &SessionContext, name: &str, ids: &[String]) -> Result {
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false)]));
    let mut b = StringBuilder::with_capacity(ids.len(), ids.len() * 12);
    for id in ids {
        b.append_value(id);
    }
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(b.finish())])?;
    ctx.register_table(
        name,
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
    )?;
    Ok(())
}

/// Customers with a paid, clean order line in `[from, to)` (epoch seconds).
pub async fn buyers_between(lake: &Lake, from: i64, to: i64) -> Result<HashSet<String>> {
    let mut out = HashSet::new();
    for b in lake
        .query(&format!(
            "SELECT DISTINCT customer_id FROM clean_orders WHERE status = 'paid' \
             AND CAST(ordered_at AS BIGINT) >= {from} AND CAST(ordered_at AS BIGINT) < {to}"
        ))
        .await?
    {
        out.extend(arrays::strings(&b, 0)?);
    }
    Ok(out)
}

/// Paid purchases in `[from, to)`: `(customer, product)` pairs, distinct.
pub async fn purchases_between(lake: &Lake, from: i64, to: i64) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for b in lake
        .query(&format!(
            "SELECT DISTINCT customer_id, product_id FROM clean_orders WHERE status = 'paid' \
             AND CAST(ordered_at AS BIGINT) >= {from} AND CAST(ordered_at AS BIGINT) < {to}"
        ))
        .await?
    {
        out.extend(
            arrays::strings(&b, 0)?
                .into_iter()
                .zip(arrays::strings(&b, 1)?),
        );
    }
    Ok(out)
}

/// Every clean customer, by id.
pub async fn customer_ids(lake: &Lake) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for b in lake
        .query("SELECT customer_id FROM clean_customers ORDER BY customer_id")
        .await?
    {
        out.extend(arrays::strings(&b, 0)?);
    }
    Ok(out)
}

/// Every clean customer's region.
pub async fn customer_regions(lake: &Lake) -> Result<Vec<(String, Option<String>)>> {
    let mut out = Vec::new();
    for b in lake
        .query("SELECT customer_id, region FROM clean_customers")
        .await?
    {
        out.extend(
            arrays::strings(&b, 0)?
                .into_iter()
                .zip(arrays::texts(&b, 1)?),
        );
    }
    Ok(out)
}

/// Whether the lake knows the customer: as a customer row or from an order.
pub async fn customer_known(lake: &Lake, customer: &str) -> Result<bool> {
    let id = literal_list([customer]);
    let n = arrays::single_int(
        &lake
            .query(&format!(
                "SELECT (SELECT COUNT(*) FROM customers WHERE customer_id = {id}) + \
                        (SELECT COUNT(*) FROM orders WHERE customer_id = {id})"
            ))
            .await?,
    )?;
    Ok(n > 0)
}

/// Product text for content similarity: `(product_id, title + description + category)`.
pub async fn product_texts(lake: &Lake) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for b in lake
        .query(
            "SELECT product_id, title, description, category FROM clean_products \
             ORDER BY product_id",
        )
        .await?
    {
        let (id, t, d, c) = (
            arrays::strings(&b, 0)?,
            arrays::strings(&b, 1)?,
            arrays::strings(&b, 2)?,
            arrays::strings(&b, 3)?,
        );
        for (((id, t), d), c) in id.into_iter().zip(t).zip(d).zip(c) {
            out.push((id, format!("{t} {d} {c}")));
        }
    }
    Ok(out)
}

fn add_kind<Id>(d: &mut Dealings<Id>, kind: &str, n: u32) {
    match kind {
        "cart" => d.carts += n,
        "click" => d.clicks += n,
        "rec_click" => d.rec_clicks += n,
        _ => d.views += n,
    }
}

fn clamp(n: i64) -> u32 {
    n.clamp(0, i64::from(u32::MAX)) as u32
}

/// Every customer's dealings with products before `cutoff` (for `customers`, a literal
/// list, or everyone): purchases from paid clean order lines, the rest from clean events.
pub async fn dealings_of(
    lake: &Lake,
    cutoff: i64,
    customers: Option<&str>,
) -> Result<Vec<Dealings>> {
    let only = only(customers, "customer_id");
    let ctx = lake.session().await?;
    let mut by_pair: HashMap<(String, String), Dealings> = HashMap::new();
    for b in collect(
        &ctx,
        &format!(
            // Per order first, then per pair: a plain count instead of a distinct one (whose
            // per-group hash sets cost seconds and gigabytes at this grain).
            "SELECT customer_id, product_id, COUNT(*), MAX(last) FROM \
               (SELECT customer_id, product_id, order_id, MAX(CAST(ordered_at AS BIGINT)) AS last \
                FROM clean_orders WHERE status = 'paid' AND CAST(ordered_at AS BIGINT) < {cutoff}{only} \
                GROUP BY customer_id, product_id, order_id) \
             GROUP BY customer_id, product_id"
        ),
    )
    .await?
    {
        let (c, p, n, last) = (
            arrays::strings(&b, 0)?,
            arrays::strings(&b, 1)?,
            arrays::ints_or_zero(&b, 2)?,
            arrays::ints_or_zero(&b, 3)?,
        );
        for (((c, p), n), last) in c.into_iter().zip(p).zip(n).zip(last) {
            let d = by_pair.entry((c, p)).or_default();
            d.purchases = clamp(n);
            d.last_at = d.last_at.max(last);
        }
    }
    for b in collect(
        &ctx,
        &format!(
            "SELECT customer_id, product_id, kind, COUNT(*), MAX(CAST(occurred_at AS BIGINT)) \
             FROM clean_events WHERE product_id IS NOT NULL AND CAST(occurred_at AS BIGINT) < {cutoff}{only} \
             GROUP BY customer_id, product_id, kind"
        ),
    )
    .await?
    {
        let (c, p, k, n, last) = (
            arrays::strings(&b, 0)?,
            arrays::strings(&b, 1)?,
            arrays::strings(&b, 2)?,
            arrays::ints_or_zero(&b, 3)?,
            arrays::ints_or_zero(&b, 4)?,
        );
        for ((((c, p), k), n), last) in c.into_iter().zip(p).zip(k).zip(n).zip(last) {
            let d = by_pair.entry((c, p)).or_default();
            add_kind(d, &k, clamp(n));
            d.last_at = d.last_at.max(last);
        }
    }
    Ok(by_pair
        .into_iter()
        .map(|((customer, product), d)| Dealings {
            customer,
            product,
            ..d
        })
        .collect())
}

/// Dealings before `split` and before `end`, and the pairs bought in `[split, end)`, from
/// one grouped pass over orders and one over events (the `recommend` job's time split).
/// Ids are mapped to dense ones; rows of unknown customers or products are left out.
pub async fn dealings_split(
    lake: &Lake,
    split: i64,
    end: i64,
    dense: Dense,
) -> Result<SplitDealings> {
    let orders = format!(
        // Per order first (its lines before and after the split), then per pair: plain
        // counts instead of distinct ones.
        "SELECT customer_id, product_id, \
           SUM(CASE WHEN first < {split} THEN 1 ELSE 0 END), MAX(last_early), \
           COUNT(*), MAX(last), SUM(later) \
         FROM (SELECT customer_id, product_id, order_id, MIN(t) AS first, MAX(t) AS last, \
                 MAX(CASE WHEN t < {split} THEN t END) AS last_early, \
                 MAX(CASE WHEN t >= {split} THEN 1 ELSE 0 END) AS later \
               FROM (SELECT customer_id, product_id, order_id, CAST(ordered_at AS BIGINT) AS t \
                     FROM clean_orders WHERE status = 'paid' AND CAST(ordered_at AS BIGINT) < {end}) \
               GROUP BY customer_id, product_id, order_id) \
         GROUP BY customer_id, product_id"
    );
    let events = format!(
        "SELECT customer_id, product_id, kind, \
           SUM(CASE WHEN t < {split} THEN 1 ELSE 0 END), \
           MAX(CASE WHEN t < {split} THEN t END), COUNT(*), MAX(t) \
         FROM (SELECT customer_id, product_id, kind, CAST(occurred_at AS BIGINT) AS t \
               FROM clean_events WHERE product_id IS NOT NULL AND CAST(occurred_at AS BIGINT) < {end}) \
         GROUP BY customer_id, product_id, kind"
    );
    // The queries' batches stream to a blocking thread that folds them: at scale that is
    // twenty million rows of id lookups and a sort, too long to hold an async worker.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(bool, RecordBatch)>(2);
    let folder = tokio::task::spawn_blocking(move || -> Result<SplitDealings> {
        let mut split_dealings = SplitDealings {
            before_split: Vec::new(),
            before_end: Vec::new(),
            bought_after_split: Vec::new(),
        };
        while let Some((is_order, b)) = rx.blocking_recv() {
            if is_order {
                fold_orders(&b, &dense, &mut split_dealings)?;
            } else {
                fold_events(&b, &dense, &mut split_dealings)?;
            }
        }
        split_dealings.before_split = merge_pairs(split_dealings.before_split);
        split_dealings.before_end = merge_pairs(split_dealings.before_end);
        Ok(split_dealings)
    });
    let ctx = lake.session().await?;
    'feed: for (is_order, sql) in [(true, orders), (false, events)] {
        let mut stream = ctx.sql(&sql).await?.execute_stream().await?;
        while let Some(b) = stream.next().await {
            if tx.send((is_order, b?)).await.is_err() {
                // The folder stopped on an error: it is returned below.
                break 'feed;
            }
        }
    }
    drop(tx);
    folder
        .await
        .map_err(|e| super::LakeError::Other(format!("dealings thread failed: {e}")))?
}

/// Maps a (customer, product) pair of ids to dense ones; `None` for an unknown one.
pub type Dense = Arc<dyn Fn(&str, &str) -> Option<(u32, u32)> + Send + Sync>;

/// Adds one batch of the orders query (a pair's purchases before the split and before the
/// end) to `out`, one entry per row; pairs are merged at the end.
fn fold_orders(b: &RecordBatch, dense: &Dense, out: &mut SplitDealings) -> Result {
    let (c, p) = (arrays::utf8(b, 0)?, arrays::utf8(b, 1)?);
    let (c, p) = (c.as_string::<i32>(), p.as_string::<i32>());
    let cols: Vec<_> = (2..7).map(|i| arrays::int64(b, i)).collect::<Result<_>>()?;
    let [n_early, last_early, n, last, n_later] =
        [0, 1, 2, 3, 4].map(|i| cols[i].as_primitive::<Int64Type>());
    for r in 0..b.num_rows() {
        let Some((customer, product)) = dense(c.value(r), p.value(r)) else {
            continue;
        };
        let pair = Dealings {
            customer,
            product,
            ..Dealings::default()
        };
        if n_later.value(r) > 0 {
            out.bought_after_split.push((customer, product));
        }
        if n_early.value(r) > 0 {
            out.before_split.push(Dealings {
                purchases: clamp(n_early.value(r)),
                last_at: if last_early.is_valid(r) {
                    last_early.value(r)
                } else {
                    0
                },
                ..pair.clone()
            });
        }
        out.before_end.push(Dealings {
            purchases: clamp(n.value(r)),
            last_at: last.value(r),
            ..pair
        });
    }
    Ok(())
}

/// As [`fold_orders`], for a batch of the events query (a pair's events of one kind).
fn fold_events(b: &RecordBatch, dense: &Dense, out: &mut SplitDealings) -> Result {
    let (c, p, k) = (
        arrays::utf8(b, 0)?,
        arrays::utf8(b, 1)?,
        arrays::utf8(b, 2)?,
    );
    let (c, p, k) = (
        c.as_string::<i32>(),
        p.as_string::<i32>(),
        k.as_string::<i32>(),
    );
    let cols: Vec<_> = (3..7).map(|i| arrays::int64(b, i)).collect::<Result<_>>()?;
    let [n_early, last_early, n, last] = [0, 1, 2, 3].map(|i| cols[i].as_primitive::<Int64Type>());
    for r in 0..b.num_rows() {
        let Some((customer, product)) = dense(c.value(r), p.value(r)) else {
            continue;
        };
        let pair = Dealings {
            customer,
            product,
            ..Dealings::default()
        };
        if n_early.value(r) > 0 {
            let mut d = pair.clone();
            add_kind(&mut d, k.value(r), clamp(n_early.value(r)));
            d.last_at = if last_early.is_valid(r) {
                last_early.value(r)
            } else {
                0
            };
            out.before_split.push(d);
        }
        let mut d = pair;
        add_kind(&mut d, k.value(r), clamp(n.value(r)));
        d.last_at = last.value(r);
        out.before_end.push(d);
    }
    Ok(())
}

/// Dealings summed per (customer, product), sorted by them; the last dealing is the latest.
fn merge_pairs(mut rows: Vec<Dealings<u32>>) -> Vec<Dealings<u32>> {
    rows.sort_unstable_by_key(|d| (d.customer, d.product));
    let mut out: Vec<Dealings<u32>> = Vec::with_capacity(rows.len());
    for d in rows {
        match out.last_mut() {
            Some(m) if (m.customer, m.product) == (d.customer, d.product) => {
                m.purchases += d.purchases;
                m.carts += d.carts;
                m.clicks += d.clicks;
                m.rec_clicks += d.rec_clicks;
                m.views += d.views;
                m.last_at = m.last_at.max(d.last_at);
            }
            _ => out.push(d),
        }
    }
    out.shrink_to_fit();
    out
}

/// Rows that loads `(from, to]` (source ids) added: orders, events, `rec_click` events,
/// reviews, and the customers they name.
#[derive(Debug, Clone, Default)]
pub struct Arrived {
    pub orders: u64,
    pub events: u64,
    pub rec_clicks: u64,
    pub reviews: u64,
    pub customers: Vec<String>,
}

pub async fn arrived(lake: &Lake, from: i64, to: i64) -> Result<Arrived> {
    let ctx = lake.session().await?;
    let range = format!("_load > {from} AND _load <= {to}");
    let count = |sql: String| {
        let ctx = &ctx;
        async move {
            Ok::<_, super::LakeError>(arrays::single_int(&collect(ctx, &sql).await?)?.max(0) as u64)
        }
    };
    let mut a = Arrived {
        orders: count(format!("SELECT COUNT(*) FROM orders WHERE {range}")).await?,
        events: count(format!("SELECT COUNT(*) FROM events WHERE {range}")).await?,
        rec_clicks: count(format!(
            "SELECT COUNT(*) FROM events WHERE {range} AND kind = 'rec_click'"
        ))
        .await?,
        reviews: count(format!("SELECT COUNT(*) FROM reviews WHERE {range}")).await?,
        customers: Vec::new(),
    };
    for b in collect(
        &ctx,
        &format!(
            "SELECT customer_id FROM orders WHERE {range} \
             UNION SELECT customer_id FROM events WHERE {range} \
             UNION SELECT customer_id FROM reviews WHERE {range} ORDER BY customer_id"
        ),
    )
    .await?
    {
        a.customers.extend(arrays::strings(&b, 0)?);
    }
    Ok(a)
}

/// Which orders a points pass looks at.
pub enum Orders<'a> {
    /// Every order but these (the ones that earned).
    AllBut(&'a [String]),
    /// Only these.
    Only(&'a [String]),
}

/// An order that can earn: `(order_id, customer_id, paid cents, first line's time)`.
pub type Payable = (String, String, i64, i64);

/// Orders with clean paid lines before `before`, of `orders`, a batch at a time: a first
/// pass at a million customers finds millions, too many to hold at once (and, grouped and
/// sorted whole, more than the lake's memory limit).
pub struct PayableOrders {
    stream: datafusion::execution::SendableRecordBatchStream,
    // The session that runs the query lives as long as its stream.
    _ctx: SessionContext,
}

impl PayableOrders {
    /// The next batch (unordered), or `None` at the end.
    pub async fn next(&mut self) -> Result<Option<Vec<Payable>>> {
        let Some(b) = self.stream.next().await else {
            return Ok(None);
        };
        let b = b?;
        let (o, c, p, t) = (
            arrays::strings(&b, 0)?,
            arrays::strings(&b, 1)?,
            arrays::ints_or_zero(&b, 2)?,
            arrays::ints_or_zero(&b, 3)?,
        );
        Ok(Some(
            o.into_iter()
                .zip(c)
                .zip(p)
                .zip(t)
                .map(|(((o, c), p), t)| (o, c, p, t))
                .collect(),
        ))
    }
}

pub async fn unearned_orders(
    lake: &Lake,
    before: i64,
    orders: Orders<'_>,
) -> Result<PayableOrders> {
    let ctx = lake.session().await?;
    let (orders, join) = match orders {
        Orders::AllBut(earned) => {
            register_ids(&ctx, "earned", earned)?;
            (
                "clean_orders",
                "LEFT ANTI JOIN earned e ON e.id = o.order_id",
            )
        }
        Orders::Only(among) => {
            register_ids(&ctx, "among", among)?;
            lake.register_subset(&ctx, "among_orders", Dataset::Orders, "among", true)
                .await?;
            ("among_orders", "")
        }
    };
    // Grouped by order alone (one key, not two: half the hash table); an order's lines
    // share its customer.
    let stream = ctx
        .sql(&format!(
            "SELECT o.order_id, MIN(o.customer_id), SUM(o.quantity * o.unit_price_cents), \
               MIN(CAST(o.ordered_at AS BIGINT)) \
             FROM {orders} o {join} \
             WHERE o.status = 'paid' AND CAST(o.ordered_at AS BIGINT) < {before} \
             GROUP BY o.order_id"
        ))
        .await?
        .execute_stream()
        .await?;
    Ok(PayableOrders { stream, _ctx: ctx })
}

/// The orders whose earning or reversal may have changed since a points pass that covered
/// the loads up to `load` and the orders timed before `since`, now that time is `before`:
/// those with a line in a later load (a new order, a status change), those of customers
/// loaded since (a signup date moves `clean`'s marks), those timed in `[since, before)`,
/// and every order `clean` marks (marks are recomputed whole).
pub async fn orders_to_recheck(
    lake: &Lake,
    load: i64,
    since: i64,
    before: i64,
) -> Result<Vec<String>> {
    let ctx = lake.session().await?;
    // The files' own rows (timestamps in milliseconds): `_load` filters skip whole row
    // groups by their statistics, and no newest-row window runs.
    let (since_ms, before_ms) = (since.saturating_mul(1000), before.saturating_mul(1000));
    let mut out = Vec::new();
    for b in collect(
        &ctx,
        &format!(
            "SELECT order_id FROM orders_files WHERE _load > {load} \
             UNION SELECT order_id FROM orders_files \
               WHERE CAST(ordered_at AS BIGINT) >= {since_ms} AND CAST(ordered_at AS BIGINT) < {before_ms} \
             UNION SELECT o.order_id FROM orders_files o \
               JOIN (SELECT DISTINCT customer_id FROM customers_files WHERE _load > {load}) c \
               ON c.customer_id = o.customer_id \
             UNION SELECT id FROM anomalies WHERE dataset = 'orders'"
        ),
    )
    .await?
    {
        out.extend(arrays::strings(&b, 0)?);
    }
    out.sort_unstable();
    Ok(out)
}

/// Orders (of `among`) with a line that is no longer paid, or anomalous, with the cents
/// of their lines still paid and clean.
pub async fn changed_orders(lake: &Lake, among: &[String]) -> Result<Vec<(String, i64)>> {
    let ctx = lake.session().await?;
    register_ids(&ctx, "among", among)?;
    lake.register_subset(&ctx, "among_orders", Dataset::Orders, "among", false)
        .await?;
    let mut out = Vec::new();
    for b in collect(
        &ctx,
        "SELECT o.order_id, \
           SUM(CASE WHEN o.status = 'paid' AND a.id IS NULL THEN o.quantity * o.unit_price_cents ELSE 0 END) \
         FROM among_orders o \
         LEFT JOIN (SELECT id, line_key FROM anomalies WHERE dataset = 'orders') a \
           ON a.id = o.order_id AND a.line_key = o.line_key \
         GROUP BY o.order_id \
         HAVING SUM(CASE WHEN o.status <> 'paid' OR a.id IS NOT NULL THEN 1 ELSE 0 END) > 0",
    )
    .await?
    {
        out.extend(arrays::strings(&b, 0)?.into_iter().zip(arrays::ints_or_zero(&b, 1)?));
    }
    Ok(out)
}

/// Paid clean spend per customer in `[from, to)`, in cents.
pub async fn spend_between(lake: &Lake, from: i64, to: i64) -> Result<Vec<(String, i64)>> {
    let mut out = Vec::new();
    for b in lake
        .query(&format!(
            "SELECT customer_id, SUM(quantity * unit_price_cents) FROM clean_orders \
             WHERE status = 'paid' AND CAST(ordered_at AS BIGINT) >= {from} \
             AND CAST(ordered_at AS BIGINT) < {to} GROUP BY customer_id"
        ))
        .await?
    {
        out.extend(
            arrays::strings(&b, 0)?
                .into_iter()
                .zip(arrays::ints_or_zero(&b, 1)?),
        );
    }
    Ok(out)
}

/// Clean reviews with text, the classifier's training material.
pub async fn count_rated_reviews(lake: &Lake) -> Result<u64> {
    Ok(arrays::single_int(
        &lake
            .query("SELECT COUNT(*) FROM clean_reviews WHERE text <> ''")
            .await?,
    )?
    .max(0) as u64)
}

/// Up to `limit` clean rated reviews with text (the first by id): `(text, rating)`.
pub async fn rated_reviews(lake: &Lake, limit: u64) -> Result<Vec<(String, u8)>> {
    let mut out = Vec::new();
    for b in lake
        .query(&format!(
            "SELECT text, rating FROM clean_reviews WHERE text <> '' ORDER BY review_id LIMIT {limit}"
        ))
        .await?
    {
        out.extend(
            arrays::strings(&b, 0)?
                .into_iter()
                .zip(arrays::ints_or_zero(&b, 1)?)
                .map(|(t, r)| (t, r.clamp(1, 5) as u8)),
        );
    }
    Ok(out)
}

/// Per product over clean scored reviews: `(product_id, reviews, mean score, mean rating)`.
pub async fn product_sentiment(lake: &Lake) -> Result<Vec<(String, i64, f64, f64)>> {
    let mut out = Vec::new();
    for b in lake
        .query(
            "SELECT r.product_id, COUNT(*), AVG(s.score), AVG(CAST(r.rating AS DOUBLE)) \
             FROM clean_reviews r JOIN review_sentiment s ON s.review_id = r.review_id \
             GROUP BY r.product_id",
        )
        .await?
    {
        let (p, n, s, r) = (
            arrays::strings(&b, 0)?,
            arrays::ints_or_zero(&b, 1)?,
            arrays::floats(&b, 2)?,
            arrays::floats(&b, 3)?,
        );
        for (((p, n), s), r) in p.into_iter().zip(n).zip(s).zip(r) {
            out.push((p, n, s.unwrap_or(0.0), r.unwrap_or(0.0)));
        }
    }
    Ok(out)
}

/// For recommendations `(customer, product)`: which were clicked (a `rec_click` on the
/// product) and which bought (a paid line of it at or after a click).
pub async fn click_through(lake: &Lake, pairs: &[(String, String)]) -> Result<(i64, i64)> {
    let ctx = lake.session().await?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("product_id", DataType::Utf8, false),
    ]));
    let mut c = StringBuilder::new();
    let mut p = StringBuilder::new();
    for (customer, product) in pairs {
        c.append_value(customer);
        p.append_value(product);
    }
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(c.finish()), Arc::new(p.finish())],
    )?;
    ctx.register_table(
        "recommended",
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
    )?;
    let sql = "SELECT COUNT(DISTINCT k), COUNT(DISTINCT CASE WHEN o.customer_id IS NOT NULL THEN k END) FROM \
         (SELECT e.customer_id, e.product_id, e.occurred_at, \
            concat(e.customer_id, '|', e.product_id) AS k \
          FROM events e JOIN recommended r ON r.customer_id = e.customer_id AND r.product_id = e.product_id \
          WHERE e.kind = 'rec_click') c \
         LEFT JOIN orders o ON o.customer_id = c.customer_id AND o.product_id = c.product_id \
           AND o.status = 'paid' AND o.ordered_at >= c.occurred_at";
    let batches = collect(&ctx, sql).await?;
    let mut clicked = 0;
    let mut bought = 0;
    for b in &batches {
        if b.num_rows() > 0 {
            clicked = arrays::ints_or_zero(b, 0)?[0];
            bought = arrays::ints_or_zero(b, 1)?[0];
        }
    }
    Ok((clicked, bought))
}

/// Row counts of the raw datasets (newest row per key), marks by dataset and reason, and
/// customers with features per as-of date: what `patron stats` prints.
pub async fn counts(
    lake: &Lake,
) -> Result<(Vec<(String, i64)>, Vec<(String, i64)>, Vec<(String, i64)>)> {
    let ctx = lake.session().await?;
    let mut rows = Vec::new();
    for d in [
        Dataset::Customers,
        Dataset::Products,
        Dataset::Orders,
        Dataset::Events,
        Dataset::Reviews,
    ] {
        let n = arrays::single_int(&collect(&ctx, &format!("SELECT COUNT(*) FROM {d}")).await?)?;
        rows.push((d.name().to_owned(), n));
    }
    let mut anomalies = Vec::new();
    for b in collect(
        &ctx,
        "SELECT dataset || ': ' || reason, COUNT(*) FROM anomalies GROUP BY dataset, reason",
    )
    .await?
    {
        anomalies.extend(
            arrays::strings(&b, 0)?
                .into_iter()
                .zip(arrays::ints_or_zero(&b, 1)?),
        );
    }
    let mut features = Vec::new();
    for b in collect(&ctx, "SELECT as_of, COUNT(*) FROM features GROUP BY as_of").await? {
        features.extend(
            arrays::strings(&b, 0)?
                .into_iter()
                .zip(arrays::ints_or_zero(&b, 1)?),
        );
    }
    Ok((rows, anomalies, features))
}

/// `Ok` if the customer is known: a ledger row names them, or the lake has a customer row
/// or an order of theirs (an order export can arrive before its customers). Without a lake
/// the ledger alone decides.
pub async fn known_customer(
    db: &crate::db::Db,
    lake: Option<&Lake>,
    customer: &str,
) -> Result<(), crate::db::RepoError> {
    use crate::db::{RepoError, repo};
    if repo::loyalty::in_ledger(db, customer).await? {
        return Ok(());
    }
    if let Some(lake) = lake
        && customer_known(lake, customer)
            .await
            .map_err(|e| RepoError::Corrupt(format!("reading the lake: {e}")))?
    {
        return Ok(());
    }
    Err(RepoError::not_found("customer", customer))
}

/// Everything targeting knows of every customer for `campaign`: the lake's facts joined
/// with the control database's segments and tiers.
pub async fn candidates(
    lake: &Lake,
    campaign: &crate::loyalty::Campaign,
) -> Result<Vec<crate::loyalty::Candidate>> {
    use crate::db::repo::loyalty::{self, LakeFacts};
    let needs = loyalty::needs_facts(campaign);
    let mut facts = LakeFacts {
        customers: customer_regions(lake).await?,
        ..LakeFacts::default()
    };
    if needs.features
        && let Some(as_of) = super::features::latest(lake).await?
    {
        let rows = lake
            .query(&format!(
                "SELECT customer_id, recency_days, mean_sentiment, frequency FROM features \
                 WHERE as_of = '{}'",
                super::features::date_text(as_of)
            ))
            .await?;
        for b in &rows {
            let (id, r, s, f) = (
                arrays::strings(b, 0)?,
                arrays::floats(b, 1)?,
                arrays::floats(b, 2)?,
                arrays::ints_or_zero(b, 3)?,
            );
            for (((id, r), s), f) in id.into_iter().zip(r).zip(s).zip(f) {
                facts.features.push((id, r, s, f));
            }
        }
    }
    if needs.scores {
        facts.scores = super::scores::latest(lake)
            .await?
            .into_iter()
            .map(|(id, churn, intent, _, _)| (id, churn, intent))
            .collect();
    }
    if needs.segments {
        facts.segments = super::profiles::segments(lake, None).await?;
    }
    if needs.spend {
        let (from, to) = campaign.window();
        facts.spend = spend_between(lake, from, to).await?;
    }
    Ok(loyalty::candidates(lake.db(), campaign, facts).await?)
}

/// What `patron stats` and `patron demo` print: the lake's counts and the quarantine.
pub async fn stats(lake: &Lake) -> Result<crate::db::repo::sources::DataStats> {
    let (rows, anomalies, features) = counts(lake).await?;
    Ok(crate::db::repo::sources::DataStats {
        rows: rows.into_iter().collect(),
        quarantined: crate::db::repo::sources::quarantine_counts(lake.db()).await?,
        anomalies: anomalies.into_iter().collect(),
        features: features.into_iter().collect(),
    })
}
