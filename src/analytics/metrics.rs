//! Evaluation metrics for binary scores: ROC AUC, log-loss, top-decile lift and Pearson
//! correlation. Pure functions over slices.
//!
//! Undefined cases (empty input, slices of different lengths, a single class, zero variance)
//! return `f64::NAN` rather than panicking or inventing a value: a caller comparing models
//! must see "no answer", not a misleading 0.5 or 0.

use std::cmp::Ordering;

/// Probabilities are clipped to `[EPS, 1 - EPS]` so one confident mistake costs a large but
/// finite penalty (~34.5) instead of infinity.
const LOG_LOSS_EPS: f64 = 1e-15;

/// Share of rows in the "top decile".
const TOP_FRACTION: f64 = 0.1;

/// Area under the ROC curve: the probability that a random positive scores above a random
/// negative, ties counting one half.
///
/// Computed from ranks (Mann–Whitney U) with tied scores given their average rank, so it is
/// O(n log n) and exact under ties. NaN when either class is absent or lengths differ.
pub fn auc(scores: &[f64], labels: &[bool]) -> f64 {
    if scores.len() != labels.len() {
        return f64::NAN;
    }
    let positives = labels.iter().filter(|&&y| y).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return f64::NAN;
    }
    let ranks = average_ranks(scores);
    let positive_rank_sum: f64 = ranks
        .iter()
        .zip(labels)
        .filter(|(_, y)| **y)
        .map(|(r, _)| *r)
        .sum();
    let p = positives as f64;
    let u = positive_rank_sum - p * (p + 1.0) / 2.0;
    u / (p * negatives as f64)
}

