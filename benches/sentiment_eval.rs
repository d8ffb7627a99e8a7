//! Sentiment quality benchmark against human-rated data.
//!
//! `cargo bench --bench sentiment_eval [-- --json]`
//!
//! Reads `$PATRON_SHARED_DATA` (default `$CARGO_MANIFEST_DIR/../shared/data`):
//! `sentiment/{movieReviewSnippets,nytEditorialSnippets,tweets}_GroundTruth.txt`
//! and `reviews/womens_clothing_ecommerce_reviews.csv`.
//!
//! For each file: (a) the lexicon scorer alone, (b) lexicon + classifier blend
//! with the classifier evaluated by 5-fold cross-validation within the file.
//! In each outer fold the blend weight is chosen on the training folds only
//! (inner 4-fold out-of-fold classifier scores), then the classifier is
//! trained on all training folds and scores the held-out fold.
//!
//! `--timing-only` skips the quality tables; `SENTI_DIAG=1` prints confusion
//! matrices to stderr.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// In patron this line reads `use patron::analytics::sentiment;`.
use patron::analytics::sentiment;

use sentiment::{Classifier, ClassifierParams, Label, LexiconScorer, Sentiment, label_of};
use std::path::PathBuf;
use std::time::Instant;

struct Dataset {
    name: &'static str,
    texts: Vec<String>,
    /// Mean human rating (-4..4) or star rating (1..5).
    human: Vec<f64>,
    labels: Vec<Label>,
    stars: bool,
    vader: [f64; 4],
}

fn data_dir() -> PathBuf {
    match std::env::var_os("PATRON_SHARED_DATA") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
    }
}

fn human_label(mean: f64) -> Label {
    if mean > 0.05 {
        Label::Positive
    } else if mean < -0.05 {
        Label::Negative
    } else {
        Label::Neutral
    }
}

fn load_snippets(name: &'static str, file: &str, vader: [f64; 4]) -> Dataset {
    let path = data_dir().join("sentiment").join(file);
    let raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (mut texts, mut human) = (Vec::new(), Vec::new());
    for line in raw.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, '\t');
        let (_id, mean, text) = (parts.next(), parts.next(), parts.next());
        let (Some(mean), Some(text)) = (mean, text) else {
            continue;
        };
        let Ok(mean) = mean.trim().parse::<f64>() else {
            continue;
        };
        texts.push(text.to_string());
        human.push(mean);
    }
    let labels = human.iter().map(|&m| human_label(m)).collect();
    Dataset {
        name,
        texts,
        human,
        labels,
        stars: false,
        vader,
    }
}

