//! `retrain`: churn and purchase-intent models by time travel, evaluated on a later time
//! split, registered with their metrics, promoted only when they beat the champion on the same
//! validation set; then every customer is scored with the champions.
//!
//! With `as_of` = A and `horizon_days` = H: the models train on features as of A − 2H with
//! labels from (A − 2H, A − H], and are validated on features as of A − H with labels from
//! (A − H, A]: every label is observed by A, and the validation customers' futures lie after
//! the training labels (a time split, never a random one). Churn = no paid order in the
//! horizon; intent = a paid order within `intent_days`. Only customers who had bought before
//! the as-of date are modelled (churn means little for someone who never bought); everyone
//! with features as of A is scored.

use std::collections::HashSet;

use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Job, JobContext, JobError, JobResult, failed, parse_params};
use crate::{
    analytics::{
        metrics,
        models::{self, Algorithm, Dataset, Model},
    },
    db::repo::{self, models::NewModel},
    jobs::features::{FeatureMatrix, MODEL_COLUMNS, cutoff, ensure_features_at, matrix_at},
};

pub struct Retrain;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    as_of: Option<String>,
    #[serde(default = "horizon")]
    horizon_days: u32,
    #[serde(default = "intent_days")]
    intent_days: u32,
    /// Training rows sampled per model (scoring covers everyone).
    #[serde(default = "sample")]
    sample: usize,
    #[serde(default = "trees")]
    trees: usize,
    #[serde(default = "max_depth")]
    max_depth: u16,
    #[serde(default = "seed")]
    seed: u64,
}

fn horizon() -> u32 {
    90
}
fn intent_days() -> u32 {
    30
}
fn sample() -> usize {
    50_000
}
fn trees() -> usize {
    30
}
fn max_depth() -> u16 {
    8
}
fn seed() -> u64 {
    42
}

const DAY: i64 = 86_400;

