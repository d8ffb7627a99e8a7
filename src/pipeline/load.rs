//! Pipeline files → validated specs. Every problem is collected (not just the first) and
//! reported as `FILE:LINE: reason`.

use std::{
    collections::HashMap,
    ops::Range,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use serde_json::{Map, Value};
use toml::Spanned;

use super::{
    graph,
    shard::{MAX_SHARDS, Shard},
    spec::{DEFAULT_RETRY_BACKOFF, JobSpec, PipelineSpec, ScheduleSpec},
};

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// What the job kinds say about a `kind` and its `params`. Implemented by the kind registry
/// in `jobs`, so this module does not depend on the kinds themselves.
pub trait KindCatalog {
    fn check(&self, kind: &str, params: &Value) -> Result<(), KindProblem>;

    /// Whether jobs of `kind` may set `shards` (the kind processes only its shard's
    /// customers, or, like `command`, is told its shard).
    fn shardable(&self, _kind: &str) -> bool {
        false
    }

    /// Which run params jobs of `kind` read themselves (see [`super::params`]).
    fn run_params(&self, _kind: &str) -> super::RunParamUse {
        super::RunParamUse::Reads(&[])
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KindProblem {
    /// The kind does not exist (the message says which do).
    Unknown(String),
    /// The kind exists but the params are wrong for it.
    BadParams(String),
}

/// A parsed, valid pipeline file.
#[derive(Debug, Clone)]
pub struct LoadedPipeline {
    pub path: String,
    pub source: String,
    pub spec: PipelineSpec,
}

/// The keys of `[pipeline]` (the fields of [`RawPipeline`]).
const PIPELINE_KEYS: &[&str] = &[
    "name",
    "description",
    "schedule",
    "timezone",
    "catchup",
    "max_active_runs",
    "sla",
];

/// The keys of a `[[job]]` (the fields of [`RawJob`]).
const JOB_KEYS: &[&str] = &[
    "name",
    "kind",
    "params",
    "after",
    "retries",
    "retry_backoff",
    "timeout",
    "pool",
    "shards",
];

/// The tables of a pipeline file, as read: the pipeline (if it could be read) and the jobs
/// that could be read. Problems found on the way are reported through `problem`.
struct RawFile {
    pipeline: Option<Spanned<RawPipeline>>,
    job: Vec<Spanned<RawJob>>,
    /// Names of `[[job]]` tables that could not be read, so `after` naming them is not
    /// reported as well.
    unreadable_jobs: Vec<String>,
    /// A misspelt `[[job]]` header was reported: "no jobs" would say it again.
    misspelt_job: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    name: Spanned<String>,
    description: Option<String>,
    schedule: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
    #[serde(default)]
    catchup: bool,
    max_active_runs: Option<Spanned<i64>>,
    sla: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    name: Spanned<String>,
    kind: Spanned<String>,
    params: Option<Spanned<toml::Table>>,
    #[serde(default)]
    after: Vec<Spanned<String>>,
    retries: Option<Spanned<i64>>,
    retry_backoff: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    pool: Option<Spanned<String>>,
    shards: Option<Spanned<i64>>,
}

/// Loads every file named, and every `*.toml` file in every folder named (sorted, not
/// recursive). Returns the valid pipelines and all problems; callers treat any problem as
/// failure.
pub fn load_paths(
    paths: &[PathBuf],
    kinds: &dyn KindCatalog,
) -> (Vec<LoadedPipeline>, Vec<Problem>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        if path.is_dir() {
            match std::fs::read_dir(path) {
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
                        .collect();
                    found.sort();
                    if found.is_empty() {
                        problems.push(file_problem(path, "folder holds no *.toml pipeline files"));
                    }
                    files.extend(found);
                }
                Err(e) => problems.push(file_problem(path, &format!("cannot read folder: {e}"))),
            }
        } else {
            files.push(path.clone());
        }
    }

    let mut loaded: Vec<LoadedPipeline> = Vec::new();
    let mut names: HashMap<String, String> = HashMap::new();
    for file in files {
        let display = file.display().to_string();
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) => {
                problems.push(file_problem(&file, &format!("cannot read file: {e}")));
                continue;
            }
        };
        let source = match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => {
                problems.push(file_problem(&file, &format!("not valid UTF-8: {e}")));
                continue;
            }
        };
        match parse_source(&display, &source, kinds) {
            Ok(spec) => {
                if let Some(other) = names.get(&spec.name) {
                    let line = line_of_key(&source, "name").unwrap_or(1);
                    problems.push(Problem {
                        file: display.clone(),
                        line,
                        message: format!(
                            "pipeline name `{}` is already used by {other}",
                            spec.name
                        ),
                    });
                    continue;
                }
                names.insert(spec.name.clone(), display.clone());
                loaded.push(LoadedPipeline {
                    path: display,
                    source,
                    spec,
                });
            }
            Err(mut p) => problems.append(&mut p),
        }
    }
    (loaded, problems)
}

