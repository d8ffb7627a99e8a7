//! Ingest, clean and features through the library and the CLI, on SQLite and PostgreSQL:
//! every quarantine reason, mappings, idempotence, crash-and-retry, rejection, anomalies,
//! hand-checked features.

use std::{path::Path, sync::Arc};

use patron::{
    db::{self, entities::SourceState, repo},
    ingest::{self, Entity, Input, Mapping, Options},
    lake::Lake,
};
use sea_orm::{ConnectionTrait, Statement};

use crate::common::*;

async fn open(env: &Env) -> Lake {
    let conn = db::connect(&env.db.url, 4).await.unwrap();
    db::migrate(&conn).await.unwrap();
    env.lake(conn)
}

/// One integer from the lake (or from the control database, for the quarantine).
async fn count(lake: &Lake, sql: &str) -> i64 {
    if sql.contains("quarantine") {
        let db = lake.db();
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                sql.to_owned(),
            ))
            .await
            .unwrap()
            .unwrap();
        return row.try_get_by_index::<i64>(0).unwrap();
    }
    lake_ints(lake, &sql.replace("source_id", "_load")).await[0]
}

async fn run(
    db: &Lake,
    path: &Path,
    entity: Entity,
    mapping: Option<&Mapping>,
    ratio: f64,
) -> ingest::Report {
    let options = Options {
        max_bad_ratio: ratio,
        ..Default::default()
    };
    ingest::ingest(
        db,
        Input::File(path.to_path_buf()),
        entity,
        mapping,
        &options,
        None,
    )
    .await
    .unwrap()
}

const ORDERS_HEADER: &str =
    "order_id,customer_id,product_id,quantity,unit_price,ordered_at,status\n";

#[test]
fn every_unreadable_row_is_quarantined_with_its_reason_and_the_rest_loads() {
    for backend in backends() {
        let env = Env::new(backend);
        let mut data = ORDERS_HEADER.as_bytes().to_vec();
        data.extend_from_slice(b"O1,C1,P1,2,6.95,2024-05-01 13:00:00,paid\n"); // line 2 ok
        data.extend_from_slice(b"O2,C1,P1,1,6.95,2024-05-01\n"); // 3 wrong column count
        data.extend_from_slice(b"O3,C1,P1,two,6.95,2024-05-01,paid\n"); // 4 bad number
        data.extend_from_slice(b"O4,C1,P1,1,6.95,yesterday,paid\n"); // 5 unparseable date
        data.extend_from_slice(b",C1,P1,1,6.95,2024-05-01,paid\n"); // 6 missing id
        data.extend_from_slice(b"O6,C1,P\xff\xfe,1,6.95,2024-05-01,paid\n"); // 7 invalid UTF-8
        data.extend_from_slice(b"O7,C1,P1,1,6.95,2024-05-01,shipped\n"); // 8 bad value
        data.extend_from_slice(b"O8,C2,P2,1,1,1714568400,refunded\n"); // 9 ok
        let path = env.path("orders.csv");
        std::fs::write(&path, &data).unwrap();
        block_on(async {
            let db = open(&env).await;
            let r = run(&db, &path, Entity::Orders, None, 1.0).await;
            assert_eq!(
                (r.read, r.loaded, r.quarantined),
                (8, 2, 6),
                "{backend:?} {r:?}"
            );
            for reason in [
                "wrong column count",
                "bad number",
                "unparseable date",
                "missing id",
                "invalid UTF-8",
                "bad value",
            ] {
                assert_eq!(r.reasons.get(reason), Some(&1), "{reason}: {:?}", r.reasons);
            }
            let q = repo::sources::list_quarantine(db.db(), &Default::default())
                .await
                .unwrap();
            let lines: Vec<(i64, &str)> = q.iter().map(|q| (q.line, q.reason.as_str())).collect();
            assert_eq!(
                lines,
                [
                    (3, "wrong column count"),
                    (4, "bad number"),
                    (5, "unparseable date"),
                    (6, "missing id"),
                    (7, "invalid UTF-8"),
                    (8, "bad value")
                ]
            );
            assert_eq!(q[0].raw, "O2,C1,P1,1,6.95,2024-05-01");
            assert_eq!(
                q[1].detail.as_deref(),
                Some("quantity: bad number: `two` is not a whole number")
            );
            assert_eq!(q[0].source, path.display().to_string());
            // The good rows are normalised: UTC epoch seconds and integer cents.
            assert_eq!(
                count(&db, "SELECT ordered_at FROM orders WHERE order_id = 'O1'").await,
                1_714_568_400
            );
            assert_eq!(
                count(
                    &db,
                    "SELECT unit_price_cents FROM orders WHERE order_id = 'O1'"
                )
                .await,
                695
            );
            assert_eq!(
                count(&db, "SELECT COUNT(*) FROM orders WHERE status = 'refunded'").await,
                1
            );
        });
    }
}

