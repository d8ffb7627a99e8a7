//! Chinese (and mixed Chinese/English) text: jieba-rs segmentation, then
//! VADER-like rules over the tokens:
//! - a negator within the previous 1-3 tokens of the same clause flips the
//!   valence (× [`N_SCALAR`]);
//! - intensifiers add (dampeners subtract) a scalar away from zero, decayed
//!   with distance like VADER's boosters;
//! - the first contrast word (但是, 可是, 不过, ...) halves what comes before it
//!   and multiplies what follows by 1.5;
//! - `!`/`！` and `?`/`？` amplify as in VADER; the same normalisation.
//!
//! Tokens not in the lexicon that start with a negator or intensifier whose
//! remainder is in the lexicon (不好, 太慢, 非常满意) are split.

use super::english::{self, B_DECR, B_INCR, N_SCALAR};
use super::lexicon::WordMap;
use super::tokens::jieba;

/// Chinese negators.
pub(crate) const NEGATORS: &[&str] = &[
    "不",
    "没",
    "没有",
    "别",
    "未",
    "无",
    "非",
    "不是",
    "不太",
    "不够",
    "并不",
    "并非",
    "从不",
    "从没",
    "从未",
    "毫不",
    "绝不",
    "决不",
    "不会",
    "不算",
    "不怎么",
    "不大",
    "没什么",
    "不再",
    "不要",
    "未必",
    "甭",
];

/// Chinese contrast conjunctions.
pub(crate) const CONTRAST: &[&str] = &["但是", "但", "可是", "不过", "然而", "只是", "却"];

/// Chinese intensifiers (positive scalar) and dampeners (negative scalar).
pub(crate) fn intensifier(tok: &str) -> Option<f64> {
    let v = match tok {
        "非常" | "特别" | "超" | "超级" | "十分" | "极其" | "极" | "极为" | "太" | "最"
        | "相当" | "格外" | "万分" | "巨" | "贼" | "实在" | "尤其" | "特" | "好好" | "非常之"
        | "超级无敌" | "真是" | "简直" | "完全" | "绝对" | "彻底" => B_INCR,
        "很" | "真" | "真的" | "挺" | "蛮" | "更" | "更加" | "这么" | "那么" | "如此" | "好不"
        | "比较" | "还算" => 0.15,
        "有点" | "有点儿" | "有些" | "稍微" | "稍" | "略" | "略微" | "一点" | "一点点" | "稍稍"
        | "些许" => B_DECR,
        _ => return None,
    };
    Some(v)
}

fn is_negator(tok: &str) -> bool {
    NEGATORS.contains(&tok) || english::negated(tok)
}

fn is_contrast(tok: &str) -> bool {
    CONTRAST.contains(&tok) || tok == "but"
}

