//! `patron recommend CUSTOMER`: a customer's current recommendations with the reason for each.

use clap::Args;
use serde_json::json;

use super::{CliResult, Ctx, output};

#[derive(Debug, Args)]
pub struct Cmd {
    /// The customer id.
    customer: String,
}

impl Cmd {
    pub async fn run(self, ctx: &Ctx) -> CliResult {
        let db = ctx.db().await?;
        let lake = ctx.lake(db.clone())?;
        crate::lake::read::known_customer(&db, Some(&lake), &self.customer).await?;
        let recs = crate::lake::recommendations::for_customer(&lake, &self.customer).await?;
        if ctx.json {
            ctx.print_json(&json!({ "customer_id": self.customer, "recommendations": recs }))?;
            return Ok(());
        }
        if recs.is_empty() {
            println!(
                "no recommendations for {} yet (the `recommend` job has not run since they arrived)",
                self.customer
            );
            return Ok(());
        }
        let mut t = output::table(&["RANK", "PRODUCT", "SCORE", "SOURCE", "WHY"]);
        for r in &recs {
            t.add_row(vec![
                r.rank.to_string(),
                r.product_id.clone(),
                format!("{:.3}", r.score),
                r.source.clone(),
                r.reason.clone(),
            ]);
        }
        println!("{t}");
        println!("model {}", recs[0].model_id);
        Ok(())
    }
}
