//! Demo data for `patron demo`: a synthetic shop written as files for the pipelines to ingest.

pub mod shop;
