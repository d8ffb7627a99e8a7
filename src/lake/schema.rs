//! The datasets of the lake and their Arrow schemas. Raw datasets carry their entity's
//! columns plus `_load`, the ingested source that wrote the row: among rows with one key,
//! the newest load wins. Times are UTC timestamps (milliseconds in the files: Parquet has no
//! seconds unit; queries see seconds through the views, [`Dataset::columns`]); money is
//! integer cents, the unit in the column's metadata, so pyarrow or DuckDB read the files as
//! they are.

use std::{collections::HashMap, sync::Arc};

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::ingest::Entity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Dataset {
    Customers,
    Products,
    Orders,
    Events,
    Reviews,
    /// The rows `clean` marks, with the reason: `(dataset, id, line_key, reason)`.
    Anomalies,
    /// Customer features, partitioned by as-of date.
    Features,
    /// Each review's sentiment: `(review_id, score, label, model_id)`.
    #[value(name = "review_sentiment")]
    Sentiment,
    /// Churn and purchase-intent probabilities per customer, partitioned by as-of date.
    #[value(name = "customer_scores")]
    Scores,
    /// Each customer's current top-N products: `(customer_id, rank, product_id, score,
    /// source, because_product_id, model_id, because_kind)`. A customer's newest list wins
    /// whole (every row of one write shares `_written`).
    Recommendations,
    /// Each customer's segment, PCA coordinates and RFM scores, partitioned by as-of date.
    #[value(name = "customer_profiles")]
    Profiles,
}

impl Dataset {
    pub const ALL: [Dataset; 11] = [
        Self::Customers,
        Self::Products,
        Self::Orders,
        Self::Events,
        Self::Reviews,
        Self::Anomalies,
        Self::Features,
        Self::Sentiment,
        Self::Scores,
        Self::Recommendations,
        Self::Profiles,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Customers => "customers",
            Self::Products => "products",
            Self::Orders => "orders",
            Self::Events => "events",
            Self::Reviews => "reviews",
            Self::Anomalies => "anomalies",
            Self::Features => "features",
            Self::Sentiment => "review_sentiment",
            Self::Scores => "customer_scores",
            Self::Recommendations => "recommendations",
            Self::Profiles => "customer_profiles",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    pub fn of(entity: Entity) -> Self {
        match entity {
            Entity::Customers => Self::Customers,
            Entity::Products => Self::Products,
            Entity::Orders => Self::Orders,
            Entity::Events => Self::Events,
            Entity::Reviews => Self::Reviews,
        }
    }

    /// The columns that identify a row; among rows with one key, readers keep one.
    pub fn key(self) -> &'static [&'static str] {
        match self {
            Self::Customers => &["customer_id"],
            Self::Products => &["product_id"],
            Self::Orders => &["order_id", "line_key"],
            Self::Events => &["event_id"],
            Self::Reviews => &["review_id"],
            Self::Anomalies => &["dataset", "id", "line_key"],
            Self::Features => &["as_of", "customer_id"],
            Self::Sentiment => &["review_id"],
            Self::Scores | Self::Profiles => &["as_of", "customer_id"],
            // A list, not a row: see `lake::newest_per_key`.
            Self::Recommendations => &["customer_id"],
        }
    }

