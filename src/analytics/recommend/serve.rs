//! The recommender as the `recommend` job runs it: every source fitted on one shop's
//! dealings, candidate lists per customer, the hybrid, and an honest evaluation on a later
//! time window. Pure: dense ids and epoch seconds in, ranked lists and metrics out.

use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    Accumulator, Als, AlsParams, Content, ContentParams, Did, Event, Exclude, HistoryScorer,
    Hybrid, Interaction, Interactions, ItemKnn, KnnParams, Popularity, Reason, Recommendation,
    Source, eval, tune_weights,
};

/// One customer's dealings with one product: a weight (purchases count most) and when.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dealing {
    pub user: u32,
    pub item: u32,
    pub weight: f32,
    /// Epoch seconds of the last dealing.
    pub last_at: i64,
    /// The most the customer did with it: bought, else carted, else viewed or clicked.
    pub did: Did,
}

/// A recommendation with the reason the customer is told.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Explained {
    pub rec: Recommendation,
    /// `None` only when no source could say (never a made-up one).
    pub reason: Option<Reason>,
}

/// What the sources need, for a shop of `n_users` × `n_items`.
pub struct Shop<'a> {
    pub n_users: usize,
    pub n_items: usize,
    pub dealings: &'a [Dealing],
    /// One text per item (title, description, category).
    pub texts: &'a [String],
    /// Each user's group (segment) for cold-start popularity; `u32::MAX` when none.
    pub groups: &'a [u32],
}

/// How to recommend.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Settings {
    pub n: usize,
    /// Recommend items the customer already has (repeat purchases).
    pub repeat: bool,
    pub knn: KnnParams,
    /// Item-kNN sees each customer's row scaled by `deg^-a` (a = this), so a few very active
    /// customers cannot make every pair of items look alike; 0 leaves rows unchanged.
    pub user_weight_power: f32,
    /// `None` leaves ALS out.
    pub als: Option<AlsParams>,
    pub content: bool,
    /// Half-life of a dealing's weight in a customer's history, days.
    pub half_life_days: f64,
    /// Customers with fewer items than this get popularity in their segment.
    pub min_history: usize,
    /// Candidates each source proposes before the hybrid ranks them.
    pub depth: usize,
    pub seed: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            n: 10,
            repeat: false,
            knn: KnnParams {
                power: 2.0,
                ..KnnParams::default()
            },
            user_weight_power: 0.35,
            als: Some(AlsParams {
                factors: 32,
                iterations: 8,
                ..AlsParams::default()
            }),
            content: true,
            half_life_days: 120.0,
            min_history: 1,
            depth: 50,
            seed: 42,
        }
    }
}

/// The sources, in hybrid-weight order.
pub const SOURCES: [Source; 5] = [
    Source::ItemKnn,
    Source::Als,
    Source::Content,
    Source::Popularity,
    Source::History,
];

/// The item side of a fitted recommender: similarities, factors, text vectors and
/// popularity. The `recommend` job stores it; `feedback` reloads it to serve the customers
/// whose history changed since, without fitting again.
#[derive(Serialize, Deserialize)]
pub struct Model {
    knn: ItemKnn,
    als: Option<Als>,
    content: Option<Arc<Content>>,
    popularity: Popularity,
    settings: Settings,
}

