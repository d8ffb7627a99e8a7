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

/// Whether process `pid` runs (exists and is not a zombie waiting for its parent).
fn process_runs(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or("X");
        !matches!(state, "Z" | "X")
    })
}

fn pid_in(env: &Env, file: &str) -> i32 {
    std::fs::read_to_string(env.path(file))
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0)
}

/// The job of the process-group tests: attempt 1 leaves a grandchild (`sleep`) in its group
/// and waits; a later attempt records whether anything of attempt 1 still ran when it started.
const GROUP_SCRIPT: &str = r#"sleep 300 & echo $! > sleeper.$PATRON_ATTEMPT; echo $$ > shell.$PATRON_ATTEMPT; if [ "$PATRON_ATTEMPT" = 1 ]; then wait; fi; for p in $(cat sleeper.1 shell.1); do if kill -0 $p 2>/dev/null && ! grep -q '^[^)]*) Z' /proc/$p/stat; then echo "overlap $p" >> overlap.txt; fi; done; kill $!"#;

/// Writes the pipeline, starts a daemon with the default worker id and a 60 s lease, and
/// waits until attempt 1's shell and its grandchild run; returns the daemon, run and pids.
fn start_group_job(env: &Env) -> (Daemon, i64, i32, i32) {
    env.apply(
        "group.toml",
        &(header("group", "") + &sh_job("work", &[], GROUP_SCRIPT, "retries = 1")),
    );
    let daemon = env.daemon("");
    let run = env.trigger("group");
    assert!(wait_until(WAIT, || pid_in(env, "sleeper.1") > 0
        && pid_in(env, "shell.1") > 0));
    let (shell, sleeper) = (pid_in(env, "shell.1"), pid_in(env, "sleeper.1"));
    assert!(process_runs(shell) && process_runs(sleeper));
    (daemon, run, shell, sleeper)
}

#[test]
fn kill_9_of_the_daemon_ends_the_jobs_whole_process_group() {
    for backend in backends() {
        let env = Env::new(backend).with_env("PATRON__SCHEDULER__LEASE_TTL", "60s");
        let (daemon, run, shell, sleeper) = start_group_job(&env);
        daemon.kill9();
        // The supervisor saw its daemon die and ended the group: the shell and the
        // grandchild it left running.
        assert!(
            wait_until(Duration::from_secs(10), || !process_runs(shell)
                && !process_runs(sleeper)),
            "{backend:?}: the job's processes outlived the daemon"
        );
        // A daemon restarted on this host (another default worker id) knows the old one
        // died: the job is retried at once, not after the 60 s lease.
        let _again = env.daemon("");
        let shown = env.wait_run(run, WAIT);
        assert_eq!(shown["state"], "succeeded", "{backend:?}: {shown:#}");
        assert_eq!(attempt_states(&shown, "work"), ["lost", "succeeded"]);
        assert!(
            !env.path("overlap.txt").exists(),
            "{backend:?}: the retry ran beside its predecessor"
        );
    }
}

#[test]
fn a_daemon_starting_on_the_host_ends_groups_its_dead_predecessor_left() {
    for backend in backends() {
        let env = Env::new(backend).with_env("PATRON__SCHEDULER__LEASE_TTL", "60s");
        let (daemon, run, shell, sleeper) = start_group_job(&env);
        // The supervisor (the group's leader) dies with the daemon, as in a `kill -9` of
        // the whole container or an OOM kill: nothing is left to end the group.
        let pgid = std::fs::read_to_string(format!("/proc/{shell}/stat"))
            .ok()
            .and_then(|s| {
                let rest = s.rsplit_once(')')?.1.to_owned();
                rest.split_whitespace().nth(2)?.parse::<i32>().ok()
            })
            .expect("the shell's process group");
        assert_ne!(pgid, shell, "the shell runs under a supervisor");
        unsafe {
            libc::kill(pgid, libc::SIGKILL);
        }
        daemon.kill9();
        std::thread::sleep(Duration::from_millis(500));
        assert!(process_runs(sleeper), "the orphaned group still runs");
        // The next daemon on this host ends that group before it retries the job.
        let _next = env.daemon("");
        let shown = env.wait_run(run, WAIT);
        assert_eq!(shown["state"], "succeeded", "{backend:?}: {shown:#}");
        assert_eq!(attempt_states(&shown, "work"), ["lost", "succeeded"]);
        assert!(!process_runs(shell) && !process_runs(sleeper));
        assert!(
            !env.path("overlap.txt").exists(),
            "{backend:?}: the retry ran beside its predecessor: {}",
            std::fs::read_to_string(env.path("overlap.txt")).unwrap_or_default()
        );
    }
}

#[test]
fn a_reaped_attempts_process_group_is_ended_before_the_retry() {
    // PostgreSQL only: on SQLite a daemon frozen inside a write transaction would hold the
    // file's write lock, and the other daemon would wait for it instead of reaping.
    for backend in backends().into_iter().filter(|b| *b == Backend::Postgres) {
        // A frozen daemon is alive, so only its lease (2 s here) gives its job away; the
        // reaper of the other daemon on this host ends the frozen one's group first.
        let env = Env::new(backend);
        env.apply(
            "group.toml",
            &(header("group", "") + &sh_job("work", &[], GROUP_SCRIPT, "retries = 1")),
        );
        let frozen = env.daemon("frozen");
        let run = env.trigger("group");
        assert!(wait_until(WAIT, || pid_in(&env, "sleeper.1") > 0));
        let sleeper = pid_in(&env, "sleeper.1");
        frozen.signal(libc::SIGSTOP);
        let _other = env.daemon("other");
        let shown = env.wait_run(run, WAIT);
        frozen.signal(libc::SIGCONT);
        assert_eq!(shown["state"], "succeeded", "{backend:?}: {shown:#}");
        assert_eq!(attempt_states(&shown, "work"), ["lost", "succeeded"]);
        assert!(!process_runs(sleeper));
        assert!(
            !env.path("overlap.txt").exists(),
            "{backend:?}: the retry ran beside its predecessor"
        );
    }
}

#[test]
fn a_killed_daemon_is_listed_as_stale_once_its_lease_has_passed() {
    for backend in backends() {
        let env = Env::new(backend);
        let daemon = env.daemon("gone");
        env.wait_worker("gone", WAIT);
        let state = |env: &Env| {
            let workers = env.json(&["workers"]);
            workers
                .as_array()
                .unwrap()
                .iter()
                .find(|w| w["id"] == "gone")
                .map(|w| w["state"].as_str().unwrap_or_default().to_owned())
                .unwrap_or_default()
        };
        assert_eq!(state(&env), "running");
        daemon.kill9();
        // Silent for longer than the lease (2 s in tests): stale, in JSON and in the table.
        assert!(wait_until(WAIT, || state(&env) == "stale"), "{backend:?}");
        let table = env.ok(&["workers"]);
        let line = table.lines().find(|l| l.contains("gone")).unwrap();
        assert!(line.contains("stale"), "{table}");
    }
}
