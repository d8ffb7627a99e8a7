//! `sentiment`: scores every review not scored yet (the lexicon scorer for English and
//! Chinese, blended with a classifier learned from the shop's own star ratings; see
//! `analytics::sentiment`), then refreshes each product's mean. Customers' means reach the
//! `features` job through the lake's `review_sentiment` dataset.
//!
//! The classifier is trained when there is none, when asked (`retrain = true`), or when the
//! number of rated reviews has grown by a fifth since it was trained; it is stored in the
//! model registry (kind `sentiment`).

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Job, JobContext, JobError, JobResult, failed, parse_params};
use crate::{
    analytics::sentiment::{
        Classifier, ClassifierParams, Lexicon, LexiconScorer, Sentiment, train_blended,
    },
    config::Settings,
    db::repo::{self, intelligence, models::NewModel},
};

pub struct SentimentJob;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    retrain: bool,
    /// Score every review again (after a lexicon or classifier change).
    #[serde(default)]
    rescore: bool,
    /// Rated reviews the classifier learns from, at most.
    #[serde(default = "train_rows")]
    train_rows: u64,
    /// Below this many rated reviews, only the lexicon scores.
    #[serde(default = "min_train_rows")]
    min_train_rows: u64,
}

fn train_rows() -> u64 {
    100_000
}
fn min_train_rows() -> u64 {
    200
}

/// The built-in lexicons plus the user's (`sentiment.lexicon_paths`), in order.
pub fn lexicon_scorer(settings: &Settings) -> Result<LexiconScorer, String> {
    let mut scorer = LexiconScorer::builtin();
    for path in &settings.sentiment.lexicon_paths {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let lexicon = Lexicon::parse(&text).map_err(|e| format!("{path}: {e}"))?;
        scorer = scorer.with_lexicon(lexicon);
    }
    Ok(scorer)
}

#[async_trait::async_trait]
impl Job for SentimentJob {
    fn kind(&self) -> &'static str {
        "sentiment"
    }

    fn check_params(&self, params: &Value) -> Result<(), String> {
        parse_params::<Params>(params).map(|_| ())
    }

    async fn run(&self, ctx: &JobContext) -> JobResult {
        let p: Params = parse_params(&ctx.params_value()).map_err(JobError::Fatal)?;
        let db = &ctx.db;
        let lake = ctx.lake()?;
        let started = std::time::Instant::now();
        let scorer = lexicon_scorer(&ctx.settings).map_err(JobError::Fatal)?;

        let champion = repo::models::champion(db, "sentiment")
            .await
            .map_err(failed)?;
        let rated = crate::lake::read::count_rated_reviews(&lake)
            .await
            .map_err(failed)?;
        let trained_on = champion
            .as_ref()
            .and_then(|c| serde_json::from_str::<Value>(&c.metrics).ok())
            .and_then(|m| m.get("train_rows").and_then(Value::as_u64))
            .unwrap_or(0);
        let stale = champion.is_none() || p.retrain || rated as f64 > trained_on as f64 * 1.2;
        let (classifier, model_id) = if stale && rated >= p.min_train_rows {
            let rows = crate::lake::read::rated_reviews(&lake, p.train_rows)
                .await
                .map_err(failed)?;
            let n = rows.len();
            let tuner = scorer.clone();
            let tuned = tokio::task::spawn_blocking(move || {
                let texts: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
                let ratings: Vec<u8> = rows.iter().map(|(_, r)| *r).collect();
                train_blended(&tuner, &texts, &ratings, &ClassifierParams::default())
            })
            .await
            .map_err(|e| JobError::Failed(e.to_string()))?
            .map_err(JobError::Failed)?;
            let trained = tuned.classifier;
            let registered = repo::models::register(
                db,
                NewModel {
                    kind: "sentiment".to_owned(),
                    algorithm: "tfidf-logistic+lexicon".to_owned(),
                    params: json!({
                        "lexicon_weight": trained.lexicon_weight(),
                        "gain": trained.gain(),
                        "silent_threshold": trained.silent_threshold(),
                        "hash_bits": trained.params().hash_bits,
                    }),
                    metrics: json!({
                        "train_rows": n,
                        "fitted_rows": tuned.train_rows,
                        "binary_accuracy": tuned.holdout.binary_accuracy,
                        "holdout": tuned.holdout,
                        "lexicon_only_holdout": tuned.lexicon_holdout,
                    }),
                    as_of: None,
                    payload: serde_json::to_string(&trained).map_err(failed)?,
                },
            )
            .await
            .map_err(failed)?;
            ctx.log.info(format!(
                "held-out {} reviews: binary accuracy {:.3} (lexicon alone {:.3}), macro-F1 {:.3} ({:.3}), lexicon weight {:.1}",
                tuned.holdout.rows,
                tuned.holdout.binary_accuracy,
                tuned.lexicon_holdout.binary_accuracy,
                tuned.holdout.macro_f1,
                tuned.lexicon_holdout.macro_f1,
                trained.lexicon_weight()
            ));
            repo::models::promote(db, registered.id)
                .await
                .map_err(failed)?;
            ctx.log.info(format!(
                "trained the sentiment classifier on {n} rated reviews (model {})",
                registered.id
            ));
            (Some(trained), Some(registered.id))
        } else if let Some(c) = champion {
            match serde_json::from_str::<Classifier>(&c.payload) {
                Ok(model) => (Some(model), Some(c.id)),
                Err(_) => (None, None),
            }
        } else {
            ctx.log.info(format!(
                "{rated} rated reviews: too few to train a classifier; the lexicon scores alone"
            ));
            (None, None)
        };
        let sentiment = std::sync::Arc::new(Sentiment::new(scorer, classifier));

        let (scored, labels) = score_unscored(ctx, sentiment, model_id, p.rescore).await?;
        let products = refresh_product_sentiment(&lake).await.map_err(failed)?;
        ctx.log.info(format!(
            "scored {scored} reviews ({} positive, {} neutral, {} negative), {products} products' means refreshed in {:.2}s",
            labels[0],
            labels[1],
            labels[2],
            started.elapsed().as_secs_f64()
        ));
        Ok(())
    }
}

