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
    fn names_round_trip() {
        let s = Shard { index: 2, count: 3 };
        assert_eq!(s.job_name("features"), "features:2");
        assert_eq!(base_name("features:2"), "features");
        assert_eq!(base_name("features"), "features");
        assert_eq!(s.to_string(), "shard 2 of 3");
    }
}
