//! `patron feedback passes`: what the latest feedback passes folded in and touched.

use clap::Subcommand;

use super::{CliResult, Ctx, output};
use crate::db::repo;

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// The latest passes, newest first.
    Passes {
        /// At most this many passes.
        #[arg(long, default_value_t = 20)]
        limit: u64,
    },
}

impl Cmd {
    pub async fn run(self, ctx: &Ctx) -> CliResult {
        let Cmd::Passes { limit } = self;
        let db = ctx.db().await?;
        let passes = repo::feedback::passes(&db, limit).await?;
        if ctx.json {
            ctx.print_json(&passes)?;
            return Ok(());
        }
        if passes.is_empty() {
            println!("no feedback pass yet (pipeline `feedback`, every 15 minutes)");
            return Ok(());
        }
        let mut t = output::table(&[
            "RUN",
            "LOADS",
            "ORDERS",
            "EVENTS",
            "REC_CLICKS",
            "REVIEWS",
            "CUSTOMERS",
            "FEATURES",
            "SCORED",
            "RECS",
            "MODEL",
            "SECONDS",
        ]);
        for p in &passes {
            let loads = match p.span {
                Some(s) if !s.is_empty() => format!("{}..={}", s.from + 1, s.to),
                _ => "none new".to_owned(),
            };
            let a = p.arrived;
            t.add_row(vec![
                p.run_id.map_or_else(String::new, |r| r.to_string()),
                loads,
                a.orders.to_string(),
                a.events.to_string(),
                a.rec_clicks.to_string(),
                a.reviews.to_string(),
                a.customers.to_string(),
                p.features.to_string(),
                p.reviews_scored.to_string(),
                p.recommendations.to_string(),
                p.model_id.map_or_else(String::new, |m| m.to_string()),
                format!("{:.2}", p.seconds),
            ]);
        }
        println!("{t}");
        Ok(())
    }
}