fn load_clothing() -> Dataset {
    let path = data_dir().join("reviews/womens_clothing_ecommerce_reviews.csv");
    let mut rdr =
        csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = rdr.headers().unwrap().clone();
    let col = |n: &str| headers.iter().position(|h| h == n).unwrap();
    let (ti, ri, si) = (col("Title"), col("Review Text"), col("Rating"));
    let (mut texts, mut human, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    for rec in rdr.records() {
        let rec = rec.unwrap();
        let review = rec.get(ri).unwrap_or("").trim();
        if review.is_empty() {
            continue;
        }
        let stars: u8 = rec.get(si).unwrap().trim().parse().unwrap();
        let title = rec.get(ti).unwrap_or("").trim();
        texts.push(format!("{title} {review}"));
        human.push(f64::from(stars));
        labels.push(match stars {
            4 | 5 => Label::Positive,
            3 => Label::Neutral,
            _ => Label::Negative,
        });
    }
    Dataset {
        name: "clothing",
        texts,
        human,
        labels,
        stars: true,
        vader: [0.782, 0.424, 0.889, f64::NAN],
    }
}

#[derive(Clone, Copy, Default, serde::Serialize)]
struct Metrics {
    acc3: f64,
    macro_f1: f64,
    binary: f64,
    pearson: f64,
}

impl Metrics {
    fn sum(&self) -> f64 {
        self.acc3
            + self.macro_f1
            + self.binary
            + if self.pearson.is_finite() {
                self.pearson
            } else {
                0.0
            }
    }
}

fn idx(l: Label) -> usize {
    match l {
        Label::Positive => 0,
        Label::Neutral => 1,
        Label::Negative => 2,
    }
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    sab / (saa.sqrt() * sbb.sqrt())
}

fn metrics(scores: &[f64], human: &[f64], labels: &[Label]) -> Metrics {
    let mut conf = [[0usize; 3]; 3];
    let (mut bin_ok, mut bin_n) = (0usize, 0usize);
    for (&s, &l) in scores.iter().zip(labels) {
        let p = label_of(s);
        conf[idx(l)][idx(p)] += 1;
        if l != Label::Neutral {
            bin_n += 1;
            if p == l {
                bin_ok += 1;
            }
        }
    }
    let n = scores.len() as f64;
    let acc3 = (0..3).map(|k| conf[k][k]).sum::<usize>() as f64 / n;
    let mut f1 = 0.0;
    for (k, row) in conf.iter().enumerate() {
        let tp = row[k] as f64;
        let pred: f64 = conf.iter().map(|r| r[k] as f64).sum();
        let act: f64 = row.iter().sum::<usize>() as f64;
        if tp > 0.0 {
            let (p, r) = (tp / pred, tp / act);
            f1 += 2.0 * p * r / (p + r);
        }
    }
    Metrics {
        acc3,
        macro_f1: f1 / 3.0,
        binary: bin_ok as f64 / bin_n.max(1) as f64,
        pearson: pearson(scores, human),
    }
}

/// Deterministic fold assignment.
fn folds(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut s = seed | 1;
    for i in (1..n).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        order.swap(i, (s % (i as u64 + 1)) as usize);
    }
    let mut f = vec![0; n];
    for (pos, &i) in order.iter().enumerate() {
        f[i] = pos % k;
    }
    f
}

fn train(ds: &Dataset, rows: &[usize], params: &ClassifierParams) -> Classifier {
    let texts: Vec<&str> = rows.iter().map(|&i| ds.texts[i].as_str()).collect();
    if ds.stars {
        let r: Vec<u8> = rows.iter().map(|&i| ds.human[i] as u8).collect();
        Classifier::train(&texts, &r, params).unwrap()
    } else {
        let t: Vec<f64> = rows
            .iter()
            .map(|&i| (ds.human[i] / 4.0).clamp(-1.0, 1.0))
            .collect();
        Classifier::train_scores(&texts, &t, params).unwrap()
    }
}

fn blend(w: f64, silent: f64, gain: f64, lex: f64, clf: f64) -> f64 {
    // Same as Classifier::with_gain: tanh(gain * atanh(score)).
    let clf = (gain * clf.clamp(-0.999_999, 0.999_999).atanh()).tanh();
    let c = if lex == 0.0 && clf.abs() < silent {
        0.0
    } else {
        clf
    };
    (w * lex + (1.0 - w) * c).clamp(-1.0, 1.0)
}

/// Chooses the lexicon weight, silent scale and gain on `rows` only, by
/// inner out-of-fold scores.
fn choose_weight(
    ds: &Dataset,
    rows: &[usize],
    lex: &[f64],
    params: &ClassifierParams,
) -> (f64, f64, f64) {
    let inner = folds(rows.len(), 4, 0xabcdef);
    let mut oof = vec![0.0; rows.len()];
    for f in 0..4 {
        let tr: Vec<usize> = (0..rows.len())
            .filter(|&j| inner[j] != f)
            .map(|j| rows[j])
            .collect();
        let c = train(ds, &tr, params);
        for j in (0..rows.len()).filter(|&j| inner[j] == f) {
            oof[j] = c.score(&ds.texts[rows[j]]);
        }
    }
    let human: Vec<f64> = rows.iter().map(|&i| ds.human[i]).collect();
    let labels: Vec<Label> = rows.iter().map(|&i| ds.labels[i]).collect();
    // Objective: the smallest gain over the lexicon alone across the four
    // metrics (the blend should not lose on any), plus a little (10%) of the total.
    let lex_rows: Vec<f64> = rows.iter().map(|&i| lex[i]).collect();
    let base = metrics(&lex_rows, &human, &labels);
    let objective = |m: &Metrics| {
        let gains = [
            m.acc3 - base.acc3,
            m.macro_f1 - base.macro_f1,
            m.binary - base.binary,
            m.pearson - base.pearson,
        ];
        gains.iter().copied().fold(f64::INFINITY, f64::min) + 0.1 * m.sum()
    };
    let mut best = (f64::MIN, 1.0, 0.0, 1.0);
    for gain in [1.0, 1.5, 2.0, 3.0] {
        for silent in [0.0, 0.1, 0.2, 0.3, 0.5, 1.0] {
            for step in (0..=20).rev() {
                let w = f64::from(step) / 20.0;
                let s: Vec<f64> = rows
                    .iter()
                    .zip(&oof)
                    .map(|(&i, &c)| blend(w, silent, gain, lex[i], c))
                    .collect();
                let m = objective(&metrics(&s, &human, &labels));
                if m > best.0 + 1e-9 {
                    best = (m, w, silent, gain);
                }
            }
        }
    }
    (best.1, best.2, best.3)
}

