//! The `anomalies` dataset: which raw rows `clean` marks, and why. It is recomputed from
//! scratch each time and replaces the previous one in one commit, so a fixed row loses its
//! mark and readers of the `clean_*` views never see half a marking.

use super::{Dataset, Lake, Result, arrays, collect, write};
use crate::db::{
    entities::LakeCommitKind,
    repo::lake::{self as catalog, Commit, Removes},
};

/// Marks anomalous rows: a paid order line with a non-positive quantity or price, an order
/// before its customer's signup, and any row dated after `limit` (unix seconds). Returns
/// the marks by `(dataset, reason)`.
pub async fn mark(lake: &Lake, limit: i64) -> Result<Vec<(String, String, i64)>> {
    let ctx = lake.session().await?;
    let sql = format!(
        "SELECT dataset, id, line_key, reason FROM (\
           SELECT 'orders' AS dataset, o.order_id AS id, o.line_key AS line_key, \
             CASE WHEN CAST(o.ordered_at AS BIGINT) > {limit} THEN 'future_date' \
                  WHEN o.status = 'paid' AND o.quantity <= 0 THEN 'non_positive_quantity' \
                  WHEN o.status = 'paid' AND o.unit_price_cents <= 0 THEN 'non_positive_price' \
                  WHEN CAST(o.ordered_at AS BIGINT) < CAST(c.signup_at AS BIGINT) THEN 'before_signup' \
             END AS reason \
           FROM orders o LEFT JOIN customers c ON c.customer_id = o.customer_id) \
         WHERE reason IS NOT NULL \
         UNION ALL SELECT 'events', event_id, CAST(NULL AS BIGINT), 'future_date' FROM events \
           WHERE CAST(occurred_at AS BIGINT) > {limit} \
         UNION ALL SELECT 'reviews', review_id, CAST(NULL AS BIGINT), 'future_date' FROM reviews \
           WHERE CAST(created_at AS BIGINT) > {limit} \
         UNION ALL SELECT 'customers', customer_id, CAST(NULL AS BIGINT), 'future_date' FROM customers \
           WHERE CAST(signup_at AS BIGINT) > {limit}"
    );
    replace_marks(lake, &ctx, &sql).await?;
    counts(lake).await
}

/// Replaces the marks with the rows `sql` selects on `ctx`: `(dataset, id, line_key,
/// reason)`.
pub async fn replace_marks(
    lake: &Lake,
    ctx: &datafusion::prelude::SessionContext,
    sql: &str,
) -> Result {
    let stream = ctx.sql(sql).await?.execute_stream().await?;
    let file = write::write_stream(
        lake,
        write::new_name(Dataset::Anomalies.name()),
        Dataset::Anomalies,
        stream,
        None,
    )
    .await?;
    let add = if file.rows > 0 {
        vec![file]
    } else {
        let _ = std::fs::remove_file(lake.abs(&file.path));
        vec![]
    };
    catalog::commit(
        lake.db(),
        Commit {
            dataset: Dataset::Anomalies.name().to_owned(),
            kind: LakeCommitKind::Replace,
            add,
            removes: Removes::All,
            source: None,
            checked_at: None,
        },
    )
    .await?;
    Ok(())
}

/// The committed marks by `(dataset, reason)`.
pub async fn counts(lake: &Lake) -> Result<Vec<(String, String, i64)>> {
    let batches = lake
        .query(
            "SELECT dataset, reason, COUNT(*) FROM anomalies GROUP BY dataset, reason \
             ORDER BY dataset, reason",
        )
        .await?;
    let mut out = Vec::new();
    for b in &batches {
        let (d, r, n) = (
            arrays::strings(b, 0)?,
            arrays::strings(b, 1)?,
            arrays::ints_or_zero(b, 2)?,
        );
        out.extend(d.into_iter().zip(r).zip(n).map(|((d, r), n)| (d, r, n)));
    }
    Ok(out)
}

/// Runs `sql` on a fresh session (for callers that hold no context).
pub async fn scalar(lake: &Lake, sql: &str) -> Result<i64> {
    let ctx = lake.session().await?;
    arrays::single_int(&collect(&ctx, sql).await?)
}