/// 1-based ranks of `values` in ascending order, tied values sharing their average rank.
fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_unstable_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]].total_cmp(&values[order[start]]).is_eq() {
            end += 1;
        }
        // Positions start..end (0-based) hold ranks start+1..=end; their mean is below.
        let rank = (start + end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

/// Mean binary cross-entropy (natural log) of `probs` as P(label = true), with probabilities
/// clipped to `[1e-15, 1 - 1e-15]`. NaN for empty input or different lengths.
pub fn log_loss(probs: &[f64], labels: &[bool]) -> f64 {
    if probs.len() != labels.len() || probs.is_empty() {
        return f64::NAN;
    }
    let total: f64 = probs
        .iter()
        .zip(labels)
        .map(|(&p, &y)| {
            let p = p.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
            if y { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    total / probs.len() as f64
}

/// Positive rate among the top 10% of rows by score (at least one row), divided by the
/// overall positive rate. 1.0 means the score is no better than random at the top.
///
/// Rows tied with the cut-off score are taken fractionally (their positive rate times the
/// places left), so the result does not depend on how a sort happens to order ties.
/// NaN when there are no positives or lengths differ.
pub fn lift_top_decile(scores: &[f64], labels: &[bool]) -> f64 {
    if scores.len() != labels.len() || scores.is_empty() {
        return f64::NAN;
    }
    let positives = labels.iter().filter(|&&y| y).count();
    if positives == 0 {
        return f64::NAN;
    }
    let n = scores.len();
    let top = ((n as f64 * TOP_FRACTION).ceil() as usize).clamp(1, n);

    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let cutoff = scores[order[top - 1]];

    let (mut above, mut above_pos, mut tied, mut tied_pos) = (0usize, 0usize, 0usize, 0usize);
    for (&s, &y) in scores.iter().zip(labels) {
        match s.total_cmp(&cutoff) {
            Ordering::Greater => {
                above += 1;
                above_pos += usize::from(y);
            }
            Ordering::Equal => {
                tied += 1;
                tied_pos += usize::from(y);
            }
            Ordering::Less => {}
        }
    }
    // `tied` >= 1 because the cut-off row itself is tied with the cut-off.
    let places_left = (top - above) as f64;
    let expected_pos = above_pos as f64 + tied_pos as f64 * places_left / tied as f64;
    let top_rate = expected_pos / top as f64;
    let base_rate = positives as f64 / n as f64;
    top_rate / base_rate
}

/// Pearson correlation coefficient. NaN when lengths differ, fewer than two values, or
/// either side has zero variance.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() || a.len() < 2 {
        return f64::NAN;
    }
    let n = a.len() as f64;
    let mean_a = a.iter().sum::<f64>() / n;
    let mean_b = b.iter().sum::<f64>() / n;
    let (mut cov, mut var_a, mut var_b) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (x - mean_a, y - mean_b);
        cov += dx * dy;
        var_a += dx * dx;
        var_b += dy * dy;
    }
    if var_a == 0.0 || var_b == 0.0 {
        return f64::NAN;
    }
    cov / (var_a.sqrt() * var_b.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: bool = true;
    const F: bool = false;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn auc_hand_example() {
        // Pairs (pos, neg): (0.35,0.1) win, (0.35,0.4) lose, (0.8,0.1) win, (0.8,0.4) win.
        assert!(close(auc(&[0.1, 0.4, 0.35, 0.8], &[F, F, T, T]), 0.75));
    }

    #[test]
    fn auc_ties_count_half() {
        // All four pairs tied.
        assert!(close(auc(&[0.5, 0.5, 0.5, 0.5], &[F, T, F, T]), 0.5));
        // Pairs: (0.5 vs 0.5) tie = 0.5, (0.5 vs 0.2) win = 1, (0.9 vs 0.5) win, (0.9 vs 0.2) win.
        assert!(close(auc(&[0.5, 0.2, 0.5, 0.9], &[F, F, T, T]), 3.5 / 4.0));
    }

    #[test]
    fn auc_perfect_inverted_and_undefined() {
        assert!(close(auc(&[0.1, 0.2, 0.8, 0.9], &[F, F, T, T]), 1.0));
        assert!(close(auc(&[0.9, 0.8, 0.2, 0.1], &[F, F, T, T]), 0.0));
        assert!(auc(&[0.1, 0.2], &[T, T]).is_nan());
        assert!(auc(&[0.1], &[T, F]).is_nan());
    }

    #[test]
    fn log_loss_hand_example() {
        // -(ln 0.8 + ln 0.9) / 2
        let expected = -(0.8f64.ln() + 0.9f64.ln()) / 2.0;
        assert!(close(log_loss(&[0.8, 0.1], &[T, F]), expected));
        // 0.5 everywhere costs ln 2.
        assert!(close(log_loss(&[0.5, 0.5], &[T, F]), 2f64.ln()));
    }

    #[test]
    fn log_loss_clips_certain_mistakes() {
        let loss = log_loss(&[0.0, 1.0], &[T, F]);
        assert!(loss.is_finite());
        // Each row costs about -ln(1e-15) = 34.5 (1 - 1e-15 is not exact in f64).
        assert!((loss - 34.5388).abs() < 1e-3, "{loss}");
        assert!(log_loss(&[], &[]).is_nan());
    }

    #[test]
    fn lift_hand_example() {
        // 20 rows, 4 positives (rate 0.2); top 2 rows hold 1 positive (rate 0.5): lift 2.5.
        let scores: Vec<f64> = (0..20).map(|i| 20.0 - i as f64).collect();
        let mut labels = vec![F; 20];
        labels[1] = T;
        labels[10] = T;
        labels[15] = T;
        labels[19] = T;
        assert!(close(lift_top_decile(&scores, &labels), 2.5));
    }

    #[test]
    fn lift_ties_are_fractional() {
        // 10 rows, top = 1 row; all scores tie, so the top row is "average": lift 1.
        let labels = [T, F, F, F, T, F, F, F, F, F];
        assert!(close(lift_top_decile(&[0.3; 10], &labels), 1.0));
        assert!(lift_top_decile(&[0.3; 3], &[F, F, F]).is_nan());
    }

    #[test]
    fn pearson_hand_examples() {
        assert!(close(pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]), 1.0));
        assert!(close(pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), -1.0));
        // a = [1,2,3,4], b = [1,3,2,4]: cov 4 (sum of products of deviations), var 5 and 5.
        assert!(close(
            pearson(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]),
            0.8
        ));
        assert!(pearson(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
        assert!(pearson(&[1.0], &[1.0]).is_nan());
    }

    #[test]
    fn average_ranks_share_ties() {
        assert_eq!(
            average_ranks(&[3.0, 1.0, 3.0, 2.0]),
            vec![3.5, 1.0, 3.5, 2.0]
        );
    }
}
