//! `patron logs RUN [--job JOB] [--follow]`.

use std::time::Duration;

use clap::Args;

use super::{CliResult, Ctx};
use crate::{
    db::{
        RepoError,
        repo::{self, pipelines::SpecCache},
    },
    pipeline::shard,
};

#[derive(Debug, Args)]
pub struct Cmd {
    /// The run id.
    run: i64,
    /// Only this job's attempts (a sharded job's name means all its shards).
    #[arg(long)]
    job: Option<String>,
    /// Keep printing new lines until the run finishes (with --json: one JSON object per line).
    #[arg(long, short)]
    follow: bool,
}

const PAGE: u64 = 5_000;

impl Cmd {
    pub async fn run(self, ctx: &Ctx) -> CliResult {
        let db = ctx.db().await?;
        // Fails with "unknown run N" (or job) before printing anything.
        let detail = repo::runs::show(&db, &SpecCache::default(), self.run).await?;
        if let Some(job) = &self.job {
            // A sharded job's written name means all its shards, as in `rerun --from`.
            let known = detail
                .jobs
                .iter()
                .any(|(j, _)| j.job_name == *job || shard::base_name(&j.job_name) == job);
            if !known {
                return Err(
                    RepoError::not_found("job", format!("{job} in run {}", self.run)).into(),
                );
            }
        }
        let mut after = 0;
        let mut all = Vec::new();
        loop {
            let page = repo::logs::list(&db, self.run, self.job.as_deref(), after, PAGE).await?;
            if let Some(last) = page.last() {
                after = last.id;
            }
            let full = page.len() as u64 == PAGE;
            for entry in page {
                if ctx.json && !self.follow {
                    all.push(entry);
                } else if ctx.json {
                    println!("{}", serde_json::to_string(&entry)?);
                } else {
                    println!(
                        "{} {}#{} {:>6} | {}",
                        entry.at.format("%H:%M:%S%.3f"),
                        entry.job,
                        entry.attempt,
                        entry.stream.to_string(),
                        entry.line
                    );
                }
            }
            if full {
                continue;
            }
            if !self.follow {
                break;
            }
            let run = repo::runs::get(&db, self.run).await?;
            if run.state.is_terminal() {
                // One more read: lines written just before the run finished.
                let rest =
                    repo::logs::list(&db, self.run, self.job.as_deref(), after, PAGE).await?;
                if rest.is_empty() {
                    break;
                }
                continue;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        if ctx.json && !self.follow {
            ctx.print_json(&all)?;
        }
        Ok(())
    }
}
