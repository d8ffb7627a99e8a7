//! The raw tables of a database from before the lake, renamed `legacy_<name>` by migration
//! 15 so no row was lost: read once into the lake (`crate::lake::legacy`), then dropped.

use sea_orm::{ConnectionTrait, Statement};

use crate::{
    db::{Db, RepoError, Result, bulk::fetch_each},
    ingest::entity::{
        Customer, Entity, Event, EventKind, OrderLine, OrderStatus, Product, Review, Row,
    },
};

pub fn table(entity: Entity) -> String {
    format!("legacy_{}", entity.name())
}

/// Whether `entity`'s legacy table exists.
pub async fn exists(db: &Db, entity: Entity) -> Result<bool> {
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => format!(
            "SELECT 1 FROM information_schema.tables WHERE table_name = '{}'",
            table(entity)
        ),
        _ => format!(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '{}'",
            table(entity)
        ),
    };
    Ok(db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?
        .is_some())
}

/// Streams every row of `entity`'s legacy table, as the row it was ingested as.
pub async fn rows(db: &Db, entity: Entity, mut each: impl FnMut(Row)) -> Result {
    let t = table(entity);
    let corrupt = |e: anyhow::Error| RepoError::Corrupt(format!("reading {t}: {e}"));
    match entity {
        Entity::Customers => fetch_each::<(String, Option<i64>, Option<i32>, Option<String>, Option<String>)>(
            db,
            &format!("SELECT customer_id, signup_at, birth_year, gender, region FROM {t}"),
            None,
            |(customer_id, signup_at, birth_year, gender, region)| {
                each(Row::Customer(Customer {
                    customer_id,
                    signup_at,
                    birth_year,
                    gender,
                    region,
                }))
            },
        )
        .await,
        Entity::Products => fetch_each::<(String, String, String, String, Option<i64>)>(
            db,
            &format!("SELECT product_id, title, description, category, price_cents FROM {t}"),
            None,
            |(product_id, title, description, category, price_cents)| {
                each(Row::Product(Product {
                    product_id,
                    title,
                    description,
                    category,
                    price_cents,
                }))
            },
        )
        .await,
        Entity::Orders => fetch_each::<(String, String, String, i64, i64, i64, String)>(
            db,
            &format!(
                "SELECT order_id, customer_id, product_id, quantity, unit_price_cents, ordered_at, status FROM {t}"
            ),
            None,
            |(order_id, customer_id, product_id, quantity, unit_price_cents, ordered_at, status)| {
                each(Row::Order(OrderLine {
                    order_id,
                    customer_id,
                    product_id,
                    quantity,
                    unit_price_cents,
                    ordered_at,
                    status: OrderStatus::parse(&status).unwrap_or(OrderStatus::Paid),
                }))
            },
        )
        .await,
        Entity::Events => fetch_each::<(String, String, Option<String>, String, i64, Option<f64>)>(
            db,
            &format!(
                "SELECT event_id, customer_id, product_id, kind, occurred_at, duration_s FROM {t}"
            ),
            None,
            |(event_id, customer_id, product_id, kind, occurred_at, duration_s)| {
                if let Ok(kind) = EventKind::parse(&kind) {
                    each(Row::Event(Event {
                        event_id,
                        customer_id,
                        product_id,
                        kind,
                        occurred_at,
                        duration_s,
                    }))
                }
            },
        )
        .await,
        Entity::Reviews => fetch_each::<(String, String, String, i64, String, i64)>(
            db,
            &format!(
                "SELECT review_id, customer_id, product_id, CAST(rating AS BIGINT), text, created_at FROM {t}"
            ),
            None,
            |(review_id, customer_id, product_id, rating, text, created_at)| {
                each(Row::Review(Review {
                    review_id,
                    customer_id,
                    product_id,
                    rating: rating.clamp(1, 5) as i16,
                    text,
                    created_at,
                }))
            },
        )
        .await,
    }
    .map_err(corrupt)
}

/// Drops `entity`'s legacy table (its rows are committed to the lake).
pub async fn drop_table(db: &Db, entity: Entity) -> Result {
    db.execute_unprepared(&format!("DROP TABLE IF EXISTS {}", table(entity)))
        .await?;
    Ok(())
}
