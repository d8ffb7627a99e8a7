//! Loyalty points: earning rules, FIFO expiry, tiers and campaign targeting and allocation
//! (DESIGN.md section 8). Pure: plain data in, ledger entries and plans out; the `points`
//! job reads and writes the database. Points and money are integers (cents); rates and
//! multipliers are exact thousandths ([`Milli`]), so no float ever touches a balance.

pub mod campaign;
pub mod expiry;
pub mod rules;
pub mod tiers;

pub use campaign::{Allocation, Campaign, Candidate, KnownNames, Reward, Target};
pub use expiry::{Entry, Expiry, due_expiries, expiry_key};
pub use rules::{Milli, Rounding, Rules, TierRule};
pub use tiers::{Standing, TierChange, next_tier};

/// What a ledger row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// Points for a paid order (and campaign awards).
    Earn,
    /// Points spent.
    Redeem,
    /// Points that reached their expiry unspent.
    Expire,
    /// A manual correction (audited).
    Adjust,
    /// Points taken back because an order was refunded or cancelled after earning.
    Reverse,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Earn => "earn",
            EntryKind::Redeem => "redeem",
            EntryKind::Expire => "expire",
            EntryKind::Adjust => "adjust",
            EntryKind::Reverse => "reverse",
        }
    }

    pub fn parse(s: &str) -> Option<EntryKind> {
        Some(match s {
            "earn" => EntryKind::Earn,
            "redeem" => EntryKind::Redeem,
            "expire" => EntryKind::Expire,
            "adjust" => EntryKind::Adjust,
            "reverse" => EntryKind::Reverse,
            _ => return None,
        })
    }
}

/// Why a manual adjustment of `points` must be confirmed before it is written, if it must:
/// its size is beyond `limit` (`loyalty.adjust_confirm_points`), or it would take the
/// customer's spendable `balance` below zero. `None`: it may go through as it is.
pub fn adjustment_needs_confirmation(points: i64, balance: i64, limit: i64) -> Option<String> {
    let mut why = Vec::new();
    if points.unsigned_abs() > limit.unsigned_abs() {
        why.push(format!(
            "{points:+} points is more than loyalty.adjust_confirm_points ({limit})"
        ));
    }
    let after = balance.saturating_add(points);
    if points < 0 && after < 0 {
        why.push(format!(
            "it would take the spendable balance from {balance} to {after}"
        ));
    }
    (!why.is_empty()).then(|| why.join(", and "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_or_overdrawing_adjustments_need_confirmation() {
        assert_eq!(adjustment_needs_confirmation(-50, 100, 10_000), None);
        assert_eq!(adjustment_needs_confirmation(10_000, 0, 10_000), None);
        assert_eq!(adjustment_needs_confirmation(-100, 100, 10_000), None);
        let big = adjustment_needs_confirmation(10_001, 0, 10_000).unwrap();
        assert!(
            big.contains("+10001 points") && big.contains("(10000)"),
            "{big}"
        );
        let overdraw = adjustment_needs_confirmation(-101, 100, 10_000).unwrap();
        assert!(overdraw.contains("from 100 to -1"), "{overdraw}");
        let both = adjustment_needs_confirmation(-999_999, 100, 10_000).unwrap();
        assert!(
            both.contains("-999999 points") && both.contains("to -999899"),
            "{both}"
        );
        // A customer already below zero may be credited without a question.
        assert_eq!(adjustment_needs_confirmation(50, -200, 10_000), None);
    }
}
