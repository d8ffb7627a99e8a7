//! `recommend`: top-N products for every customer from item-kNN, implicit ALS, TF-IDF
//! content, popularity in the customer's segment and (with `repeat`) their own history,
//! blended by a hybrid whose weights are tuned on a time split (see
//! `analytics::recommend::serve`).
//!
//! With `as_of` = A and `holdout_days` = H: the sources are fitted on dealings before A − H
//! and evaluated on the purchases in [A − H, A) (weights tuned on half the customers,
//! figures reported on the other half); then refitted on everything before A, and every
//! customer's list is replaced. The model (kind `recommend`) is promoted unless the hybrid
//! does worse than popularity on the same customers.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Job, JobContext, JobError, JobResult, failed, parse_params};
use crate::{
    analytics::recommend::{
        AlsParams, Hybrid, KnnParams,
        serve::{self, Dealing, Settings, Shop},
    },
    db::{
        Db,
        bulk::Cell,
        repo::{self, models::NewModel, recommend::Dealings},
    },
    jobs::features::cutoff,
};

pub struct Recommend;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    as_of: Option<String>,
    #[serde(default = "n")]
    n: usize,
    #[serde(default)]
    repeat: bool,
    #[serde(default = "holdout_days")]
    holdout_days: u32,
    #[serde(default = "neighbours")]
    neighbours: usize,
    /// ALS factors; 0 leaves ALS out.
    #[serde(default = "factors")]
    factors: usize,
    #[serde(default = "iterations")]
    iterations: usize,
    #[serde(default = "yes")]
    content: bool,
    /// How much each kind of dealing weighs in a customer's history.
    #[serde(default)]
    weights: Weights,
    #[serde(default = "seed")]
    seed: u64,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct Weights {
    purchase: f32,
    cart: f32,
    rec_click: f32,
    click: f32,
    view: f32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            purchase: 5.0,
            cart: 3.0,
            rec_click: 2.0,
            click: 2.0,
            view: 1.0,
        }
    }
}

fn n() -> usize {
    10
}
fn holdout_days() -> u32 {
    30
}
fn neighbours() -> usize {
    50
}
fn factors() -> usize {
    32
}
fn iterations() -> usize {
    8
}
fn yes() -> bool {
    true
}
fn seed() -> u64 {
    42
}

impl Params {
    fn settings(&self) -> Settings {
        Settings {
            n: self.n,
            repeat: self.repeat,
            knn: KnnParams {
                k: self.neighbours,
                power: 2.0,
                ..KnnParams::default()
            },
            als: (self.factors > 0).then_some(AlsParams {
                factors: self.factors,
                iterations: self.iterations,
                ..AlsParams::default()
            }),
            content: self.content,
            seed: self.seed,
            ..Settings::default()
        }
    }
}