fn file_problem(path: &Path, message: &str) -> Problem {
    Problem {
        file: path.display().to_string(),
        line: 1,
        message: message.to_owned(),
    }
}

fn line_of_key(source: &str, key: &str) -> Option<usize> {
    source
        .lines()
        .position(|l| l.trim_start().starts_with(key))
        .map(|i| i + 1)
}

/// Parses and validates one pipeline file's text.
pub fn parse_source(
    file: &str,
    source: &str,
    kinds: &dyn KindCatalog,
) -> Result<PipelineSpec, Vec<Problem>> {
    let line_at =
        |span: Range<usize>| source[..span.start.min(source.len())].matches('\n').count() + 1;
    let mut problems = Vec::new();
    let mut problem = |span: Range<usize>, message: String| {
        problems.push(Problem {
            file: file.to_owned(),
            line: line_at(span),
            message,
        })
    };

    let doc = match toml::de::DeTable::parse(source) {
        Ok(doc) => doc,
        Err(e) => {
            let line = e.span().map(line_at).unwrap_or(1);
            return Err(vec![Problem {
                file: file.to_owned(),
                line,
                message: e.message().trim().to_owned(),
            }]);
        }
    };
    let raw = read_tables(source, doc, &mut problem);
    // Without a readable [pipeline] the jobs are still checked; a stand-in keeps the code
    // below simple, and the problem is already reported.
    let pipeline_read = raw.pipeline.is_some();
    let pipeline = raw.pipeline.unwrap_or_else(|| {
        Spanned::new(
            0..0,
            RawPipeline {
                name: Spanned::new(0..0, String::new()),
                description: None,
                schedule: None,
                timezone: None,
                catchup: false,
                max_active_runs: None,
                sla: None,
            },
        )
    });

    let p = pipeline.get_ref();
    let pipeline_name = p.name.get_ref().clone();
    if pipeline_read && let Err(reason) = check_name(&pipeline_name) {
        problem(p.name.span(), format!("pipeline name {reason}"));
    }

    let schedule = match (&p.schedule, &p.timezone) {
        (Some(expr), tz) => {
            let spec = ScheduleSpec {
                cron: expr.get_ref().trim().to_owned(),
                timezone: tz
                    .as_ref()
                    .map(|t| t.get_ref().clone())
                    .unwrap_or_else(|| "UTC".to_owned()),
            };
            // The expression and the zone are checked apart, so both problems are reported.
            if let Err(reason) = super::Schedule::parse(&spec.cron, "UTC") {
                problem(expr.span(), reason);
            }
            if let Some(tz) = tz
                && let Err(reason) = super::Schedule::parse("0 0 0 * * *", tz.get_ref())
            {
                problem(tz.span(), reason);
            }
            Some(spec)
        }
        (None, Some(tz)) => {
            if tz.get_ref().parse::<chrono_tz::Tz>().is_err() {
                problem(tz.span(), format!("unknown time zone `{}`", tz.get_ref()));
            }
            None
        }
        (None, None) => None,
    };

    let max_active_runs = match &p.max_active_runs {
        Some(n) if *n.get_ref() < 1 || *n.get_ref() > u32::MAX as i64 => {
            problem(n.span(), "max_active_runs must be at least 1".to_owned());
            1
        }
        Some(n) => *n.get_ref() as u32,
        None => 1,
    };

    let sla = p
        .sla
        .as_ref()
        .and_then(|v| match parse_duration(v.get_ref()) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => {
                problem(v.span(), "sla must be longer than 0s".to_owned());
                None
            }
            Err(reason) => {
                problem(v.span(), format!("bad sla `{}`: {reason}", v.get_ref()));
                None
            }
        });

    if raw.job.is_empty() && raw.unreadable_jobs.is_empty() && !raw.misspelt_job {
        problem(
            pipeline.span(),
            "pipeline has no jobs (add at least one [[job]] table)".to_owned(),
        );
    }

    let mut jobs = Vec::new();
    let mut first_line: HashMap<String, usize> = HashMap::new();
    let mut shard_counts: HashMap<String, u32> = HashMap::new();
    for job in &raw.job {
        let j = job.get_ref();
        let name = j.name.get_ref().clone();
        if let Err(reason) = check_name(&name) {
            problem(j.name.span(), format!("job name {reason}"));
        }
        if let Some(first) = first_line.get(&name) {
            problem(
                j.name.span(),
                format!("duplicate job name `{name}` (first defined on line {first})"),
            );
        } else {
            first_line.insert(name.clone(), line_at(j.name.span()));
        }

        let params = j
            .params
            .as_ref()
            .map(|p| toml_table_to_json(p.get_ref()))
            .unwrap_or_default();
        let kind = j.kind.get_ref().clone();
        match kinds.check(&kind, &Value::Object(params.clone())) {
            Ok(()) => {}
            Err(KindProblem::Unknown(reason)) => problem(j.kind.span(), reason),
            Err(KindProblem::BadParams(reason)) => {
                let span = j.params.as_ref().map(|p| p.span()).unwrap_or(j.kind.span());
                problem(span, format!("bad params for kind `{kind}`: {reason}"));
            }
        }

        let retries = match &j.retries {
            Some(r) if *r.get_ref() < 0 || *r.get_ref() > 1000 => {
                problem(r.span(), "retries must be between 0 and 1000".to_owned());
                0
            }
            Some(r) => *r.get_ref() as u32,
            None => 0,
        };
        let mut duration = |value: &Option<Spanned<String>>, what: &str| {
            value
                .as_ref()
                .and_then(|v| match parse_duration(v.get_ref()) {
                    Ok(d) => Some(d),
                    Err(reason) => {
                        problem(v.span(), format!("bad {what} `{}`: {reason}", v.get_ref()));
                        None
                    }
                })
        };
        let retry_backoff =
            duration(&j.retry_backoff, "retry_backoff").unwrap_or(DEFAULT_RETRY_BACKOFF);
        let timeout = duration(&j.timeout, "timeout");
        let pool = j.pool.as_ref().and_then(|p| {
            let name = p.get_ref().trim();
            if name.is_empty() {
                problem(p.span(), "pool name must not be empty".to_owned());
                None
            } else {
                Some(name.to_owned())
            }
        });

        let shards = match &j.shards {
            Some(n) if !(1..=i64::from(MAX_SHARDS)).contains(n.get_ref()) => {
                problem(
                    n.span(),
                    format!("shards must be between 1 and {MAX_SHARDS}"),
                );
                1
            }
            Some(n) if *n.get_ref() > 1 && !kinds.shardable(&kind) => {
                problem(
                    n.span(),
                    format!(
                        "kind `{kind}` cannot be sharded (features, profile, recommend, points, command and noop can)"
                    ),
                );
                1
            }
            Some(n) => *n.get_ref() as u32,
            None => 1,
        };
        shard_counts.insert(name.clone(), shards);

        jobs.push(JobSpec {
            name,
            kind,
            params,
            after: j.after.iter().map(|a| a.get_ref().clone()).collect(),
            retries,
            retry_backoff,
            timeout,
            pool,
            shard: None,
        });
    }

    for job in &raw.job {
        let j = job.get_ref();
        let mut seen = Vec::new();
        for up in &j.after {
            let up_name = up.get_ref();
            if raw.unreadable_jobs.contains(up_name) {
                seen.push(up_name);
                continue;
            }
            if !first_line.contains_key(up_name) {
                problem(
                    up.span(),
                    format!(
                        "job `{}` runs after unknown job `{up_name}`",
                        j.name.get_ref()
                    ),
                );
            } else if seen.contains(&up_name) {
                problem(up.span(), format!("`{up_name}` is listed twice in `after`"));
            }
            seen.push(up_name);
        }
    }

    // Cycles only make sense once names are unique (and every job could be read).
    if first_line.len() == jobs.len() && raw.unreadable_jobs.is_empty() {
        let spec_edges: Vec<(String, Vec<usize>)> = jobs
            .iter()
            .map(|j| {
                (
                    j.name.clone(),
                    j.after
                        .iter()
                        .filter_map(|a| jobs.iter().position(|o| &o.name == a))
                        .collect(),
                )
            })
            .collect();
        if let Err(cycle) = graph::topo_order(&spec_edges) {
            let first = cycle.0.first().cloned().unwrap_or_default();
            let span = raw
                .job
                .iter()
                .find(|j| j.get_ref().name.get_ref() == &first)
                .map(|j| j.get_ref().name.span())
                .unwrap_or(pipeline.span());
            problem(span, format!("dependency cycle: {cycle}"));
        }
    }

    if problems.is_empty() && pipeline_read {
        Ok(PipelineSpec {
            name: pipeline_name,
            description: p.description.clone(),
            schedule,
            catchup: p.catchup,
            max_active_runs,
            sla,
            jobs: expand_shards(jobs, &shard_counts),
        })
    } else {
        problems.sort_by_key(|p| p.line);
        Err(problems)
    }
}

