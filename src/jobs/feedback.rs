//! `feedback`: folds what arrived since the last pass into the derived tables, between
//! nightly runs and without refitting anything (DESIGN.md section 7).
//!
//! A pass covers the loads (`ingested_sources`) after its watermark up to the newest load
//! below which every load has ended. For the customers with orders, events or reviews in
//! those loads it:
//! 1. scores the new reviews with the champion sentiment model and refreshes every
//!    product's mean;
//! 2. recomputes their features at the latest stored as-of date (mean sentiment included);
//! 3. re-ranks their recommendations with the champion recommendation model's stored item
//!    side (similar items, ALS item factors with a fresh fold-in, text vectors, popularity
//!    in their segment) against their full, current history: something just bought leaves
//!    their list, a `rec_click` or a cart pulls similar items in.
//!
//! Then the watermark moves and the pass is recorded with what it touched. A pass that
//! crashes before the watermark moves is redone whole: every step replaces rows for the
//! same customers from the same input, so running it twice changes nothing. The item side
//! (co-occurrence similarities, factors) is refitted by the nightly `recommend` job.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use super::{Job, JobContext, JobError, JobResult, failed, parse_params};
use crate::{
    analytics::recommend::{
        Hybrid,
        serve::{Customers, Dealing},
    },
    db::repo::{
        self,
        feedback::{Pass, Span},
    },
    jobs::recommend::{Artifact, groups_of, to_rows},
};

pub struct Feedback;

/// The watermark's name.
pub const WATERMARK: &str = "feedback";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Params {
    /// How much each kind of dealing weighs in a customer's history (as in `recommend`).
    #[serde(default)]
    weights: Option<super::recommend::Weights>,
}

#[async_trait::async_trait]
impl Job for Feedback {
    fn kind(&self) -> &'static str {
        "feedback"
    }

    fn check_params(&self, params: &Value) -> Result<(), String> {
        parse_params::<Params>(params).map(|_| ())
    }

    async fn run(&self, ctx: &JobContext) -> JobResult {
        let started = std::time::Instant::now();
        let db = &ctx.db;
        // One pass at a time over a span, whichever pipeline or daemon runs it.
        let holder = format!("run {} job {}", ctx.run_id, ctx.job);
        let now = crate::db::now().timestamp();
        let until = now
            + ctx
                .timeout
                .map_or(HOLD_SECONDS, |t| t.as_secs() as i64 + 60);
        if !repo::watermarks::hold(db, WATERMARK, &holder, now, until)
            .await
            .map_err(failed)?
        {
            let other = repo::watermarks::holder(db, WATERMARK)
                .await
                .map_err(failed)?
                .unwrap_or_default();
            ctx.log.info(format!(
                "another feedback pass ({other}) is folding the same loads: this one does nothing"
            ));
            return Ok(());
        }
        let result = self.pass(ctx, started).await;
        repo::watermarks::release(db, WATERMARK, &holder)
            .await
            .map_err(failed)?;
        result
    }
}

/// How long a pass holds the watermark when its job has no timeout.
const HOLD_SECONDS: i64 = 3_600;

