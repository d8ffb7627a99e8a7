//! Lexicon files and the lexicon scorer.

use super::tokens::{FxBuild, has_cjk};
use super::{chinese, english};
use std::collections::HashMap;
use std::sync::OnceLock;

pub(crate) type WordMap = HashMap<String, f64, FxBuild>;

const VADER_LEXICON: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/sentiment/vader_lexicon.txt"
));
const ZH_LEXICON: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/sentiment/zh_lexicon.tsv"
));

/// A word list with valences on VADER's `-4..+4` scale.
///
/// Format: one entry per line, `token<TAB>valence[<TAB>anything]`; blank lines
/// and lines starting with `#` are ignored; a later duplicate wins. Tokens are
/// matched lowercase.
#[derive(Debug, Clone, Default)]
pub struct Lexicon {
    entries: Vec<(String, f64)>,
}

impl Lexicon {
    pub fn parse(text: &str) -> Result<Lexicon, String> {
        let mut entries = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line_no = n + 1;
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split('\t');
            let token = parts.next().unwrap_or("").trim();
            if token.is_empty() {
                return Err(format!("line {line_no}: empty token"));
            }
            let Some(val) = parts.next() else {
                return Err(format!(
                    "line {line_no}: expected token<TAB>valence, found no tab"
                ));
            };
            let valence: f64 = val
                .trim()
                .parse()
                .map_err(|_| format!("line {line_no}: valence {:?} is not a number", val.trim()))?;
            if !valence.is_finite() || !(-4.0..=4.0).contains(&valence) {
                return Err(format!("line {line_no}: valence {valence} outside -4..4"));
            }
            entries.push((token.to_lowercase(), valence));
        }
        Ok(Lexicon { entries })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn builtin_words() -> &'static WordMap {
    static WORDS: OnceLock<WordMap> = OnceLock::new();
    WORDS.get_or_init(|| {
        let mut map = WordMap::default();
        // The shipped files are checked by the tests; a broken file would
        // leave the scorer with fewer words rather than panic.
        for text in [VADER_LEXICON, ZH_LEXICON] {
            if let Ok(lex) = Lexicon::parse(text) {
                map.extend(lex.entries);
            }
        }
        for &(emoji, v) in english::EMOJI {
            map.insert(emoji.to_string(), v);
        }
        map
    })
}

/// Rule-based scorer: VADER's rules for English, jieba segmentation and
/// analogous rules for Chinese (any text containing CJK ideographs).
#[derive(Debug, Clone)]
pub struct LexiconScorer {
    words: WordMap,
}

impl LexiconScorer {
    /// VADER's English lexicon, our Chinese lexicon and a small emoji table.
    pub fn builtin() -> LexiconScorer {
        LexiconScorer {
            words: builtin_words().clone(),
        }
    }

    /// Adds the entries of `extra`, overriding existing ones.
    pub fn with_lexicon(mut self, extra: Lexicon) -> LexiconScorer {
        self.words.extend(extra.entries);
        self
    }

    /// Sentiment in `[-1, 1]` (0 for text without sentiment words).
    pub fn score(&self, text: &str) -> f64 {
        let s = if has_cjk(text) {
            chinese::score(&self.words, text)
        } else {
            english::score(&self.words, text)
        };
        if s.is_finite() {
            s.clamp(-1.0, 1.0)
        } else {
            0.0
        }
    }

    #[cfg(test)]
    pub(crate) fn valence(&self, token: &str) -> Option<f64> {
        self.words.get(token).copied()
    }
}

/// VADER's normalisation of a summed valence into `(-1, 1)`.
pub(crate) fn normalize(score: f64) -> f64 {
    const ALPHA: f64 = 15.0;
    (score / (score * score + ALPHA).sqrt()).clamp(-1.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_lexicons_parse() {
        let en = Lexicon::parse(VADER_LEXICON).unwrap();
        assert!(en.len() > 7000);
        let zh = Lexicon::parse(ZH_LEXICON).unwrap();
        assert!(zh.len() > 200, "{}", zh.len());
        let s = LexiconScorer::builtin();
        assert_eq!(s.valence("good"), Some(1.9));
        assert!(s.valence("物超所值").unwrap() > 2.0);
        assert!(s.valence("垃圾").unwrap() < -2.0);
    }

    #[test]
    fn parse_errors_name_the_line() {
        let err = Lexicon::parse("# header\ngood\t1.9\nbad -2.5\n").unwrap_err();
        assert!(err.starts_with("line 3:"), "{err}");
        let err = Lexicon::parse("good\t1.9\n\nbad\tvery\n").unwrap_err();
        assert!(
            err.starts_with("line 3:") && err.contains("not a number"),
            "{err}"
        );
        let err = Lexicon::parse("x\t9\n").unwrap_err();
        assert!(err.starts_with("line 1:"), "{err}");
        let err = Lexicon::parse("\t1\n").unwrap_err();
        assert!(err.starts_with("line 1:"), "{err}");
        let ok = Lexicon::parse("# c\r\nGood\t1.0\tstd\r\ngood\t2.0\r\n").unwrap();
        assert_eq!(ok.len(), 2);
    }

    #[test]
    fn with_lexicon_overrides_and_extends() {
        let base = LexiconScorer::builtin();
        assert_eq!(base.score("zorblax"), 0.0);
        let extra = Lexicon::parse("zorblax\t3.0\ngood\t-2.0\n").unwrap();
        let s = base.with_lexicon(extra);
        assert!(s.score("zorblax") > 0.5);
        assert!(s.score("good") < 0.0);
    }

    #[test]
    fn normalize_matches_vader() {
        assert!((normalize(1.9) - 0.4404).abs() < 1e-4);
        assert_eq!(normalize(0.0), 0.0);
        assert!(normalize(1e9) <= 1.0 && normalize(-1e9) >= -1.0);
    }
}
