//! Earning rules: points per currency unit of paid spend, rounding, tier multipliers,
//! pending period and expiry, and the points an order keeps after a refund.

use serde::{Deserialize, Serialize};

/// An exact decimal in thousandths (1.25 = 1250): rates and multipliers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Milli(pub i64);

impl Milli {
    pub const ONE: Milli = Milli(1000);

    /// From a decimal text such as `1.25` or `2` (at most three decimals).
    pub fn parse(text: &str) -> Result<Milli, String> {
        let t = text.trim();
        let (neg, t) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
        if whole.is_empty() && frac.is_empty()
            || !whole.chars().all(|c| c.is_ascii_digit())
            || !frac.chars().all(|c| c.is_ascii_digit())
        {
            return Err(format!("`{text}` is not a decimal number"));
        }
        if frac.len() > 3 {
            return Err(format!("`{text}`: at most three decimals"));
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole
                .parse()
                .map_err(|_| format!("`{text}` is too large"))?
        };
        let frac: i64 = format!("{frac:0<3}").parse().unwrap_or(0);
        let v = whole
            .checked_mul(1000)
            .and_then(|w| w.checked_add(frac))
            .ok_or_else(|| format!("`{text}` is too large"))?;
        Ok(Milli(if neg { -v } else { v }))
    }

    /// From a number read from a settings file: its shortest decimal form, so `1.1` is
    /// exactly 1.100.
    pub fn from_f64(x: f64) -> Result<Milli, String> {
        if !x.is_finite() {
            return Err(format!("{x} is not a number"));
        }
        Milli::parse(&format!("{x}"))
    }
}

impl std::fmt::Display for Milli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let v = self.0.unsigned_abs();
        let (w, r) = (v / 1000, v % 1000);
        if r == 0 {
            write!(f, "{sign}{w}")
        } else {
            let frac = format!("{r:03}");
            write!(f, "{sign}{w}.{}", frac.trim_end_matches('0'))
        }
    }
}

/// How fractional points are rounded, once per order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    #[default]
    Floor,
    /// Half away from zero.
    Nearest,
    Ceil,
}

impl Rounding {
    /// `num / den` rounded; `den` > 0.
    pub fn divide(self, num: i128, den: i128) -> i128 {
        let q = num.div_euclid(den);
        let r = num.rem_euclid(den);
        match self {
            Rounding::Floor => q,
            Rounding::Ceil => q + i128::from(r > 0),
            Rounding::Nearest => q + i128::from(2 * r >= den),
        }
    }
}

/// A tier: reached with `threshold` points earned in the last 12 months.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierRule {
    pub name: String,
    pub threshold: i64,
    pub multiplier: Milli,
}

/// The earning rules (`[loyalty]` in patron.toml).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    /// Points per currency unit (100 cents) of paid spend.
    pub points_per_unit: Milli,
    pub rounding: Rounding,
    /// Ascending by threshold; the first has threshold 0.
    pub tiers: Vec<TierRule>,
    /// Earned points become spendable this long after the order.
    pub pending_days: i64,
    /// Earned points expire this many months after they become spendable; 0: never.
    pub expiry_months: u32,
    /// A tier falls at most once per this many days.
    pub downgrade_period_days: i64,
    /// What one point costs the company, in cents (campaign previews).
    pub point_value_milli_cents: Milli,
}

impl Default for Rules {
    fn default() -> Self {
        let tier = |name: &str, threshold, multiplier| TierRule {
            name: name.to_owned(),
            threshold,
            multiplier: Milli(multiplier),
        };
        Rules {
            points_per_unit: Milli::ONE,
            rounding: Rounding::Floor,
            tiers: vec![
                tier("bronze", 0, 1000),
                tier("silver", 1_000, 1250),
                tier("gold", 5_000, 1500),
                tier("platinum", 20_000, 2000),
            ],
            pending_days: 14,
            expiry_months: 12,
            downgrade_period_days: 90,
            point_value_milli_cents: Milli(1000),
        }
    }
}

impl Rules {
    /// Checks what settings cannot express by type.
    pub fn check(&self) -> Result<(), String> {
        if self.points_per_unit.0 < 0 {
            return Err("loyalty.points_per_unit must not be negative".to_owned());
        }
        if self.tiers.is_empty() {
            return Err("loyalty.tiers: at least one tier".to_owned());
        }
        if self.tiers[0].threshold != 0 {
            return Err("loyalty.tiers: the first tier's threshold must be 0".to_owned());
        }
        for w in self.tiers.windows(2) {
            if w[1].threshold <= w[0].threshold {
                return Err(format!(
                    "loyalty.tiers: `{}` must have a higher threshold than `{}`",
                    w[1].name, w[0].name
                ));
            }
        }
        if self.pending_days < 0 || self.downgrade_period_days < 0 {
            return Err("loyalty: day counts must not be negative".to_owned());
        }
        Ok(())
    }

    /// The tier rule named `name`, or the lowest.
    pub fn tier(&self, name: &str) -> Option<&TierRule> {
        self.tiers.iter().find(|t| t.name == name)
    }

    /// Points for `spend_cents` of paid spend at a tier multiplier, rounded once.
    pub fn points_for(&self, spend_cents: i64, multiplier: Milli) -> i64 {
        if spend_cents <= 0 {
            return 0;
        }
        let num =
            i128::from(spend_cents) * i128::from(self.points_per_unit.0) * i128::from(multiplier.0);
        let den: i128 = 100 * 1000 * 1000;
        clamp(self.rounding.divide(num, den))
    }

