//! Shared text helpers: CJK detection, the jieba segmenter, a fast hasher and
//! the classifier's feature tokens.

use jieba_rs::Jieba;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

/// The FxHash mixing function (as in rustc): fast for short keys. Lexicon
/// keys are our own data, so HashDoS resistance is not needed.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            self.add(u64::from_le_bytes(b));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

/// Stable 64-bit hash of a token, used for feature hashing (must not change
/// between versions: trained models depend on it).
pub(crate) fn token_hash(s: &str) -> u64 {
    // FNV-1a, then a murmur finaliser for better low bits.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in s.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    fmix(h)
}

pub(crate) fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0xF900..=0xFAFF | 0x20000..=0x2A6DF)
}

pub(crate) fn has_cjk(text: &str) -> bool {
    // Fast path: ASCII text has no CJK.
    !text.is_ascii() && text.chars().any(is_cjk)
}

/// The process-wide jieba segmenter (building its dictionary takes a while).
pub(crate) fn jieba() -> &'static Jieba {
    static JIEBA: OnceLock<Jieba> = OnceLock::new();
    JIEBA.get_or_init(Jieba::new)
}

/// Emoji and pictographs (kept as their own tokens).
pub(crate) fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x1F300..=0x1FAFF | 0x2600..=0x27BF | 0x2B50 | 0x2B55)
}

/// Tokens for the classifier: lowercase words (letters, digits, apostrophes),
/// `!` and `?`, single emoji, and jieba words for text containing CJK.
/// Calls `f` for each token in order.
pub(crate) fn feature_tokens(text: &str, mut f: impl FnMut(&str)) {
    if has_cjk(text) {
        let mut buf = String::new();
        for tok in jieba().cut(text, false) {
            let t = tok.trim();
            if t.is_empty() {
                continue;
            }
            if t.chars()
                .all(|c| c.is_alphanumeric() || c == '\'' || is_emoji(c))
            {
                buf.clear();
                buf.extend(t.chars().flat_map(char::to_lowercase));
                f(&buf);
            } else if t.contains(['!', '！']) {
                f("!");
            } else if t.contains(['?', '？']) {
                f("?");
            }
        }
        return;
    }
    let mut buf = String::with_capacity(32);
    let flush = |buf: &mut String, f: &mut dyn FnMut(&str)| {
        let w = buf.trim_matches('\'');
        if !w.is_empty() {
            f(w);
        }
        buf.clear();
    };
    for c in text.chars() {
        if c.is_alphanumeric() || c == '\'' || c == '\u{2019}' {
            if c.is_ascii() {
                buf.push(c.to_ascii_lowercase());
            } else if c == '\u{2019}' {
                buf.push('\'');
            } else {
                buf.extend(c.to_lowercase());
            }
        } else {
            flush(&mut buf, &mut f);
            if c == '!' {
                f("!");
            } else if c == '?' {
                f("?");
            } else if is_emoji(c) {
                let mut tmp = [0u8; 4];
                f(c.encode_utf8(&mut tmp));
            }
        }
    }
    flush(&mut buf, &mut f);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(t: &str) -> Vec<String> {
        let mut v = Vec::new();
        feature_tokens(t, |s| v.push(s.to_string()));
        v
    }

    #[test]
    fn english_tokens() {
        assert_eq!(
            toks("Don't LIKE it!! 😍 Great’s"),
            ["don't", "like", "it", "!", "!", "😍", "great's"]
        );
    }

    #[test]
    fn chinese_tokens_are_words() {
        let t = toks("这件衣服物超所值！");
        assert!(t.iter().any(|w| w == "物超所值"), "{t:?}");
        assert!(t.iter().any(|w| w == "!"), "{t:?}");
    }

    #[test]
    fn cjk_detection() {
        assert!(has_cjk("abc 好"));
        assert!(!has_cjk("café 😍"));
    }
}
