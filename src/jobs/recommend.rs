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

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Job, JobContext, JobError, JobResult, failed, parse_params, steps::Steps};
use crate::{
    analytics::recommend::{
        AlsParams, Did, Explained, Hybrid, KnnParams,
        serve::{self, Dealing, Settings, Shop},
    },
    db::repo::{self, models::NewModel, recommend::Dealings},
    jobs::features::cutoff,
    lake::recommendations::{Lists, Replaces},
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
pub struct Weights {
    purchase: f32,
    cart: f32,
    rec_click: f32,
    click: f32,
    view: f32,
}

impl Weights {
    /// The weight of one customer's dealings with one product.
    pub fn of<Id>(&self, d: &Dealings<Id>) -> f32 {
        self.purchase * d.purchases as f32
            + self.cart * d.carts as f32
            + self.rec_click * d.rec_clicks as f32
            + self.click * d.clicks as f32
            + self.view * d.views as f32
    }
}

impl Weights {
    /// One customer's dealings with one product as the recommender takes them.
    pub fn dealing<Id>(&self, d: &Dealings<Id>, user: u32, item: u32) -> Dealing {
        Dealing {
            user,
            item,
            weight: self.of(d),
            last_at: d.last_at,
            did: did(d),
        }
    }
}

/// The most a customer did with a product: bought it (a paid order line), else put it in
/// their cart, else viewed or clicked it.
pub fn did<Id>(d: &Dealings<Id>) -> Did {
    if d.purchases > 0 {
        Did::Bought
    } else if d.carts > 0 {
        Did::Carted
    } else {
        Did::Viewed
    }
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

    /// Its `as_of` (`JobContext::as_of`) may come from the run.
    fn run_params(&self) -> crate::pipeline::RunParamUse {
        crate::pipeline::RunParamUse::Reads(&["as_of"])
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

    fn shardable(&self) -> bool {
        true
    }

    async fn run(&self, ctx: &JobContext) -> JobResult {
        let p: Params = parse_params(&ctx.params_value()).map_err(JobError::Fatal)?;
        let as_of = ctx.as_of()?;
        let started = std::time::Instant::now();
        let db = &ctx.db;
        let end = cutoff(as_of);
        let split = end - i64::from(p.holdout_days) * 86_400;
        let settings = p.settings();

        // Item texts first: the content model is fitted on a blocking thread while the
        // dealings load.
        let lake = ctx.lake()?;
        let ids = std::sync::Arc::new(Ids::load(&lake).await?);
        let ids_loaded = started.elapsed().as_secs_f64();
        let content = settings.content.then(|| {
            let ids = ids.clone();
            tokio::task::spawn_blocking(move || serve::fit_content(&ids.texts))
        });
        let repo::recommend::SplitDealings {
            before_split: train,
            before_end: all,
            bought_after_split: later,
        } = crate::lake::read::dealings_split(&lake, split, end, {
            let ids = ids.clone();
            std::sync::Arc::new(move |c: &str, p: &str| {
                Some((*ids.customer.get(c)?, *ids.product.get(p)?))
            })
        })
        .await
        .map_err(failed)?;
        let loaded = started.elapsed().as_secs_f64();
        let content = match content {
            Some(task) => Some(
                task.await
                    .map_err(|e| JobError::Failed(format!("content thread: {e}")))?,
            ),
            None => None,
        };

        let weights = p.weights;
        let work = ids.clone();
        let shard = ctx.shard;
        let owns = move |c: &str| shard.is_none_or(|s| s.owns(c));
        let (evaluation, lists, artifact, steps) = tokio::task::spawn_blocking(move || {
            let ids = work;
            let mut steps = Steps::default();
            steps.mark("content (after loading)");
            fn shop_of<'a>(ids: &'a Ids, dealings: &'a [Dealing]) -> Shop<'a> {
                Shop {
                    n_users: ids.customers.len(),
                    n_items: ids.products.len(),
                    dealings,
                    texts: &ids.texts,
                    groups: &ids.groups,
                }
            }
            // Each set of dealings goes as soon as its fit is done (at scale, a gigabyte each).
            let train = ids.dense(train, &weights);
            let fitted = serve::fit(&shop_of(&ids, &train), split, &settings, content.clone());
            drop(train);
            steps.mark("fit on the past");
            let mut truth: Vec<Vec<u32>> = vec![Vec::new(); ids.customers.len()];
            for &(u, i) in &later {
                if let Some(t) = truth.get_mut(u as usize) {
                    t.push(i);
                }
            }
            truth.iter_mut().for_each(|t| {
                t.sort_unstable();
                t.dedup();
            });
            let evaluation = serve::evaluate(&fitted, &truth, ids.products.len());
            drop(fitted);
            steps.mark("evaluate");
            let all = ids.dense(all, &weights);
            let fitted = serve::fit(&shop_of(&ids, &all), end, &settings, content);
            drop(all);
            steps.mark("refit");
            // A shard ranks only its own customers (the fit above is the same in every
            // shard: the same data and seeds).
            let mine: Vec<bool> = ids.customers.iter().map(|c| owns(c)).collect();
            let lists = fitted.recommend_where(&Hybrid::new(evaluation.weights.clone()), |u| {
                mine.get(u as usize).copied().unwrap_or(false)
            });
            steps.mark("rank");
            let artifact = Artifact {
                products: ids.products.clone(),
                segments: ids.labels.clone(),
                weights: evaluation.weights.clone(),
                cutoff: end,
                model: fitted.into_model(),
            }
            .to_bytes();
            steps.mark("encode");
            (evaluation, lists, artifact, steps)
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
        let new = NewModel {
            kind: "recommend".to_owned(),
            algorithm: "hybrid(item_knn,als,content,popularity,history)".to_owned(),
            params: json!({
                "n": p.n, "repeat": p.repeat, "neighbours": p.neighbours, "factors": p.factors,
                "iterations": p.iterations, "content": p.content, "weights": evaluation.weights,
            }),
            metrics,
            as_of: Some(as_of.format("%Y-%m-%d").to_string()),
            payload: "{}".to_owned(),
        };
        // The shards of a sharded job register one model version between them.
        // The shards of a sharded job (and retries) register one model version between them.
        let (registered, _) = repo::models::register_shared(db, new, &ctx.shared_key())
            .await
            .map_err(failed)?;
        ctx.log.info(format!("fit and rank: {steps}"));
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
        // The first shard to get here stores the serving model; the others (and retries) find
        // it stored.
        let stored = crate::lake::model_files::has(&lake, registered.id, ARTIFACT_FORMAT)
            .await
            .map_err(failed)?;
        match artifact {
            Ok(_) if stored => {}
            Ok(bytes) => {
                let size = bytes.len();
                crate::lake::model_files::store(&lake, registered.id, ARTIFACT_FORMAT, bytes)
                    .await
                    .map_err(failed)?;
                ctx.log.info(format!(
                    "stored the serving model for feedback passes ({:.1} MB)",
                    size as f64 / 1e6
                ));
            }
            Err(e) => ctx.log.info(format!(
                "the serving model could not be encoded ({e}): feedback passes will wait for the next run"
            )),
        }

        let served = lists.iter().filter(|l| !l.is_empty()).count();
        // Ten million rows at scale: built on a blocking thread.
        let (named, model_id) = (ids.clone(), registered.id);
        let rows = tokio::task::spawn_blocking(move || {
            to_rows(&lists, &named.customers, &named.products, model_id)
        })
        .await
        .map_err(|e| JobError::Failed(format!("recommendations thread: {e}")))?;
        let replaces = match ctx.shard {
            None => Replaces::Everyone,
            Some(_) => Replaces::TheirCustomers,
        };
        let written = crate::lake::recommendations::store(&lake, rows, replaces)
            .await
            .map_err(failed)?;
        ctx.log.info(format!(
            "{written} recommendations for {} customers{} (model {}) in {:.2}s (load {loaded:.2}s of which ids and texts {ids_loaded:.2}s, fit and rank {:.2}s, store {:.2}s)",
            served,
            ctx.shard_note(),
            registered.id,
            started.elapsed().as_secs_f64(),
            computed - loaded,
            started.elapsed().as_secs_f64() - computed,
        ));
        Ok(())
    }
}

/// The `recommendations` dataset's rows for ranked lists: `lists[u]` is for `customers[u]`
/// (sorted, so the rows are too).
pub fn to_rows(
    lists: &[Vec<Explained>],
    customers: &[String],
    products: &[String],
    model_id: i64,
) -> Lists {
    let product = |i: u32| products.get(i as usize).map(String::as_str);
    let mut out = Lists::new(model_id);
    for (list, customer) in lists.iter().zip(customers) {
        let known = list.iter().filter_map(|e| Some((e, product(e.rec.item)?)));
        for (rank, (e, item)) in known.enumerate() {
            out.push(
                customer,
                rank as i64 + 1,
                item,
                f64::from(e.rec.score),
                e.rec.source.as_str(),
                e.reason.and_then(|r| r.item()).and_then(product),
                e.reason.map(|r| r.kind()),
            );
        }
    }
    out
}

/// The format of [`Artifact::to_bytes`]; an artifact in another is not read.
pub const ARTIFACT_FORMAT: &str = "bincode-1/serve-v1";

/// What `feedback` needs to serve customers from a promoted model: the item side of the
/// recommender, the dense ids it was fitted with and the hybrid's weights.
#[derive(Serialize, Deserialize)]
pub struct Artifact {
    /// Product id per dense item.
    pub products: Vec<String>,
    /// Segment label per popularity group.
    pub segments: Vec<String>,
    pub weights: Vec<f32>,
    /// The moment histories were weighed at when fitting (epoch seconds); serving later
    /// weighs from it too, so a customer's list depends on the model and their dealings
    /// only, not on when the pass runs.
    pub cutoff: i64,
    pub model: serve::Model,
}

impl Artifact {
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        bincode::serialize(self).map_err(|e| e.to_string())
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Artifact, String> {
        bincode::deserialize(bytes).map_err(|e| e.to_string())
    }
}

/// Each customer's popularity group: the index of their segment's label in `labels`
/// (sorted), `u32::MAX` without one.
pub fn groups_of(
    customers: &[String],
    segments: &HashMap<String, String>,
    labels: &[String],
) -> Vec<u32> {
    customers
        .iter()
        .map(|c| {
            segments
                .get(c)
                .and_then(|l| labels.binary_search(l).ok())
                .map_or(u32::MAX, |g| g as u32)
        })
        .collect()
}

/// Dense ids for customers and products, product texts and customers' segments.
struct Ids {
    customers: Vec<String>,
    customer: HashMap<String, u32>,
    products: Vec<String>,
    product: HashMap<String, u32>,
    texts: Vec<String>,
    groups: Vec<u32>,
    /// Segment label per group.
    labels: Vec<String>,
}

impl Ids {
    async fn load(lake: &crate::lake::Lake) -> Result<Ids, JobError> {
        let customers = crate::lake::read::customer_ids(lake)
            .await
            .map_err(failed)?;
        let customer: HashMap<String, u32> = customers
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i as u32))
            .collect();
        let texts = crate::lake::read::product_texts(lake)
            .await
            .map_err(failed)?;
        let products: Vec<String> = texts.iter().map(|(p, _)| p.clone()).collect();
        let product: HashMap<String, u32> = products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.clone(), i as u32))
            .collect();
        let segments = crate::lake::profiles::segments(lake, None)
            .await
            .map_err(failed)?;
        let mut labels: Vec<String> = segments.values().cloned().collect();
        labels.sort();
        labels.dedup();
        let groups = groups_of(&customers, &segments, &labels);
        Ok(Ids {
            customers,
            customer,
            products,
            product,
            texts: texts.into_iter().map(|(_, t)| t).collect(),
            groups,
            labels,
        })
    }

    /// Dealings as the recommender takes them, weighted by kind.
    fn dense(&self, dealings: Vec<Dealings<u32>>, w: &Weights) -> Vec<Dealing> {
        let mut out = dealings
            .into_iter()
            .map(|d| w.dealing(&d, d.customer, d.product))
            .filter(|d| d.weight > 0.0)
            .collect::<Vec<_>>();
        // Models are fitted in one order (the lake's reader gives it already).
        out.sort_unstable_by_key(|d| (d.user, d.item));
        out
    }
}
