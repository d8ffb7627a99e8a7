//! Which running attempts a starting daemon may take for lost at once, without waiting for
//! their leases: those whose daemon is known dead. Pure: the caller says which processes of
//! this host still run.

/// A running attempt with what is known of the daemon that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldAttempt {
    pub attempt_id: i64,
    pub job_run_id: i64,
    pub number: i32,
    pub worker_id: String,
    /// Where the holding daemon runs, and its pid and start time there (none for daemons
    /// of older versions, or workers that were never registered).
    pub worker_host: Option<String>,
    pub worker_pid: Option<i32>,
    pub worker_start: Option<i64>,
    /// The attempt's process group, on `host`, if it started one.
    pub host: Option<String>,
    pub pgid: Option<i32>,
    pub pgid_start: Option<i64>,
}

/// Whether `attempt`'s daemon is dead, seen from the daemon `worker_id` starting on `host`:
/// it is this worker id's previous process, or it ran on this host and its process is gone
/// (`running(pid, start)` says whether that process still runs). Daemons elsewhere, or
/// without a recorded start time, are left to their leases.
pub fn holder_is_dead(
    attempt: &HeldAttempt,
    worker_id: &str,
    host: &str,
    running: impl Fn(i32, i64) -> bool,
) -> bool {
    if attempt.worker_id == worker_id {
        return true;
    }
    match (
        &attempt.worker_host,
        attempt.worker_pid,
        attempt.worker_start,
    ) {
        (Some(h), Some(pid), Some(start)) if h == host => !running(pid, start),
        _ => false,
    }
}

/// The process group `attempt` left on `host`, if any: only a group recorded on this host can
/// be seen and ended here.
pub fn group_here(attempt: &HeldAttempt, host: &str) -> Option<(i32, Option<i64>)> {
    match (&attempt.host, attempt.pgid) {
        (Some(h), Some(pgid)) if h == host => Some((pgid, attempt.pgid_start)),
        _ => None,
    }
}

/// Whether a daemon is alive, as its row and heartbeat show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    Running,
    /// Registered as running, but silent for longer than a lease: probably dead (its jobs are
    /// reaped once their leases expire, at once if a daemon starts on its host).
    Stale,
    Stopped,
}

impl std::fmt::Display for Liveness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Running => "running",
            Self::Stale => "stale",
            Self::Stopped => "stopped",
        })
    }
}

/// A daemon's liveness at `now`: stale once its last heartbeat is older than `lease_ttl`.
pub fn liveness(
    stopped: bool,
    heartbeat_at: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
    lease_ttl: std::time::Duration,
) -> Liveness {
    let lease = chrono::Duration::from_std(lease_ttl).unwrap_or(chrono::Duration::MAX);
    if stopped {
        Liveness::Stopped
    } else if now - heartbeat_at > lease {
        Liveness::Stale
    } else {
        Liveness::Running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemon_silent_for_longer_than_a_lease_is_stale() {
        let now = chrono::Utc::now();
        let lease = std::time::Duration::from_secs(30);
        let ago = |s| now - chrono::Duration::seconds(s);
        assert_eq!(liveness(false, ago(10), now, lease), Liveness::Running);
        assert_eq!(liveness(false, ago(30), now, lease), Liveness::Running);
        assert_eq!(liveness(false, ago(31), now, lease), Liveness::Stale);
        assert_eq!(liveness(false, ago(540), now, lease), Liveness::Stale);
        assert_eq!(liveness(true, ago(540), now, lease), Liveness::Stopped);
        assert_eq!(Liveness::Stale.to_string(), "stale");
    }

    fn held(worker_id: &str, worker_host: Option<&str>, pid: i32, start: i64) -> HeldAttempt {
        HeldAttempt {
            attempt_id: 1,
            job_run_id: 2,
            number: 1,
            worker_id: worker_id.to_owned(),
            worker_host: worker_host.map(str::to_owned),
            worker_pid: Some(pid),
            worker_start: Some(start),
            host: worker_host.map(str::to_owned),
            pgid: Some(77),
            pgid_start: Some(9),
        }
    }

    #[test]
    fn a_dead_daemon_on_this_host_loses_its_attempts_at_once() {
        let a = held("h-100", Some("h/boot/ns"), 100, 5000);
        // Process 100 is gone.
        assert!(holder_is_dead(&a, "h-200", "h/boot/ns", |_, _| false));
        // Process 100 runs, started at 5000: alive.
        assert!(!holder_is_dead(&a, "h-200", "h/boot/ns", |p, s| p == 100 && s == 5000));
        // Pid 100 was reused by a process started later: dead.
        assert!(holder_is_dead(&a, "h-200", "h/boot/ns", |p, s| p == 100 && s == 6000));
        assert_eq!(group_here(&a, "h/boot/ns"), Some((77, Some(9))));
    }

    #[test]
    fn other_hosts_and_unknown_daemons_wait_for_their_leases() {
        let elsewhere = held("k-100", Some("k/boot/ns"), 100, 5000);
        assert!(!holder_is_dead(&elsewhere, "h-200", "h/boot/ns", |_, _| {
            false
        }));
        assert_eq!(group_here(&elsewhere, "h/boot/ns"), None);
        let old = HeldAttempt {
            worker_start: None,
            ..held("h-100", Some("h/boot/ns"), 100, 0)
        };
        assert!(!holder_is_dead(&old, "h-200", "h/boot/ns", |_, _| false));
    }

    #[test]
    fn this_worker_ids_previous_process_is_dead_wherever_it_ran() {
        let mine = held("fixed-id", None, 1, 1);
        assert!(holder_is_dead(&mine, "fixed-id", "h/boot/ns", |_, _| true));
    }
}