#[async_trait::async_trait]
impl Job for Retrain {
    fn kind(&self) -> &'static str {
        "retrain"
    }

    /// Its `as_of` (`JobContext::as_of`) may come from the run.
    fn run_params(&self) -> crate::pipeline::RunParamUse {
        crate::pipeline::RunParamUse::Reads(&["as_of"])
    }

    fn check_params(&self, params: &Value) -> Result<(), String> {
        let p: Params = parse_params(params)?;
        super::features::check_as_of(p.as_of.as_deref())?;
        if !(7..=730).contains(&p.horizon_days) {
            return Err("horizon_days must be between 7 and 730".to_owned());
        }
        if p.intent_days == 0 || p.intent_days > p.horizon_days {
            return Err("intent_days must be between 1 and horizon_days".to_owned());
        }
        if !(1..=200).contains(&p.trees) || !(1..=20).contains(&p.max_depth) {
            return Err("trees must be 1..=200 and max_depth 1..=20".to_owned());
        }
        Ok(())
    }

    async fn run(&self, ctx: &JobContext) -> JobResult {
        let p: Params = parse_params(&ctx.params_value()).map_err(JobError::Fatal)?;
        let horizon = i64::from(p.horizon_days);
        let a = ctx.as_of()?;
        let days = |n: i64| chrono::Duration::days(n);
        let (train_at, valid_at) = (a - days(2 * horizon), a - days(horizon));
        let db = &ctx.db;
        let lake = ctx.lake()?;
        let started = std::time::Instant::now();
        // Past dates are usually stored already (the features job's `also_days_before`);
        // what is missing is computed in one pass.
        ensure_features_at(&lake, &[train_at, valid_at, a])
            .await
            .map_err(failed)?;
        let dates: Vec<String> = [train_at, valid_at, a]
            .iter()
            .map(|d| d.format("%Y-%m-%d").to_string())
            .collect();
        let (train, valid) = (
            labelled(
                &lake,
                &dates[0],
                train_at,
                horizon,
                i64::from(p.intent_days),
            )
            .await?,
            labelled(
                &lake,
                &dates[1],
                valid_at,
                horizon,
                i64::from(p.intent_days),
            )
            .await?,
        );
        ctx.log.info(format!(
            "training on {} customers as of {train_at}, validating on {} as of {valid_at} (horizon {horizon} days)",
            train.rows, valid.rows
        ));

        let mut champions: Vec<(String, i64)> = Vec::new();
        for kind in ["churn", "intent"] {
            let (train_set, valid_set) = (
                train.dataset(kind, p.sample, p.seed),
                valid.dataset(kind, usize::MAX, p.seed),
            );
            let positives = train_set.y.iter().filter(|y| **y).count();
            if train_set.y.len() < 50 || positives == 0 || positives == train_set.y.len() {
                ctx.log.info(format!("{kind}: not enough labelled customers ({} rows, {positives} positive); no model trained", train_set.y.len()));
                continue;
            }
            let algorithms = match kind {
                "churn" => vec![
                    Algorithm::LogisticRegression,
                    Algorithm::RandomForest {
                        trees: p.trees,
                        max_depth: p.max_depth,
                        sample: p.sample,
                    },
                ],
                _ => vec![
                    Algorithm::DecisionTree {
                        max_depth: p.max_depth,
                    },
                    Algorithm::RandomForest {
                        trees: p.trees,
                        max_depth: p.max_depth,
                        sample: p.sample,
                    },
                ],
            };
            let recency = valid.recency_column();
            let seed = p.seed;
            let (results, baseline) = tokio::task::spawn_blocking(move || {
                let results: Vec<_> = algorithms
                    .iter()
                    .map(|algo| {
                        models::train(algo, &train_set, seed).map(|m| {
                            let e = models::evaluate(&m, &valid_set);
                            (m, e)
                        })
                    })
                    .collect();
                // The recency-only baseline: longer since the last order = more likely gone.
                let sign = if kind == "churn" { 1.0 } else { -1.0 };
                let scores: Vec<f64> = recency.iter().map(|r| sign * r).collect();
                let baseline = metrics::auc(&scores, &valid_set.y);
                (results, baseline)
            })
            .await
            .map_err(|e| JobError::Failed(format!("training thread: {e}")))?;

            let mut best: Option<(i64, models::Evaluation)> = None;
            for result in results {
                let (model, eval) = result.map_err(|e| JobError::Failed(format!("{kind}: {e}")))?;
                let metrics = json!({
                    "auc": eval.auc,
                    "log_loss": eval.log_loss,
                    "lift_top_decile": eval.lift_top_decile,
                    "validation_rows": eval.rows,
                    "validation_positives": eval.positives,
                    "baseline_recency_auc": baseline,
                    "train_as_of": dates[0],
                    "validation_as_of": dates[1],
                    "horizon_days": if kind == "churn" { p.horizon_days } else { p.intent_days },
                });
                let registered = repo::models::register(
                    db,
                    NewModel {
                        kind: kind.to_owned(),
                        algorithm: model.algorithm_name().to_owned(),
                        params: model.params_json(),
                        metrics: metrics.clone(),
                        as_of: Some(dates[2].clone()),
                        payload: serde_json::to_string(&model).map_err(failed)?,
                    },
                )
                .await
                .map_err(failed)?;
                ctx.log.info(format!(
                    "{kind} {} (model {}): AUC {:.3}, log-loss {:.3}, lift@10% {:.2} (recency-only AUC {baseline:.3})",
                    model.algorithm_name(),
                    registered.id,
                    eval.auc,
                    eval.log_loss,
                    eval.lift_top_decile
                ));
                if best.as_ref().is_none_or(|(_, b)| models::beats(&eval, b)) {
                    best = Some((registered.id, eval));
                }
            }
            let Some((best_id, best_eval)) = best else {
                continue;
            };
            // The champion is judged on the same validation set as the challengers.
            let promote = match repo::models::champion(db, kind).await.map_err(failed)? {
                None => true,
                Some(current) => match serde_json::from_str::<Model>(&current.payload) {
                    Ok(model) => {
                        let valid_set = valid.dataset(kind, usize::MAX, p.seed);
                        let current_eval = tokio::task::spawn_blocking(move || {
                            models::evaluate(&model, &valid_set)
                        })
                        .await
                        .map_err(|e| JobError::Failed(e.to_string()))?;
                        let wins = models::beats(&best_eval, &current_eval);
                        ctx.log.info(format!(
                            "{kind}: champion {} scores AUC {:.3} on this validation set; challenger {best_id} {:.3} → {}",
                            current.id,
                            current_eval.auc,
                            best_eval.auc,
                            if wins { "promoted" } else { "champion kept" }
                        ));
                        wins
                    }
                    Err(_) => true, // an unreadable champion (older format) is replaced
                },
            };
            if promote {
                repo::models::promote(db, best_id).await.map_err(failed)?;
            }
            if let Some(c) = repo::models::champion(db, kind).await.map_err(failed)? {
                champions.push((kind.to_owned(), c.id));
            }
        }

        let scored = score_everyone(&lake, &dates[2], &champions).await?;
        ctx.log.info(format!(
            "scored {scored} customers as of {} with {} in {:.2}s",
            dates[2],
            champions
                .iter()
                .map(|(k, id)| format!("{k} model {id}"))
                .collect::<Vec<_>>()
                .join(", "),
            started.elapsed().as_secs_f64()
        ));
        Ok(())
    }
}

