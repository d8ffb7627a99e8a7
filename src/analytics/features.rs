//! Customer features as of a cut-off instant (RFM and behaviour), from per-customer totals.
//!
//! The caller counts and sums each customer's rows before the cut-off (in the database: one
//! grouped scan moves one row per customer instead of every order line); this module turns
//! the totals into features. "Paid" orders are purchases; cancelled and refunded ones only
//! feed the cancel rate. Anomalous rows are left out by the caller.

/// Seconds in a day, for day-valued features.
const DAY: f64 = 86_400.0;

/// A customer's orders before the cut-off. An order counts as paid if any of its lines is
/// paid, and as cancelled if any is cancelled or refunded.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ordering {
    pub customer: u32,
    /// Distinct orders.
    pub orders: u64,
    /// Distinct orders with a paid line.
    pub paid_orders: u64,
    /// Distinct orders with a cancelled or refunded line.
    pub cancelled_orders: u64,
    /// Sum of quantity × unit price over paid lines, in cents.
    pub spend_cents: i64,
    /// Distinct products over paid lines.
    pub products: u64,
    pub last_paid_at: Option<i64>,
    pub first_at: i64,
}

/// A customer's browsing before the cut-off, summed.
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
    /// Sum and count of the sentiment scores of those reviews that have been scored.
    pub sentiment_sum: f64,
    pub sentiment_n: u64,
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
    /// Mean sentiment score in [-1, 1] of the customer's scored reviews.
    pub mean_sentiment: Option<f64>,
}

/// Folds order lines into [`Ordering`] totals for several cut-offs at once, counting each
/// order (and each product) once per customer: the distinct counts a grouped query would
/// need millions of groups for, here a hash set of 64-bit keys. Lines may come in any order.
#[derive(Debug, Clone)]
pub struct OrderLines {
    cutoffs: Vec<i64>,
    /// Per (customer, order hash): which counts it already took, bit `3k` seen before cut-off
    /// `k`, `3k + 1` paid, `3k + 2` cancelled or refunded.
    orders: std::collections::HashMap<(u32, u64), u64>,
    /// Per (customer, product hash): bit `k`, bought (paid) before cut-off `k`.
    products: std::collections::HashMap<(u32, u64), u64>,
    /// Per cut-off, per customer.
    totals: Vec<std::collections::HashMap<u32, Ordering>>,
}

impl OrderLines {
    /// At most 21 cut-offs (three flags each in a 64-bit word).
    pub fn new(cutoffs: &[i64]) -> Self {
        let cutoffs: Vec<i64> = cutoffs.iter().copied().take(21).collect();
        Self {
            totals: vec![std::collections::HashMap::new(); cutoffs.len()],
            cutoffs,
            orders: std::collections::HashMap::new(),
            products: std::collections::HashMap::new(),
        }
    }

    /// One line: `cents` is quantity × unit price, `at` its time.
    pub fn add(
        &mut self,
        customer: u32,
        order: u64,
        product: u64,
        paid: bool,
        cents: i64,
        at: i64,
    ) {
        let mut order_bits = 0u64;
        let mut product_bits = 0u64;
        for (k, c) in self.cutoffs.iter().enumerate() {
            if at < *c {
                order_bits |= 1 << (3 * k);
                order_bits |= 1 << (3 * k + if paid { 1 } else { 2 });
                if paid {
                    product_bits |= 1 << k;
                }
            }
        }
        if order_bits == 0 {
            return;
        }
        let had = self.orders.entry((customer, order)).or_insert(0);
        let new_orders = order_bits & !*had;
        *had |= order_bits;
        let new_products = if product_bits != 0 {
            let had = self.products.entry((customer, product)).or_insert(0);
            let new = product_bits & !*had;
            *had |= product_bits;
            new
        } else {
            0
        };
        for (k, c) in self.cutoffs.iter().enumerate() {
            if at >= *c {
                continue;
            }
            let t = self.totals[k].entry(customer).or_insert(Ordering {
                customer,
                first_at: at,
                ..Ordering::default()
            });
            t.orders += (new_orders >> (3 * k)) & 1;
            t.paid_orders += (new_orders >> (3 * k + 1)) & 1;
            t.cancelled_orders += (new_orders >> (3 * k + 2)) & 1;
            t.products += (new_products >> k) & 1;
            t.first_at = t.first_at.min(at);
            if paid {
                t.spend_cents += cents;
                t.last_paid_at = Some(t.last_paid_at.map_or(at, |l| l.max(at)));
            }
        }
    }