struct Result {
    name: &'static str,
    n: usize,
    vader: [f64; 4],
    lexicon: Metrics,
    classifier: Metrics,
    blended: Metrics,
    weights: Vec<(f64, f64, f64)>,
    seconds: f64,
}

fn evaluate(ds: &Dataset, params: &ClassifierParams) -> Result {
    let t0 = Instant::now();
    let scorer = Sentiment::new(LexiconScorer::builtin(), None);
    let refs: Vec<&str> = ds.texts.iter().map(String::as_str).collect();
    let lex: Vec<f64> = scorer.score_many(&refs).iter().map(|s| s.score).collect();
    let n = ds.texts.len();
    let fold = folds(n, 5, 0x5eed_1234);
    let mut clf = vec![0.0; n];
    let mut blended = vec![0.0; n];
    let mut weights = Vec::new();
    for f in 0..5 {
        let tr: Vec<usize> = (0..n).filter(|&i| fold[i] != f).collect();
        let te: Vec<usize> = (0..n).filter(|&i| fold[i] == f).collect();
        let (w, silent, gain) = choose_weight(ds, &tr, &lex, params);
        weights.push((w, silent, gain));
        let model = train(ds, &tr, params)
            .with_lexicon_weight(w)
            .with_silent_threshold(silent)
            .with_gain(gain);
        let test_texts: Vec<&str> = te.iter().map(|&i| ds.texts[i].as_str()).collect();
        let out =
            Sentiment::new(LexiconScorer::builtin(), Some(model.clone())).score_many(&test_texts);
        for (k, &i) in te.iter().enumerate() {
            clf[i] = model.score(&ds.texts[i]);
            blended[i] = out[k].score;
        }
    }
    if std::env::var_os("SENTI_DIAG").is_some() {
        for (what, sc) in [("lex", &lex), ("blend", &blended)] {
            let mut conf = [[0usize; 3]; 3];
            for (&x, &l) in sc.iter().zip(&ds.labels) {
                conf[idx(l)][idx(label_of(x))] += 1;
            }
            eprintln!(
                "{} {what} confusion (rows human pos/neu/neg, cols predicted): {conf:?}",
                ds.name
            );
        }
    }
    Result {
        name: ds.name,
        n,
        vader: ds.vader,
        lexicon: metrics(&lex, &ds.human, &ds.labels),
        classifier: metrics(&clf, &ds.human, &ds.labels),
        blended: metrics(&blended, &ds.human, &ds.labels),
        weights,
        seconds: t0.elapsed().as_secs_f64(),
    }
}

fn f3(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "-".into()
    }
}

