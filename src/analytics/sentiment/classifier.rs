//! A learned sentiment classifier: hashed TF-IDF features (unigrams and
//! bigrams of lowercase words; jieba words for Chinese) and a sparse binary
//! logistic regression trained with Adagrad SGD and L2 on soft targets.
//!
//! Written by hand rather than with smartcore: smartcore's
//! `LogisticRegression` takes a dense matrix, and 20k reviews × 2^18 hashed
//! features is far too large dense; the sparse version trains in well under a
//! second.
//!
//! Targets: `train` takes star ratings (1 → -1, 2 → -0.5, 3 → 0, 4 → 0.5,
//! 5 → 1), `train_scores` takes targets in `[-1, 1]` directly (e.g. a mean
//! human rating / 4). The model fits `P = (target + 1) / 2` with a logistic
//! loss and scores `2P - 1` in `(-1, 1)`.

use super::tokens::{feature_tokens, fmix, token_hash};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Training hyper-parameters (stored with the model).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ClassifierParams {
    /// Feature hashing: `2^hash_bits` buckets (10..=24).
    pub hash_bits: u32,
    /// Buckets seen in fewer training documents are dropped.
    pub min_df: u32,
    /// Add word bigrams to unigrams.
    pub bigrams: bool,
    /// Passes over the training data.
    pub epochs: u32,
    /// Adagrad base learning rate.
    pub learning_rate: f64,
    /// L2 penalty per update on the touched weights.
    pub l2: f64,
    /// Weight of the lexicon score in [`super::Sentiment`]'s blend
    /// `w * lexicon + (1 - w) * classifier`.
    pub lexicon_weight: f64,
    /// When the lexicon finds no sentiment at all (lexicon score exactly 0),
    /// the classifier's part of the blend counts only if `|classifier| >=
    /// silent_threshold`: 0 lets the classifier always decide, 1 keeps such
    /// texts neutral (VADER's abstention).
    pub silent_threshold: f64,
    /// Sharpens (> 1) or flattens (< 1) the classifier's score in logit
    /// space: `score = tanh(gain * z / 2)`; 1 is the fitted model.
    pub gain: f64,
    /// Shuffling seed.
    pub seed: u64,
}

impl Default for ClassifierParams {
    fn default() -> Self {
        ClassifierParams {
            hash_bits: 18,
            min_df: 2,
            bigrams: true,
            epochs: 8,
            learning_rate: 0.3,
            l2: 1e-6,
            lexicon_weight: 0.5,
            silent_threshold: 0.0,
            gain: 1.0,
            seed: 0x5eed,
        }
    }
}

