//! What one daemon measures about itself, rendered in the Prometheus text format together
//! with gauges read from the database at scrape time.
//!
//! Written by hand rather than with the `prometheus` crate: a few counters and fixed-bucket
//! histograms are all the daemon needs, and the text format is a handful of lines.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        Mutex,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

/// Upper bounds of the duration buckets, seconds.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// A fixed-bucket histogram.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, seconds: f64) {
        for (i, upper) in BUCKETS.iter().enumerate() {
            if seconds <= *upper {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, upper) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{upper}\"}} {}",
                self.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// The daemon's own measurements.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Per job kind: how long attempts ran.
    durations: Mutex<BTreeMap<String, Histogram>>,
    /// Per (kind, outcome): attempts that ended.
    outcomes: Mutex<BTreeMap<(String, String), u64>>,
    /// How long each claim query took.
    claims: Mutex<Histogram>,
    lease_losses: AtomicU64,
    /// Epoch milliseconds of the dispatcher's last turn (its liveness).
    pub last_loop_ms: AtomicI64,
}

impl Metrics {
    pub fn attempt_ended(&self, kind: &str, outcome: &str, took: Duration) {
        if let Ok(mut d) = self.durations.lock() {
            d.entry(kind.to_owned())
                .or_default()
                .observe(took.as_secs_f64());
        }
        if let Ok(mut o) = self.outcomes.lock() {
            *o.entry((kind.to_owned(), outcome.to_owned())).or_default() += 1;
        }
        if outcome == "lost" {
            self.lease_losses.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn claimed(&self, took: Duration) {
        if let Ok(mut c) = self.claims.lock() {
            c.observe(took.as_secs_f64());
        }
    }

    pub fn loop_turned(&self, now_ms: i64) {
        self.last_loop_ms.store(now_ms, Ordering::Relaxed);
    }

    /// The process's own series.
    pub fn render(&self, out: &mut String) {
        out.push_str("# HELP patron_job_duration_seconds How long attempts ran, by job kind.\n");
        out.push_str("# TYPE patron_job_duration_seconds histogram\n");
        if let Ok(d) = self.durations.lock() {
            for (kind, h) in d.iter() {
                h.render(
                    out,
                    "patron_job_duration_seconds",
                    &format!("kind=\"{}\"", escape(kind)),
                );
            }
        }
        out.push_str("# HELP patron_attempts_finished_total Attempts this daemon ended, by kind and outcome.\n");
        out.push_str("# TYPE patron_attempts_finished_total counter\n");
        if let Ok(o) = self.outcomes.lock() {
            for ((kind, outcome), n) in o.iter() {
                let _ = writeln!(
                    out,
                    "patron_attempts_finished_total{{kind=\"{}\",outcome=\"{}\"}} {n}",
                    escape(kind),
                    escape(outcome)
                );
            }
        }
        out.push_str("# HELP patron_claim_seconds How long claiming ready jobs took.\n");
        out.push_str("# TYPE patron_claim_seconds histogram\n");
        if let Ok(c) = self.claims.lock() {
            c.render(out, "patron_claim_seconds", "");
        }
        out.push_str("# HELP patron_lease_losses_total Attempts stopped because this daemon lost their lease.\n");
        out.push_str("# TYPE patron_lease_losses_total counter\n");
        let _ = writeln!(
            out,
            "patron_lease_losses_total {}",
            self.lease_losses.load(Ordering::Relaxed)
        );
    }
}

/// A label value with `\`, `"` and newlines escaped.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_rendered_with_labels() {
        let m = Metrics::default();
        m.attempt_ended("noop", "succeeded", Duration::from_millis(3));
        m.attempt_ended("noop", "succeeded", Duration::from_millis(200));
        m.attempt_ended("command", "lost", Duration::from_secs(2));
        m.claimed(Duration::from_millis(1));
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains("patron_job_duration_seconds_bucket{kind=\"noop\",le=\"0.005\"} 1"),
            "{out}"
        );
        assert!(out.contains("patron_job_duration_seconds_bucket{kind=\"noop\",le=\"0.25\"} 2"));
        assert!(out.contains("patron_job_duration_seconds_bucket{kind=\"noop\",le=\"+Inf\"} 2"));
        assert!(out.contains("patron_job_duration_seconds_count{kind=\"noop\"} 2"));
        assert!(
            out.contains("patron_attempts_finished_total{kind=\"command\",outcome=\"lost\"} 1")
        );
        assert!(out.contains("patron_lease_losses_total 1"));
        assert!(out.contains("patron_claim_seconds_count 1"));
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}
