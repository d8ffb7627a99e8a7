//! Customer features as of a cut-off instant (RFM and behaviour), from plain rows.
//!
//! Only rows strictly before the cut-off count. "Paid" lines are the purchases; cancelled and
//! refunded lines only feed the cancel rate. Callers leave anomalous rows out.

/// Seconds in a day, for day-valued features.
const DAY: f64 = 86_400.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineStatus {
    Paid,
    Cancelled,
    Refunded,
}

/// One order line; customers and products are dense indices, orders any stable 64-bit id.
#[derive(Debug, Clone, Copy)]
pub struct Line {
    pub customer: u32,
    pub order: u64,
    pub product: u32,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub at: i64,
    pub status: LineStatus,
}

/// A customer's browsing before the cut-off, summed (the database does the sums).
#[derive(Debug, Clone, Copy)]
pub struct Browsing {
    pub customer: u32,
    pub events: u64,
    pub seconds: f64,
    pub first_at: i64,
}

/// A customer's reviews before the cut-off, summed.
#[derive(Debug, Clone, Copy)]
pub struct Reviewing {
    pub customer: u32,
    pub reviews: u64,
    pub rating_sum: u64,
    pub first_at: i64,
}

/// The features of one customer (DESIGN.md section 7).
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// Days from the last paid order to the cut-off; with no paid order, the tenure.
    pub recency_days: f64,
    /// Distinct paid orders.
    pub frequency: u64,
    /// Paid spend, currency units.
    pub monetary: f64,
    /// Days from signup (or first activity when signup is unknown) to the cut-off.
    pub tenure_days: f64,
    /// `monetary / frequency` (0 without orders).
    pub avg_basket: f64,
    /// Distinct products in paid orders.
    pub distinct_products: u64,
    /// Share of the customer's distinct orders that were cancelled or refunded.
    pub cancel_rate: f64,
    pub n_events: u64,
    pub browse_seconds: f64,
    pub n_reviews: u64,
    pub mean_rating: Option<f64>,
}