#[test]
fn json_lines_read_and_malformed_lines_are_quarantined() {
    let env = Env::new(Backend::Sqlite);
    let path = env.path("reviews.jsonl");
    std::fs::write(
        &path,
        "{\"review_id\":\"R1\",\"customer_id\":\"C1\",\"product_id\":\"P1\",\"rating\":5,\"text\":\"  非常  好用 \",\"created_at\":\"2024-05-01T13:00:00+08:00\"}\n{\"review_id\":\"R2\",\"rating\n{\"review_id\":\"R3\",\"customer_id\":\"C1\",\"product_id\":\"P1\",\"rating\":\"five\",\"created_at\":\"2024-05-01\"}\n",
    )
    .unwrap();
    block_on(async {
        let db = open(&env).await;
        let r = run(&db, &path, Entity::Reviews, None, 1.0).await;
        assert_eq!((r.read, r.loaded, r.quarantined), (3, 1, 2));
        assert_eq!(r.reasons.get("malformed JSON"), Some(&1));
        assert_eq!(r.reasons.get("bad number"), Some(&1));
        assert_eq!(
            count(&db, "SELECT created_at FROM reviews").await,
            1_714_539_600
        );
        let text = patron::lake::arrays::strings(
            &db.query("SELECT text FROM reviews").await.unwrap()[0],
            0,
        )
        .unwrap()
        .remove(0);
        assert_eq!(text, "非常 好用");
    });
}

#[test]
fn reingesting_adds_nothing_and_ids_from_another_file_are_duplicates() {
    for backend in backends() {
        let env = Env::new(backend);
        let a = env.write("a.csv", &format!("{ORDERS_HEADER}O1,C1,P1,1,1.00,2024-05-01,paid\nO1,C1,P1,1,1.00,2024-05-01,paid\nO2,C1,P2,1,2.00,2024-05-02,paid\n"));
        let b = env.write("b.csv", &format!("{ORDERS_HEADER}O2,C1,P2,1,2.00,2024-05-02,refunded\nO3,C2,P1,3,1.00,2024-05-03,paid\n"));
        block_on(async {
            let db = open(&env).await;
            let r = run(&db, &a, Entity::Orders, None, 0.05).await;
            assert_eq!(
                (r.read, r.loaded, r.duplicates),
                (3, 2, 1),
                "an exact duplicate line is stored once"
            );
            let again = run(&db, &a, Entity::Orders, None, 0.05).await;
            assert!(again.already_ingested);
            assert_eq!(again.loaded, 0);
            let r = run(&db, &b, Entity::Orders, None, 0.05).await;
            // O2 is known: its later status is taken (1 changed), O3 is new (1 loaded).
            assert_eq!((r.read, r.loaded, r.duplicates), (2, 2, 0));
            assert_eq!(count(&db, "SELECT COUNT(*) FROM orders").await, 3);
            assert_eq!(
                count(&db, "SELECT COUNT(*) FROM orders WHERE status = 'refunded'").await,
                1
            );
            // Same ids once more from a third file: nothing new.
            let c = env.write(
                "c.csv",
                &format!("{ORDERS_HEADER}O3,C2,P1,3,1.00,2024-05-03,paid\n"),
            );
            let r = run(&db, &c, Entity::Orders, None, 0.05).await;
            assert_eq!((r.loaded, r.duplicates), (0, 1));
            assert_eq!(count(&db, "SELECT COUNT(*) FROM orders").await, 3);
        });
    }
}

