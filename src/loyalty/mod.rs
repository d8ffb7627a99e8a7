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
