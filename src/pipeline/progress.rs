//! How a run moves forward, as pure functions of the DAG and the job states: which waiting
//! jobs become ready (or `upstream_failed`, or `cancelled`), when a run is over and how, and
//! how long a failed job waits before its next attempt.

use std::time::Duration;

use crate::db::entities::{JobState, RunState};

/// State changes for the jobs of one run, given `edges` (name, upstream indices) and the
/// current `states` in the same order. Waiting jobs whose upstreams all succeeded become
/// ready; those with a failed or cancelled upstream become `upstream_failed` (transitively);
/// with `cancel_requested`, every waiting or ready job becomes cancelled instead.
pub fn advance(
    edges: &[(String, Vec<usize>)],
    states: &[JobState],
    cancel_requested: bool,
) -> Vec<(usize, JobState)> {
    let mut current = states.to_vec();
    let mut changes = Vec::new();
    if cancel_requested {
        for (i, state) in current.iter().enumerate() {
            if matches!(state, JobState::Waiting | JobState::Ready) {
                changes.push((i, JobState::Cancelled));
            }
        }
        return changes;
    }
    // Topological order lets a failure propagate down a chain in one pass; a cyclic graph
    // (impossible after validation) leaves its jobs waiting.
    let order = super::graph::topo_order(edges).unwrap_or_default();
    for i in order {
        if current[i] != JobState::Waiting {
            continue;
        }
        let ups = &edges[i].1;
        let next = if ups.iter().any(|&u| {
            matches!(
                current[u],
                JobState::Failed | JobState::UpstreamFailed | JobState::Cancelled
            )
        }) {
            Some(JobState::UpstreamFailed)
        } else if ups.iter().all(|&u| current[u].satisfies_downstream()) {
            Some(JobState::Ready)
        } else {
            None
        };
        if let Some(next) = next {
            current[i] = next;
            changes.push((i, next));
        }
    }
    changes
}

/// The run's final state once every job is terminal; `None` while any job is not.
pub fn run_outcome(states: &[JobState], cancel_requested: bool) -> Option<RunState> {
    run_outcome_of(states.iter().copied(), cancel_requested)
}

/// [`run_outcome`] over any sequence of job states (e.g. the distinct states of a run).
pub fn run_outcome_of(
    states: impl Iterator<Item = JobState> + Clone,
    cancel_requested: bool,
) -> Option<RunState> {
    if !states.clone().all(|s| s.is_terminal()) {
        return None;
    }
    Some(if states.clone().all(|s| s.satisfies_downstream()) {
        RunState::Succeeded
    } else if cancel_requested || states.clone().any(|s| s == JobState::Cancelled) {
        RunState::Cancelled
    } else {
        RunState::Failed
    })
}

/// For each job, how many of its upstreams have not succeeded (or been skipped): a waiting
/// job becomes ready when this reaches zero.
pub fn pending_upstreams(edges: &[(String, Vec<usize>)], states: &[JobState]) -> Vec<i32> {
    edges
        .iter()
        .map(|(_, ups)| {
            ups.iter()
                .filter(|&&u| !states[u].satisfies_downstream())
                .count() as i32
        })
        .collect()
}

/// When the jobs `succeeded` finish, by how much each downstream job's pending count drops:
/// `(job, amount)`, each job once.
pub fn upstream_decrements(down: &[Vec<usize>], succeeded: &[usize]) -> Vec<(usize, i32)> {
    let mut amounts: std::collections::BTreeMap<usize, i32> = Default::default();
    for &s in succeeded {
        for &d in &down[s] {
            *amounts.entry(d).or_default() += 1;
        }
    }
    amounts.into_iter().collect()
}

/// Every job downstream of `from`, transitively (not `from` itself).
pub fn downstream_closure(down: &[Vec<usize>], from: &[usize]) -> Vec<usize> {
    let mut seen = vec![false; down.len()];
    let mut stack: Vec<usize> = from.iter().flat_map(|&f| down[f].iter().copied()).collect();
    let mut out = Vec::new();
    while let Some(n) = stack.pop() {
        if !seen[n] {
            seen[n] = true;
            out.push(n);
            stack.extend(down[n].iter().copied());
        }
    }
    out.sort_unstable();
    out
}

