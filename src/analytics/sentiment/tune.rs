//! Training the classifier for a shop: four fifths of its star-rated reviews train it, the
//! last fifth (never seen in training) chooses how it is blended with the lexicon and says
//! how good the result is.

use rayon::prelude::*;
use serde::Serialize;

use super::{Classifier, ClassifierParams, Label, LexiconScorer, label_of};
use crate::analytics::metrics;

/// Held-out quality of a scorer on star-rated reviews (4–5 positive, 3 neutral, 1–2
/// negative).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatedMetrics {
    pub rows: usize,
    /// 3-class accuracy.
    pub accuracy: f64,
    pub macro_f1: f64,
    /// Accuracy on positive and negative reviews only; a neutral prediction is wrong.
    pub binary_accuracy: f64,
    /// Pearson correlation of the score with the star rating.
    pub pearson: f64,
}

/// The label a star rating stands for.
pub fn label_of_rating(rating: u8) -> Label {
    match rating {
        4.. => Label::Positive,
        3 => Label::Neutral,
        _ => Label::Negative,
    }
}

pub fn rated_metrics(scores: &[f64], ratings: &[u8]) -> RatedMetrics {
    // confusion[truth][predicted]
    let mut confusion = [[0usize; 3]; 3];
    for (&s, &r) in scores.iter().zip(ratings) {
        confusion[label_of_rating(r).index()][label_of(s).index()] += 1;
    }
    let n = scores.len().min(ratings.len());
    let correct: usize = (0..3).map(|i| confusion[i][i]).sum();
    let f1: Vec<f64> = (0..3)
        .map(|c| {
            let tp = confusion[c][c] as f64;
            let predicted: usize = (0..3).map(|t| confusion[t][c]).sum();
            let actual: usize = confusion[c].iter().sum();
            if tp == 0.0 {
                0.0
            } else {
                let (p, r) = (tp / predicted as f64, tp / actual as f64);
                2.0 * p * r / (p + r)
            }
        })
        .collect();
    let polar = confusion[0].iter().sum::<usize>() + confusion[2].iter().sum::<usize>();
    let stars: Vec<f64> = ratings[..n].iter().map(|&r| f64::from(r)).collect();
    RatedMetrics {
        rows: n,
        accuracy: ratio(correct, n),
        macro_f1: f1.iter().sum::<f64>() / 3.0,
        binary_accuracy: ratio(confusion[0][0] + confusion[2][2], polar),
        pearson: metrics::pearson(&scores[..n], &stars),
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// A classifier fitted for a shop, with its blend chosen on held-out reviews.
#[derive(Clone)]
pub struct Tuned {
    pub classifier: Classifier,
    pub train_rows: usize,
    /// The blended scorer on the held-out fifth.
    pub holdout: RatedMetrics,
    /// The lexicon alone on the same reviews, for comparison.
    pub lexicon_holdout: RatedMetrics,
}

/// Fewest held-out reviews worth choosing a blend on; below it the defaults stay.
const MIN_HOLDOUT: usize = 50;
const WEIGHTS: [f64; 11] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
const GAINS: [f64; 3] = [1.0, 2.0, 3.0];
const SILENT: [f64; 2] = [0.0, 0.2];

/// Trains on every row but each fifth (rows 4, 9, 14, …), then picks the lexicon weight,
/// gain and silent threshold that maximise macro-F1 + binary accuracy on those held-out
/// rows.
pub fn train_blended(
    lexicon: &LexiconScorer,
    texts: &[&str],
    ratings: &[u8],
    params: &ClassifierParams,
) -> Result<Tuned, String> {
    if texts.len() != ratings.len() {
        return Err(format!(
            "{} texts but {} ratings",
            texts.len(),
            ratings.len()
        ));
    }
    let held = |i: usize| i % 5 == 4;
    let (mut train_texts, mut train_ratings) = (Vec::new(), Vec::new());
    let (mut hold_texts, mut hold_ratings) = (Vec::new(), Vec::new());
    for (i, (&t, &r)) in texts.iter().zip(ratings).enumerate() {
        if held(i) {
            hold_texts.push(t);
            hold_ratings.push(r);
        } else {
            train_texts.push(t);
            train_ratings.push(r);
        }
    }
    let classifier = Classifier::train(&train_texts, &train_ratings, params)?;
    let lex: Vec<f64> = hold_texts.par_iter().map(|t| lexicon.score(t)).collect();
    let lexicon_holdout = rated_metrics(&lex, &hold_ratings);
    // The classifier's score at gain g is tanh(g·z/2), and its score at gain 1 is tanh(z/2):
    // so one scoring pass serves every gain.
    let base = classifier.clone().with_gain(1.0);
    let half_z: Vec<f64> = hold_texts
        .par_iter()
        .map(|t| base.score(t).clamp(-1.0 + 1e-12, 1.0 - 1e-12).atanh())
        .collect();

    let mut best = (
        f64::NEG_INFINITY,
        params.lexicon_weight,
        params.gain,
        params.silent_threshold,
    );
    if hold_texts.len() >= MIN_HOLDOUT {
        for &gain in &GAINS {
            for &silent in &SILENT {
                for &w in &WEIGHTS {
                    let scores: Vec<f64> = lex
                        .iter()
                        .zip(&half_z)
                        .map(|(&l, &hz)| {
                            let c = (gain * hz).tanh();
                            let c = if l == 0.0 && c.abs() < silent { 0.0 } else { c };
                            (w * l + (1.0 - w) * c).clamp(-1.0, 1.0)
                        })
                        .collect();
                    let m = rated_metrics(&scores, &hold_ratings);
                    let objective = m.macro_f1 + m.binary_accuracy;
                    if objective > best.0 {
                        best = (objective, w, gain, silent);
                    }
                }
            }
        }
    }
    let classifier = classifier
        .with_lexicon_weight(best.1)
        .with_gain(best.2)
        .with_silent_threshold(best.3);
    let blended: Vec<f64> = hold_texts
        .par_iter()
        .zip(&lex)
        .map(|(t, &l)| classifier.blend(l, classifier.score(t)))
        .collect();
    Ok(Tuned {
        holdout: rated_metrics(&blended, &hold_ratings),
        lexicon_holdout,
        train_rows: train_texts.len(),
        classifier,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn metrics_hand_example() {
        // truth: pos pos neu neg neg; predicted: pos neu neu neg pos.
        let scores = [0.5, 0.0, 0.01, -0.4, 0.3];
        let ratings = [5, 4, 3, 1, 2];
        let m = rated_metrics(&scores, &ratings);
        assert_eq!(m.rows, 5);
        assert!(close(m.accuracy, 3.0 / 5.0));
        // binary: of 4 polar reviews, pos→pos and neg→neg are right: 2/4.
        assert!(close(m.binary_accuracy, 0.5));
        // F1: positive p=1/2 r=1/2 → 1/2; neutral p=1/2 r=1 → 2/3; negative p=1 r=1/2 → 2/3.
        assert!(
            close(m.macro_f1, (0.5 + 2.0 / 3.0 + 2.0 / 3.0) / 3.0),
            "{m:?}"
        );
    }

    #[test]
    fn the_blend_is_chosen_on_held_out_reviews_and_helps() {
        // Words the lexicon does not know carry the rating: only the classifier can see it.
        let mut texts = Vec::new();
        let mut ratings = Vec::new();
        for i in 0..400 {
            let (text, rating) = match i % 3 {
                0 => (format!("zorbly wibble item {i}"), 5),
                1 => (format!("blarg seams item {i}"), 1),
                _ => (format!("plain item {i}"), 3),
            };
            texts.push(text);
            ratings.push(rating);
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let tuned = train_blended(
            &LexiconScorer::builtin(),
            &refs,
            &ratings,
            &ClassifierParams::default(),
        )
        .unwrap();
        assert_eq!(tuned.train_rows, 320);
        assert_eq!(tuned.holdout.rows, 80);
        assert!(tuned.holdout.binary_accuracy > 0.9, "{:?}", tuned.holdout);
        assert_eq!(
            tuned.lexicon_holdout.binary_accuracy, 0.0,
            "{:?}",
            tuned.lexicon_holdout
        );
        assert!(tuned.classifier.lexicon_weight() < 1.0);
    }
}
