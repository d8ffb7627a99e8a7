//! `daemon.http_addr`: `/healthz` (the database answers and the dispatcher loop turned
//! recently) and `/metrics` (Prometheus text: the daemon's own series plus runs, attempts,
//! the ready queue and each pipeline's last success, read from the database).

use std::{
    fmt::Write as _,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use sea_orm::{ConnectionTrait, Statement};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Shared, metrics::escape};

/// Takes `daemon.http_addr` (nothing for `off` or empty). A taken address is an error that
/// names it: a second daemon on one host needs an address of its own.
pub(super) async fn bind(addr: &str) -> anyhow::Result<Option<TcpListener>> {
    if addr.is_empty() || addr == "off" {
        return Ok(None);
    }
    match TcpListener::bind(addr).await {
        Ok(listener) => Ok(Some(listener)),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(anyhow::anyhow!(
            "daemon.http_addr {addr} is already in use (another daemon?); give this daemon \
             another address (PATRON__DAEMON__HTTP_ADDR=127.0.0.1:9465) or set it to \"off\""
        )),
        Err(e) => Err(anyhow::anyhow!(
            "cannot listen on daemon.http_addr {addr}: {e}"
        )),
    }
}

/// Serves `/healthz` and `/metrics` on `listener` (if any) until `stop` is cancelled.
pub(super) async fn serve(
    shared: Arc<Shared>,
    listener: Option<TcpListener>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let Some(listener) = listener else {
        stop.cancelled().await;
        return Ok(());
    };
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "serving /healthz and /metrics");
    }
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(shared);
    let graceful = stop.clone();
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(async move { graceful.cancelled().await })
        .await
    {
        warn!(error = %e, "the /healthz and /metrics endpoint stopped; the daemon runs without it");
        stop.cancelled().await;
    }
    Ok(())
}

async fn healthz(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let db_ok = tokio::time::timeout(
        Duration::from_secs(2),
        shared.db.execute_unprepared("SELECT 1"),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    let last = shared.metrics.last_loop_ms.load(Ordering::Relaxed);
    let age_ms = crate::db::now().timestamp_millis() - last;
    // The loop turns at least every poll interval; allow for slow claims.
    let limit = (shared.settings.poll_interval * 20)
        .max(Duration::from_secs(30))
        .as_millis() as i64;
    let loop_ok = last > 0 && age_ms <= limit;
    let body = format!(
        "{{\"status\":\"{}\",\"database\":{db_ok},\"scheduler_loop_age_ms\":{age_ms},\"worker_id\":\"{}\"}}\n",
        if db_ok && loop_ok { "ok" } else { "unhealthy" },
        escape(&shared.worker_id)
    );
    let code = if db_ok && loop_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, [("content-type", "application/json")], body)
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let mut out = String::new();
    shared.metrics.render(&mut out);
    match database_series(&shared).await {
        Ok(series) => out.push_str(&series),
        Err(e) => {
            let _ = writeln!(
                out,
                "# database series unavailable: {}",
                e.to_string().replace('\n', " ")
            );
            out.push_str("patron_database_up 0\n");
        }
    }
    (
        StatusCode::OK,
        [("content-type", "text/plain; version=0.0.4")],
        out,
    )
}

async fn database_series(shared: &Shared) -> anyhow::Result<String> {
    let db = &shared.db;
    let backend = db.get_database_backend();
    let rows = |sql: &str| db.query_all_raw(Statement::from_string(backend, sql.to_owned()));
    let mut out = String::from("patron_database_up 1\n");
    out.push_str("# HELP patron_runs Runs by state.\n# TYPE patron_runs gauge\n");
    for r in rows("SELECT state, COUNT(*) FROM runs GROUP BY state").await? {
        let state: String = r.try_get_by_index(0)?;
        let n: i64 = r.try_get_by_index(1)?;
        let _ = writeln!(out, "patron_runs{{state=\"{}\"}} {n}", escape(&state));
    }
    out.push_str("# HELP patron_attempts Attempts by state.\n# TYPE patron_attempts gauge\n");
    for r in rows("SELECT state, COUNT(*) FROM attempts GROUP BY state").await? {
        let state: String = r.try_get_by_index(0)?;
        let n: i64 = r.try_get_by_index(1)?;
        let _ = writeln!(out, "patron_attempts{{state=\"{}\"}} {n}", escape(&state));
    }
    out.push_str(
        "# HELP patron_ready_jobs Job runs ready to be claimed (the queue).\n# TYPE patron_ready_jobs gauge\n",
    );
    for r in rows("SELECT COUNT(*) FROM job_runs WHERE state = 'ready'").await? {
        let n: i64 = r.try_get_by_index(0)?;
        let _ = writeln!(out, "patron_ready_jobs {n}");
    }
    out.push_str("# HELP patron_last_success_timestamp_seconds When each pipeline's latest successful run finished.\n# TYPE patron_last_success_timestamp_seconds gauge\n");
    for r in rows(
        "SELECT p.name, MAX(r.finished_at) FROM runs r JOIN pipelines p ON p.id = r.pipeline_id \
         WHERE r.state = 'succeeded' GROUP BY p.name",
    )
    .await?
    {
        let name: String = r.try_get_by_index(0)?;
        let at: Option<chrono::DateTime<chrono::Utc>> = r.try_get_by_index(1)?;
        if let Some(at) = at {
            let _ = writeln!(
                out,
                "patron_last_success_timestamp_seconds{{pipeline=\"{}\"}} {}",
                escape(&name),
                at.timestamp()
            );
        }
    }
    out.push_str("# HELP patron_workers_alive Daemons with a recent heartbeat.\n# TYPE patron_workers_alive gauge\n");
    let alive = crate::db::repo::workers::list(db)
        .await?
        .into_iter()
        .filter(|w| {
            (crate::db::now() - w.heartbeat_at)
                .to_std()
                .is_ok_and(|age| age <= shared.settings.lease_ttl)
        })
        .count();
    let _ = writeln!(out, "patron_workers_alive {alive}");
    Ok(out)
}
