//! The "repeat" source: a user's own purchases scored by frequency with
//! exponential recency decay, `score(i) = sum_e w_e * 0.5^((now - t_e) / half_life)`.
//! Only useful when repeats are allowed (in "new items" mode everything it
//! could say is excluded).

use super::{Exclude, Recommendation, Source, sorted_history, top_n};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One timestamped interaction of the user (`time` in seconds, any epoch).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub item: u32,
    pub time: i64,
    pub weight: f32,
}

/// Frequency x recency scorer of a user's own history.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryScorer {
    /// Half-life of an event's weight, seconds (<= 0: no decay).
    pub half_life: f64,
}

impl HistoryScorer {
    /// Top `n` of the user's own items as of `now` (events after `now` are
    /// ignored). No `because`: the reason is the item itself (see [`super::Reason::Own`]).
    pub fn recommend(
        &self,
        events: &[Event],
        now: i64,
        n: usize,
        exclude: &Exclude,
    ) -> Vec<Recommendation> {
        let mut scores: BTreeMap<u32, f64> = BTreeMap::new();
        for e in events.iter().filter(|e| e.time <= now) {
            let decay = if self.half_life > 0.0 {
                0.5f64.powf((now - e.time) as f64 / self.half_life)
            } else {
                1.0
            };
            *scores.entry(e.item).or_insert(0.0) += f64::from(e.weight) * decay;
        }
        let history: Vec<(u32, f32)> = scores.iter().map(|(&i, &s)| (i, s as f32)).collect();
        let history = sorted_history(&history);
        let recs = history
            .iter()
            .filter(|&&(i, _)| !exclude.excludes(i, &history))
            .map(|&(item, score)| Recommendation {
                item,
                score,
                source: Source::History,
                because: None,
            })
            .collect();
        top_n(recs, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequency_with_recency_decay() {
        let day = 86_400;
        let ev = |item, t| Event {
            item,
            time: t * day,
            weight: 1.0,
        };
        // item 1 bought twice long ago (2 * 0.5^2 = 0.5), item 2 once recently (0.5^0 = 1)
        let events = [ev(1, 0), ev(1, 0), ev(2, 20), ev(3, 30)];
        let s = HistoryScorer {
            half_life: 10.0 * day as f64,
        };
        let r = s.recommend(&events, 20 * day, 10, &Exclude::repeat_allowed());
        assert_eq!(r.iter().map(|r| r.item).collect::<Vec<_>>(), vec![2, 1]);
        assert!((r[1].score - 0.5).abs() < 1e-6);
        assert_eq!(r[0].because, None, "the item itself is no reason");
        assert!(
            s.recommend(&events, 20 * day, 10, &Exclude::new_items())
                .is_empty()
        );
    }
}