impl Model {
    /// Items the model knows (dense ids `0..n_items`).
    pub fn n_items(&self) -> usize {
        self.knn
            .n_items()
            .max(self.content.as_ref().map_or(0, |c| c.n_items()))
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The model serving `customers`.
    pub fn serve(self, customers: Customers) -> Fitted {
        Fitted {
            model: self,
            customers,
        }
    }
}

/// The customer side: each customer's history as of a moment, and their group.
pub struct Customers {
    /// Per user: `(item, recency-weighted weight)`, sorted by item.
    histories: Vec<Vec<(u32, f32)>>,
    events: Vec<Vec<Event>>,
    /// Per user: `(item, the most they did with it)`, sorted by item, one per item.
    did: Vec<Vec<(u32, Did)>>,
    /// Per user: the items they bought, sorted.
    bought: Vec<Vec<u32>>,
    groups: Vec<u32>,
    now: i64,
}

impl Customers {
    /// `n_users` customers' histories from their dealings as of `now` (epoch seconds), a
    /// dealing's weight halving every `half_life_days`; `groups[u]` is user u's group
    /// (`u32::MAX` or missing: none).
    pub fn new(
        n_users: usize,
        dealings: &[Dealing],
        groups: &[u32],
        now: i64,
        half_life_days: f64,
    ) -> Customers {
        let half_life = half_life_days * 86_400.0;
        let mut histories: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n_users];
        let mut events: Vec<Vec<Event>> = vec![Vec::new(); n_users];
        let mut did: Vec<Vec<(u32, Did)>> = vec![Vec::new(); n_users];
        for d in dealings {
            let Some(h) = histories.get_mut(d.user as usize) else {
                continue;
            };
            let age = (now - d.last_at).max(0) as f64;
            let decay = if half_life > 0.0 {
                0.5f64.powf(age / half_life)
            } else {
                1.0
            };
            h.push((d.item, (f64::from(d.weight) * decay) as f32));
            did[d.user as usize].push((d.item, d.did));
            events[d.user as usize].push(Event {
                item: d.item,
                time: d.last_at,
                weight: d.weight,
            });
        }
        histories
            .par_iter_mut()
            .for_each(|h| h.sort_by_key(|x| x.0));
        // Several dealings with one item: the strongest (`Did` orders bought first) speaks.
        did.par_iter_mut().for_each(|d| {
            d.sort_unstable();
            d.dedup_by_key(|x| x.0);
        });
        let bought = did
            .iter()
            .map(|d| {
                d.iter()
                    .filter(|x| x.1 == Did::Bought)
                    .map(|x| x.0)
                    .collect()
            })
            .collect();
        let groups = (0..n_users)
            .map(|u| groups.get(u).copied().unwrap_or(u32::MAX))
            .collect();
        Customers {
            histories,
            events,
            did,
            bought,
            groups,
            now,
        }
    }

    /// The most `user` did with `item`, if anything.
    pub fn did(&self, user: u32, item: u32) -> Option<Did> {
        let d = self.did.get(user as usize)?;
        d.binary_search_by_key(&item, |x| x.0).ok().map(|i| d[i].1)
    }

    pub fn len(&self) -> usize {
        self.histories.len()
    }

    pub fn is_empty(&self) -> bool {
        self.histories.is_empty()
    }
}

/// Every source fitted on one shop, serving its customers.
pub struct Fitted {
    model: Model,
    customers: Customers,
}

/// Scales every user's row by `deg(u)^-a` (a = 0: unchanged), `deg` being how many items
/// the user has.
pub fn down_weight_active_users(m: &Interactions, a: f32) -> Interactions {
    let mut x = Vec::with_capacity(m.nnz());
    for u in 0..m.n_users {
        let (items, w) = m.by_user.row(u);
        let scale = (items.len().max(1) as f32).powf(-a);
        for (&i, &v) in items.iter().zip(w) {
            x.push(Interaction {
                user: u as u32,
                item: i,
                weight: v * scale,
            });
        }
    }
    Interactions::new(m.n_users, m.n_items, &x)
}

/// The content model of a shop's item texts.
pub fn fit_content(texts: &[String]) -> Arc<Content> {
    Arc::new(Content::fit(texts, ContentParams::default()))
}

/// Fits every source on the dealings (as of `now`); `content` from [`fit_content`].
pub fn fit(shop: &Shop, now: i64, settings: &Settings, content: Option<Arc<Content>>) -> Fitted {
    let interactions: Vec<Interaction> = shop
        .dealings
        .iter()
        .map(|d| Interaction {
            user: d.user,
            item: d.item,
            weight: d.weight,
        })
        .collect();
    let matrix = Interactions::new(shop.n_users, shop.n_items, &interactions);
    // Who bought what matters more to item similarity than how often (validated on UCI
    // Online Retail II: binary beats counts by a wide margin; see the recommend_eval bench).
    let binary = matrix.map_weights(|_| 1.0);
    let customers = Customers::new(
        shop.n_users,
        shop.dealings,
        shop.groups,
        now,
        settings.half_life_days,
    );
    // Item texts do not change with the time split: callers fit content once (see
    // [`fit_content`]) and share it.
    let (knn, als) = rayon::join(
        || {
            ItemKnn::fit_with(
                &down_weight_active_users(&binary, settings.user_weight_power),
                settings.knn,
            )
        },
        || settings.als.map(|p| Als::fit(&matrix, p, settings.seed)),
    );
    let content = if settings.content { content } else { None };
    Fitted {
        model: Model {
            knn,
            als,
            content,
            popularity: Popularity::fit(&binary, Some(&customers.groups)),
            settings: *settings,
        },
        customers,
    }
}