impl Feedback {
    async fn pass(&self, ctx: &JobContext, started: std::time::Instant) -> JobResult {
        let p: Params = parse_params(&ctx.params_value()).map_err(JobError::Fatal)?;
        let db = &ctx.db;
        let span = Span {
            from: repo::watermarks::watermark(db, WATERMARK)
                .await
                .map_err(failed)?,
            to: repo::feedback::settled(db).await.map_err(failed)?,
        };
        let mut pass = Pass {
            run_id: Some(ctx.run_id),
            span: Some(span),
            ..Pass::default()
        };
        if span.is_empty() {
            ctx.log
                .info(format!("nothing arrived since load {}", span.from));
            pass.seconds = started.elapsed().as_secs_f64();
            return repo::feedback::record(db, &pass).await.map_err(failed);
        }
        let lake = ctx.lake()?;
        let arrived = crate::lake::read::arrived(&lake, span.from, span.to)
            .await
            .map_err(failed)?;
        pass.arrived = repo::feedback::Arrived {
            orders: arrived.orders as i64,
            events: arrived.events as i64,
            rec_clicks: arrived.rec_clicks as i64,
            reviews: arrived.reviews as i64,
            customers: arrived.customers.len() as i64,
        };
        // The touched customers as a literal list (`''` matches no customer: ids are never
        // empty).
        let customers = if arrived.customers.is_empty() {
            "''".to_owned()
        } else {
            crate::lake::literal_list(arrived.customers.iter().map(String::as_str))
        };

        // 1. Sentiment of new reviews, and product means.
        if pass.arrived.reviews > 0 {
            let (sentiment, model_id) = super::sentiment::champion_sentiment(ctx).await?;
            let (scored, _) =
                super::sentiment::score_unscored(ctx, sentiment, model_id, false).await?;
            pass.reviews_scored = scored as i64;
            pass.products = super::sentiment::refresh_product_sentiment(&lake)
                .await
                .map_err(failed)? as i64;
        }

        // 2. Features of the customers touched, at the latest stored date.
        if let Some(as_of) = crate::lake::features::latest(&lake).await.map_err(failed)? {
            let scope = super::features::Scope {
                only: Some(&customers),
                shard: None,
            };
            pass.features = super::features::compute_and_store(&lake, &[as_of], scope)
                .await
                .map_err(failed)?
                .iter()
                .sum::<usize>() as i64;
        }

        // 3. Their recommendations, from the champion model's stored item side.
        let champion = repo::models::champion(db, "recommend")
            .await
            .map_err(failed)?;
        let artifact = match &champion {
            Some(c) => {
                crate::lake::model_files::load(&lake, c.id, super::recommend::ARTIFACT_FORMAT)
                    .await
                    .map_err(failed)?
            }
            None => None,
        };
        match (champion, artifact) {
            (Some(model), Some(bytes)) => {
                pass.model_id = Some(model.id);
                let weights = p.weights.unwrap_or_default();
                let (dealings, segments) = futures::try_join!(
                    async {
                        crate::lake::read::dealings_of(&lake, i64::MAX, Some(&customers))
                            .await
                            .map_err(failed)
                    },
                    async {
                        crate::lake::profiles::segments(&lake, Some(&customers))
                            .await
                            .map_err(failed)
                    },
                )?;
                let served = tokio::task::spawn_blocking(move || {
                    serve_touched(&bytes, &dealings, &segments, &weights)
                })
                .await
                .map_err(|e| JobError::Failed(format!("recommender thread: {e}")))?
                .map_err(JobError::Failed)?;
                let rows = to_rows(&served.lists, &served.customers, &served.products, model.id);
                pass.recommendations = crate::lake::recommendations::store(
                    &lake,
                    rows,
                    crate::lake::recommendations::Replaces::TheirCustomers,
                )
                .await
                .map_err(failed)? as i64;
            }
            (Some(model), None) => ctx.log.info(format!(
                "recommendation model {} has no stored serving model (trained by an older version): lists wait for the next recommend run",
                model.id
            )),
            (None, _) => ctx
                .log
                .info("no recommendation model yet: lists wait for the first recommend run"),
        }

        repo::watermarks::set_watermark(db, WATERMARK, span.to)
            .await
            .map_err(failed)?;
        pass.seconds = started.elapsed().as_secs_f64();
        repo::feedback::record(db, &pass).await.map_err(failed)?;
        let a = pass.arrived;
        ctx.log.info(format!(
            "loads {}..={}: {} order lines, {} events ({} rec_click), {} reviews from {} customers; \
             {} reviews scored, {} products' sentiment, {} customers' features, {} recommendations in {:.2}s",
            span.from + 1,
            span.to,
            a.orders,
            a.events,
            a.rec_clicks,
            a.reviews,
            a.customers,
            pass.reviews_scored,
            pass.products,
            pass.features,
            pass.recommendations,
            pass.seconds
        ));
        Ok(())
    }
}

/// Lists for the customers touched.
struct Served {
    customers: Vec<String>,
    products: Vec<String>,
    lists: Vec<Vec<crate::analytics::recommend::Explained>>,
}

/// Serves every customer in `dealings` from a stored artifact. Pure apart from decoding.
fn serve_touched(
    bytes: &[u8],
    dealings: &[repo::recommend::Dealings],
    segments: &HashMap<String, String>,
    weights: &super::recommend::Weights,
) -> Result<Served, String> {
    let artifact =
        Artifact::from_bytes(bytes).map_err(|e| format!("reading the serving model: {e}"))?;
    let product: HashMap<&str, u32> = artifact
        .products
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i as u32))
        .collect();
    let mut customers: Vec<String> = dealings.iter().map(|d| d.customer.clone()).collect();
    customers.sort_unstable();
    customers.dedup();
    let dense: Vec<Dealing> = {
        let mut out: Vec<Dealing> = dealings
            .iter()
            .filter_map(|d| {
                let user = customers.binary_search(&d.customer).ok()? as u32;
                Some(weights.dealing(d, user, *product.get(d.product.as_str())?))
            })
            .filter(|d| d.weight > 0.0)
            .collect();
        out.sort_unstable_by_key(|d| (d.user, d.item));
        out
    };
    let groups = groups_of(&customers, segments, &artifact.segments);
    let half_life = artifact.model.settings().half_life_days;
    let users = Customers::new(customers.len(), &dense, &groups, artifact.cutoff, half_life);
    let hybrid = Hybrid::new(artifact.weights.clone());
    let fitted = artifact.model.serve(users);
    let lists = fitted.recommend_all(&hybrid);
    Ok(Served {
        customers,
        products: artifact.products,
        lists,
    })
}
