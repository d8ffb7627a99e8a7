//! `patron init` and `patron migrate`.

use std::path::Path;

use anyhow::Context as _;
use clap::Args;

use super::{CliResult, Ctx};
use crate::config::{DEFAULT_CONFIG_FILE, Overrides, TEMPLATE};

#[derive(Debug, Args)]
pub struct InitCmd {
    /// Overwrite an existing file.
    #[arg(long)]
    force: bool,
}

/// Writes the commented settings file (to `--config` or ./patron.toml).
pub fn init(cmd: &InitCmd, overrides: &Overrides, json: bool) -> CliResult {
    let path = overrides
        .config_file
        .clone()
        .unwrap_or_else(|| DEFAULT_CONFIG_FILE.to_owned());
    if Path::new(&path).exists() && !cmd.force {
        return Err(anyhow::anyhow!("{path} already exists (use --force to overwrite)").into());
    }
    let text = match &overrides.database_url {
        Some(url) => TEMPLATE.replace(
            "#url = \"sqlite://patron.db?mode=rwc\"",
            &format!("url = {}", toml::Value::String(url.clone())),
        ),
        None => TEMPLATE.to_owned(),
    };
    std::fs::write(&path, text).with_context(|| format!("writing {path}"))?;
    if json {
        println!("{}", serde_json::json!({ "path": path }));
    } else {
        println!("wrote {path}; edit it, then run `patron migrate`");
    }
    Ok(())
}

/// Applies pending migrations and says which (or that there were none).
pub async fn migrate(ctx: &Ctx) -> CliResult {
    let url = &ctx.settings.database.url;
    let shown = crate::config::redact_url(url);
    let db = crate::db::connect(url, ctx.settings.database.max_connections)
        .await
        .with_context(|| format!("connecting to {shown}"))?;
    let pending = crate::db::migrate(&db)
        .await
        .context("applying migrations")?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "database": shown,
            "applied": pending,
            "up_to_date": true,
        }))?;
    } else if pending.is_empty() {
        println!("database {shown} is already up to date");
    } else {
        println!(
            "database {shown}: applied {} migration{}",
            pending.len(),
            if pending.len() == 1 { "" } else { "s" }
        );
        for name in &pending {
            println!("  {name}");
        }
    }
    Ok(())
}
