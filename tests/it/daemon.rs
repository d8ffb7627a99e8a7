//! The daemon running pipelines: DAG order, retries, timeouts, failures and reruns, cancel,
//! limits, params, and the `http` kind.

use std::{
    io::{Read, Write},
    net::TcpListener,
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::common::*;

const WAIT: Duration = Duration::from_secs(30);

fn lines(env: &Env, file: &str) -> Vec<String> {
    std::fs::read_to_string(env.path(file))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn ts(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn a_diamond_runs_in_dependency_order() {
    for backend in backends() {
        let env = Env::new(backend);
        let pipeline = header("diamond", "")
            + &sh_job("a", &[], "echo a >> order.txt", "")
            + &sh_job("b", &["a"], "sleep 0.3; echo b >> order.txt", "")
            + &sh_job("c", &["a"], "echo c >> order.txt", "")
            + &sh_job("d", &["b", "c"], "echo d >> order.txt", "");
        env.apply("diamond.toml", &pipeline);
        let _daemon = env.daemon("w1");
        let out = env.json(&["trigger", "diamond", "--wait"]);
        assert_eq!(out["state"], "succeeded", "{backend:?}");
        let order = lines(&env, "order.txt");
        assert_eq!(order.len(), 4);
        assert_eq!(order[0], "a");
        assert_eq!(order[3], "d");
        let run = env.show(out["run_id"].as_i64().unwrap());
        for j in ["a", "b", "c", "d"] {
            assert_eq!(attempt_states(&run, j), ["succeeded"], "{j}");
            assert_eq!(job(&run, j)["attempts"][0]["worker_id"], "w1");
        }
        // d started only after both of its upstreams finished.
        let d_start = ts(&job(&run, "d")["attempts"][0]["started_at"]);
        for up in ["b", "c"] {
            assert!(ts(&job(&run, up)["attempts"][0]["finished_at"]) <= d_start);
        }
    }
}

#[test]
fn a_flaky_job_succeeds_on_its_second_attempt_after_backoff() {
    for backend in backends() {
        let env = Env::new(backend);
        let flaky =
            "if [ -f tried ]; then echo second; else touch tried; echo first >&2; exit 3; fi";
        env.apply(
            "flaky.toml",
            &(header("flaky", "")
                + &sh_job(
                    "flaky",
                    &[],
                    flaky,
                    "retries = 2\nretry_backoff = \"200ms\"",
                )),
        );
        let _daemon = env.daemon("w1");
        let out = env.json(&["trigger", "flaky", "--wait"]);
        assert_eq!(out["state"], "succeeded");
        let run = env.show(out["run_id"].as_i64().unwrap());
        assert_eq!(attempt_states(&run, "flaky"), ["failed", "succeeded"]);
        let attempts = &job(&run, "flaky")["attempts"];
        assert_eq!(attempts[0]["error"], "`sh` exited with status 3");
        // Backoff: base 200ms with jitter in [0.5, 1].
        let gap = ts(&attempts[1]["started_at"]) - ts(&attempts[0]["finished_at"]);
        assert!(
            gap >= chrono::Duration::milliseconds(100),
            "retried after {gap}"
        );
        // Both attempts' output is in the logs, stderr included.
        let logs = env.json(&["logs", &out["run_id"].to_string()]);
        let text: Vec<String> = logs
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                format!(
                    "{}#{} {} {}",
                    l["job"].as_str().unwrap(),
                    l["attempt"],
                    l["stream"].as_str().unwrap(),
                    l["line"].as_str().unwrap()
                )
            })
            .collect();
        assert!(
            text.contains(&"flaky#1 stderr first".to_owned()),
            "{text:?}"
        );
        assert!(
            text.contains(&"flaky#2 stdout second".to_owned()),
            "{text:?}"
        );
    }
}

#[test]
fn a_timeout_kills_the_job_and_fails_downstream() {
    for backend in backends() {
        let env = Env::new(backend);
        let pipeline = header("slow", "")
            + &sh_job(
                "slow",
                &[],
                "echo $$ > pid.txt; sleep 30",
                "timeout = \"500ms\"",
            )
            + &sh_job("after", &["slow"], "echo never", "");
        env.apply("slow.toml", &pipeline);
        let _daemon = env.daemon("w1");
        let out = env.run(&["trigger", "slow", "--wait", "--json"]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "--wait exits non-zero when the run fails"
        );
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["state"], "failed");
        let run = env.show(json["run_id"].as_i64().unwrap());
        assert_eq!(attempt_states(&run, "slow"), ["timed_out"]);
        assert_eq!(job(&run, "slow")["state"], "failed");
        assert_eq!(job(&run, "slow")["error"], "timed out after 500ms");
        assert_eq!(job(&run, "after")["state"], "upstream_failed");
        // The process was killed, not left running.
        let pid: i32 = std::fs::read_to_string(env.path("pid.txt"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            wait_until(Duration::from_secs(5), || unsafe { libc::kill(pid, 0) }
                != 0),
            "sleep {pid} still alive"
        );
    }
}

#[test]
fn rerun_failed_only_repeats_failed_jobs_and_their_downstream() {
    for backend in backends() {
        let env = Env::new(backend);
        env.write("broken", "");
        let pipeline = header("etl", "")
            + &sh_job("extract", &[], "echo x >> extract.txt", "")
            + &sh_job(
                "transform",
                &["extract"],
                "if [ -f broken ]; then exit 1; fi; echo t >> transform.txt",
                "",
            )
            + &sh_job("load", &["transform"], "echo l >> load.txt", "")
            + &sh_job("side", &["extract"], "echo s >> side.txt", "");
        env.apply("etl.toml", &pipeline);
        let _daemon = env.daemon("w1");
        let out = env.run(&["trigger", "etl", "--wait", "--json"]);
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        let run = json["run_id"].as_i64().unwrap();
        assert_eq!(json["state"], "failed");
        let shown = env.show(run);
        assert_eq!(job(&shown, "transform")["state"], "failed");
        assert_eq!(job(&shown, "load")["state"], "upstream_failed");
        assert_eq!(job(&shown, "side")["state"], "succeeded");

        std::fs::remove_file(env.path("broken")).unwrap();
        let rerun = env.json(&["rerun", &run.to_string(), "--failed-only"]);
        let mut jobs: Vec<&str> = rerun["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j.as_str().unwrap())
            .collect();
        jobs.sort();
        assert_eq!(jobs, ["load", "transform"]);
        let shown = env.wait_run(run, WAIT);
        assert_eq!(shown["state"], "succeeded");
        assert_eq!(shown["reruns"], 1);
        assert_eq!(attempt_states(&shown, "transform"), ["failed", "succeeded"]);
        assert_eq!(attempt_states(&shown, "load"), ["succeeded"]);
        // Succeeded upstream jobs did not run again.
        assert_eq!(lines(&env, "extract.txt").len(), 1);
        assert_eq!(lines(&env, "side.txt").len(), 1);

        // --from reruns a job and what depends on it, nothing upstream.
        env.ok(&["rerun", &run.to_string(), "--from", "transform"]);
        let shown = env.wait_run(run, WAIT);
        assert_eq!(shown["state"], "succeeded");
        assert_eq!(lines(&env, "extract.txt").len(), 1);
        assert_eq!(lines(&env, "transform.txt").len(), 2);
        assert_eq!(lines(&env, "load.txt").len(), 2);
        let out = env.run(&["rerun", &run.to_string(), "--from", "nope"]);
        assert!(String::from_utf8_lossy(&out.stderr).contains("job nope in run"));
    }
}

#[test]
fn cancelling_a_running_run_stops_its_jobs() {
    for backend in backends() {
        let env = Env::new(backend);
        let pipeline = header("long", "")
            + &sh_job("long", &[], "sleep 30", "")
            + &sh_job("next", &["long"], "echo never", "");
        env.apply("long.toml", &pipeline);
        let _daemon = env.daemon("w1");
        let run = env.trigger("long");
        assert!(wait_until(WAIT, || job(&env.show(run), "long")["state"] == "running"));
        let out = env.json(&["cancel", &run.to_string()]);
        assert_eq!(out["state"], "running", "running jobs stop asynchronously");
        let shown = env.wait_run(run, Duration::from_secs(15));
        assert_eq!(shown["state"], "cancelled");
        assert_eq!(attempt_states(&shown, "long"), ["cancelled"]);
        assert_eq!(job(&shown, "next")["state"], "cancelled");
    }
}

#[test]
fn max_active_runs_queues_the_second_run() {
    let env = Env::new(Backend::Sqlite);
    env.apply(
        "one.toml",
        &(header("one", "max_active_runs = 1") + &sh_job("work", &[], "sleep 0.5", "")),
    );
    let _daemon = env.daemon("w1");
    let first = env.trigger("one");
    let second = env.trigger("one");
    let a = env.wait_run(first, WAIT);
    let b = env.wait_run(second, WAIT);
    assert_eq!(a["state"], "succeeded");
    assert_eq!(b["state"], "succeeded");
    assert!(
        ts(&b["started_at"]) >= ts(&a["finished_at"]),
        "runs overlapped: {a} {b}"
    );
}

#[test]
fn max_concurrency_caps_jobs_running_at_once() {
    let env = Env::new(Backend::Sqlite).with_env("PATRON__SCHEDULER__MAX_CONCURRENCY", "2");
    let mut pipeline = header("wide", "");
    for i in 0..6 {
        pipeline += &sh_job(&format!("j{i}"), &[], "sleep 0.3", "");
    }
    env.apply("wide.toml", &pipeline);
    let _daemon = env.daemon("w1");
    let out = env.json(&["trigger", "wide", "--wait"]);
    let run = env.show(out["run_id"].as_i64().unwrap());
    let mut events = Vec::new();
    for j in run["jobs"].as_array().unwrap() {
        let a = &j["attempts"][0];
        events.push((ts(&a["started_at"]), 1));
        events.push((ts(&a["finished_at"]), -1));
    }
    events.sort();
    let (mut now, mut peak) = (0, 0);
    for (_, delta) in events {
        now += delta;
        peak = peak.max(now);
    }
    assert_eq!(peak, 2);
}

#[test]
fn run_params_reach_jobs() {
    let env = Env::new(Backend::Sqlite);
    // A run param replaces the same-named param of every job (here `args` of `command`)...
    env.apply(
        "params.toml",
        "[pipeline]\nname = \"params\"\n[[job]]\nname = \"greet\"\nkind = \"command\"\nparams = { program = \"echo\", args = [\"default\"] }\n",
    );
    // ...and every run param reaches commands as PATRON_PARAM_<NAME>.
    env.apply(
        "envp.toml",
        &(header("envp", "") + &sh_job("env", &[], "echo as_of=$PATRON_PARAM_AS_OF", "")),
    );
    let _daemon = env.daemon("w1");
    let stdout = |run: &serde_json::Value| -> Vec<String> {
        let logs = env.json(&["logs", &run["run_id"].to_string()]);
        logs.as_array()
            .unwrap()
            .iter()
            .filter(|l| l["stream"] == "stdout")
            .map(|l| l["line"].as_str().unwrap().to_owned())
            .collect()
    };
    let out = env.json(&[
        "trigger",
        "params",
        "--wait",
        "--param",
        "args=[\"overridden\"]",
        "--param",
        "as_of=1997-09-30",
    ]);
    assert_eq!(out["state"], "succeeded");
    assert_eq!(stdout(&out), ["overridden"]);
    let out = env.json(&["trigger", "envp", "--wait", "--param", "as_of=1997-09-30"]);
    assert_eq!(out["state"], "succeeded");
    assert_eq!(stdout(&out), ["as_of=1997-09-30"]);
}

/// Answers `/ok` with 200 and anything else with 503, for `count` requests.
fn http_server(count: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let (status, body) =
                if request.starts_with("POST /ok") && request.contains("Bearer sekrit") {
                    ("200 OK", "accepted")
                } else {
                    ("503 Service Unavailable", "try later")
                };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn the_http_kind_succeeds_on_the_expected_status_only() {
    let env = Env::new(Backend::Sqlite);
    let port = http_server(2);
    let pipeline = format!(
        "[pipeline]\nname = \"api\"\n[[job]]\nname = \"good\"\nkind = \"http\"\nparams = {{ method = \"POST\", url = \"http://127.0.0.1:{port}/ok\", headers = {{ Authorization = \"Bearer ${{TEST_TOKEN}}\" }}, body = {{ a = 1 }} }}\n[[job]]\nname = \"bad\"\nkind = \"http\"\nparams = {{ url = \"http://127.0.0.1:{port}/down\" }}\ntimeout = \"5s\"\n"
    );
    env.apply("api.toml", &pipeline);
    let _daemon = env.daemon_with("w1", &[("TEST_TOKEN", "sekrit")]);
    let out = env.run(&["trigger", "api", "--wait", "--json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = env.show(json["run_id"].as_i64().unwrap());
    assert_eq!(job(&run, "good")["state"], "succeeded", "{run:#}");
    assert_eq!(job(&run, "bad")["state"], "failed");
    let error = job(&run, "bad")["error"].as_str().unwrap();
    assert!(error.contains("503"), "{error}");
}

#[test]
fn logs_follow_streams_until_the_run_ends() {
    let env = Env::new(Backend::Sqlite);
    env.apply(
        "talk.toml",
        &(header("talk", "")
            + &sh_job(
                "talk",
                &[],
                "for i in 1 2 3; do echo line $i; sleep 0.2; done",
                "",
            )),
    );
    let _daemon = env.daemon("w1");
    let run = env.trigger("talk");
    // --follow returns by itself once the run is over, with every line.
    let out = env.ok(&["logs", &run.to_string(), "--follow", "--job", "talk"]);
    for i in 1..=3 {
        assert!(out.contains(&format!("stdout | line {i}")), "{out}");
    }
    assert!(out.trim_end().ends_with("succeeded"), "{out}");
}

#[test]
fn a_rerun_keeps_the_runs_first_start_and_shows_each_execution() {
    for backend in backends() {
        let env = Env::new(backend);
        env.write("broken", "");
        let pipeline = header("hist", "")
            + &sh_job("slow", &[], "sleep 1", "")
            + &sh_job("flaky", &["slow"], "if [ -f broken ]; then exit 1; fi", "");
        env.apply("hist.toml", &pipeline);
        let _daemon = env.daemon("w1");
        let out = env.run(&["trigger", "hist", "--wait", "--json"]);
        let run = serde_json::from_slice::<Value>(&out.stdout).unwrap()["run_id"]
            .as_i64()
            .unwrap();
        let first = env.show(run);
        assert_eq!(first["state"], "failed");
        assert!(first["duration_ms"].as_i64().unwrap() >= 1000, "{first:#}");

        std::fs::remove_file(env.path("broken")).unwrap();
        env.ok(&["rerun", &run.to_string(), "--failed-only"]);
        let shown = env.wait_run(run, WAIT);
        assert_eq!(shown["state"], "succeeded");
        // The run keeps its first start, so its duration spans both executions.
        assert_eq!(shown["started_at"], first["started_at"], "{shown:#}");
        assert!(shown["duration_ms"].as_i64().unwrap() >= 1000, "{shown:#}");
        let executions = shown["executions"].as_array().unwrap();
        assert_eq!(executions.len(), 2, "{shown:#}");
        assert_eq!(executions[0]["number"], 0);
        assert_eq!(executions[0]["state"], "failed");
        assert_eq!(executions[0]["started_at"], first["started_at"]);
        assert_eq!(executions[0]["finished_at"], first["finished_at"]);
        assert!(executions[0]["duration_ms"].as_i64().unwrap() >= 1000);
        assert_eq!(executions[1]["number"], 1);
        assert_eq!(executions[1]["scope"], "failed_only");
        assert_eq!(executions[1]["state"], "succeeded");
        assert_eq!(executions[1]["finished_at"], shown["finished_at"]);
        assert!(executions[1]["started_at"].as_str() >= first["finished_at"].as_str());
        let text = env.ok(&["runs", "show", &run.to_string()]);
        assert!(text.contains("rerun 1 (failed only)"), "{text}");
        assert!(text.contains("first"), "{text}");
    }
}
