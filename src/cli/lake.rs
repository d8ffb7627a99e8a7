//! `patron lake ls | vacuum | compact`: the lake's committed files, and keeping it tidy.

use clap::Subcommand;
use serde_json::json;

use super::{CliResult, Ctx, output};
use crate::lake::{Dataset, maintain};

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Datasets with their committed files, rows and bytes (files listed for one dataset).
    Ls {
        /// Only this dataset, with its files.
        #[arg(value_enum)]
        dataset: Option<Dataset>,
    },
    /// Delete files no commit holds any more (replaced by a compaction, or left by a crashed
    /// load) once they are older than `lake.vacuum_grace`.
    Vacuum {
        /// Delete such files whatever their age (no query or load may be running).
        #[arg(long)]
        now: bool,
    },
    /// Rewrite datasets (or one) into one deduplicated file each (per as-of date for
    /// features), keeping the newest row per key.
    Compact {
        /// Only this dataset (default: every dataset that needs it).
        #[arg(value_enum)]
        dataset: Option<Dataset>,
    },
    /// Move the raw rows of a database from before the lake (tables `legacy_<name>`) into
    /// the lake, then drop those tables. Daemons do this when they start.
    ImportLegacy,
}

fn size(bytes: i64) -> String {
    let b = bytes as f64;
    match bytes {
        n if n >= 1 << 30 => format!("{:.1} GB", b / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MB", b / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KB", b / 1024.0),
        n => format!("{n} B"),
    }
}

impl Cmd {
    pub async fn run(self, ctx: &Ctx) -> CliResult {
        let db = ctx.db().await?;
        let lake = ctx.lake(db)?;
        match self {
            Cmd::Ls { dataset } => {
                let listing = maintain::list(&lake, dataset).await?;
                if ctx.json {
                    ctx.print_json(&listing)?;
                    return Ok(());
                }
                println!("lake {}", lake.root().display());
                let mut t = output::table(&["DATASET", "FILES", "ROWS", "SIZE"]);
                for l in &listing {
                    t.add_row(vec![
                        l.dataset.clone(),
                        l.files.len().to_string(),
                        l.rows.to_string(),
                        size(l.bytes),
                    ]);
                }
                println!("{t}");
                if dataset.is_some() {
                    let mut t = output::table(&["PATH", "ROWS", "SIZE", "LOAD", "COMMITTED"]);
                    for f in listing.iter().flat_map(|l| &l.files) {
                        t.add_row(vec![
                            f.path.clone(),
                            f.rows.to_string(),
                            size(f.bytes),
                            f.load.map_or_else(String::new, |l| l.to_string()),
                            f.committed_at.clone(),
                        ]);
                    }
                    println!("{t}");
                }
            }
            Cmd::Vacuum { now } => {
                let grace = if now {
                    std::time::Duration::ZERO
                } else {
                    ctx.settings.lake.vacuum_grace
                };
                let done = maintain::vacuum(&lake, grace).await?;
                if ctx.json {
                    ctx.print_json(&done)?;
                } else {
                    println!(
                        "deleted {} replaced and {} unrecorded files ({}); files younger than {} were kept",
                        done.replaced,
                        done.unrecorded,
                        size(done.bytes as i64),
                        humantime::format_duration(grace)
                    );
                }
            }
            Cmd::ImportLegacy => {
                let moved = crate::lake::legacy::import(&lake).await?;
                if ctx.json {
                    ctx.print_json(&json!(
                        moved
                            .iter()
                            .map(|(e, n)| json!({ "entity": e, "rows": n }))
                            .collect::<Vec<_>>()
                    ))?;
                } else if moved.is_empty() {
                    println!("no legacy tables: nothing to move");
                } else {
                    for (e, n) in &moved {
                        println!("{e}: moved {n} rows into the lake");
                    }
                }
            }
            Cmd::Compact { dataset } => {
                let done = maintain::compact(&lake, dataset).await?;
                if ctx.json {
                    ctx.print_json(&json!(done))?;
                } else if done.is_empty() {
                    println!("nothing to compact: every dataset is one file without overlaps");
                } else {
                    for c in &done {
                        println!("{c}");
                    }
                }
            }
        }
        Ok(())
    }
}