fn row(name: &str, m: &Metrics, v: &[f64; 4]) -> String {
    let mark = |x: f64, r: f64| {
        if r.is_finite() && x > r {
            format!("**{}**", f3(x))
        } else {
            f3(x)
        }
    };
    format!(
        "| {name} | {} | {} | {} | {} |",
        mark(m.acc3, v[0]),
        mark(m.macro_f1, v[1]),
        mark(m.binary, v[2]),
        mark(m.pearson, v[3])
    )
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let params = ClassifierParams::default();
    let datasets = [
        load_snippets(
            "movie",
            "movieReviewSnippets_GroundTruth.txt",
            [0.556, 0.399, 0.558, 0.427],
        ),
        load_snippets(
            "nyt",
            "nytEditorialSnippets_GroundTruth.txt",
            [0.507, 0.480, 0.493, 0.503],
        ),
        load_snippets(
            "tweets",
            "tweets_GroundTruth.txt",
            [0.911, 0.686, 0.927, 0.872],
        ),
        load_clothing(),
    ];
    // `--timing-only` skips the quality evaluation.
    let timing_only = std::env::args().any(|a| a == "--timing-only");
    let mut results = Vec::new();
    for ds in datasets.iter().filter(|_| !timing_only) {
        results.push(evaluate(ds, &params));
    }

    // Timings on the clothing reviews.
    let clothing = &datasets[3];
    let refs: Vec<&str> = clothing.texts.iter().map(String::as_str).collect();
    let stars: Vec<u8> = clothing.human.iter().map(|&h| h as u8).collect();
    let t0 = Instant::now();
    let model = Classifier::train(&refs, &stars, &params).unwrap();
    let train_s = t0.elapsed().as_secs_f64();
    let model_json = serde_json::to_string(&model).unwrap().len();
    let many: Vec<&str> = refs.iter().cycle().take(200_000).copied().collect();
    let s = Sentiment::new(LexiconScorer::builtin(), Some(model));
    let t0 = Instant::now();
    let out = s.score_many(&many);
    let score_s = t0.elapsed().as_secs_f64();
    let lex_only = Sentiment::new(LexiconScorer::builtin(), None);
    let t0 = Instant::now();
    let _ = lex_only.score_many(&many);
    let lex_s = t0.elapsed().as_secs_f64();
    let words: usize = many.iter().map(|t| t.split_whitespace().count()).sum();
    assert_eq!(out.len(), many.len());

    if json {
        let v: Vec<serde_json::Value> = results
            .iter()
            .map(|r| {
                serde_json::json!({
                    "file": r.name, "n": r.n, "vader_reference": r.vader.iter().map(|x| if x.is_finite() { Some(*x) } else { None }).collect::<Vec<_>>(),
                    "lexicon": r.lexicon, "classifier_cv": r.classifier, "blend_cv": r.blended,
                    "lexicon_weights": r.weights, "seconds": r.seconds,
                })
            })
            .collect();
        let out = serde_json::json!({
            "results": v,
            "timing": {"train_rows": refs.len(), "train_seconds": train_s, "model_json_bytes": model_json,
                        "score_rows": many.len(), "score_words": words, "blend_seconds": score_s, "lexicon_seconds": lex_s},
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap());
        return;
    }
    for r in &results {
        let target = if r.name == "clothing" {
            "star rating"
        } else {
            "human mean"
        };
        println!("### {} ({} texts; Pearson r vs {target})\n", r.name, r.n);
        println!("| scorer | 3-class acc | macro-F1 | binary acc | Pearson r |");
        println!("| --- | --- | --- | --- | --- |");
        let v = r.vader;
        println!(
            "| VADER (reference) | {} | {} | {} | {} |",
            f3(v[0]),
            f3(v[1]),
            f3(v[2]),
            f3(v[3])
        );
        println!("{}", row("lexicon only", &r.lexicon, &v));
        println!("{}", row("classifier only (5-fold CV)", &r.classifier, &v));
        println!(
            "{}",
            row("lexicon + classifier (5-fold CV)", &r.blended, &v)
        );
        let ws: Vec<String> = r
            .weights
            .iter()
            .map(|(w, s, g)| format!("{w:.2}/{s:.1}/{g:.1}"))
            .collect();
        println!(
            "\nlexicon weight / silent threshold / gain per fold (chosen on training folds only): {}; {:.1} s\n",
            ws.join(", "),
            r.seconds
        );
    }
    println!("Bold: better than the VADER reference figure.\n");
    println!("### timing (clothing reviews)\n");
    println!(
        "- train on {} reviews: {:.2} s; model JSON {:.2} MB",
        refs.len(),
        train_s,
        model_json as f64 / 1e6
    );
    println!(
        "- score_many, lexicon + classifier: {} reviews ({} words) in {:.2} s = {:.0} reviews/s",
        many.len(),
        words,
        score_s,
        many.len() as f64 / score_s
    );
    println!(
        "- score_many, lexicon only: {:.2} s = {:.0} reviews/s",
        lex_s,
        many.len() as f64 / lex_s
    );
}
