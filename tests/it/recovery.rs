//! Crashes and shutdowns: `kill -9` and restart, SIGTERM with and without enough grace.

use std::time::Duration;

use crate::common::*;

const WAIT: Duration = Duration::from_secs(30);

fn running(env: &Env, run: i64, job_name: &str) -> bool {
    let shown = env.show(run);
    job(&shown, job_name)["state"] == "running"
}

#[test]
fn kill_9_then_restart_recovers_the_running_job_once() {
    for backend in backends() {
        let env = Env::new(backend);
        let script = "echo start >> starts.txt; sleep 1; echo done";
        env.apply(
            "crash.toml",
            &(header("crash", "")
                + &sh_job("work", &[], script, "")
                + &sh_job("after", &["work"], "echo after", "")),
        );
        let first = env.daemon("w1");
        let run = env.trigger("crash");
        assert!(wait_until(WAIT, || running(&env, run, "work")));
        first.kill9();

        // Another worker takes over once the lease (2s in tests) expires.
        let _second = env.daemon("w2");
        let shown = env.wait_run(run, WAIT);
        assert_eq!(shown["state"], "succeeded", "{backend:?}: {shown:#}");
        assert_eq!(attempt_states(&shown, "work"), ["lost", "succeeded"]);
        let attempts = &job(&shown, "work")["attempts"];
        assert_eq!(attempts[0]["worker_id"], "w1");
        assert_eq!(attempts[1]["worker_id"], "w2");
        // No job is recorded as succeeded twice.
        for j in shown["jobs"].as_array().unwrap() {
            let wins = j["attempts"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["state"] == "succeeded")
                .count();
            assert_eq!(wins, 1, "{j:#}");
        }
    }
}

#[test]
fn a_restart_with_the_same_worker_id_recovers_at_once() {
    let env = Env::new(Backend::Sqlite).with_env("PATRON__SCHEDULER__LEASE_TTL", "60s");
    env.apply(
        "crash.toml",
        &(header("crash", "") + &sh_job("work", &[], "sleep 1", "")),
    );
    let first = env.daemon("same");
    let run = env.trigger("crash");
    assert!(wait_until(WAIT, || running(&env, run, "work")));
    first.kill9();
    // With a 60s lease, only start-up recovery of its own id can finish this within WAIT.
    let _again = env.daemon("same");
    let shown = env.wait_run(run, WAIT);
    assert_eq!(shown["state"], "succeeded");
    assert_eq!(attempt_states(&shown, "work"), ["lost", "succeeded"]);
}

#[test]
fn sigterm_lets_a_running_job_finish_then_exits() {
    for backend in backends() {
        let env = Env::new(backend);
        env.apply(
            "graceful.toml",
            &(header("graceful", "")
                + &sh_job("first", &[], "sleep 1; echo finished", "")
                + &sh_job("second", &[], "true", "").replace("after = []", "after = [\"first\"]")),
        );
        let daemon = env.daemon("w1");
        let run = env.trigger("graceful");
        assert!(wait_until(WAIT, || running(&env, run, "first")));
        let status = daemon.terminate(Duration::from_secs(20));
        assert!(status.success(), "daemon exit: {status}");
        let shown = env.show(run);
        assert_eq!(attempt_states(&shown, "first"), ["succeeded"]);
        assert_eq!(
            job(&shown, "second")["state"],
            "ready",
            "no new job starts during shutdown"
        );
        assert_eq!(shown["state"], "running");
        // The next daemon finishes the run.
        let _next = env.daemon("w2");
        assert_eq!(env.wait_run(run, WAIT)["state"], "succeeded");
        let workers = env.json(&["workers"]);
        let w1 = workers
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["id"] == "w1")
            .unwrap();
        assert_eq!(w1["state"], "stopped");
    }
}

#[test]
fn sigterm_after_the_grace_period_interrupts_and_requeues_the_job() {
    for backend in backends() {
        let env = Env::new(backend).with_env("PATRON__SCHEDULER__SHUTDOWN_GRACE", "300ms");
        env.apply(
            "stuck.toml",
            &(header("stuck", "")
                + &sh_job(
                    "stuck",
                    &[],
                    "if [ -f quick ]; then exit 0; fi; sleep 30",
                    "",
                )),
        );
        let daemon = env.daemon("w1");
        let run = env.trigger("stuck");
        assert!(wait_until(WAIT, || running(&env, run, "stuck")));
        let status = daemon.terminate(Duration::from_secs(15));
        assert!(status.success(), "daemon exit: {status}");
        let shown = env.show(run);
        assert_eq!(attempt_states(&shown, "stuck"), ["interrupted"]);
        assert_eq!(job(&shown, "stuck")["state"], "ready");

        env.write("quick", "");
        let _next = env.daemon("w2");
        let shown = env.wait_run(run, WAIT);
        assert_eq!(shown["state"], "succeeded");
        assert_eq!(
            attempt_states(&shown, "stuck"),
            ["interrupted", "succeeded"]
        );
    }
}
