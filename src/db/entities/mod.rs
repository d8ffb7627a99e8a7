//! sea-orm entities, one per table of the `migrations` crate.
//!
//! These mirror the migrations column for column. They are written by hand rather than by
//! `sea-orm-cli generate entity` because the generator maps our text state columns to `String`,
//! and every state here must be a Rust enum (see `sea_orm_active_enums`). Change a table in a
//! migration first, then mirror it here; `tests/it` builds its schema from the migrations, so a
//! mismatch fails the tests.

pub mod attempt;
pub mod attempt_log;
pub mod audit_log;
pub mod ingested_source;
pub mod job_run;
pub mod lake_commit;
pub mod lake_file;
pub mod model;
pub mod pipeline;
pub mod pipeline_version;
pub mod quarantine;
pub mod run;
pub mod run_rerun;
pub mod sea_orm_active_enums;
pub mod worker;

pub use sea_orm_active_enums::*;
