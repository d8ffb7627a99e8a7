//! The `features` dataset: customer features per as-of date, partitioned by date. Totals
//! for several cut-offs come from one grouped pass over each raw dataset (conditional
//! aggregates per cut-off), so retrain's past dates cost no extra scan; the arithmetic is
//! `analytics::features`.

use std::{collections::HashMap, sync::Arc};

use chrono::NaiveDate;
use datafusion::{
    arrow::{
        array::{ArrayRef, AsArray, Float64Builder, Int64Builder, StringArray, StringBuilder},
        compute::cast,
        datatypes::DataType,
        record_batch::RecordBatch,
    },
    prelude::SessionContext,
};
use futures::StreamExt;

use super::{
    Dataset, Lake, LakeError, Result, arrays, collect,
    schema::FEATURE_COLUMNS,
    write::{FileWriter, new_name},
};
use crate::{
    analytics::features::{self as compute, Browsing, Features, OrderLines, Ordering, Reviewing},
    db::{
        entities::LakeCommitKind,
        repo::lake::{self as catalog, Commit, Removes},
    },
    pipeline::Shard,
};

/// Feature columns used by the churn and intent models (a missing mean rating or sentiment
/// reads as 0 with a 0/1 flag beside it).
pub const MODEL_COLUMNS: [&str; 14] = [
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
    "avg_basket",
    "distinct_products",
    "cancel_rate",
    "n_events",
    "browse_seconds",
    "n_reviews",
    "mean_rating",
    "has_rating",
    "mean_sentiment",
    "has_sentiment",
];

/// Every customer's features as of a date, as model rows.
#[derive(Debug, Default, Clone)]
pub struct FeatureMatrix {
    pub customers: Vec<String>,
    /// Row-major, `MODEL_COLUMNS.len()` values per customer.
    pub values: Vec<f64>,
}

impl FeatureMatrix {
    pub fn width() -> usize {
        MODEL_COLUMNS.len()
    }

    pub fn row(&self, i: usize) -> &[f64] {
        let w = Self::width();
        &self.values[i * w..(i + 1) * w]
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        MODEL_COLUMNS.iter().position(|c| *c == name)
    }
}

/// The cut-off for features as of a date: the start of the next day, UTC.
pub fn cutoff(as_of: NaiveDate) -> i64 {
    as_of
        .succ_opt()
        .unwrap_or(as_of)
        .and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp())
}

pub fn date_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Which customers a computation covers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope<'a> {
    /// An SQL literal list of customer ids (`crate::lake::literal_list`); `None`: everyone.
    pub only: Option<&'a str>,
    pub shard: Option<Shard>,
}

/// Computes and stores features for each of `dates` in one pass; returns the customers
/// written per date. A whole computation replaces the date's partition; one for `only`
/// some customers (or one shard) adds a file whose rows win over the older ones.
pub async fn compute_and_store(
    lake: &Lake,
    dates: &[NaiveDate],
    scope: Scope<'_>,
) -> Result<Vec<usize>> {
    if dates.is_empty() {
        return Ok(vec![]);
    }
    let cutoffs: Vec<i64> = dates.iter().map(|d| cutoff(*d)).collect();
    let ctx = lake.session().await?;
    let started = std::time::Instant::now();
    let totals = Totals::load(&ctx, &cutoffs, scope).await?;
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        "features: totals loaded"
    );
    let mut written = Vec::new();
    let written_at = chrono::Utc::now().timestamp_micros();
    let partial = scope.only.is_some() || scope.shard.is_some();
    for (k, date) in dates.iter().enumerate() {
        let as_of = date_text(*date);
        let (ids, features) = totals.features(k, cutoffs[k]);
        let lake2 = lake.clone();
        let part = as_of.clone();
        let file = tokio::task::spawn_blocking(move || {
            write_features(&lake2, &part, &ids, &features, written_at, partial)
        })
        .await
        .map_err(|e| LakeError::Other(format!("features writer failed: {e}")))??;
        let n = file.as_ref().map_or(0, |f| f.rows as usize);
        catalog::commit(
            lake.db(),
            Commit {
                dataset: Dataset::Features.name().to_owned(),
                kind: LakeCommitKind::Replace,
                add: file.into_iter().collect(),
                removes: if partial {
                    Removes::Nothing
                } else {
                    Removes::Part(as_of)
                },
                source: None,
                checked_at: None,
            },
        )
        .await?;
        written.push(n);
    }
    Ok(written)
}

