//! `ingest`: loads new files from the inbox (or pages from an HTTP endpoint) into one
//! entity's table; see `crate::ingest` for the rules.
//!
//! ```toml
//! params = { entity = "orders", path = "orders/*.csv", mapping = "mappings/orders.toml", max_bad_ratio = 0.05 }
//! params = { entity = "events", source = "http", url = "https://shop/api/events", items_field = "data",
//!            page_param = "page", token_env = "SHOP_TOKEN" }
//! ```

use std::{path::PathBuf, sync::Arc};

use serde::Deserialize;
use serde_json::Value;

use super::{Job, JobContext, JobError, JobResult, parse_params};
use crate::ingest::{self, Entity, Format, Input, Mapping, Options, Report};

pub struct Ingest;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    entity: String,
    #[serde(default = "file")]
    source: String,
    /// Glob, relative to `ingest.inbox` unless absolute.
    path: Option<String>,
    /// Mapping file, relative to the daemon's working directory.
    mapping: Option<String>,
    #[serde(default = "default_ratio")]
    max_bad_ratio: f64,
    timezone: Option<String>,
    /// `csv` or `jsonl` (default: from the file name; JSON for HTTP).
    format: Option<String>,
    url: Option<String>,
    /// Environment variable holding a bearer token.
    token_env: Option<String>,
    /// Where the items are in a JSON object response (`data`, `results`…).
    items_field: Option<String>,
    /// Page-number pagination: this query parameter counts up from 1.
    page_param: Option<String>,
    page_size_param: Option<String>,
    page_size: Option<u32>,
    /// Cursor pagination: the response field with the next cursor, sent back as
    /// `cursor_param`.
    cursor_field: Option<String>,
    cursor_param: Option<String>,
    #[serde(default = "max_pages")]
    max_pages: u32,
}

fn file() -> String {
    "file".to_owned()
}
fn default_ratio() -> f64 {
    0.05
}
fn max_pages() -> u32 {
    10_000
}

impl Params {
    fn check(&self) -> Result<Entity, String> {
        let entity: Entity = self.entity.parse()?;
        if !(0.0..=1.0).contains(&self.max_bad_ratio) {
            return Err("max_bad_ratio must be between 0 and 1".to_owned());
        }
        if let Some(tz) = &self.timezone {
            tz.parse::<chrono_tz::Tz>()
                .map_err(|_| format!("unknown time zone `{tz}`"))?;
        }
        if let Some(f) = &self.format
            && !matches!(f.as_str(), "csv" | "jsonl" | "json")
        {
            return Err(format!("unknown format `{f}` (expected csv or jsonl)"));
        }
        match self.source.as_str() {
            "file" if self.path.is_none() => Err("source = \"file\" needs `path`".to_owned()),
            "file" => Ok(entity),
            "http" => {
                let url = self.url.as_deref().ok_or("source = \"http\" needs `url`")?;
                reqwest::Url::parse(url).map_err(|e| format!("bad url `{url}`: {e}"))?;
                if self.page_param.is_some() && self.cursor_field.is_some() {
                    return Err("use page_param or cursor_field, not both".to_owned());
                }
                if self.cursor_field.is_some() != self.cursor_param.is_some() {
                    return Err(
                        "cursor pagination needs both cursor_field and cursor_param".to_owned()
                    );
                }
                Ok(entity)
            }
            other => Err(format!("unknown source `{other}` (expected file or http)")),
        }
    }

    fn format(&self) -> Option<Format> {
        self.format.as_deref().map(|f| match f {
            "csv" => Format::Csv { delimiter: b',' },
            _ => Format::JsonLines,
        })
    }
}