impl Fitted {
    /// One candidate list per source (in [`SOURCES`] order) for a user.
    pub fn candidates(&self, user: u32) -> Vec<Vec<Recommendation>> {
        self.candidates_with(&mut self.accumulator(), user)
    }

    /// A scratch accumulator for [`Fitted::candidates_with`], reusable across users.
    pub fn accumulator(&self) -> Accumulator {
        Accumulator::new(self.model.n_items())
    }

    /// The item side, to store for serving later: ALS users' factors are dropped, so a
    /// customer is always folded in from their history then.
    pub fn into_model(self) -> Model {
        Model {
            als: self.model.als.map(Als::without_users),
            ..self.model
        }
    }

    /// As [`Fitted::candidates`], with a reused accumulator (one catalogue-sized buffer per
    /// thread instead of two per customer).
    pub fn candidates_with(&self, acc: &mut Accumulator, user: u32) -> Vec<Vec<Recommendation>> {
        let s = &self.model.settings;
        let empty = Vec::new();
        // Only what a customer bought is left out: something they viewed or carted is a
        // good candidate.
        let exclude = Exclude {
            repeat: true,
            extra: if s.repeat {
                &[]
            } else {
                self.customers.bought.get(user as usize).unwrap_or(&empty)
            },
        };
        let empty = Vec::new();
        let history = self
            .customers
            .histories
            .get(user as usize)
            .unwrap_or(&empty);
        let group = self
            .customers
            .groups
            .get(user as usize)
            .copied()
            .filter(|g| *g != u32::MAX);
        let knn = self
            .model
            .knn
            .recommend_with(acc, history, s.depth, &exclude);
        let content = self
            .model
            .content
            .as_ref()
            .map(|c| c.recommend_with(acc, history, s.depth, &exclude))
            .unwrap_or_default();
        let popularity = self
            .model
            .popularity
            .recommend(group, history, s.depth, &exclude);
        // ALS ranks what the other sources propose: scoring the whole catalogue for every
        // customer costs minutes at a million customers.
        let als = match &self.model.als {
            Some(als) if !history.is_empty() => {
                let pool: Vec<u32> = knn
                    .iter()
                    .chain(&content)
                    .chain(&popularity)
                    .map(|r| r.item)
                    .collect();
                let x = match als.user_factor(user) {
                    Some(x) => x.to_vec(),
                    None => als.fold_in(history),
                };
                als.rerank(&x, history, &pool, s.depth, &exclude)
            }
            _ => Vec::new(),
        };
        let own = if s.repeat {
            HistoryScorer {
                half_life: s.half_life_days * 86_400.0,
            }
            .recommend(
                self.customers
                    .events
                    .get(user as usize)
                    .map_or(&[], |e| e.as_slice()),
                self.customers.now,
                s.depth,
                &exclude,
            )
        } else {
            Vec::new()
        };
        vec![knn, als, content, popularity, own]
    }

    /// Top-n for a user with the hybrid, each with its reason; customers with too little
    /// history get popularity in their segment.
    pub fn recommend(&self, user: u32, hybrid: &Hybrid) -> Vec<Explained> {
        self.recommend_with(&mut self.accumulator(), user, hybrid)
    }

    fn recommend_with(&self, acc: &mut Accumulator, user: u32, hybrid: &Hybrid) -> Vec<Explained> {
        let lists = self.candidates_with(acc, user);
        let history = self
            .customers
            .histories
            .get(user as usize)
            .map_or(0, Vec::len);
        let recs = if history < self.model.settings.min_history {
            let mut pop = lists[3].clone();
            pop.truncate(self.model.settings.n);
            pop
        } else {
            hybrid.combine(&lists, self.model.settings.n)
        };
        recs.into_iter()
            .map(|rec| Explained {
                rec,
                reason: self.reason(user, &rec),
            })
            .collect()
    }

