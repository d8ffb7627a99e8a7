//! Review sentiment: a lexicon scorer for English and Chinese text (a port of
//! VADER's rules for English, jieba-rs segmentation plus our own lexicon for
//! Chinese) and an optional learned classifier (hashed TF-IDF + sparse
//! logistic regression) that is blended with it.
//!
//! Scores are in `[-1, 1]`; [`label_of`] turns a score into a [`Label`] with
//! VADER's neutral band (`|score| < 0.05`).
//!
//! Data files: `data/sentiment/vader_lexicon.txt` (VADER, MIT licence, see
//! `LICENSE_vaderSentiment_MIT.txt`; Hutto & Gilbert, ICWSM 2014) and
//! `data/sentiment/zh_lexicon.tsv` (written for patron).

mod chinese;
mod classifier;
mod english;
mod lexicon;
mod tokens;
mod tune;

use rayon::prelude::*;
use std::fmt;

pub use classifier::{Classifier, ClassifierParams};
pub use lexicon::{Lexicon, LexiconScorer};
pub use tune::{RatedMetrics, Tuned, label_of_rating, rated_metrics, train_blended};

/// Scores at or above this are positive (VADER's compound threshold).
pub const POSITIVE_THRESHOLD: f64 = 0.05;
/// Scores at or below this are negative.
pub const NEGATIVE_THRESHOLD: f64 = -0.05;

/// A three-way sentiment label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Positive,
    Neutral,
    Negative,
}

impl Label {
    /// Positive, neutral, negative: the order of per-label counts everywhere.
    pub const ALL: [Label; 3] = [Label::Positive, Label::Neutral, Label::Negative];

    /// This label's place in [`Label::ALL`].
    pub fn index(self) -> usize {
        match self {
            Label::Positive => 0,
            Label::Neutral => 1,
            Label::Negative => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Label::Positive => "positive",
            Label::Neutral => "neutral",
            Label::Negative => "negative",
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A score in `[-1, 1]` and its label.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Score {
    pub score: f64,
    pub label: Label,
}

/// The thresholds used everywhere: `>= 0.05` positive, `<= -0.05` negative,
/// neutral in between (and for NaN).
pub fn label_of(score: f64) -> Label {
    if score >= POSITIVE_THRESHOLD {
        Label::Positive
    } else if score <= NEGATIVE_THRESHOLD {
        Label::Negative
    } else {
        Label::Neutral
    }
}

/// The scorer used by the pipeline: the lexicon scorer, blended with a
/// trained classifier when one is given.
///
/// Blend: `w * lexicon + (1 - w) * classifier`, with `w` the classifier's
/// [`ClassifierParams::lexicon_weight`] (see [`Classifier::with_lexicon_weight`]
/// and [`Classifier::blend`]).
pub struct Sentiment {
    lexicon: LexiconScorer,
    classifier: Option<Classifier>,
}

impl Sentiment {
    pub fn new(lexicon: LexiconScorer, classifier: Option<Classifier>) -> Sentiment {
        Sentiment {
            lexicon,
            classifier,
        }
    }

    pub fn score(&self, text: &str) -> Score {
        let score = match &self.classifier {
            // A blend that gives the lexicon no weight (and no veto) need not run it.
            Some(c) if c.lexicon_weight() == 0.0 && c.silent_threshold() == 0.0 => {
                c.blend(0.0, c.score(text))
            }
            Some(c) => c.blend(self.lexicon.score(text), c.score(text)),
            None => self.lexicon.score(text),
        };
        let score = if score.is_finite() { score } else { 0.0 };
        Score {
            score,
            label: label_of(score),
        }
    }

    /// Scores many texts in parallel (rayon); output order matches input.
    pub fn score_many(&self, texts: &[&str]) -> Vec<Score> {
        texts
            .par_iter()
            .with_min_len(64)
            .map(|t| self.score(t))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_thresholds() {
        assert_eq!(label_of(0.05), Label::Positive);
        assert_eq!(label_of(0.0499), Label::Neutral);
        assert_eq!(label_of(0.0), Label::Neutral);
        assert_eq!(label_of(-0.0499), Label::Neutral);
        assert_eq!(label_of(-0.05), Label::Negative);
        assert_eq!(label_of(1.0), Label::Positive);
        assert_eq!(label_of(-1.0), Label::Negative);
        assert_eq!(label_of(f64::NAN), Label::Neutral);
        assert_eq!(Label::Positive.to_string(), "positive");
        assert_eq!(Label::Neutral.to_string(), "neutral");
        assert_eq!(Label::Negative.to_string(), "negative");
        assert_eq!(
            serde_json::to_string(&Label::Negative).unwrap(),
            "\"negative\""
        );
    }

    #[test]
    fn sentiment_without_and_with_classifier() {
        let s = Sentiment::new(LexiconScorer::builtin(), None);
        let out = s.score_many(&["I love it", "I hate it", "a table", "非常满意", "太差了"]);
        assert_eq!(out[0].label, Label::Positive);
        assert_eq!(out[1].label, Label::Negative);
        assert_eq!(out[2].label, Label::Neutral);
        assert_eq!(out[3].label, Label::Positive);
        assert_eq!(out[4].label, Label::Negative);

        let texts = [
            "great dress",
            "love the fit",
            "awful fabric",
            "returned it, cheap",
        ];
        let clf = Classifier::train(&texts, &[5, 5, 1, 1], &ClassifierParams::default()).unwrap();
        let s = Sentiment::new(LexiconScorer::builtin(), Some(clf));
        for t in [
            "great dress love it",
            "awful cheap fabric",
            "",
            "???",
            "😍😍",
        ] {
            let sc = s.score(t);
            assert!((-1.0..=1.0).contains(&sc.score), "{t}: {}", sc.score);
            assert_eq!(sc.label, label_of(sc.score));
        }
        assert_eq!(s.score("great dress love it").label, Label::Positive);
        assert_eq!(s.score("awful cheap fabric").label, Label::Negative);
    }
}
