//! Test harness: databases per test, a temp working folder with fast scheduler settings, the
//! binary, and daemons as child processes.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use serde_json::Value;
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_patron");

/// Settings that make tests fast: quick polls, short leases.
const TEST_SETTINGS: &str = r#"
[scheduler]
max_concurrency = 8
poll_interval = "20ms"
lease_ttl = "2s"
heartbeat_interval = "400ms"
reaper_interval = "300ms"
reload_interval = "200ms"
shutdown_grace = "10s"
"#;

static COUNTER: AtomicU32 = AtomicU32::new(0);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database for one test: an SQLite file in the test folder, or a fresh PostgreSQL
/// database created on the server named by `PATRON_TEST_DATABASE_URL` and dropped on drop.
pub struct TestDb {
    pub url: String,
    admin: Option<(String, String)>,
}

impl TestDb {
    fn sqlite(dir: &Path) -> Self {
        Self {
            url: format!("sqlite://{}/patron.db?mode=rwc", dir.display()),
            admin: None,
        }
    }

    fn postgres(admin_url: &str) -> Self {
        let name = format!(
            "patron_it_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            rand::random::<u32>()
        );
        block_on(async {
            let db = sea_orm::Database::connect(admin_url)
                .await
                .expect("connect to PATRON_TEST_DATABASE_URL");
            sea_orm::ConnectionTrait::execute_unprepared(&db, &format!("CREATE DATABASE {name}"))
                .await
                .expect("create test database");
        });
        Self {
            url: replace_db_name(admin_url, &name),
            admin: Some((admin_url.to_owned(), name)),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.admin.take() {
            // Drop runs outside any runtime; a small one of its own does the async work.
            let _ = std::thread::spawn(move || {
                block_on(async {
                    if let Ok(db) = sea_orm::Database::connect(&admin).await {
                        let _ = sea_orm::ConnectionTrait::execute_unprepared(
                            &db,
                            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                        )
                        .await;
                    }
                })
            })
            .join();
        }
    }
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let prefix = match base.rfind('/') {
        Some(i) if i > base.find("://").map_or(0, |j| j + 2) => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// The backends to run a test on: SQLite always, PostgreSQL when configured.
pub fn backends() -> Vec<Backend> {
    let mut out = vec![Backend::Sqlite];
    if std::env::var("PATRON_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        out.push(Backend::Postgres);
    }
    out
}

/// A temp folder with `patron.toml`, a database, and helpers to run the binary in it.
pub struct Env {
    pub dir: TempDir,
    pub db: TestDb,
    extra_env: Vec<(String, String)>,
}

impl Env {
    pub fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("patron.toml"), TEST_SETTINGS).expect("write settings");
        let db = match backend {
            Backend::Sqlite => TestDb::sqlite(dir.path()),
            Backend::Postgres => {
                TestDb::postgres(&std::env::var("PATRON_TEST_DATABASE_URL").expect("url"))
            }
        };
        Self {
            dir,
            db,
            extra_env: Vec::new(),
        }
    }

    /// Sets `PATRON__...` variables for every later command and daemon.
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.extra_env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The test's lake folder.
    pub fn lake_path(&self) -> PathBuf {
        self.dir.path().join("patron.lake")
    }

    /// The test's lake, on `db` (a connection to the test's database).
    pub fn lake(&self, db: sea_orm::DatabaseConnection) -> patron::lake::Lake {
        patron::lake::Lake::at(self.lake_path(), db)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("PATRON__DATABASE__URL", &self.db.url)
            // The lake beside the SQLite file; PostgreSQL needs it named.
            .env("PATRON__LAKE__PATH", self.lake_path())
            // Many daemons run at once in tests: none serves /metrics unless a test asks.
            .env("PATRON__DAEMON__HTTP_ADDR", "off")
            .env_remove("RUST_LOG");
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run patron")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "patron {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs with `--json`, asserts success, parses stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut with = args.to_vec();
        with.push("--json");
        let text = self.ok(&with);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("patron {args:?}: not JSON ({e}): {text}"))
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(&path, text).expect("write");
        path
    }

    /// Writes a pipeline file and applies it.
    pub fn apply(&self, file: &str, text: &str) {
        let path = self.write(file, text);
        self.ok(&["pipelines", "apply", path.to_str().expect("utf-8 path")]);
    }

    pub fn trigger(&self, pipeline: &str) -> i64 {
        self.json(&["trigger", pipeline])["run_id"]
            .as_i64()
            .expect("run_id")
    }

    pub fn show(&self, run: i64) -> Value {
        self.json(&["runs", "show", &run.to_string()])
    }

    /// Waits for a run to reach a terminal state; returns `runs show` JSON.
    pub fn wait_run(&self, run: i64, timeout: Duration) -> Value {
        let mut last = Value::Null;
        let done = wait_until(timeout, || {
            last = self.show(run);
            matches!(
                last["state"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            )
        });
        assert!(done, "run {run} did not finish in {timeout:?}: {last:#}");
        last
    }

    pub fn daemon(&self, worker: &str) -> Daemon {
        self.daemon_with(worker, &[])
    }

    /// A daemon with the worker id `worker`, or the default one (HOST-PID) when it is empty.
    pub fn daemon_with(&self, worker: &str, env: &[(&str, &str)]) -> Daemon {
        let label = if worker.is_empty() { "default" } else { worker };
        let log_path = self.path(&format!("daemon-{label}.log"));
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("daemon log");
        let mut cmd = if worker.is_empty() {
            self.command(&["daemon"])
        } else {
            self.command(&["daemon", "--worker-id", worker])
        };
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .env("RUST_LOG", "info,patron=debug,sqlx=warn,sea_orm=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn daemon");
        Daemon {
            child: Some(child),
            log: log_path,
        }
    }
}

/// A daemon child process; killed on drop.
pub struct Daemon {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Daemon {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    pub fn signal(&self, signal: i32) {
        unsafe {
            libc::kill(self.pid(), signal);
        }
    }

    /// Whether the process is still running (it has not exited on its own).
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().expect("wait").is_none())
    }

    pub fn kill9(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(mut self, timeout: Duration) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let mut child = self.child.take().expect("running");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if start.elapsed() > timeout {
                let _ = child.kill();
                panic!(
                    "daemon did not exit within {timeout:?} of SIGTERM; log:\n{}",
                    fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `f` every 50 ms until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A job's JSON from `runs show`.
pub fn job<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["name"] == name))
        .unwrap_or_else(|| panic!("no job {name} in {run:#}"))
}

/// The states of a job's attempts, in order.
pub fn attempt_states(run: &Value, name: &str) -> Vec<String> {
    job(run, name)["attempts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["state"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A `command` job that runs `script` with sh.
pub fn sh_job(name: &str, after: &[&str], script: &str, extra: &str) -> String {
    let after: Vec<String> = after.iter().map(|a| format!("{a:?}")).collect();
    format!(
        "[[job]]\nname = {name:?}\nkind = \"command\"\nafter = [{}]\nparams = {{ program = \"sh\", args = [\"-c\", {script:?}] }}\n{extra}\n",
        after.join(", ")
    )
}

pub fn header(name: &str, extra: &str) -> String {
    format!("[pipeline]\nname = {name:?}\n{extra}\n")
}

#[test]
fn database_names_are_replaced_keeping_the_query() {
    assert_eq!(
        replace_db_name("postgres://u@h:5432/test?sslmode=disable", "x"),
        "postgres://u@h:5432/x?sslmode=disable"
    );
    assert_eq!(
        replace_db_name("postgres://u@h/test", "x"),
        "postgres://u@h/x"
    );
}

impl Env {
    /// The integer columns of the first row of `sql`, read straight from the test database.
    pub fn sql_ints(&self, sql: &str) -> Vec<i64> {
        block_on(async {
            let db = patron::db::connect(&self.db.url, 1)
                .await
                .expect("connect to the test database");
            let row = sea_orm::ConnectionTrait::query_one_raw(
                &db,
                sea_orm::Statement::from_string(db.get_database_backend(), sql.to_owned()),
            )
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .unwrap_or_else(|| panic!("{sql}: no row"));
            (0..)
                .map_while(|i| row.try_get_by_index::<i64>(i).ok())
                .collect()
        })
    }

    /// The integers of the first row a lake query returns (timestamps as seconds; null as 0).
    pub fn lake_ints(&self, sql: &str) -> Vec<i64> {
        block_on(async {
            let db = patron::db::connect(&self.db.url, 1)
                .await
                .expect("connect to the test database");
            lake_ints(&self.lake(db), sql).await
        })
    }

    /// The rows a lake query returns, each as its cells joined by `|` (timestamps as
    /// seconds, null as `NULL`).
    pub fn lake_rows(&self, sql: &str) -> Vec<String> {
        use patron::lake::arrays;
        block_on(async {
            let db = patron::db::connect(&self.db.url, 1)
                .await
                .expect("connect to the test database");
            let batches = self
                .lake(db)
                .query(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            let mut out = Vec::new();
            for b in &batches {
                let columns: Vec<Vec<String>> = (0..b.num_columns())
                    .map(|i| {
                        let texts: Vec<Option<String>> = match b.column(i).data_type() {
                            datafusion::arrow::datatypes::DataType::Timestamp(..) => {
                                arrays::ints(b, i)
                                    .unwrap()
                                    .into_iter()
                                    .map(|v| v.map(|n| n.to_string()))
                                    .collect()
                            }
                            _ => arrays::texts(b, i).unwrap(),
                        };
                        texts
                            .into_iter()
                            .map(|v| v.unwrap_or_else(|| "NULL".to_owned()))
                            .collect()
                    })
                    .collect();
                for r in 0..b.num_rows() {
                    out.push(
                        columns
                            .iter()
                            .map(|c| c[r].as_str())
                            .collect::<Vec<_>>()
                            .join("|"),
                    );
                }
            }
            out
        })
    }

    /// Starts `patron ARGS --json` in the background (stdout and stderr captured).
    pub fn spawn_json(&self, args: &[&str]) -> Child {
        let mut with = args.to_vec();
        with.push("--json");
        self.command(&with)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn patron")
    }

    /// Waits until worker `id` is registered and running (so a CLI started next sees a live
    /// daemon and leaves the work to it).
    pub fn wait_worker(&self, id: &str, timeout: Duration) {
        let alive = wait_until(timeout, || {
            self.json(&["workers"])
                .as_array()
                .is_some_and(|ws| ws.iter().any(|w| w["id"] == id && w["state"] == "running"))
        });
        assert!(alive, "worker {id} did not start within {timeout:?}");
    }
}

/// Waits for a child to exit, killing it after `timeout`; returns its output.
pub fn wait_child(mut child: Child, timeout: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > timeout {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "child did not exit within {timeout:?}:\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

impl Env {
    /// Makes a demo shop of `customers` and `products` in `shop/` and runs the nightly
    /// pipeline on it (`patron demo`); panics unless the run succeeded.
    pub fn demo_shop(&self, customers: usize, products: usize) -> Value {
        let dir = self.path("shop");
        let out = self.json(&[
            "demo",
            "--customers",
            &customers.to_string(),
            "--products",
            &products.to_string(),
            "--dir",
            dir.to_str().expect("utf-8 path"),
        ]);
        assert_eq!(out["run"]["state"], "succeeded", "{out:#}");
        // The demo installs cron pipelines; a tick during a test (feedback fires every 15
        // minutes) would run work the test does not expect.
        let listed = self.json(&["pipelines", "list"]);
        for p in listed.as_array().expect("pipelines") {
            if !p["schedule"].is_null() {
                self.ok(&["pipelines", "pause", p["name"].as_str().expect("name")]);
            }
        }
        out
    }

    /// Runs statements straight on the test database (the schema is migrated first).
    pub fn sql_exec(&self, statements: &[String]) {
        self.ok(&["migrate"]);
        block_on(async {
            let db = patron::db::connect(&self.db.url, 1)
                .await
                .expect("connect to the test database");
            for sql in statements {
                sea_orm::ConnectionTrait::execute_unprepared(&db, sql)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
        });
    }
}

/// The integers of the first row `sql` returns from `lake` (null as 0).
pub async fn lake_ints(lake: &patron::lake::Lake, sql: &str) -> Vec<i64> {
    let batches = lake
        .query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else {
        return vec![0];
    };
    (0..b.num_columns())
        .map(|i| {
            patron::lake::arrays::ints(b, i).unwrap_or_else(|e| panic!("{sql}: column {i}: {e}"))[0]
                .unwrap_or(0)
        })
        .collect()
}