/// Scores every review without a score (every review when `all`) with `sentiment` (from
/// model `model_id`), a batch at a time, into one `review_sentiment` file committed at the
/// end. Returns how many were scored and how many per label.
pub async fn score_unscored(
    ctx: &JobContext,
    sentiment: std::sync::Arc<Sentiment>,
    model_id: Option<i64>,
    all: bool,
) -> Result<(u64, [u64; 3]), JobError> {
    let lake = ctx.lake()?;
    let mut pass = crate::lake::sentiment::unscored(&lake, all)
        .await
        .map_err(failed)?;
    let mut file = Some(crate::lake::sentiment::ScoreFile::create(&lake).map_err(failed)?);
    let mut labels = [0u64; 3];
    while let Some((ids, texts)) = pass.next().await.map_err(failed)? {
        if ctx.cancel.is_cancelled() {
            return Err(JobError::Cancelled);
        }
        let s = sentiment.clone();
        let mut f = file
            .take()
            .ok_or_else(|| JobError::Failed("the sentiment file was lost".to_owned()))?;
        let (f, counts) = tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let scored = s.score_many(&refs);
            let mut counts = [0u64; 3];
            for score in &scored {
                counts[score.label.index()] += 1;
            }
            let names = scored.iter().map(|s| s.label.as_str()).collect();
            let values = scored.iter().map(|s| s.score).collect();
            f.write(ids, values, names, model_id).map(|()| (f, counts))
        })
        .await
        .map_err(|e| JobError::Failed(e.to_string()))?
        .map_err(failed)?;
        file = Some(f);
        for (total, n) in labels.iter_mut().zip(counts) {
            *total += n;
        }
    }
    let file = file.ok_or_else(|| JobError::Failed("the sentiment file was lost".to_owned()))?;
    let scored = file.commit(&lake, pass).await.map_err(failed)?;
    Ok((scored, labels))
}

/// Recomputes every product's mean sentiment and rating from the scored clean reviews.
pub async fn refresh_product_sentiment(lake: &crate::lake::Lake) -> anyhow::Result<u64> {
    let rows = crate::lake::read::product_sentiment(lake).await?;
    Ok(intelligence::replace_product_sentiment(lake.db(), rows).await?)
}

/// The champion classifier blended with the lexicons, without training; the lexicons alone
/// when there is none.
pub async fn champion_sentiment(
    ctx: &JobContext,
) -> Result<(std::sync::Arc<Sentiment>, Option<i64>), JobError> {
    let scorer = lexicon_scorer(&ctx.settings).map_err(JobError::Fatal)?;
    let champion = repo::models::champion(&ctx.db, "sentiment")
        .await
        .map_err(failed)?;
    let (classifier, id) = match champion {
        Some(c) => match serde_json::from_str::<Classifier>(&c.payload) {
            Ok(model) => (Some(model), Some(c.id)),
            Err(_) => (None, None),
        },
        None => (None, None),
    };
    Ok((std::sync::Arc::new(Sentiment::new(scorer, classifier)), id))
}