    /// Points a campaign multiplier adds on top of the base rate for `spend_cents`
    /// (`multiplier` 2 doubles them: the bonus is the base once more).
    pub fn bonus_for(&self, spend_cents: i64, multiplier: Milli) -> i64 {
        self.points_for(spend_cents, Milli((multiplier.0 - 1000).max(0)))
    }

    /// What `points` cost, in whole cents (rounded up).
    pub fn cost_cents(&self, points: i64) -> i64 {
        clamp(Rounding::Ceil.divide(
            i128::from(points) * i128::from(self.point_value_milli_cents.0),
            1000,
        ))
    }

    /// Epoch seconds when points earned at `at` become spendable.
    pub fn available_at(&self, at: i64) -> i64 {
        at + self.pending_days * 86_400
    }

    /// Epoch seconds when points spendable from `available_at` expire; `None`: never.
    pub fn expires_at(&self, available_at: i64) -> Option<i64> {
        if self.expiry_months == 0 {
            return None;
        }
        let start = chrono::DateTime::from_timestamp(available_at, 0)?;
        start
            .checked_add_months(chrono::Months::new(self.expiry_months))
            .map(|t| t.timestamp())
    }
}

/// What an order that earned `earned` points on `basis_cents` keeps once its paid spend is
/// `paid_cents`: the same share, rounded down (a refund never leaves more than was due).
pub fn kept_after_refund(earned: i64, basis_cents: i64, paid_cents: i64) -> i64 {
    if basis_cents <= 0 || paid_cents >= basis_cents {
        return earned;
    }
    if paid_cents <= 0 {
        return 0;
    }
    clamp(Rounding::Floor.divide(
        i128::from(earned) * i128::from(paid_cents),
        i128::from(basis_cents),
    ))
}

fn clamp(x: i128) -> i64 {
    x.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact_thousandths() {
        assert_eq!(Milli::parse("1.25"), Ok(Milli(1250)));
        assert_eq!(Milli::parse("2"), Ok(Milli(2000)));
        assert_eq!(Milli::parse(".5"), Ok(Milli(500)));
        assert_eq!(Milli::parse("-0.1"), Ok(Milli(-100)));
        assert!(Milli::parse("1.2345").is_err());
        assert!(Milli::parse("abc").is_err());
        assert_eq!(Milli::from_f64(1.1), Ok(Milli(1100)));
        assert_eq!(Milli(1250).to_string(), "1.25");
        assert_eq!(Milli(2000).to_string(), "2");
    }

    #[test]
    fn points_are_rounded_once_per_order() {
        let mut rules = Rules::default();
        // 12.34 at 1 point per unit: 12.34 points.
        assert_eq!(rules.points_for(1234, Milli::ONE), 12);
        rules.rounding = Rounding::Ceil;
        assert_eq!(rules.points_for(1234, Milli::ONE), 13);
        rules.rounding = Rounding::Nearest;
        assert_eq!(rules.points_for(1234, Milli::ONE), 12);
        assert_eq!(rules.points_for(1250, Milli::ONE), 13);
        // Gold (×1.5) at 2.5 points per unit: 10.00 → 37.5 → 38 (nearest).
        rules.points_per_unit = Milli(2500);
        assert_eq!(rules.points_for(1000, Milli(1500)), 38);
        rules.rounding = Rounding::Floor;
        assert_eq!(rules.points_for(1000, Milli(1500)), 37);
        assert_eq!(rules.points_for(0, Milli(1500)), 0);
        assert_eq!(rules.points_for(-500, Milli(1500)), 0);
        // A campaign doubling points adds the base once more.
        assert_eq!(rules.bonus_for(1000, Milli(2000)), 25);
        assert_eq!(rules.bonus_for(1000, Milli(1000)), 0);
    }

    #[test]
    fn a_refund_takes_back_its_share_and_never_more() {
        assert_eq!(kept_after_refund(100, 10_000, 10_000), 100);
        assert_eq!(kept_after_refund(100, 10_000, 2_500), 25);
        assert_eq!(kept_after_refund(99, 10_000, 5_000), 49);
        assert_eq!(kept_after_refund(100, 10_000, 0), 0);
        assert_eq!(kept_after_refund(100, 0, 0), 100);
    }

    #[test]
    fn pending_and_expiry_dates() {
        let rules = Rules::default();
        // 2026-01-31 00:00 UTC + 14 days = 2026-02-14; + 12 months = 2027-02-14.
        let at = 1_769_817_600;
        let available = rules.available_at(at);
        assert_eq!(available, at + 14 * 86_400);
        let expires = rules.expires_at(available).unwrap();
        assert_eq!(
            chrono::DateTime::from_timestamp(expires, 0)
                .unwrap()
                .date_naive()
                .to_string(),
            "2027-02-14"
        );
        let never = Rules {
            expiry_months: 0,
            ..Rules::default()
        };
        assert_eq!(never.expires_at(available), None);
    }

    #[test]
    fn tiers_must_ascend_from_zero() {
        let mut rules = Rules::default();
        assert!(rules.check().is_ok());
        rules.tiers.swap(1, 2);
        assert!(rules.check().unwrap_err().contains("higher threshold"));
        rules.tiers[0].threshold = 5;
        assert!(rules.check().is_err());
    }
}