fn write_features(
    lake: &Lake,
    as_of: &str,
    ids: &[String],
    features: &[Features],
    written_at: i64,
    partial: bool,
) -> Result<Option<crate::db::repo::lake::NewFile>> {
    if ids.is_empty() {
        return Ok(None);
    }
    let schema = Dataset::Features.schema();
    let mut file = FileWriter::create(
        lake,
        new_name(&super::write::part_dir(Dataset::Features, Some(as_of))),
        Dataset::Features,
    )?;
    for (ids, features) in ids.chunks(64 * 1024).zip(features.chunks(64 * 1024)) {
        let n = ids.len();
        let mut id = StringBuilder::with_capacity(n, n * 10);
        let mut date = StringBuilder::with_capacity(n, n * 10);
        for i in ids {
            id.append_value(i);
            date.append_value(as_of);
        }
        let mut columns: Vec<ArrayRef> = vec![Arc::new(id.finish()), Arc::new(date.finish())];
        for (name, integer) in FEATURE_COLUMNS {
            if integer {
                let mut b = Int64Builder::with_capacity(n);
                for f in features {
                    b.append_value(count_of(f, name));
                }
                columns.push(Arc::new(b.finish()));
            } else {
                let mut b = Float64Builder::with_capacity(n);
                for f in features {
                    b.append_option(value_of(f, name));
                }
                columns.push(Arc::new(b.finish()));
            }
        }
        let mut at = Int64Builder::with_capacity(n);
        at.append_value_n(written_at, n);
        columns.push(Arc::new(at.finish()));
        file.write(&RecordBatch::try_new(schema.clone(), columns)?)?;
    }
    Ok(Some(file.finish(Some(as_of.to_owned()), partial)?))
}

fn count_of(f: &Features, name: &str) -> i64 {
    (match name {
        "frequency" => f.frequency,
        "distinct_products" => f.distinct_products,
        "n_events" => f.n_events,
        _ => f.n_reviews,
    }) as i64
}

fn value_of(f: &Features, name: &str) -> Option<f64> {
    Some(match name {
        "recency_days" => f.recency_days,
        "monetary" => f.monetary,
        "tenure_days" => f.tenure_days,
        "avg_basket" => f.avg_basket,
        "cancel_rate" => f.cancel_rate,
        "browse_seconds" => f.browse_seconds,
        "mean_rating" => return f.mean_rating,
        _ => return f.mean_sentiment,
    })
}

/// Per-customer totals for every cut-off, from one grouped pass per dataset.
struct Totals {
    /// Customer id per dense index, and back.
    ids: Vec<String>,
    index: HashMap<String, u32>,
    signups: Vec<Option<i64>>,
    /// Per cut-off.
    ordering: Vec<Vec<Ordering>>,
    browsing: Vec<Vec<Browsing>>,
    reviewing: Vec<Vec<Reviewing>>,
}