#[async_trait::async_trait]
impl Job for Ingest {
    fn kind(&self) -> &'static str {
        "ingest"
    }

    fn check_params(&self, params: &Value) -> Result<(), String> {
        let p: Params = parse_params(params)?;
        p.check()?;
        if let Some(m) = &p.mapping {
            let path = PathBuf::from(m);
            if path.exists() {
                Mapping::load(&path).map_err(|problems| {
                    problems
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                })?;
            }
        }
        Ok(())
    }

    async fn run(&self, ctx: &JobContext) -> JobResult {
        let p: Params = parse_params(&ctx.params_value()).map_err(JobError::Fatal)?;
        let entity = p.check().map_err(JobError::Fatal)?;
        let mapping = match &p.mapping {
            Some(m) => Some(
                ingest::load_mapping(&PathBuf::from(m))
                    .map_err(|e| JobError::Fatal(e.to_string()))?,
            ),
            None => None,
        };
        let timezone = p
            .timezone
            .as_deref()
            .unwrap_or(&ctx.settings.ingest.timezone)
            .parse::<chrono_tz::Tz>()
            .map_err(|_| JobError::Fatal("bad time zone".to_owned()))?;
        let options = Options {
            max_bad_ratio: p.max_bad_ratio,
            timezone,
            format: p.format(),
        };
        let inputs = match p.source.as_str() {
            "http" => vec![fetch_http(ctx, &p).await?],
            _ => {
                let pattern = PathBuf::from(p.path.as_deref().unwrap_or(""));
                let pattern = if pattern.is_absolute() {
                    pattern
                } else {
                    PathBuf::from(&ctx.settings.ingest.inbox).join(pattern)
                };
                let files = ingest::expand(&pattern).map_err(JobError::Fatal)?;
                if files.is_empty() {
                    ctx.log
                        .info(format!("no files match {}", pattern.display()));
                }
                files.into_iter().map(Input::File).collect()
            }
        };
        let lake = ctx.lake()?;
        let mut total = Report::default();
        let mut rejected = Vec::new();
        for input in inputs {
            if ctx.cancel.is_cancelled() {
                return Err(JobError::Cancelled);
            }
            let report = ingest::ingest(&lake, input, entity, mapping.as_ref(), &options, None)
                .await
                .map_err(|e| JobError::Failed(e.to_string()))?;
            ctx.log.info(describe(&report));
            if report.rejected {
                rejected.push(report.source.clone());
            }
            total.absorb(&report);
        }
        ctx.log.info(format!(
            "{entity}: read {}, loaded {}, duplicates {}, skipped {}, quarantined {}",
            total.read, total.loaded, total.duplicates, total.skipped, total.quarantined
        ));
        if rejected.is_empty() {
            Ok(())
        } else {
            Err(JobError::Fatal(format!(
                "more than {:.1}% of the rows of {} could not be read; nothing from {} was loaded (see `patron quarantine list`)",
                p.max_bad_ratio * 100.0,
                rejected.join(", "),
                if rejected.len() == 1 { "it" } else { "them" }
            )))
        }
    }
}

/// One line about one source, for logs.
pub fn describe(r: &Report) -> String {
    if r.already_ingested {
        return format!("{}: already ingested (same checksum); skipped", r.source);
    }
    let reasons: Vec<String> = r.reasons.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let skips: Vec<String> = r
        .skip_reasons
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    format!(
        "{}: read {}, loaded {}, duplicates {}, skipped {}{}, quarantined {}{}{} in {:.2}s",
        r.source,
        r.read,
        r.loaded,
        r.duplicates,
        r.skipped,
        if skips.is_empty() {
            String::new()
        } else {
            format!(" ({})", skips.join(", "))
        },
        r.quarantined,
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(", "))
        },
        if r.rejected {
            " — REJECTED, nothing kept"
        } else {
            ""
        },
        r.seconds
    )
}

