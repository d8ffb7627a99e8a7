//! Recommenders for implicit-feedback purchase data.
//!
//! The module is pure: plain data in, plain data out. No I/O, no clock, no
//! database. Ids are dense (`0..n_users`, `0..n_items`); mapping external ids
//! (customer numbers, stock codes) to dense ids is the caller's job.
//!
//! Sources:
//! - [`ItemKnn`]: item-item cosine on the item-user matrix, top-K neighbours.
//! - [`Als`]: implicit ALS (Hu, Koren & Volinsky 2008) solved with conjugate
//!   gradient, with an exact Cholesky fold-in for new users.
//! - [`Content`]: TF-IDF (English + jieba-segmented Chinese) item similarity.
//! - [`Popularity`]: overall and per-segment popularity (cold-start fallback).
//! - [`HistoryScorer`]: the user's own purchases, frequency with recency decay
//!   (repeat buying).
//! - [`hybrid`]: per-user max-normalised weighted sum of the above, with
//!   weights tuned by grid search on a validation split ([`tune_weights`]).
//!
//! Metrics and a time-split helper live in [`eval`].

pub mod als;
pub mod content;
pub mod eval;
pub mod history;
pub mod hybrid;
pub mod itemknn;
pub mod matrix;
pub mod popularity;
pub mod serve;

pub use als::{Als, AlsParams};
pub use content::{Content, ContentParams};
pub use history::{Event, HistoryScorer};
pub use hybrid::{Hybrid, HybridWeights, tune_weights};
pub use itemknn::{ItemKnn, KnnParams};
pub use matrix::{Csr, Interaction, Interactions};
pub use popularity::Popularity;
pub use serve::Explained;

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// Which recommender produced (or contributed most to) a recommendation.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    ItemKnn,
    Als,
    Content,
    Popularity,
    /// The user's own purchase history (repeat buying).
    History,
    Hybrid,
}

impl Source {
    /// The stored name (as serialised): `item_knn`, `als`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            Source::ItemKnn => "item_knn",
            Source::Als => "als",
            Source::Content => "content",
            Source::Popularity => "popularity",
            Source::History => "history",
            Source::Hybrid => "hybrid",
        }
    }
}

/// One recommended item.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct Recommendation {
    pub item: u32,
    pub score: f32,
    pub source: Source,
    /// Another item from the user's history that contributed most to this one's score,
    /// when the source can tell; never the recommended item itself (see [`Reason`] for
    /// what a customer is told).
    pub because: Option<u32>,
}

/// What a customer did with an item, strongest first: a reason names the strongest.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Did {
    Bought,
    /// Put it in their cart (without buying it).
    Carted,
    /// Viewed or clicked it (without carting or buying it).
    Viewed,
}

impl Did {
    pub fn as_str(self) -> &'static str {
        match self {
            Did::Bought => "bought",
            Did::Carted => "carted",
            Did::Viewed => "viewed",
        }
    }
}

/// Why an item is recommended, as the customer is told: always something they really did,
/// or a popularity fallback that says so.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Like `item`, another product the customer `did` something with.
    Like { item: u32, did: Did },
    /// The customer `did` something with the recommended item itself: bought it before
    /// (repeat buying), or carted or viewed it.
    Own(Did),
    /// Popular with the customers of their segment.
    PopularInSegment,
    /// Popular with customers at large (no segment, or the segment's list ran out).
    Popular,
}

impl Reason {
    /// The stored name of the reason's kind: what the customer did (`bought`, `carted`,
    /// `viewed`), or `popular_in_segment` / `popular`.
    pub fn kind(self) -> &'static str {
        match self {
            Reason::Like { did, .. } | Reason::Own(did) => did.as_str(),
            Reason::PopularInSegment => "popular_in_segment",
            Reason::Popular => "popular",
        }
    }

    /// The other product it names, if any.
    pub fn item(self) -> Option<u32> {
        match self {
            Reason::Like { item, .. } => Some(item),
            _ => None,
        }
    }
}

/// What to leave out of a recommendation list.
///
/// Items in the user's history are excluded unless `repeat` is true; items in
/// `extra` (sorted ascending) are always excluded.
#[derive(Clone, Copy, Debug, Default)]
pub struct Exclude<'a> {
    pub repeat: bool,
    pub extra: &'a [u32],
}