#[test]
fn a_load_interrupted_by_a_crash_is_retried_without_duplicates() {
    for backend in backends() {
        let env = Env::new(backend);
        let mut text = String::from(ORDERS_HEADER);
        for i in 0..50_000 {
            text.push_str(&format!(
                "O{i},C{},P{},1,1.00,2024-05-01,paid\n",
                i % 100,
                i % 7
            ));
        }
        let path = env.write("big.csv", &text);
        block_on(async {
            let db = open(&env).await;
            // A first attempt loads part of the file and dies before finishing: its source
            // stays `loading` and its rows carry its source id.
            let data = std::fs::read(&path).unwrap();
            let checksum = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&data));
            let repo::sources::Begin::Load { id, .. } = repo::sources::begin(
                db.db(),
                "orders",
                &path.display().to_string(),
                &checksum,
                data.len() as u64,
            )
            .await
            .unwrap() else {
                panic!("fresh source")
            };
            let rows: Vec<ingest::entity::Row> = (0..20_000)
                .map(|i| {
                    ingest::entity::Row::Order(ingest::entity::OrderLine {
                        order_id: format!("O{i}"),
                        customer_id: format!("C{}", i % 100),
                        product_id: format!("P{}", i % 7),
                        quantity: 1,
                        unit_price_cents: 100,
                        ordered_at: 1_714_521_600,
                        status: ingest::entity::OrderStatus::Paid,
                    })
                })
                .collect();
            // Its file is written in full, but the catalog never records it.
            let mut sink = patron::lake::load::Sink::new(&db, Entity::Orders, id).unwrap();
            for row in rows {
                sink.push(row).unwrap();
            }
            let (file, _) = sink.finish().unwrap();
            assert!(db.abs(&file.unwrap().path).exists());
            assert_eq!(count(&db, "SELECT COUNT(*) FROM orders").await, 0);

            // The retry starts over under the same source id and ends with each row once.
            let r = run(&db, &path, Entity::Orders, None, 0.05).await;
            assert!(!r.already_ingested);
            assert_eq!(
                (r.read, r.loaded, r.duplicates),
                (50_000, 50_000, 0),
                "{r:?}"
            );
            assert_eq!(count(&db, "SELECT COUNT(*) FROM orders").await, 50_000);
            assert_eq!(
                count(&db, "SELECT COUNT(DISTINCT source_id) FROM orders").await,
                1
            );
            let sources = repo::sources::list_sources(db.db(), 10).await.unwrap();
            assert_eq!(sources.len(), 1);
            assert_eq!(sources[0].state, SourceState::Complete);
        });
    }
}

#[test]
fn too_many_bad_rows_reject_the_whole_file() {
    for backend in backends() {
        let env = Env::new(backend);
        let path = env.write(
            "bad.csv",
            &format!("{ORDERS_HEADER}O1,C1,P1,1,1.00,2024-05-01,paid\nO2,C1,P1,x,1.00,2024-05-01,paid\nO3,C1,P1,1,1.00,2024-05-01,paid\n"),
        );
        block_on(async {
            let db = open(&env).await;
            let r = run(&db, &path, Entity::Orders, None, 0.10).await;
            assert!(r.rejected);
            assert_eq!(r.loaded, 0);
            assert_eq!(
                count(&db, "SELECT COUNT(*) FROM orders").await,
                0,
                "nothing from the file is kept"
            );
            assert_eq!(
                count(&db, "SELECT COUNT(*) FROM quarantine").await,
                1,
                "but its bad rows are shown"
            );
            assert_eq!(
                repo::sources::list_sources(db.db(), 1).await.unwrap()[0].state,
                SourceState::Rejected
            );
            // With a looser limit the same file loads (the rejected source is retried).
            let r = run(&db, &path, Entity::Orders, None, 0.5).await;
            assert!(!r.rejected);
            assert_eq!(r.loaded, 2);
            assert_eq!(count(&db, "SELECT COUNT(*) FROM quarantine").await, 1);
        });
    }
}

