//! Popularity: items ranked by the number of distinct users who interacted,
//! overall and within a user group (segment, e.g. country). The fallback for
//! users with fewer than `min_history` interactions.

use super::{Exclude, Interactions, Recommendation, Source, sorted_history};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Ranked item lists `(item, users)` overall and per group.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Popularity {
    overall: Vec<(u32, f32)>,
    by_group: BTreeMap<u32, Vec<(u32, f32)>>,
}

fn ranked(counts: Vec<f32>) -> Vec<(u32, f32)> {
    let mut v: Vec<(u32, f32)> = counts
        .into_iter()
        .enumerate()
        .filter(|p| p.1 > 0.0)
        .map(|(i, c)| (i as u32, c))
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

impl Popularity {
    /// `groups[u]` is user u's group (missing users count only overall).
    pub fn fit(m: &Interactions, groups: Option<&[u32]>) -> Popularity {
        let overall = ranked(
            (0..m.n_items)
                .map(|i| m.by_item.row(i).0.len() as f32)
                .collect(),
        );
        let mut per: BTreeMap<u32, Vec<f32>> = BTreeMap::new();
        if let Some(groups) = groups {
            for u in 0..m.n_users {
                let Some(&g) = groups.get(u) else { continue };
                let counts = per.entry(g).or_insert_with(|| vec![0.0; m.n_items]);
                for &i in m.by_user.row(u).0 {
                    counts[i as usize] += 1.0;
                }
            }
        }
        Popularity {
            overall,
            by_group: per.into_iter().map(|(g, c)| (g, ranked(c))).collect(),
        }
    }

    /// Top `n` popular items in `group` (or overall), topped up from the
    /// overall ranking when the group has too few; scores are fractions of
    /// the list's top count, so group and overall scores are comparable.
    pub fn recommend(
        &self,
        group: Option<u32>,
        history: &[(u32, f32)],
        n: usize,
        exclude: &Exclude,
    ) -> Vec<Recommendation> {
        let history = sorted_history(history);
        let mut out: Vec<Recommendation> = Vec::with_capacity(n);
        let lists = group
            .and_then(|g| self.by_group.get(&g))
            .into_iter()
            .chain(std::iter::once(&self.overall));
        for list in lists {
            let top = list.first().map_or(1.0, |p| p.1.max(1.0));
            for &(item, c) in list {
                if out.len() >= n {
                    return out;
                }
                if exclude.excludes(item, &history) || out.iter().any(|r| r.item == item) {
                    continue;
                }
                // keep scores non-increasing when topping up from overall
                let score = out.last().map_or(c / top, |r| (c / top).min(r.score));
                out.push(Recommendation {
                    item,
                    score,
                    source: Source::Popularity,
                    because: None,
                });
            }
        }
        out
    }

    /// Whether customers of `group` dealt with `item`: the items [`Popularity::recommend`]
    /// takes from the group's own list (the others top it up from the overall ranking).
    /// The scan stops at the item, which for a recommended one is near the list's top.
    pub fn in_group(&self, group: u32, item: u32) -> bool {
        self.by_group
            .get(&group)
            .is_some_and(|list| list.iter().any(|p| p.0 == item))
    }

    /// Cold-start rule: users with fewer than `min_history` distinct items
    /// (or for whom `personal` finds nothing) get popular items of their group
    /// instead; otherwise the result of `personal`, computed lazily.
    pub fn or_fallback(
        &self,
        group: Option<u32>,
        history: &[(u32, f32)],
        n: usize,
        exclude: &Exclude,
        min_history: usize,
        personal: impl FnOnce() -> Vec<Recommendation>,
    ) -> Vec<Recommendation> {
        if sorted_history(history).len() >= min_history {
            let recs = personal();
            if !recs.is_empty() {
                return recs;
            }
        }
        self.recommend(group, history, n, exclude)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::Interaction;
    use super::*;

    #[test]
    fn overall_group_and_exclusion() {
        // item 2 bought by 3 users, item 0 by 2, item 1 by 1 (group 1 only)
        let e = [(0, 2), (1, 2), (2, 2), (0, 0), (1, 0), (2, 1)];
        let x: Vec<Interaction> = e
            .iter()
            .map(|&(u, i)| Interaction {
                user: u,
                item: i,
                weight: 1.0,
            })
            .collect();
        let m = Interactions::new(3, 4, &x);
        let p = Popularity::fit(&m, Some(&[0, 0, 1]));
        // Group 0 (users 0, 1) dealt with items 0 and 2; group 1 (user 2) with 1 and 2.
        assert!(p.in_group(0, 0) && p.in_group(0, 2) && !p.in_group(0, 1));
        assert!(p.in_group(1, 1) && !p.in_group(1, 0) && !p.in_group(7, 2));
        let items = |r: Vec<Recommendation>| r.iter().map(|r| r.item).collect::<Vec<_>>();
        assert_eq!(
            items(p.recommend(None, &[], 10, &Exclude::new_items())),
            vec![2, 0, 1]
        );
        assert_eq!(
            items(p.recommend(Some(1), &[], 10, &Exclude::new_items())),
            vec![1, 2, 0]
        );
        assert_eq!(
            items(p.recommend(None, &[(2, 1.0)], 10, &Exclude::new_items())),
            vec![0, 1]
        );
        assert_eq!(
            items(p.recommend(None, &[(2, 1.0)], 1, &Exclude::repeat_allowed())),
            vec![2]
        );
    }
}
