//! Tiers from the points earned in the last 12 months: an upgrade applies at once, a
//! downgrade at most once per `downgrade_period_days`.

use super::Rules;

/// A customer's tier as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub tier: String,
    /// Epoch seconds of the last downgrade, if any.
    pub downgraded_at: Option<i64>,
}

/// The tier after a recomputation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierChange {
    pub tier: String,
    pub changed: bool,
    /// Set when this change is a downgrade (the period starts again).
    pub downgraded: bool,
}

/// The tier a customer with `earned_12m` points should hold at `now`, from `current`.
pub fn next_tier(
    rules: &Rules,
    current: Option<&Standing>,
    earned_12m: i64,
    now: i64,
) -> TierChange {
    let earned_rank = rules
        .tiers
        .iter()
        .rposition(|t| earned_12m >= t.threshold)
        .unwrap_or(0);
    let Some(current) = current else {
        return TierChange {
            tier: rules.tiers[earned_rank].name.clone(),
            changed: true,
            downgraded: false,
        };
    };
    let current_rank = rules.tiers.iter().position(|t| t.name == current.tier);
    let stay = TierChange {
        tier: current.tier.clone(),
        changed: false,
        downgraded: false,
    };
    match current_rank {
        // A tier no longer in the rules: move to what is earned.
        None => TierChange {
            tier: rules.tiers[earned_rank].name.clone(),
            changed: true,
            downgraded: false,
        },
        Some(c) if earned_rank > c => TierChange {
            tier: rules.tiers[earned_rank].name.clone(),
            changed: true,
            downgraded: false,
        },
        Some(c) if earned_rank < c => {
            let period = rules.downgrade_period_days * 86_400;
            let allowed = current.downgraded_at.is_none_or(|at| now - at >= period);
            if allowed {
                TierChange {
                    tier: rules.tiers[earned_rank].name.clone(),
                    changed: true,
                    downgraded: true,
                }
            } else {
                stay
            }
        }
        Some(_) => stay,
    }
}

/// The window tiers are computed over: an earn or reversal at `at` counts until `at + YEAR`.
pub const YEAR: i64 = 365 * 86_400;

/// When a customer's tier must be looked at again with no new ledger row, after a pass
/// left them in `after` with `earned_12m` points: the second the oldest earn or reversal
/// of their window (at `oldest`) leaves it, or, if a downgrade is held back by the period,
/// the second it becomes allowed; the earlier of the two. `None`: nothing moves their tier
/// before a new ledger row.
pub fn recheck_at(
    rules: &Rules,
    after: &Standing,
    earned_12m: i64,
    oldest: Option<i64>,
    now: i64,
) -> Option<i64> {
    let leaves = oldest.map(|at| at + YEAR + 1);
    let earned_rank = rules
        .tiers
        .iter()
        .rposition(|t| earned_12m >= t.threshold)
        .unwrap_or(0);
    let held = rules
        .tiers
        .iter()
        .position(|t| t.name == after.tier)
        .is_some_and(|current| earned_rank < current);
    let allowed = held.then(|| {
        after
            .downgraded_at
            .map_or(now, |at| at + rules.downgrade_period_days * 86_400)
    });
    match (leaves, allowed) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A fingerprint of what tiers are computed from (names, thresholds, the downgrade
/// period): a pass under other rules looks at every customer again.
pub fn fingerprint(rules: &Rules) -> u64 {
    let mut text = format!("period={}", rules.downgrade_period_days);
    for t in &rules.tiers {
        text.push_str(&format!(";{}>={}", t.name, t.threshold));
    }
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn standing(tier: &str, downgraded_at: Option<i64>) -> Standing {
        Standing {
            tier: tier.to_owned(),
            downgraded_at,
        }
    }

    #[test]
    fn upgrades_are_immediate() {
        let rules = Rules::default();
        assert_eq!(next_tier(&rules, None, 0, 0).tier, "bronze");
        assert_eq!(next_tier(&rules, None, 6_000, 0).tier, "gold");
        let up = next_tier(&rules, Some(&standing("bronze", Some(0))), 1_000, DAY);
        assert_eq!(
            (up.tier.as_str(), up.changed, up.downgraded),
            ("silver", true, false)
        );
        let same = next_tier(&rules, Some(&standing("silver", None)), 1_500, DAY);
        assert!(!same.changed);
    }

    #[test]
    fn downgrades_wait_for_the_period() {
        let rules = Rules::default(); // 90 days
        // Never downgraded: falls now, one step or several.
        let down = next_tier(&rules, Some(&standing("platinum", None)), 1_200, 100 * DAY);
        assert_eq!((down.tier.as_str(), down.downgraded), ("silver", true));
        // Downgraded 30 days ago: stays, even with nothing earned.
        let stay = next_tier(
            &rules,
            Some(&standing("silver", Some(70 * DAY))),
            0,
            100 * DAY,
        );
        assert_eq!((stay.tier.as_str(), stay.changed), ("silver", false));
        // 90 days on: falls again.
        let down = next_tier(
            &rules,
            Some(&standing("silver", Some(10 * DAY))),
            0,
            100 * DAY,
        );
        assert_eq!(down.tier, "bronze");
    }

    #[test]
    fn a_tier_is_looked_at_again_when_its_oldest_row_leaves_the_window() {
        let rules = Rules::default();
        // Silver (1,000), nothing held back: when the row of day 10 leaves the window.
        let silver = standing("silver", None);
        assert_eq!(
            recheck_at(&rules, &silver, 1_200, Some(10 * DAY), 100 * DAY),
            Some(10 * DAY + YEAR + 1)
        );
        // No row in the window and nothing held back: not before a new row.
        assert_eq!(
            recheck_at(&rules, &standing("bronze", None), 0, None, DAY),
            None
        );
    }

    #[test]
    fn a_held_back_downgrade_is_looked_at_again_when_it_becomes_allowed() {
        let rules = Rules::default(); // 90 days
        // Gold, earned only silver's points, downgraded on day 70: allowed on day 160, before
        // the window's oldest row (day 50) leaves it.
        let gold = standing("gold", Some(70 * DAY));
        assert_eq!(
            recheck_at(&rules, &gold, 1_200, Some(50 * DAY), 100 * DAY),
            Some(160 * DAY)
        );
        // With a row leaving earlier, that comes first.
        assert_eq!(
            recheck_at(&rules, &gold, 1_200, Some(-300 * DAY), 100 * DAY),
            Some(-300 * DAY + YEAR + 1)
        );
        // The pass at day 160 downgrades: next_tier and recheck_at agree.
        let down = next_tier(&rules, Some(&gold), 1_200, 160 * DAY);
        assert_eq!((down.tier.as_str(), down.downgraded), ("silver", true));
        let stay = next_tier(&rules, Some(&gold), 1_200, 160 * DAY - 1);
        assert!(!stay.changed);
    }

    #[test]
    fn the_fingerprint_moves_with_what_tiers_are_computed_from() {
        let rules = Rules::default();
        let mut other = rules.clone();
        assert_eq!(fingerprint(&rules), fingerprint(&other));
        other.pending_days += 1; // not a tier rule
        assert_eq!(fingerprint(&rules), fingerprint(&other));
        other.downgrade_period_days += 1;
        assert_ne!(fingerprint(&rules), fingerprint(&other));
        let mut raised = rules.clone();
        raised.tiers[1].threshold += 1;
        assert_ne!(fingerprint(&rules), fingerprint(&raised));
    }
}
