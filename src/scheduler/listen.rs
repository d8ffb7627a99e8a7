//! On PostgreSQL, `LISTEN patron_wake`: a trigger, a rerun or a job finished by another
//! daemon wakes this one's dispatcher at once instead of at its next poll. The listener
//! reconnects with backoff if its connection drops; polling covers the gap.

use std::{sync::Arc, time::Duration};

use sea_orm::sqlx::{self, postgres::PgListener};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::Shared;
use crate::db::WAKE_CHANNEL;

pub(super) async fn run(shared: Arc<Shared>, stop: CancellationToken) -> anyhow::Result<()> {
    if shared.db.get_database_backend() != sea_orm::DbBackend::Postgres {
        stop.cancelled().await;
        return Ok(());
    }
    let mut delay = Duration::from_millis(200);
    loop {
        let connected = async {
            // A connection of its own: one taken from the pool would be held for good, out
            // of the connections jobs share.
            let mut listener = PgListener::connect(&shared.all_settings.database.url).await?;
            listener.listen(WAKE_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        match connected {
            Ok(mut listener) => {
                debug!("listening for wake-ups");
                delay = Duration::from_millis(200);
                // Something may have happened while we were not listening.
                shared.kick();
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        n = listener.try_recv() => match n {
                            Ok(Some(_)) => shared.kick(),
                            Ok(None) => {
                                // The connection dropped and was re-established inside
                                // sqlx; notifications in between are lost.
                                shared.kick();
                            }
                            Err(e) => {
                                warn!(error = %e, "wake-up listener failed; reconnecting");
                                break;
                            }
                        }
                    }
                }
            }
            Err(e) => {
                warn!(error = %e, retry_in = ?delay, "cannot listen for wake-ups; polling meanwhile")
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}
