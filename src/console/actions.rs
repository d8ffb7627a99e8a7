//! What the console's action keys do to the database: the same row changes as `patron
//! trigger`, `rerun`, `cancel`, `pipelines pause|resume`, `campaign launch` and `points
//! adjust`, each recorded in the audit log. Daemons (here or on other machines) pick the
//! changes up; nothing here waits for a run.

use std::collections::BTreeMap;

use serde_json::json;

use crate::{
    admin::{self, Adjusted},
    config::LoyaltySettings,
    db::{
        Db, RepoError,
        entities::{RunState, Trigger},
        repo::{
            self,
            pipelines::SpecCache,
            runs::{NewRun, RerunScope},
        },
    },
    jobs::Registry,
    pipeline::{self, LoadedPipeline},
};

/// A change the user asked for (and, if destructive, confirmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Trigger {
        pipeline: String,
        params: BTreeMap<String, String>,
    },
    RerunFailed {
        run_id: i64,
    },
    RerunFrom {
        run_id: i64,
        job: String,
    },
    Cancel {
        run_id: i64,
    },
    SetPaused {
        pipeline: String,
        paused: bool,
    },
    Launch {
        campaign_id: i64,
        name: String,
    },
    /// A manual point adjustment. Unconfirmed, it goes through only if it is within
    /// `loyalty.adjust_confirm_points` and keeps the balance at zero or more; otherwise the
    /// console asks, and the confirmed action is performed (and audited as confirmed).
    Adjust {
        customer: String,
        points: i64,
        reason: String,
        confirmed: bool,
    },
}

/// How a performed action ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Done: the text for the status line.
    Done(String),
    /// Nothing done yet: ask `question`, and on yes perform `action`.
    Confirm { question: String, action: Action },
}

impl Action {
    /// The confirmation question of a destructive action; `None` for trigger, which needs
    /// none (its parameter prompt is the deliberate step).
    pub fn question(&self) -> Option<String> {
        Some(match self {
            // The prompt is the deliberate step; an adjustment that needs confirmation comes
            // back from `perform_with` as a question (the check needs the balance).
            Action::Trigger { .. } | Action::Adjust { .. } => return None,
            Action::RerunFailed { run_id } => {
                format!("Rerun the failed, upstream-failed and cancelled jobs of run {run_id}?")
            }
            Action::RerunFrom { run_id, job } => {
                format!("Rerun run {run_id} from job `{job}` (it and everything downstream)?")
            }
            Action::Cancel { run_id } => {
                format!("Cancel run {run_id}? Running jobs are stopped.")
            }
            Action::SetPaused {
                pipeline,
                paused: true,
            } => format!("Pause pipeline `{pipeline}`? No cron runs start until it is resumed."),
            Action::SetPaused {
                pipeline,
                paused: false,
            } => format!("Resume pipeline `{pipeline}`? Its schedule restarts from now."),
            Action::Launch { campaign_id, name } => format!(
                "Launch campaign {campaign_id} `{name}` and pay its points? This cannot be undone."
            ),
        })
    }
}

/// The pipeline a campaign launch runs in (the same text as `patron campaign launch`'s, so
/// whichever applies it first, the other finds it unchanged).
const LAUNCH_PIPELINE: &str = r#"[pipeline]
name = "campaign-launch"
description = "Pays a campaign's points (started by `patron campaign launch`)"

[[job]]
name = "allocate"
kind = "points"
retries = 5
retry_backoff = "1s"
timeout = "30m"
"#;

/// Carries out `action` with the default loyalty settings; the text for the status line, or
/// why it failed (an adjustment that needs confirmation fails with the reason).
pub async fn perform(db: &Db, specs: &SpecCache, action: &Action) -> Result<String, String> {
    match perform_with(db, specs, &LoyaltySettings::default(), None, action).await? {
        Reply::Done(text) => Ok(text),
        Reply::Confirm { question, .. } => Err(question),
    }
}

