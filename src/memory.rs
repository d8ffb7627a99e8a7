//! This process's memory as the kernel counts it (Linux `/proc/self/status`), for logs and
//! benchmarks. `None` where there is no such file.

/// Peak resident memory so far (`VmHWM`), in MB.
pub fn peak_mb() -> Option<f64> {
    status_kb("VmHWM:").map(|kb| kb / 1024.0)
}

/// Resident memory now (`VmRSS`), in MB.
pub fn resident_mb() -> Option<f64> {
    status_kb("VmRSS:").map(|kb| kb / 1024.0)
}

fn status_kb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
