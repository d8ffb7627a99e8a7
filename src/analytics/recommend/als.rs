//! Implicit-feedback ALS (Hu, Koren & Volinsky, "Collaborative Filtering for
//! Implicit Feedback Datasets", 2008).
//!
//! Minimises `sum_{u,i} c_ui (p_ui - x_u.y_i)^2 + lambda (sum |x_u|^2 + sum |y_i|^2)`
//! with `p_ui = 1` where the user interacted, else 0, and confidence
//! `c_ui = 1 + alpha * r_ui`. Each half-step solves, for every user (item),
//! `(Y'Y + Y'(C_u - I)Y + lambda I) x_u = Y' C_u p_u`, using the shared
//! Gram matrix `Y'Y` so that the cost is linear in the non-zeros.
//!
//! The small k x k systems are solved by hand: a few warm-started conjugate
//! gradient steps per row during fitting (as in the `implicit` library; each
//! step can only decrease the objective), and an exact Cholesky solve for
//! fold-in (and for fitting when `cg_steps == 0`). There is no sparse
//! implicit-ALS crate that fits here (smartcore has none) and the project
//! does not take a linear-algebra dependency for a k x k solve.

use super::{Exclude, Interactions, Recommendation, Source, sorted_history, top_n};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// ALS hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlsParams {
    pub factors: usize,
    pub regularization: f32,
    /// Confidence `c = 1 + alpha * r`.
    pub alpha: f32,
    pub iterations: usize,
    /// Conjugate-gradient steps per row and half-iteration; 0 = exact solve.
    pub cg_steps: usize,
}

impl Default for AlsParams {
    fn default() -> Self {
        AlsParams {
            factors: 64,
            regularization: 0.01,
            alpha: 1.0,
            iterations: 15,
            cg_steps: 3,
        }
    }
}

/// A fitted ALS model: row-major user and item factors.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Als {
    pub params: AlsParams,
    pub n_users: usize,
    pub n_items: usize,
    pub user_factors: Vec<f32>,
    pub item_factors: Vec<f32>,
    /// Items with at least one training interaction (others have zero factors
    /// and are never recommended by ALS: that is the content source's job).
    active_items: Vec<u32>,
    /// `Y'Y + lambda I` of the final item factors, cached for fold-in.
    gram: Vec<f32>,
}

/// Dot product with 8 independent accumulators so the compiler vectorises it.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

#[inline]
fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// `F'F + lambda I` for row-major factors `F` (n x k), summed in fixed chunks
/// in order so the result does not depend on thread scheduling.
fn gram(f: &[f32], k: usize, lambda: f32) -> Vec<f32> {
    const CHUNK: usize = 2048;
    let partials: Vec<Vec<f32>> = f
        .par_chunks(CHUNK * k)
        .map(|chunk| {
            let mut g = vec![0f32; k * k];
            for row in chunk.chunks_exact(k) {
                for a in 0..k {
                    let ra = row[a];
                    if ra != 0.0 {
                        axpy(ra, row, &mut g[a * k..(a + 1) * k]);
                    }
                }
            }
            g
        })
        .collect();
    let mut g = vec![0f32; k * k];
    for p in partials {
        for (x, y) in g.iter_mut().zip(&p) {
            *x += y;
        }
    }
    for a in 0..k {
        g[a * k + a] += lambda;
    }
    g
}

/// Solves `A x = b` for symmetric positive definite `A` (k x k, row-major) by
/// Cholesky in f64. Returns `None` when `A` is not positive definite.
pub(crate) fn cholesky_solve(a: &[f64], b: &[f64], k: usize) -> Option<Vec<f64>> {
    let mut l = vec![0f64; k * k];
    for i in 0..k {
        for j in 0..=i {
            let mut s = a[i * k + j];
            for p in 0..j {
                s -= l[i * k + p] * l[j * k + p];
            }
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * k + i] = s.sqrt();
            } else {
                l[i * k + j] = s / l[j * k + j];
            }
        }
    }
    let mut y = vec![0f64; k];
    for i in 0..k {
        let mut s = b[i];
        for p in 0..i {
            s -= l[i * k + p] * y[p];
        }
        y[i] = s / l[i * k + i];
    }
    let mut x = vec![0f64; k];
    for i in (0..k).rev() {
        let mut s = y[i];
        for p in i + 1..k {
            s -= l[p * k + i] * x[p];
        }
        x[i] = s / l[i * k + i];
    }
    Some(x)
}