#[async_trait::async_trait]
impl Job for Recommend {
    fn kind(&self) -> &'static str {
        "recommend"
    }

    fn check_params(&self, params: &Value) -> Result<(), String> {
        let p: Params = parse_params(params)?;
        super::features::check_as_of(p.as_of.as_deref())?;
        if !(1..=100).contains(&p.n) {
            return Err("n must be between 1 and 100".to_owned());
        }
        if !(1..=365).contains(&p.holdout_days) {
            return Err("holdout_days must be between 1 and 365".to_owned());
        }
        if !(1..=500).contains(&p.neighbours) || p.factors > 256 || p.iterations > 50 {
            return Err(
                "neighbours must be 1..=500, factors at most 256, iterations at most 50".to_owned(),
            );
        }
        Ok(())
    }

    async fn run(&self, ctx: &JobContext) -> JobResult {
        let p: Params = parse_params(&ctx.params_value()).map_err(JobError::Fatal)?;
        let as_of = ctx.as_of()?;
        let started = std::time::Instant::now();
        let db = &ctx.db;
        let end = cutoff(as_of);
        let split = end - i64::from(p.holdout_days) * 86_400;
        let settings = p.settings();

        // Independent reads, so they overlap.
        let (ids, train, later, all) = futures::try_join!(
            Ids::load(db),
            async { repo::recommend::dealings(db, split).await.map_err(failed) },
            async {
                repo::recommend::purchases_between(db, split, end)
                    .await
                    .map_err(failed)
            },
            async { repo::recommend::dealings(db, end).await.map_err(failed) },
        )?;
        let loaded = started.elapsed().as_secs_f64();

        let weights = p.weights;
        let ids = std::sync::Arc::new(ids);
        let work = ids.clone();
        let (evaluation, lists) = tokio::task::spawn_blocking(move || {
            let ids = work;
            fn shop_of<'a>(ids: &'a Ids, dealings: &'a [Dealing]) -> Shop<'a> {
                Shop {
                    n_users: ids.customers.len(),
                    n_items: ids.products.len(),
                    dealings,
                    texts: &ids.texts,
                    groups: &ids.groups,
                }
            }
            let content = settings.content.then(|| serve::fit_content(&ids.texts));
            let train = ids.dense(&train, &weights);
            let fitted = serve::fit(&shop_of(&ids, &train), split, &settings, content.clone());
            let mut truth: Vec<Vec<u32>> = vec![Vec::new(); ids.customers.len()];
            for (c, pr) in &later {
                if let (Some(&u), Some(&i)) = (ids.customer.get(c), ids.product.get(pr)) {
                    truth[u as usize].push(i);
                }
            }
            truth.iter_mut().for_each(|t| {
                t.sort_unstable();
                t.dedup();
            });
            let evaluation = serve::evaluate(&fitted, &truth, ids.products.len());
            drop(fitted);
            let all = ids.dense(&all, &weights);
            let fitted = serve::fit(&shop_of(&ids, &all), end, &settings, content);
            let lists = fitted.recommend_all(&Hybrid::new(evaluation.weights.clone()));
            (evaluation, lists)
        })
        .await
        .map_err(|e| JobError::Failed(format!("recommender thread: {e}")))?;
        let computed = started.elapsed().as_secs_f64();

        let metrics = json!({
            "ndcg_at_10": evaluation.hybrid.ndcg,
            "precision_at_10": evaluation.hybrid.precision,
            "recall_at_10": evaluation.hybrid.recall,
            "coverage": evaluation.hybrid.coverage,
            "evaluated_customers": evaluation.hybrid.users,
            "tuning_customers": evaluation.tuning_users,
            "popularity": evaluation.popularity,
            "sources": evaluation.sources,
            "weights": serve::SOURCES.iter().zip(&evaluation.weights)
                .map(|(s, w)| (format!("{s:?}"), json!(w))).collect::<serde_json::Map<_, _>>(),
            "holdout_days": p.holdout_days,
            "mode": if p.repeat { "repeat allowed" } else { "new items" },
        });
        let beats_popularity =
            evaluation.hybrid.users == 0 || evaluation.hybrid.ndcg >= evaluation.popularity.ndcg;
        let registered = repo::models::register(
            db,
            NewModel {
                kind: "recommend".to_owned(),
                algorithm: "hybrid(item_knn,als,content,popularity,history)".to_owned(),
                params: json!({
                    "n": p.n, "repeat": p.repeat, "neighbours": p.neighbours, "factors": p.factors,
                    "iterations": p.iterations, "content": p.content, "weights": evaluation.weights,
                }),
                metrics,
                as_of: Some(as_of.format("%Y-%m-%d").to_string()),
                payload: "{}".to_owned(),
            },
        )
        .await
        .map_err(failed)?;
        ctx.log.info(format!(
            "hybrid on {} customers' purchases in the last {} days: P@10 {:.3}, R@10 {:.3}, NDCG@10 {:.3}, coverage {:.3} (popularity NDCG@10 {:.3}); weights {:?}",
            evaluation.hybrid.users,
            p.holdout_days,
            evaluation.hybrid.precision,
            evaluation.hybrid.recall,
            evaluation.hybrid.ndcg,
            evaluation.hybrid.coverage,
            evaluation.popularity.ndcg,
            evaluation.weights
        ));
        if !beats_popularity {
            ctx.log.info(format!(
                "model {} does worse than popularity: registered, not promoted; current recommendations kept",
                registered.id
            ));
            return Ok(());
        }
        repo::models::promote(db, registered.id)
            .await
            .map_err(failed)?;

        let rows: Vec<Vec<Cell>> = lists
            .iter()
            .enumerate()
            .flat_map(|(u, list)| {
                let ids = &ids;
                list.iter().enumerate().map(move |(rank, r)| {
                    vec![
                        Cell::Text(ids.customers[u].clone()),
                        Cell::Int(rank as i64 + 1),
                        Cell::Text(ids.products[r.item as usize].clone()),
                        Cell::OptFloat(Some(f64::from(r.score))),
                        Cell::Text(source_name(r.source)),
                        Cell::OptText(r.because.map(|b| ids.products[b as usize].clone())),
                        Cell::Int(registered.id),
                    ]
                })
            })
            .collect();
        let written = repo::recommend::replace_all(db, rows)
            .await
            .map_err(failed)?;
        ctx.log.info(format!(
            "{written} recommendations for {} customers (model {}) in {:.2}s (load {loaded:.2}s, fit and rank {:.2}s, store {:.2}s)",
            lists.iter().filter(|l| !l.is_empty()).count(),
            registered.id,
            started.elapsed().as_secs_f64(),
            computed - loaded,
            started.elapsed().as_secs_f64() - computed,
        ));
        Ok(())
    }
}