const RETAIL_SAMPLE: &str =
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
489434,85048,15CM CHRISTMAS GLASS BALL 20 LIGHTS,12,2009-12-01 07:45:00,6.95,13085,United Kingdom
489434,79323P,PINK CHERRY LIGHTS,12,2009-12-01 07:45:00,6.75,13085,United Kingdom
489435,POST,POSTAGE,1,2009-12-01 07:46:00,18.00,13085,United Kingdom
C489449,22087,PAPER BUNTING WHITE LACE,-12,2009-12-01 10:33:00,2.95,16321,Australia
489450,21523,DOORMAT FANCY FONT HOME SWEET HOME,10,2010-06-01 09:00:00,5.95,,United Kingdom
A506401,B,Adjust bad debt,1,2010-04-29 13:36:00,-53594.36,,United Kingdom
489488,22125,UNION JACK HOT WATER BOTTLE ,1,2009-12-01 10:59:00,5.95,17238,United Kingdom
489488,22125,UNION JACK HOT WATER BOTTLE ,2,2009-12-01 10:59:00,5.95,17238,United Kingdom
";

#[test]
fn a_mapping_loads_a_foreign_export_into_three_entities() {
    for backend in backends() {
        let env = Env::new(backend);
        let path = env.write("retail.csv", RETAIL_SAMPLE);
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/online-retail");
        block_on(async {
            let db = open(&env).await;
            let orders = Mapping::load(&dir.join("orders.toml")).unwrap();
            let r = run(&db, &path, Entity::Orders, Some(&orders), 0.05).await;
            assert_eq!(r.read, 8);
            assert_eq!(r.loaded, 5, "{r:?}");
            assert_eq!(r.skip_reasons.get("no customer id"), Some(&2));
            assert_eq!(r.skip_reasons.values().sum::<u64>(), 3);
            assert_eq!(
                count(
                    &db,
                    "SELECT COUNT(*) FROM orders WHERE status = 'cancelled'"
                )
                .await,
                1
            );
            // 2009-12-01 07:45 in London is 07:45 UTC (GMT); two lines of one product with
            // different quantities stay two lines.
            assert_eq!(
                count(&db, "SELECT MIN(ordered_at) FROM orders").await,
                1_259_653_500
            );
            assert_eq!(
                count(&db, "SELECT COUNT(*) FROM orders WHERE order_id = '489488'").await,
                2
            );

            let customers = Mapping::load(&dir.join("customers.toml")).unwrap();
            let r = run(&db, &path, Entity::Customers, Some(&customers), 0.05).await;
            assert_eq!(r.loaded, 3, "{r:?}");
            let products = Mapping::load(&dir.join("products.toml")).unwrap();
            let r = run(&db, &path, Entity::Products, Some(&products), 0.05).await;
            assert_eq!(r.loaded, 5, "{r:?}");
            assert_eq!(
                count(
                    &db,
                    "SELECT price_cents FROM products WHERE product_id = '85048'"
                )
                .await,
                695
            );
            assert_eq!(
                count(
                    &db,
                    "SELECT COUNT(*) FROM products WHERE category = 'gifts'"
                )
                .await,
                5
            );
        });
    }
}

#[test]
fn a_currency_multiplier_and_date_format_apply_exactly() {
    let env = Env::new(Backend::Sqlite);
    let path = env.write(
        "eu.csv",
        "Bestellung;Kunde;Artikel;Menge;Preis;Datum\nB1;K1;A1;2;10,00;01.05.2024 13:00\n",
    );
    let mapping = Mapping::parse(
        "m.toml",
        "entity = \"orders\"\nformat = \"csv\"\ndelimiter = \";\"\ntimezone = \"Europe/Berlin\"\ndate_format = \"%d.%m.%Y %H:%M\"\ncurrency_multiplier = 0.85\n[columns]\norder_id = \"Bestellung\"\ncustomer_id = \"Kunde\"\nproduct_id = \"Artikel\"\nquantity = \"Menge\"\nunit_price = \"Preis\"\nordered_at = \"Datum\"\n[constants]\nstatus = \"paid\"\n",
    )
    .unwrap();
    block_on(async {
        let db = open(&env).await;
        let r = run(&db, &path, Entity::Orders, Some(&mapping), 0.05).await;
        assert_eq!(r.loaded, 1, "{r:?}");
        // "10,00" reads as 1000 (the comma is a thousands separator), × 0.85 = 850.00.
        assert_eq!(
            count(&db, "SELECT unit_price_cents FROM orders").await,
            85_000
        );
        // 13:00 in Berlin (CEST) is 11:00 UTC.
        assert_eq!(
            count(&db, "SELECT ordered_at FROM orders").await,
            1_714_561_200
        );
    });
}