/// A trained model. Serialises compactly: only buckets kept by `min_df` are
/// stored, as parallel arrays.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "ClassifierRepr", into = "ClassifierRepr")]
pub struct Classifier {
    params: ClassifierParams,
    bias: f32,
    /// Dense, `2^hash_bits` long: `[idf, weight]` per bucket (interleaved for
    /// cache locality); idf 0 marks a dropped bucket.
    features: Vec<[f32; 2]>,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("params", &self.params)
            .field("bias", &self.bias)
            .field(
                "features",
                &self.features.iter().filter(|x| x[0] > 0.0).count(),
            )
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct ClassifierRepr {
    params: ClassifierParams,
    bias: f32,
    buckets: Vec<u32>,
    idf: Vec<f32>,
    weights: Vec<f32>,
}

impl From<Classifier> for ClassifierRepr {
    fn from(c: Classifier) -> Self {
        let mut buckets = Vec::new();
        let mut idf = Vec::new();
        let mut weights = Vec::new();
        for (j, &[f, w]) in c.features.iter().enumerate() {
            if f > 0.0 {
                buckets.push(j as u32);
                idf.push(f);
                weights.push(w);
            }
        }
        ClassifierRepr {
            params: c.params,
            bias: c.bias,
            buckets,
            idf,
            weights,
        }
    }
}

impl TryFrom<ClassifierRepr> for Classifier {
    type Error = String;
    fn try_from(r: ClassifierRepr) -> Result<Self, String> {
        check_bits(r.params.hash_bits)?;
        if r.buckets.len() != r.idf.len() || r.buckets.len() != r.weights.len() {
            return Err("classifier: buckets, idf and weights differ in length".into());
        }
        let dim = 1usize << r.params.hash_bits;
        let mut features = vec![[0f32; 2]; dim];
        for ((&b, &f), &w) in r.buckets.iter().zip(&r.idf).zip(&r.weights) {
            let b = b as usize;
            if b >= dim || !f.is_finite() || f <= 0.0 || !w.is_finite() {
                return Err(format!("classifier: bad feature entry for bucket {b}"));
            }
            features[b] = [f, w];
        }
        if !r.bias.is_finite() {
            return Err("classifier: bias is not finite".into());
        }
        Ok(Classifier {
            params: r.params,
            bias: r.bias,
            features,
        })
    }
}

fn check_bits(bits: u32) -> Result<(), String> {
    if (10..=24).contains(&bits) {
        Ok(())
    } else {
        Err(format!("classifier: hash_bits {bits} outside 10..=24"))
    }
}

/// Sorted bucket ids of a text's tokens (with repeats).
fn bucket_hashes(text: &str, bits: u32, bigrams: bool, hashes: &mut Vec<u32>) {
    let mask = (1u64 << bits) - 1;
    hashes.clear();
    let mut prev: Option<u64> = None;
    feature_tokens(text, |tok| {
        let h = token_hash(tok);
        hashes.push((h & mask) as u32);
        if bigrams {
            if let Some(p) = prev {
                let b = fmix(p.rotate_left(23) ^ h ^ 0x9e37_79b9_7f4a_7c15);
                hashes.push((b & mask) as u32);
            }
            prev = Some(h);
        }
    });
    hashes.sort_unstable();
}

/// Calls `f(bucket, count)` for each run of equal ids in sorted `hashes`.
fn for_each_count(hashes: &[u32], mut f: impl FnMut(u32, u32)) {
    let mut k = 0;
    while k < hashes.len() {
        let b = hashes[k];
        let mut c = 1;
        while k + c < hashes.len() && hashes[k + c] == b {
            c += 1;
        }
        f(b, c as u32);
        k += c;
    }
}

/// Bucket counts of a text: sorted `(bucket, count)`.
fn bucket_counts(text: &str, bits: u32, bigrams: bool) -> Vec<(u32, u32)> {
    let mut hashes = Vec::with_capacity(128);
    bucket_hashes(text, bits, bigrams, &mut hashes);
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(hashes.len());
    for_each_count(&hashes, |b, c| out.push((b, c)));
    out
}

fn sublinear_tf(c: u32) -> f32 {
    if c == 1 { 1.0 } else { 1.0 + (c as f32).ln() }
}

/// Sublinear TF × IDF, L2-normalised; dropped buckets skipped.
fn tfidf(counts: &[(u32, u32)], idf: &[f32]) -> Vec<(u32, f32)> {
    let mut v: Vec<(u32, f32)> = counts
        .iter()
        .filter_map(|&(b, c)| {
            let f = *idf.get(b as usize)?;
            (f > 0.0).then(|| (b, sublinear_tf(c) * f))
        })
        .collect();
    let norm = v.iter().map(|(_, x)| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for (_, x) in &mut v {
            *x /= norm;
        }
    }
    v
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Star rating → training target.
fn star_target(r: u8) -> Option<f64> {
    Some(match r {
        1 => -1.0,
        2 => -0.5,
        3 => 0.0,
        4 => 0.5,
        5 => 1.0,
        _ => return None,
    })
}

impl Classifier {
    /// Trains on star ratings 1..=5 (4-5 positive, 3 neutral, 1-2 negative).
    pub fn train(
        texts: &[&str],
        ratings: &[u8],
        params: &ClassifierParams,
    ) -> Result<Classifier, String> {
        if texts.len() != ratings.len() {
            return Err(format!(
                "classifier: {} texts but {} ratings",
                texts.len(),
                ratings.len()
            ));
        }
        let targets = ratings
            .iter()
            .enumerate()
            .map(|(i, &r)| {
                star_target(r)
                    .ok_or_else(|| format!("classifier: rating {r} at row {i} not in 1..=5"))
            })
            .collect::<Result<Vec<f64>, String>>()?;
        Self::train_scores(texts, &targets, params)
    }

    /// Trains on continuous targets in `[-1, 1]` (positive > 0 > negative),
    /// e.g. a mean human rating on a -4..4 scale divided by 4.
    pub fn train_scores(
        texts: &[&str],
        targets: &[f64],
        params: &ClassifierParams,
    ) -> Result<Classifier, String> {
        check_bits(params.hash_bits)?;
        if texts.len() != targets.len() {
            return Err(format!(
                "classifier: {} texts but {} targets",
                texts.len(),
                targets.len()
            ));
        }
        if texts.is_empty() {
            return Err("classifier: no training data".into());
        }
        if let Some(i) = targets.iter().position(|t| !t.is_finite() || t.abs() > 1.0) {
            return Err(format!("classifier: target at row {i} not in [-1, 1]"));
        }
        if !(0.0..=1.0).contains(&params.lexicon_weight) {
            return Err("classifier: lexicon_weight not in [0, 1]".into());
        }
        let bits = params.hash_bits;
        let dim = 1usize << bits;
        let counts: Vec<Vec<(u32, u32)>> = texts
            .par_iter()
            .with_min_len(256)
            .map(|t| bucket_counts(t, bits, params.bigrams))
            .collect();
        let mut df = vec![0u32; dim];
        for doc in &counts {
            for &(b, _) in doc {
                df[b as usize] += 1;
            }
        }
        let n = counts.len() as f64;
        let idf: Vec<f32> = df
            .iter()
            .map(|&d| {
                if d >= params.min_df.max(1) {
                    (((1.0 + n) / (1.0 + f64::from(d))).ln() + 1.0) as f32
                } else {
                    0.0
                }
            })
            .collect();
        let xs: Vec<Vec<(u32, f32)>> = counts
            .par_iter()
            .with_min_len(256)
            .map(|c| tfidf(c, &idf))
            .collect();
        drop(counts);
        let ys: Vec<f64> = targets.iter().map(|t| (t + 1.0) / 2.0).collect();

        // Adagrad SGD on the logistic loss with soft targets.
        let mut w = vec![0f64; dim];
        let mut g2 = vec![0f64; dim];
        let mut bias = 0f64;
        let mut bias_g2 = 0f64;
        let lr = params.learning_rate;
        let eps = 1e-8;
        let mut order: Vec<usize> = (0..xs.len()).collect();
        let mut rng = params.seed | 1;
        for _ in 0..params.epochs {
            for k in (1..order.len()).rev() {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                order.swap(k, (rng % (k as u64 + 1)) as usize);
            }
            for &i in &order {
                let x = &xs[i];
                let z = bias
                    + x.iter()
                        .map(|&(b, v)| w[b as usize] * f64::from(v))
                        .sum::<f64>();
                let err = sigmoid(z) - ys[i];
                for &(b, v) in x {
                    let b = b as usize;
                    let g = err * f64::from(v) + params.l2 * w[b];
                    g2[b] += g * g;
                    w[b] -= lr * g / (g2[b].sqrt() + eps);
                }
                bias_g2 += err * err;
                bias -= lr * err / (bias_g2.sqrt() + eps);
            }
        }
        let features: Vec<[f32; 2]> = w
            .iter()
            .zip(&idf)
            .map(|(&w, &f)| if f > 0.0 { [f, w as f32] } else { [0.0, 0.0] })
            .collect();
        Ok(Classifier {
            params: params.clone(),
            bias: bias as f32,
            features,
        })
    }

    /// Score in `(-1, 1)`: `2 P(positive) - 1`.
    pub fn score(&self, text: &str) -> f64 {
        let mut hashes = Vec::with_capacity(128);
        bucket_hashes(
            text,
            self.params.hash_bits,
            self.params.bigrams,
            &mut hashes,
        );
        // One pass: z = bias + (w · x) / |x| with x = tf × idf.
        let (mut dot, mut norm2) = (0f32, 0f32);
        for_each_count(&hashes, |b, c| {
            if let Some(&[f, w]) = self.features.get(b as usize)
                && f > 0.0
            {
                let x = sublinear_tf(c) * f;
                dot += w * x;
                norm2 += x * x;
            }
        });
        let z = f64::from(self.bias)
            + if norm2 > 0.0 {
                f64::from(dot / norm2.sqrt())
            } else {
                0.0
            };
        // 2 sigmoid(z) - 1 == tanh(z / 2).
        let s = (self.gain() * z / 2.0).tanh();
        if s.is_finite() { s } else { 0.0 }
    }

    /// See [`ClassifierParams::gain`].
    pub fn gain(&self) -> f64 {
        let g = self.params.gain;
        if g.is_finite() && g > 0.0 {
            g.min(100.0)
        } else {
            1.0
        }
    }

    /// Sets [`ClassifierParams::gain`].
    pub fn with_gain(mut self, g: f64) -> Classifier {
        self.params.gain = g;
        self.params.gain = self.gain();
        self
    }

    pub fn params(&self) -> &ClassifierParams {
        &self.params
    }

    /// The lexicon's weight in [`super::Sentiment`]'s blend.
    pub fn lexicon_weight(&self) -> f64 {
        self.params.lexicon_weight.clamp(0.0, 1.0)
    }

    /// Sets the blend weight (e.g. after choosing it on held-out data).
    pub fn with_lexicon_weight(mut self, w: f64) -> Classifier {
        self.params.lexicon_weight = if w.is_finite() {
            w.clamp(0.0, 1.0)
        } else {
            0.5
        };
        self
    }

    /// See [`ClassifierParams::silent_threshold`].
    pub fn silent_threshold(&self) -> f64 {
        let t = self.params.silent_threshold;
        if t.is_finite() {
            t.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// Sets [`ClassifierParams::silent_threshold`].
    pub fn with_silent_threshold(mut self, t: f64) -> Classifier {
        self.params.silent_threshold = t;
        self.params.silent_threshold = self.silent_threshold();
        self
    }

    /// The blend used by [`super::Sentiment`]: `w * lexicon + (1 - w) *
    /// classifier`, where a classifier score below `silent_threshold` in
    /// magnitude counts as 0 when the lexicon score is exactly 0.
    pub fn blend(&self, lexicon: f64, classifier: f64) -> f64 {
        let w = self.lexicon_weight();
        let c = if lexicon == 0.0 && classifier.abs() < self.silent_threshold() {
            0.0
        } else {
            classifier
        };
        (w * lexicon + (1.0 - w) * c).clamp(-1.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> (Vec<&'static str>, Vec<u8>) {
        let pos = [
            "lovely soft dress fits perfectly",
            "perfect fit and lovely colour",
            "soft fabric, perfect length, lovely",
            "fits perfectly, would buy again",
            "衣服很漂亮，物超所值",
            "物超所值，推荐",
        ];
        let neg = [
            "cheap scratchy fabric, returned",
            "returned it, scratchy and cheap",
            "ripped after one wash, cheap",
            "scratchy seams, returned",
            "假货，质量差，退货",
            "质量差，退货了",
        ];
        let mut texts = Vec::new();
        let mut ratings = Vec::new();
        for (p, n) in pos.iter().zip(neg.iter()) {
            texts.push(*p);
            ratings.push(5);
            texts.push(*n);
            ratings.push(1);
        }
        (texts, ratings)
    }

    fn params() -> ClassifierParams {
        ClassifierParams {
            min_df: 1,
            epochs: 30,
            ..ClassifierParams::default()
        }
    }

    #[test]
    fn learns_a_separable_set() {
        let (texts, ratings) = tiny();
        let c = Classifier::train(&texts, &ratings, &params()).unwrap();
        for (t, r) in texts.iter().zip(&ratings) {
            let s = c.score(t);
            assert!((-1.0..=1.0).contains(&s));
            assert_eq!(s > 0.0, *r == 5, "{t}: {s}");
        }
        assert!(c.score("lovely perfect dress") > 0.2);
        assert!(c.score("cheap and scratchy") < -0.2);
        assert!(c.score("物超所值") > 0.0);
        assert!(c.score("假货") < 0.0);
        assert!(c.score("").abs() < 0.5);
    }

    #[test]
    fn train_scores_accepts_continuous_targets() {
        let (texts, ratings) = tiny();
        let targets: Vec<f64> = ratings
            .iter()
            .map(|&r| if r == 5 { 0.8 } else { -0.6 })
            .collect();
        let c = Classifier::train_scores(&texts, &targets, &params()).unwrap();
        assert!(c.score("lovely perfect dress") > 0.0);
        assert!(Classifier::train_scores(&texts, &[2.0; 12], &params()).is_err());
    }

    #[test]
    fn rejects_bad_input() {
        let p = ClassifierParams::default();
        assert!(Classifier::train(&["a", "b"], &[5], &p).is_err());
        assert!(
            Classifier::train(&["a"], &[6], &p)
                .unwrap_err()
                .contains("row 0")
        );
        assert!(Classifier::train(&[], &[], &p).is_err());
        let bad = ClassifierParams { hash_bits: 40, ..p };
        assert!(Classifier::train(&["a"], &[5], &bad).is_err());
    }

    #[test]
    fn serde_round_trip() {
        let (texts, ratings) = tiny();
        let c = Classifier::train(&texts, &ratings, &params())
            .unwrap()
            .with_lexicon_weight(0.3);
        let json = serde_json::to_string(&c).unwrap();
        let back: Classifier = serde_json::from_str(&json).unwrap();
        assert_eq!(back.lexicon_weight(), 0.3);
        for t in texts.iter().chain(["unseen words", ""].iter()) {
            assert_eq!(c.score(t), back.score(t));
        }
        assert!(json.len() < 20_000, "{}", json.len());
        let broken = json.replace("\"hash_bits\":18", "\"hash_bits\":50");
        assert!(serde_json::from_str::<Classifier>(&broken).is_err());
    }
}
