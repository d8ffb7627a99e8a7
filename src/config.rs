//! Settings: built-in defaults < `patron.toml` (or `--config FILE`) < `PATRON__SECTION__KEY`
//! environment variables < command-line flags. Loaded once, validated once.

use std::{collections::HashMap, path::Path, time::Duration};

use config::{
    Config, ConfigError, Environment, File, FileFormat, Map, Source as _, Value, ValueKind,
};
use serde::Deserialize;

/// The SQLite database used when nothing else is configured.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://patron.db?mode=rwc";
/// The settings file read from the working directory when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "patron.toml";

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub scheduler: SchedulerSettings,
    pub daemon: DaemonSettings,
    pub pipelines: PipelineSettings,
    pub ingest: IngestSettings,
    pub sentiment: SentimentSettings,
    pub lake: LakeSettings,
    #[serde(default)]
    pub loyalty: LoyaltySettings,
    #[serde(default)]
    pub notify: NotifySettings,
    /// `[pools]`: name = size. A job with `pool = NAME` runs only while fewer than `size`
    /// jobs of that pool run, across every daemon; a pool not listed has no limit.
    #[serde(default)]
    pub pools: std::collections::BTreeMap<String, u32>,
    pub log: LogSettings,
}

/// `[notify]`: where failures are reported.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifySettings {
    /// Receives a JSON POST (with a Slack-compatible `text`) when a run fails; empty: off.
    pub webhook_url: String,
    /// Attempts per notification before it is dropped (with a log line).
    pub max_attempts: u32,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            webhook_url: String::new(),
            max_attempts: 5,
        }
    }
}

/// `[loyalty]`: the earning rules. Rates and multipliers are read as exact decimals
/// (thousandths), never used as floats.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoyaltySettings {
    /// Points per currency unit of paid spend.
    pub points_per_unit: f64,
    /// floor, nearest or ceil; once per order.
    pub rounding: crate::loyalty::Rounding,
    pub pending_days: i64,
    /// 0: points never expire.
    pub expiry_months: u32,
    pub downgrade_period_days: i64,
    /// What one point costs, in cents (campaign previews).
    pub point_value_cents: f64,
    /// A manual adjustment of more points than this (either way), or one that would take a
    /// spendable balance below zero, must be confirmed (`--yes`; the console asks).
    pub adjust_confirm_points: i64,
    pub tiers: Vec<TierSettings>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierSettings {
    pub name: String,
    pub threshold: i64,
    pub multiplier: f64,
}

impl Default for LoyaltySettings {
    fn default() -> Self {
        let r = crate::loyalty::Rules::default();
        LoyaltySettings {
            points_per_unit: 1.0,
            rounding: r.rounding,
            pending_days: r.pending_days,
            expiry_months: r.expiry_months,
            downgrade_period_days: r.downgrade_period_days,
            point_value_cents: 1.0,
            adjust_confirm_points: 10_000,
            tiers: r
                .tiers
                .iter()
                .map(|t| TierSettings {
                    name: t.name.clone(),
                    threshold: t.threshold,
                    multiplier: t.multiplier.0 as f64 / 1000.0,
                })
                .collect(),
        }
    }
}

