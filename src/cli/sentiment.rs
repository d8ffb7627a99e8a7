//! `patron sentiment "TEXT"` and `patron sentiment --file CSV --text-column COL --out CSV`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use serde_json::json;

use super::{CliResult, Ctx};
use crate::{
    analytics::sentiment::{Classifier, Sentiment},
    db::repo,
    jobs::sentiment::lexicon_scorer,
};

#[derive(Debug, Args)]
pub struct Cmd {
    /// Text to score.
    text: Option<String>,
    /// A CSV file to score instead (any export with a text column).
    #[arg(long, value_name = "CSV", requires_all = ["text_column", "out"], conflicts_with = "text")]
    file: Option<PathBuf>,
    /// The column holding the text.
    #[arg(long, value_name = "COL")]
    text_column: Option<String>,
    /// Where to write the file with `score` and `label` columns added.
    #[arg(long, value_name = "CSV")]
    out: Option<PathBuf>,
    /// Use the lexicon only, not the classifier trained on this shop's ratings.
    #[arg(long)]
    lexicon_only: bool,
}

impl Cmd {
    pub async fn run(self, ctx: &Ctx) -> CliResult {
        let scorer = lexicon_scorer(&ctx.settings).map_err(anyhow::Error::msg)?;
        let classifier = if self.lexicon_only {
            None
        } else {
            champion_classifier(ctx).await
        };
        let with_classifier = classifier.is_some();
        let sentiment = Sentiment::new(scorer, classifier);
        match (self.text, self.file) {
            (Some(text), None) => {
                let s = sentiment.score(&text);
                if ctx.json {
                    ctx.print_json(&json!({ "score": s.score, "label": s.label, "classifier": with_classifier }))?;
                } else {
                    println!("{:+.3}  {}", s.score, s.label);
                }
            }
            (None, Some(file)) => {
                let column = self.text_column.unwrap_or_default();
                let out = self.out.unwrap_or_default();
                // Scoring a whole export is heavy: off the async runtime.
                let target = out.clone();
                let n = tokio::task::spawn_blocking(move || {
                    score_file(&sentiment, &file, &column, &target)
                })
                .await
                .map_err(anyhow::Error::from)??;
                if ctx.json {
                    ctx.print_json(&json!({ "rows": n.0, "positive": n.1[0], "neutral": n.1[1], "negative": n.1[2], "out": out, "classifier": with_classifier }))?;
                } else {
                    println!(
                        "scored {} rows ({} positive, {} neutral, {} negative) into {}",
                        n.0,
                        n.1[0],
                        n.1[1],
                        n.1[2],
                        out.display()
                    );
                }
            }
            _ => {
                return Err(anyhow::anyhow!(
                    "give a TEXT, or --file CSV --text-column COL --out CSV"
                )
                .into());
            }
        }
        Ok(())
    }
}

/// The shop's trained classifier, when a database with one is reachable.
async fn champion_classifier(ctx: &Ctx) -> Option<Classifier> {
    // Scoring text must not create a database file where there was none.
    if let Some(path) = crate::db::sqlite_file(&ctx.settings.database.url)
        && !path.exists()
    {
        return None;
    }
    let db = ctx.db().await.ok()?;
    let model = repo::models::champion(&db, "sentiment").await.ok()??;
    serde_json::from_str(&model.payload).ok()
}

fn score_file(
    sentiment: &Sentiment,
    file: &PathBuf,
    column: &str,
    out: &PathBuf,
) -> anyhow::Result<(usize, [usize; 3])> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(file)
        .with_context(|| format!("opening {}", file.display()))?;
    let headers = reader.headers()?.clone();
    let index = headers.iter().position(|h| h == column).ok_or_else(|| {
        anyhow::anyhow!(
            "{}: no column `{column}` (it has: {})",
            file.display(),
            headers.iter().collect::<Vec<_>>().join(", ")
        )
    })?;
    let records: Vec<csv::StringRecord> = reader
        .records()
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading {}", file.display()))?;
    let texts: Vec<&str> = records.iter().map(|r| r.get(index).unwrap_or("")).collect();
    let scores = sentiment.score_many(&texts);
    let mut writer =
        csv::Writer::from_path(out).with_context(|| format!("creating {}", out.display()))?;
    let mut header: Vec<&str> = headers.iter().collect();
    header.extend(["score", "label"]);
    writer.write_record(&header)?;
    let mut counts = [0usize; 3];
    for (record, s) in records.iter().zip(&scores) {
        let label = s.label.to_string();
        counts[s.label.index()] += 1;
        let mut row: Vec<String> = record.iter().map(str::to_owned).collect();
        row.push(format!("{:.4}", s.score));
        row.push(label);
        writer.write_record(&row)?;
    }
    writer.flush()?;
    Ok((records.len(), counts))
}
