//! Query functions per aggregate. Each takes a connection (or opens its own write
//! transaction), so the CLI, the console and the daemon share one way to read and change rows.

pub mod audit;
pub mod console;
pub mod demo;
pub mod dispatch;
pub mod features;
pub mod feedback;
pub mod intelligence;
pub mod logs;
pub mod loyalty;
pub mod models;
pub mod pipelines;
pub mod processes;
pub mod recommend;
pub mod runs;
pub mod shards;
pub mod sources;
pub mod watermarks;
pub mod workers;

/// Rows per statement for bulk inserts and `IN (...)` lists: far below both backends'
/// bind-parameter limits (see DEPENDENCIES.md).
pub(crate) const CHUNK: usize = 500;
