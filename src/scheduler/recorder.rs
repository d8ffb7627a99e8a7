//! The recorder: one writer for attempt log lines and attempt outcomes, in the order the
//! attempts sent them, so a job's last lines are in the database before its run is seen to
//! finish. Outcomes are written one batch per transaction and never dropped while the database
//! is merely unreachable; log lines are best effort.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use super::{Shared, with_db_retry};
use crate::{
    db::repo::{self, dispatch::Finished},
    jobs::{
        LogLine,
        command::host::{Group, this_host},
    },
};

/// Largest batch written at once.
const MAX_BATCH: usize = 2000;

/// What attempts send to the recorder.
pub(super) enum Record {
    Log(LogLine),
    /// A process group an attempt started (written before its later lines and its outcome).
    Group {
        attempt_id: i64,
        group: Group,
    },
    Outcome(Finished),
}

/// Runs until `drained` is cancelled (after every attempt task has ended) and the channel is
/// empty.
pub(super) async fn record(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Record>,
    drained: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        let first = tokio::select! {
            biased;
            r = rx.recv() => r,
            _ = drained.cancelled() => rx.try_recv().ok(),
        };
        let Some(first) = first else {
            return Ok(());
        };
        let mut logs = Vec::new();
        let mut groups = Vec::new();
        let mut outcomes = Vec::new();
        let mut push = |r: Record| match r {
            Record::Log(l) => logs.push(l),
            Record::Group { attempt_id, group } => {
                groups.push((attempt_id, group.pgid, group.start))
            }
            Record::Outcome(f) => outcomes.push(f),
        };
        push(first);
        let mut n = 1;
        while n < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => {
                    push(r);
                    n += 1;
                }
                Err(_) => break,
            }
        }
        if !groups.is_empty() {
            let host = this_host();
            if let Err(e) = with_db_retry("recording process groups", &drained, || {
                repo::processes::record_groups(&shared.db, host.as_str(), &groups)
            })
            .await
            {
                warn!(error = %e, "could not record the process groups of attempts");
            }
        }
        if !logs.is_empty() {
            // Kept, like outcomes, while the database is away, until the final shutdown.
            if let Err(e) = with_db_retry("writing attempt logs", &drained, || {
                repo::logs::append(&shared.db, &logs)
            })
            .await
            {
                warn!(error = %e, lines = logs.len(), "dropped attempt log lines");
            }
        }
        if !outcomes.is_empty() {
            write_outcomes(&shared, &outcomes, &drained).await;
            // Written, stale or given up on: either way no longer this worker's to hold.
            if let Ok(mut recording) = shared.recording.lock() {
                for f in &outcomes {
                    recording.remove(&f.attempt_id);
                }
            }
        }
    }
}

async fn write_outcomes(shared: &Shared, batch: &[Finished], drained: &CancellationToken) {
    // Results are kept while the database is away; the wait is cut short only by the final
    // shutdown (`drained`: a daemon asked to stop during an outage still exits), and then the
    // leases expire and the jobs are retried elsewhere.
    match with_db_retry("recording attempt outcomes", drained, || {
        repo::dispatch::finish(&shared.db, &shared.specs, shared.policy(), batch)
    })
    .await
    {
        Ok(report) => {
            if report.stale > 0 {
                warn!(
                    stale = report.stale,
                    "ignored results of attempts whose lease was taken over"
                );
            }
            super::notify::runs_failed(shared, &report);
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
