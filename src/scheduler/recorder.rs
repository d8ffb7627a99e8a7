//! Writers that batch: attempt outcomes (one transaction per batch, never dropped while the
//! database is merely unreachable) and attempt log lines.

use std::{sync::Arc, time::Duration};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use super::{Shared, with_db_retry};
use crate::{
    db::repo::{self, dispatch::Finished},
    jobs::LogLine,
};

/// Largest batch written in one transaction.
const MAX_BATCH: usize = 1000;
/// How often buffered log lines are written.
const LOG_FLUSH: Duration = Duration::from_millis(100);

/// Runs until `drained` is cancelled (after every attempt task has ended), then writes what
/// is left and returns.
pub(super) async fn record_outcomes(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Finished>,
    drained: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        let first = tokio::select! {
            biased;
            f = rx.recv() => f,
            _ = drained.cancelled() => rx.try_recv().ok(),
        };
        let Some(first) = first else {
            return Ok(());
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(f) => batch.push(f),
                Err(_) => break,
            }
        }
        // Results are kept while the database is away; a never-ending wait is cut short only
        // by the final shutdown, and then the leases expire and the jobs are retried.
        let never = CancellationToken::new();
        let stop = if drained.is_cancelled() { &drained } else { &never };
        match with_db_retry("recording attempt outcomes", stop, || {
            repo::dispatch::finish(&shared.db, &shared.specs, shared.policy(), &batch)
        })
        .await
        {
            Ok(report) => {
                if report.stale > 0 {
                    warn!(stale = report.stale, "ignored results of attempts whose lease was taken over");
                }
                if report.runs.iter().any(|(_, s)| s.is_terminal()) {
                    // A finished run may free a slot for a queued one.
                    shared.kick();
                } else {
                    shared.wake.notify_one();
                }
            }
            Err(e) => {
                error!(error = %e, count = batch.len(), "could not record attempt outcomes; their leases will expire and the jobs will be retried");
            }
        }
    }
}

pub(super) async fn write_logs(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<LogLine>,
    drained: CancellationToken,
) -> anyhow::Result<()> {
    let mut buffer = Vec::new();
    let mut tick = tokio::time::interval(LOG_FLUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let finishing = tokio::select! {
            biased;
            line = rx.recv() => {
                match line {
                    Some(line) => { buffer.push(line); false }
                    None => true,
                }
            }
            _ = tick.tick() => false,
            _ = drained.cancelled() => true,
        };
        while let Ok(line) = rx.try_recv() {
            buffer.push(line);
        }
        if (finishing || tick_due(&buffer)) && !buffer.is_empty() {
            flush(&shared, &mut buffer).await;
        }
        if finishing {
            if !buffer.is_empty() {
                flush(&shared, &mut buffer).await;
            }
            return Ok(());
        }
    }
}

fn tick_due(buffer: &[LogLine]) -> bool {
    buffer.len() >= MAX_BATCH
        || buffer
            .first()
            .is_some_and(|l| (chrono::Utc::now() - l.at).to_std().unwrap_or_default() >= LOG_FLUSH)
}

async fn flush(shared: &Shared, buffer: &mut Vec<LogLine>) {
    // Logs are best effort: a few tries, then the lines are dropped with a warning rather
    // than held forever.
    let stop = CancellationToken::new();
    if let Err(e) = with_db_retry("writing attempt logs", &stop, || repo::logs::append(&shared.db, buffer)).await {
        warn!(error = %e, lines = buffer.len(), "dropped attempt log lines");
    }
    buffer.clear();
}