impl<'a> Exclude<'a> {
    /// Exclude already-interacted items (the default, "new items" mode).
    pub fn new_items() -> Self {
        Exclude {
            repeat: false,
            extra: &[],
        }
    }

    /// Allow items from the history ("repeat allowed" mode).
    pub fn repeat_allowed() -> Self {
        Exclude {
            repeat: true,
            extra: &[],
        }
    }

    /// `history` must be sorted by item (see [`sorted_history`]).
    pub(crate) fn excludes(&self, item: u32, history: &[(u32, f32)]) -> bool {
        (!self.repeat && history.binary_search_by_key(&item, |&(i, _)| i).is_ok())
            || self.extra.binary_search(&item).is_ok()
    }
}

/// Returns the history sorted by item with duplicate items merged (weights
/// summed). Borrowed when already sorted and unique.
pub(crate) fn sorted_history(history: &[(u32, f32)]) -> std::borrow::Cow<'_, [(u32, f32)]> {
    if history.windows(2).all(|w| w[0].0 < w[1].0) {
        return std::borrow::Cow::Borrowed(history);
    }
    let mut v = history.to_vec();
    v.sort_by_key(|&(i, _)| i);
    let mut out: Vec<(u32, f32)> = Vec::with_capacity(v.len());
    for (i, w) in v {
        match out.last_mut() {
            Some(last) if last.0 == i => last.1 += w,
            _ => out.push((i, w)),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Descending score, then ascending item id: a total, deterministic order.
pub(crate) fn rank_order(a: &Recommendation, b: &Recommendation) -> Ordering {
    b.score
        .partial_cmp(&a.score)
        .unwrap_or(Ordering::Equal)
        .then(a.item.cmp(&b.item))
}

/// Keeps the best `n` of `recs` (by [`rank_order`]), sorted.
pub(crate) fn top_n(mut recs: Vec<Recommendation>, n: usize) -> Vec<Recommendation> {
    recs.retain(|r| r.score.is_finite());
    if n == 0 {
        return Vec::new();
    }
    if recs.len() > n {
        recs.select_nth_unstable_by(n - 1, rank_order);
        recs.truncate(n);
        recs.shrink_to_fit();
    }
    recs.sort_by(rank_order);
    recs
}

/// Sparse score accumulator over the item catalogue, reusable across users
/// (only touched entries are reset), tracking the strongest contributor other than the
/// item itself.
#[derive(Clone, Debug)]
pub struct Accumulator {
    score: Vec<f32>,
    best: Vec<f32>,
    because: Vec<u32>,
    seen: Vec<bool>,
    touched: Vec<u32>,
}

impl Accumulator {
    pub fn new(n_items: usize) -> Self {
        Accumulator {
            score: vec![0.0; n_items],
            best: vec![f32::NEG_INFINITY; n_items],
            because: vec![u32::MAX; n_items],
            seen: vec![false; n_items],
            touched: Vec::new(),
        }
    }

    /// Adds `value` to `item`'s score, contributed by history item `from`. An item's own
    /// contribution (`from == item`, repeats allowed) counts in its score but never becomes
    /// its `because`: "recommended because you viewed it" names no other product.
    #[inline]
    pub(crate) fn add(&mut self, item: u32, value: f32, from: u32) {
        let i = item as usize;
        let Some(s) = self.score.get_mut(i) else {
            return;
        };
        if !self.seen[i] {
            self.seen[i] = true;
            self.touched.push(item);
        }
        *s += value;
        if from != item && value > self.best[i] {
            self.best[i] = value;
            self.because[i] = from;
        }
    }

    /// Drains into the top `n` recommendations, skipping excluded items, and
    /// resets the accumulator.
    pub(crate) fn drain_top(
        &mut self,
        n: usize,
        source: Source,
        history: &[(u32, f32)],
        exclude: &Exclude,
    ) -> Vec<Recommendation> {
        // bounded insertion list of the best n (score desc, item asc): no
        // allocation proportional to the number of touched items
        let mut best: Vec<(f32, u32)> = Vec::with_capacity(n + 1);
        for &item in &self.touched {
            let i = item as usize;
            let s = self.score[i];
            let beats = n > 0
                && s > 0.0
                && s.is_finite()
                && (best.len() < n
                    || best
                        .last()
                        .is_some_and(|w| s > w.0 || (s == w.0 && item < w.1)));
            if beats && !exclude.excludes(item, history) {
                let pos = best.partition_point(|e| e.0 > s || (e.0 == s && e.1 < item));
                best.insert(pos, (s, item));
                best.truncate(n);
            }
        }
        let recs = best
            .into_iter()
            .map(|(score, item)| {
                let i = item as usize;
                Recommendation {
                    item,
                    score,
                    source,
                    because: (self.because[i] != u32::MAX).then_some(self.because[i]),
                }
            })
            .collect();
        for &item in &self.touched {
            let i = item as usize;
            self.score[i] = 0.0;
            self.best[i] = f32::NEG_INFINITY;
            self.because[i] = u32::MAX;
            self.seen[i] = false;
        }
        self.touched.clear();
        recs
    }
}

/// Item neighbour lists in CSR form: `neighbours(i)` are `(item, similarity)`
/// sorted by descending similarity.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Neighbours {
    indptr: Vec<usize>,
    items: Vec<u32>,
    sims: Vec<f32>,
}

impl Neighbours {
    pub(crate) fn from_lists(lists: Vec<Vec<(u32, f32)>>) -> Self {
        let mut indptr = Vec::with_capacity(lists.len() + 1);
        indptr.push(0);
        let total: usize = lists.iter().map(Vec::len).sum();
        let mut items = Vec::with_capacity(total);
        let mut sims = Vec::with_capacity(total);
        for l in lists {
            for (j, s) in l {
                items.push(j);
                sims.push(s);
            }
            indptr.push(items.len());
        }
        Neighbours {
            indptr,
            items,
            sims,
        }
    }

    pub fn n_items(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }

    /// Neighbours of `item` (empty when out of range).
    pub fn of(&self, item: u32) -> (&[u32], &[f32]) {
        let i = item as usize;
        match (self.indptr.get(i), self.indptr.get(i + 1)) {
            (Some(&a), Some(&b)) => (&self.items[a..b], &self.sims[a..b]),
            _ => (&[], &[]),
        }
    }

    /// Scores = sum over history items h of `w_h * sim(h, j)` (plus
    /// `self_weight * w_h` for h itself, cosine self-similarity being 1).
    pub(crate) fn score_into(
        &self,
        acc: &mut Accumulator,
        history: &[(u32, f32)],
        self_weight: f32,
    ) {
        for &(h, w) in history {
            let (items, sims) = self.of(h);
            for (&j, &s) in items.iter().zip(sims) {
                acc.add(j, w * s, h);
            }
            if self_weight > 0.0 && (h as usize) < acc.score.len() {
                acc.add(h, w * self_weight, h);
            }
        }
    }

    /// Approximate heap bytes.
    pub fn heap_bytes(&self) -> usize {
        self.indptr.len() * 8 + self.items.len() * 8
    }
}

/// Selects the top `k` of `(item, sim)` by descending similarity (ties by
/// ascending item), sorted.
pub(crate) fn top_k_pairs(mut v: Vec<(u32, f32)>, k: usize) -> Vec<(u32, f32)> {
    let ord = |a: &(u32, f32), b: &(u32, f32)| {
        b.1.partial_cmp(&a.1)
            .unwrap_or(Ordering::Equal)
            .then(a.0.cmp(&b.0))
    };
    if k == 0 {
        return Vec::new();
    }
    if v.len() > k {
        v.select_nth_unstable_by(k - 1, ord);
        v.truncate(k);
    }
    v.sort_by(ord);
    // Callers keep one list per item until all are done: without this each kept the
    // capacity of its every candidate (half a gigabyte for 100k items).
    v.shrink_to_fit();
    v
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_sources_stored_name_is_its_serialised_name() {
        for s in [
            Source::ItemKnn,
            Source::Als,
            Source::Content,
            Source::Popularity,
            Source::History,
            Source::Hybrid,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    #[test]
    fn top_k_pairs_keeps_the_best_k_best_first_without_the_rest_s_room() {
        let v: Vec<(u32, f32)> = (0..1000).map(|i| (i, (i % 97) as f32)).collect();
        let top = top_k_pairs(v, 3);
        // 96 is the largest value, for i = 96, 193, 290, …: ties go to the smaller id.
        assert_eq!(top, [(96, 96.0), (193, 96.0), (290, 96.0)]);
        assert_eq!(top.capacity(), 3);
        assert!(top_k_pairs(vec![(1, 1.0)], 0).is_empty());
    }
}
