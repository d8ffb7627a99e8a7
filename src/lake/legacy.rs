//! Moving a database from before the lake: the rows of its `legacy_<name>` tables (migration
//! 15) become one load per entity, committed like any other, and the table is dropped once
//! its rows are visible. A crash in between redoes the load (the source is remembered by a
//! fixed checksum, so a finished one is not loaded twice).

use super::{Lake, LakeError, Result, load::Sink};
use crate::{
    db::{
        entities::SourceState,
        repo::{
            legacy,
            sources::{self, Begin, Counts},
        },
    },
    ingest::entity::{Entity, Row},
};

/// Moves every legacy table's rows into the lake; returns `(entity, rows)` per table moved.
pub async fn import(lake: &Lake) -> Result<Vec<(Entity, u64)>> {
    let db = lake.db();
    let mut out = Vec::new();
    for entity in Entity::ALL {
        if !legacy::exists(db, entity).await? {
            continue;
        }
        let table = legacy::table(entity);
        let id =
            match sources::begin(db, entity.name(), &table, &format!("legacy:{table}"), 0).await? {
                Begin::Done(_) => {
                    legacy::drop_table(db, entity).await?;
                    continue;
                }
                Begin::Load { id, .. } => id,
            };
        // Rows stream from the database to a blocking thread that encodes the Parquet file.
        let (tx, rx) = std::sync::mpsc::channel::<Vec<Row>>();
        let sink = Sink::new(lake, entity, id)?;
        let writer = tokio::task::spawn_blocking(move || {
            let mut sink = sink;
            for batch in rx {
                for row in batch {
                    sink.push(row)?;
                }
            }
            sink.finish()
        });
        let mut read = 0u64;
        let mut batch = Vec::with_capacity(64 * 1024);
        let streamed = legacy::rows(db, entity, |row| {
            read += 1;
            batch.push(row);
            if batch.len() >= 64 * 1024 {
                let _ = tx.send(std::mem::take(&mut batch));
            }
        })
        .await;
        let _ = tx.send(batch);
        drop(tx);
        let written = writer
            .await
            .map_err(|e| LakeError::Other(format!("legacy writer failed: {e}")))?;
        if let Err(e) = streamed {
            sources::finish(db, id, SourceState::Rejected, Counts::default()).await?;
            return Err(e.into());
        }
        let (file, repeats) = written?;
        let counts = Counts {
            read,
            ..Counts::default()
        };
        let loaded = super::load::commit(lake, entity, id, file, repeats, counts).await?;
        legacy::drop_table(db, entity).await?;
        out.push((entity, loaded.rows));
    }
    Ok(out)
}
