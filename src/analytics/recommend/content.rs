//! Content similarity: TF-IDF over item text (title + description +
//! category), lowercased unigrams, Chinese runs segmented with jieba.
//!
//! Weights: `tf = raw count`, `idf = ln((1 + N) / (1 + df)) + 1` (the smooth
//! idf of scikit-learn), each item vector L2-normalised, so the dot product
//! of two vectors is their cosine. Per-item top-K similar items are found with
//! an inverted index whose posting lists are capped (very common terms keep
//! only their `max_postings` highest-weighted items).

use super::{
    Accumulator, Exclude, Neighbours, Recommendation, Source, sorted_history, top_k_pairs,
};
use jieba_rs::Jieba;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Minimal stop words (English function words and the commonest Chinese
/// particles).
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "as", "at", "by", "for", "from", "in", "into", "of", "on", "or", "the", "to",
    "with", "的", "了", "和", "与", "及", "是", "在",
];

fn jieba() -> &'static Jieba {
    static JIEBA: OnceLock<Jieba> = OnceLock::new();
    JIEBA.get_or_init(Jieba::new)
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

fn push_token(out: &mut Vec<String>, tok: &str, cjk: bool) {
    let tok = tok.trim();
    if tok.is_empty() || STOP_WORDS.contains(&tok) {
        return;
    }
    // latin tokens: at least 2 chars and not a bare number
    if !cjk && (tok.chars().count() < 2 || tok.chars().all(|c| c.is_ascii_digit())) {
        return;
    }
    out.push(tok.to_string());
}

/// Splits text into lowercase unigram tokens: runs of CJK ideographs are
/// segmented by jieba (so multi-character words stay whole), other runs of
/// alphanumerics are split on everything else. Latin tokens shorter than 2
/// characters, bare numbers and stop words are dropped.
pub fn tokenize(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut out = Vec::new();
    let mut start: Option<(usize, bool)> = None; // (byte offset, is_cjk run)
    let flush = |out: &mut Vec<String>, s: &str, cjk: bool| {
        if cjk {
            for w in jieba().cut(s, true) {
                push_token(out, w, true);
            }
        } else {
            push_token(out, s, false);
        }
    };
    for (i, c) in lower.char_indices() {
        let kind = if is_cjk(c) {
            Some(true)
        } else if c.is_alphanumeric() {
            Some(false)
        } else {
            None
        };
        match (start, kind) {
            (Some((_, k)), Some(k2)) if k == k2 => {}
            (Some((s, k)), _) => {
                flush(&mut out, &lower[s..i], k);
                start = kind.map(|k2| (i, k2));
            }
            (None, Some(k2)) => start = Some((i, k2)),
            (None, None) => {}
        }
    }
    if let Some((s, k)) = start {
        flush(&mut out, &lower[s..], k);
    }
    out
}

/// Texts tokenised at once when fitting.
const TOKENIZE_CHUNK: usize = 4096;

/// Content model parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContentParams {
    /// Similar items kept per item.
    pub k: usize,
    /// Cap on a term's posting list when searching neighbours.
    pub max_postings: usize,
}

impl Default for ContentParams {
    fn default() -> Self {
        ContentParams {
            k: 50,
            max_postings: 100,
        }
    }
}

/// Fitted TF-IDF model with per-item neighbours.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Content {
    pub params: Option<ContentParams>,
    vocabulary: HashMap<String, u32>,
    idf: Vec<f32>,
    /// Per item: `(term, weight)` sorted by term, L2-normalised.
    vectors: Vec<Vec<(u32, f32)>>,
    neighbours: Neighbours,
}