#[test]
fn clean_marks_anomalies_and_features_leave_them_out() {
    for backend in backends() {
        let env = Env::new(backend);
        env.write("inbox/customers/c.csv", "customer_id,signup_at,birth_year,gender,region\nC1,2024-01-01,1980,f,east\nC2,2024-03-01,1990,m,west\nC3,2030-01-01,,,\n");
        env.write(
            "inbox/orders/o.csv",
            &format!(
                "{ORDERS_HEADER}O1,C1,P1,2,5.00,2024-01-10,paid\nO1,C1,P2,1,3.00,2024-01-10,paid\nO2,C1,P1,1,5.00,2024-02-09,paid\nO3,C1,P3,1,9.00,2024-02-19,refunded\nO4,C1,P1,0,5.00,2024-02-20,paid\nO5,C2,P1,1,5.00,2024-02-01,paid\nO6,C2,P1,1,0,2024-03-05,paid\nO7,C1,P1,1,5.00,2031-01-01,paid\n"
            ),
        );
        env.write("inbox/events/e.csv", "event_id,customer_id,product_id,kind,occurred_at,duration_s\nE1,C1,P1,view,2024-01-05,30\nE2,C1,,click,2024-02-14,90\n");
        env.write("inbox/reviews/r.csv", "review_id,customer_id,product_id,rating,text,created_at\nR1,C1,P1,4,good,2024-01-11\nR2,C1,P2,5,great,2024-02-10\n");
        env.write(
            "inbox/products/p.csv",
            "product_id,title,description,category,price\nP1,Mug,,kitchen,5.00\n",
        );
        env.apply(
            "nightly.toml",
            &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/jobs/nightly.toml"))
                .unwrap(),
        );
        let _daemon = env.daemon_with(
            "w1",
            &[("PATRON__INGEST__INBOX", env.path("inbox").to_str().unwrap())],
        );
        let out = env.json(&[
            "trigger",
            "nightly",
            "--wait",
            "--param",
            "as_of=2024-04-09",
        ]);
        assert_eq!(out["state"], "succeeded", "{backend:?}");

        block_on(async {
            let db = open(&env).await;
            let anomaly = |order: &str| {
                let db = db.clone();
                let order = order.to_owned();
                async move {
                    let batches = db
                        .query(&format!(
                            "SELECT reason FROM anomalies WHERE dataset = 'orders' AND id = '{order}'"
                        ))
                        .await
                        .unwrap();
                    batches
                        .iter()
                        .find(|b| b.num_rows() > 0)
                        .map(|b| patron::lake::arrays::strings(b, 0).unwrap().remove(0))
                }
            };
            assert_eq!(
                anomaly("O4").await.as_deref(),
                Some("non_positive_quantity")
            );
            assert_eq!(anomaly("O6").await.as_deref(), Some("non_positive_price"));
            assert_eq!(anomaly("O5").await.as_deref(), Some("before_signup"));
            assert_eq!(anomaly("O7").await.as_deref(), Some("future_date"));
            assert_eq!(anomaly("O2").await, None);
        });

        // Hand-checked, as of 2024-04-09 (cut-off 2024-04-10 00:00 UTC = day 100 after
        // 2024-01-01): C1 paid O1 (2×5 + 3 = 13.00, day 9) and O2 (5.00, day 39), O3 was
        // refunded (day 49); O4 and O7 are anomalies. C2's only orders are anomalies. C3 signs
        // up in 2030, so has no features yet.
        let csv = env.path("features.csv");
        env.ok(&["export", "features", "--out", csv.to_str().unwrap()]);
        let text = std::fs::read_to_string(&csv).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "customer_id,recency_days,frequency,monetary,tenure_days,avg_basket,distinct_products,cancel_rate,n_events,browse_seconds,n_reviews,mean_rating,mean_sentiment"
        );
        assert_eq!(lines.len(), 3, "{text}");
        // mean_sentiment: two rated reviews are too few to train a classifier, so the
        // lexicon alone scores them: "good" (VADER 1.9) → 1.9/√(1.9²+15) = 0.44043, "great"
        // (3.1) → 0.62489; their mean is 0.53266.
        assert_eq!(lines[1], "C1,61,2,18,100,9,2,0.333333,2,120,2,4.5,0.532663");
        assert_eq!(lines[2], "C2,40,0,0,40,0,0,0,0,0,0,,");
        let quarantine = env.json(&["quarantine", "list"]);
        assert_eq!(quarantine.as_array().unwrap().len(), 0);
        let _ = Arc::new(());
    }
}

