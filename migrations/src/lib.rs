//! The schema of patron, as an ordered list of sea-orm migrations.
//!
//! This crate is the only place that changes tables: `patron migrate` and daemon start-up run
//! [`Migrator::up`]; tests build their databases the same way.

pub use sea_orm_migration::prelude::*;

mod m20261128_000001_scheduler;
mod m20261129_000002_domain;
mod m20261129_000003_intelligence;
mod m20261129_000004_recommendations;
mod m20261130_000005_feedback;
mod m20261130_000006_loyalty;
mod m20261130_000007_sla;
mod m20261130_000008_pools;
mod m20261130_000009_claim_index;
mod m20261201_000010_shards;
mod m20261201_000011_run_state_index;
mod m20261205_000012_attempt_processes;
mod m20261205_000013_run_reruns;
mod m20261205_000014_recommendation_reasons;
mod m20261205_000015_lake;
mod m20261205_000016_sentiment_lake;
mod m20261205_000017_scores_lake;
mod m20261205_000018_profiles_recommendations_lake;
mod m20261205_000019_tier_rechecks;

pub use m20261205_000015_lake::RAW_TABLES;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_scheduler::Migration),
            Box::new(m20261129_000002_domain::Migration),
            Box::new(m20261129_000003_intelligence::Migration),
            Box::new(m20261129_000004_recommendations::Migration),
            Box::new(m20261130_000005_feedback::Migration),
            Box::new(m20261130_000006_loyalty::Migration),
            Box::new(m20261130_000007_sla::Migration),
            Box::new(m20261130_000008_pools::Migration),
            Box::new(m20261130_000009_claim_index::Migration),
            Box::new(m20261201_000010_shards::Migration),
            Box::new(m20261201_000011_run_state_index::Migration),
            Box::new(m20261205_000012_attempt_processes::Migration),
            Box::new(m20261205_000013_run_reruns::Migration),
            Box::new(m20261205_000014_recommendation_reasons::Migration),
            Box::new(m20261205_000015_lake::Migration),
            Box::new(m20261205_000016_sentiment_lake::Migration),
            Box::new(m20261205_000017_scores_lake::Migration),
            Box::new(m20261205_000018_profiles_recommendations_lake::Migration),
            Box::new(m20261205_000019_tier_rechecks::Migration),
        ]
    }
}
