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

/// A webhook receiver: answers 500 to the first request and 200 after, and hands every
/// request body to the test.
fn webhook() -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the head, then as much body as Content-Length says.
            while let Ok(k) = s.read(&mut chunk) {
                if k == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..k]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        let _ = tx.send(body.to_owned());
                        break;
                    }
                }
            }
            let status = if n == 0 {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (port, rx)
}

#[test]
fn a_failed_run_is_posted_to_the_webhook_and_retried_until_delivered() {
    for backend in backends() {
        let env = Env::new(backend);
        let (port, bodies) = webhook();
        env.apply(
            "fails.toml",
            &format!(
                "{}{}",
                header("fails", ""),
                sh_job("boom", &[], "echo going down; exit 3", "")
            ),
        );
        let url = format!("http://127.0.0.1:{port}/hook");
        let _daemon = env.daemon_with("notify-1", &[("PATRON__NOTIFY__WEBHOOK_URL", &url)]);
        let run = env.run(&["trigger", "fails", "--wait"]);
        assert!(!run.status.success());
        let first = bodies.recv_timeout(Duration::from_secs(30)).unwrap();
        let second = bodies.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(first, second, "the retry posts the same notification");
        let v: serde_json::Value = serde_json::from_str(&second).unwrap();
        assert_eq!(v["event"], "run_failed", "{v:#}");
        assert_eq!(v["pipeline"], "fails");
        assert!(v["text"].as_str().unwrap().contains("boom"), "{v:#}");
        assert!(
            v["failed_jobs"][0]
                .as_str()
                .unwrap()
                .contains("boom after 1 attempts"),
            "{v:#}"
        );
        // Delivered: nothing more is posted.
        assert!(bodies.recv_timeout(Duration::from_secs(2)).is_err());
    }
}

#[test]
fn a_run_past_its_sla_is_reported_once() {
    for backend in backends() {
        let env = Env::new(backend);
        let (port, bodies) = webhook();
        env.apply(
            "slow.toml",
            &format!(
                "{}{}",
                header("slow", "sla = \"1s\""),
                sh_job("nap", &[], "sleep 4", "")
            ),
        );
        let url = format!("http://127.0.0.1:{port}/hook");
        let _daemon = env.daemon_with(
            "sla-1",
            &[
                ("PATRON__NOTIFY__WEBHOOK_URL", &url),
                ("PATRON__SCHEDULER__REAPER_INTERVAL", "200ms"),
            ],
        );
        let out = env.json(&["trigger", "slow", "--wait"]);
        assert_eq!(out["state"], "succeeded", "{out:#}");
        // The first post was refused (500) and retried.
        let first = bodies.recv_timeout(Duration::from_secs(30)).unwrap();
        let second = bodies.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(first, second);
        let v: serde_json::Value = serde_json::from_str(&second).unwrap();
        assert_eq!(v["event"], "sla_missed", "{v:#}");
        assert_eq!(v["pipeline"], "slow");
        assert_eq!(v["sla_seconds"], 1.0);
        assert!(
            v["text"].as_str().unwrap().contains("past its SLA"),
            "{v:#}"
        );
        // Once only, and a run that succeeds sends nothing else.
        assert!(bodies.recv_timeout(Duration::from_secs(2)).is_err());
    }
}

#[test]
fn a_bad_sla_names_its_line() {
    let env = Env::new(Backend::Sqlite);
    env.write(
        "bad.toml",
        "[pipeline]\nname = \"x\"\nsla = \"soon\"\n[[job]]\nname = \"a\"\nkind = \"noop\"\n",
    );
    let out = env.run(&[
        "pipelines",
        "validate",
        env.path("bad.toml").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:3:") && err.contains("sla"), "{err}");
}

/// The most jobs that ran at once, from `start`/`end` lines appended by the jobs.
fn most_at_once(log: &str) -> usize {
    let (mut now, mut most) = (0usize, 0usize);
    for line in log.lines() {
        match line.trim() {
            "start" => {
                now += 1;
                most = most.max(now);
            }
            "end" => now = now.saturating_sub(1),
            _ => {}
        }
    }
    most
}

#[test]
fn a_pool_limits_its_jobs_across_daemons() {
    for backend in backends() {
        let env = Env::new(backend);
        let log = env.path("pool.log");
        let script = format!(
            "echo start >> {0}; sleep 0.6; echo end >> {0}",
            log.display()
        );
        let mut text = header("pooled", "");
        for i in 0..6 {
            text += &sh_job(&format!("j{i}"), &[], &script, "pool = \"warehouse\"");
        }
        // Two jobs outside the pool run beside them.
        text += &sh_job("free", &[], "sleep 0.1", "");
        env.apply("pooled.toml", &text);
        let pools = [("PATRON__POOLS__WAREHOUSE", "2")];
        let _a = env.daemon_with("pool-a", &pools);
        let _b = env.daemon_with("pool-b", &pools);
        let out = env.json(&["trigger", "pooled", "--wait"]);
        assert_eq!(out["state"], "succeeded", "{backend:?}: {out:#}");
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text.matches("start").count(), 6);
        let most = most_at_once(&text);
        assert!(
            most <= 2,
            "{backend:?}: {most} pooled jobs ran at once:\n{text}"
        );
        assert_eq!(most, 2, "{backend:?}: the pool's two slots were both used");
    }
}

#[test]
fn a_second_daemon_on_a_taken_address_exits_naming_it() {
    let env = Env::new(Backend::Sqlite);
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut first = env.daemon_with("first", &[("PATRON__DAEMON__HTTP_ADDR", &addr)]);
    assert!(wait_until(Duration::from_secs(20), || {
        get(port, "/healthz").is_some_and(|(code, _)| code == 200)
    }));
    let out = env
        .command(&["daemon", "--worker-id", "second"])
        .env("PATRON__DAEMON__HTTP_ADDR", &addr)
        .output()
        .expect("run the second daemon");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let error: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(error.len(), 1, "{stderr}");
    assert!(
        error[0].contains(&addr) && error[0].contains("in use"),
        "{stderr}"
    );
    // The second daemon never registered; the first still answers for itself.
    let workers = env.json(&["workers"]);
    assert!(
        workers
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["id"] != "second")
    );
    assert!(first.alive());
    let (_, health) = get(port, "/healthz").unwrap();
    assert!(health.contains("\"worker_id\":\"first\""), "{health}");
    // `off` serves nothing and runs.
    let mut quiet = env.daemon_with("quiet", &[("PATRON__DAEMON__HTTP_ADDR", "off")]);
    env.wait_worker("quiet", Duration::from_secs(20));
    assert!(quiet.alive());
}
