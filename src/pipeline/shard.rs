//! Sharded jobs: `shards = N` on a job makes N job runs, shard `i` processing the customers
//! with `hash(customer_id) % N == i`.
//!
//! A sharded job is expanded when its pipeline is loaded into N ordinary jobs named `JOB:0`
//! … `JOB:N-1` (a `:` is not allowed in a written job name, so they cannot clash), and every
//! job that runs after `JOB` runs after all of them. The scheduler then needs nothing new:
//! the shards are claimed by whichever daemons have room, and downstream jobs wait for all.

use serde::{Deserialize, Serialize};

/// Most shards a job may have.
pub const MAX_SHARDS: u32 = 256;

/// Which part of the customers a job run processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Whether this shard processes `customer_id`.
    pub fn owns(&self, customer_id: &str) -> bool {
        shard_of(customer_id, self.count) == self.index
    }

    /// `JOB:i`, the name of one shard of `job`.
    pub fn job_name(&self, job: &str) -> String {
        format!("{job}:{}", self.index)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "shard {} of {}", self.index, self.count)
    }
}

/// `hash(customer_id) % count`. The hash is XXH3-64 (seed 0) over the id's UTF-8 bytes: a
/// published algorithm, so it gives the same answer on every daemon, machine and release,
/// which std's `DefaultHasher` does not promise.
pub fn shard_of(customer_id: &str, count: u32) -> u32 {
    (xxhash_rust::xxh3::xxh3_64(customer_id.as_bytes()) % u64::from(count.max(1))) as u32
}

/// The written job name of a job run's name: `features:2` → `features`.
pub fn base_name(job: &str) -> &str {
    job.rsplit_once(':').map_or(job, |(base, _)| base)
}

/// Which of the job runs a claim took to keep: at most one shard of each job of each run
/// (`(run, job name)` pairs, in claim order), so that the other shards are left for other
/// daemons, which were woken when the shards became ready. A daemon alone takes the next
/// shard at its next claim. Returns a keep flag per job run.
pub fn one_shard_per_job<'a>(taken: impl IntoIterator<Item = (i64, &'a str)>) -> Vec<bool> {
    let mut seen: std::collections::HashSet<(i64, &str)> = Default::default();
    taken
        .into_iter()
        .map(|(run, job)| {
            let base = base_name(job);
            base == job || seen.insert((run, base))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_xxh3_and_stable() {
        // XXH3-64 of the empty input is 0x2d06800538d394c2 (the reference implementation's).
        assert_eq!(shard_of("", 7), (0x2d06_8005_38d3_94c2_u64 % 7) as u32);
        assert_eq!(shard_of("anyone", 1), 0);
    }

    #[test]
    fn every_customer_belongs_to_exactly_one_shard() {
        let count = 4;
        let shards: Vec<Shard> = (0..count).map(|index| Shard { index, count }).collect();
        let mut sizes = [0usize; 4];
        for i in 0..4000 {
            let id = format!("C{i:05}");
            let owners: Vec<&Shard> = shards.iter().filter(|s| s.owns(&id)).collect();
            assert_eq!(owners.len(), 1, "{id}");
            sizes[owners[0].index as usize] += 1;
        }
        // Spread roughly evenly: each within 20% of a quarter.
        assert!(
            sizes.iter().all(|&n| (800..=1200).contains(&n)),
            "{sizes:?}"
        );
    }

    #[test]
    fn a_claim_keeps_one_shard_of_each_job_of_each_run() {
        let keep = one_shard_per_job([
            (1, "a"),
            (1, "f:0"),
            (1, "f:1"),
            (2, "f:0"),
            (1, "g:3"),
            (1, "b"),
            (2, "f:1"),
        ]);
        assert_eq!(keep, [true, true, false, true, true, true, false]);
    }

    #[test]
    fn names_round_trip() {
        let s = Shard { index: 2, count: 3 };
        assert_eq!(s.job_name("features"), "features:2");
        assert_eq!(base_name("features:2"), "features");
        assert_eq!(base_name("features"), "features");
        assert_eq!(s.to_string(), "shard 2 of 3");
    }
}
