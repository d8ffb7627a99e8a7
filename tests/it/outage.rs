//! A database outage under a running daemon (PostgreSQL only). The daemon reaches the database
//! through a TCP proxy inside the test that can cut it off: live connections are dropped and
//! new ones closed at once or refused, until the proxy restores them. A job is running when
//! the database goes away and finishes during the outage, which lasts longer than the job and
//! than the lease. The daemon must log it, stay up, keep the job's result and write it when
//! the database returns: the run succeeds, the job has one attempt, and nothing ran twice.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;

use crate::common::*;

const WAIT: Duration = Duration::from_secs(30);

/// How long the database stays away: longer than the job (3 s) and than the lease (2 s).
const OUTAGE: Duration = Duration::from_secs(7);

/// How the proxy cuts the database off; either way live connections are dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// New connections are accepted and closed at once (a proxy whose backend is gone).
    Close,
    /// New connections are refused (the database server is down or restarting).
    Refuse,
}

/// A TCP proxy to the database that can cut it off. It listens on 127.0.0.2, so no client
/// socket of this machine can take its port while it is unbound during a [`Cut::Refuse`].
struct Proxy {
    addr: std::net::SocketAddr,
    upstream: String,
    /// The token live connections end on; `None` while the database is cut off.
    live: Arc<Mutex<Option<CancellationToken>>>,
    accept: Mutex<Option<tokio::task::JoinHandle<()>>>,
    runtime: tokio::runtime::Runtime,
}

impl Proxy {
    fn start(upstream: String) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.2:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let live = Arc::new(Mutex::new(Some(CancellationToken::new())));
        let accept = runtime.spawn(forward(listener, live.clone(), upstream.clone()));
        Self {
            addr,
            upstream,
            live,
            accept: Mutex::new(Some(accept)),
            runtime,
        }
    }

    /// Drops every live connection and cuts off new ones until [`Proxy::restore`].
    fn cut(&self, how: Cut) {
        if let Some(token) = self.live.lock().unwrap().take() {
            token.cancel();
        }
        if how == Cut::Refuse {
            if let Some(accept) = self.accept.lock().unwrap().take() {
                accept.abort();
            }
            assert!(
                wait_until(Duration::from_secs(5), || TcpStream::connect(self.addr)
                    .is_err()),
                "the proxy still accepts connections"
            );
        }
    }

    fn restore(&self) {
        *self.live.lock().unwrap() = Some(CancellationToken::new());
        let mut accept = self.accept.lock().unwrap();
        if accept.is_none() {
            let listener = self
                .runtime
                .block_on(tokio::net::TcpListener::bind(self.addr))
                .unwrap();
            *accept = Some(self.runtime.spawn(forward(
                listener,
                self.live.clone(),
                self.upstream.clone(),
            )));
        }
    }
}

/// Accepts connections and forwards each to `upstream` until its token is cancelled; while
/// cut off (no token), closes them at once.
async fn forward(
    listener: tokio::net::TcpListener,
    live: Arc<Mutex<Option<CancellationToken>>>,
    upstream: String,
) {
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            continue;
        };
        let Some(token) = live.lock().unwrap().clone() else {
            continue;
        };
        let upstream = upstream.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = token.cancelled() => {}
                _ = async {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                } => {}
            }
        });
    }
}

/// `url` with its `host:port` replaced by the proxy's.
fn via_proxy(url: &str, port: u16) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    let upstream = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5432")
    };
    (
        format!("{scheme}://{user}127.0.0.2:{port}/{path}"),
        upstream,
    )
}

/// The HTTP status of `GET /healthz`, or 0 if the endpoint does not answer.
fn healthz(addr: &str) -> u16 {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return 0;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: patron\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return 0;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("127.0.0.1:{}", listener.local_addr().unwrap().port())
}

