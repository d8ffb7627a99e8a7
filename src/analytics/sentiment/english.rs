//! A port of VADER's rules (vaderSentiment 3.3.2, Hutto & Gilbert 2014, MIT
//! licence) for English text.
//!
//! Differences from the Python reference, all deliberate:
//! - emoji are scored from a small built-in valence table ([`EMOJI`]) instead of
//!   being replaced by their English descriptions;
//! - the "but" rule scales by position (the reference looks sentiments up by
//!   value with `list.index`, which mis-scales repeated values).

use super::lexicon::{WordMap, normalize};
use super::tokens::is_emoji;
use std::borrow::Cow;

/// Booster increment.
pub(crate) const B_INCR: f64 = 0.293;
/// Booster decrement (dampeners such as "kind of").
pub(crate) const B_DECR: f64 = -0.293;
/// Emphasis added by an ALL-CAPS word in mixed-case text.
pub(crate) const C_INCR: f64 = 0.733;
/// Negation scalar.
pub(crate) const N_SCALAR: f64 = -0.74;

/// VADER's NEGATE list; [`negated`] matches it with a `match`, and a test
/// checks the two agree.
#[cfg(test)]
pub(crate) const NEGATE: &[&str] = &[
    "aint",
    "arent",
    "cannot",
    "cant",
    "couldnt",
    "darent",
    "didnt",
    "doesnt",
    "ain't",
    "aren't",
    "can't",
    "couldn't",
    "daren't",
    "didn't",
    "doesn't",
    "dont",
    "hadnt",
    "hasnt",
    "havent",
    "isnt",
    "mightnt",
    "mustnt",
    "neither",
    "don't",
    "hadn't",
    "hasn't",
    "haven't",
    "isn't",
    "mightn't",
    "mustn't",
    "neednt",
    "needn't",
    "never",
    "none",
    "nope",
    "nor",
    "not",
    "nothing",
    "nowhere",
    "oughtnt",
    "shant",
    "shouldnt",
    "uhuh",
    "wasnt",
    "werent",
    "oughtn't",
    "shan't",
    "shouldn't",
    "uh-uh",
    "wasn't",
    "weren't",
    "without",
    "wont",
    "wouldnt",
    "won't",
    "wouldn't",
    "rarely",
    "seldom",
    "despite",
];

/// VADER's booster / dampener words.
pub(crate) fn booster(word: &str) -> Option<f64> {
    let v = match word {
        "absolutely" | "amazingly" | "awfully" | "completely" | "considerable" | "considerably"
        | "decidedly" | "deeply" | "effing" | "enormous" | "enormously" | "entirely"
        | "especially" | "exceptional" | "exceptionally" | "extreme" | "extremely"
        | "fabulously" | "flipping" | "flippin" | "frackin" | "fracking" | "fricking"
        | "frickin" | "frigging" | "friggin" | "fully" | "fuckin" | "fucking" | "fuggin"
        | "fugging" | "greatly" | "hella" | "highly" | "hugely" | "incredible" | "incredibly"
        | "intensely" | "major" | "majorly" | "more" | "most" | "particularly" | "purely"
        | "quite" | "really" | "remarkably" | "so" | "substantially" | "thoroughly" | "total"
        | "totally" | "tremendous" | "tremendously" | "uber" | "unbelievably" | "unusually"
        | "utter" | "utterly" | "very" => B_INCR,
        "almost" | "barely" | "hardly" | "just enough" | "kind of" | "kinda" | "kindof"
        | "kind-of" | "less" | "little" | "marginal" | "marginally" | "occasional"
        | "occasionally" | "partly" | "scarce" | "scarcely" | "slight" | "slightly"
        | "somewhat" | "sort of" | "sorta" | "sortof" | "sort-of" => B_DECR,
        _ => return None,
    };
    Some(v)
}

