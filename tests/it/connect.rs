//! An unreachable database fails fast, within `database.connect_timeout`, and says why.

use std::net::TcpListener;

use crate::common::*;

fn fails_with(env: &Env, url: &str, extra: &[(&str, &str)], expect: &str) {
    let mut cmd = env.command(&["runs", "list", "--database-url", url]);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run patron");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{url}: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{url}: one line, said once: {stderr}");
    assert!(lines[0].starts_with("error: "), "{url}: {stderr}");
    assert!(
        lines[0].contains(expect),
        "{url}: wanted `{expect}` in {stderr}"
    );
    assert!(!lines[0].contains("pool timed out"), "{stderr}");
    assert!(!lines[0].contains("::"), "no source locations: {stderr}");
}

#[test]
fn an_unreachable_database_fails_fast_and_says_why() {
    let env = Env::new(Backend::Sqlite);
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    fails_with(
        &env,
        &format!("postgres://postgres@127.0.0.1:{port}/x"),
        &[],
        &format!("connection refused: nothing listens on 127.0.0.1:{port}"),
    );
    fails_with(
        &env,
        "postgres://postgres@no-such-host.invalid:5432/x",
        &[],
        "unknown host no-such-host.invalid",
    );
    // A server that accepts connections and never answers: the timeout ends the wait.
    let silent = TcpListener::bind("127.0.0.1:0").expect("listener");
    let addr = silent.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in silent.incoming().flatten() {
            held.push(conn);
        }
    });
    fails_with(
        &env,
        &format!("postgres://postgres@{addr}/x"),
        &[("PATRON__DATABASE__CONNECT_TIMEOUT", "1s")],
        &format!("{addr} did not answer within 1s"),
    );
}

#[test]
fn a_missing_database_or_role_is_named() {
    let Ok(admin) = std::env::var("PATRON_TEST_DATABASE_URL") else {
        return;
    };
    let env = Env::new(Backend::Sqlite);
    let (base, query) = admin.split_once('?').unwrap_or((&admin, ""));
    let server = &base[..base.rfind('/').expect("a database in the URL")];
    fails_with(
        &env,
        &format!("{server}/patron_no_such_db?{query}"),
        &[],
        "database patron_no_such_db does not exist",
    );
    let (scheme, rest) = server.split_once("://").expect("scheme");
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    fails_with(
        &env,
        &format!("{scheme}://patron_no_such_role@{host}/test?{query}"),
        &[],
        "refused user patron_no_such_role",
    );
}

#[test]
fn processes_opening_a_new_sqlite_file_at_once_all_connect() {
    // Each switches the new file to WAL, which SQLite grants one at a time, refusing the
    // others at once ("database is locked") where waiting could deadlock: the daemon died of
    // it about one start in ten when a CLI command opened the file at the same moment.
    for _ in 0..10 {
        let env = Env::new(Backend::Sqlite);
        let mut daemon = env.daemon("w");
        let cli: Vec<_> = (0..3)
            .map(|_| {
                env.command(&["workers", "--json"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn patron")
            })
            .collect();
        for child in cli {
            let out = child.wait_with_output().expect("wait");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        env.wait_worker("w", std::time::Duration::from_secs(30));
        assert!(
            daemon.alive(),
            "{}",
            std::fs::read_to_string(&daemon.log).unwrap_or_default()
        );
    }
}
