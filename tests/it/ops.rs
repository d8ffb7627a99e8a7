//! Operations endpoints of a running daemon: `/healthz` and Prometheus `/metrics`.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    time::Duration,
};

use crate::common::*;

/// A plain HTTP/1.1 GET: `(status, body)`.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|x| x.1.to_owned())?;
    Some((status, body))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

#[test]
fn a_daemon_serves_health_and_metrics() {
    for backend in backends() {
        let env = Env::new(backend);
        env.apply(
            "ops.toml",
            &format!(
                "{}[[job]]\nname = \"a\"\nkind = \"noop\"\n",
                header("ops", "")
            ),
        );
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let _daemon = env.daemon_with("ops-1", &[("PATRON__DAEMON__HTTP_ADDR", &addr)]);
        assert!(
            wait_until(Duration::from_secs(20), || {
                get(port, "/healthz").is_some_and(|(code, _)| code == 200)
            }),
            "{backend:?}: /healthz never answered 200"
        );
        let (_, health) = get(port, "/healthz").unwrap();
        assert!(health.contains("\"status\":\"ok\""), "{health}");
        assert!(health.contains("\"database\":true"), "{health}");

        let out = env.json(&["trigger", "ops", "--wait"]);
        assert_eq!(out["state"], "succeeded", "{out:#}");
        let (code, metrics) = get(port, "/metrics").unwrap();
        assert_eq!(code, 200);
        for line in [
            "patron_database_up 1",
            "patron_runs{state=\"succeeded\"} 1",
            "patron_job_duration_seconds_count{kind=\"noop\"} 1",
            "patron_attempts_finished_total{kind=\"noop\",outcome=\"succeeded\"} 1",
            "patron_ready_jobs 0",
            "patron_workers_alive 1",
            "patron_lease_losses_total 0",
        ] {
            assert!(
                metrics.contains(line),
                "{backend:?}: no `{line}` in\n{metrics}"
            );
        }
        assert!(metrics.contains("patron_last_success_timestamp_seconds{pipeline=\"ops\"}"));
        assert!(metrics.contains("patron_claim_seconds_count"));
        assert_eq!(get(port, "/nope").map(|x| x.0), Some(404));
    }
}