/// Fetches every page and joins the items as JSON Lines.
async fn fetch_http(ctx: &JobContext, p: &Params) -> Result<Input, JobError> {
    let url = p.url.clone().unwrap_or_default();
    let token = match &p.token_env {
        Some(var) => Some(std::env::var(var).map_err(|_| {
            JobError::Fatal(format!("environment variable {var} (token_env) is not set"))
        })?),
        None => None,
    };
    let mut lines = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 1..=p.max_pages {
        let mut page_url = reqwest::Url::parse(&url)
            .map_err(|e| JobError::Fatal(format!("bad url `{url}`: {e}")))?;
        {
            let mut query = page_url.query_pairs_mut();
            if let Some(param) = &p.page_param {
                query.append_pair(param, &page.to_string());
            }
            if let (Some(param), Some(size)) = (&p.page_size_param, p.page_size) {
                query.append_pair(param, &size.to_string());
            }
            if let (Some(param), Some(c)) = (&p.cursor_param, &cursor) {
                query.append_pair(param, c);
            }
        }
        let mut request = ctx.http.get(page_url);
        if let Some(t) = &token {
            request = request.bearer_auth(t);
        }
        let response = tokio::select! {
            r = request.send() => r.map_err(|e| JobError::Failed(format!("GET {url}: {}", super::http::describe_error(&e))))?,
            _ = ctx.cancel.cancelled() => return Err(JobError::Cancelled),
        };
        let status = response.status();
        if !status.is_success() {
            return Err(JobError::Failed(format!(
                "GET {url} (page {page}) returned {status}"
            )));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| JobError::Failed(format!("reading {url}: {e}")))?;
        let (items, next) = page_items(&body, p.items_field.as_deref(), p.cursor_field.as_deref())
            .map_err(JobError::Failed)?;
        let n = items.len();
        for item in items {
            lines.extend_from_slice(item.to_string().as_bytes());
            lines.push(b'\n');
        }
        ctx.log.info(format!("GET {url} page {page}: {n} items"));
        cursor = next;
        let paginated = p.page_param.is_some() || p.cursor_field.is_some();
        if !paginated || n == 0 || (p.cursor_field.is_some() && cursor.is_none()) {
            break;
        }
    }
    Ok(Input::Bytes {
        name: url,
        data: Arc::new(lines),
    })
}

/// Items of one response: a JSON array, an object holding the array under `items_field`, or
/// JSON Lines; plus the next cursor when asked for.
fn page_items(
    body: &[u8],
    items_field: Option<&str>,
    cursor_field: Option<&str>,
) -> Result<(Vec<Value>, Option<String>), String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => Ok((items, None)),
        Ok(Value::Object(mut obj)) => {
            let next = cursor_field.and_then(|f| obj.get(f)).and_then(|v| match v {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
            let field = items_field.ok_or(
                "the response is a JSON object; set items_field to the key of its item list",
            )?;
            match obj.remove(field) {
                Some(Value::Array(items)) => Ok((items, next)),
                _ => Err(format!("the response has no list under `{field}`")),
            }
        }
        Ok(_) => Err("the response is neither a list nor an object".to_owned()),
        Err(_) => {
            // JSON Lines: one object per line.
            let text =
                std::str::from_utf8(body).map_err(|_| "the response is not UTF-8".to_owned())?;
            let items: Result<Vec<Value>, _> = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(serde_json::from_str)
                .collect();
            items
                .map(|i| (i, None))
                .map_err(|e| format!("the response is not JSON or JSON Lines: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn params_are_checked() {
        let check = |v: Value| Ingest.check_params(&v);
        assert!(check(json!({"entity": "orders", "path": "orders/*.csv"})).is_ok());
        assert!(
            check(json!({"entity": "order", "path": "x"}))
                .unwrap_err()
                .contains("unknown entity")
        );
        assert!(
            check(json!({"entity": "orders"}))
                .unwrap_err()
                .contains("needs `path`")
        );
        assert!(
            check(json!({"entity": "orders", "source": "http"}))
                .unwrap_err()
                .contains("needs `url`")
        );
        assert!(
            check(json!({"entity": "orders", "path": "x", "max_bad_ratio": 2.0}))
                .unwrap_err()
                .contains("between 0 and 1")
        );
        assert!(
            check(json!({"entity": "orders", "path": "x", "timezone": "Moon/Base"}))
                .unwrap_err()
                .contains("time zone")
        );
    }

    #[test]
    fn pages_come_as_lists_objects_or_lines() {
        let (items, next) = page_items(br#"[{"a":1},{"a":2}]"#, None, None).unwrap();
        assert_eq!((items.len(), next), (2, None));
        let (items, next) = page_items(
            br#"{"data":[{"a":1}],"next":"abc"}"#,
            Some("data"),
            Some("next"),
        )
        .unwrap();
        assert_eq!((items.len(), next.as_deref()), (1, Some("abc")));
        let (items, _) = page_items(b"{\"a\":1}\n{\"a\":2}\n", None, None).unwrap();
        assert_eq!(items.len(), 2);
        assert!(
            page_items(br#"{"data":[]}"#, None, None)
                .unwrap_err()
                .contains("items_field")
        );
    }
}
