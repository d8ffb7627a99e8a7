//! patron: a loyalty-analytics job scheduler. One binary is both the daemon that runs DAG
//! pipelines on cron schedules and the admin CLI; they talk through the database.

pub mod admin;
pub mod analytics;
pub mod cli;
pub mod config;
pub mod console;
pub mod db;
pub mod demo;
pub mod fault;
pub mod ingest;
pub mod jobs;
pub mod lake;
pub mod loyalty;
pub mod memory;
pub mod pipeline;
pub mod scheduler;
pub mod suggest;

#[cfg(test)]
mod hostile_input;
