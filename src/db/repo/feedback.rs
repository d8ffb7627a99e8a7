//! Reads and writes of the `feedback` job: its watermark over loads (`ingested_sources.id`),
//! what arrived since, and a record of every pass.

use sea_orm::{ConnectionTrait, Statement};
use serde::Serialize;

use super::intelligence::placeholder;
use crate::db::{Db, Result};

/// The loads a pass folds in: ids in `(from, to]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    pub from: i64,
    pub to: i64,
}

impl Span {
    pub fn is_empty(&self) -> bool {
        self.to <= self.from
    }
}

/// The newest load id up to which every load has ended: a load still running holds the
/// watermark below it, so its rows are not skipped when it completes.
pub async fn settled(db: &Db) -> Result<i64> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COALESCE((SELECT MIN(id) - 1 FROM ingested_sources WHERE state = 'loading'), \
                             (SELECT MAX(id) FROM ingested_sources), 0)",
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0))
}

/// What arrived in a span (anomalies left out).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Arrived {
    pub orders: i64,
    pub events: i64,
    pub rec_clicks: i64,
    pub reviews: i64,
    pub customers: i64,
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Pass {
    pub run_id: Option<i64>,
    pub span: Option<Span>,
    pub arrived: Arrived,
    pub features: i64,
    pub reviews_scored: i64,
    pub products: i64,
    pub recommendations: i64,
    pub model_id: Option<i64>,
    pub seconds: f64,
}

/// Records a pass.
pub async fn record(db: &Db, pass: &Pass) -> Result {
    let backend = db.get_database_backend();
    let span = pass.span.unwrap_or(Span { from: 0, to: 0 });
    let a = pass.arrived;
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        placeholder(
            backend,
            "INSERT INTO feedback_passes (run_id, from_source, to_source, orders, events, rec_clicks, \
             reviews, customers, features, reviews_scored, products, recommendations, model_id, \
             seconds, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ),
        [
            pass.run_id.into(),
            span.from.into(),
            span.to.into(),
            a.orders.into(),
            a.events.into(),
            a.rec_clicks.into(),
            a.reviews.into(),
            a.customers.into(),
            pass.features.into(),
            pass.reviews_scored.into(),
            pass.products.into(),
            pass.recommendations.into(),
            pass.model_id.into(),
            pass.seconds.into(),
            crate::db::now().into(),
        ],
    ))
    .await?;
    Ok(())
}

/// The latest passes, newest first.
pub async fn passes(db: &Db, limit: u64) -> Result<Vec<Pass>> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT run_id, from_source, to_source, orders, events, rec_clicks, reviews, customers, \
                 features, reviews_scored, products, recommendations, model_id, seconds \
                 FROM feedback_passes ORDER BY id DESC LIMIT {limit}"
            ),
        ))
        .await?;
    rows.iter()
        .map(|r| {
            let g = |i: usize| r.try_get_by_index::<i64>(i);
            Ok(Pass {
                run_id: r.try_get_by_index(0)?,
                span: Some(Span {
                    from: g(1)?,
                    to: g(2)?,
                }),
                arrived: Arrived {
                    orders: g(3)?,
                    events: g(4)?,
                    rec_clicks: g(5)?,
                    reviews: g(6)?,
                    customers: g(7)?,
                },
                features: g(8)?,
                reviews_scored: g(9)?,
                products: g(10)?,
                recommendations: g(11)?,
                model_id: r.try_get_by_index(12)?,
                seconds: r.try_get_by_index(13)?,
            })
        })
        .collect()
}
