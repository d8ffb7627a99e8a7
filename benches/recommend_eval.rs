//! Offline evaluation of the recommenders on UCI Online Retail II
//! (2009-2010), plus synthetic timing runs.
//!
//! cargo bench --bench recommend_eval                 # quality table + seed timing
//! cargo bench --bench recommend_eval -- --scale      # also 1M x 200k synthetic timing
//! cargo bench --bench recommend_eval -- --json       # also a JSON dump of the table
//!
//! Data: `$PATRON_SHARED_DATA/purchases/online_retail_II_2009_2010.csv.gz`
//! (default `$CARGO_MANIFEST_DIR/../shared/data`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use patron::analytics::recommend::eval::{Metrics, evaluate, time_cutoff};
use patron::analytics::recommend::{
    Als, AlsParams, Content, ContentParams, Event, Exclude, HistoryScorer, Hybrid, Interaction,
    Interactions, ItemKnn, KnnParams, Popularity, Recommendation, tune_weights,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::time::Instant;

const SEED: u64 = 42;
const DEPTH: usize = 50; // candidates per source for the hybrid
const K: usize = 10;
const SOURCES: [&str; 5] = ["item-kNN", "ALS", "content", "popularity", "history"];

#[derive(Clone, Copy, Debug)]
struct Row {
    user: u32,
    item: u32,
    time: i64,
    qty: f32,
}

struct Data {
    rows: Vec<Row>,
    n_users: usize,
    n_items: usize,
    texts: Vec<String>,
    country: Vec<u32>,
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn load() -> Data {
    let dir = std::env::var("PATRON_SHARED_DATA")
        .unwrap_or_else(|_| format!("{}/../shared/data", env!("CARGO_MANIFEST_DIR")));
    let path = format!("{dir}/purchases/online_retail_II_2009_2010.csv.gz");
    let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(f)
        .read_to_string(&mut text)
        .unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let h = rdr.headers().unwrap().clone();
    let col = |names: &[&str]| {
        h.iter()
            .position(|x| names.contains(&x))
            .unwrap_or_else(|| panic!("no column {names:?}"))
    };
    let (c_inv, c_code, c_desc, c_qty, c_date, c_price, c_cust, c_country) = (
        col(&["InvoiceNo", "Invoice"]),
        col(&["StockCode"]),
        col(&["Description"]),
        col(&["Quantity"]),
        col(&["InvoiceDate"]),
        col(&["UnitPrice", "Price"]),
        col(&["CustomerID", "Customer ID"]),
        col(&["Country"]),
    );
    struct Raw {
        cust: u64,
        code: String,
        desc: String,
        qty: f32,
        time: i64,
        country: String,
    }
    let code_ok = |c: &str| {
        let b = c.as_bytes();
        b.len() >= 5
            && b[..5].iter().all(u8::is_ascii_digit)
            && b[5..].iter().all(u8::is_ascii_alphabetic)
    };
    let mut raws = Vec::new();
    for rec in rdr.records() {
        let r = rec.unwrap();
        let cust = r[c_cust].trim();
        let inv = r[c_inv].trim();
        if cust.is_empty() || inv.starts_with('C') || inv.starts_with('A') {
            continue;
        }
        let qty: f64 = r[c_qty].trim().parse().unwrap_or(0.0);
        let price: f64 = r[c_price].trim().parse().unwrap_or(0.0);
        let code = r[c_code].trim();
        if qty <= 0.0 || price <= 0.0 || !code_ok(code) {
            continue;
        }
        let time = chrono::NaiveDateTime::parse_from_str(r[c_date].trim(), "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc()
            .timestamp();
        raws.push(Raw {
            cust: cust.parse::<f64>().unwrap() as u64,
            code: code.to_string(),
            desc: r[c_desc].trim().to_string(),
            qty: qty as f32,
            time,
            country: r[c_country].trim().to_string(),
        });
    }
    let custs: BTreeMap<u64, u32> = raws
        .iter()
        .map(|r| r.cust)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .enumerate()
        .map(|(i, c)| (c, i as u32))
        .collect();
    let codes: BTreeMap<String, u32> = raws
        .iter()
        .map(|r| r.code.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .enumerate()
        .map(|(i, c)| (c, i as u32))
        .collect();
    let countries: BTreeMap<String, u32> = raws
        .iter()
        .map(|r| r.country.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .enumerate()
        .map(|(i, c)| (c, i as u32))
        .collect();
    let mut descs: Vec<BTreeMap<String, usize>> = vec![BTreeMap::new(); codes.len()];
    let mut country = vec![0u32; custs.len()];
    let rows = raws
        .iter()
        .map(|r| {
            let item = codes[&r.code];
            *descs[item as usize].entry(r.desc.clone()).or_insert(0) += 1;
            let user = custs[&r.cust];
            country[user as usize] = countries[&r.country];
            Row {
                user,
                item,
                time: r.time,
                qty: r.qty,
            }
        })
        .collect();
    let texts = descs
        .into_iter()
        .map(|d| {
            d.into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
                .map(|p| p.0)
                .unwrap_or_default()
        })
        .collect();
    Data {
        rows,
        n_users: custs.len(),
        n_items: codes.len(),
        texts,
        country,
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Weighting {
    /// number of purchase lines
    Count,
    Quantity,
    Binary,
    LogCount,
    LogQuantity,
}
const WEIGHTINGS: [Weighting; 5] = [
    Weighting::Count,
    Weighting::Quantity,
    Weighting::Binary,
    Weighting::LogCount,
    Weighting::LogQuantity,
];

fn interactions(rows: &[Row], n_users: usize, n_items: usize, w: Weighting) -> Interactions {
    let x: Vec<Interaction> = rows
        .iter()
        .map(|r| Interaction {
            user: r.user,
            item: r.item,
            weight: match w {
                Weighting::Quantity | Weighting::LogQuantity => r.qty,
                _ => 1.0,
            },
        })
        .collect();
    let m = Interactions::new(n_users, n_items, &x);
    match w {
        Weighting::Binary => m.map_weights(|_| 1.0),
        Weighting::LogCount | Weighting::LogQuantity => m.map_weights(f32::ln_1p),
        _ => m,
    }
}

/// Per evaluated user: candidate lists per source, for one exclusion mode.
type Cands = Vec<Vec<Vec<Recommendation>>>;

struct Fitted {
    knn: ItemKnn,
    als: Als,
    content: Content,
    pop: Popularity,
    history: HistoryScorer,
    m: Interactions,
    mk: Interactions,
    events: Vec<Vec<Event>>,
    times: Vec<(&'static str, f64)>,
}

fn fit_all(
    data: &Data,
    train: &[Row],
    als_params: AlsParams,
    half_life_days: f64,
    kw: Weighting,
    iuf_a: f32,
    knn_params: KnnParams,
) -> Fitted {
    let mut times = Vec::new();
    let t = Instant::now();
    let m = interactions(train, data.n_users, data.n_items, Weighting::Count);
    let mk = iuf(&interactions(train, data.n_users, data.n_items, kw), iuf_a);
    times.push(("matrices", t.elapsed().as_secs_f64()));
    let t = Instant::now();
    let knn = ItemKnn::fit_with(&mk, knn_params);
    times.push(("item-kNN fit", t.elapsed().as_secs_f64()));
    let t = Instant::now();
    let als = Als::fit(&m, als_params, SEED);
    times.push(("ALS fit", t.elapsed().as_secs_f64()));
    let t = Instant::now();
    let content = Content::fit(&data.texts, ContentParams::default());
    times.push(("content fit", t.elapsed().as_secs_f64()));
    let t = Instant::now();
    let pop = Popularity::fit(&m, Some(&data.country));
    times.push(("popularity fit", t.elapsed().as_secs_f64()));
    let events = events_by_user(train, data.n_users);
    Fitted {
        knn,
        als,
        content,
        pop,
        history: HistoryScorer {
            half_life: half_life_days * 86_400.0,
        },
        m,
        mk,
        events,
        times,
    }
}

/// Scales every user's row by `deg(u)^-a` (a = 0: unchanged).
fn iuf(m: &Interactions, a: f32) -> Interactions {
    patron::analytics::recommend::serve::down_weight_active_users(m, a)
}

fn events_by_user(rows: &[Row], n_users: usize) -> Vec<Vec<Event>> {
    let mut events = vec![Vec::new(); n_users];
    for r in rows {
        events[r.user as usize].push(Event {
            item: r.item,
            time: r.time,
            weight: 1.0,
        });
    }
    events
}

/// Per item, the recency weight `0.5^(age / half_life)` of its latest purchase.
fn recency_history(events: &[Event], now: i64, half_life_days: f64) -> Vec<(u32, f32)> {
    let mut m: BTreeMap<u32, f32> = BTreeMap::new();
    for e in events {
        let w = 0.5f64.powf((now - e.time) as f64 / (half_life_days * 86_400.0)) as f32;
        let x = m.entry(e.item).or_insert(0.0);
        *x = x.max(w);
    }
    m.into_iter().collect()
}

fn candidates(
    f: &Fitted,
    data: &Data,
    users: &[u32],
    now: i64,
    repeat: bool,
    depth: usize,
    knn_hl: f64,
) -> Cands {
    let ex = if repeat {
        Exclude::repeat_allowed()
    } else {
        Exclude::new_items()
    };
    users
        .par_iter()
        .map(|&u| {
            let h = f.m.user_history(u);
            let ones: Vec<(u32, f32)> = h.iter().map(|&(i, _)| (i, 1.0)).collect();
            vec![
                if knn_hl > 0.0 {
                    f.knn.recommend(
                        &recency_history(&f.events[u as usize], now, knn_hl),
                        depth,
                        &ex,
                    )
                } else {
                    f.knn.recommend(&f.mk.user_history(u), depth, &ex)
                },
                f.als.recommend(u, &h, depth, &ex),
                f.content.recommend(&ones, depth, &ex),
                f.pop
                    .recommend(Some(data.country[u as usize]), &h, depth, &ex),
                f.history.recommend(&f.events[u as usize], now, depth, &ex),
            ]
        })
        .collect()
}

/// (users, relevant-per-user) for a period: users with training history and a
/// test item; in "new items" mode training items are removed from targets.
fn targets(train: &[Row], test: &[Row], n_users: usize, repeat: bool) -> (Vec<u32>, Vec<Vec<u32>>) {
    let mut bought = vec![BTreeSet::new(); n_users];
    for r in train {
        bought[r.user as usize].insert(r.item);
    }
    let mut rel = vec![BTreeSet::new(); n_users];
    for r in test {
        if repeat || !bought[r.user as usize].contains(&r.item) {
            rel[r.user as usize].insert(r.item);
        }
    }
    let users: Vec<u32> = (0..n_users as u32)
        .filter(|&u| !bought[u as usize].is_empty() && !rel[u as usize].is_empty())
        .collect();
    let relevant = users
        .iter()
        .map(|&u| rel[u as usize].iter().copied().collect())
        .collect();
    (users, relevant)
}

fn items_of(recs: &[Recommendation]) -> Vec<u32> {
    recs.iter().take(K).map(|r| r.item).collect()
}

const GRID: [f32; 5] = [0.0, 0.1, 0.25, 0.5, 1.0];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let json = args.iter().any(|a| a == "--json");
    let scale = args.iter().any(|a| a == "--scale");
    let only_scale = args.iter().any(|a| a == "--only-scale");
    rayon::ThreadPoolBuilder::new().build_global().ok();
    println!("threads: {}", rayon::current_num_threads());
    if !only_scale {
        quality(json);
        seed_timing();
    }
    if scale || only_scale {
        scale_timing();
    }
}

fn quality(json: bool) {
    let t0 = Instant::now();
    let data = load();
    println!(
        "loaded {} clean rows, {} customers, {} items in {:.2}s",
        data.rows.len(),
        data.n_users,
        data.n_items,
        t0.elapsed().as_secs_f64()
    );
    let cutoff = time_cutoff(data.rows.iter().map(|r| r.time), 0.8).unwrap();
    let (train, test): (Vec<Row>, Vec<Row>) = data.rows.iter().partition(|r| r.time < cutoff);
    let vcut = time_cutoff(train.iter().map(|r| r.time), 0.8).unwrap();
    let (vtrain, vtest): (Vec<Row>, Vec<Row>) = train.iter().partition(|r| r.time < vcut);
    let fmt = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .unwrap()
            .naive_utc()
            .to_string()
    };
    println!(
        "test cutoff {} ; validation cutoff {}",
        fmt(cutoff),
        fmt(vcut)
    );
    let als_params = AlsParams {
        factors: 64,
        regularization: 0.01,
        alpha: 1.0,
        iterations: 15,
        cg_steps: 3,
    };
    let half_life = 60.0;

    // ---- validation: fit on the early training period, tune hybrid weights
    let t = Instant::now();
    // item-kNN weighting chosen on validation (new-items NDCG@10)
    let (vusers, vrel) = targets(&vtrain, &vtest, data.n_users, false);
    let mut best_w = (Weighting::Count, f64::NEG_INFINITY);
    for w in WEIGHTINGS {
        let mk = interactions(&vtrain, data.n_users, data.n_items, w);
        let knn = ItemKnn::fit(&mk, 50);
        let ex = Exclude::new_items();
        let r: Vec<Vec<u32>> = vusers
            .par_iter()
            .map(|&u| items_of(&knn.recommend(&mk.user_history(u), K, &ex)))
            .collect();
        let m = evaluate(&r, &vrel, K, data.n_items);
        println!(
            "validation item-kNN weighting {w:?}: NDCG@10 new items {:.4}",
            m.ndcg
        );
        if m.ndcg > best_w.1 {
            best_w = (w, m.ndcg);
        }
    }
    let kw = best_w.0;
    // down-weight very active users (inverse user frequency, w = deg^-a)
    let mut best_iuf = (0.0f32, best_w.1);
    for a in [0.15f32, 0.25, 0.35, 0.5] {
        let mk = iuf(&interactions(&vtrain, data.n_users, data.n_items, kw), a);
        let knn = ItemKnn::fit(&mk, 50);
        let ex = Exclude::new_items();
        let r: Vec<Vec<u32>> = vusers
            .par_iter()
            .map(|&u| items_of(&knn.recommend(&mk.user_history(u), K, &ex)))
            .collect();
        let m = evaluate(&r, &vrel, K, data.n_items);
        println!(
            "validation item-kNN {kw:?} with user weight deg^-{a}: NDCG@10 new items {:.4}",
            m.ndcg
        );
        if m.ndcg > best_iuf.1 {
            best_iuf = (a, m.ndcg);
        }
    }
    let iuf_a = best_iuf.0;
    let vmk = iuf(
        &interactions(&vtrain, data.n_users, data.n_items, kw),
        iuf_a,
    );
    let mut best_k = (50usize, best_iuf.1);
    for k in [100usize, 200] {
        let knn = ItemKnn::fit(&vmk, k);
        let ex = Exclude::new_items();
        let r: Vec<Vec<u32>> = vusers
            .par_iter()
            .map(|&u| items_of(&knn.recommend(&vmk.user_history(u), K, &ex)))
            .collect();
        let m = evaluate(&r, &vrel, K, data.n_items);
        println!("validation item-kNN K={k}: NDCG@10 new items {:.4}", m.ndcg);
        if m.ndcg > best_k.1 {
            best_k = (k, m.ndcg);
        }
    }
    let knn_k = best_k.0;
    let mut best_sp = ((0.0f32, 1.0f32), best_k.1);
    for (shrink, power) in [(0.0f32, 2.0f32), (0.0, 0.5), (5.0, 1.0), (20.0, 1.0)] {
        let knn = ItemKnn::fit_with(
            &vmk,
            KnnParams {
                k: knn_k,
                shrink,
                power,
            },
        );
        let ex = Exclude::new_items();
        let r: Vec<Vec<u32>> = vusers
            .par_iter()
            .map(|&u| items_of(&knn.recommend(&vmk.user_history(u), K, &ex)))
            .collect();
        let m = evaluate(&r, &vrel, K, data.n_items);
        println!(
            "validation item-kNN shrink {shrink} power {power}: NDCG@10 new items {:.4}",
            m.ndcg
        );
        if m.ndcg > best_sp.1 {
            best_sp = ((shrink, power), m.ndcg);
        }
    }
    let (knn_shrink, knn_power) = best_sp.0;
    let knn_params = KnnParams {
        k: knn_k,
        shrink: knn_shrink,
        power: knn_power,
    };
    // recency-weighted history for item-kNN scoring (similarity unchanged)
    let vknn = ItemKnn::fit_with(&vmk, knn_params);
    let vev = events_by_user(&vtrain, data.n_users);
    let mut best_hl = (0.0, best_sp.1);
    for hl in [15.0, 30.0, 60.0, 120.0, 240.0] {
        let ex = Exclude::new_items();
        let r: Vec<Vec<u32>> = vusers
            .par_iter()
            .map(|&u| {
                items_of(&vknn.recommend(&recency_history(&vev[u as usize], vcut, hl), K, &ex))
            })
            .collect();
        let m = evaluate(&r, &vrel, K, data.n_items);
        println!(
            "validation item-kNN {kw:?} + recency-weighted history (half-life {hl} d): NDCG@10 new items {:.4}",
            m.ndcg
        );
        if m.ndcg > best_hl.1 {
            best_hl = (hl, m.ndcg);
        }
    }
    let knn_hl = best_hl.0;
    println!(
        "chosen item-kNN: K={knn_k}, shrink {knn_shrink}, power {knn_power}, {kw:?} weights x deg^-{iuf_a}, history half-life {knn_hl} d (0 = plain weights)"
    );
    // ALS confidence scaling chosen on validation (peer setting alpha = 1 first)
    let vm = interactions(&vtrain, data.n_users, data.n_items, Weighting::Count);
    let mut best_als = (als_params, f64::NEG_INFINITY);
    for (alpha, reg) in [(1.0f32, 0.01f32), (4.0, 0.01), (16.0, 0.01), (4.0, 1.0)] {
        let p = AlsParams {
            alpha,
            regularization: reg,
            ..als_params
        };
        let als = Als::fit(&vm, p, SEED);
        let r: Vec<Vec<Recommendation>> =
            als.recommend_users(&vm, &vusers, K, &Exclude::new_items());
        let r: Vec<Vec<u32>> = r.iter().map(|l| items_of(l)).collect();
        let m = evaluate(&r, &vrel, K, data.n_items);
        println!(
            "validation ALS alpha {alpha} reg {reg}: NDCG@10 new items {:.4}",
            m.ndcg
        );
        if m.ndcg > best_als.1 {
            best_als = (p, m.ndcg);
        }
    }
    let peer_als = als_params;
    let als_params = best_als.0;
    let fv = fit_all(&data, &vtrain, als_params, half_life, kw, iuf_a, knn_params);
    let mut tuned = Vec::new();
    for repeat in [false, true] {
        let (users, rel) = targets(&vtrain, &vtest, data.n_users, repeat);
        let c = candidates(&fv, &data, &users, vcut, repeat, DEPTH, knn_hl);
        let (w, nd) = tune_weights(&c, &rel, &GRID, K);
        println!(
            "validation ({}): {} users, tuned weights {:?} (NDCG@10 {:.4})",
            if repeat {
                "repeat allowed"
            } else {
                "new items"
            },
            users.len(),
            SOURCES.iter().zip(&w.0).collect::<Vec<_>>(),
            nd
        );
        tuned.push(w);
    }
    println!("validation fit + tuning: {:.2}s", t.elapsed().as_secs_f64());

    // ---- test: refit on the full training period
    let t = Instant::now();
    let f = fit_all(&data, &train, als_params, half_life, kw, iuf_a, knn_params);
    let fit_s = t.elapsed().as_secs_f64();
    let peers: [(&str, [f64; 6]); 4] = [
        ("popularity", [0.046, 0.018, 0.052, 0.112, 0.036, 0.135]),
        ("item-kNN", [0.083, 0.045, 0.098, 0.201, 0.072, 0.214]),
        ("content", [0.051, 0.031, 0.061, 0.113, 0.040, 0.124]),
        ("ALS", [0.092, 0.048, 0.107, 0.269, 0.109, 0.309]),
    ];
    let mut results: BTreeMap<String, [Metrics; 2]> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut rec_s = 0.0;
    let mut put = |name: &str, mode: usize, m: Metrics, order: &mut Vec<String>| {
        if !order.iter().any(|o| o == name) {
            order.push(name.to_string());
        }
        results
            .entry(name.to_string())
            .or_insert([Metrics::default(); 2])[mode] = m;
    };
    let mut n_eval = [0usize; 2];
    for (mode, repeat) in [false, true].into_iter().enumerate() {
        let (users, rel) = targets(&train, &test, data.n_users, repeat);
        n_eval[mode] = users.len();
        let t = Instant::now();
        let c = candidates(&f, &data, &users, cutoff, repeat, DEPTH, knn_hl);
        let ex = if repeat {
            Exclude::repeat_allowed()
        } else {
            Exclude::new_items()
        };
        let overall: Vec<Vec<u32>> = users
            .iter()
            .map(|&u| items_of(&f.pop.recommend(None, &f.m.user_history(u), K, &ex)))
            .collect();
        let hybrid = Hybrid::new(tuned[mode].0.clone());
        let hyb: Vec<Vec<Recommendation>> = c.iter().map(|l| hybrid.combine(l, K)).collect();
        rec_s += t.elapsed().as_secs_f64();
        put(
            "popularity",
            mode,
            evaluate(&overall, &rel, K, data.n_items),
            &mut order,
        );
        for (s, name) in SOURCES.iter().enumerate() {
            let recs: Vec<Vec<u32>> = c.iter().map(|l| items_of(&l[s])).collect();
            let name = match *name {
                "popularity" => "popularity (country)".to_string(),
                "ALS" => format!(
                    "ALS (64 f, alpha {}, reg {})",
                    als_params.alpha, als_params.regularization
                ),
                "item-kNN" => format!(
                    "item-kNN ({kw:?}, K={knn_k}, shrink {knn_shrink}, power {knn_power}, user weight deg^-{iuf_a}, history half-life {knn_hl} d)"
                ),
                _ => name.to_string(),
            };
            let name = name.as_str();
            put(
                name,
                mode,
                evaluate(&recs, &rel, K, data.n_items),
                &mut order,
            );
        }
        let recs: Vec<Vec<u32>> = hyb.iter().map(|l| items_of(l)).collect();
        put(
            "hybrid (tuned on validation)",
            mode,
            evaluate(&recs, &rel, K, data.n_items),
            &mut order,
        );
        if mode == 0
            && let Some((u, r)) = users.iter().zip(&hyb).next()
        {
            println!("example (new items), user {u}:");
            for x in r.iter().take(3) {
                println!(
                    "  item {} {:?} score {:.3} source {:?} because {:?}",
                    x.item,
                    data.texts[x.item as usize],
                    x.score,
                    x.source,
                    x.because.map(|b| data.texts[b as usize].clone())
                );
            }
        }
    }
    // weighting variant: quantity instead of purchase counts for kNN / ALS
    let mq_log = interactions(&train, data.n_users, data.n_items, Weighting::LogQuantity);
    let mc = interactions(&train, data.n_users, data.n_items, Weighting::Count);
    let knn_q = ItemKnn::fit(&mc, 50);
    let als_q = Als::fit(&mq_log, peer_als, SEED);
    for (mode, repeat) in [false, true].into_iter().enumerate() {
        let (users, rel) = targets(&train, &test, data.n_users, repeat);
        let ex = if repeat {
            Exclude::repeat_allowed()
        } else {
            Exclude::new_items()
        };
        let a: Vec<Vec<u32>> = users
            .par_iter()
            .map(|&u| items_of(&knn_q.recommend(&mc.user_history(u), K, &ex)))
            .collect();
        put(
            "item-kNN (Count)",
            mode,
            evaluate(&a, &rel, K, data.n_items),
            &mut order,
        );
        let b: Vec<Vec<u32>> = users
            .par_iter()
            .map(|&u| items_of(&als_q.recommend(u, &mq_log.user_history(u), K, &ex)))
            .collect();
        put(
            "ALS (log1p quantity, alpha 1)",
            mode,
            evaluate(&b, &rel, K, data.n_items),
            &mut order,
        );
    }

    println!();
    println!(
        "Online Retail II 2009-2010, time split at {} ; evaluated users: new items {}, repeat allowed {}",
        fmt(cutoff),
        n_eval[0],
        n_eval[1]
    );
    println!();
    println!(
        "| model | new items P@10 / R@10 / NDCG@10 | cov | repeat allowed P@10 / R@10 / NDCG@10 | cov | peer new items | peer repeat |"
    );
    println!("|---|---|---|---|---|---|---|");
    let peer = |name: &str| peers.iter().find(|p| name.starts_with(p.0)).map(|p| p.1);
    for name in &order {
        let [a, b] = results[name];
        let (pn, pr) = match peer(name) {
            Some(p)
                if !name.contains("(log1p")
                    && !name.starts_with("popularity (")
                    && !name.starts_with("item-kNN (Count)") =>
            {
                (
                    format!("{:.3} / {:.3} / {:.3}", p[0], p[1], p[2]),
                    format!("{:.3} / {:.3} / {:.3}", p[3], p[4], p[5]),
                )
            }
            _ => ("".into(), "".into()),
        };
        println!(
            "| {name} | {:.3} / {:.3} / {:.3} | {:.3} | {:.3} / {:.3} / {:.3} | {:.3} | {pn} | {pr} |",
            a.precision, a.recall, a.ndcg, a.coverage, b.precision, b.recall, b.ndcg, b.coverage
        );
    }
    println!();
    for (n, s) in &f.times {
        println!("timing: {n} {s:.3}s");
    }
    println!(
        "timing: full-train fit total {fit_s:.2}s ; candidates (5 sources x top-{DEPTH}) + hybrid, both modes: {rec_s:.2}s"
    );
    println!(
        "timing: quality section total {:.2}s",
        t0.elapsed().as_secs_f64()
    );
    if json {
        let out: BTreeMap<&String, serde_json::Value> = results
            .iter()
            .map(|(k, v)| {
                (
                    k,
                    serde_json::json!({"new_items": v[0], "repeat_allowed": v[1]}),
                )
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out).unwrap());
    }
}

/// Zipf-like sampler over `n` ranks with exponent `s` (CDF + binary search).
struct Zipf(Vec<f64>);
impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut c = Vec::with_capacity(n);
        let mut acc = 0.0;
        for r in 1..=n {
            acc += 1.0 / (r as f64).powf(s);
            c.push(acc);
        }
        for x in c.iter_mut() {
            *x /= acc;
        }
        Zipf(c)
    }
    fn sample(&self, rng: &mut impl Rng) -> u32 {
        let u: f64 = rng.random();
        self.0.partition_point(|&c| c < u).min(self.0.len() - 1) as u32
    }
}

fn synthetic(
    n_users: usize,
    n_items: usize,
    n_inter: usize,
    seed: u64,
) -> (Vec<Interaction>, Vec<String>) {
    let items = Zipf::new(n_items, 0.9);
    let per_user = n_inter as f64 / n_users as f64;
    let chunk = 10_000;
    let x: Vec<Interaction> = (0..n_users.div_ceil(chunk))
        .into_par_iter()
        .flat_map_iter(|c| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (c as u64).wrapping_mul(0x9E37_79B9));
            let mut out = Vec::new();
            for u in c * chunk..((c + 1) * chunk).min(n_users) {
                // geometric-ish activity with the right mean
                let d =
                    (1.0 + (-(1.0 - rng.random::<f64>()).ln()) * (per_user - 1.0)).round() as usize;
                for _ in 0..d {
                    out.push(Interaction {
                        user: u as u32,
                        item: items.sample(&mut rng),
                        weight: 1.0,
                    });
                }
            }
            out
        })
        .collect();
    let words = Zipf::new(20_000, 1.0);
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 1);
    let texts = (0..n_items)
        .map(|_| {
            let n = 4 + (rng.random::<u32>() % 6) as usize;
            (0..n)
                .map(|_| format!("w{}", words.sample(&mut rng)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    (x, texts)
}

fn seed_timing() {
    println!();
    println!("## seed case: 10k users x 100k items, 100k interactions (synthetic Zipf)");
    let (x, texts) = synthetic(10_000, 100_000, 100_000, 7);
    let t_all = Instant::now();
    let m = Interactions::new(10_000, 100_000, &x);
    let t = Instant::now();
    let knn = ItemKnn::fit(&m, 50);
    let knn_fit = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let als = Als::fit(
        &m,
        AlsParams {
            factors: 32,
            iterations: 5,
            ..AlsParams::default()
        },
        SEED,
    );
    let als_fit = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let content = Content::fit(&texts, ContentParams::default());
    let content_fit = t.elapsed().as_secs_f64();
    let pop = Popularity::fit(&m, None);
    let t = Instant::now();
    let ex = Exclude::new_items();
    let users: Vec<u32> = (0..10_000).collect();
    let r1 = knn.recommend_all(&m, K, &ex);
    let knn_rec = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let r2 = als.recommend_users(&m, &users, K, &ex);
    let als_rec = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let r3: Vec<Vec<Recommendation>> = users
        .par_iter()
        .map(|&u| content.recommend(&m.user_history(u), K, &ex))
        .collect();
    let r4: Vec<Vec<Recommendation>> = users
        .par_iter()
        .map(|&u| pop.recommend(None, &m.user_history(u), K, &ex))
        .collect();
    let cp_rec = t.elapsed().as_secs_f64();
    let total = t_all.elapsed().as_secs_f64();
    println!(
        "| item-kNN fit {knn_fit:.3}s + top-10 {knn_rec:.3}s | ALS(32f, 5 it) fit {als_fit:.3}s + top-10 {als_rec:.3}s | content fit {content_fit:.3}s, content+popularity top-10 {cp_rec:.3}s | total {total:.3}s | {} lists |",
        r1.len() + r2.len() + r3.len() + r4.len()
    );
}

fn scale_timing() {
    println!();
    println!("## scale case: 1M users x 200k items, ~10M interactions (synthetic Zipf)");
    let (n_users, n_items) = (1_000_000usize, 200_000usize);
    let t = Instant::now();
    let (x, texts) = synthetic(n_users, n_items, 10_000_000, 11);
    println!(
        "generated {} interactions in {:.1}s, peak RSS {:.0} MB",
        x.len(),
        t.elapsed().as_secs_f64(),
        peak_rss_mb()
    );
    let t = Instant::now();
    let m = Interactions::new(n_users, n_items, &x);
    drop(x);
    println!(
        "matrix: nnz {} built in {:.1}s ({} MB), peak RSS {:.0} MB",
        m.nnz(),
        t.elapsed().as_secs_f64(),
        m.heap_bytes() >> 20,
        peak_rss_mb()
    );
    let ex = Exclude::new_items();
    let t = Instant::now();
    let knn = ItemKnn::fit(&m, 50);
    let fit = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let r = knn.recommend_all(&m, K, &ex);
    println!(
        "item-kNN (K=50): fit {fit:.1}s, top-10 for all {} users {:.1}s, total {:.1}s, peak RSS {:.0} MB",
        r.len(),
        t.elapsed().as_secs_f64(),
        fit + t.elapsed().as_secs_f64(),
        peak_rss_mb()
    );
    drop(r);
    drop(knn);
    let t = Instant::now();
    let content = Content::fit(&texts, ContentParams::default());
    let fit = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let r: Vec<Vec<Recommendation>> = (0..n_users as u32)
        .into_par_iter()
        .map_init(
            || patron::analytics::recommend::Accumulator::new(n_items),
            |acc, u| content.recommend_with(acc, &m.user_history(u), K, &ex),
        )
        .collect();
    println!(
        "content (TF-IDF, K=50): fit {fit:.1}s, top-10 for all {} users {:.1}s, peak RSS {:.0} MB",
        r.len(),
        t.elapsed().as_secs_f64(),
        peak_rss_mb()
    );
    drop(r);
    drop(content);
    let sample: Vec<u32> = (0..n_users as u32).step_by(100).collect();
    for factors in [32usize, 64] {
        let iterations = 3;
        let t = Instant::now();
        let mut per_it = Vec::new();
        let als = Als::fit_with(
            &m,
            AlsParams {
                factors,
                iterations,
                ..AlsParams::default()
            },
            SEED,
            |_, _| {
                per_it.push(t.elapsed().as_secs_f64());
            },
        );
        let fit = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let r = als.recommend_users(&m, &sample, K, &ex);
        let s = t.elapsed().as_secs_f64();
        println!(
            "ALS {factors} factors, {iterations} iterations (CG 3): fit {fit:.1}s (cumulative per iteration {:?}), brute-force top-10 for {} sampled users {s:.1}s -> all 1M users ~{:.0}s, peak RSS {:.0} MB",
            per_it.iter().map(|x| format!("{x:.1}")).collect::<Vec<_>>(),
            r.len(),
            s * n_users as f64 / r.len() as f64,
            peak_rss_mb()
        );
    }
    let _ = HashMap::<u8, u8>::new();
}