/// The wait before retry number `failures` (1 for the first retry): `base × 2^(failures-1)`,
/// capped at `max`, then scaled by `jitter` (a factor drawn from `[0.5, 1.0]`, so retries of
/// many jobs that failed together spread out instead of hitting a dependency at once).
pub fn backoff(base: Duration, failures: u32, max: Duration, jitter: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let raw = base.saturating_mul(1u32 << exp).min(max);
    raw.mul_f64(jitter.clamp(0.5, 1.0))
}

#[cfg(test)]
mod tests {
    use JobState::*;

    use super::*;

    /// a -> b, a -> c, (b, c) -> d: a diamond.
    fn diamond() -> Vec<(String, Vec<usize>)> {
        vec![
            ("a".into(), vec![]),
            ("b".into(), vec![0]),
            ("c".into(), vec![0]),
            ("d".into(), vec![1, 2]),
        ]
    }

    #[test]
    fn roots_become_ready_first() {
        let changes = advance(&diamond(), &[Waiting; 4], false);
        assert_eq!(changes, vec![(0, Ready)]);
    }

    #[test]
    fn a_join_waits_for_every_upstream() {
        let g = diamond();
        assert_eq!(
            advance(&g, &[Succeeded, Succeeded, Running, Waiting], false),
            vec![]
        );
        assert_eq!(
            advance(&g, &[Succeeded, Succeeded, Succeeded, Waiting], false),
            vec![(3, Ready)]
        );
    }

    #[test]
    fn failure_propagates_downstream_transitively() {
        let g = vec![
            ("a".into(), vec![]),
            ("b".into(), vec![0]),
            ("c".into(), vec![1]),
            ("x".into(), vec![]),
        ];
        assert_eq!(
            advance(&g, &[Failed, Waiting, Waiting, Succeeded], false),
            vec![(1, UpstreamFailed), (2, UpstreamFailed)]
        );
    }

    #[test]
    fn a_cancel_request_cancels_what_has_not_started() {
        assert_eq!(
            advance(&diamond(), &[Succeeded, Running, Ready, Waiting], true),
            vec![(2, Cancelled), (3, Cancelled)]
        );
    }

    #[test]
    fn run_outcome_needs_every_job_terminal() {
        assert_eq!(run_outcome(&[Succeeded, Running], false), None);
        assert_eq!(
            run_outcome(&[Succeeded, Skipped], false),
            Some(RunState::Succeeded)
        );
        assert_eq!(
            run_outcome(&[Succeeded, Failed, UpstreamFailed], false),
            Some(RunState::Failed)
        );
        assert_eq!(
            run_outcome(&[Succeeded, Cancelled], true),
            Some(RunState::Cancelled)
        );
        // A cancel that came too late to stop anything leaves an honest success.
        assert_eq!(run_outcome(&[Succeeded], true), Some(RunState::Succeeded));
    }

    #[test]
    fn counts_and_closures_for_incremental_progress() {
        let g = diamond();
        let down = vec![vec![1, 2], vec![3], vec![3], vec![]];
        assert_eq!(
            pending_upstreams(&g, &[Succeeded, Succeeded, Running, Waiting]),
            vec![0, 0, 0, 1]
        );
        assert_eq!(upstream_decrements(&down, &[1, 2]), vec![(3, 2)]);
        assert_eq!(upstream_decrements(&down, &[0]), vec![(1, 1), (2, 1)]);
        assert_eq!(downstream_closure(&down, &[0]), vec![1, 2, 3]);
        assert_eq!(downstream_closure(&down, &[2]), vec![3]);
        assert_eq!(downstream_closure(&down, &[3]), Vec::<usize>::new());
    }

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        assert_eq!(backoff(base, 1, max, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(base, 2, max, 1.0), Duration::from_millis(200));
        assert_eq!(backoff(base, 3, max, 1.0), Duration::from_millis(400));
        assert_eq!(backoff(base, 10, max, 1.0), max);
        assert_eq!(backoff(base, 2, max, 0.5), Duration::from_millis(100));
        // Jitter outside [0.5, 1] is clamped; huge failure counts do not overflow.
        assert_eq!(backoff(base, 2, max, 0.0), Duration::from_millis(100));
        assert_eq!(backoff(base, u32::MAX, max, 1.0), max);
    }
}