impl Content {
    /// Fits on one text per item (index = item id).
    pub fn fit<S: AsRef<str> + Sync>(texts: &[S], params: ContentParams) -> Content {
        let mut vocabulary: HashMap<String, u32> = HashMap::new();
        let mut df: Vec<u32> = Vec::new();
        let mut counts: Vec<Vec<(u32, f32)>> = Vec::with_capacity(texts.len());
        // Tokenised a chunk at a time (in parallel), so only one chunk's token strings are
        // held: all of them at once took a quarter of a gigabyte for 100k products.
        for chunk in texts.chunks(TOKENIZE_CHUNK) {
            let tokens: Vec<Vec<String>> = chunk.par_iter().map(|t| tokenize(t.as_ref())).collect();
            for doc in tokens {
                let mut tf: Vec<(u32, f32)> = Vec::with_capacity(doc.len());
                for t in doc {
                    let next = vocabulary.len() as u32;
                    let id = *vocabulary.entry(t).or_insert(next);
                    if id == next {
                        df.push(0);
                    }
                    tf.push((id, 1.0));
                }
                tf.sort_by_key(|p| p.0);
                let mut merged: Vec<(u32, f32)> = Vec::with_capacity(tf.len());
                for (id, c) in tf {
                    match merged.last_mut() {
                        Some(last) if last.0 == id => last.1 += c,
                        _ => merged.push((id, c)),
                    }
                }
                for &(id, _) in &merged {
                    df[id as usize] += 1;
                }
                counts.push(merged);
            }
        }
        let n = texts.len() as f32;
        let idf: Vec<f32> = df
            .iter()
            .map(|&d| ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0)
            .collect();
        let vectors: Vec<Vec<(u32, f32)>> = counts
            .into_iter()
            .map(|mut v| {
                for p in v.iter_mut() {
                    p.1 *= idf[p.0 as usize];
                }
                let norm = v.iter().map(|p| p.1 * p.1).sum::<f32>().sqrt();
                if norm > 0.0 {
                    v.iter_mut().for_each(|p| p.1 /= norm);
                }
                v
            })
            .collect();
        // inverted index, capped
        let mut postings: Vec<Vec<(u32, f32)>> = vec![Vec::new(); idf.len()];
        for (i, v) in vectors.iter().enumerate() {
            for &(t, w) in v {
                postings[t as usize].push((i as u32, w));
            }
        }
        for p in postings.iter_mut() {
            if p.len() > params.max_postings {
                *p = top_k_pairs(std::mem::take(p), params.max_postings);
            }
        }
        let n_items = vectors.len();
        let lists: Vec<Vec<(u32, f32)>> = (0..n_items)
            .into_par_iter()
            .with_min_len((n_items / (rayon::current_num_threads() * 32)).max(64))
            .map_init(
                || (vec![0f32; n_items], Vec::<u32>::new()),
                |(dots, touched), i| {
                    for &(t, w) in &vectors[i] {
                        for &(j, v) in &postings[t as usize] {
                            let d = &mut dots[j as usize];
                            if *d == 0.0 {
                                touched.push(j);
                            }
                            *d += w * v;
                        }
                    }
                    let mut cand = Vec::with_capacity(touched.len());
                    for &j in touched.iter() {
                        let d = dots[j as usize];
                        dots[j as usize] = 0.0;
                        if j as usize != i && d > 0.0 {
                            cand.push((j, d));
                        }
                    }
                    touched.clear();
                    top_k_pairs(cand, params.k)
                },
            )
            .collect();
        Content {
            params: Some(params),
            vocabulary,
            idf,
            vectors,
            neighbours: Neighbours::from_lists(lists),
        }
    }

    /// The L2-normalised TF-IDF vector of an item as `(term, weight)`.
    pub fn vector(&self, item: u32) -> &[(u32, f32)] {
        self.vectors.get(item as usize).map_or(&[], Vec::as_slice)
    }

    /// Term id of a token, if in the vocabulary.
    pub fn term(&self, token: &str) -> Option<u32> {
        self.vocabulary.get(token).copied()
    }

    /// Weight of `token` in `item`'s vector (0 when absent).
    pub fn weight(&self, item: u32, token: &str) -> f32 {
        self.term(token)
            .and_then(|t| self.vector(item).iter().find(|p| p.0 == t).map(|p| p.1))
            .unwrap_or(0.0)
    }

    pub fn idf(&self, token: &str) -> Option<f32> {
        self.term(token)
            .and_then(|t| self.idf.get(t as usize).copied())
    }