fn modifier(tok: &str) -> Option<f64> {
    intensifier(tok).or_else(|| english::booster(tok))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Item {
    /// Clause boundary: punctuation (whitespace tokens are skipped, so
    /// "not good" in mixed text still negates).
    Boundary,
    Negator,
    Modifier(f64),
    Contrast,
    Word(f64),
    Other,
}

fn is_punct(c: char) -> bool {
    c.is_whitespace()
        || c.is_ascii_punctuation()
        || "，。！？；：、…～·「」『』（）【】《》“”‘’—".contains(c)
}

/// A token that is not a lexicon word but starts with a negator or modifier
/// whose remainder is: 不好 → 好 × N_SCALAR, 太慢 → 慢 boosted.
fn split_prefix(words: &WordMap, tok: &str) -> Option<f64> {
    for (k, _) in tok.char_indices().skip(1) {
        let (head, rest) = tok.split_at(k);
        let Some(&v) = words.get(rest) else { continue };
        if is_negator(head) {
            return Some(v * N_SCALAR);
        }
        if let Some(m) = modifier(head) {
            return Some(if v < 0.0 { v - m } else { v + m });
        }
    }
    None
}

fn classify(words: &WordMap, tok: &str) -> Item {
    if tok.chars().all(is_punct) {
        return Item::Boundary;
    }
    let lower;
    let tok = if tok.is_ascii() {
        lower = tok.to_ascii_lowercase();
        lower.as_str()
    } else {
        tok
    };
    if is_negator(tok) {
        Item::Negator
    } else if let Some(m) = modifier(tok) {
        Item::Modifier(m)
    } else if is_contrast(tok) {
        Item::Contrast
    } else if let Some(&v) = words.get(tok) {
        Item::Word(v)
    } else if let Some(v) = split_prefix(words, tok) {
        Item::Word(v)
    } else {
        Item::Other
    }
}

pub(crate) fn score(words: &WordMap, text: &str) -> f64 {
    let items: Vec<Item> = jieba()
        .cut(text, true)
        .into_iter()
        .filter(|t| !t.trim().is_empty())
        .map(|t| classify(words, t))
        .collect();

    let mut sentiments: Vec<f64> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Item::Word(base) = *item else {
            sentiments.push(0.0);
            continue;
        };
        let mut v = base;
        let mut dist = 0usize;
        let mut j = i;
        while j > 0 && dist < 3 {
            j -= 1;
            match items[j] {
                Item::Boundary | Item::Contrast => break,
                Item::Modifier(m) => {
                    let decay = [1.0, 0.95, 0.9][dist];
                    v += if v < 0.0 { -m } else { m } * decay;
                }
                Item::Negator => v *= N_SCALAR,
                Item::Word(_) | Item::Other => {}
            }
            dist += 1;
        }
        sentiments.push(v);
    }
    if let Some(ci) = items.iter().position(|it| *it == Item::Contrast) {
        for (si, s) in sentiments.iter_mut().enumerate() {
            if si < ci {
                *s *= 0.5;
            } else if si > ci {
                *s *= 1.5;
            }
        }
    }
    let ep = text.matches(['!', '！']).count();
    let qm = text.matches(['?', '？']).count();
    english::score_valence(&sentiments, ep, qm)
}

#[cfg(test)]
mod tests {
    use super::super::LexiconScorer;
    use super::super::tokens::jieba;

    fn s(t: &str) -> f64 {
        LexiconScorer::builtin().score(t)
    }

    #[test]
    fn negation() {
        assert!(s("好") > 0.0);
        assert!(s("不好") < 0.0, "{}", s("不好"));
        assert!(s("这个不好") < 0.0);
        assert!(s("我不喜欢这件衣服") < 0.0);
        assert!(s("没有色差") > 0.0, "{}", s("没有色差"));
        assert!(s("没问题") > 0.0, "{}", s("没问题"));
        assert!(s("不是很满意") < 0.0);
    }

    #[test]
    fn intensifiers() {
        assert!(s("非常好") > s("好"), "{} {}", s("非常好"), s("好"));
        assert!(s("衣服非常漂亮") > s("衣服漂亮"));
        assert!(s("有点贵") > s("贵"), "{} {}", s("有点贵"), s("贵"));
        assert!(s("太差") < s("差"));
    }

    #[test]
    fn contrast() {
        assert!(s("好但是很差") < 0.0, "{}", s("好但是很差"));
        assert!(
            s("质量好，但是物流太慢") < 0.0,
            "{}",
            s("质量好，但是物流太慢")
        );
        assert!(s("物流太慢，但是质量好") > 0.0);
    }

    #[test]
    fn emphasis_and_emoji() {
        assert!(s("好！！！") > s("好"));
        assert!(s("好!!") > s("好"));
        assert!(s("差！！") < s("差"));
        assert!(s("衣服收到了😍") > 0.0);
        assert!(s("衣服收到了👎") < 0.0);
    }

    #[test]
    fn segmentation_uses_words() {
        let toks = jieba().cut("这件衣服真是物超所值", true);
        assert!(toks.contains(&"物超所值"), "{toks:?}");
        assert!(toks.contains(&"衣服"), "{toks:?}");
        assert!(s("这件衣服真是物超所值") > 0.5);
        // Single characters alone would read 垃 and 圾 as unknown.
        assert!(s("完全是垃圾") < -0.5);
        assert!(s("假货，要退货") < -0.5);
    }

    #[test]
    fn mixed_language() {
        assert!(s("衣服 very good") > 0.0);
        assert!(s("衣服 not good") < 0.0);
        assert_eq!(s("今天下雨"), 0.0);
    }
}