fn log_lines(daemon: &Daemon) -> Vec<String> {
    std::fs::read_to_string(&daemon.log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_daemon_outlives_a_database_that_closes_connections() {
    outage(Cut::Close);
}

#[test]
fn a_daemon_outlives_a_database_that_refuses_connections() {
    outage(Cut::Refuse);
}

fn outage(how: Cut) {
    if !backends().contains(&Backend::Postgres) {
        eprintln!("outage test skipped: PATRON_TEST_DATABASE_URL is not set");
        return;
    }
    let env = Env::new(Backend::Postgres);
    env.apply(
        "outage.toml",
        &(header("outage", "")
            + "[[job]]\nname = \"start\"\nkind = \"noop\"\n"
            + &sh_job(
                "slow",
                &["start"],
                "echo start >> starts.txt; sleep 3; echo done >> done.txt",
                "",
            )
            + "[[job]]\nname = \"next\"\nkind = \"noop\"\nafter = [\"slow\"]\n"
            + "[[job]]\nname = \"last\"\nkind = \"noop\"\nafter = [\"next\"]\n"),
    );

    let (_, upstream) = via_proxy(&env.db.url, 0);
    let proxy = Proxy::start(upstream);
    let (proxy_url, _) = via_proxy(&env.db.url, proxy.addr.port());
    let http = free_addr();
    let mut daemon = env.daemon_with(
        "w1",
        &[
            ("PATRON__DATABASE__URL", &proxy_url),
            ("PATRON__DAEMON__HTTP_ADDR", &http),
            ("PATRON__SCHEDULER__LEASE_TTL", "2s"),
            ("PATRON__SCHEDULER__HEARTBEAT_INTERVAL", "500ms"),
            ("PATRON__SCHEDULER__REAPER_INTERVAL", "1s"),
            ("PATRON__SCHEDULER__POLL_INTERVAL", "50ms"),
        ],
    );
    env.wait_worker("w1", WAIT);
    assert!(
        wait_until(WAIT, || healthz(&http) == 200),
        "/healthz never reported healthy"
    );

    let run = env.trigger("outage");
    assert!(
        wait_until(WAIT, || job(&env.show(run), "slow")["state"] == "running"),
        "the slow job never started"
    );

    // The database goes away while `slow` runs, for longer than the job and the lease.
    let lines_before = log_lines(&daemon).len();
    let cut_at = Instant::now();
    proxy.cut(how);
    let mut unhealthy = false;
    while cut_at.elapsed() < OUTAGE {
        assert!(
            daemon.alive(),
            "{how:?}: the daemon exited during the outage; log:\n{}",
            log_lines(&daemon).join("\n")
        );
        if healthz(&http) == 503 {
            unhealthy = true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        env.path("done.txt").exists(),
        "{how:?}: the slow job should have finished during the outage"
    );
    let during: Vec<String> = log_lines(&daemon)[lines_before..].to_vec();
    let outage = cut_at.elapsed();
    let restored_at = Instant::now();
    proxy.restore();

    let shown = env.wait_run(run, WAIT);
    let recovered = restored_at.elapsed();
    eprintln!(
        "outage ({how:?}): database away for {:.1}s; run succeeded {:.1}s after it returned; \
         {} log lines during the outage",
        outage.as_secs_f64(),
        recovered.as_secs_f64(),
        during.len()
    );
    let log_path = daemon.log.clone();
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        daemon.alive(),
        "{how:?}: the daemon exited after the outage; log:\n{}",
        log()
    );
    assert_eq!(shown["state"], "succeeded", "{how:?}: {shown:#}");
    // The result of the attempt that finished during the outage was kept and written once the
    // database was back; the job was not taken for lost and run again.
    assert_eq!(
        attempt_states(&shown, "slow"),
        ["succeeded"],
        "{how:?}: {shown:#}\nlog:\n{}",
        log()
    );
    assert_eq!(job(&shown, "slow")["attempts"][0]["worker_id"], "w1");
    let starts = std::fs::read_to_string(env.path("starts.txt")).unwrap();
    assert_eq!(starts.lines().count(), 1, "{how:?}: the slow job ran twice");
    for name in ["start", "next", "last"] {
        assert_eq!(attempt_states(&shown, name), ["succeeded"], "{shown:#}");
    }
    assert_eq!(
        env.sql_ints(
            "SELECT COUNT(*) FROM (SELECT job_run_id FROM attempts WHERE state = 'succeeded' \
             GROUP BY job_run_id HAVING COUNT(*) > 1) t"
        ),
        [0],
        "{how:?}: a job run succeeded twice"
    );

    // It noticed and said so, backed off rather than logging at every poll, and /healthz told.
    assert!(
        during.iter().any(|l| l.contains("WARN")),
        "{how:?}: no warning during the outage:\n{}",
        during.join("\n")
    );
    assert!(
        during.len() < 50,
        "{how:?}: {} log lines in a {OUTAGE:?} outage:\n{}",
        during.len(),
        during.join("\n")
    );
    assert!(unhealthy, "{how:?}: /healthz never reported the outage");
    assert!(
        wait_until(WAIT, || healthz(&http) == 200),
        "{how:?}: /healthz did not recover"
    );
    assert!(daemon.alive());
    let status = daemon.terminate(Duration::from_secs(20));
    assert!(status.success(), "{how:?}: daemon exit: {status}");
}