impl LoyaltySettings {
    /// The rules, checked.
    pub fn rules(&self) -> Result<crate::loyalty::Rules, String> {
        use crate::loyalty::{Milli, Rules, TierRule};
        let field =
            |name: &str, x: f64| Milli::from_f64(x).map_err(|e| format!("loyalty.{name}: {e}"));
        if self.adjust_confirm_points < 0 {
            return Err("loyalty.adjust_confirm_points: must be 0 or more".to_owned());
        }
        let rules = Rules {
            points_per_unit: field("points_per_unit", self.points_per_unit)?,
            rounding: self.rounding,
            tiers: self
                .tiers
                .iter()
                .map(|t| {
                    Ok(TierRule {
                        name: t.name.clone(),
                        threshold: t.threshold,
                        multiplier: field("tiers.multiplier", t.multiplier)?,
                    })
                })
                .collect::<Result<_, String>>()?,
            pending_days: self.pending_days,
            expiry_months: self.expiry_months,
            downgrade_period_days: self.downgrade_period_days,
            point_value_milli_cents: field("point_value_cents", self.point_value_cents)?,
        };
        rules.check()?;
        Ok(rules)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentimentSettings {
    /// Extra lexicon files (tab-separated `token<TAB>valence`, like VADER's) that extend or
    /// override the built-in English and Chinese lexicons, in order.
    pub lexicon_paths: Vec<String>,
}

/// `[lake]`: where the analytics data lives (DESIGN.md section 5).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LakeSettings {
    /// Folder of the Parquet files. Empty: beside the SQLite file, named after it
    /// (`demo/patron.db` → `demo/patron.lake`); with PostgreSQL it must be set, to a folder
    /// every daemon sees.
    pub path: String,
    /// Memory the query engine may use before it spills to disk, per process.
    pub memory_limit_mb: u64,
    /// Files a compaction replaced (or a crashed load left) are deleted by `lake vacuum`
    /// once they are this old, so a query still reading them is not cut short.
    #[serde(with = "humantime_serde")]
    pub vacuum_grace: Duration,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSettings {
    /// Folder that relative `path`s of `ingest` jobs are read from.
    pub inbox: String,
    /// Zone of naive timestamps in input files, unless a mapping or job says otherwise.
    pub timezone: String,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    /// Pool size on PostgreSQL. SQLite always uses one connection per process: it has one
    /// writer anyway, and a single connection keeps hand-offs free of lock waits.
    pub max_connections: u32,
    /// How long connecting may take before a command fails, saying why.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSettings {
    /// Jobs this daemon runs at once.
    pub max_concurrency: usize,
    /// How often the daemon looks for work created by other processes (CLI, other daemons).
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How long an attempt's lease lasts without a heartbeat before the reaper reclaims it.
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// How often leases are renewed and the worker row touched.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// How often the reaper looks for expired leases.
    #[serde(with = "humantime_serde")]
    pub reaper_interval: Duration,
    /// On SIGINT/SIGTERM, how long running jobs may finish before they are cancelled.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// How often applied pipeline changes and pauses are picked up.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
    /// Attempts lost with a dead worker are retried without charging `retries`, up to this many
    /// times, so that a job that kills its daemon cannot loop forever.
    pub max_lost_attempts: u32,
    /// Upper bound for retry backoff.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// With `catchup = true`, at most this many missed ticks are planned at once.
    pub max_catchup_runs: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonSettings {
    /// Worker id; defaults to `HOST-PID`.
    pub worker_id: Option<String>,
    pub http_addr: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSettings {
    /// Folder of pipeline files that `patron demo` and `pipelines apply` (without paths) read.
    pub dir: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// A tracing `EnvFilter` directive; `RUST_LOG` wins when set.
    pub level: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("settings file {0} does not exist")]
    MissingFile(String),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("invalid setting {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
    /// Keys no setting reads (typos), each named with where it was written.
    #[error("{}", .0.join("; "))]
    Unknown(Vec<String>),
}

/// Values given on the command line; they win over every other source.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<String>,
    pub database_url: Option<String>,
}

impl Settings {
    /// Loads settings from the process environment.
    pub fn load(overrides: &Overrides) -> Result<Self, SettingsError> {
        Self::load_with_env(overrides, None)
    }

    /// Loads settings; `env` replaces the process environment (tests pass a map instead of
    /// mutating process-wide variables).
    pub fn load_with_env(
        overrides: &Overrides,
        env: Option<HashMap<String, String>>,
    ) -> Result<Self, SettingsError> {
        let env_for_messages = env.clone();
        let mut builder = Config::builder()
            .set_default("database.url", DEFAULT_DATABASE_URL)?
            .set_default("database.max_connections", 10)?
            .set_default("database.connect_timeout", "5s")?
            .set_default("scheduler.max_concurrency", 16)?
            .set_default("scheduler.poll_interval", "50ms")?
            .set_default("scheduler.lease_ttl", "30s")?
            .set_default("scheduler.heartbeat_interval", "10s")?
            .set_default("scheduler.reaper_interval", "5s")?
            .set_default("scheduler.shutdown_grace", "30s")?
            .set_default("scheduler.reload_interval", "2s")?
            .set_default("scheduler.max_lost_attempts", 3)?
            .set_default("scheduler.max_backoff", "1h")?
            .set_default("scheduler.max_catchup_runs", 1000)?
            .set_default("daemon.http_addr", "127.0.0.1:9464")?
            .set_default("pipelines.dir", "jobs")?
            .set_default("ingest.inbox", "inbox")?
            .set_default("ingest.timezone", "UTC")?
            .set_default("sentiment.lexicon_paths", Vec::<String>::new())?
            .set_default("lake.path", "")?
            .set_default("lake.memory_limit_mb", 2048)?
            .set_default("lake.vacuum_grace", "1h")?
            .set_default("log.level", "info")?;

        builder = match &overrides.config_file {
            Some(path) => {
                if !Path::new(path).exists() {
                    return Err(SettingsError::MissingFile(path.clone()));
                }
                builder.add_source(File::new(path, FileFormat::Toml).required(true))
            }
            None => {
                builder.add_source(File::new(DEFAULT_CONFIG_FILE, FileFormat::Toml).required(false))
            }
        };
        builder = builder.add_source(
            Environment::with_prefix("PATRON")
                .separator("__")
                .try_parsing(true)
                .source(env),
        );
        if let Some(url) = &overrides.database_url {
            builder = builder.set_override("database.url", url.as_str())?;
        }
        let tree = builder.build()?.collect()?;
        let origins = Origins {
            file: overrides
                .config_file
                .as_deref()
                .unwrap_or(DEFAULT_CONFIG_FILE),
            env: env_for_messages.as_ref(),
        };
        let settings = deserialize_naming_unknown_keys(tree, &origins)?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key, reason: &str| {
            Err(SettingsError::Invalid {
                key,
                reason: reason.to_owned(),
            })
        };
        let s = &self.scheduler;
        if s.max_concurrency == 0 {
            return invalid("scheduler.max_concurrency", "must be at least 1");
        }
        if s.lease_ttl < Duration::from_millis(500) {
            return invalid("scheduler.lease_ttl", "must be at least 500ms");
        }
        if s.heartbeat_interval >= s.lease_ttl {
            return invalid(
                "scheduler.heartbeat_interval",
                "must be shorter than scheduler.lease_ttl, or leases expire between heartbeats",
            );
        }
        for (key, value) in [
            ("scheduler.poll_interval", s.poll_interval),
            ("scheduler.reaper_interval", s.reaper_interval),
            ("scheduler.reload_interval", s.reload_interval),
            ("scheduler.heartbeat_interval", s.heartbeat_interval),
        ] {
            if value.is_zero() {
                return invalid(key, "must be greater than zero");
            }
        }
        if !(self.database.url.starts_with("sqlite:") || self.database.url.starts_with("postgres"))
        {
            return invalid(
                "database.url",
                "must start with sqlite: or postgres:// (or postgresql://)",
            );
        }
        if self.ingest.timezone.parse::<chrono_tz::Tz>().is_err() {
            return invalid(
                "ingest.timezone",
                "must be an IANA time zone name such as Europe/London",
            );
        }
        if self.database.max_connections == 0 {
            return invalid("database.max_connections", "must be at least 1");
        }
        Ok(())
    }
}

/// Where settings came from, to say where an unknown key was written.
struct Origins<'a> {
    /// The settings file as the user named it (or the default name).
    file: &'a str,
    /// The variables given instead of the process environment (tests).
    env: Option<&'a HashMap<String, String>>,
}

/// Deserializes the merged settings; every key no setting reads is collected (not just the
/// first) and reported with the file or the environment variable it came from. Sections that
/// are maps by design (`[pools]`) take any key.
fn deserialize_naming_unknown_keys(
    mut tree: Map<String, Value>,
    origins: &Origins,
) -> Result<Settings, SettingsError> {
    let mut unknown: Vec<String> = Vec::new();
    // Each pass finds the first unknown key left; a file has few, but stop at some point.
    for _ in 0..100 {
        let error = match Value::new(None, ValueKind::Table(tree.clone())).try_deserialize() {
            Ok(settings) if unknown.is_empty() => return Ok(settings),
            Ok(_) => return Err(SettingsError::Unknown(unknown)),
            Err(e) => e,
        };
        let Some((path, expected)) = unknown_field(&error) else {
            if unknown.is_empty() {
                return Err(error.into());
            }
            unknown.push(error.to_string());
            return Err(SettingsError::Unknown(unknown));
        };
        let Some(value) = remove_path(&mut tree, &path) else {
            return Err(error.into());
        };
        let key = display_path(&path);
        let last = match path.last() {
            Some(Segment::Key(k)) => k.as_str(),
            _ => "",
        };
        let hint = crate::suggest::did_you_mean(last, &expected);
        unknown.push(format!(
            "unknown setting `{key}` {}{hint}",
            origin_of(&value, &path, origins)
        ));
    }
    Err(SettingsError::Unknown(unknown))
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// The path of the key serde refused as an unknown field, and the fields it expected there.
fn unknown_field(error: &ConfigError) -> Option<(Vec<Segment>, Vec<String>)> {
    let (message, at) = match error {
        ConfigError::At { error, key, .. } => match error.as_ref() {
            ConfigError::Message(m) => (m, key.as_deref().unwrap_or("")),
            _ => return None,
        },
        ConfigError::Message(m) => (m, ""),
        _ => return None,
    };
    // serde's wording: unknown field `x`, expected one of `a`, `b` (or "expected `a`").
    let rest = message.strip_prefix("unknown field `")?;
    let (field, expected) = rest.split_once('`')?;
    let expected: Vec<String> = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    let mut path = parse_path(at)?;
    path.push(Segment::Key(field.to_owned()));
    Some((path, expected))
}

/// `loyalty.tiers[0]` → [loyalty, tiers, 0].
fn parse_path(text: &str) -> Option<Vec<Segment>> {
    let mut out = Vec::new();
    for part in text.split('.').filter(|p| !p.is_empty()) {
        let mut pieces = part.split('[');
        let key = pieces.next().unwrap_or_default();
        if !key.is_empty() {
            out.push(Segment::Key(key.to_owned()));
        }
        for index in pieces {
            out.push(Segment::Index(index.strip_suffix(']')?.parse().ok()?));
        }
    }
    Some(out)
}

fn display_path(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Takes the value at `path` out of the tree.
fn remove_path(tree: &mut Map<String, Value>, path: &[Segment]) -> Option<Value> {
    let (Segment::Key(first), rest) = path.split_first()? else {
        return None;
    };
    if rest.is_empty() {
        return tree.remove(first);
    }
    let mut current = tree.get_mut(first)?;
    for (i, segment) in rest.iter().enumerate() {
        let last = i + 1 == rest.len();
        match (segment, &mut current.kind) {
            (Segment::Key(k), ValueKind::Table(t)) if last => return t.remove(k),
            (Segment::Key(k), ValueKind::Table(t)) => current = t.get_mut(k)?,
            (Segment::Index(n), ValueKind::Array(a)) if !last => current = a.get_mut(*n)?,
            _ => return None,
        }
    }
    None
}

/// `in FILE` or `from environment variable PATRON__…`.
fn origin_of(value: &Value, path: &[Segment], origins: &Origins) -> String {
    match first_origin(value) {
        Some("the environment") => {
            let wanted = format!(
                "patron__{}",
                path.iter()
                    .map(|s| match s {
                        Segment::Key(k) => k.clone(),
                        Segment::Index(i) => i.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("__")
            );
            let names: Vec<String> = match origins.env {
                Some(map) => map.keys().cloned().collect(),
                None => std::env::vars_os()
                    .filter_map(|(k, _)| k.into_string().ok())
                    .collect(),
            };
            let mut matching: Vec<String> = names
                .into_iter()
                .filter(|n| {
                    let n = n.to_lowercase();
                    n == wanted || n.starts_with(&format!("{wanted}__"))
                })
                .collect();
            matching.sort();
            if matching.is_empty() {
                format!("from environment variable {}", wanted.to_uppercase())
            } else {
                format!("from environment variable {}", matching.join(", "))
            }
        }
        Some(_) => format!("in {}", origins.file),
        None => "in the settings".to_owned(),
    }
}

/// The origin of a value, or of the first value inside it that has one.
fn first_origin(value: &Value) -> Option<&str> {
    value.origin().or_else(|| match &value.kind {
        ValueKind::Table(t) => t.values().find_map(first_origin),
        ValueKind::Array(a) => a.iter().find_map(first_origin),
        _ => None,
    })
}

/// The file `patron init` writes: every section and key, each key commented out at its
/// default (`#key = value`); explanations are `# text` lines. Uncommenting a key changes
/// nothing until its value is edited (a test uncomments every key and gets the defaults).
pub const TEMPLATE: &str = r#"# patron settings. Every key is optional: each is shown commented out at its default.
# Uncomment a key (remove the `#` before it) and edit its value to change it.
# Precedence: defaults < this file < PATRON__SECTION__KEY environment variables
# (e.g. PATRON__DATABASE__URL) < command-line flags (--database-url).

[database]
# SQLite (embedded, one machine), or PostgreSQL for any number of daemons, e.g.
# "postgres://patron@127.0.0.1:5432/patron?sslmode=disable".
#url = "sqlite://patron.db?mode=rwc"
# Connection pool size on PostgreSQL (SQLite uses one connection per process).
#max_connections = 10
# A command that cannot connect within this fails, saying why (refused, unknown host, …).
#connect_timeout = "5s"

[scheduler]
# Jobs this daemon runs at once.
#max_concurrency = 16
# How often the daemon looks for work created by the CLI or by other daemons.
#poll_interval = "50ms"
# An attempt whose lease is not renewed for this long is reclaimed by the reaper and retried.
#lease_ttl = "30s"
#heartbeat_interval = "10s"
#reaper_interval = "5s"
# On SIGINT/SIGTERM: running jobs get this long to finish, then they are cancelled.
#shutdown_grace = "30s"
# How often applied pipeline versions and pauses are picked up.
#reload_interval = "2s"
# A job lost with a crashed daemon is retried this many times without charging its retries.
#max_lost_attempts = 3
# Cap for exponential retry backoff.
#max_backoff = "1h"
# With catchup = true, at most this many missed ticks are planned at once.
#max_catchup_runs = 1000

[daemon]
# The worker id recorded on attempts; the default is HOST-PID. For example:
# worker_id = "etl-1"
# /healthz and /metrics; "off" serves nothing.
#http_addr = "127.0.0.1:9464"

[pipelines]
# Folder of pipeline files used by `patron demo` and `patron pipelines apply` without paths.
#dir = "jobs"

[ingest]
# Folder that relative paths of `ingest` jobs are read from (e.g. path = "orders/*.csv").
#inbox = "inbox"
# Time zone of naive timestamps (2024-05-01 13:00:00) in input files, unless a mapping says otherwise.
#timezone = "UTC"

[lake]
# Folder of the analytics data (Parquet). Empty: beside the SQLite file, named after it
# (patron.db -> patron.lake). With PostgreSQL set it to a folder every daemon sees.
#path = ""
# Memory the query engine may use per process before it spills to disk.
#memory_limit_mb = 2048
# `patron lake vacuum` deletes replaced or unrecorded files once they are this old.
#vacuum_grace = "1h"

[sentiment]
# Your own lexicons (token<TAB>valence per line, -4..+4), applied after the built-in ones.
#lexicon_paths = []

[loyalty]
# Points per currency unit of paid spend.
#points_per_unit = 1.0
# floor, nearest or ceil; once per order.
#rounding = "floor"
# Earned points become spendable after this many days.
#pending_days = 14
# FIFO expiry: the oldest points expire first; 0 = never.
#expiry_months = 12
# A tier falls at most once per period; upgrades are immediate.
#downgrade_period_days = 90
# What a point costs, in cents (campaign previews).
#point_value_cents = 1.0
# `patron points adjust` (and the console's `a`) of more points than this, either way, or one
# that takes a spendable balance below zero, must be confirmed (--yes).
#adjust_confirm_points = 10000
# Tiers, on the last 12 months' earned points; the first starts at 0. Listing any replaces all.
#[[loyalty.tiers]]
#name = "bronze"
#threshold = 0
#multiplier = 1.0
#[[loyalty.tiers]]
#name = "silver"
#threshold = 1000
#multiplier = 1.25
#[[loyalty.tiers]]
#name = "gold"
#threshold = 5000
#multiplier = 1.5
#[[loyalty.tiers]]
#name = "platinum"
#threshold = 20000
#multiplier = 2.0

[notify]
# Receives a JSON POST (Slack-compatible `text`) when a run fails or misses its SLA; empty: off.
# For example: webhook_url = "https://hooks.slack.com/services/…"
#webhook_url = ""
# Attempts per notification before it is dropped (with a log line).
#max_attempts = 5

[pools]
# NAME = SIZE: jobs with pool = "NAME" run at most SIZE at once, across every daemon. None by
# default; for example:
# warehouse = 2

[log]
# tracing filter, e.g. "info" or "patron=debug,sea_orm=warn"; RUST_LOG wins when set.
#level = "info"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn defaults_apply_without_file_or_env() {
        let s = Settings::load_with_env(&Overrides::default(), env(&[])).unwrap();
        assert_eq!(s.database.url, DEFAULT_DATABASE_URL);
        assert_eq!(s.scheduler.max_concurrency, 16);
        assert_eq!(s.scheduler.lease_ttl, Duration::from_secs(30));
    }

    #[test]
    fn file_then_env_then_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(
            &path,
            "[database]\nurl = \"sqlite://file.db\"\n[scheduler]\nmax_concurrency = 4\nlease_ttl = \"3s\"\nheartbeat_interval = \"1s\"\n",
        )
        .unwrap();
        let mut o = Overrides {
            config_file: Some(path.display().to_string()),
            database_url: None,
        };
        let s = Settings::load_with_env(&o, env(&[])).unwrap();
        assert_eq!(s.database.url, "sqlite://file.db");
        assert_eq!(s.scheduler.max_concurrency, 4);

        let s = Settings::load_with_env(
            &o,
            env(&[
                ("PATRON__SCHEDULER__MAX_CONCURRENCY", "8"),
                ("PATRON__DATABASE__URL", "sqlite://env.db"),
            ]),
        )
        .unwrap();
        assert_eq!(s.scheduler.max_concurrency, 8);
        assert_eq!(s.database.url, "sqlite://env.db");

        o.database_url = Some("postgres://x@h/db".into());
        let s = Settings::load_with_env(&o, env(&[("PATRON__DATABASE__URL", "sqlite://env.db")]))
            .unwrap();
        assert_eq!(s.database.url, "postgres://x@h/db");
    }

    /// The template with every commented-out key uncommented (`#key = …`, `#[[…]]`); the
    /// explanations (`# …`) stay comments.
    pub(crate) fn uncommented(template: &str) -> String {
        template
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if !rest.is_empty() && !rest.starts_with([' ', '#']) => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn template_has_every_section_and_its_keys_give_the_defaults() {
        for section in [
            "[database]",
            "[scheduler]",
            "[daemon]",
            "[pipelines]",
            "[ingest]",
            "[sentiment]",
            "[loyalty]",
            "#[[loyalty.tiers]]",
            "[notify]",
            "[pools]",
            "[log]",
        ] {
            assert!(
                TEMPLATE.lines().any(|l| l == section),
                "no {section} in the template"
            );
        }
        let text = uncommented(TEMPLATE);
        assert!(
            text.lines()
                .filter(|l| l.contains(" = ") && !l.starts_with('#'))
                .count()
                >= 30,
            "{text}"
        );
        let dir = tempfile::tempdir().unwrap();
        let load = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let o = Overrides {
                config_file: Some(path.display().to_string()),
                database_url: None,
            };
            Settings::load_with_env(&o, env(&[])).unwrap()
        };
        let defaults = format!(
            "{:?}",
            Settings::load_with_env(&Overrides::default(), env(&[])).unwrap()
        );
        // Every field of Settings is in the template, as a key or a section.
        let fields = regex::Regex::new(r"([a-z_]+): ").unwrap();
        for field in fields.captures_iter(&defaults) {
            let name = &field[1];
            assert!(
                TEMPLATE.contains(&format!("{name} = ")) || TEMPLATE.contains(&format!("{name}]")),
                "setting `{name}` is not in the template"
            );
        }
        assert_eq!(format!("{:?}", load("as-written.toml", TEMPLATE)), defaults);
        assert_eq!(format!("{:?}", load("uncommented.toml", &text)), defaults);
        // Every key of every section is in the template: a changed value is read back.
        let changed = load(
            "changed.toml",
            &text
                .replace("adjust_confirm_points = 10000", "adjust_confirm_points = 7")
                .replace("max_attempts = 5", "max_attempts = 2"),
        );
        assert_eq!(changed.loyalty.adjust_confirm_points, 7);
        assert_eq!(changed.notify.max_attempts, 2);
    }

    #[test]
    fn invalid_values_are_reported_by_key() {
        let err = Settings::load_with_env(
            &Overrides::default(),
            env(&[("PATRON__SCHEDULER__MAX_CONCURRENCY", "0")]),
        )
        .err()
        .unwrap();
        assert!(
            err.to_string().contains("scheduler.max_concurrency"),
            "{err}"
        );
        let err = Settings::load_with_env(
            &Overrides {
                config_file: Some("/nonexistent/patron.toml".into()),
                database_url: None,
            },
            env(&[]),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    fn file(text: &str) -> (tempfile::TempDir, Overrides) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("patron.toml");
        std::fs::write(&path, text).unwrap();
        let o = Overrides {
            config_file: Some(path.display().to_string()),
            database_url: None,
        };
        (dir, o)
    }

    fn load_err(o: &Overrides, vars: &[(&str, &str)]) -> String {
        match Settings::load_with_env(o, env(vars)) {
            Ok(_) => panic!("settings with unknown keys loaded"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn an_unknown_key_in_the_file_is_named_with_the_file() {
        let (_dir, o) = file("[scheduler]\nmax_concurrency = 4\nbogus_key = 1\n");
        let path = o.config_file.clone().unwrap();
        let err = load_err(&o, &[]);
        assert_eq!(
            err,
            format!("unknown setting `scheduler.bogus_key` in {path}")
        );
        let (_dir, o) = file("[scheduler]\nmax_concurency = 4\n");
        let err = load_err(&o, &[]);
        assert!(
            err.contains("`scheduler.max_concurency`")
                && err.contains("(did you mean `max_concurrency`?)"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_key_in_the_environment_is_named_with_its_variable() {
        let err = load_err(
            &Overrides::default(),
            &[("PATRON__SCHEDULER__BOGUS_KEY", "1")],
        );
        assert_eq!(
            err,
            "unknown setting `scheduler.bogus_key` from environment variable PATRON__SCHEDULER__BOGUS_KEY"
        );
        // A whole unknown section.
        let err = load_err(
            &Overrides::default(),
            &[("PATRON__SHCEDULER__LEASE_TTL", "1s")],
        );
        assert!(
            err.contains(
                "unknown setting `shceduler` from environment variable PATRON__SHCEDULER__LEASE_TTL"
            ) && err.contains("did you mean `scheduler`"),
            "{err}"
        );
    }

    #[test]
    fn every_unknown_key_is_reported_at_once() {
        let (_dir, o) = file(
            "[shceduler]\nlease_ttl = \"3s\"\n[database]\nurll = \"x\"\n[[loyalty.tiers]]\nname = \"gold\"\nthreshold = 1\nmultiplier = 1.5\ncolour = \"gold\"\n",
        );
        let err = load_err(&o, &[("PATRON__LOG__LEVLE", "debug")]);
        for key in [
            "`shceduler`",
            "`database.urll`",
            "`loyalty.tiers[0].colour`",
            "`log.levle` from environment variable PATRON__LOG__LEVLE",
        ] {
            assert!(err.contains(key), "{key} missing from: {err}");
        }
        assert_eq!(err.matches("unknown setting").count(), 4, "{err}");
    }

    #[test]
    fn pools_take_any_name() {
        let (_dir, o) = file("[pools]\nwarehouse = 2\n");
        let s = Settings::load_with_env(&o, env(&[("PATRON__POOLS__GPU", "1")])).unwrap();
        assert_eq!(s.pools.get("warehouse"), Some(&2));
        assert_eq!(s.pools.get("gpu"), Some(&1));
    }

    #[test]
    fn every_section_refuses_unknown_keys() {
        let template = Config::builder()
            .add_source(File::from_str(TEMPLATE, FileFormat::Toml))
            .build()
            .unwrap()
            .collect()
            .unwrap();
        let mut sections: Vec<String> = template.keys().cloned().collect();
        sections.extend(["loyalty".to_owned(), "notify".to_owned()]);
        sections.sort();
        sections.dedup();
        sections.retain(|s| s != "pools");
        assert!(sections.len() >= 9, "{sections:?}");
        for section in sections {
            let var = format!("PATRON__{}__NO_SUCH_KEY", section.to_uppercase());
            let err = load_err(&Overrides::default(), &[(var.as_str(), "1")]);
            assert!(
                err.contains(&format!(
                    "`{section}.no_such_key` from environment variable {var}"
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
