//! Hybrid: a weighted sum of per-source scores, each source's scores first
//! normalised per user (divided by that user's maximum score from the
//! source, so every source's best item scores 1). A combined row's `source`
//! is the source contributing most to its score, and `because` comes from
//! that source's row. Weights are chosen by grid search on a validation
//! split ([`tune_weights`]), by mean NDCG@k.

use super::eval::ndcg_at_k;
use super::{Recommendation, Source, top_n};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Weights aligned with the per-source candidate lists given to [`Hybrid::combine`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HybridWeights(pub Vec<f32>);

/// A hybrid with fixed weights.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Hybrid {
    pub weights: HybridWeights,
}

/// Per-list normalisation: divide by the list's max score (lists whose max
/// is not positive contribute nothing).
fn normalised(list: &[Recommendation]) -> impl Iterator<Item = (&Recommendation, f32)> {
    let max = list
        .iter()
        .map(|r| r.score)
        .fold(f32::NEG_INFINITY, f32::max);
    list.iter()
        .filter(move |_| max > 0.0 && max.is_finite())
        .map(move |r| (r, (r.score / max).max(0.0)))
}

impl Hybrid {
    pub fn new(weights: Vec<f32>) -> Self {
        Hybrid {
            weights: HybridWeights(weights),
        }
    }

    /// Combines one candidate list per source (same order as the weights)
    /// into the top `n`.
    pub fn combine(&self, lists: &[Vec<Recommendation>], n: usize) -> Vec<Recommendation> {
        // item -> (total, best contribution, source, because)
        let mut acc: BTreeMap<u32, (f32, f32, Source, Option<u32>)> = BTreeMap::new();
        for (list, &w) in lists.iter().zip(&self.weights.0) {
            if w <= 0.0 {
                continue;
            }
            for (r, s) in normalised(list) {
                let c = w * s;
                let e = acc
                    .entry(r.item)
                    .or_insert((0.0, f32::NEG_INFINITY, r.source, r.because));
                e.0 += c;
                if c > e.1 {
                    e.1 = c;
                    e.2 = r.source;
                    e.3 = r.because;
                }
            }
        }
        let recs = acc
            .into_iter()
            .filter(|(_, e)| e.0 > 0.0)
            .map(|(item, (score, _, source, because))| Recommendation {
                item,
                score,
                source,
                because,
            })
            .collect();
        top_n(recs, n)
    }
}

/// One user's candidates in compact form: union of items, and for each item
/// the normalised score from each source (0 when absent).
struct Compact {
    items: Vec<u32>,
    scores: Vec<f32>, // items.len() x n_sources
}

fn compact(lists: &[Vec<Recommendation>], n_sources: usize) -> Compact {
    let mut map: BTreeMap<u32, Vec<f32>> = BTreeMap::new();
    for (s, list) in lists.iter().enumerate().take(n_sources) {
        for (r, v) in normalised(list) {
            let e = map.entry(r.item).or_insert_with(|| vec![0.0; n_sources]);
            e[s] = e[s].max(v);
        }
    }
    let mut items = Vec::with_capacity(map.len());
    let mut scores = Vec::with_capacity(map.len() * n_sources);
    for (i, v) in map {
        items.push(i);
        scores.extend(v);
    }
    Compact { items, scores }
}