fn special_case(seq: &str) -> Option<f64> {
    Some(match seq {
        "the shit" | "the bomb" | "to die for" => 3.0,
        "bad ass" | "badass" => 1.5,
        "bus stop" => 0.0,
        "yeah right" => -2.0,
        "kiss of death" => -1.5,
        "beating heart" => 3.1,
        "broken heart" => -2.9,
        _ => return None,
    })
}

/// Emoji valences (VADER's scale), keyed by the base code point.
pub(crate) const EMOJI: &[(&str, f64)] = &[
    ("😀", 2.0),
    ("😃", 2.0),
    ("😄", 2.2),
    ("😁", 2.0),
    ("😆", 1.8),
    ("😊", 2.2),
    ("🙂", 1.5),
    ("😉", 1.2),
    ("😍", 3.0),
    ("🥰", 3.0),
    ("😘", 2.3),
    ("😂", 1.5),
    ("🤣", 1.8),
    ("❤", 2.7),
    ("💕", 2.5),
    ("💖", 2.5),
    ("💗", 2.5),
    ("💯", 1.8),
    ("👍", 2.0),
    ("👌", 1.8),
    ("👏", 2.0),
    ("🙏", 1.2),
    ("🎉", 2.2),
    ("✨", 1.0),
    ("🔥", 1.5),
    ("😎", 1.5),
    ("🤩", 2.8),
    ("😋", 1.8),
    ("🥳", 2.2),
    ("😇", 1.8),
    ("⭐", 1.2),
    ("🌟", 1.5),
    ("💪", 1.5),
    ("😻", 2.6),
    ("☺", 2.0),
    ("😞", -2.2),
    ("😢", -2.2),
    ("😭", -2.4),
    ("😡", -2.8),
    ("😠", -2.5),
    ("🤬", -3.0),
    ("👎", -2.0),
    ("💔", -2.6),
    ("🤮", -2.8),
    ("🤢", -2.3),
    ("😤", -1.8),
    ("😒", -1.6),
    ("😔", -1.8),
    ("😩", -2.0),
    ("😫", -2.0),
    ("😖", -2.0),
    ("😣", -1.8),
    ("😕", -1.3),
    ("🙁", -1.5),
    ("☹", -1.8),
    ("😰", -1.9),
    ("😱", -1.5),
    ("💩", -2.0),
    ("😑", -0.8),
    ("🙄", -1.2),
    ("😓", -1.5),
    ("😟", -1.6),
    ("😿", -2.0),
];

/// Python's `str.isupper()`: some cased character and no lowercase one.
fn is_upper(s: &str) -> bool {
    let mut cased = false;
    for c in s.chars() {
        if c.is_lowercase() {
            return false;
        }
        if c.is_uppercase() {
            cased = true;
        }
    }
    cased
}

/// VADER's `_strip_punc_if_word`.
fn strip_punc_if_word(tok: &str) -> &str {
    // Python's string.punctuation is exactly ASCII punctuation.
    let stripped = tok.trim_matches(|c: char| c.is_ascii_punctuation());
    if stripped.len() <= 2 || (!stripped.is_ascii() && stripped.chars().count() <= 2) {
        tok
    } else {
        stripped
    }
}

pub(crate) fn negated(word: &str) -> bool {
    // A `match` compiles to a length dispatch: much faster than scanning NEGATE.
    let listed = matches!(
        word,
        "aint"
            | "arent"
            | "cannot"
            | "cant"
            | "couldnt"
            | "darent"
            | "didnt"
            | "doesnt"
            | "ain't"
            | "aren't"
            | "can't"
            | "couldn't"
            | "daren't"
            | "didn't"
            | "doesn't"
            | "dont"
            | "hadnt"
            | "hasnt"
            | "havent"
            | "isnt"
            | "mightnt"
            | "mustnt"
            | "neither"
            | "don't"
            | "hadn't"
            | "hasn't"
            | "haven't"
            | "isn't"
            | "mightn't"
            | "mustn't"
            | "neednt"
            | "needn't"
            | "never"
            | "none"
            | "nope"
            | "nor"
            | "not"
            | "nothing"
            | "nowhere"
            | "oughtnt"
            | "shant"
            | "shouldnt"
            | "uhuh"
            | "wasnt"
            | "werent"
            | "oughtn't"
            | "shan't"
            | "shouldn't"
            | "uh-uh"
            | "wasn't"
            | "weren't"
            | "without"
            | "wont"
            | "wouldnt"
            | "won't"
            | "wouldn't"
            | "rarely"
            | "seldom"
            | "despite"
    );
    listed || (word.as_bytes().contains(&b'\'') && word.contains("n't"))
}

