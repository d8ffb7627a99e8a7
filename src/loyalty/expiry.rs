//! FIFO expiry: every positive ledger row is a lot that expires on its date; spending,
//! reversals and corrections take from the lots that expire first, so the oldest points
//! are the ones used up, and what is left of a lot on its date expires.

use super::EntryKind;

/// One ledger row, as expiry needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub kind: EntryKind,
    /// Signed: positive adds to the balance.
    pub points: i64,
    /// Epoch seconds of the effect.
    pub at: i64,
    pub available_at: i64,
    pub expires_at: Option<i64>,
    /// The order a row is for (earn and reverse rows).
    pub order_id: Option<String>,
}

/// An expiry that is due: a new ledger row of `-points` with `key`, at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    pub key: String,
    pub lot: String,
    pub points: i64,
    pub at: i64,
}

/// The key of the row expiring a lot.
pub fn expiry_key(lot: &str) -> String {
    format!("expire:{lot}")
}

struct Lot<'a> {
    key: &'a str,
    order: Option<&'a str>,
    remaining: i64,
    available_at: i64,
    expires_at: Option<i64>,
    expired: bool,
}

/// The expiries due by `now` for one customer's rows (any order). Rows already expiring a
/// lot are honoured, so calling this again after writing its result returns nothing.
pub fn due_expiries(entries: &[Entry], now: i64) -> Vec<Expiry> {
    let mut rows: Vec<&Entry> = entries.iter().collect();
    rows.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.key.cmp(&b.key)));
    let mut lots: Vec<Lot> = Vec::new();
    let mut out = Vec::new();
    // Lots whose date passed before `t` expire before anything at `t` happens.
    let expire_until = |lots: &mut Vec<Lot>, out: &mut Vec<Expiry>, t: i64, inclusive: bool| {
        for lot in lots.iter_mut() {
            let Some(e) = lot.expires_at else { continue };
            let passed = if inclusive { e <= t } else { e < t };
            if passed && !lot.expired {
                lot.expired = true;
                if lot.remaining > 0 {
                    out.push(Expiry {
                        key: expiry_key(lot.key),
                        lot: lot.key.to_owned(),
                        points: lot.remaining,
                        at: e,
                    });
                }
                lot.remaining = 0;
            }
        }
    };
    for row in rows {
        expire_until(&mut lots, &mut out, row.at, false);
        if row.kind == EntryKind::Expire {
            // An expiry already written: its lot is done.
            if let Some(lot) = row
                .key
                .strip_prefix("expire:")
                .and_then(|k| lots.iter_mut().find(|l| l.key == k))
            {
                lot.expired = true;
                lot.remaining = 0;
            }
            continue;
        }
        if row.points > 0 {
            lots.push(Lot {
                key: &row.key,
                order: row.order_id.as_deref(),
                remaining: row.points,
                available_at: row.available_at,
                expires_at: row.expires_at,
                expired: false,
            });
            continue;
        }
        let mut need = -row.points;
        // A reversal takes from its own order's points first.
        if row.kind == EntryKind::Reverse
            && let Some(order) = row.order_id.as_deref()
        {
            for lot in lots.iter_mut().filter(|l| l.order == Some(order)) {
                let take = lot.remaining.min(need);
                lot.remaining -= take;
                need -= take;
            }
        }
        if need > 0 {
            // Spendable lots first, soonest expiry first; then pending ones.
            let mut order: Vec<usize> =
                (0..lots.len()).filter(|&i| lots[i].remaining > 0).collect();
            order.sort_by_key(|&i| {
                let l = &lots[i];
                (l.available_at > row.at, l.expires_at.unwrap_or(i64::MAX), i)
            });
            for i in order {
                let take = lots[i].remaining.min(need);
                lots[i].remaining -= take;
                need -= take;
                if need == 0 {
                    break;
                }
            }
        }
    }
    expire_until(&mut lots, &mut out, now, true);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn earn(key: &str, points: i64, at: i64, expires: i64) -> Entry {
        Entry {
            key: key.to_owned(),
            kind: EntryKind::Earn,
            points,
            at,
            available_at: at,
            expires_at: Some(expires),
            order_id: Some(key.trim_start_matches("earn:").to_owned()),
        }
    }

    fn spend(key: &str, kind: EntryKind, points: i64, at: i64) -> Entry {
        Entry {
            key: key.to_owned(),
            kind,
            points: -points,
            at,
            available_at: at,
            expires_at: None,
            order_id: None,
        }
    }

    #[test]
    fn the_oldest_points_are_spent_first_and_the_rest_expires_lot_by_lot() {
        // Lots: A 100 (expires 100), B 50 (expires 200), C 30 (expires 300).
        // At 50, 120 points are redeemed: all of A and 20 of B.
        let rows = vec![
            earn("earn:A", 100, 0, 100),
            earn("earn:B", 50, 10, 200),
            earn("earn:C", 30, 20, 300),
            spend("redeem:1", EntryKind::Redeem, 120, 50),
        ];
        assert_eq!(due_expiries(&rows, 99), vec![]);
        // A is used up: nothing of it expires.
        assert_eq!(due_expiries(&rows, 150), vec![]);
        let due = due_expiries(&rows, 250);
        assert_eq!(
            due,
            vec![Expiry {
                key: "expire:earn:B".to_owned(),
                lot: "earn:B".to_owned(),
                points: 30,
                at: 200
            }]
        );
        // Written, it is not due again; C follows at 300.
        let mut written = rows.clone();
        written.push(spend("expire:earn:B", EntryKind::Expire, 30, 200));
        assert_eq!(due_expiries(&written, 250), vec![]);
        let due = due_expiries(&written, 300);
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].lot.as_str(), due[0].points), ("earn:C", 30));
    }

    #[test]
    fn spending_after_a_lot_expired_cannot_use_it() {
        let rows = vec![
            earn("earn:A", 100, 0, 100),
            earn("earn:B", 50, 10, 500),
            spend("redeem:1", EntryKind::Redeem, 40, 200),
        ];
        let due = due_expiries(&rows, 600);
        // A expired whole at 100; the redeem at 200 took 40 of B; 10 of B expire at 500.
        assert_eq!(
            due.iter()
                .map(|e| (e.lot.as_str(), e.points))
                .collect::<Vec<_>>(),
            [("earn:A", 100), ("earn:B", 10)]
        );
    }

    #[test]
    fn a_reversal_takes_from_its_own_order() {
        let mut reverse = spend("reverse:B:0", EntryKind::Reverse, 50, 20);
        reverse.order_id = Some("B".to_owned());
        let rows = vec![
            earn("earn:A", 100, 0, 100),
            earn("earn:B", 50, 10, 200),
            reverse,
        ];
        // B is gone, A expires whole.
        let due = due_expiries(&rows, 1_000);
        assert_eq!(
            due.iter()
                .map(|e| (e.lot.as_str(), e.points))
                .collect::<Vec<_>>(),
            [("earn:A", 100)]
        );
    }
}
