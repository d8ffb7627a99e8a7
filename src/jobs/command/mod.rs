//! `command`: runs a program with arguments, no shell (unless the program is one).
//!
//! stdout and stderr go to the attempt log line by line; the exit code decides. The program
//! runs in its own process group, so a timeout or a cancel stops everything it started
//! (SIGTERM, then SIGKILL after a grace period) and nothing outlives the attempt.
//!
//! Nor does anything outlive the daemon: the group is led by a [`supervisor`] that ends it
//! when the daemon dies (even by `kill -9`), and the group is reported to the scheduler
//! ([`JobContext::groups`]) so a daemon starting later on the same host can end what is left
//! before the job is retried ([`host`]).

pub mod host;
mod spawn;
pub mod supervisor;

use std::{
    collections::BTreeMap,
    ffi::OsStr,
    path::{Path, PathBuf},
    process::Stdio,
    sync::OnceLock,
    time::Duration,
};

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

/// The program that runs [`supervisor::main`] (the `patron` binary), once set by `main`.
static SUPERVISOR: OnceLock<PathBuf> = OnceLock::new();

/// Makes `command` jobs start under a supervisor: `program` must run [`supervisor::main`]
/// when its first argument is [`supervisor::ARG`]. Without it (the library embedded in
/// another program), a job's direct child still dies with the daemon but its own children
/// may not.
pub fn use_supervisor(program: PathBuf) {
    let _ = SUPERVISOR.set(program);
}

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
        find_program(
            &p.program,
            p.env.get("PATH").map(OsStr::new),
            p.cwd.as_deref(),
        )
        .map_err(|e| JobError::Fatal(format!("cannot start `{}`: {e}", p.program)))?;
        let (mut cmd, death_signal) = match SUPERVISOR.get() {
            Some(supervisor) => {
                let mut cmd = tokio::process::Command::new(supervisor);
                cmd.arg(supervisor::ARG)
                    .arg(std::process::id().to_string())
                    .arg(&p.program);
                (cmd, libc::SIGHUP)
            }
            None => (tokio::process::Command::new(&p.program), libc::SIGKILL),
        };
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

        let mut child = spawn::spawn(cmd, death_signal)
            .await
            .map_err(|e| JobError::Failed(format!("cannot start `{}`: {e}", p.program)))?;
        let group = ProcessGroup(child.id());
        if let Some(started) = child.id().and_then(host::Group::led_by) {
            ctx.groups.started(started);
        }
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

/// Checks that `program` can be started, as the supervisor will look for it: a path (relative
/// to `cwd`) or a name on `PATH` (the job's own, else the daemon's). Saying so here keeps "not
/// found" a fatal error, rather than the supervisor's exit code.
fn find_program(program: &str, path: Option<&OsStr>, cwd: Option<&str>) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let executable =
        |p: &Path| std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if program.contains('/') {
        let path = match cwd {
            Some(dir) if !program.starts_with('/') => Path::new(dir).join(program),
            _ => PathBuf::from(program),
        };
        return match executable(&path) {
            Ok(true) => Ok(()),
            Ok(false) => Err("not an executable file".to_owned()),
            Err(e) => Err(e.to_string()),
        };
    }
    let daemon_path = std::env::var_os("PATH");
    let search = path.or(daemon_path.as_deref()).unwrap_or_default();
    if std::env::split_paths(search).any(|dir| executable(&dir.join(program)).unwrap_or(false)) {
        Ok(())
    } else {
        Err("not found on PATH".to_owned())
    }
}

async fn drain(pumps: [Option<tokio::task::JoinHandle<()>>; 2]) {
    for pump in pumps.into_iter().flatten() {
        // Output still buffered in the pipe is read within this time; a pipe held open by
        // a process outside our group is abandoned.
        let _ = tokio::time::timeout(Duration::from_secs(2), pump).await;
    }
}