struct Tok<'a> {
    /// Lowercase form (borrowed when the token already is lowercase).
    lower: Cow<'a, str>,
    upper: bool,
    val: Option<f64>,
    /// A negation word ([`negated`]).
    neg: bool,
    /// Booster / dampener scalar ([`booster`]).
    boost: Option<f64>,
    /// Part of a special-case idiom or a multi-word booster ("kind of").
    idiom: bool,
}

/// Words that occur in [`special_case`] keys or multi-word boosters: the
/// n-gram check is skipped unless one of them is near.
fn idiom_word(w: &str) -> bool {
    matches!(
        w,
        "the"
            | "shit"
            | "bomb"
            | "bad"
            | "ass"
            | "badass"
            | "bus"
            | "stop"
            | "yeah"
            | "right"
            | "kiss"
            | "of"
            | "death"
            | "to"
            | "die"
            | "for"
            | "beating"
            | "heart"
            | "broken"
            | "just"
            | "enough"
            | "kind"
            | "sort"
    )
}

/// Puts spaces around emoji so each is its own token; drops variation selectors.
fn separate_emoji(text: &str) -> std::borrow::Cow<'_, str> {
    if text.is_ascii() || !text.chars().any(|c| is_emoji(c) || c == '\u{FE0F}') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c == '\u{FE0F}' {
            continue;
        }
        if is_emoji(c) {
            out.push(' ');
            out.push(c);
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Exclamation / question-mark amplifier (VADER's `_punctuation_emphasis`).
pub(crate) fn punctuation_emphasis(ep_count: usize, qm_count: usize) -> f64 {
    let ep = ep_count.min(4) as f64 * 0.292;
    let qm = if qm_count > 1 {
        if qm_count <= 3 {
            qm_count as f64 * 0.18
        } else {
            0.96
        }
    } else {
        0.0
    };
    ep + qm
}

/// Sums sentiments, adds punctuation emphasis away from zero, normalises.
pub(crate) fn score_valence(sentiments: &[f64], ep: usize, qm: usize) -> f64 {
    if sentiments.is_empty() {
        return 0.0;
    }
    let mut sum: f64 = sentiments.iter().sum();
    let amp = punctuation_emphasis(ep, qm);
    if sum > 0.0 {
        sum += amp;
    } else if sum < 0.0 {
        sum -= amp;
    }
    normalize(sum)
}

/// VADER compound score of English text.
pub(crate) fn score(words: &WordMap, text: &str) -> f64 {
    let text = separate_emoji(text);
    let text = text.trim();
    let toks: Vec<Tok> = text
        .split_whitespace()
        .map(|raw| {
            let w = strip_punc_if_word(raw);
            let lower: Cow<'_, str> = if w.is_ascii() {
                if w.bytes().any(|b| b.is_ascii_uppercase()) {
                    Cow::Owned(w.to_ascii_lowercase())
                } else {
                    Cow::Borrowed(w)
                }
            } else {
                Cow::Owned(w.to_lowercase())
            };
            let val = words.get(lower.as_ref()).copied();
            Tok {
                upper: is_upper(w),
                idiom: idiom_word(&lower),
                neg: negated(&lower),
                boost: booster(&lower),
                val,
                lower,
            }
        })
        .collect();
    if toks.is_empty() {
        return 0.0;
    }
    let n = toks.len();
    let allcaps = toks.iter().filter(|t| t.upper).count();
    let cap_diff = allcaps > 0 && allcaps < n;

    let mut sentiments = Vec::with_capacity(n);
    for i in 0..n {
        if toks[i].boost.is_some()
            || (i + 1 < n && toks[i].lower == "kind" && toks[i + 1].lower == "of")
        {
            sentiments.push(0.0);
            continue;
        }
        sentiments.push(sentiment_valence(&toks, i, cap_diff));
    }
    but_check(&toks, &mut sentiments);
    let ep = text.matches('!').count();
    let qm = text.matches('?').count();
    score_valence(&sentiments, ep, qm)
}

fn scalar_inc_dec(tok: &Tok, valence: f64, cap_diff: bool) -> f64 {
    let Some(mut scalar) = tok.boost else {
        return 0.0;
    };
    if valence < 0.0 {
        scalar = -scalar;
    }
    if tok.upper && cap_diff {
        if valence > 0.0 {
            scalar += C_INCR;
        } else {
            scalar -= C_INCR;
        }
    }
    scalar
}

fn sentiment_valence(toks: &[Tok], i: usize, cap_diff: bool) -> f64 {
    let Some(base) = toks[i].val else {
        return 0.0;
    };
    let l = |k: usize| toks[k].lower.as_ref();
    let n = toks.len();
    let mut v = base;
    // "no" as a negation of the next lexicon word rather than a word itself.
    if l(i) == "no" && i + 1 < n && toks[i + 1].val.is_some() {
        v = 0.0;
    }
    if (i > 0 && l(i - 1) == "no")
        || (i > 1 && l(i - 2) == "no")
        || (i > 2 && l(i - 3) == "no" && matches!(l(i - 1), "or" | "nor"))
    {
        v = base * N_SCALAR;
    }
    if toks[i].upper && cap_diff {
        if v > 0.0 {
            v += C_INCR;
        } else {
            v -= C_INCR;
        }
    }
    for start_i in 0..3 {
        if i > start_i && toks[i - (start_i + 1)].val.is_none() {
            let mut s = scalar_inc_dec(&toks[i - (start_i + 1)], v, cap_diff);
            if start_i == 1 && s != 0.0 {
                s *= 0.95;
            }
            if start_i == 2 && s != 0.0 {
                s *= 0.9;
            }
            v += s;
            v = negation_check(v, toks, start_i, i);
            if start_i == 2 {
                v = special_idioms_check(v, toks, i);
            }
        }
    }
    least_check(v, toks, i)
}

fn negation_check(v: f64, toks: &[Tok], start_i: usize, i: usize) -> f64 {
    let l = |k: usize| toks[k].lower.as_ref();
    let so_this = |w: &str| w == "so" || w == "this";
    match start_i {
        0 => {
            if toks[i - 1].neg {
                return v * N_SCALAR;
            }
        }
        1 => {
            if l(i - 2) == "never" && so_this(l(i - 1)) {
                return v * 1.25;
            } else if l(i - 2) == "without" && l(i - 1) == "doubt" {
                return v;
            } else if toks[i - 2].neg {
                return v * N_SCALAR;
            }
        }
        _ => {
            // Mirrors the reference's operator precedence:
            // (never and so/this at i-2) or (so/this at i-1).
            if (l(i - 3) == "never" && so_this(l(i - 2))) || so_this(l(i - 1)) {
                return v * 1.25;
            } else if l(i - 3) == "without" && (l(i - 2) == "doubt" || l(i - 1) == "doubt") {
                return v;
            } else if toks[i - 3].neg {
                return v * N_SCALAR;
            }
        }
    }
    v
}

fn special_idioms_check(mut v: f64, toks: &[Tok], i: usize) -> f64 {
    let l = |k: usize| toks[k].lower.as_ref();
    let n = toks.len();
    // Every idiom / n-gram booster has at least one word of `idiom_word`;
    // skip the string building when none is within reach.
    if !toks[i - 3..(i + 3).min(n)].iter().any(|t| t.idiom) {
        return v;
    }
    let onezero = format!("{} {}", l(i - 1), l(i));
    let twoonezero = format!("{} {} {}", l(i - 2), l(i - 1), l(i));
    let twoone = format!("{} {}", l(i - 2), l(i - 1));
    let threetwoone = format!("{} {} {}", l(i - 3), l(i - 2), l(i - 1));
    let threetwo = format!("{} {}", l(i - 3), l(i - 2));
    for seq in [&onezero, &twoonezero, &twoone, &threetwoone, &threetwo] {
        if let Some(s) = special_case(seq) {
            v = s;
            break;
        }
    }
    if n - 1 > i
        && let Some(s) = special_case(&format!("{} {}", l(i), l(i + 1)))
    {
        v = s;
    }
    if n - 1 > i + 1
        && let Some(s) = special_case(&format!("{} {} {}", l(i), l(i + 1), l(i + 2)))
    {
        v = s;
    }
    for ngram in [&threetwoone, &threetwo, &twoone] {
        if let Some(b) = booster(ngram) {
            v += b;
        }
    }
    v
}

fn least_check(v: f64, toks: &[Tok], i: usize) -> f64 {
    let l = |k: usize| toks[k].lower.as_ref();
    if i > 1 && toks[i - 1].val.is_none() && l(i - 1) == "least" {
        if l(i - 2) != "at" && l(i - 2) != "very" {
            return v * N_SCALAR;
        }
    } else if i > 0 && toks[i - 1].val.is_none() && l(i - 1) == "least" {
        return v * N_SCALAR;
    }
    v
}

fn but_check(toks: &[Tok], sentiments: &mut [f64]) {
    if let Some(bi) = toks.iter().position(|t| t.lower == "but") {
        for (si, s) in sentiments.iter_mut().enumerate() {
            if si < bi {
                *s *= 0.5;
            } else if si > bi {
                *s *= 1.5;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::LexiconScorer;

    fn s(t: &str) -> f64 {
        LexiconScorer::builtin().score(t)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-4
    }

    #[test]
    fn matches_vader_reference_values() {
        // Values from vaderSentiment 3.3.2's polarity_scores(...)["compound"].
        assert!(close(s("good"), 0.4404), "{}", s("good"));
        assert!(close(s("not good"), -0.3412), "{}", s("not good"));
        assert!(close(s("very good"), 0.4927), "{}", s("very good"));
        assert!(close(s("good!!!"), 0.5826), "{}", s("good!!!"));
        assert_eq!(s("the table is brown"), 0.0);
        assert_eq!(s(""), 0.0);
    }

    #[test]
    fn negation_list_and_match_agree() {
        for w in super::NEGATE {
            assert!(super::negated(w), "{w}");
        }
        assert!(super::negated("shouldn't've"));
        assert!(!super::negated("note") && !super::negated("nots") && !super::negated("good"));
    }

    #[test]
    fn rules_move_the_score_the_right_way() {
        // negation
        assert!(s("good") > 0.0 && s("not good") < 0.0);
        assert!(s("it isn't bad") > 0.0);
        // intensifier / dampener
        assert!(s("very good") > s("good"));
        // (as in VADER, "kind of" dampens only via the n-gram check, 3+ words in)
        assert!(s("the food is kind of good") < s("the food is good"));
        // contrast
        assert!(s("good but terrible") < 0.0);
        assert!(s("The food was good but the service was terrible") < 0.0);
        // caps emphasis in mixed case
        assert!(s("the food is GOOD") > s("the food is good"));
        // exclamation
        assert!(s("good!!!") > s("good"));
        assert!(s("good!!!!!!!") == s("good!!!!"));
        // emoji
        assert!(s("😍") > 0.3);
        assert!(s("👎") < -0.3);
        assert!(s("the dress 😍") > 0.0);
        assert!(s("❤️") > 0.0);
        // least
        assert!(s("the least good") < 0.0);
        assert!(s("at least good") > 0.0);
        // special case
        assert!(s("this phone is the bomb") > s("this phone is good"));
    }
}