impl Totals {
    async fn load(ctx: &SessionContext, cutoffs: &[i64], scope: Scope<'_>) -> Result<Self> {
        let k = cutoffs.len();
        let last = cutoffs.iter().copied().max().unwrap_or(0);
        let only = scope
            .only
            .map(|list| format!(" AND customer_id IN ({list})"))
            .unwrap_or_default();
        let mine = |id: &str| scope.shard.is_none_or(|s| s.owns(id));
        let mut t = Totals {
            ids: Vec::new(),
            index: HashMap::new(),
            signups: Vec::new(),
            ordering: vec![Vec::new(); k],
            browsing: vec![Vec::new(); k],
            reviewing: vec![Vec::new(); k],
        };
        let get = |t: &mut Totals, id: String| t.id(id);
        for b in collect(
            ctx,
            &format!(
                "SELECT customer_id, CAST(signup_at AS BIGINT) FROM clean_customers WHERE true{only}"
            ),
        )
        .await?
        {
            for (id, signup) in arrays::strings(&b, 0)?.into_iter().zip(arrays::ints(&b, 1)?) {
                if mine(&id) {
                    let i = get(&mut t, id);
                    t.signups[i as usize] = signup;
                }
            }
        }

        // Orders: the lines stream to a blocking thread that counts each order and product
        // once per customer (`OrderLines`): a grouped query would need millions of groups.
        let sql = format!(
            "SELECT customer_id, order_id, product_id, status = 'paid', quantity * unit_price_cents, \
               CAST(ordered_at AS BIGINT) FROM clean_orders \
             WHERE CAST(ordered_at AS BIGINT) < {last}{only}"
        );
        let started = std::time::Instant::now();
        let mut stream = ctx.sql(&sql).await?.execute_stream().await?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<RecordBatch>(2);
        let shard = scope.shard;
        let owned_cutoffs = cutoffs.to_vec();
        let folder = tokio::task::spawn_blocking(move || -> Result<(Totals, OrderLines)> {
            let mut lines = OrderLines::new(&owned_cutoffs);
            let hash = |s: &str| xxhash_rust::xxh3::xxh3_64(s.as_bytes());
            for b in rx {
                let text = |i: usize| -> Result<StringArray> {
                    Ok(cast(b.column(i), &DataType::Utf8)?
                        .as_string::<i32>()
                        .clone())
                };
                let (customers, orders, products) = (text(0)?, text(1)?, text(2)?);
                let paid = arrays::ints_or_zero(&b, 3)?;
                let cents = arrays::ints_or_zero(&b, 4)?;
                let at = arrays::ints_or_zero(&b, 5)?;
                for r in 0..b.num_rows() {
                    let customer = customers.value(r);
                    if !shard.is_none_or(|s| s.owns(customer)) {
                        continue;
                    }
                    let i = t.id_of(customer);
                    lines.add(
                        i,
                        hash(orders.value(r)),
                        hash(products.value(r)),
                        paid[r] != 0,
                        cents[r],
                        at[r],
                    );
                }
            }
            Ok((t, lines))
        });
        let mut failed = None;
        while let Some(batch) = stream.next().await {
            match batch {
                Ok(b) => {
                    if tx.send(b).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let (mut t, lines) = folder
            .await
            .map_err(|e| LakeError::Other(format!("order lines thread failed: {e}")))??;
        if let Some(e) = failed {
            return Err(e.into());
        }
        for j in 0..k {
            t.ordering[j] = lines.totals(j);
        }
        tracing::debug!(
            seconds = started.elapsed().as_secs_f64(),
            "features: order lines folded"
        );

        let mut aggs = Vec::new();
        for (j, c) in cutoffs.iter().enumerate() {
            aggs.push(format!(
                "SUM(CASE WHEN t < {c} THEN 1 ELSE 0 END) AS n{j}, \
                 SUM(CASE WHEN t < {c} THEN duration_s END) AS s{j}, \
                 MIN(CASE WHEN t < {c} THEN t END) AS f{j}"
            ));
        }
        let sql = format!(
            "SELECT customer_id, {} FROM (SELECT customer_id, duration_s, \
               CAST(occurred_at AS BIGINT) AS t FROM clean_events WHERE CAST(occurred_at AS BIGINT) < {last}{only}) \
             GROUP BY customer_id",
            aggs.join(", ")
        );
        for b in collect(ctx, &sql).await? {
            let ids = arrays::strings(&b, 0)?;
            let mut cols = Vec::new();
            for j in 0..k {
                cols.push((
                    arrays::ints(&b, 1 + 3 * j)?,
                    arrays::floats(&b, 2 + 3 * j)?,
                    arrays::ints(&b, 3 + 3 * j)?,
                ));
            }
            for (r, id) in ids.into_iter().enumerate() {
                if !mine(&id) {
                    continue;
                }
                let i = get(&mut t, id);
                for (j, (n, s, f)) in cols.iter().enumerate() {
                    let Some(first_at) = f[r] else { continue };
                    t.browsing[j].push(Browsing {
                        customer: i,
                        events: n[r].unwrap_or(0).max(0) as u64,
                        seconds: s[r].unwrap_or(0.0),
                        first_at,
                    });
                }
            }
        }

        let mut aggs = Vec::new();
        for c in cutoffs {
            aggs.push(format!(
                "SUM(CASE WHEN t < {c} THEN 1 ELSE 0 END), \
                 SUM(CASE WHEN t < {c} THEN rating ELSE 0 END), \
                 MIN(CASE WHEN t < {c} THEN t END), \
                 SUM(CASE WHEN t < {c} THEN score END), \
                 SUM(CASE WHEN t < {c} AND score IS NOT NULL THEN 1 ELSE 0 END)"
            ));
        }
        let sql = format!(
            "SELECT customer_id, {} FROM (SELECT r.customer_id, CAST(r.rating AS BIGINT) AS rating, s.score, \
               CAST(r.created_at AS BIGINT) AS t FROM clean_reviews r \
               LEFT JOIN review_sentiment s ON s.review_id = r.review_id \
               WHERE CAST(r.created_at AS BIGINT) < {last}{}) \
             GROUP BY customer_id",
            aggs.join(", "),
            only.replace("customer_id", "r.customer_id")
        );
        for b in collect(ctx, &sql).await? {
            let ids = arrays::strings(&b, 0)?;
            let mut cols = Vec::new();
            for j in 0..k {
                cols.push((
                    arrays::ints(&b, 1 + 5 * j)?,
                    arrays::ints(&b, 2 + 5 * j)?,
                    arrays::ints(&b, 3 + 5 * j)?,
                    arrays::floats(&b, 4 + 5 * j)?,
                    arrays::ints(&b, 5 + 5 * j)?,
                ));
            }
            for (r, id) in ids.into_iter().enumerate() {
                if !mine(&id) {
                    continue;
                }
                let i = get(&mut t, id);
                for (j, (n, rating, f, score, scored)) in cols.iter().enumerate() {
                    let Some(first_at) = f[r] else { continue };
                    t.reviewing[j].push(Reviewing {
                        customer: i,
                        reviews: n[r].unwrap_or(0).max(0) as u64,
                        rating_sum: rating[r].unwrap_or(0).max(0) as u64,
                        first_at,
                        sentiment_sum: score[r].unwrap_or(0.0),
                        sentiment_n: scored[r].unwrap_or(0).max(0) as u64,
                    });
                }
            }
        }
        Ok(t)
    }

    /// The dense index of customer `id`, added if new.
    fn id(&mut self, id: String) -> u32 {
        if let Some(&i) = self.index.get(&id) {
            return i;
        }
        let i = self.ids.len() as u32;
        self.index.insert(id.clone(), i);
        self.ids.push(id);
        self.signups.push(None);
        i
    }

    fn id_of(&mut self, id: &str) -> u32 {
        match self.index.get(id) {
            Some(&i) => i,
            None => self.id(id.to_owned()),
        }
    }

    /// The features of cut-off `k`, for the customers that existed then, ordered by id.
    fn features(&self, k: usize, cutoff: i64) -> (Vec<String>, Vec<Features>) {
        let features = compute::compute(
            &self.signups,
            &self.ordering[k],
            &self.browsing[k],
            &self.reviewing[k],
            cutoff,
        );
        let mut first: Vec<Option<i64>> = vec![None; self.ids.len()];
        let mut seen = |c: u32, at: i64| {
            let f = &mut first[c as usize];
            *f = Some(f.map_or(at, |x| x.min(at)));
        };
        for o in &self.ordering[k] {
            seen(o.customer, o.first_at);
        }
        for b in &self.browsing[k] {
            seen(b.customer, b.first_at);
        }
        for r in &self.reviewing[k] {
            seen(r.customer, r.first_at);
        }
        let mut rows: Vec<(String, Features)> = self
            .ids
            .iter()
            .zip(features)
            .enumerate()
            .filter(|(i, _)| match self.signups[*i] {
                Some(t) => t < cutoff,
                None => first[*i].is_some_and(|t| t < cutoff),
            })
            .map(|(_, (id, f))| (id.clone(), f))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows.into_iter().unzip()
    }
}

/// Whether features as of `as_of` are committed.
pub async fn has(lake: &Lake, as_of: NaiveDate) -> Result<bool> {
    let part = date_text(as_of);
    Ok(catalog::live(lake.db(), Dataset::Features.name())
        .await?
        .iter()
        .any(|f| f.part.as_deref() == Some(part.as_str())))
}

/// The newest as-of date with committed features.
pub async fn latest(lake: &Lake) -> Result<Option<NaiveDate>> {
    // Partitions are `%Y-%m-%d` dates: the newest name is the newest date.
    Ok(lake
        .newest_part(Dataset::Features)
        .await?
        .and_then(|p| NaiveDate::parse_from_str(&p, "%Y-%m-%d").ok()))
}

/// Every customer's features as of `as_of`, as model rows ordered by customer id.
pub async fn matrix(lake: &Lake, as_of: NaiveDate) -> Result<FeatureMatrix> {
    let rows = rows(lake, as_of, None).await?;
    let mut m = FeatureMatrix::default();
    for (id, values) in rows {
        m.customers.push(id);
        let v = |i: usize| values[i].unwrap_or(0.0);
        let flag = |i: usize| f64::from(u8::from(values[i].is_some()));
        m.values.extend_from_slice(&[
            v(0),
            v(1),
            v(2),
            v(3),
            v(4),
            v(5),
            v(6),
            v(7),
            v(8),
            v(9),
            v(10),
            flag(10),
            v(11),
            flag(11),
        ]);
    }
    Ok(m)
}

/// Feature rows as of `as_of` (`FEATURE_COLUMNS` order), for `only` some customers.
pub async fn rows(
    lake: &Lake,
    as_of: NaiveDate,
    only: Option<&str>,
) -> Result<Vec<(String, Vec<Option<f64>>)>> {
    let names: Vec<&str> = FEATURE_COLUMNS.iter().map(|(n, _)| *n).collect();
    let only = only
        .map(|l| format!(" AND customer_id IN ({l})"))
        .unwrap_or_default();
    let batches = lake
        .query(&format!(
            "SELECT customer_id, {} FROM features WHERE as_of = '{}'{only} ORDER BY customer_id",
            names.join(", "),
            date_text(as_of)
        ))
        .await?;
    let mut out = Vec::new();
    for b in &batches {
        let ids = arrays::strings(b, 0)?;
        let cols = (0..names.len())
            .map(|j| arrays::floats(b, 1 + j))
            .collect::<Result<Vec<_>>>()?;
        for (r, id) in ids.into_iter().enumerate() {
            out.push((id, cols.iter().map(|c| c[r]).collect()));
        }
    }
    Ok(out)
}