    /// Which row of a key wins, as an SQL `ORDER BY` (the first row wins). A cancelled or
    /// refunded order line never turns back into a paid one.
    pub fn newest_first(self) -> &'static str {
        match self {
            Self::Orders => "(status = 'paid') ASC, _load DESC",
            Self::Features
            | Self::Sentiment
            | Self::Scores
            | Self::Recommendations
            | Self::Profiles => "_written DESC",
            Self::Anomalies => "reason",
            _ => "_load DESC",
        }
    }

    /// Columns nearly unique per row: a Parquet dictionary only costs time there (building
    /// one took a tenth of an ingest) and is given up by the writer anyway.
    pub fn distinct_columns(self) -> &'static [&'static str] {
        match self {
            Self::Customers => &["customer_id"],
            Self::Products => &["product_id", "title", "description"],
            Self::Orders => &["order_id"],
            Self::Events => &["event_id"],
            Self::Reviews => &["review_id", "text"],
            Self::Anomalies => &["id"],
            Self::Features | Self::Scores | Self::Profiles => &["customer_id"],
            Self::Sentiment => &["review_id"],
            Self::Recommendations => &[],
        }
    }

    /// The order a dataset's files keep, for readers that look up one key: compaction
    /// writes it too.
    pub fn sorted_by(self) -> Option<&'static str> {
        match self {
            Self::Recommendations => Some("customer_id, rank"),
            _ => None,
        }
    }

    /// Rows per Parquet row group. Recommendations are read one customer at a time
    /// (`patron recommend C`): small groups, sorted by customer, let a lookup read one.
    pub fn row_group(self) -> usize {
        match self {
            Self::Recommendations => 1 << 16,
            _ => 1 << 20,
        }
    }

    pub fn schema(self) -> SchemaRef {
        let text = |name: &str| Field::new(name, DataType::Utf8, false);
        let opt_text = |name: &str| Field::new(name, DataType::Utf8, true);
        let int = |name: &str| Field::new(name, DataType::Int64, false);
        let time = |name: &str, nullable| {
            Field::new(
                name,
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                nullable,
            )
        };
        let cents = |name: &str, nullable| {
            Field::new(name, DataType::Int64, nullable)
                .with_metadata(HashMap::from([("unit".to_owned(), "cents".to_owned())]))
        };
        let float = |name: &str| Field::new(name, DataType::Float64, true);
        let load = || int("_load");
        let fields = match self {
            Self::Customers => vec![
                text("customer_id"),
                time("signup_at", true),
                Field::new("birth_year", DataType::Int32, true),
                opt_text("gender"),
                opt_text("region"),
                load(),
            ],
            Self::Products => vec![
                text("product_id"),
                text("title"),
                text("description"),
                text("category"),
                cents("price_cents", true),
                load(),
            ],
            Self::Orders => vec![
                text("order_id"),
                int("line_key"),
                text("customer_id"),
                text("product_id"),
                int("quantity"),
                cents("unit_price_cents", false),
                time("ordered_at", false),
                text("status"),
                load(),
            ],
            Self::Events => vec![
                text("event_id"),
                text("customer_id"),
                opt_text("product_id"),
                text("kind"),
                time("occurred_at", false),
                float("duration_s"),
                load(),
            ],
            Self::Reviews => vec![
                text("review_id"),
                text("customer_id"),
                text("product_id"),
                Field::new("rating", DataType::Int16, false),
                text("text"),
                time("created_at", false),
                load(),
            ],
            Self::Anomalies => vec![
                text("dataset"),
                text("id"),
                Field::new("line_key", DataType::Int64, true),
                text("reason"),
            ],
            Self::Features => {
                let mut f = vec![text("customer_id"), text("as_of")];
                for (name, integer) in FEATURE_COLUMNS {
                    f.push(if integer {
                        int(name)
                    } else {
                        Field::new(name, DataType::Float64, true)
                    });
                }
                f.push(int("_written"));
                f
            }
            Self::Sentiment => vec![
                text("review_id"),
                Field::new("score", DataType::Float64, false),
                text("label"),
                Field::new("model_id", DataType::Int64, true),
                int("_written"),
            ],
            Self::Scores => vec![
                text("customer_id"),
                text("as_of"),
                float("churn_probability"),
                float("intent_probability"),
                Field::new("churn_model_id", DataType::Int64, true),
                Field::new("intent_model_id", DataType::Int64, true),
                int("_written"),
            ],
            Self::Recommendations => vec![
                text("customer_id"),
                int("rank"),
                text("product_id"),
                Field::new("score", DataType::Float64, false),
                text("source"),
                opt_text("because_product_id"),
                int("model_id"),
                opt_text("because_kind"),
                int("_written"),
            ],
            Self::Profiles => vec![
                text("customer_id"),
                text("as_of"),
                int("segment"),
                text("segment_label"),
                float("pc1"),
                float("pc2"),
                int("r_score"),
                int("f_score"),
                int("m_score"),
                int("model_id"),
                int("_written"),
            ],
        };
        Arc::new(Schema::new(fields))
    }
}

impl Dataset {
    /// The select list queries read the dataset's files through: every column, timestamps
    /// as integer UTC seconds (what the analytics compute with; `arrow_cast` to a seconds
    /// timestamp made scans 30 times slower).
    pub fn columns(self) -> String {
        self.select(|name| format!("CAST({name} AS BIGINT) / 1000 AS {name}"))
    }

    /// The select list that turns rows read through [`Dataset::columns`] (from `alias`)
    /// back into the files' form: timestamps in milliseconds.
    pub fn file_columns(self, alias: &str) -> String {
        self.select(|name| format!("{alias}.{name} * 1000 AS {name}"))
            .split(", ")
            .map(|c| {
                if c.contains(" AS ") {
                    c.to_owned()
                } else {
                    format!("{alias}.{c}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn select(self, time: impl Fn(&str) -> String) -> String {
        self.schema()
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Timestamp(..) => time(f.name()),
                _ => f.name().clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl std::fmt::Display for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Feature columns in export order (after `customer_id`), and whether each is a count.
pub const FEATURE_COLUMNS: [(&str, bool); 12] = [
    ("recency_days", false),
    ("frequency", true),
    ("monetary", false),
    ("tenure_days", false),
    ("avg_basket", false),
    ("distinct_products", true),
    ("cancel_rate", false),
    ("n_events", true),
    ("browse_seconds", false),
    ("n_reviews", true),
    ("mean_rating", false),
    ("mean_sentiment", false),
];

/// The raw datasets an entity's rows go to, with their timestamp column (for `clean`).
pub fn time_column(dataset: Dataset) -> Option<&'static str> {
    match dataset {
        Dataset::Customers => Some("signup_at"),
        Dataset::Orders => Some("ordered_at"),
        Dataset::Events => Some("occurred_at"),
        Dataset::Reviews => Some("created_at"),
        _ => None,
    }
}
