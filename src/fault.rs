//! Test hook for crash safety: `PATRON_LAKE_FAULT=<point>` makes the process abort at that
//! point, as a `kill -9` there would (tests/it/lake.rs kills a load at each step between
//! writing its files and its catalog commit). Unset, it costs one environment lookup.

/// Dies at `point` when `PATRON_LAKE_FAULT` names it.
pub fn point(point: &str) {
    if std::env::var("PATRON_LAKE_FAULT").is_ok_and(|p| p == point) {
        eprintln!("PATRON_LAKE_FAULT: dying at {point}");
        std::process::abort();
    }
}