    /// Most similar items of `item` (cosine), best first.
    pub fn neighbours(&self, item: u32) -> (&[u32], &[f32]) {
        self.neighbours.of(item)
    }

    pub fn n_items(&self) -> usize {
        self.vectors.len()
    }

    /// Top `n`: score(j) = sum over history items h of `w_h * sim(h, j)`
    /// (history items score `w_h` themselves when repeats are allowed).
    pub fn recommend(
        &self,
        history: &[(u32, f32)],
        n: usize,
        exclude: &Exclude,
    ) -> Vec<Recommendation> {
        let mut acc = Accumulator::new(self.n_items());
        self.recommend_with(&mut acc, history, n, exclude)
    }

    /// As [`Content::recommend`] with a reusable accumulator.
    pub fn recommend_with(
        &self,
        acc: &mut Accumulator,
        history: &[(u32, f32)],
        n: usize,
        exclude: &Exclude,
    ) -> Vec<Recommendation> {
        let history = sorted_history(history);
        let self_weight = if exclude.repeat { 1.0 } else { 0.0 };
        self.neighbours.score_into(acc, &history, self_weight);
        acc.drain_top(n, Source::Content, &history, exclude)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_mixed_english_and_chinese() {
        let t = tokenize("Red MUG, set of 6 我来到北京清华大学 x2");
        assert_eq!(
            t,
            vec!["red", "mug", "set", "我", "来到", "北京", "清华大学", "x2"]
        );
    }

    #[test]
    fn tfidf_weights_by_hand() {
        // d0 = {red, mug, 北京}, d1 = {red x2, teapot}, d2 = {北京, teapot}
        // N = 3; df(red)=df(北京)=df(teapot)=2 -> idf = ln(4/3)+1 = 1.287682
        // df(mug)=1 -> idf = ln(2)+1 = 1.693147
        let docs = ["Red mug 北京", "red RED teapot", "北京 teapot"];
        let c = Content::fit(&docs, ContentParams::default());
        assert!((c.idf("red").unwrap() - 1.287_682).abs() < 1e-5);
        assert!((c.idf("mug").unwrap() - 1.693_147).abs() < 1e-5);
        // d0: (a, b, a) / sqrt(2a^2 + b^2) = 0.517856, 0.680918
        assert!((c.weight(0, "red") - 0.517_856).abs() < 1e-5);
        assert!((c.weight(0, "mug") - 0.680_918).abs() < 1e-5);
        assert!((c.weight(0, "北京") - 0.517_856).abs() < 1e-5);
        // d1: tf 2 vs 1 with equal idf -> (2, 1)/sqrt5
        assert!((c.weight(1, "red") - 2.0 / 5f32.sqrt()).abs() < 1e-5);
        assert!((c.weight(1, "teapot") - 1.0 / 5f32.sqrt()).abs() < 1e-5);
        // d2: (1, 1)/sqrt2
        assert!((c.weight(2, "北京") - 0.5f32.sqrt()).abs() < 1e-5);
        // sims: d0-d1 = 0.517856*0.894427 = 0.463185, d0-d2 = 0.517856*0.707107 = 0.366180,
        // d1-d2 = 0.447214*0.707107 = 0.316228
        let (n0, s0) = c.neighbours(0);
        assert_eq!(n0, &[1, 2]);
        assert!((s0[0] - 0.463_185).abs() < 1e-5 && (s0[1] - 0.366_180).abs() < 1e-5);
        let (n2, s2) = c.neighbours(2);
        assert_eq!(n2, &[0, 1]);
        assert!((s2[1] - 0.316_228).abs() < 1e-5);
        // recommend from d2's history, excluding it
        let r = c.recommend(&[(2, 1.0)], 5, &Exclude::new_items());
        assert_eq!(r.iter().map(|r| r.item).collect::<Vec<_>>(), vec![0, 1]);
        assert!(
            r.iter()
                .all(|r| r.because == Some(2) && r.source == Source::Content)
        );
    }
}
