//! `patron ingest`, `patron quarantine list|show`, `patron export features`.

use std::{collections::HashMap, io::IsTerminal as _, path::PathBuf, sync::Arc};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::json;

use super::{CliError, CliResult, Ctx, output};
use crate::{
    db::{
        Db,
        repo::sources::{self, QuarantineFilter},
    },
    ingest::{self, Entity, Input, Mapping, Options, Report},
    jobs::ingest::describe,
    lake::Lake,
};

#[derive(Debug, Args)]
pub struct IngestCmd {
    /// customers, products, orders, events or reviews.
    entity: Entity,
    /// CSV or JSON Lines files (`.gz` too); globs are expanded.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Maps a foreign file's columns onto the canonical ones (see examples/online-retail/).
    #[arg(long, value_name = "FILE")]
    mapping: Option<PathBuf>,
    /// Reject a file (load nothing from it) when more than this share of rows is unreadable.
    #[arg(long, default_value_t = 0.05)]
    max_bad_ratio: f64,
    /// Time zone of naive timestamps (default: the mapping's, else ingest.timezone).
    #[arg(long)]
    timezone: Option<String>,
}

impl IngestCmd {
    pub async fn run(self, ctx: &Ctx) -> CliResult {
        let mapping = match &self.mapping {
            Some(path) => Some(Mapping::load(path).map_err(|problems| {
                for p in &problems {
                    super::print_error(p);
                }
                CliError::Exit(1)
            })?),
            None => None,
        };
        let tz_name = self
            .timezone
            .clone()
            .unwrap_or_else(|| ctx.settings.ingest.timezone.clone());
        let timezone = tz_name
            .parse::<chrono_tz::Tz>()
            .map_err(|_| anyhow::anyhow!("unknown time zone `{tz_name}`"))?;
        let options = Options {
            max_bad_ratio: self.max_bad_ratio,
            timezone,
            format: None,
        };
        let mut files = Vec::new();
        for f in &self.files {
            let found = ingest::expand(f).map_err(anyhow::Error::msg)?;
            if found.is_empty() {
                return Err(anyhow::anyhow!("{}: no such file", f.display()).into());
            }
            files.extend(found);
        }
        let db = ctx.db().await?;
        let lake = ctx.lake(db)?;
        let mut reports = Vec::new();
        for file in files {
            let bar = (!ctx.json && std::io::stderr().is_terminal()).then(|| {
                let bar =
                    indicatif::ProgressBar::new(std::fs::metadata(&file).map_or(0, |m| m.len()));
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_message(file.display().to_string());
                bar
            });
            let progress: Option<ingest::ProgressFn> = bar.clone().map(|bar| {
                Arc::new(move |done: u64, _total: u64| bar.set_position(done)) as ingest::ProgressFn
            });
            let report = ingest::ingest(
                &lake,
                Input::File(file.clone()),
                self.entity,
                mapping.as_ref(),
                &options,
                progress,
            )
            .await
            .with_context(|| format!("ingesting {}", file.display()))?;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            if !ctx.json {
                print_report(&report);
            }
            reports.push(report);
        }
        let rejected = reports.iter().any(|r| r.rejected);
        if ctx.json {
            let mut total = Report {
                entity: self.entity.to_string(),
                ..Default::default()
            };
            for r in &reports {
                total.absorb(r);
            }
            ctx.print_json(&json!({
                "entity": total.entity,
                "read": total.read,
                "loaded": total.loaded,
                "duplicates": total.duplicates,
                "quarantined": total.quarantined,
                "reasons": total.reasons,
                "skipped": total.skipped,
                "skip_reasons": total.skip_reasons,
                "rejected": rejected,
                "files": reports,
            }))?;
        }
        if rejected {
            for r in reports.iter().filter(|r| r.rejected) {
                super::print_error(format!(
                    "{}: rejected: more than {:.1}% of its rows are unreadable, so nothing from it was loaded (patron quarantine list)",
                    r.source,
                    self.max_bad_ratio * 100.0
                ));
            }
            return Err(CliError::Exit(1));
        }
        Ok(())
    }
}