/// Carries out `action`: done (the status line's text), a question to ask first, or why it
/// failed.
pub async fn perform_with(
    db: &Db,
    specs: &SpecCache,
    loyalty: &LoyaltySettings,
    lake: Option<&crate::lake::Lake>,
    action: &Action,
) -> Result<Reply, String> {
    if let Action::Adjust {
        customer,
        points,
        reason,
        confirmed,
    } = action
    {
        let adjustment = admin::Adjustment {
            customer: customer.clone(),
            points: *points,
            reason: reason.clone(),
            confirmed: *confirmed,
            via: "console",
        };
        return match admin::adjust(db, lake, loyalty, &adjustment).await {
            Ok(Adjusted::Done { balance, .. }) => Ok(Reply::Done(format!(
                "{customer}: {points:+} points ({reason}); balance {}",
                balance.balance
            ))),
            Ok(Adjusted::NeedsConfirmation(why)) => Ok(Reply::Confirm {
                question: format!(
                    "Adjust {customer} by {points:+} points? {}. The audit log records that you confirmed.",
                    capitalised(&why)
                ),
                action: Action::Adjust {
                    customer: customer.clone(),
                    points: *points,
                    reason: reason.clone(),
                    confirmed: true,
                },
            }),
            Err(e) => Err(e.to_string()),
        };
    }
    perform_inner(db, specs, action)
        .await
        .map(Reply::Done)
        .map_err(|e| e.to_string())
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

async fn perform_inner(db: &Db, specs: &SpecCache, action: &Action) -> Result<String, RepoError> {
    match action {
        Action::Trigger { pipeline, params } => trigger(db, specs, pipeline, params).await,
        Action::RerunFailed { run_id } => rerun(db, specs, *run_id, RerunScope::FailedOnly).await,
        Action::RerunFrom { run_id, job } => {
            rerun(db, specs, *run_id, RerunScope::From(job.clone())).await
        }
        Action::Cancel { run_id } => {
            let state = repo::runs::request_cancel(db, specs, *run_id).await?;
            repo::audit::record(
                db,
                "cancel",
                &run_id.to_string(),
                json!({ "via": "console" }),
            )
            .await?;
            Ok(if state == RunState::Cancelled {
                format!("run {run_id} cancelled")
            } else {
                format!("run {run_id} is cancelling: running jobs are being stopped")
            })
        }
        Action::SetPaused { pipeline, paused } => {
            let changed = repo::pipelines::set_paused(db, pipeline, *paused).await?;
            let word = if *paused { "paused" } else { "resumed" };
            if !changed {
                return Ok(format!("{pipeline} was already {word}"));
            }
            let action = if *paused {
                "pipelines.pause"
            } else {
                "pipelines.resume"
            };
            repo::audit::record(db, action, pipeline, json!({ "via": "console" })).await?;
            Ok(format!("{pipeline} {word}"))
        }
        Action::Launch { campaign_id, .. } => launch(db, specs, *campaign_id).await,
        // Handled in `perform_with`, which has the settings.
        Action::Adjust { .. } => Err(RepoError::Conflict(
            "a point adjustment needs the loyalty settings".to_owned(),
        )),
    }
}

async fn trigger(
    db: &Db,
    specs: &SpecCache,
    pipeline: &str,
    params: &BTreeMap<String, String>,
) -> Result<String, RepoError> {
    let view = repo::pipelines::get(db, specs, pipeline).await?;
    crate::pipeline::check_run_params(
        &view.spec.spec,
        &crate::jobs::Registry::builtin(),
        params.keys(),
    )
    .map_err(RepoError::Conflict)?;
    let now = crate::db::now();
    let key = format!(
        "manual__{}__{:04x}",
        now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        rand::random::<u16>()
    );
    let (run_id, created) = repo::runs::create(
        db,
        view.pipeline.id,
        view.version.id,
        &view.spec,
        NewRun {
            run_key: key,
            trigger: Trigger::Manual,
            logical_time: now,
            params: params.clone(),
        },
    )
    .await?;
    if created {
        repo::audit::record(
            db,
            "trigger",
            pipeline,
            json!({ "run_id": run_id, "params": params, "via": "console" }),
        )
        .await?;
    }
    let mut text = format!("run {run_id} of {pipeline} queued");
    if view.pipeline.paused {
        text.push_str(" (the pipeline is paused: the run waits until it is resumed)");
    }
    Ok(text)
}

async fn rerun(
    db: &Db,
    specs: &SpecCache,
    run_id: i64,
    scope: RerunScope,
) -> Result<String, RepoError> {
    let jobs = repo::runs::rerun(db, specs, run_id, &scope).await?;
    repo::audit::record(
        db,
        "rerun",
        &run_id.to_string(),
        json!({ "scope": format!("{scope:?}"), "jobs": jobs, "via": "console" }),
    )
    .await?;
    Ok(format!(
        "run {run_id} queued again: {} job{} ({})",
        jobs.len(),
        if jobs.len() == 1 { "" } else { "s" },
        jobs.join(", ")
    ))
}

/// Starts a campaign's launch run and returns at once; daemons pay the points.
async fn launch(db: &Db, specs: &SpecCache, id: i64) -> Result<String, RepoError> {
    let c = repo::loyalty::campaign(db, id).await?;
    match c.state.as_str() {
        "launched" => {
            return Err(RepoError::Conflict(format!(
                "campaign {id} was already launched (run {}): nothing more is paid",
                c.run_id.unwrap_or_default()
            )));
        }
        "cancelled" => {
            return Err(RepoError::Conflict(format!(
                "campaign {id} was cancelled: nothing is paid"
            )));
        }
        _ => {}
    }
    crate::loyalty::Campaign::parse(&c.source).map_err(|problems| {
        RepoError::Conflict(format!(
            "campaign {id} does not parse: {}",
            problems
                .iter()
                .map(|p| format!("line {}: {}", p.line, p.message))
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })?;
    let spec = pipeline::parse_source(
        "campaign-launch.toml",
        LAUNCH_PIPELINE,
        &Registry::builtin(),
    )
    .map_err(|p| RepoError::Corrupt(format!("built-in launch pipeline: {p:?}")))?;
    repo::pipelines::apply(
        db,
        &LoadedPipeline {
            path: "(built in)".to_owned(),
            source: LAUNCH_PIPELINE.to_owned(),
            spec,
        },
    )
    .await?;
    let view = repo::pipelines::get(db, specs, "campaign-launch").await?;
    // One run per campaign: launching twice (here, or here and in the CLI) finds one run.
    let (run_id, created) = repo::runs::create(
        db,
        view.pipeline.id,
        view.version.id,
        &view.spec,
        NewRun {
            run_key: format!("campaign-{id}"),
            trigger: Trigger::Manual,
            logical_time: crate::db::now(),
            params: [("campaign".to_owned(), id.to_string())].into(),
        },
    )
    .await?;
    repo::loyalty::set_campaign_run(db, id, run_id).await?;
    repo::loyalty::set_campaign_state(db, id, &["draft"], "launching").await?;
    if created {
        repo::audit::record(
            db,
            "campaign launch",
            &format!("campaign {id}"),
            json!({ "run_id": run_id, "name": c.name, "via": "console" }),
        )
        .await?;
        Ok(format!(
            "campaign {id} launching in run {run_id}; a daemon pays its points"
        ))
    } else {
        Ok(format!(
            "campaign {id} is already launching in run {run_id}"
        ))
    }
}

/// Parses the adjust prompt: `CUSTOMER POINTS REASON…` (the reason may have spaces).
pub fn parse_adjustment(text: &str) -> Result<Action, String> {
    let mut words = text.split_whitespace();
    let (Some(customer), Some(points)) = (words.next(), words.next()) else {
        return Err("type CUSTOMER POINTS REASON, e.g. C000123 -50 goodwill".to_owned());
    };
    let points: i64 = points
        .parse()
        .map_err(|_| format!("`{points}` is not a whole number of points"))?;
    let reason = words.collect::<Vec<_>>().join(" ");
    if reason.is_empty() {
        return Err("an adjustment needs a reason after the points".to_owned());
    }
    Ok(Action::Adjust {
        customer: customer.to_owned(),
        points,
        reason,
        confirmed: false,
    })
}

/// Parses the trigger prompt: `KEY=VALUE` pairs separated by spaces.
pub fn parse_params(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for pair in text.split_whitespace() {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("`{pair}` is not KEY=VALUE"))?;
        if k.is_empty() {
            return Err(format!("`{pair}` has an empty key"));
        }
        out.insert(k.to_owned(), v.to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_parse_as_pairs() {
        let p = parse_params(" as_of=2026-03-01  full=true ").unwrap();
        assert_eq!(p.get("as_of").map(String::as_str), Some("2026-03-01"));
        assert_eq!(p.len(), 2);
        assert!(parse_params("").unwrap().is_empty());
        assert!(parse_params("oops").is_err());
        assert!(parse_params("=x").is_err());
    }

    #[test]
    fn adjustments_parse_with_a_reason_of_several_words() {
        assert_eq!(
            parse_adjustment(" C000123  -50 late   delivery ").unwrap(),
            Action::Adjust {
                customer: "C000123".to_owned(),
                points: -50,
                reason: "late delivery".to_owned(),
                confirmed: false
            }
        );
        assert!(parse_adjustment("C1").is_err());
        assert!(parse_adjustment("C1 lots why").is_err());
        assert!(parse_adjustment("C1 5").is_err());
    }

    #[test]
    fn destructive_actions_ask_first() {
        assert!(
            Action::Trigger {
                pipeline: "p".into(),
                params: BTreeMap::new()
            }
            .question()
            .is_none()
        );
        assert!(Action::Cancel { run_id: 3 }.question().is_some());
    }
}
