//! The `review_sentiment` dataset: each review's score from the sentiment job. A pass
//! streams the reviews without a score (or every review, to rescore), the job scores each
//! batch, and the scores go to one file committed at the end: added beside the earlier
//! files, or replacing them all on a rescore. Nothing of a pass is visible before its
//! commit, so a crashed pass leaves no half-scored state.

use std::sync::Arc;

use datafusion::{
    arrow::{
        array::{Float64Array, Int64Array, StringArray},
        record_batch::RecordBatch,
    },
    execution::SendableRecordBatchStream,
};
use futures::StreamExt;

use super::{Dataset, Lake, LakeError, Result, arrays, write::FileWriter};
use crate::db::{
    entities::LakeCommitKind,
    repo::lake::{self as catalog, Commit, Removes},
};

/// Reviews to score, in batches of `(review_id, text)`.
pub struct Unscored {
    stream: SendableRecordBatchStream,
    /// The catalog's last commit when the pass began (see [`Commit::checked_at`]).
    checked_at: i64,
    all: bool,
}

/// The reviews without a score, or every review when `all` (a rescore).
pub async fn unscored(lake: &Lake, all: bool) -> Result<Unscored> {
    let checked_at = catalog::last_commit(lake.db()).await?;
    let ctx = lake.session().await?;
    let sql = if all {
        "SELECT review_id, text FROM reviews"
    } else {
        "SELECT r.review_id, r.text FROM reviews r \
         LEFT ANTI JOIN review_sentiment s ON s.review_id = r.review_id"
    };
    let stream = ctx.sql(sql).await?.execute_stream().await?;
    Ok(Unscored {
        stream,
        checked_at,
        all,
    })
}

impl Unscored {
    /// The next batch of ids and texts; `None` at the end.
    pub async fn next(&mut self) -> Result<Option<(Vec<String>, Vec<String>)>> {
        while let Some(batch) = self.stream.next().await {
            let batch = batch?;
            if batch.num_rows() > 0 {
                return Ok(Some((
                    arrays::strings(&batch, 0)?,
                    arrays::strings(&batch, 1)?,
                )));
            }
        }
        Ok(None)
    }
}

/// The pass's file. `write` encodes, so it runs on a blocking thread.
pub struct ScoreFile {
    file: FileWriter,
    written_at: i64,
}

impl ScoreFile {
    pub fn create(lake: &Lake) -> Result<Self> {
        let name = super::write::new_name(Dataset::Sentiment.name());
        Ok(Self {
            file: FileWriter::create(lake, name, Dataset::Sentiment)?,
            written_at: chrono::Utc::now().timestamp_micros(),
        })
    }

    /// Adds scores: `ids[i]` scored `scores[i]`, labelled `labels[i]`, by `model_id` (none
    /// for the lexicons alone).
    pub fn write(
        &mut self,
        ids: Vec<String>,
        scores: Vec<f64>,
        labels: Vec<&str>,
        model_id: Option<i64>,
    ) -> Result {
        let n = ids.len();
        if scores.len() != n || labels.len() != n {
            return Err(LakeError::Other(format!(
                "{n} reviews but {} scores and {} labels",
                scores.len(),
                labels.len()
            )));
        }
        let batch = RecordBatch::try_new(
            Dataset::Sentiment.schema(),
            vec![
                Arc::new(StringArray::from(ids)),
                Arc::new(Float64Array::from(scores)),
                Arc::new(StringArray::from(labels)),
                Arc::new(Int64Array::from(vec![model_id; n])),
                Arc::new(Int64Array::from(vec![self.written_at; n])),
            ],
        )?;
        self.file.write(&batch)
    }

    /// Records the file at the end of `pass`; returns the rows it added.
    pub async fn commit(self, lake: &Lake, pass: Unscored) -> Result<u64> {
        let Unscored {
            checked_at, all, ..
        } = pass;
        let rows = self.file.rows();
        let add = if rows == 0 {
            self.file.abandon();
            Vec::new()
        } else {
            let file = self.file;
            vec![
                tokio::task::spawn_blocking(move || file.finish(None, false))
                    .await
                    .map_err(|e| LakeError::Other(format!("sentiment writer failed: {e}")))??,
            ]
        };
        if add.is_empty() && !all {
            return Ok(0);
        }
        catalog::commit(
            lake.db(),
            Commit {
                dataset: Dataset::Sentiment.name().to_owned(),
                kind: if all {
                    LakeCommitKind::Replace
                } else {
                    LakeCommitKind::Load
                },
                add,
                removes: if all { Removes::All } else { Removes::Nothing },
                source: None,
                // Two passes at once score the same reviews: the later file then overlaps
                // and readers keep one score per review.
                checked_at: Some(checked_at),
            },
        )
        .await?;
        Ok(rows)
    }
}
