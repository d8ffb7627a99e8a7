//! Integration tests, one binary (it links once). They drive the real `patron` binary against
//! a temporary SQLite file, and also against PostgreSQL when `PATRON_TEST_DATABASE_URL` is set
//! (each test then gets its own database, dropped afterwards).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chaos;
mod cli;
mod common;
mod connect;
mod console;
mod daemon;
mod hostile;
mod ingest;
mod intelligence;
mod lake;
mod loyalty;
mod ops;
mod outage;
mod recovery;
mod refusals;
mod safety;
mod shards;
mod triggers;