/// Reads `[pipeline]` and every `[[job]]` from the document, reporting every key and table
/// that is not part of the format (each at its own line, with the likely intended name) and
/// every table that cannot be read — not just the first problem of the file.
fn read_tables(
    source: &str,
    doc: Spanned<toml::de::DeTable<'_>>,
    problem: &mut dyn FnMut(Range<usize>, String),
) -> RawFile {
    use toml::de::{DeTable, DeValue, ValueDeserializer};

    let mut raw = RawFile {
        pipeline: None,
        job: Vec::new(),
        unreadable_jobs: Vec::new(),
        misspelt_job: false,
    };
    let mut misspelt_pipeline = false;
    // Drops (and reports) keys outside `known`, then reads the rest as `T`.
    fn read<'de, T: Deserialize<'de>>(
        source: &str,
        table: Spanned<DeValue<'de>>,
        known: &[&str],
        what: &str,
        problem: &mut dyn FnMut(Range<usize>, String),
    ) -> Option<Spanned<T>> {
        let span = table.span();
        let DeValue::Table(entries) = table.into_inner() else {
            problem(span, format!("{what} must be a table"));
            return None;
        };
        let mut kept = DeTable::new();
        for (key, value) in entries {
            if known.contains(&key.get_ref().as_ref()) {
                kept.insert(key, value);
            } else {
                let name = key.get_ref().to_string();
                let place = match header_at(source, key.span()) {
                    Some(header) => format!("unknown table `{header}` in {what}"),
                    None => format!("unknown key `{name}` in {what}"),
                };
                problem(
                    key.span(),
                    format!("{place}{}", crate::suggest::did_you_mean(&name, known)),
                );
            }
        }
        let table = Spanned::new(span.clone(), DeValue::Table(kept));
        match Spanned::<T>::deserialize(ValueDeserializer::from(table)) {
            Ok(t) => Some(t),
            Err(e) => {
                problem(
                    e.span().unwrap_or(span),
                    format!("{what}: {}", e.message().trim()),
                );
                None
            }
        }
    }

    let doc_span = doc.span();
    let mut pipeline_seen = false;
    for (key, value) in doc.into_inner() {
        match key.get_ref().as_ref() {
            "pipeline" => {
                pipeline_seen = true;
                raw.pipeline = read(source, value, PIPELINE_KEYS, "[pipeline]", problem);
            }
            "job" => {
                let span = value.span();
                let DeValue::Array(items) = value.into_inner() else {
                    problem(span, "`job` must be a list of [[job]] tables".to_owned());
                    continue;
                };
                for item in items {
                    let name = match item.get_ref() {
                        DeValue::Table(t) => t
                            .get("name")
                            .and_then(|n| n.get_ref().as_str())
                            .map(str::to_owned),
                        _ => None,
                    };
                    let what = match &name {
                        Some(n) => format!("[[job]] `{n}`"),
                        None => "[[job]]".to_owned(),
                    };
                    match read::<RawJob>(source, item, JOB_KEYS, &what, problem) {
                        Some(job) => raw.job.push(job),
                        None => raw.unreadable_jobs.extend(name),
                    }
                }
            }
            other => {
                let (what, hint) = match header_at(source, key.span()) {
                    Some(header) => {
                        let hint = match crate::suggest::closest(other, &["pipeline", "job"]) {
                            Some("pipeline") => {
                                misspelt_pipeline = true;
                                " (did you mean `[pipeline]`?)".to_owned()
                            }
                            Some(_) => {
                                raw.misspelt_job = true;
                                " (did you mean `[[job]]`?)".to_owned()
                            }
                            None => " (a pipeline file has one [pipeline] and [[job]] tables)"
                                .to_owned(),
                        };
                        (format!("unknown table `{header}`"), hint)
                    }
                    None if PIPELINE_KEYS.contains(&other) => (
                        format!("key `{other}` is outside any table"),
                        " (it belongs under [pipeline])".to_owned(),
                    ),
                    None => (
                        format!("unknown key `{other}`"),
                        " (a pipeline file has one [pipeline] and [[job]] tables)".to_owned(),
                    ),
                };
                problem(key.span(), format!("{what}{hint}"));
            }
        }
    }
    if !pipeline_seen && !misspelt_pipeline {
        problem(
            doc_span.start..doc_span.start,
            "missing [pipeline] table (with at least `name`)".to_owned(),
        );
    }
    raw
}

