//! Failure notifications: a run that ends `failed` is posted as JSON to
//! `notify.webhook_url` (with a Slack-compatible `text`), retried with backoff on a task of
//! its own, so a slow or dead webhook never holds up the scheduler. Only the daemon that
//! recorded the run's end posts it, so several daemons do not post the same failure twice.

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Shared;
use crate::db::{entities::RunState, repo::dispatch::FinishReport};

/// Notifications waiting to be sent, at most; more are dropped with a log line.
const QUEUE: usize = 256;

/// What the notifier is asked to post.
pub(super) enum Notice {
    /// A run ended `failed`; the notifier reads which jobs failed (off the recorder's path).
    RunFailed(i64),
    /// A message ready to post.
    Post(Value),
}

/// Sends queued notifications until `stop` is cancelled.
pub(super) async fn run(
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Notice>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let url = shared.all_settings.notify.webhook_url.clone();
    let attempts = shared.all_settings.notify.max_attempts.max(1);
    loop {
        let notice = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            b = rx.recv() => match b { Some(b) => b, None => return Ok(()) },
        };
        let body = match notice {
            Notice::RunFailed(run_id) => failed_body(&shared, run_id).await,
            Notice::Post(body) => body,
        };
        let mut delay = Duration::from_millis(500);
        for attempt in 1..=attempts {
            let sent = shared
                .http
                .post(&url)
                .timeout(Duration::from_secs(10))
                .json(&body)
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    info!(run_id = %body["run_id"], "failure notification sent");
                    break;
                }
                other => {
                    let why = match other {
                        Ok(r) => format!("HTTP {}", r.status()),
                        // Without the URL: a webhook URL is a secret.
                        Err(e) => e.without_url().to_string(),
                    };
                    if attempt == attempts {
                        warn!(error = why, run_id = %body["run_id"], "failure notification dropped after {attempts} attempts");
                        break;
                    }
                    warn!(error = why, retry_in = ?delay, "failure notification not delivered");
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(60));
                }
            }
        }
    }
}

/// A channel for [`run`].
pub(super) fn channel() -> (mpsc::Sender<Notice>, mpsc::Receiver<Notice>) {
    mpsc::channel(QUEUE)
}

/// Queues `notice` if a webhook is configured (never waits; a full queue drops it).
fn queue(shared: &Shared, notice: Notice) {
    if shared.all_settings.notify.webhook_url.is_empty() {
        return;
    }
    if shared.notifications.try_send(notice).is_err() {
        warn!("notification queue is full; a notification was dropped");
    }
}

/// Queues a notification for each run that `report` ended `failed` (every caller of
/// `dispatch::finish` reports through here: the recorder, the reaper, start-up recovery).
pub(super) fn runs_failed(shared: &Shared, report: &FinishReport) {
    for (run_id, state) in &report.runs {
        if *state == RunState::Failed {
            queue(shared, Notice::RunFailed(*run_id));
        }
    }
}

/// The message for a failed run: its pipeline and failed jobs with their errors.
async fn failed_body(shared: &Shared, run_id: i64) -> Value {
    {
        let detail = crate::db::repo::runs::show(&shared.db, &shared.specs, run_id).await;
        match detail {
            Ok(d) => {
                let failed: Vec<String> = d
                    .jobs
                    .iter()
                    .filter(|(j, _)| j.state == crate::db::entities::JobState::Failed)
                    .map(|(j, _)| {
                        format!(
                            "{} after {} attempts ({})",
                            j.job_name,
                            j.attempts,
                            j.error.as_deref().unwrap_or("no error recorded")
                        )
                    })
                    .collect();
                let pipeline = d.pipeline;
                json!({
                    "event": "run_failed",
                    "run_id": run_id,
                    "pipeline": pipeline,
                    "failed_jobs": failed,
                    "worker_id": shared.worker_id,
                    "text": format!(
                        ":red_circle: patron: run {run_id} of `{pipeline}` failed: {}",
                        if failed.is_empty() { "see `patron runs show`".to_owned() } else { failed.join("; ") }
                    ),
                })
            }
            Err(e) => json!({
                "event": "run_failed",
                "run_id": run_id,
                "text": format!(":red_circle: patron: run {run_id} failed ({e})"),
            }),
        }
    }
}

/// Reports runs past their pipeline's `sla`, once each (the daemon that marks the run
/// posts it). Returns how many were reported.
pub(super) async fn sla_misses(shared: &Shared) -> crate::db::Result<usize> {
    let now = crate::db::now();
    let mut reported = 0;
    for (run_id, version, created) in crate::db::repo::runs::unfinished(&shared.db).await? {
        let spec = shared.specs.get(&shared.db, version).await?;
        let Some(sla) = spec.spec.sla else { continue };
        let age = (now - created).to_std().unwrap_or_default();
        if age < sla || !crate::db::repo::runs::mark_sla_missed(&shared.db, run_id).await? {
            continue;
        }
        reported += 1;
        let pipeline = spec.spec.name.clone();
        warn!(run_id, pipeline, ?sla, "run is past its SLA");
        let body = json!({
            "event": "sla_missed",
            "run_id": run_id,
            "pipeline": pipeline,
            "sla_seconds": sla.as_secs_f64(),
            "age_seconds": age.as_secs_f64(),
            "worker_id": shared.worker_id,
            "text": format!(
                ":warning: patron: run {run_id} of `{pipeline}` is past its SLA of {} (running for {})",
                humantime::format_duration(sla),
                humantime::format_duration(Duration::from_secs(age.as_secs()))
            ),
        });
        queue(shared, Notice::Post(body));
    }
    Ok(reported)
}
