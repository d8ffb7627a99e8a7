//! Where each entity's rows go: table, columns and conflict rule for the bulk writer
//! (`crate::db::bulk`), and deleting what one source loaded.

use sea_orm::{ConnectionTrait, DbBackend};

use super::entity::{Entity, Row};
pub use crate::db::bulk::{Cell, TableSpec, write};

pub fn table_for(entity: Entity) -> &'static TableSpec {
    match entity {
        Entity::Customers => &CUSTOMERS,
        Entity::Products => &PRODUCTS,
        Entity::Orders => &ORDERS,
        Entity::Events => &EVENTS,
        Entity::Reviews => &REVIEWS,
    }
}

static CUSTOMERS: TableSpec = TableSpec {
    table: "customers",
    columns: &[
        "customer_id",
        "signup_at",
        "birth_year",
        "gender",
        "region",
        "source_id",
    ],
    pg_types: &["text", "bigint", "integer", "text", "text", "bigint"],
    on_conflict: "ON CONFLICT (customer_id) DO NOTHING",
    sqlite_upsert: None,
    pg_distinct_on: None,
};

static PRODUCTS: TableSpec = TableSpec {
    table: "products",
    columns: &[
        "product_id",
        "title",
        "description",
        "category",
        "price_cents",
        "source_id",
    ],
    pg_types: &["text", "text", "text", "text", "bigint", "bigint"],
    on_conflict: "ON CONFLICT (product_id) DO NOTHING",
    sqlite_upsert: None,
    pg_distinct_on: None,
};

/// A line seen again with a later status (paid → cancelled or refunded) takes that status;
/// nothing else about a stored line changes.
static ORDERS: TableSpec = TableSpec {
    table: "orders",
    columns: &[
        "order_id",
        "line_key",
        "customer_id",
        "product_id",
        "quantity",
        "unit_price_cents",
        "ordered_at",
        "status",
        "source_id",
    ],
    pg_types: &[
        "text", "bigint", "text", "text", "bigint", "bigint", "bigint", "text", "bigint",
    ],
    on_conflict: "ON CONFLICT (order_id, line_key) DO UPDATE SET status = excluded.status \
                  WHERE orders.status = 'paid' AND excluded.status <> 'paid'",
    sqlite_upsert: Some((
        "ON CONFLICT (order_id, line_key) DO UPDATE SET status = excluded.status \
         WHERE orders.status = 'paid' AND excluded.status <> 'paid'",
        is_not_paid,
    )),
    // Among copies of one line in a batch, a cancelled or refunded one wins.
    pg_distinct_on: Some(("order_id, line_key", "(status = 'paid')")),
};

static EVENTS: TableSpec = TableSpec {
    table: "events",
    columns: &[
        "event_id",
        "customer_id",
        "product_id",
        "kind",
        "occurred_at",
        "duration_s",
        "source_id",
    ],
    pg_types: &[
        "text",
        "text",
        "text",
        "text",
        "bigint",
        "double precision",
        "bigint",
    ],
    on_conflict: "ON CONFLICT (event_id) DO NOTHING",
    sqlite_upsert: None,
    pg_distinct_on: None,
};

static REVIEWS: TableSpec = TableSpec {
    table: "reviews",
    columns: &[
        "review_id",
        "customer_id",
        "product_id",
        "rating",
        "text",
        "created_at",
        "source_id",
    ],
    pg_types: &[
        "text", "text", "text", "smallint", "text", "bigint", "bigint",
    ],
    on_conflict: "ON CONFLICT (review_id) DO NOTHING",
    sqlite_upsert: None,
    pg_distinct_on: None,
};

/// A cancelled or refunded order line may change a stored paid one; a paid line never
/// changes anything (column 7 is `status`).
fn is_not_paid(row: &[Cell]) -> bool {
    matches!(row.get(7), Some(Cell::Text(s)) if s != "paid")
}

/// Whether a row of `entity` may change a row already stored (a cancelled or refunded
/// order line turns a stored paid one), so it must wait until its file is accepted: a file
/// refused for too many bad rows changes nothing.
pub fn may_change_stored(entity: Entity, row: &[Cell]) -> bool {
    entity == Entity::Orders && is_not_paid(row)
}

/// The cells of a row, in its table's column order.
pub fn cells(row: Row, source_id: i64) -> Vec<Cell> {
    use Cell::*;
    match row {
        Row::Customer(c) => vec![
            Text(c.customer_id),
            OptInt(c.signup_at),
            OptInt(c.birth_year.map(i64::from)),
            OptText(c.gender),
            OptText(c.region),
            Int(source_id),
        ],
        Row::Product(p) => vec![
            Text(p.product_id),
            Text(p.title),
            Text(p.description),
            Text(p.category),
            OptInt(p.price_cents),
            Int(source_id),
        ],
        Row::Order(o) => {
            let key = o.line_key();
            vec![
                Text(o.order_id),
                Int(key),
                Text(o.customer_id),
                Text(o.product_id),
                Int(o.quantity),
                Int(o.unit_price_cents),
                Int(o.ordered_at),
                Text(o.status.as_str().to_owned()),
                Int(source_id),
            ]
        }
        Row::Event(e) => vec![
            Text(e.event_id),
            Text(e.customer_id),
            OptText(e.product_id),
            Text(e.kind.as_str().to_owned()),
            Int(e.occurred_at),
            OptFloat(e.duration_s),
            Int(source_id),
        ],
        Row::Review(r) => vec![
            Text(r.review_id),
            Text(r.customer_id),
            Text(r.product_id),
            Int(i64::from(r.rating)),
            Text(r.text),
            Int(r.created_at),
            Int(source_id),
        ],
    }
}

/// Deletes what one source loaded (a rejected file, or the rest of a crashed attempt).
pub async fn delete_source_rows(
    db: &impl ConnectionTrait,
    entity: Entity,
    source_id: i64,
) -> Result<u64, sea_orm::DbErr> {
    let spec = table_for(entity);
    let backend = db.get_database_backend();
    let stmt = sea_orm::Statement::from_sql_and_values(
        backend,
        match backend {
            DbBackend::Postgres => format!("DELETE FROM {} WHERE source_id = $1", spec.table),
            _ => format!("DELETE FROM {} WHERE source_id = ?", spec.table),
        },
        [source_id.into()],
    );
    Ok(db.execute_raw(stmt).await?.rows_affected())
}