/// The table header (`[name]` or `[[name]]`, as written) on the line of `span`, if the line is
/// one.
fn header_at(source: &str, span: Range<usize>) -> Option<String> {
    let start = source[..span.start.min(source.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = source[start..].lines().next().unwrap_or_default().trim();
    if !line.starts_with('[') {
        return None;
    }
    let double = line.starts_with("[[");
    let close = if double { "]]" } else { "]" };
    let end = line.find(close)? + close.len();
    Some(line[..end].to_owned())
}

/// Replaces each job with `shards = N` (N > 1) by its N shards, and every `after` naming it
/// by all of them.
fn expand_shards(jobs: Vec<JobSpec>, counts: &HashMap<String, u32>) -> Vec<JobSpec> {
    let count = |name: &str| counts.get(name).copied().unwrap_or(1);
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        let after: Vec<String> = job
            .after
            .iter()
            .flat_map(|up| match count(up) {
                1 => vec![up.clone()],
                n => (0..n)
                    .map(|index| Shard { index, count: n }.job_name(up))
                    .collect(),
            })
            .collect();
        match count(&job.name) {
            1 => out.push(JobSpec { after, ..job }),
            n => out.extend((0..n).map(|index| {
                let shard = Shard { index, count: n };
                JobSpec {
                    name: shard.job_name(&job.name),
                    after: after.clone(),
                    shard: Some(shard),
                    ..job.clone()
                }
            })),
        }
    }
    out
}

/// Durations are written like `"100ms"`, `"30s"`, `"10m"`, `"1h 30m"`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        format!("{e} (write a number and a unit, e.g. \"100ms\", \"30s\", \"10m\", \"2h\")")
    })?;
    if d.is_zero() {
        return Err("must be greater than zero".to_owned());
    }
    Ok(d)
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not allowed: use letters, digits, `-`, `_` or `.`, starting with a letter or digit (at most 128)"
        ))
    }
}

