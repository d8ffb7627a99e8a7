//! `command`: runs a program with arguments, no shell (unless the program is one).
//!
//! stdout and stderr go to the attempt log line by line; the exit code decides. The program
//! runs in its own process group, so a timeout or a cancel stops everything it started
//! (SIGTERM, then SIGKILL after a grace period) and nothing outlives the attempt.

use std::{collections::BTreeMap, process::Stdio, time::Duration};

use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::{Job, JobContext, JobError, JobResult, LogSink, parse_params};
use crate::db::entities::LogStream;

/// After SIGTERM, how long the program gets before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(5);
/// Longest line kept in the log; the rest of a longer line is dropped.
const MAX_LINE: usize = 64 * 1024;

pub struct Command;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    program: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<String>,
}

#[async_trait::async_trait]
impl Job for Command {
    fn kind(&self) -> &'static str {
        "command"
    }

    fn check_params(&self, params: &Value) -> Result<(), String> {
        let p: Params = parse_params(params)?;
        if p.program.trim().is_empty() {
            return Err("`program` is empty".to_owned());
        }
        Ok(())
    }

    fn shardable(&self) -> bool {
        true
    }

    /// Every run param reaches the program as `PATRON_PARAM_<KEY>`.
    fn run_params(&self) -> crate::pipeline::RunParamUse {
        crate::pipeline::RunParamUse::Any
    }

    async fn run(&self, ctx: &JobContext) -> JobResult {
        let p: Params = parse_params(&ctx.params_value()).map_err(JobError::Fatal)?;
        let mut cmd = tokio::process::Command::new(&p.program);
        cmd.args(&p.args)
            .envs(&p.env)
            .env("PATRON_RUN_ID", ctx.run_id.to_string())
            .env("PATRON_PIPELINE", &ctx.pipeline)
            .env("PATRON_JOB", &ctx.job)
            .env("PATRON_ATTEMPT", ctx.attempt.to_string())
            .env("PATRON_LOGICAL_TIME", ctx.logical_time.to_rfc3339())
            .envs(ctx.run_params.iter().map(|(k, v)| {
                (
                    format!("PATRON_PARAM_{}", k.to_uppercase().replace('-', "_")),
                    v,
                )
            }))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(shard) = ctx.shard {
            // The program picks its customers itself: `hash % count == index` (see the
            // README on `shards` for the hash).
            cmd.env("PATRON_SHARD_INDEX", shard.index.to_string())
                .env("PATRON_SHARD_COUNT", shard.count.to_string());
        }
        if let Some(cwd) = &p.cwd {
            cmd.current_dir(cwd);
        }
        ctx.log.info(
            format!("$ {} {}", p.program, p.args.join(" "))
                .trim_end()
                .to_owned(),
        );

        let mut child = cmd.spawn().map_err(|e| {
            let msg = format!("cannot start `{}`: {e}", p.program);
            match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                    JobError::Fatal(msg)
                }
                _ => JobError::Failed(msg),
            }
        })?;
        let group = ProcessGroup(child.id());
        let pumps = [
            child
                .stdout
                .take()
                .map(|s| pump(s, LogStream::Stdout, ctx.log.clone())),
            child
                .stderr
                .take()
                .map(|s| pump(s, LogStream::Stderr, ctx.log.clone())),
        ];

        let status = tokio::select! {
            status = child.wait() => status,
            _ = ctx.cancel.cancelled() => {
                group.signal(libc::SIGTERM);
                if tokio::time::timeout(TERM_GRACE, child.wait()).await.is_err() {
                    ctx.log.info(format!("still running {}s after SIGTERM; sending SIGKILL", TERM_GRACE.as_secs()));
                    group.signal(libc::SIGKILL);
                    let _ = child.wait().await;
                }
                drain(pumps).await;
                return Err(JobError::Cancelled);
            }
        };
        // Whatever the program left running in its group must not outlive the attempt (and
        // would keep our pipes open).
        group.signal(libc::SIGKILL);
        drain(pumps).await;

        let status =
            status.map_err(|e| JobError::Failed(format!("waiting for `{}`: {e}", p.program)))?;
        if status.success() {
            return Ok(());
        }
        use std::os::unix::process::ExitStatusExt;
        Err(JobError::Failed(match (status.code(), status.signal()) {
            (Some(code), _) => format!("`{}` exited with status {code}", p.program),
            (None, Some(sig)) => format!("`{}` was killed by signal {sig}", p.program),
            (None, None) => format!("`{}` ended abnormally", p.program),
        }))
    }
}

/// The program's process group; dropping it kills whatever is left in the group.
struct ProcessGroup(Option<u32>);

impl ProcessGroup {
    fn signal(&self, signal: i32) {
        if let Some(pid) = self.0.and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill(2) has no memory effects; a negative pid addresses the group we
            // created with `process_group(0)`, whose id is the child's pid. If the group is
            // already gone the call fails with ESRCH, which is fine.
            unsafe {
                libc::kill(-pid, signal);
            }
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
    }
}

fn pump(
    stream: impl AsyncRead + Unpin + Send + 'static,
    kind: LogStream,
    log: LogSink,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if buf.ends_with(b"\n") {
                        buf.pop();
                    }
                    if buf.ends_with(b"\r") {
                        buf.pop();
                    }
                    buf.truncate(MAX_LINE);
                    log.line(kind, String::from_utf8_lossy(&buf).into_owned());
                }
            }
        }
    })
}

async fn drain(pumps: [Option<tokio::task::JoinHandle<()>>; 2]) {
    for pump in pumps.into_iter().flatten() {
        // Output still buffered in the pipe is read within this time; a pipe held open by
        // a process outside our group is abandoned.
        let _ = tokio::time::timeout(Duration::from_secs(2), pump).await;
    }
}