    /// What `user` is told about `rec`: the product its source names (with what they did
    /// with it), else what they did with the recommended product itself; a popularity pick
    /// says it is one. Only the customer's own dealings are ever named, and never the
    /// recommended product as its own reason.
    pub fn reason(&self, user: u32, rec: &Recommendation) -> Option<Reason> {
        if rec.source == Source::Popularity {
            let group = self
                .customers
                .groups
                .get(user as usize)
                .copied()
                .filter(|g| *g != u32::MAX);
            return Some(
                if group.is_some_and(|g| self.model.popularity.in_group(g, rec.item)) {
                    Reason::PopularInSegment
                } else {
                    Reason::Popular
                },
            );
        }
        let did = |item: u32| self.customers.did(user, item);
        rec.because
            .filter(|&b| b != rec.item)
            .and_then(|item| did(item).map(|did| Reason::Like { item, did }))
            .or_else(|| did(rec.item).map(Reason::Own))
    }

    /// Top-n for every user, in parallel.
    pub fn recommend_all(&self, hybrid: &Hybrid) -> Vec<Vec<Explained>> {
        self.recommend_where(hybrid, |_| true)
    }

    /// Top-n for the users `keep` accepts (one shard's customers), in parallel; an empty
    /// list for the others.
    pub fn recommend_where(
        &self,
        hybrid: &Hybrid,
        keep: impl Fn(u32) -> bool + Sync,
    ) -> Vec<Vec<Explained>> {
        (0..self.customers.histories.len() as u32)
            .into_par_iter()
            .map_init(
                || self.accumulator(),
                |acc, u| {
                    if keep(u) {
                        self.recommend_with(acc, u, hybrid)
                    } else {
                        Vec::new()
                    }
                },
            )
            .collect()
    }
}

/// Figures of one recommender on the evaluation customers.
#[derive(Debug, Clone, Serialize)]
pub struct SourceMetrics {
    pub source: String,
    #[serde(flatten)]
    pub metrics: eval::Metrics,
}

/// The outcome of an evaluation: the tuned hybrid and every recommender's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub weights: Vec<f32>,
    pub hybrid: eval::Metrics,
    pub popularity: eval::Metrics,
    pub sources: Vec<SourceMetrics>,
    /// Customers whose lists tuned the weights (the others are reported).
    pub tuning_users: usize,
}

/// Hybrid weights tried for every source.
const GRID: [f32; 4] = [0.0, 0.25, 0.5, 1.0];

/// Evaluates on a later window: `fitted` was fitted on dealings before it, `truth[u]` is what
/// user u bought in it (sorted; items they already had are removed unless repeats are
/// allowed). Users with training history and a target are split by parity: even ones tune
/// the hybrid's weights, odd ones are reported, so the figures are not tuned on themselves.
pub fn evaluate(fitted: &Fitted, truth: &[Vec<u32>], n_items: usize) -> Evaluation {
    let k = fitted.model.settings.n;
    let users: Vec<u32> = (0..truth.len() as u32)
        .filter(|&u| {
            !truth[u as usize].is_empty()
                && fitted
                    .customers
                    .histories
                    .get(u as usize)
                    .is_some_and(|h| !h.is_empty())
        })
        .collect();
    let users = evenly_spaced(users, EVALUATED_CUSTOMERS);
    let target = |u: u32| -> Vec<u32> {
        let t = &truth[u as usize];
        if fitted.model.settings.repeat {
            return t.clone();
        }
        let b = &fitted.customers.bought[u as usize];
        t.iter()
            .copied()
            .filter(|i| b.binary_search(i).is_err())
            .collect()
    };
    let lists: Vec<(u32, Vec<Vec<Recommendation>>, Vec<u32>)> = users
        .par_iter()
        .map_init(
            || fitted.accumulator(),
            |acc, &u| (u, fitted.candidates_with(acc, u), target(u)),
        )
        .filter(|(_, _, t)| !t.is_empty())
        .collect();
    let (tune, report): (Vec<_>, Vec<_>) = lists.into_iter().partition(|(u, _, _)| u % 2 == 0);
    let tuning_users = tune.len();
    let (tune_candidates, tune_truth): (Vec<Vec<Vec<Recommendation>>>, Vec<Vec<u32>>) =
        tune.into_iter().map(|(_, c, t)| (c, t)).unzip();
    let (weights, _) = tune_weights(&tune_candidates, &tune_truth, &GRID, k);
    drop((tune_candidates, tune_truth));
    let hybrid = Hybrid::new(weights.0.clone());
    let truth: Vec<Vec<u32>> = report.iter().map(|(_, _, t)| t.clone()).collect();
    let items = |lists: Vec<Vec<Recommendation>>| -> Vec<Vec<u32>> {
        lists
            .into_iter()
            .map(|l| l.into_iter().take(k).map(|r| r.item).collect())
            .collect()
    };
    let hybrid_lists = items(
        report
            .iter()
            .map(|(_, c, _)| hybrid.combine(c, k))
            .collect(),
    );
    let sources: Vec<SourceMetrics> = SOURCES
        .iter()
        .enumerate()
        .map(|(s, source)| SourceMetrics {
            source: format!("{source:?}"),
            metrics: eval::evaluate(
                &items(report.iter().map(|(_, c, _)| c[s].clone()).collect()),
                &truth,
                k,
                n_items,
            ),
        })
        .collect();
    Evaluation {
        weights: weights.0,
        hybrid: eval::evaluate(&hybrid_lists, &truth, k, n_items),
        popularity: sources[3].metrics,
        sources,
        tuning_users,
    }
}

