//! `patron models list|show`.

use clap::Subcommand;
use serde_json::{Value, json};

use super::{CliResult, Ctx, output};
use crate::db::{RepoError, entities::model, repo};

/// The kinds of model the jobs register.
const MODEL_KINDS: &[&str] = &["segments", "churn", "intent", "sentiment", "recommend"];

#[derive(Debug, Subcommand)]
pub enum ModelsCmd {
    /// Trained models, newest first, with their status and headline metrics.
    List {
        /// churn, intent, segments, sentiment, …
        #[arg(long)]
        kind: Option<String>,
    },
    /// One model: parameters and every metric (by id, or the champion of a kind).
    Show {
        /// A model id (as in `models list`), or a kind for its champion.
        model: String,
    },
}

fn model_json(m: &model::Model) -> Value {
    json!({
        "id": m.id,
        "kind": m.kind,
        "version": m.version,
        "algorithm": m.algorithm,
        "status": m.status,
        "as_of": m.as_of,
        "trained_at": m.trained_at,
        "params": serde_json::from_str::<Value>(&m.params).unwrap_or(Value::Null),
        "metrics": serde_json::from_str::<Value>(&m.metrics).unwrap_or(Value::Null),
    })
}

/// The headline number of a model's metrics, for tables.
pub(super) fn headline(metrics: &Value) -> String {
    for key in ["auc", "silhouette", "binary_accuracy", "ndcg_at_10"] {
        if let Some(v) = metrics.get(key).and_then(Value::as_f64) {
            return format!("{key} {v:.3}");
        }
    }
    String::new()
}

impl ModelsCmd {
    pub async fn run(self, ctx: &Ctx) -> CliResult {
        let db = ctx.db().await?;
        match self {
            ModelsCmd::List { kind } => {
                let models = repo::models::list(&db, kind.as_deref()).await?;
                if ctx.json {
                    let rows: Vec<Value> = models.iter().map(model_json).collect();
                    ctx.print_json(&rows)?;
                    return Ok(());
                }
                let mut t = output::table(&[
                    "id",
                    "kind",
                    "version",
                    "algorithm",
                    "status",
                    "as of",
                    "metric",
                    "trained",
                ]);
                for m in &models {
                    let metrics: Value = serde_json::from_str(&m.metrics).unwrap_or(Value::Null);
                    t.add_row(vec![
                        m.id.to_string(),
                        m.kind.clone(),
                        m.version.to_string(),
                        m.algorithm.clone(),
                        m.status.to_string(),
                        m.as_of.clone().unwrap_or_default(),
                        headline(&metrics),
                        output::time(Some(m.trained_at)),
                    ]);
                }
                println!("{t}");
            }
            ModelsCmd::Show { model } => {
                let m = match model.parse::<i64>() {
                    Ok(id) => repo::models::get(&db, id).await?,
                    Err(_) => match repo::models::champion(&db, &model).await? {
                        Some(m) => m,
                        None if MODEL_KINDS.contains(&model.as_str()) => {
                            return Err(RepoError::Conflict(format!(
                                "no champion model of kind {model} yet (patron models list --kind {model})"
                            ))
                            .into());
                        }
                        None => return Err(RepoError::not_found("model kind", &model).into()),
                    },
                };
                let mut json = model_json(&m);
                // Recommendation models: how their current lists fare (from `rec_click` events
                // and later paid orders).
                let click_through = if m.kind == "recommend" {
                    let lake = ctx.lake(db.clone())?;
                    let pairs = crate::lake::recommendations::pairs_of_model(&lake, m.id).await?;
                    let shown = pairs.len() as i64;
                    let (clicked, bought) = crate::lake::read::click_through(&lake, &pairs).await?;
                    let rate = |n: i64| {
                        if shown > 0 {
                            n as f64 / shown as f64
                        } else {
                            0.0
                        }
                    };
                    let ct = json!({
                        "recommendations": shown,
                        "clicked": clicked,
                        "bought_after_click": bought,
                        "click_through_rate": rate(clicked),
                        "conversion_rate": rate(bought),
                    });
                    json["click_through"] = ct.clone();
                    Some(ct)
                } else {
                    None
                };
                if ctx.json {
                    ctx.print_json(&json)?;
                } else {
                    println!(
                        "model {} — {} v{} {} ({}), trained {} on data as of {}",
                        m.id,
                        m.kind,
                        m.version,
                        m.algorithm,
                        m.status,
                        output::time(Some(m.trained_at)),
                        m.as_of.as_deref().unwrap_or("-")
                    );
                    println!("params  {}", json["params"]);
                    println!("metrics:");
                    if let Some(obj) = json["metrics"].as_object() {
                        for (k, v) in obj {
                            println!("  {k:28} {v}");
                        }
                    }
                    if let Some(ct) = click_through {
                        println!(
                            "click-through: {} of {} current recommendations clicked ({:.2}%), {} bought after the click ({:.2}%)",
                            ct["clicked"],
                            ct["recommendations"],
                            ct["click_through_rate"].as_f64().unwrap_or(0.0) * 100.0,
                            ct["bought_after_click"],
                            ct["conversion_rate"].as_f64().unwrap_or(0.0) * 100.0
                        );
                    }
                }
            }
        }
        Ok(())
    }
}
