//! Wall time and resident memory of each step of a job, for its log line.

/// Wall time of each step of a run and the memory resident after it, for the log.
pub struct Steps {
    last: std::time::Instant,
    done: Vec<(&'static str, f64, Option<f64>)>,
}

impl Default for Steps {
    fn default() -> Self {
        Steps {
            last: std::time::Instant::now(),
            done: Vec::new(),
        }
    }
}

impl Steps {
    pub fn mark(&mut self, step: &'static str) {
        let now = std::time::Instant::now();
        let resident = crate::memory::resident_mb();
        self.done
            .push((step, (now - self.last).as_secs_f64(), resident));
        self.last = now;
    }
}

impl std::fmt::Display for Steps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .done
            .iter()
            .map(|(s, t, mb)| match mb {
                Some(mb) => format!("{s} {t:.2}s ({mb:.0} MB resident)"),
                None => format!("{s} {t:.2}s"),
            })
            .collect();
        f.write_str(&parts.join(", "))
    }
}