/// Most customers an evaluation ranks for: enough for NDCG to two decimals, while every
/// source's candidates for 130k customers (the scale shop's holdout) took gigabytes.
pub const EVALUATED_CUSTOMERS: usize = 20_000;

/// At most `n` of `users`, evenly spaced (all of them when there are no more than `n`).
fn evenly_spaced(users: Vec<u32>, n: usize) -> Vec<u32> {
    if users.len() <= n {
        return users;
    }
    let len = users.len();
    (0..n).map(|i| users[i * len / n]).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn evaluation_takes_evenly_spaced_customers_past_its_limit() {
        assert_eq!(evenly_spaced(vec![4, 5, 6], 3), [4, 5, 6]);
        assert_eq!(evenly_spaced((0..10).collect(), 4), [0, 2, 5, 7]);
        assert_eq!(evenly_spaced((0..100).collect(), 1), [0]);
    }

    /// Two taste groups: users 0..10 buy items 0..3, users 10..20 buy items 3..6; every user
    /// has bought all but one item of their group.
    fn shop_data() -> (Vec<Dealing>, Vec<String>, Vec<u32>) {
        let mut dealings = Vec::new();
        for u in 0..20u32 {
            let base = if u < 10 { 0 } else { 3 };
            for i in base..base + 3 {
                if i != base + u % 3 {
                    dealings.push(Dealing {
                        user: u,
                        item: i,
                        weight: 1.0,
                        last_at: 1_000,
                        did: Did::Bought,
                    });
                }
            }
        }
        let texts = (0..7).map(|i| format!("item {i}")).collect();
        (dealings, texts, vec![u32::MAX; 21])
    }

    #[test]
    fn every_customer_gets_the_missing_item_of_their_group_and_never_a_bought_one() {
        let (dealings, texts, groups) = shop_data();
        let shop = Shop {
            n_users: 21,
            n_items: 7,
            dealings: &dealings,
            texts: &texts,
            groups: &groups,
        };
        let settings = Settings {
            n: 1,
            ..Settings::default()
        };
        let fitted = fit(&shop, 2_000, &settings, Some(fit_content(&texts)));
        let hybrid = Hybrid::new(vec![1.0, 0.0, 0.0, 0.0, 0.0]);
        let all = fitted.recommend_all(&hybrid);
        for u in 0..20u32 {
            let base = if u < 10 { 0 } else { 3 };
            assert_eq!(
                all[u as usize][0].rec.item,
                base + u % 3,
                "user {u}: {:?}",
                all[u as usize]
            );
            assert_eq!(all[u as usize][0].rec.source, Source::ItemKnn);
            assert!(all[u as usize][0].rec.because.is_some());
        }
        // User 20 has no history: popularity, which never recommends nothing.
        assert_eq!(all[20].len(), 1);
        assert_eq!(all[20][0].rec.source, Source::Popularity);
        assert_eq!(all[20][0].reason, Some(Reason::Popular));

        // Shards of the users, ranked apart, make the same lists as everyone at once.
        let odd = fitted.recommend_where(&hybrid, |u| u % 2 == 1);
        let even = fitted.recommend_where(&hybrid, |u| u % 2 == 0);
        for u in 0..21 {
            let (mine, other) = if u % 2 == 1 {
                (&odd, &even)
            } else {
                (&even, &odd)
            };
            assert_eq!(mine[u], all[u], "user {u}");
            assert!(other[u].is_empty(), "user {u}");
        }
    }

    #[test]
    fn active_users_are_down_weighted_by_their_degree() {
        let m = Interactions::new(
            2,
            4,
            &[
                Interaction {
                    user: 0,
                    item: 0,
                    weight: 1.0,
                },
                Interaction {
                    user: 1,
                    item: 0,
                    weight: 1.0,
                },
                Interaction {
                    user: 1,
                    item: 1,
                    weight: 1.0,
                },
                Interaction {
                    user: 1,
                    item: 2,
                    weight: 1.0,
                },
                Interaction {
                    user: 1,
                    item: 3,
                    weight: 1.0,
                },
            ],
        );
        let w = down_weight_active_users(&m, 0.5);
        assert_eq!(w.by_user.row(0).1, [1.0]);
        // 4 items: 4^-0.5 = 0.5 each.
        assert_eq!(w.by_user.row(1).1, [0.5, 0.5, 0.5, 0.5]);
        assert_eq!(down_weight_active_users(&m, 0.0).by_user.row(1).1, [1.0; 4]);
    }

    #[test]
    fn repeat_mode_lets_bought_items_back_in() {
        let (dealings, texts, groups) = shop_data();
        let shop = Shop {
            n_users: 21,
            n_items: 7,
            dealings: &dealings,
            texts: &texts,
            groups: &groups,
        };
        let settings = Settings {
            n: 3,
            repeat: true,
            ..Settings::default()
        };
        let fitted = fit(&shop, 2_000, &settings, Some(fit_content(&texts)));
        let lists = fitted.candidates(1);
        // The history source proposes exactly what user 1 bought (items 0 and 2).
        let mut own: Vec<u32> = lists[4].iter().map(|r| r.item).collect();
        own.sort();
        assert_eq!(own, [0, 2]);
        // Bought again: the reason is the purchase itself, naming no product.
        let again = fitted.recommend(1, &Hybrid::new(vec![0.0, 0.0, 0.0, 0.0, 1.0]));
        assert_eq!(again.len(), 2, "{again:?}");
        for e in &again {
            assert_eq!(e.rec.because, None);
            assert_eq!(e.reason, Some(Reason::Own(Did::Bought)), "{e:?}");
        }
    }

    /// The model of `shop_data` with users 0..10 in segment 0 and 10..20 in segment 1, and
    /// two customers served from it: a viewer who bought item 0 and only viewed item 4, and
    /// a newcomer of segment 1 with no history.
    fn served(n: usize) -> Fitted {
        let (dealings, texts, _) = shop_data();
        let groups: Vec<u32> = (0..21).map(|u| if u < 10 { 0 } else { 1 }).collect();
        let groups = [&groups[..20], &[u32::MAX]].concat();
        let shop = Shop {
            n_users: 21,
            n_items: 7,
            dealings: &dealings,
            texts: &texts,
            groups: &groups,
        };
        let settings = Settings {
            n,
            ..Settings::default()
        };
        let model = fit(&shop, 2_000, &settings, Some(fit_content(&texts))).into_model();
        let viewer = [
            Dealing {
                user: 0,
                item: 0,
                weight: 1.0,
                last_at: 1_000,
                did: Did::Bought,
            },
            Dealing {
                user: 0,
                item: 4,
                weight: 1.0,
                last_at: 1_000,
                did: Did::Viewed,
            },
        ];
        model.serve(Customers::new(2, &viewer, &[u32::MAX, 1], 2_000, 120.0))
    }

    #[test]
    fn a_reason_is_something_the_customer_did_and_never_the_item_itself() {
        // Item-kNN alone. Items 0, 1, 2 are bought together (segment 0), 3, 4, 5 together
        // (segment 1); sim(0,1) = sim(0,2) = sim(4,3) = sim(4,5) = 3/sqrt(6*7). The viewer
        // bought 0 (left out) and viewed 4: 4 scores its own view, w·1; 1 and 2 score
        // w·sim² from 0; 3 and 5 the same from 4 (ties by item).
        let fitted = served(5);
        let knn = Hybrid::new(vec![1.0, 0.0, 0.0, 0.0, 0.0]);
        let got: Vec<(u32, Option<Reason>)> = fitted
            .recommend(0, &knn)
            .iter()
            .map(|e| (e.rec.item, e.reason))
            .collect();
        let like = |item, did| Some(Reason::Like { item, did });
        assert_eq!(
            got,
            [
                (4, Some(Reason::Own(Did::Viewed))),
                (1, like(0, Did::Bought)),
                (2, like(0, Did::Bought)),
                (3, like(4, Did::Viewed)),
                (5, like(4, Did::Viewed)),
            ]
        );
        // The newcomer gets segment 1's popular items (3 and 5 by seven customers, 4 by
        // six), topped up from everyone's (1 and 2 by seven): each says which it is.
        let got: Vec<(u32, Option<Reason>)> = fitted
            .recommend(1, &knn)
            .iter()
            .map(|e| (e.rec.item, e.reason))
            .collect();
        assert_eq!(
            got,
            [
                (3, Some(Reason::PopularInSegment)),
                (5, Some(Reason::PopularInSegment)),
                (4, Some(Reason::PopularInSegment)),
                (1, Some(Reason::Popular)),
                (2, Some(Reason::Popular)),
            ]
        );
    }

    #[test]
    fn every_source_and_blend_names_only_the_customers_own_dealings() {
        let fitted = served(6);
        let mut seen = std::collections::BTreeSet::new();
        for weights in [
            vec![1.0, 0.0, 0.0, 0.0, 0.0],
            vec![0.0, 1.0, 0.0, 0.0, 0.0],
            vec![0.0, 0.0, 1.0, 0.0, 0.0],
            vec![0.0, 0.0, 0.0, 1.0, 0.0],
            vec![1.0, 0.5, 0.25, 0.25, 0.0],
        ] {
            for user in 0..2 {
                for e in fitted.recommend(user, &Hybrid::new(weights.clone())) {
                    assert_ne!(e.rec.because, Some(e.rec.item), "{e:?}");
                    let did = |item| fitted.customers.did(user, item);
                    match e.reason {
                        Some(Reason::Like { item, did: d }) => {
                            assert_ne!(item, e.rec.item, "{e:?}");
                            assert_eq!(did(item), Some(d), "{e:?}");
                        }
                        Some(Reason::Own(d)) => assert_eq!(did(e.rec.item), Some(d), "{e:?}"),
                        Some(Reason::PopularInSegment | Reason::Popular) => {
                            assert_eq!(e.rec.source, Source::Popularity, "{e:?}")
                        }
                        None => panic!("no reason: {e:?}"),
                    }
                    seen.insert(e.reason.map(Reason::kind));
                }
            }
        }
        // Every kind of reason came up.
        for kind in ["bought", "viewed", "popular_in_segment", "popular"] {
            assert!(seen.contains(&Some(kind)), "{seen:?}");
        }
    }

    #[test]
    fn the_strongest_dealing_names_a_product() {
        // Viewed, carted and bought item 2; carted and viewed item 3; viewed item 5.
        let d = |item, did| Dealing {
            user: 0,
            item,
            weight: 1.0,
            last_at: 0,
            did,
        };
        let dealings = [
            d(2, Did::Viewed),
            d(2, Did::Bought),
            d(2, Did::Carted),
            d(3, Did::Viewed),
            d(3, Did::Carted),
            d(5, Did::Viewed),
        ];
        let c = Customers::new(1, &dealings, &[], 0, 120.0);
        assert_eq!(c.did(0, 2), Some(Did::Bought));
        assert_eq!(c.did(0, 3), Some(Did::Carted));
        assert_eq!(c.did(0, 5), Some(Did::Viewed));
        assert_eq!(c.did(0, 4), None);
        assert_eq!(c.did(1, 2), None);
        assert_eq!(c.bought, [vec![2]]);
    }

    #[test]
    fn evaluation_reports_only_customers_it_did_not_tune_on() {
        let (dealings, texts, groups) = shop_data();
        let shop = Shop {
            n_users: 21,
            n_items: 7,
            dealings: &dealings,
            texts: &texts,
            groups: &groups,
        };
        let settings = Settings {
            n: 1,
            ..Settings::default()
        };
        let fitted = fit(&shop, 2_000, &settings, Some(fit_content(&texts)));
        // Later, each user buys the item of their group they did not have.
        let truth: Vec<Vec<u32>> = (0..21u32)
            .map(|u| match u {
                20 => vec![],
                _ => vec![if u < 10 { 0 } else { 3 } + u % 3],
            })
            .collect();
        let e = evaluate(&fitted, &truth, 7);
        assert_eq!(e.tuning_users, 10);
        assert_eq!(e.hybrid.users, 10);
        assert!((e.hybrid.precision - 1.0).abs() < 1e-9, "{e:?}");
        assert!((e.hybrid.ndcg - 1.0).abs() < 1e-9);
        assert!(e.popularity.ndcg < 1.0);
    }

    #[test]
    fn serving_only_the_changed_customers_from_a_stored_model_equals_serving_everyone() {
        let (mut dealings, texts, groups) = shop_data();
        let shop = Shop {
            n_users: 21,
            n_items: 7,
            dealings: &dealings,
            texts: &texts,
            groups: &groups,
        };
        let settings = Settings {
            n: 3,
            ..Settings::default()
        };
        let fitted = fit(&shop, 2_000, &settings, Some(fit_content(&texts)));
        let hybrid = Hybrid::new(vec![1.0, 0.5, 0.25, 0.25, 0.0]);
        let before = fitted.recommend_all(&hybrid);
        let bytes = bincode::serialize(&fitted.into_model()).unwrap();
        let model = || bincode::deserialize::<Model>(&bytes).unwrap();

        // Later: user 0 buys the item of their group they lacked (item 0), user 20 (no
        // history) views item 4.
        dealings.push(Dealing {
            user: 0,
            item: 0,
            weight: 1.0,
            last_at: 3_000,
            did: Did::Bought,
        });
        dealings.push(Dealing {
            user: 20,
            item: 4,
            weight: 1.0,
            last_at: 3_000,
            did: Did::Viewed,
        });
        dealings.sort_unstable_by_key(|d| (d.user, d.item));
        let everyone = model()
            .serve(Customers::new(21, &dealings, &groups, 2_000, 120.0))
            .recommend_all(&hybrid);
        // Only users 0 and 20, as dense users 0 and 1.
        let changed: Vec<Dealing> = dealings
            .iter()
            .filter(|d| d.user == 0 || d.user == 20)
            .map(|d| Dealing {
                user: u32::from(d.user == 20),
                ..*d
            })
            .collect();
        let some = model()
            .serve(Customers::new(2, &changed, &groups[..2], 2_000, 120.0))
            .recommend_all(&hybrid);
        assert_eq!(some[0], everyone[0]);
        assert_eq!(some[1], everyone[20]);
        // What user 0 just bought left their list; user 20 now gets item 4's neighbours.
        assert!(before[0].iter().any(|e| e.rec.item == 0), "{:?}", before[0]);
        assert!(some[0].iter().all(|e| e.rec.item != 0), "{:?}", some[0]);
        assert_ne!(some[1], before[20]);
        assert!(
            some[1].iter().any(|e| e.rec.item == 3 || e.rec.item == 5),
            "{:?}",
            some[1]
        );
        // Nobody else changed: the stored model serves them as the fitted one did, apart
        // from ALS users' factors now being folded in.
        for u in 1..20 {
            let a: Vec<u32> = everyone[u].iter().map(|e| e.rec.item).collect();
            let b: Vec<u32> = before[u].iter().map(|e| e.rec.item).collect();
            assert_eq!(a[0], b[0], "user {u}");
        }
    }
}