/// Exact least squares for one row against fixed factors `y`.
fn solve_exact(g: &[f32], y: &[f32], k: usize, alpha: f32, row: (&[u32], &[f32]), x: &mut [f32]) {
    let mut a: Vec<f64> = g.iter().map(|&v| f64::from(v)).collect();
    let mut b = vec![0f64; k];
    for (&j, &r) in row.0.iter().zip(row.1) {
        let Some(yj) = y.get(j as usize * k..(j as usize + 1) * k) else {
            continue;
        };
        let c = 1.0 + f64::from(alpha) * f64::from(r);
        for p in 0..k {
            let yp = f64::from(yj[p]);
            b[p] += c * yp;
            let s = (c - 1.0) * yp;
            for q in 0..k {
                a[p * k + q] += s * f64::from(yj[q]);
            }
        }
    }
    if let Some(sol) = cholesky_solve(&a, &b, k) {
        for (xi, s) in x.iter_mut().zip(sol) {
            *xi = s as f32;
        }
    } else {
        solve_cg(g, y, k, alpha, row, x, 2 * k);
    }
}

/// `steps` conjugate-gradient iterations from the current `x`.
fn solve_cg(
    g: &[f32],
    y: &[f32],
    k: usize,
    alpha: f32,
    row: (&[u32], &[f32]),
    x: &mut [f32],
    steps: usize,
) {
    // A v = G v + sum_j (c_j - 1) (y_j . v) y_j ; b = sum_j c_j y_j
    let apply = |v: &[f32], out: &mut [f32]| {
        for a in 0..k {
            out[a] = dot(&g[a * k..(a + 1) * k], v);
        }
        for (&j, &r) in row.0.iter().zip(row.1) {
            if let Some(yj) = y.get(j as usize * k..(j as usize + 1) * k) {
                let c1 = alpha * r;
                axpy(c1 * dot(yj, v), yj, out);
            }
        }
    };
    let mut r = vec![0f32; k];
    for (&j, &w) in row.0.iter().zip(row.1) {
        if let Some(yj) = y.get(j as usize * k..(j as usize + 1) * k) {
            axpy(1.0 + alpha * w, yj, &mut r);
        }
    }
    let mut ax = vec![0f32; k];
    apply(x, &mut ax);
    for (ri, ai) in r.iter_mut().zip(&ax) {
        *ri -= ai;
    }
    let mut p = r.clone();
    let mut rs = dot(&r, &r);
    let mut ap = vec![0f32; k];
    for _ in 0..steps {
        if rs < 1e-20 {
            break;
        }
        apply(&p, &mut ap);
        let pap = dot(&p, &ap);
        if pap <= 0.0 || !pap.is_finite() {
            break;
        }
        let a = rs / pap;
        axpy(a, &p, x);
        axpy(-a, &ap, &mut r);
        let rs_new = dot(&r, &r);
        let beta = rs_new / rs;
        for (pi, ri) in p.iter_mut().zip(&r) {
            *pi = ri + beta * *pi;
        }
        rs = rs_new;
    }
}

/// One half-iteration: re-solve every row of `target` against fixed `other`.
fn half_step(rows: &super::Csr, other: &[f32], target: &mut [f32], p: &AlsParams) {
    let k = p.factors;
    let g = gram(other, k, p.regularization);
    target
        .par_chunks_mut(k)
        .with_min_len(64)
        .enumerate()
        .for_each(|(u, x)| {
            let row = rows.row(u);
            if row.0.is_empty() {
                x.iter_mut().for_each(|v| *v = 0.0);
            } else if p.cg_steps == 0 {
                solve_exact(&g, other, k, p.alpha, row, x);
            } else {
                solve_cg(&g, other, k, p.alpha, row, x, p.cg_steps);
            }
        });
}