/// TOML values as JSON (dates and times become their TOML text).
pub fn toml_table_to_json(table: &toml::Table) -> Map<String, Value> {
    table
        .iter()
        .map(|(k, v)| (k.clone(), toml_to_json(v)))
        .collect()
}

fn toml_to_json(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(toml_table_to_json(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Knows `noop` (no params) and `command` (needs a string `program`).
    struct TestKinds;

    impl KindCatalog for TestKinds {
        fn check(&self, kind: &str, params: &Value) -> Result<(), KindProblem> {
            match kind {
                "noop" => Ok(()),
                "command" => match params.get("program") {
                    Some(Value::String(_)) => Ok(()),
                    _ => Err(KindProblem::BadParams("missing field `program`".into())),
                },
                other => Err(KindProblem::Unknown(format!("unknown kind `{other}`"))),
            }
        }

        fn shardable(&self, kind: &str) -> bool {
            kind == "noop"
        }
    }

    #[test]
    fn a_sharded_job_becomes_its_shards_and_downstream_waits_for_all() {
        let spec = parse_source(
            "p.toml",
            "[pipeline]\nname = \"p\"\n\
             [[job]]\nname = \"a\"\nkind = \"noop\"\n\
             [[job]]\nname = \"b\"\nkind = \"noop\"\nafter = [\"a\"]\nshards = 3\npool = \"heavy\"\n\
             [[job]]\nname = \"c\"\nkind = \"noop\"\nafter = [\"b\"]\n",
            &TestKinds,
        )
        .unwrap();
        let names: Vec<&str> = spec.jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["a", "b:0", "b:1", "b:2", "c"]);
        for (i, j) in spec.jobs[1..4].iter().enumerate() {
            assert_eq!(j.after, ["a"]);
            assert_eq!(j.pool.as_deref(), Some("heavy"));
            assert_eq!(
                j.shard,
                Some(Shard {
                    index: i as u32,
                    count: 3
                })
            );
        }
        assert_eq!(spec.jobs[4].after, ["b:0", "b:1", "b:2"]);
        assert_eq!(spec.resolve("b"), ["b:0", "b:1", "b:2"]);
        assert_eq!(spec.resolve("c"), ["c"]);
        assert!(spec.resolve("d").is_empty());
        // The stored form reads back the same.
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<PipelineSpec>(&json).unwrap(), spec);
    }

    #[test]
    fn shards_must_be_in_range_and_of_a_shardable_kind() {
        let p = problems(
            "[pipeline]\nname = \"p\"\n\
             [[job]]\nname = \"a\"\nkind = \"noop\"\nshards = 0\n\
             [[job]]\nname = \"b\"\nkind = \"command\"\nparams = { program = \"x\" }\nshards = 2\n",
        );
        assert_eq!(
            p,
            [
                "p.toml:6: shards must be between 1 and 256",
                "p.toml:11: kind `command` cannot be sharded (features, profile, recommend, points, command and noop can)"
            ]
        );
    }

    fn problems(source: &str) -> Vec<String> {
        parse_source("p.toml", source, &TestKinds)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const GOOD: &str = r#"
[pipeline]
name = "nightly"
schedule = "0 30 2 * * *"
timezone = "Asia/Shanghai"
max_active_runs = 2

[[job]]
name = "a"
kind = "noop"

[[job]]
name = "b"
kind = "command"
after = ["a"]
params = { program = "true" }
retries = 3
retry_backoff = "100ms"
timeout = "10m"
"#;

    #[test]
    fn a_good_file_parses_with_defaults() {
        let spec = parse_source("p.toml", GOOD, &TestKinds).unwrap();
        assert_eq!(spec.name, "nightly");
        assert_eq!(spec.max_active_runs, 2);
        assert!(!spec.catchup);
        assert_eq!(spec.schedule.as_ref().unwrap().timezone, "Asia/Shanghai");
        let b = spec.job("b").unwrap();
        assert_eq!(b.retries, 3);
        assert_eq!(b.retry_backoff, std::time::Duration::from_millis(100));
        assert_eq!(b.timeout, Some(std::time::Duration::from_secs(600)));
        assert_eq!(spec.job("a").unwrap().retry_backoff, DEFAULT_RETRY_BACKOFF);
    }

    #[test]
    fn duplicate_job_names_point_at_the_second() {
        let p = problems(
            "[pipeline]\nname = \"p\"\n[[job]]\nname = \"a\"\nkind = \"noop\"\n[[job]]\nname = \"a\"\nkind = \"noop\"\n",
        );
        assert_eq!(
            p,
            ["p.toml:7: duplicate job name `a` (first defined on line 4)"]
        );
    }

    #[test]
    fn unknown_after_names_the_job() {
        let p = problems(
            "[pipeline]\nname = \"p\"\n[[job]]\nname = \"a\"\nkind = \"noop\"\nafter = [\"ghost\"]\n",
        );
        assert_eq!(p, ["p.toml:6: job `a` runs after unknown job `ghost`"]);
    }

    #[test]
    fn a_cycle_names_its_jobs() {
        let p = problems(
            "[pipeline]\nname = \"p\"\n[[job]]\nname = \"a\"\nkind = \"noop\"\nafter = [\"c\"]\n[[job]]\nname = \"b\"\nkind = \"noop\"\nafter = [\"a\"]\n[[job]]\nname = \"c\"\nkind = \"noop\"\nafter = [\"b\"]\n",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("dependency cycle:"), "{p:?}");
        for job in ["a", "b", "c"] {
            assert!(p[0].contains(&format!("{job} -> ")), "{p:?}");
        }
    }

    #[test]
    fn unknown_kind_and_bad_params_are_reported_at_their_lines() {
        let p = problems(
            "[pipeline]\nname = \"p\"\n[[job]]\nname = \"a\"\nkind = \"teleport\"\n[[job]]\nname = \"b\"\nkind = \"command\"\nparams = { programme = \"x\" }\n",
        );
        assert_eq!(
            p,
            [
                "p.toml:5: unknown kind `teleport`",
                "p.toml:9: bad params for kind `command`: missing field `program`"
            ]
        );
    }

    #[test]
    fn bad_cron_timezone_and_durations_are_reported() {
        let p = problems(
            "[pipeline]\nname = \"p\"\nschedule = \"0 99 * * * *\"\n[[job]]\nname = \"a\"\nkind = \"noop\"\ntimeout = \"ten minutes\"\nretry_backoff = \"0s\"\n",
        );
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(
            p[0].starts_with("p.toml:3: invalid cron expression"),
            "{p:?}"
        );
        assert!(
            p[1].starts_with("p.toml:7: bad timeout `ten minutes`"),
            "{p:?}"
        );
        assert!(
            p[2].starts_with("p.toml:8: bad retry_backoff `0s`"),
            "{p:?}"
        );

        let p = problems(
            "[pipeline]\nname = \"p\"\nschedule = \"0 0 2 * * *\"\ntimezone = \"Europe/Atlantis\"\n[[job]]\nname = \"a\"\nkind = \"noop\"\n",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("p.toml:4: unknown time zone `Europe/Atlantis`"),
            "{p:?}"
        );
    }

    #[test]
    fn toml_syntax_errors_and_unknown_keys_have_lines() {
        let p = problems("[pipeline]\nname = \"p\"\n[[job]]\nname = \"a\"\nkind = noop\n");
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("p.toml:5: "), "{p:?}");
        let p = problems(
            "[pipeline]\nname = \"p\"\n[[job]]\nname = \"a\"\nkind = \"noop\"\nretrys = 2\n",
        );
        assert_eq!(
            p,
            ["p.toml:6: unknown key `retrys` in [[job]] `a` (did you mean `retries`?)"]
        );
    }

    #[test]
    fn every_unknown_key_is_a_problem_at_its_line() {
        let p = problems(
            "[pipeline]\n\
             name = \"p\"\n\
             shedule = \"0 0 2 * * *\"\n\
             \n\
             [[job]]\n\
             name = \"a\"\n\
             kind = \"noop\"\n\
             afer = [\"b\"]\n\
             \n\
             [[job]]\n\
             name = \"b\"\n\
             kind = \"noop\"\n",
        );
        assert_eq!(
            p,
            [
                "p.toml:3: unknown key `shedule` in [pipeline] (did you mean `schedule`?)",
                "p.toml:8: unknown key `afer` in [[job]] `a` (did you mean `after`?)",
            ]
        );
    }

    #[test]
    fn a_misspelt_table_header_names_itself() {
        let p = problems("[pipline]\nname = \"p\"\n\n[[jobs]]\nname = \"a\"\nkind = \"noop\"\n");
        assert_eq!(
            p,
            [
                "p.toml:1: unknown table `[pipline]` (did you mean `[pipeline]`?)",
                "p.toml:4: unknown table `[[jobs]]` (did you mean `[[job]]`?)",
            ]
        );
        let p = problems(
            "name = \"p\"\n[pipeline]\nname = \"p\"\n[pipeline.extra]\nx = 1\n[[job]]\nname = \"a\"\nkind = \"noop\"\n[wat]\n",
        );
        assert_eq!(
            p,
            [
                "p.toml:1: key `name` is outside any table (it belongs under [pipeline])",
                "p.toml:4: unknown table `[pipeline.extra]` in [pipeline]",
                "p.toml:9: unknown table `[wat]` (a pipeline file has one [pipeline] and [[job]] tables)",
            ]
        );
    }

    #[test]
    fn problems_in_several_jobs_are_all_reported() {
        let p = problems(
            "[pipeline]\nname = \"p\"\nmax_active_runs = \"two\"\n\
             [[job]]\nname = \"a\"\nkind = \"noop\"\nretries = \"x\"\n\
             [[job]]\nname = \"b\"\nkind = \"noop\"\nafter = [\"a\"]\ntimeout = 5\n\
             [[job]]\nname = \"c\"\nkind = \"noop\"\nafter = [\"b\", \"ghost\"]\n",
        );
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(
            p[0].starts_with("p.toml:3: [pipeline]: invalid type"),
            "{p:?}"
        );
        assert!(
            p[1].starts_with("p.toml:7: [[job]] `a`: invalid type"),
            "{p:?}"
        );
        assert!(
            p[2].starts_with("p.toml:12: [[job]] `b`: invalid type"),
            "{p:?}"
        );
        assert_eq!(p[3], "p.toml:16: job `c` runs after unknown job `ghost`");
    }

    #[test]
    fn the_key_lists_match_the_raw_tables() {
        // Every listed key is read (none is refused by serde as unknown), and a file using
        // them all is valid.
        let source = "[pipeline]\nname = \"p\"\ndescription = \"d\"\nschedule = \"0 0 * * *\"\ntimezone = \"UTC\"\ncatchup = true\nmax_active_runs = 2\nsla = \"1h\"\n\
             [[job]]\nname = \"a\"\nkind = \"noop\"\nparams = {}\nafter = []\nretries = 1\nretry_backoff = \"1s\"\ntimeout = \"1m\"\npool = \"x\"\nshards = 2\n";
        for key in PIPELINE_KEYS.iter().chain(JOB_KEYS) {
            assert!(source.contains(&format!("\n{key} = ")), "{key}");
        }
        parse_source("p.toml", source, &TestKinds).unwrap();
    }

    #[test]
    fn empty_pipeline_and_bad_names_are_rejected() {
        let p = problems("[pipeline]\nname = \"has space\"\n");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p.iter()
                .any(|l| l.contains("pipeline name `has space` is not allowed"))
        );
        assert!(p.iter().any(|l| l.contains("pipeline has no jobs")));
    }

    #[test]
    fn several_files_report_all_problems_and_duplicate_pipeline_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), GOOD).unwrap();
        std::fs::write(dir.path().join("b.toml"), GOOD).unwrap();
        std::fs::write(dir.path().join("c.toml"), "[pipeline]\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let (ok, problems) = load_paths(&[dir.path().to_path_buf()], &TestKinds);
        assert_eq!(ok.len(), 1);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[0].message.contains("already used by"),
            "{problems:?}"
        );
        assert!(problems[1].file.ends_with("c.toml"), "{problems:?}");
        assert!(
            problems[1].message.contains("missing field `name`"),
            "{problems:?}"
        );
        assert!(
            problems[2].message.contains("pipeline has no jobs"),
            "{problems:?}"
        );
    }
}