/// Serves events in pages of two (`?page=N`), only with the right bearer token.
fn events_api() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).to_lowercase();
            let page = request
                .split("page=")
                .nth(1)
                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|d| d.parse::<u32>().ok())
                .unwrap_or(1);
            let body = if !request.contains("authorization: bearer t0ken") {
                String::new()
            } else if page <= 2 {
                let a = page * 2 - 1;
                format!(
                    r#"{{"data":[{{"event_id":"E{a}","customer_id":"C1","kind":"view","occurred_at":"2024-05-01T10:00:00Z","duration_s":5}},{{"event_id":"E{}","customer_id":"C1","kind":"click","occurred_at":1714557600}}]}}"#,
                    a + 1
                )
            } else {
                r#"{"data":[]}"#.to_owned()
            };
            let status = if body.is_empty() {
                "401 Unauthorized"
            } else {
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn an_http_source_is_paged_with_a_bearer_token() {
    let env = Env::new(Backend::Sqlite);
    let port = events_api();
    env.apply(
        "api.toml",
        &format!(
            "[pipeline]\nname = \"api\"\n[[job]]\nname = \"events\"\nkind = \"ingest\"\nparams = {{ entity = \"events\", source = \"http\", url = \"http://127.0.0.1:{port}/events\", items_field = \"data\", page_param = \"page\", token_env = \"SHOP_TOKEN\" }}\n"
        ),
    );
    let _daemon = env.daemon_with("w1", &[("SHOP_TOKEN", "t0ken")]);
    let out = env.json(&["trigger", "api", "--wait"]);
    assert_eq!(out["state"], "succeeded");
    block_on(async {
        let db = open(&env).await;
        assert_eq!(count(&db, "SELECT COUNT(*) FROM events").await, 4);
        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM events WHERE kind = 'click'").await,
            2
        );
    });
    let logs = env.json(&["logs", &out["run_id"].to_string()]);
    let pages = logs
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["line"].as_str().unwrap_or("").contains(" page "))
        .count();
    assert_eq!(
        pages, 3,
        "two full pages and the empty one that ends the walk"
    );
}

#[test]
fn derived_rows_keep_the_first_row_seen_for_each_id() {
    let env = Env::new(Backend::Sqlite);
    // Customer 12346's first invoice (file order) is the earlier one; the batch is sorted by
    // key before writing, which must not change which row wins.
    let path = env.write(
        "retail.csv",
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n\
         1,10001,A,1,2009-12-02 09:00:00,1.00,12346,United Kingdom\n\
         2,10002,B,1,2009-12-01 09:00:00,1.00,12345,France\n\
         3,10003,C,1,2010-01-01 09:00:00,1.00,12346,Germany\n",
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/online-retail");
    block_on(async {
        let db = open(&env).await;
        let customers = Mapping::load(&dir.join("customers.toml")).unwrap();
        let r = run(&db, &path, Entity::Customers, Some(&customers), 0.05).await;
        assert_eq!((r.loaded, r.duplicates), (2, 1));
        assert_eq!(
            count(
                &db,
                "SELECT signup_at FROM customers WHERE customer_id = '12346'"
            )
            .await,
            1_259_744_400,
            "2009-12-02 09:00 UTC, the first row"
        );
    });
}