fn print_report(r: &Report) {
    if r.already_ingested {
        println!("{}", describe(r));
        return;
    }
    println!("{}", r.source);
    println!("  read        {:>10}", r.read);
    println!("  loaded      {:>10}", r.loaded);
    println!(
        "  duplicates  {:>10}   (already stored: same file, same ids, or exact duplicate lines)",
        r.duplicates
    );
    println!("  skipped     {:>10}", r.skipped);
    for (reason, n) in &r.skip_reasons {
        println!("    {n:>10}  {reason}");
    }
    println!("  quarantined {:>10}", r.quarantined);
    for (reason, n) in &r.reasons {
        println!("    {n:>10}  {reason}");
    }
    if r.rejected {
        println!("  REJECTED: nothing from this file was kept");
    }
    println!("  in {:.2}s", r.seconds);
}

#[derive(Debug, Subcommand)]
pub enum QuarantineCmd {
    /// Rows that could not be read, oldest first.
    List {
        /// Only rows of this entity: customers, products, orders, events or reviews.
        #[arg(long)]
        entity: Option<Entity>,
        /// Only this reason (e.g. "bad number").
        #[arg(long)]
        reason: Option<String>,
        /// At most this many rows.
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// One quarantined row in full.
    Show {
        /// The quarantined row's id (as in `quarantine list`).
        id: i64,
    },
}

impl QuarantineCmd {
    pub async fn run(self, ctx: &Ctx) -> CliResult {
        let db = ctx.db().await?;
        let json_row = |q: &crate::db::entities::quarantine::Model| {
            json!({
                "id": q.id, "entity": q.entity, "source": q.source, "line": q.line,
                "reason": q.reason, "detail": q.detail, "raw": q.raw,
            })
        };
        match self {
            QuarantineCmd::List {
                entity,
                reason,
                limit,
            } => {
                let rows = sources::list_quarantine(
                    &db,
                    &QuarantineFilter {
                        entity: entity.map(|e| e.to_string()),
                        reason,
                        limit,
                    },
                )
                .await?;
                if ctx.json {
                    let rows: Vec<_> = rows.iter().map(json_row).collect();
                    ctx.print_json(&rows)?;
                    return Ok(());
                }
                let mut t = output::table(&["id", "entity", "source", "line", "reason", "detail"]);
                for q in &rows {
                    t.add_row(vec![
                        q.id.to_string(),
                        q.entity.clone(),
                        q.source.clone(),
                        q.line.to_string(),
                        q.reason.clone(),
                        truncate(q.detail.as_deref().unwrap_or(""), 60),
                    ]);
                }
                println!("{t}");
                let total = sources::count_quarantine(&db).await?;
                if total > rows.len() as u64 {
                    println!(
                        "({} of {total} shown; use --limit, --entity, --reason)",
                        rows.len()
                    );
                }
            }
            QuarantineCmd::Show { id } => {
                let q = sources::get_quarantine(&db, id).await?;
                if ctx.json {
                    ctx.print_json(&json_row(&q))?;
                } else {
                    println!("{} line {} ({})", q.source, q.line, q.entity);
                    println!("reason: {}", q.reason);
                    if let Some(d) = &q.detail {
                        println!("detail: {d}");
                    }
                    println!("raw:    {}", q.raw);
                }
            }
        }
        Ok(())
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

#[derive(Debug, Subcommand)]
pub enum ExportCmd {
    /// Customer features as CSV: customer_id and one column per feature.
    Features {
        /// The as-of date (default: the latest computed).
        #[arg(long)]
        as_of: Option<chrono::NaiveDate>,
        /// The CSV file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Only this customer's rows.
        #[arg(long, value_name = "ID")]
        customer: Option<String>,
    },
    /// The latest customer profiles: customer_id, segment, segment_label, pc1, pc2, r/f/m scores.
    Profiles {
        /// The CSV file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Only this customer's rows.
        #[arg(long, value_name = "ID")]
        customer: Option<String>,
    },
    /// The latest churn and purchase-intent scores with the models that made them.
    Scores {
        /// The CSV file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Only this customer's rows.
        #[arg(long, value_name = "ID")]
        customer: Option<String>,
    },
    /// Every customer's current recommendations: customer_id, rank, product_id, score, source.
    Recommendations {
        /// The CSV file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Only this customer's rows.
        #[arg(long, value_name = "ID")]
        customer: Option<String>,
    },
}

impl ExportCmd {
    pub async fn run(self, ctx: &Ctx) -> CliResult {
        let db = ctx.db().await?;
        let (what, rows, out) = match self {
            ExportCmd::Features {
                as_of,
                out,
                customer,
            } => {
                let lake = ctx.lake(db.clone())?;
                let only = one_customer(&db, &lake, customer.as_deref()).await?;
                let (as_of, rows) = export_features(&lake, as_of, only.as_deref()).await?;
                let mut writer = csv::Writer::from_path(&out)
                    .with_context(|| format!("creating {}", out.display()))?;
                let mut header = vec!["customer_id"];
                header.extend(
                    crate::lake::schema::FEATURE_COLUMNS
                        .iter()
                        .map(|(name, _)| *name),
                );
                writer.write_record(&header)?;
                for r in &rows {
                    writer.write_record(r)?;
                }
                writer.flush()?;
                (format!("features as of {as_of}"), rows.len(), out)
            }
            ExportCmd::Profiles { out, customer } => {
                let lake = ctx.lake(db.clone())?;
                let only = one_customer(&db, &lake, customer.as_deref()).await?;
                let rows = crate::lake::profiles::latest_rows(&lake, only.as_deref()).await?;
                let mut writer = csv::Writer::from_path(&out)
                    .with_context(|| format!("creating {}", out.display()))?;
                writer.write_record([
                    "customer_id",
                    "segment",
                    "segment_label",
                    "pc1",
                    "pc2",
                    "r_score",
                    "f_score",
                    "m_score",
                ])?;
                for r in &rows {
                    writer.write_record(r)?;
                }
                writer.flush()?;
                ("profiles".to_owned(), rows.len(), out)
            }
            ExportCmd::Scores { out, customer } => {
                let lake = ctx.lake(db.clone())?;
                let only = one_customer(&db, &lake, customer.as_deref()).await?;
                let n = export_scores(&db, &lake, &out, only.as_deref()).await?;
                ("scores".to_owned(), n, out)
            }
            ExportCmd::Recommendations { out, customer } => {
                let lake = ctx.lake(db.clone())?;
                let rows = match customer {
                    // One customer's list, read from the files directly.
                    Some(c) => {
                        crate::lake::read::known_customer(&db, Some(&lake), &c).await?;
                        crate::lake::recommendations::for_customer(&lake, &c)
                            .await?
                            .into_iter()
                            .map(|r| (c.clone(), r.rank, r.product_id, r.score, r.source))
                            .collect()
                    }
                    None => crate::lake::recommendations::all(&lake).await?,
                };
                let mut writer = csv::Writer::from_path(&out)
                    .with_context(|| format!("creating {}", out.display()))?;
                writer.write_record(["customer_id", "rank", "product_id", "score", "source"])?;
                for (customer, rank, product, score, source) in &rows {
                    writer.write_record([
                        customer,
                        &rank.to_string(),
                        product,
                        &crate::lake::arrays::rounded(*score),
                        source,
                    ])?;
                }
                writer.flush()?;
                ("recommendations".to_owned(), rows.len(), out)
            }
        };
        if ctx.json {
            ctx.print_json(&json!({ "what": what, "rows": rows, "out": out }))?;
        } else {
            println!("wrote {rows} rows of {what} to {}", out.display());
        }
        Ok(())
    }
}

/// Feature rows as text cells (customer_id, then `FEATURE_COLUMNS`) as of `as_of`, or as of
/// the latest date with features.
/// `customer` as an SQL literal list for the lake's filters, once it is known to exist.
async fn one_customer(
    db: &Db,
    lake: &Lake,
    customer: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let Some(c) = customer else {
        return Ok(None);
    };
    crate::lake::read::known_customer(db, Some(lake), c).await?;
    Ok(Some(crate::lake::literal_list([c])))
}

async fn export_features(
    lake: &crate::lake::Lake,
    as_of: Option<chrono::NaiveDate>,
    only: Option<&str>,
) -> anyhow::Result<(String, Vec<Vec<String>>)> {
    let as_of = match as_of {
        Some(d) => d,
        None => crate::lake::features::latest(lake).await?.ok_or_else(|| {
            anyhow::anyhow!("no features are stored yet (run the features job first)")
        })?,
    };
    let rows = crate::lake::features::rows(lake, as_of, only).await?;
    if rows.is_empty() && only.is_none() {
        anyhow::bail!("no features are stored as of {as_of}");
    }
    let counts: Vec<bool> = crate::lake::schema::FEATURE_COLUMNS
        .iter()
        .map(|(_, integer)| *integer)
        .collect();
    let cells = rows
        .into_iter()
        .map(|(id, values)| {
            let mut cells = vec![id];
            for (v, integer) in values.into_iter().zip(&counts) {
                cells.push(match v {
                    Some(v) if *integer => format!("{}", v as i64),
                    Some(v) => format!("{}", (v * 1e6).round() / 1e6),
                    None => String::new(),
                });
            }
            cells
        })
        .collect();
    Ok((as_of.format("%Y-%m-%d").to_string(), cells))
}

/// `patron stats`: rows stored per entity, quarantined rows and anomalies by reason, features
/// per as-of date.
pub async fn stats(ctx: &Ctx) -> CliResult {
    let db = ctx.db().await?;
    let stats = crate::lake::read::stats(&ctx.lake(db)?).await?;
    if ctx.json {
        ctx.print_json(&stats)?;
        return Ok(());
    }
    for (table, n) in &stats.rows {
        println!("{table:12} {n:>12}");
    }
    for (what, map) in [
        ("quarantined", &stats.quarantined),
        ("anomalies", &stats.anomalies),
    ] {
        println!("{what}:");
        if map.is_empty() {
            println!("  none");
        }
        for (k, n) in map {
            println!("  {n:>10}  {k}");
        }
    }
    for (as_of, n) in &stats.features {
        println!("features as of {as_of}: {n} customers");
    }
    Ok(())
}

/// The newest scores as CSV, each model named `kind vN`.
async fn export_scores(
    db: &Db,
    lake: &Lake,
    out: &PathBuf,
    only: Option<&str>,
) -> anyhow::Result<usize> {
    let rows = crate::lake::scores::latest_of(lake, only).await?;
    let mut names: HashMap<i64, String> = HashMap::new();
    for id in rows.iter().flat_map(|r| [r.3, r.4]).flatten() {
        if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(id) {
            let model = crate::db::repo::models::get(db, id).await?;
            slot.insert(format!("{} v{}", model.kind, model.version));
        }
    }
    let mut writer =
        csv::Writer::from_path(out).with_context(|| format!("creating {}", out.display()))?;
    writer.write_record([
        "customer_id",
        "churn_probability",
        "intent_probability",
        "churn_model",
        "intent_model",
    ])?;
    let probability = |p: Option<f64>| p.map(crate::lake::arrays::rounded);
    let name = |id: Option<i64>| id.and_then(|id| names.get(&id).cloned());
    for (id, churn, intent, churn_model, intent_model) in &rows {
        writer.write_record([
            id.clone(),
            probability(*churn).unwrap_or_default(),
            probability(*intent).unwrap_or_default(),
            name(*churn_model).unwrap_or_default(),
            name(*intent_model).unwrap_or_default(),
        ])?;
    }
    writer.flush()?;
    Ok(rows.len())
}