/// The stored name of a source (`item_knn`, `als`, …).
pub fn source_name(source: crate::analytics::recommend::Source) -> String {
    serde_json::to_value(source)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Dense ids for customers and products, product texts and customers' segments.
struct Ids {
    customers: Vec<String>,
    customer: HashMap<String, u32>,
    products: Vec<String>,
    product: HashMap<String, u32>,
    texts: Vec<String>,
    groups: Vec<u32>,
}

impl Ids {
    async fn load(db: &Db) -> Result<Ids, JobError> {
        let customers = repo::recommend::customer_ids(db).await.map_err(failed)?;
        let customer: HashMap<String, u32> = customers
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i as u32))
            .collect();
        let texts = repo::recommend::product_texts(db).await.map_err(failed)?;
        let products: Vec<String> = texts.iter().map(|(p, _)| p.clone()).collect();
        let product: HashMap<String, u32> = products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.clone(), i as u32))
            .collect();
        let segments = repo::recommend::segments(db).await.map_err(failed)?;
        let mut labels: HashMap<String, u32> = HashMap::new();
        let groups = customers
            .iter()
            .map(|c| match segments.get(c) {
                Some(label) => {
                    let next = labels.len() as u32;
                    *labels.entry(label.clone()).or_insert(next)
                }
                None => u32::MAX,
            })
            .collect();
        Ok(Ids {
            customers,
            customer,
            products,
            product,
            texts: texts.into_iter().map(|(_, t)| t).collect(),
            groups,
        })
    }

    /// Dealings with known customers and products, weighted by kind.
    fn dense(&self, dealings: &[Dealings], w: &Weights) -> Vec<Dealing> {
        let mut out = dealings
            .iter()
            .filter_map(|d| {
                let weight = w.purchase * d.purchases as f32
                    + w.cart * d.carts as f32
                    + w.rec_click * d.rec_clicks as f32
                    + w.click * d.clicks as f32
                    + w.view * d.views as f32;
                Some(Dealing {
                    user: *self.customer.get(&d.customer)?,
                    item: *self.product.get(&d.product)?,
                    weight,
                    last_at: d.last_at,
                    bought: d.purchases > 0,
                })
            })
            .filter(|d| d.weight > 0.0)
            .collect::<Vec<_>>();
        // The database returns groups in no set order; models are fitted in one.
        out.sort_unstable_by_key(|d| (d.user, d.item));
        out
    }
}