/// Features for customers `0..signups.len()` as of `cutoff` (epoch seconds, exclusive).
/// Order lines may come in any order; they are sorted in place (by customer and order) to
/// count distinct orders and products without per-customer sets. Browsing and reviews come
/// summed per customer, already restricted to before the cut-off.
pub fn compute(
    signups: &[Option<i64>],
    lines: &mut [Line],
    browsing: &[Browsing],
    reviewing: &[Reviewing],
    cutoff: i64,
) -> Vec<Features> {
    let n = signups.len();
    #[derive(Default, Clone)]
    struct Acc {
        last_paid: Option<i64>,
        first_seen: Option<i64>,
        paid_orders: u64,
        spend_cents: i128,
        orders: u64,
        bad_orders: u64,
        products: u64,
        events: u64,
        browse: f64,
        reviews: u64,
        rating_sum: u64,
    }
    let mut acc = vec![Acc::default(); n];
    let seen = |a: &mut Acc, at: i64| {
        a.first_seen = Some(a.first_seen.map_or(at, |f| f.min(at)));
    };

    lines.sort_unstable_by_key(|l| (l.customer, l.order, l.product));
    let mut i = 0;
    while i < lines.len() {
        // One (customer, order) group at a time.
        let (c, o) = (lines[i].customer, lines[i].order);
        let mut j = i;
        let (mut paid, mut bad) = (false, false);
        while j < lines.len() && lines[j].customer == c && lines[j].order == o {
            let l = lines[j];
            if l.at < cutoff && (c as usize) < n {
                let a = &mut acc[c as usize];
                seen(a, l.at);
                match l.status {
                    LineStatus::Paid => {
                        paid = true;
                        a.spend_cents += i128::from(l.quantity) * i128::from(l.unit_price_cents);
                        a.last_paid = Some(a.last_paid.map_or(l.at, |t| t.max(l.at)));
                    }
                    LineStatus::Cancelled | LineStatus::Refunded => bad = true,
                }
            }
            j += 1;
        }
        if (c as usize) < n && (paid || bad) {
            let a = &mut acc[c as usize];
            a.orders += 1;
            a.paid_orders += u64::from(paid);
            a.bad_orders += u64::from(bad);
        }
        i = j;
    }
    // Distinct products over paid lines: after the sort by (customer, order, product), a second
    // pass over (customer, product) pairs.
    let mut pairs: Vec<(u32, u32)> = lines
        .iter()
        .filter(|l| l.at < cutoff && l.status == LineStatus::Paid)
        .map(|l| (l.customer, l.product))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    for (c, _) in pairs {
        if let Some(a) = acc.get_mut(c as usize) {
            a.products += 1;
        }
    }
    for b in browsing {
        if let Some(a) = acc.get_mut(b.customer as usize) {
            a.events += b.events;
            a.browse += b.seconds.max(0.0);
            seen(a, b.first_at);
        }
    }
    for r in reviewing {
        if let Some(a) = acc.get_mut(r.customer as usize) {
            a.reviews += r.reviews;
            a.rating_sum += r.rating_sum;
            seen(a, r.first_at);
        }
    }

    acc.into_iter()
        .zip(signups)
        .map(|(a, signup)| {
            let start = signup.or(a.first_seen).unwrap_or(cutoff);
            let tenure_days = ((cutoff - start) as f64 / DAY).max(0.0);
            let monetary = a.spend_cents as f64 / 100.0;
            Features {
                recency_days: a
                    .last_paid
                    .map_or(tenure_days, |t| (cutoff - t) as f64 / DAY),
                frequency: a.paid_orders,
                monetary,
                tenure_days,
                avg_basket: if a.paid_orders > 0 {
                    monetary / a.paid_orders as f64
                } else {
                    0.0
                },
                distinct_products: a.products,
                cancel_rate: if a.orders > 0 {
                    a.bad_orders as f64 / a.orders as f64
                } else {
                    0.0
                },
                n_events: a.events,
                browse_seconds: a.browse,
                n_reviews: a.reviews,
                mean_rating: (a.reviews > 0).then(|| a.rating_sum as f64 / a.reviews as f64),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: i64 = 86_400;

    fn line(
        customer: u32,
        order: u64,
        product: u32,
        qty: i64,
        cents: i64,
        day: i64,
        status: LineStatus,
    ) -> Line {
        Line {
            customer,
            order,
            product,
            quantity: qty,
            unit_price_cents: cents,
            at: day * D,
            status,
        }
    }

    /// Hand-checked: customer 0 signed up on day 0 and, by the cut-off at day 100, paid for
    /// two orders (day 10: 2 × 5.00 + 1 × 3.00 = 13.00; day 40: 1 × 5.00), had one refunded
    /// order (day 50), browsed twice (30 s, 90 s) and reviewed twice (4 and 5 stars). A paid
    /// order on day 120 is after the cut-off and does not count.
    #[test]
    fn hand_checked_features() {
        use LineStatus::*;
        let mut lines = vec![
            line(0, 1, 7, 2, 500, 10, Paid),
            line(0, 1, 8, 1, 300, 10, Paid),
            line(0, 2, 7, 1, 500, 40, Paid),
            line(0, 3, 9, 1, 900, 50, Refunded),
            line(0, 4, 9, 1, 900, 120, Paid),
        ];
        // Two events (30 s, 90 s) and two reviews (4 and 5 stars) before the cut-off; the
        // caller has already left out the event on day 150.
        let events = [Browsing {
            customer: 0,
            events: 2,
            seconds: 120.0,
            first_at: 5 * D,
        }];
        let reviews = [Reviewing {
            customer: 0,
            reviews: 2,
            rating_sum: 9,
            first_at: 11 * D,
        }];
        let f = compute(&[Some(0)], &mut lines, &events, &reviews, 100 * D);
        let f = &f[0];
        assert_eq!(f.recency_days, 60.0);
        assert_eq!(f.frequency, 2);
        assert_eq!(f.monetary, 18.0);
        assert_eq!(f.tenure_days, 100.0);
        assert_eq!(f.avg_basket, 9.0);
        assert_eq!(f.distinct_products, 2, "products 7 and 8; 9 was refunded");
        assert!((f.cancel_rate - 1.0 / 3.0).abs() < 1e-12, "1 of 3 orders");
        assert_eq!(f.n_events, 2);
        assert_eq!(f.browse_seconds, 120.0);
        assert_eq!(f.n_reviews, 2);
        assert_eq!(f.mean_rating, Some(4.5));
    }

    #[test]
    fn a_customer_without_purchases_has_zeros_and_tenure_as_recency() {
        let f = compute(&[Some(40 * D), None], &mut [], &[], &[], 100 * D);
        assert_eq!(f[0].frequency, 0);
        assert_eq!(f[0].monetary, 0.0);
        assert_eq!(f[0].tenure_days, 60.0);
        assert_eq!(f[0].recency_days, 60.0);
        assert_eq!(f[0].mean_rating, None);
        // No signup and no activity: tenure 0.
        assert_eq!(f[1].tenure_days, 0.0);
    }

    #[test]
    fn tenure_falls_back_to_first_activity() {
        let mut lines = vec![line(0, 1, 1, 1, 100, 30, LineStatus::Paid)];
        let f = compute(&[None], &mut lines, &[], &[], 100 * D);
        assert_eq!(f[0].tenure_days, 70.0);
    }
}
