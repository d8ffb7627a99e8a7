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
}
