//! Ranking metrics (binary relevance) and a time-split helper.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Hits of the first `k` recommendations in `relevant` (sorted ascending).
fn hits(recs: &[u32], relevant: &[u32], k: usize) -> usize {
    recs.iter()
        .take(k)
        .filter(|i| relevant.binary_search(i).is_ok())
        .count()
}

/// Hits among the top k, divided by k.
pub fn precision_at_k(recs: &[u32], relevant: &[u32], k: usize) -> f64 {
    if k == 0 {
        return 0.0;
    }
    hits(recs, relevant, k) as f64 / k as f64
}

/// Hits among the top k, divided by the number of relevant items.
pub fn recall_at_k(recs: &[u32], relevant: &[u32], k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    hits(recs, relevant, k) as f64 / relevant.len() as f64
}

/// DCG = sum over hits at rank r (1-based) of 1 / log2(r + 1), divided by the
/// ideal DCG over min(k, |relevant|) hits.
pub fn ndcg_at_k(recs: &[u32], relevant: &[u32], k: usize) -> f64 {
    let ideal: f64 = (0..k.min(relevant.len()))
        .map(|r| 1.0 / ((r + 2) as f64).log2())
        .sum();
    if ideal == 0.0 {
        return 0.0;
    }
    let dcg: f64 = recs
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, i)| relevant.binary_search(i).is_ok())
        .map(|(r, _)| 1.0 / ((r + 2) as f64).log2())
        .sum();
    dcg / ideal
}

/// Averages over evaluated users.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub precision: f64,
    pub recall: f64,
    pub ndcg: f64,
    /// Distinct recommended items (top k) / catalogue size.
    pub coverage: f64,
    pub users: usize,
}

/// Evaluates `recs[u]` against `relevant[u]` (sorted); users with no relevant
/// items are skipped.
pub fn evaluate(recs: &[Vec<u32>], relevant: &[Vec<u32>], k: usize, n_items: usize) -> Metrics {
    let mut m = Metrics::default();
    let mut seen: HashSet<u32> = HashSet::new();
    for (r, rel) in recs.iter().zip(relevant) {
        if rel.is_empty() {
            continue;
        }
        m.precision += precision_at_k(r, rel, k);
        m.recall += recall_at_k(r, rel, k);
        m.ndcg += ndcg_at_k(r, rel, k);
        seen.extend(r.iter().take(k));
        m.users += 1;
    }
    if m.users > 0 {
        let n = m.users as f64;
        m.precision /= n;
        m.recall /= n;
        m.ndcg /= n;
    }
    m.coverage = if n_items > 0 {
        seen.len() as f64 / n_items as f64
    } else {
        0.0
    };
    m
}

/// The time at fraction `frac` of the span `[min, max]` of `times`
/// (`None` when empty): events at or after it are the test set.
pub fn time_cutoff(times: impl IntoIterator<Item = i64>, frac: f64) -> Option<i64> {
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for t in times {
        lo = lo.min(t);
        hi = hi.max(t);
    }
    (lo <= hi).then(|| lo + ((hi - lo) as f64 * frac).floor() as i64)
}

/// Splits `items` into (before cutoff, at or after cutoff) by `time`.
pub fn time_split<T: Clone>(
    items: &[T],
    time: impl Fn(&T) -> i64,
    cutoff: i64,
) -> (Vec<T>, Vec<T>) {
    items.iter().cloned().partition(|x| time(x) < cutoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_by_hand() {
        // recs 5,3,9,1 ; relevant {1,3,7}; k = 3: hits at ranks 2 (item 3)
        let recs = [5, 3, 9, 1];
        let rel = [1, 3, 7];
        assert!((precision_at_k(&recs, &rel, 3) - 1.0 / 3.0).abs() < 1e-12);
        assert!((recall_at_k(&recs, &rel, 3) - 1.0 / 3.0).abs() < 1e-12);
        // dcg = 1/log2(3) = 0.630930; idcg (3 hits) = 1 + 0.630930 + 0.5 = 2.130930
        assert!((ndcg_at_k(&recs, &rel, 3) - 0.630_929_75 / 2.130_929_75).abs() < 1e-6);
        // k = 4: hits at 2 and 4: dcg = 0.630930 + 1/log2(5)=0.430677 -> 1.061606
        // idcg over min(4, 3) = 3 hits = 2.130930
        assert!((ndcg_at_k(&recs, &rel, 4) - 1.061_606_5 / 2.130_929_75).abs() < 1e-6);
        assert!((precision_at_k(&recs, &rel, 4) - 0.5).abs() < 1e-12);
        assert!((recall_at_k(&recs, &rel, 4) - 2.0 / 3.0).abs() < 1e-12);
        // one relevant item at rank 1 -> ndcg 1
        assert!((ndcg_at_k(&[7], &[7], 10) - 1.0).abs() < 1e-12);
        let m = evaluate(
            &[vec![5, 3], vec![2], vec![1]],
            &[vec![3], vec![], vec![4]],
            2,
            10,
        );
        assert_eq!(m.users, 2);
        assert!((m.precision - 0.25).abs() < 1e-12);
        assert!((m.recall - 0.5).abs() < 1e-12);
        assert!((m.coverage - 0.3).abs() < 1e-12); // {5,3,1} of 10 (user 1 not evaluated)
    }

    #[test]
    fn splits_by_time() {
        let c = time_cutoff([0, 100, 50], 0.8).unwrap_or(0);
        assert_eq!(c, 80);
        let (a, b) = time_split(&[(1, 10), (2, 80), (3, 99)], |x| x.1, c);
        assert_eq!(a, vec![(1, 10)]);
        assert_eq!(b, vec![(2, 80), (3, 99)]);
        assert_eq!(time_cutoff(std::iter::empty(), 0.8), None);
    }
}
