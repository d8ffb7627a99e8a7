//! Pure computation: plain data in, plain data out. Nothing here touches the database or the
//! clock; callers pass the data and the time.

pub mod features;
pub mod metrics;
pub mod models;
pub mod recommend;
pub mod segments;
pub mod sentiment;
