//! Pipeline files: the TOML format, validation with `FILE:LINE: reason` problems, the DAG
//! (topological order, cycles, an ASCII picture) and cron schedules in a time zone.

pub mod graph;
pub mod load;
pub mod params;
pub mod progress;
pub mod recovery;
pub mod schedule;
pub mod shard;
pub mod spec;

pub use load::{KindCatalog, KindProblem, LoadedPipeline, Problem, load_paths, parse_source};
pub use params::{Accepted, RunParamUse, accepted_run_params, check_run_params};
pub use schedule::Schedule;
pub use shard::Shard;
pub use spec::{JobSpec, PipelineSpec, ScheduleSpec};