impl Als {
    /// Fits user and item factors; deterministic for a given `seed`
    /// (rows are solved independently, in parallel over users then items).
    pub fn fit(m: &Interactions, params: AlsParams, seed: u64) -> Als {
        Self::fit_with(m, params, seed, |_, _| {})
    }

    /// As [`Als::fit`], calling `on_iteration(iteration, &model)` after each
    /// iteration (e.g. to record the loss).
    pub fn fit_with(
        m: &Interactions,
        params: AlsParams,
        seed: u64,
        mut on_iteration: impl FnMut(usize, &Als),
    ) -> Als {
        let k = params.factors.max(1);
        let params = AlsParams {
            factors: k,
            ..params
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let scale = 0.1 / (k as f32).sqrt();
        let mut init =
            |n: usize| -> Vec<f32> { (0..n * k).map(|_| rng.random::<f32>() * scale).collect() };
        let user_factors = init(m.n_users);
        let item_factors = init(m.n_items);
        let active_items = (0..m.n_items)
            .filter(|&i| !m.by_item.row(i).0.is_empty())
            .map(|i| i as u32)
            .collect();
        let mut model = Als {
            params,
            n_users: m.n_users,
            n_items: m.n_items,
            user_factors,
            item_factors,
            active_items,
            gram: Vec::new(),
        };
        for it in 0..params.iterations {
            half_step(
                &m.by_user,
                &model.item_factors,
                &mut model.user_factors,
                &params,
            );
            half_step(
                &m.by_item,
                &model.user_factors,
                &mut model.item_factors,
                &params,
            );
            model.gram.clear();
            on_iteration(it, &model);
        }
        model.gram = gram(&model.item_factors, k, params.regularization);
        model
    }

    /// The full objective on `m` (confidence-weighted squared error over all
    /// user-item pairs plus L2 penalty), computed in O(nnz k + (U+I) k^2).
    pub fn loss(&self, m: &Interactions) -> f64 {
        let k = self.params.factors;
        let yty = gram(&self.item_factors, k, 0.0);
        let alpha = f64::from(self.params.alpha);
        let per_user: Vec<f64> = (0..self.n_users)
            .into_par_iter()
            .with_min_len(256)
            .map(|u| {
                let x = &self.user_factors[u * k..(u + 1) * k];
                // sum over all items of (x.y)^2 = x' Y'Y x
                let mut all = 0f64;
                for a in 0..k {
                    all += f64::from(x[a]) * f64::from(dot(&yty[a * k..(a + 1) * k], x));
                }
                let (items, w) = m.by_user.row(u);
                for (&j, &r) in items.iter().zip(w) {
                    let s = f64::from(dot(
                        x,
                        &self.item_factors[j as usize * k..(j as usize + 1) * k],
                    ));
                    let c = 1.0 + alpha * f64::from(r);
                    all += c * (1.0 - s) * (1.0 - s) - s * s;
                }
                all + f64::from(self.params.regularization) * f64::from(dot(x, x))
            })
            .collect();
        let items: f64 = self
            .item_factors
            .chunks_exact(k)
            .map(|y| f64::from(dot(y, y)))
            .sum::<f64>()
            * f64::from(self.params.regularization);
        per_user.iter().sum::<f64>() + items
    }

    /// The model without its users' factors: what is stored for serving, where every
    /// customer is folded in from their current history ([`Als::fold_in`]).
    pub fn without_users(mut self) -> Als {
        self.user_factors = Vec::new();
        self.n_users = 0;
        self
    }

    pub fn user_factor(&self, user: u32) -> Option<&[f32]> {
        let k = self.params.factors;
        self.user_factors
            .get(user as usize * k..(user as usize + 1) * k)
    }

    pub fn item_factor(&self, item: u32) -> Option<&[f32]> {
        let k = self.params.factors;
        self.item_factors
            .get(item as usize * k..(item as usize + 1) * k)
    }

    /// Factors for a new (or updated) user history of `(item, weight)`:
    /// the exact least-squares solution against the fixed item factors.
    pub fn fold_in(&self, history: &[(u32, f32)]) -> Vec<f32> {
        let k = self.params.factors;
        let (items, w): (Vec<u32>, Vec<f32>) = sorted_history(history).iter().copied().unzip();
        let mut x = vec![0f32; k];
        if !items.is_empty() {
            solve_exact(
                &self.gram,
                &self.item_factors,
                k,
                self.params.alpha,
                (&items, &w),
                &mut x,
            );
        }
        x
    }

    /// Top `n` items for user factors `x` with `history` (sorted or not) used
    /// for exclusion and for `because` (the history item whose factors are
    /// most aligned with the recommended item's).
    pub fn recommend_factors(
        &self,
        x: &[f32],
        history: &[(u32, f32)],
        n: usize,
        exclude: &Exclude,
    ) -> Vec<Recommendation> {
        let history = sorted_history(history);
        let k = self.params.factors;
        // bounded insertion list: only items beating the current n-th score
        // are checked for exclusion and kept (no per-item allocation)
        let mut best: Vec<(f32, u32)> = Vec::with_capacity(n + 1);
        if n == 0 {
            return Vec::new();
        }
        for &j in &self.active_items {
            let y = &self.item_factors[j as usize * k..(j as usize + 1) * k];
            let s = dot(x, y);
            if !s.is_finite() || (best.len() == n && best.last().is_some_and(|w| s <= w.0)) {
                continue;
            }
            if exclude.excludes(j, &history) {
                continue;
            }
            // descending by score; ties keep the lower item id first (items ascend)
            let pos = best.partition_point(|b| b.0 >= s);
            best.insert(pos, (s, j));
            best.truncate(n);
        }
        let recs: Vec<Recommendation> = best
            .into_iter()
            .map(|(score, item)| Recommendation {
                item,
                score,
                source: Source::Als,
                because: None,
            })
            .collect();
        let mut top = top_n(recs, n);
        for r in &mut top {
            r.because = self.explain(r.item, &history);
        }
        top
    }

    /// The history item, other than `item` itself, whose factors are most aligned with
    /// `item`'s.
    fn explain(&self, item: u32, history: &[(u32, f32)]) -> Option<u32> {
        let y = self.item_factor(item)?;
        let mut best: Option<(u32, f32)> = None;
        for &(h, _) in history.iter().filter(|&&(h, _)| h != item) {
            if let Some(yh) = self.item_factor(h) {
                let s = dot(y, yh);
                if best.is_none_or(|(_, b)| s > b) {
                    best = Some((h, s));
                }
            }
        }
        best.map(|b| b.0)
    }

    /// Scores only `candidates` (e.g. the union of item-kNN and popularity
    /// lists) for user factors `x`: `O(|candidates| k)` instead of a full
    /// catalogue scan, for when brute force over every user is too slow.
    pub fn rerank(
        &self,
        x: &[f32],
        history: &[(u32, f32)],
        candidates: &[u32],
        n: usize,
        exclude: &Exclude,
    ) -> Vec<Recommendation> {
        let history = sorted_history(history);
        let mut cands = candidates.to_vec();
        cands.sort_unstable();
        cands.dedup();
        let recs = cands
            .iter()
            .filter(|&&j| !exclude.excludes(j, &history))
            .filter_map(|&j| {
                self.item_factor(j).map(|y| Recommendation {
                    item: j,
                    score: dot(x, y),
                    source: Source::Als,
                    because: None,
                })
            })
            .collect();
        let mut top = top_n(recs, n);
        for r in &mut top {
            r.because = self.explain(r.item, &history);
        }
        top
    }

    /// Top `n` for a fitted user.
    pub fn recommend(
        &self,
        user: u32,
        history: &[(u32, f32)],
        n: usize,
        exclude: &Exclude,
    ) -> Vec<Recommendation> {
        match self.user_factor(user) {
            Some(x) => self.recommend_factors(x, history, n, exclude),
            None => self.recommend_factors(&self.fold_in(history), history, n, exclude),
        }
    }

    /// Top `n` for every listed user of `m`, in parallel: brute force over
    /// the active items (`users * active_items * k` multiply-adds). Item
    /// factors are transposed into blocks (`k x BLOCK`, fits in L2) and each
    /// user's block scores are accumulated with `k` contiguous axpys, which
    /// vectorise without horizontal sums; tiles of users share each block.
    pub fn recommend_users(
        &self,
        m: &Interactions,
        users: &[u32],
        n: usize,
        exclude: &Exclude,
    ) -> Vec<Vec<Recommendation>> {
        const TILE: usize = 64;
        const BLOCK: usize = 1024;
        let k = self.params.factors;
        let blocks: Vec<(&[u32], Vec<f32>)> = self
            .active_items
            .chunks(BLOCK)
            .map(|items| {
                let b = items.len();
                let mut t = vec![0f32; k * b];
                for (c, &j) in items.iter().enumerate() {
                    let y = &self.item_factors[j as usize * k..(j as usize + 1) * k];
                    for a in 0..k {
                        t[a * b + c] = y[a];
                    }
                }
                (items, t)
            })
            .collect();
        users
            .par_chunks(TILE)
            .flat_map_iter(|tile| {
                let hist: Vec<Vec<(u32, f32)>> = tile.iter().map(|&u| m.user_history(u)).collect();
                let xs: Vec<std::borrow::Cow<'_, [f32]>> = tile
                    .iter()
                    .zip(&hist)
                    .map(|(&u, h)| match self.user_factor(u) {
                        Some(x) => std::borrow::Cow::Borrowed(x),
                        None => std::borrow::Cow::Owned(self.fold_in(h)),
                    })
                    .collect();
                let mut best: Vec<Vec<(f32, u32)>> = vec![Vec::with_capacity(n + 1); tile.len()];
                let mut scores = vec![0f32; BLOCK];
                if n > 0 {
                    for (items, t) in &blocks {
                        let b = items.len();
                        for ((x, best), h) in xs.iter().zip(best.iter_mut()).zip(&hist) {
                            let s = &mut scores[..b];
                            s.iter_mut().for_each(|v| *v = 0.0);
                            for (a, &xa) in x.iter().enumerate() {
                                axpy(xa, &t[a * b..(a + 1) * b], s);
                            }
                            for (&sc, &j) in s.iter().zip(items.iter()) {
                                if !sc.is_finite()
                                    || (best.len() == n && best.last().is_some_and(|w| sc <= w.0))
                                {
                                    continue;
                                }
                                if exclude.excludes(j, h) {
                                    continue;
                                }
                                let pos = best.partition_point(|e| e.0 >= sc);
                                best.insert(pos, (sc, j));
                                best.truncate(n);
                            }
                        }
                    }
                }
                best.into_iter()
                    .zip(hist)
                    .map(|(b, h)| {
                        b.into_iter()
                            .map(|(score, item)| Recommendation {
                                item,
                                score,
                                source: Source::Als,
                                because: self.explain(item, &h),
                            })
                            .collect::<Vec<_>>()
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::Interaction;
    use super::*;

    fn tiny() -> Interactions {
        let e = [
            (0, 0, 3.0),
            (0, 1, 1.0),
            (1, 1, 2.0),
            (1, 2, 1.0),
            (2, 0, 1.0),
            (2, 3, 4.0),
            (3, 2, 1.0),
            (3, 3, 1.0),
            (4, 0, 2.0),
            (4, 1, 1.0),
            (4, 4, 1.0),
        ];
        let x: Vec<Interaction> = e
            .iter()
            .map(|&(u, i, w)| Interaction {
                user: u,
                item: i,
                weight: w,
            })
            .collect();
        Interactions::new(5, 6, &x)
    }

    #[test]
    fn cholesky_solves_by_hand() {
        // [[4,2],[2,3]] x = [2,5] -> x = [-0.5, 2]
        let x = cholesky_solve(&[4.0, 2.0, 2.0, 3.0], &[2.0, 5.0], 2).unwrap();
        assert!((x[0] + 0.5).abs() < 1e-12 && (x[1] - 2.0).abs() < 1e-12);
        assert!(cholesky_solve(&[1.0, 2.0, 2.0, 1.0], &[1.0, 1.0], 2).is_none());
    }

    #[test]
    fn loss_decreases_every_iteration() {
        let m = tiny();
        for cg_steps in [0, 3] {
            let p = AlsParams {
                factors: 3,
                regularization: 0.1,
                alpha: 2.0,
                iterations: 12,
                cg_steps,
            };
            let mut losses = Vec::new();
            Als::fit_with(&m, p, 7, |_, model| losses.push(model.loss(&m)));
            assert_eq!(losses.len(), 12);
            for w in losses.windows(2) {
                assert!(w[1] <= w[0] * (1.0 + 1e-6), "{losses:?}");
            }
            assert!(losses[11] < losses[0]);
        }
    }

    #[test]
    fn fold_in_matches_fitted_user() {
        let m = tiny();
        let p = AlsParams {
            factors: 3,
            regularization: 0.1,
            alpha: 2.0,
            iterations: 200,
            cg_steps: 0,
        };
        let model = Als::fit(&m, p, 3);
        for u in 0..5u32 {
            let x = model.fold_in(&m.user_history(u));
            let fitted = model.user_factor(u).unwrap();
            for (a, b) in x.iter().zip(fitted) {
                assert!((a - b).abs() < 2e-3, "user {u}: {x:?} vs {fitted:?}");
            }
        }
        // an empty history folds in to zero
        assert!(model.fold_in(&[]).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn deterministic_for_seed_and_excludes() {
        let m = tiny();
        let p = AlsParams {
            factors: 4,
            iterations: 5,
            ..AlsParams::default()
        };
        let a = Als::fit(&m, p, 42);
        let b = Als::fit(&m, p, 42);
        assert_eq!(a.user_factors, b.user_factors);
        assert_eq!(a.item_factors, b.item_factors);
        let h = m.user_history(0);
        let r = a.recommend(0, &h, 10, &Exclude::new_items());
        assert!(r.iter().all(|r| r.item != 0 && r.item != 1 && r.item != 5));
        assert_eq!(r.len(), 3); // 5 active items minus 2 bought
        let r = a.recommend(0, &h, 10, &Exclude::repeat_allowed());
        assert_eq!(r.len(), 5);
        assert!(
            r.iter()
                .all(|r| r.source == Source::Als && r.because.is_some())
        );
        // A history item recommended again is explained by another one, never by itself.
        for r in &r {
            let b = r.because.unwrap();
            assert_ne!(b, r.item, "{r:?}");
            assert!(h.iter().any(|&(i, _)| i == b), "{r:?}");
        }
        assert_eq!(a.explain(0, &[(0, 1.0)]), None);
        let x = a.user_factor(0).unwrap().to_vec();
        let rr = a.rerank(&x, &h, &[4, 1, 3], 10, &Exclude::new_items());
        assert_eq!(rr.len(), 2); // item 1 was bought
        let full = a.recommend_factors(&x, &h, 10, &Exclude::new_items());
        let pos = |i: u32| full.iter().position(|r| r.item == i);
        assert!(pos(rr[0].item) < pos(rr[1].item));
        let users: Vec<u32> = (0..5).collect();
        let batch = a.recommend_users(&m, &users, 3, &Exclude::new_items());
        for &u in &users {
            let single = a.recommend(u, &m.user_history(u), 3, &Exclude::new_items());
            let b = &batch[u as usize];
            assert_eq!(
                b.iter().map(|r| (r.item, r.because)).collect::<Vec<_>>(),
                single
                    .iter()
                    .map(|r| (r.item, r.because))
                    .collect::<Vec<_>>()
            );
            assert!(
                b.iter()
                    .zip(&single)
                    .all(|(x, y)| (x.score - y.score).abs() < 1e-5)
            );
        }
    }
}
