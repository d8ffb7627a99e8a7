//! Item-based k-nearest-neighbours with cosine similarity on the item-user
//! matrix (columns = users), keeping the top-K neighbours of every item.

use super::{
    Accumulator, Exclude, Interactions, Neighbours, Recommendation, Source, sorted_history,
    top_k_pairs,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Default number of neighbours kept per item.
pub const DEFAULT_K: usize = 50;

/// Item-kNN options.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct KnnParams {
    /// Neighbours kept per item.
    pub k: usize,
    /// Shrinkage: `sim = dot / (|r_i| |r_j| + shrink)` damps pairs with
    /// little support (0 = plain cosine).
    pub shrink: f32,
    /// Stored similarities are raised to this power (> 1 favours the
    /// strongest neighbours when scoring; 1 = unchanged).
    pub power: f32,
}

impl Default for KnnParams {
    fn default() -> Self {
        KnnParams {
            k: DEFAULT_K,
            shrink: 0.0,
            power: 1.0,
        }
    }
}

/// Fitted item-kNN model.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ItemKnn {
    pub k: usize,
    neighbours: Neighbours,
}

impl ItemKnn {
    /// Computes cosine similarities `sim(i, j) = <r_i, r_j> / (|r_i| |r_j|)`
    /// between item columns and keeps the `k` most similar items (self
    /// excluded) for every item. Cost is `sum_u deg(u)^2`; memory is one dense
    /// score row per worker thread plus `n_items * k` neighbours.
    pub fn fit(m: &Interactions, k: usize) -> Self {
        Self::fit_with(
            m,
            KnnParams {
                k,
                ..KnnParams::default()
            },
        )
    }

    /// As [`ItemKnn::fit`] with shrinkage and a similarity power.
    pub fn fit_with(m: &Interactions, params: KnnParams) -> Self {
        let KnnParams { k, shrink, power } = params;
        let n = m.n_items;
        let norms: Vec<f32> = (0..n)
            .map(|i| m.by_item.row(i).1.iter().map(|w| w * w).sum::<f32>().sqrt())
            .collect();
        let lists: Vec<Vec<(u32, f32)>> = (0..n)
            .into_par_iter()
            .with_min_len((n / (rayon::current_num_threads() * 32)).max(64))
            .map_init(
                || (vec![0f32; n], Vec::<u32>::new()),
                |(dots, touched), i| {
                    let (users, wu) = m.by_item.row(i);
                    if users.is_empty() || k == 0 {
                        return Vec::new();
                    }
                    for (&u, &w) in users.iter().zip(wu) {
                        let (items, wi) = m.by_user.row(u as usize);
                        for (&j, &v) in items.iter().zip(wi) {
                            let d = &mut dots[j as usize];
                            if *d == 0.0 {
                                touched.push(j);
                            }
                            *d += w * v;
                        }
                    }
                    let ni = norms[i];
                    let mut cand = Vec::with_capacity(touched.len());
                    for &j in touched.iter() {
                        let d = dots[j as usize];
                        dots[j as usize] = 0.0;
                        let nj = norms[j as usize];
                        if j as usize != i && d > 0.0 && ni > 0.0 && nj > 0.0 {
                            cand.push((j, d / (ni * nj + shrink)));
                        }
                    }
                    touched.clear();
                    let mut top = top_k_pairs(cand, k);
                    if power != 1.0 {
                        top.iter_mut().for_each(|p| p.1 = p.1.powf(power));
                    }
                    top
                },
            )
            .collect();
        ItemKnn {
            k,
            neighbours: Neighbours::from_lists(lists),
        }
    }

    /// The stored neighbours of `item`, most similar first.
    pub fn neighbours(&self, item: u32) -> (&[u32], &[f32]) {
        self.neighbours.of(item)
    }

    pub fn n_items(&self) -> usize {
        self.neighbours.n_items()
    }

    /// Top `n` items for a history of `(item, weight)`: score(j) = sum over
    /// history items h of `w_h * sim(h, j)`, plus `w_j` for history items
    /// themselves when repeats are allowed (cosine self-similarity is 1).
    /// `because` is the history item contributing most.
    pub fn recommend(
        &self,
        history: &[(u32, f32)],
        n: usize,
        exclude: &Exclude,
    ) -> Vec<Recommendation> {
        let mut acc = Accumulator::new(self.n_items());
        self.recommend_with(&mut acc, history, n, exclude)
    }

    /// As [`ItemKnn::recommend`] with a reusable accumulator (for batches).
    pub fn recommend_with(
        &self,
        acc: &mut Accumulator,
        history: &[(u32, f32)],
        n: usize,
        exclude: &Exclude,
    ) -> Vec<Recommendation> {
        let history = sorted_history(history);
        let self_weight = if exclude.repeat { 1.0 } else { 0.0 };
        self.neighbours.score_into(acc, &history, self_weight);
        acc.drain_top(n, Source::ItemKnn, &history, exclude)
    }

    /// Top `n` for every user of `m`, in parallel.
    pub fn recommend_all(
        &self,
        m: &Interactions,
        n: usize,
        exclude: &Exclude,
    ) -> Vec<Vec<Recommendation>> {
        (0..m.n_users)
            .into_par_iter()
            .with_min_len((m.n_users / (rayon::current_num_threads() * 32)).max(256))
            .map_init(
                || Accumulator::new(self.n_items()),
                |acc, u| self.recommend_with(acc, &m.user_history(u as u32), n, exclude),
            )
            .collect()
    }

