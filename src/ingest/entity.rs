//! The five entities of DESIGN.md section 4: their canonical columns, their typed rows, and
//! reading one row from named text fields.

use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::Serialize;

use super::values::{
    ValueError, normalize_text, parse_float, parse_int, parse_money_cents, parse_timestamp,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Entity {
    Customers,
    Products,
    Orders,
    Events,
    Reviews,
}

impl Entity {
    pub const ALL: [Entity; 5] = [
        Self::Customers,
        Self::Products,
        Self::Orders,
        Self::Events,
        Self::Reviews,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Customers => "customers",
            Self::Products => "products",
            Self::Orders => "orders",
            Self::Events => "events",
            Self::Reviews => "reviews",
        }
    }

    /// Canonical input columns, in DESIGN.md order.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Self::Customers => &["customer_id", "signup_at", "birth_year", "gender", "region"],
            Self::Products => &["product_id", "title", "description", "category", "price"],
            Self::Orders => &[
                "order_id",
                "customer_id",
                "product_id",
                "quantity",
                "unit_price",
                "ordered_at",
                "status",
            ],
            Self::Events => &[
                "event_id",
                "customer_id",
                "product_id",
                "kind",
                "occurred_at",
                "duration_s",
            ],
            Self::Reviews => &[
                "review_id",
                "customer_id",
                "product_id",
                "rating",
                "text",
                "created_at",
            ],
        }
    }

    /// Columns a file must provide (by header or mapping); the others may be absent.
    pub fn required(self) -> &'static [&'static str] {
        match self {
            Self::Customers => &["customer_id"],
            Self::Products => &["product_id"],
            Self::Orders => &[
                "order_id",
                "customer_id",
                "product_id",
                "quantity",
                "unit_price",
                "ordered_at",
            ],
            Self::Events => &["event_id", "customer_id", "kind", "occurred_at"],
            Self::Reviews => &[
                "review_id",
                "customer_id",
                "product_id",
                "rating",
                "created_at",
            ],
        }
    }
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Entity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown entity `{s}` (expected customers, products, orders, events or reviews)"
                )
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    Paid,
    Cancelled,
    Refunded,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paid => "paid",
            Self::Cancelled => "cancelled",
            Self::Refunded => "refunded",
        }
    }

    pub fn parse(text: &str) -> Result<Self, ValueError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "paid" => Ok(Self::Paid),
            "cancelled" | "canceled" => Ok(Self::Cancelled),
            "refunded" => Ok(Self::Refunded),
            other => Err(ValueError::BadValue(format!(
                "status `{other}` (expected paid, cancelled or refunded)"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    View,
    Click,
    Cart,
    RecClick,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::View => "view",
            Self::Click => "click",
            Self::Cart => "cart",
            Self::RecClick => "rec_click",
        }
    }

    pub fn parse(text: &str) -> Result<Self, ValueError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "view" => Ok(Self::View),
            "click" => Ok(Self::Click),
            "cart" => Ok(Self::Cart),
            "rec_click" => Ok(Self::RecClick),
            other => Err(ValueError::BadValue(format!(
                "kind `{other}` (expected view, click, cart or rec_click)"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub customer_id: String,
    pub signup_at: Option<i64>,
    pub birth_year: Option<i32>,
    pub gender: Option<String>,
    pub region: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    pub product_id: String,
    pub title: String,
    pub description: String,
    pub category: String,
    pub price_cents: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderLine {
    pub order_id: String,
    pub customer_id: String,
    pub product_id: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub ordered_at: i64,
    pub status: OrderStatus,
}

impl OrderLine {
    /// The line's identity: the same order, product, quantity, price and time is the same
    /// line, so an exact duplicate line (or a re-sent one) is stored once, while two lines of
    /// one product with different quantities stay two.
    pub fn line_key(&self) -> i64 {
        let mut bytes = Vec::with_capacity(64);
        for part in [self.order_id.as_bytes(), self.product_id.as_bytes()] {
            bytes.extend_from_slice(part);
            bytes.push(0);
        }
        for n in [self.quantity, self.unit_price_cents, self.ordered_at] {
            bytes.extend_from_slice(&n.to_le_bytes());
        }
        xxhash_rust::xxh3::xxh3_64(&bytes) as i64
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_id: String,
    pub customer_id: String,
    pub product_id: Option<String>,
    pub kind: EventKind,
    pub occurred_at: i64,
    pub duration_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub review_id: String,
    pub customer_id: String,
    pub product_id: String,
    pub rating: i16,
    pub text: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    Customer(Customer),
    Product(Product),
    Order(OrderLine),
    Event(Event),
    Review(Review),
}

/// Why a readable record is still not a row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("missing id: `{0}` is empty")]
    MissingId(&'static str),
    #[error("{field}: {error}")]
    Value {
        field: &'static str,
        error: ValueError,
    },
}

impl RowError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingId(_) => "missing id",
            Self::Value { error, .. } => error.reason(),
        }
    }
}

/// How values are read: the zone of naive timestamps, an optional date format, and the
/// multiplier applied to money.
#[derive(Debug, Clone)]
pub struct ValueRules {
    pub timezone: Tz,
    pub date_format: Option<super::values::DateFormat>,
    pub currency_multiplier: Decimal,
}

impl Default for ValueRules {
    fn default() -> Self {
        Self {
            timezone: chrono_tz::UTC,
            date_format: None,
            currency_multiplier: Decimal::ONE,
        }
    }
}

/// Reads one record of `entity` through `get` (canonical column → raw text, `None` when the
/// file has no such column).
pub fn parse_row<'a>(
    entity: Entity,
    get: impl Fn(&str) -> Option<&'a str>,
    rules: &ValueRules,
) -> Result<Row, RowError> {
    let id = |field: &'static str| -> Result<String, RowError> {
        let v = get(field).map(str::trim).unwrap_or("");
        if v.is_empty() {
            Err(RowError::MissingId(field))
        } else {
            Ok(v.to_owned())
        }
    };
    let present = |field: &str| get(field).map(str::trim).filter(|v| !v.is_empty());
    let value = |field: &'static str, r: Result<i64, ValueError>| {
        r.map_err(|error| RowError::Value { field, error })
    };
    let time = |field: &'static str| -> Result<i64, RowError> {
        value(
            field,
            parse_timestamp(
                get(field).unwrap_or(""),
                rules.date_format.as_ref(),
                rules.timezone,
            ),
        )
    };
    let opt_time = |field: &'static str| -> Result<Option<i64>, RowError> {
        present(field)
            .map(|v| {
                value(
                    field,
                    parse_timestamp(v, rules.date_format.as_ref(), rules.timezone),
                )
            })
            .transpose()
    };
    let money = |field: &'static str| -> Result<i64, RowError> {
        value(
            field,
            parse_money_cents(get(field).unwrap_or(""), rules.currency_multiplier),
        )
    };
    let text = |field: &str| present(field).map(normalize_text).unwrap_or_default();
    let opt_text = |field: &str| present(field).map(normalize_text).filter(|t| !t.is_empty());
    let bad = |field: &'static str, error: ValueError| RowError::Value { field, error };

    Ok(match entity {
        Entity::Customers => Row::Customer(Customer {
            customer_id: id("customer_id")?,
            signup_at: opt_time("signup_at")?,
            birth_year: present("birth_year")
                .map(|v| value("birth_year", parse_int(v)))
                .transpose()?
                .map(|y| y as i32),
            gender: opt_text("gender").map(|g| g.to_lowercase()),
            region: opt_text("region"),
        }),
        Entity::Products => Row::Product(Product {
            product_id: id("product_id")?,
            title: text("title"),
            description: text("description"),
            category: opt_text("category").unwrap_or_else(|| "uncategorized".to_owned()),
            price_cents: present("price")
                .map(|v| value("price", parse_money_cents(v, rules.currency_multiplier)))
                .transpose()?,
        }),
        Entity::Orders => Row::Order(OrderLine {
            order_id: id("order_id")?,
            customer_id: id("customer_id")?,
            product_id: id("product_id")?,
            quantity: value("quantity", parse_int(get("quantity").unwrap_or("")))?,
            unit_price_cents: money("unit_price")?,
            ordered_at: time("ordered_at")?,
            status: OrderStatus::parse(get("status").unwrap_or(""))
                .map_err(|e| bad("status", e))?,
        }),
        Entity::Events => Row::Event(Event {
            event_id: id("event_id")?,
            customer_id: id("customer_id")?,
            product_id: present("product_id").map(str::to_owned),
            kind: EventKind::parse(get("kind").unwrap_or("")).map_err(|e| bad("kind", e))?,
            occurred_at: time("occurred_at")?,
            duration_s: present("duration_s")
                .map(|v| parse_float(v).map_err(|e| bad("duration_s", e)))
                .transpose()?,
        }),
        Entity::Reviews => {
            let rating = value("rating", parse_int(get("rating").unwrap_or("")))?;
            if !(1..=5).contains(&rating) {
                return Err(bad(
                    "rating",
                    ValueError::BadValue(format!("rating {rating} is not between 1 and 5")),
                ));
            }
            Row::Review(Review {
                review_id: id("review_id")?,
                customer_id: id("customer_id")?,
                product_id: id("product_id")?,
                rating: rating as i16,
                text: text("text"),
                created_at: time("created_at")?,
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn row(entity: Entity, pairs: &[(&str, &str)]) -> Result<Row, RowError> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        parse_row(entity, |k| map.get(k).copied(), &ValueRules::default())
    }

    #[test]
    fn an_order_line_reads_and_normalises() {
        let r = row(
            Entity::Orders,
            &[
                ("order_id", " O1 "),
                ("customer_id", "C1"),
                ("product_id", "P1"),
                ("quantity", "2"),
                ("unit_price", "6.95"),
                ("ordered_at", "2024-05-01 13:00:00"),
                ("status", "Refunded"),
            ],
        )
        .unwrap();
        let Row::Order(o) = r else { panic!() };
        assert_eq!(o.order_id, "O1");
        assert_eq!(o.unit_price_cents, 695);
        assert_eq!(o.ordered_at, 1_714_568_400);
        assert_eq!(o.status, OrderStatus::Refunded);
    }

    #[test]
    fn each_reason_is_reported() {
        let base = [
            ("order_id", "O1"),
            ("customer_id", "C1"),
            ("product_id", "P1"),
            ("quantity", "1"),
            ("unit_price", "1.00"),
            ("ordered_at", "2024-05-01"),
        ];
        let with = |k: &str, v: &'static str| {
            let mut b: Vec<(&str, &str)> = base.iter().copied().filter(|(x, _)| *x != k).collect();
            b.push((k, v));
            row(Entity::Orders, &b).unwrap_err().reason()
        };
        assert_eq!(with("order_id", ""), "missing id");
        assert_eq!(with("quantity", "two"), "bad number");
        assert_eq!(with("unit_price", "12,5x"), "bad number");
        assert_eq!(with("ordered_at", "yesterday"), "unparseable date");
        assert_eq!(with("status", "shipped"), "bad value");
        let review = |rating: &'static str| {
            row(
                Entity::Reviews,
                &[
                    ("review_id", "R1"),
                    ("customer_id", "C1"),
                    ("product_id", "P1"),
                    ("rating", rating),
                    ("created_at", "2024-05-01"),
                ],
            )
        };
        assert_eq!(review("five").unwrap_err().reason(), "bad number");
        assert_eq!(review("6").unwrap_err().reason(), "bad value");
        assert!(review("5").is_ok());
    }

    #[test]
    fn optional_columns_may_be_absent() {
        let Row::Customer(c) = row(Entity::Customers, &[("customer_id", "C1")]).unwrap() else {
            panic!()
        };
        assert_eq!(c.signup_at, None);
        assert_eq!(c.region, None);
        let Row::Product(p) = row(
            Entity::Products,
            &[("product_id", "P1"), ("title", "  Ｍug ")],
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(p.title, "Mug");
        assert_eq!(p.category, "uncategorized");
    }

    #[test]
    fn line_keys_identify_identical_lines_only() {
        let line = |q| OrderLine {
            order_id: "O1".into(),
            customer_id: "C1".into(),
            product_id: "P1".into(),
            quantity: q,
            unit_price_cents: 100,
            ordered_at: 0,
            status: OrderStatus::Paid,
        };
        assert_eq!(line(1).line_key(), line(1).line_key());
        assert_ne!(line(1).line_key(), line(2).line_key());
        let mut refunded = line(1);
        refunded.status = OrderStatus::Refunded;
        assert_eq!(
            refunded.line_key(),
            line(1).line_key(),
            "status is not identity"
        );
    }
}