    /// The totals for cut-off `k`.
    pub fn totals(&self, k: usize) -> Vec<Ordering> {
        self.totals
            .get(k)
            .map(|m| m.values().copied().collect())
            .unwrap_or_default()
    }
}

/// Features for customers `0..signups.len()` as of `cutoff` (epoch seconds, exclusive), from
/// totals that hold only rows before the cut-off. Totals for unknown customers are ignored.
pub fn compute(
    signups: &[Option<i64>],
    ordering: &[Ordering],
    browsing: &[Browsing],
    reviewing: &[Reviewing],
    cutoff: i64,
) -> Vec<Features> {
    let n = signups.len();
    let mut orders = vec![Ordering::default(); n];
    let mut first_seen: Vec<Option<i64>> = vec![None; n];
    let mut seen = |c: u32, at: i64| {
        if let Some(f) = first_seen.get_mut(c as usize) {
            *f = Some(f.map_or(at, |x| x.min(at)));
        }
    };
    for o in ordering {
        seen(o.customer, o.first_at);
        if let Some(slot) = orders.get_mut(o.customer as usize) {
            *slot = *o;
        }
    }
    let mut browse = vec![(0u64, 0.0f64); n];
    for b in browsing {
        seen(b.customer, b.first_at);
        if let Some(slot) = browse.get_mut(b.customer as usize) {
            *slot = (b.events, b.seconds.max(0.0));
        }
    }
    let mut reviews = vec![(0u64, 0u64, 0.0f64, 0u64); n];
    for r in reviewing {
        seen(r.customer, r.first_at);
        if let Some(slot) = reviews.get_mut(r.customer as usize) {
            *slot = (r.reviews, r.rating_sum, r.sentiment_sum, r.sentiment_n);
        }
    }
    (0..n)
        .map(|i| {
            let o = &orders[i];
            let start = signups[i].or(first_seen[i]).unwrap_or(cutoff);
            let tenure_days = ((cutoff - start) as f64 / DAY).max(0.0);
            let monetary = o.spend_cents as f64 / 100.0;
            let (n_events, browse_seconds) = browse[i];
            let (n_reviews, rating_sum, sentiment_sum, sentiment_n) = reviews[i];
            Features {
                recency_days: o
                    .last_paid_at
                    .map_or(tenure_days, |t| (cutoff - t) as f64 / DAY),
                frequency: o.paid_orders,
                monetary,
                tenure_days,
                avg_basket: if o.paid_orders > 0 {
                    monetary / o.paid_orders as f64
                } else {
                    0.0
                },
                distinct_products: o.products,
                cancel_rate: if o.orders > 0 {
                    o.cancelled_orders as f64 / o.orders as f64
                } else {
                    0.0
                },
                n_events,
                browse_seconds,
                n_reviews,
                mean_rating: (n_reviews > 0).then(|| rating_sum as f64 / n_reviews as f64),
                mean_sentiment: (sentiment_n > 0).then(|| sentiment_sum / sentiment_n as f64),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: i64 = 86_400;

    /// Hand-checked: customer 0 signed up on day 0 and, by the cut-off at day 100, paid for
    /// two orders (day 10: 2 × 5.00 + 1 × 3.00 = 13.00; day 40: 1 × 5.00) with products 7 and
    /// 8, had one refunded order (day 50), browsed twice (30 s, 90 s) and reviewed twice (4
    /// and 5 stars).
    #[test]
    fn hand_checked_features() {
        let ordering = [Ordering {
            customer: 0,
            orders: 3,
            paid_orders: 2,
            cancelled_orders: 1,
            spend_cents: 1800,
            products: 2,
            last_paid_at: Some(40 * D),
            first_at: 10 * D,
        }];
        let browsing = [Browsing {
            customer: 0,
            events: 2,
            seconds: 120.0,
            first_at: 5 * D,
        }];
        let reviewing = [Reviewing {
            customer: 0,
            reviews: 2,
            rating_sum: 9,
            first_at: 11 * D,
            sentiment_sum: 1.1,
            sentiment_n: 2,
        }];
        let f = compute(&[Some(0)], &ordering, &browsing, &reviewing, 100 * D);
        let f = &f[0];
        assert_eq!(f.recency_days, 60.0);
        assert_eq!(f.frequency, 2);
        assert_eq!(f.monetary, 18.0);
        assert_eq!(f.tenure_days, 100.0);
        assert_eq!(f.avg_basket, 9.0);
        assert_eq!(f.distinct_products, 2);
        assert!((f.cancel_rate - 1.0 / 3.0).abs() < 1e-12, "1 of 3 orders");
        assert_eq!(f.n_events, 2);
        assert_eq!(f.browse_seconds, 120.0);
        assert_eq!(f.n_reviews, 2);
        assert_eq!(f.mean_rating, Some(4.5));
        assert_eq!(f.mean_sentiment, Some(0.55));
    }

    #[test]
    fn a_customer_without_purchases_has_zeros_and_tenure_as_recency() {
        let f = compute(&[Some(40 * D), None], &[], &[], &[], 100 * D);
        assert_eq!(f[0].frequency, 0);
        assert_eq!(f[0].monetary, 0.0);
        assert_eq!(f[0].tenure_days, 60.0);
        assert_eq!(f[0].recency_days, 60.0);
        assert_eq!(f[0].mean_rating, None);
        // No signup and no activity: tenure 0.
        assert_eq!(f[1].tenure_days, 0.0);
    }

    #[test]
    fn tenure_falls_back_to_the_first_activity_of_any_kind() {
        let ordering = [Ordering {
            customer: 0,
            orders: 1,
            paid_orders: 1,
            first_at: 30 * D,
            last_paid_at: Some(30 * D),
            ..Default::default()
        }];
        let browsing = [Browsing {
            customer: 0,
            events: 1,
            seconds: 1.0,
            first_at: 20 * D,
        }];
        let f = compute(&[None], &ordering, &browsing, &[], 100 * D);
        assert_eq!(f[0].tenure_days, 80.0);
        assert_eq!(f[0].recency_days, 70.0);
    }

    #[test]
    fn totals_of_unknown_customers_are_ignored() {
        let ordering = [Ordering {
            customer: 5,
            orders: 1,
            ..Default::default()
        }];
        assert_eq!(compute(&[None], &ordering, &[], &[], D).len(), 1);
    }

    #[test]
    fn order_lines_count_each_order_and_product_once_per_cut_off() {
        // Customer 0: order 1 (two paid lines of product 7 on day 1 and a refunded line on
        // day 3), order 2 (paid, product 8, day 5). Cut-offs after day 2 and after day 6.
        let day = |d: i64| d * 86_400;
        let mut lines = OrderLines::new(&[day(2), day(6)]);
        lines.add(0, 1, 7, true, 300, day(1));
        lines.add(0, 1, 7, true, 200, day(1));
        lines.add(0, 1, 9, false, 100, day(3));
        lines.add(0, 2, 8, true, 1000, day(5));
        let early = lines.totals(0);
        assert_eq!(early.len(), 1);
        let e = early[0];
        assert_eq!(
            (
                e.orders,
                e.paid_orders,
                e.cancelled_orders,
                e.products,
                e.spend_cents
            ),
            (1, 1, 0, 1, 500)
        );
        assert_eq!((e.last_paid_at, e.first_at), (Some(day(1)), day(1)));
        let l = lines.totals(1)[0];
        assert_eq!(
            (
                l.orders,
                l.paid_orders,
                l.cancelled_orders,
                l.products,
                l.spend_cents
            ),
            (2, 2, 1, 2, 1500)
        );
        assert_eq!(l.last_paid_at, Some(day(5)));
    }
}