/// Grid search: `candidates[u][s]` is user u's candidate list from source s,
/// `truth[u]` the user's relevant items (sorted ascending; users with none
/// are skipped). Every combination of `grid` values over the sources is
/// tried (all-zero skipped); returns the weights with the best mean
/// NDCG@k (ties: the first in enumeration order) and that NDCG.
pub fn tune_weights(
    candidates: &[Vec<Vec<Recommendation>>],
    truth: &[Vec<u32>],
    grid: &[f32],
    k: usize,
) -> (HybridWeights, f64) {
    let n_sources = candidates.iter().map(Vec::len).max().unwrap_or(0);
    let users: Vec<(Compact, &Vec<u32>)> = candidates
        .iter()
        .zip(truth)
        .filter(|(_, t)| !t.is_empty())
        .map(|(c, t)| (compact(c, n_sources), t))
        .collect();
    if n_sources == 0 || grid.is_empty() || users.is_empty() {
        return (HybridWeights(vec![1.0; n_sources]), 0.0);
    }
    let g = grid.len();
    let combos = g
        .checked_pow(n_sources as u32)
        .unwrap_or(usize::MAX)
        .min(1 << 20);
    let weights_of = |mut c: usize| -> Vec<f32> {
        (0..n_sources)
            .map(|_| {
                let w = grid[c % g];
                c /= g;
                w
            })
            .collect()
    };
    // A source with no candidate for anyone keeps weight 0, and weights are compared only
    // with the largest at the grid's top: scaling every weight ranks the same, so those
    // combinations would be evaluated again for nothing.
    let active: Vec<bool> = (0..n_sources)
        .map(|s| {
            users
                .iter()
                .any(|(cu, _)| cu.scores.chunks(n_sources).any(|row| row[s] != 0.0))
        })
        .collect();
    let top = grid.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let best = (0..combos)
        .into_par_iter()
        .map_init(Vec::<(f32, u32)>::new, |buf, c| {
            let w = weights_of(c);
            let idle = w.iter().zip(&active).any(|(&x, &a)| !a && x != 0.0);
            let largest = w.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            if w.iter().all(|&x| x <= 0.0) || idle || largest != top {
                return (c, f64::NEG_INFINITY);
            }
            let mut total = 0.0;
            let mut top: Vec<u32> = Vec::with_capacity(k);
            for (cu, truth) in &users {
                buf.clear();
                for (idx, &item) in cu.items.iter().enumerate() {
                    let row = &cu.scores[idx * n_sources..(idx + 1) * n_sources];
                    let s: f32 = row.iter().zip(&w).map(|(a, b)| a * b).sum();
                    if s > 0.0 {
                        buf.push((s, item));
                    }
                }
                let ord = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
                if buf.len() > k && k > 0 {
                    buf.select_nth_unstable_by(k - 1, ord);
                    buf.truncate(k);
                }
                buf.sort_by(ord);
                top.clear();
                top.extend(buf.iter().map(|p| p.1));
                total += ndcg_at_k(&top, truth, k);
            }
            (c, total / users.len() as f64)
        })
        .reduce(
            || (usize::MAX, f64::NEG_INFINITY),
            |a, b| {
                if b.1 > a.1 || (b.1 == a.1 && b.0 < a.0) {
                    b
                } else {
                    a
                }
            },
        );
    (HybridWeights(weights_of(best.0)), best.1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rec(item: u32, score: f32, source: Source, because: Option<u32>) -> Recommendation {
        Recommendation {
            item,
            score,
            source,
            because,
        }
    }

    #[test]
    fn normalises_per_source_and_attributes() {
        // knn scores 10, 5 -> 1.0, 0.5 ; content scores 0.2, 0.1 -> 1.0, 0.5
        let knn = vec![
            rec(1, 10.0, Source::ItemKnn, Some(7)),
            rec(2, 5.0, Source::ItemKnn, Some(8)),
        ];
        let content = vec![
            rec(2, 0.2, Source::Content, Some(9)),
            rec(3, 0.1, Source::Content, Some(9)),
        ];
        let h = Hybrid::new(vec![1.0, 2.0]);
        let r = h.combine(&[knn.clone(), content.clone()], 10);
        // item 2: 0.5*1 + 1.0*2 = 2.5 (content dominates); item 1: 1.0; item 3: 0.5*2 = 1.0
        assert_eq!(r.iter().map(|r| r.item).collect::<Vec<_>>(), vec![2, 1, 3]);
        assert!((r[0].score - 2.5).abs() < 1e-6);
        assert_eq!((r[0].source, r[0].because), (Source::Content, Some(9)));
        assert_eq!((r[1].source, r[1].because), (Source::ItemKnn, Some(7)));
        assert!((r[2].score - 1.0).abs() < 1e-6);
        // zero weight drops a source entirely
        let r = Hybrid::new(vec![1.0, 0.0]).combine(&[knn, content], 10);
        assert_eq!(r.iter().map(|r| r.item).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn tuning_picks_the_informative_source() {
        // source 0 ranks the relevant item first, source 1 ranks it last
        let mut cands = Vec::new();
        let mut truth = Vec::new();
        for u in 0..20u32 {
            let good = u * 10;
            let a = vec![
                rec(good, 3.0, Source::ItemKnn, None),
                rec(good + 1, 2.0, Source::ItemKnn, None),
            ];
            let b = vec![
                rec(good + 1, 3.0, Source::Content, None),
                rec(good + 2, 2.0, Source::Content, None),
                rec(good, 0.1, Source::Content, None),
            ];
            cands.push(vec![a, b]);
            truth.push(vec![good]);
        }
        let (w, ndcg) = tune_weights(&cands, &truth, &[0.0, 0.5, 1.0], 1);
        assert!((ndcg - 1.0).abs() < 1e-12);
        assert!(w.0[0] > w.0[1]);
        // Weights are compared with the largest at the top of the grid.
        assert_eq!(w.0, vec![1.0, 0.0]);
    }
}