/// Customers with features as of a date who had bought before it, with their labels.
struct Labelled {
    rows: usize,
    values: Vec<f64>,
    churned: Vec<bool>,
    bought_soon: Vec<bool>,
}

impl Labelled {
    fn dataset(&self, kind: &str, sample: usize, seed: u64) -> Dataset {
        let y = if kind == "churn" {
            &self.churned
        } else {
            &self.bought_soon
        };
        let width = FeatureMatrix::width();
        // A deterministic sample: every row when it fits, else an evenly spaced subset
        // offset by the seed.
        let step = self.rows.div_ceil(sample.max(1)).max(1);
        let offset = (seed as usize) % step;
        let keep: Vec<usize> = (offset..self.rows).step_by(step).collect();
        Dataset {
            columns: MODEL_COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
            x: keep
                .iter()
                .flat_map(|&i| self.values[i * width..(i + 1) * width].iter().copied())
                .collect(),
            y: keep.iter().map(|&i| y[i]).collect(),
        }
    }

    fn recency_column(&self) -> Vec<f64> {
        let width = FeatureMatrix::width();
        (0..self.rows).map(|i| self.values[i * width]).collect()
    }
}

async fn labelled(
    lake: &crate::lake::Lake,
    as_of: &str,
    date: NaiveDate,
    horizon: i64,
    intent: i64,
) -> Result<Labelled, JobError> {
    let matrix = matrix_at(lake, as_of).await.map_err(failed)?;
    let start = cutoff(date);
    let later: HashSet<String> =
        crate::lake::read::buyers_between(lake, start, start + horizon * DAY)
            .await
            .map_err(failed)?;
    let soon: HashSet<String> =
        crate::lake::read::buyers_between(lake, start, start + intent * DAY)
            .await
            .map_err(failed)?;
    let frequency = matrix.column("frequency").unwrap_or(1);
    let mut out = Labelled {
        rows: 0,
        values: Vec::new(),
        churned: Vec::new(),
        bought_soon: Vec::new(),
    };
    for (i, id) in matrix.customers.iter().enumerate() {
        let row = matrix.row(i);
        if row[frequency] < 1.0 {
            continue;
        }
        out.rows += 1;
        out.values.extend_from_slice(row);
        out.churned.push(!later.contains(id));
        out.bought_soon.push(soon.contains(id));
    }
    Ok(out)
}

/// Scores everyone with features as of `as_of` with the champions; returns how many.
async fn score_everyone(
    lake: &crate::lake::Lake,
    as_of: &str,
    champions: &[(String, i64)],
) -> Result<usize, JobError> {
    let db = lake.db();
    let matrix = matrix_at(lake, as_of).await.map_err(failed)?;
    let mut columns: Vec<(Option<Vec<f64>>, Option<i64>)> = Vec::new();
    for kind in ["churn", "intent"] {
        match champions.iter().find(|(k, _)| k == kind) {
            Some((_, id)) => {
                let stored = repo::models::get(db, *id).await.map_err(failed)?;
                let model: Model = serde_json::from_str(&stored.payload).map_err(failed)?;
                let values = matrix.values.clone();
                let probs = tokio::task::spawn_blocking(move || model.predict_proba(&values))
                    .await
                    .map_err(|e| JobError::Failed(e.to_string()))?;
                columns.push((Some(probs), Some(*id)));
            }
            None => columns.push((None, None)),
        }
    }
    let mut columns = columns.into_iter();
    let mut next = || match columns.next() {
        Some((Some(p), Some(id))) => Some((p, id)),
        _ => None,
    };
    let (churn, intent) = (next(), next());
    let n = crate::lake::scores::store(
        lake,
        crate::lake::scores::Scores {
            as_of: as_of.to_owned(),
            customers: matrix.customers,
            churn,
            intent,
        },
    )
    .await
    .map_err(failed)?;
    Ok(n as usize)
}