    /// Approximate heap bytes of the neighbour lists.
    pub fn heap_bytes(&self) -> usize {
        self.neighbours.heap_bytes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::Interaction;
    use super::*;

    fn approx(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-5
    }

    /// 3 users x 4 items, binary:
    /// u0: i0 i1 i2 ; u1: i0 i1 ; u2: i1 i3
    /// item columns: i0=(1,1,0) i1=(1,1,1) i2=(1,0,0) i3=(0,0,1)
    /// cos(i0,i1)=2/(sqrt2*sqrt3)=0.8165, cos(i0,i2)=1/sqrt2=0.7071,
    /// cos(i1,i2)=1/sqrt3=0.5774, cos(i1,i3)=0.5774, cos(i0,i3)=cos(i2,i3)=0
    fn tiny() -> Interactions {
        let e = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 1), (2, 3)];
        let x: Vec<Interaction> = e
            .iter()
            .map(|&(u, i)| Interaction {
                user: u,
                item: i,
                weight: 1.0,
            })
            .collect();
        Interactions::new(3, 4, &x)
    }

    #[test]
    fn cosine_neighbours_by_hand() {
        let m = ItemKnn::fit(&tiny(), 50);
        let (n0, s0) = m.neighbours(0);
        assert_eq!(n0, &[1, 2]);
        assert!(approx(s0[0], 2.0 / (2f32.sqrt() * 3f32.sqrt())));
        assert!(approx(s0[1], 1.0 / 2f32.sqrt()));
        let (n1, s1) = m.neighbours(1);
        assert_eq!(n1, &[0, 2, 3]); // 0.8165, then tie 0.5774 broken by id
        assert!(approx(s1[1], 1.0 / 3f32.sqrt()) && approx(s1[2], 1.0 / 3f32.sqrt()));
        let (n3, _) = m.neighbours(3);
        assert_eq!(n3, &[1]);
        // k = 1 keeps only the best
        let m1 = ItemKnn::fit(&tiny(), 1);
        assert_eq!(m1.neighbours(1).0, &[0]);
    }

    #[test]
    fn shrinkage_and_power() {
        // cos(i0,i1) = 2/sqrt6; with shrink 1: 2/(sqrt6 + 1); power 2 squares it
        let m = ItemKnn::fit_with(
            &tiny(),
            KnnParams {
                k: 50,
                shrink: 1.0,
                power: 2.0,
            },
        );
        let (n0, s0) = m.neighbours(0);
        assert_eq!(n0, &[1, 2]);
        assert!(approx(s0[0], (2.0 / (6f32.sqrt() + 1.0)).powi(2)));
        assert!(approx(s0[1], (1.0 / (2f32.sqrt() + 1.0)).powi(2)));
    }

    #[test]
    fn an_items_own_weight_counts_but_is_never_its_reason() {
        // History 0 (w 1.0) and 2 (w 0.5), repeats allowed:
        // item 0 = 1.0 (itself) + 0.5 cos(0,2) = 1.0 + 0.3536, because 2 (not itself);
        // item 2 = 0.5 (itself) + 1.0 cos(0,2) = 0.5 + 0.7071, because 0;
        // item 1 = 1.0 cos(0,1) + 0.5 cos(1,2) = 0.8165 + 0.2887, because 0.
        let m = ItemKnn::fit(&tiny(), 50);
        let r = m.recommend(&[(0, 1.0), (2, 0.5)], 10, &Exclude::repeat_allowed());
        let got: Vec<(u32, Option<u32>)> = r.iter().map(|r| (r.item, r.because)).collect();
        assert_eq!(got, [(0, Some(2)), (2, Some(0)), (1, Some(0))]);
        assert!(approx(r[0].score, 1.0 + 0.5 / 2f32.sqrt()));
        assert!(approx(r[1].score, 0.5 + 1.0 / 2f32.sqrt()));
        // Alone in the history, an item has no other reason.
        let r = m.recommend(&[(0, 1.0)], 10, &Exclude::repeat_allowed());
        assert_eq!((r[0].item, r[0].because), (0, None));
    }

    #[test]
    fn excludes_bought_unless_repeat() {
        let m = ItemKnn::fit(&tiny(), 50);
        let hist = [(0u32, 1.0f32)];
        let r = m.recommend(&hist, 10, &Exclude::new_items());
        let items: Vec<u32> = r.iter().map(|r| r.item).collect();
        assert_eq!(items, vec![1, 2]);
        assert!(
            r.iter()
                .all(|r| r.because == Some(0) && r.source == Source::ItemKnn)
        );
        let r = m.recommend(&hist, 10, &Exclude::repeat_allowed());
        let items: Vec<u32> = r.iter().map(|r| r.item).collect();
        assert_eq!(items, vec![0, 1, 2]); // self score 1.0 first
        let extra = [1u32];
        let r = m.recommend(
            &hist,
            10,
            &Exclude {
                repeat: true,
                extra: &extra,
            },
        );
        assert_eq!(r.iter().map(|r| r.item).collect::<Vec<_>>(), vec![0, 2]);
    }

    #[test]
    fn because_is_strongest_contributor() {
        let m = ItemKnn::fit(&tiny(), 50);
        // history i2 and i3: i1 gets 0.5774 from both, i0 gets 0.7071 from i2
        let r = m.recommend(&[(3, 1.0), (2, 1.0)], 10, &Exclude::new_items());
        assert_eq!(r[0].item, 1);
        assert!(approx(r[0].score, 2.0 / 3f32.sqrt()));
        assert_eq!(r[1].item, 0);
        assert_eq!(r[1].because, Some(2));
    }
}
