//! Customer segmentation from RFM-style features: fitting a segmentation on a sample and
//! assigning every customer to a segment with a human label, 2-D plot coordinates and
//! classic RFM scores.
//!
//! The pipeline, fitted once on a seeded sample of at most `SegmentParams::sample` rows:
//! 1. signed `log1p` on recency, frequency and monetary: they are heavy-tailed, and without
//!    the log k-means spends clusters on a handful of whales (on the UCI Online Retail RFM
//!    the raw silhouette looks better, 0.61, but two clusters hold 13 customers);
//! 2. robust scaling, `(x - median) / IQR` (an IQR of 0 becomes 1), so outliers cannot set
//!    the scale, then clipping to ±3 so the few that remain cannot claim a segment;
//! 3. PCA to two components (smartcore) — plot coordinates only, clustering uses all four;
//! 4. k-means (smartcore, best of a few seeded starts). When `k` is not given it is chosen
//!    by silhouette over `k_min..=k_max` on a subsample of the sample, skipping any k that
//!    leaves a segment under 2% of it; the chosen k is then refitted on the whole sample;
//! 5. per-segment profiles and labels ("champions", "at risk", …) from the members' mean
//!    RFM scores, which are population quintiles and so already "compared to everyone".
//!
//! The model keeps only what assignment needs (scaling, PCA axes, centroids, quintile cut
//! points, labels), so it is small whatever the population size, and [`SegmentModel::assign`]
//! is a parallel nearest-centroid pass that never calls smartcore.

use rand::seq::index;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use smartcore::cluster::kmeans::{KMeans, KMeansParameters};
use smartcore::decomposition::pca::{PCA, PCAParameters};
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;

/// Feature order used in every `[f64; 4]` below.
pub const FEATURES: [&str; 4] = ["recency_days", "frequency", "monetary", "tenure_days"];
const DIMS: usize = 4;
/// Which features get the signed log: the heavy-tailed ones. Tenure is roughly uniform.
const LOG1P: [bool; DIMS] = [true, true, true, false];
/// When choosing k, a candidate whose smallest segment is below this share of the sample
/// is rejected as degenerate.
pub const MIN_SEGMENT_SHARE: f64 = 0.02;
/// Silhouette is O(n²): computed on at most this many sample points.
const SILHOUETTE_POINTS: usize = 3_000;
/// Candidate ks are compared on at most this many sample points (smartcore's k-means has a
/// fixed cost of ~10 ms per 5,000 points per start); only the chosen k is refitted on the
/// whole sample.
const SEARCH_POINTS: usize = 2_000;
/// Mixed into the seed so the subsamples differ from the main sample and each other.
const SEARCH_SALT: u64 = 0x005e_a7c4;
const SILHOUETTE_SALT: u64 = 0x5111_0e77;
/// Scaled values are clipped to this many IQRs from the median (about Tukey's "far out"
/// fence). Even after the log, a few extreme customers (wholesalers, data errors) sit so
/// far out that every k gives them a segment of their own; clipped, they join the edge of
/// the nearest real segment instead.
const SCALED_CLIP: f64 = 3.0;
/// k-means restarts per k; the lowest within-cluster sum of squares wins.
const KMEANS_STARTS: usize = 4;

/// Why a segmentation could not be fitted.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("no rows to segment")]
    Empty,
    #[error("non-finite {field} at row {row}")]
    NonFinite { row: usize, field: &'static str },
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    #[error("{rows} rows cannot make {needed} segments")]
    TooFewRows { rows: usize, needed: usize },
    #[error("smartcore failed: {0}")]
    Fit(String),
    #[error("degenerate data: {0}")]
    Degenerate(String),
}

/// One customer's behaviour as of the cut-off.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SegmentInput {
    /// Days since the last purchase (fewer is better).
    pub recency_days: f64,
    /// Number of purchases (orders).
    pub frequency: f64,
    /// Total spend.
    pub monetary: f64,
    /// Days since the first purchase.
    pub tenure_days: f64,
}

impl SegmentInput {
    fn values(&self) -> [f64; DIMS] {
        [
            self.recency_days,
            self.frequency,
            self.monetary,
            self.tenure_days,
        ]
    }

    fn from_values(v: [f64; DIMS]) -> Self {
        Self {
            recency_days: v[0],
            frequency: v[1],
            monetary: v[2],
            tenure_days: v[3],
        }
    }
}

/// How to fit a segmentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentParams {
    /// Number of segments; `None` chooses by silhouette over `k_min..=k_max`.
    pub k: Option<usize>,
    pub k_min: usize,
    pub k_max: usize,
    /// Fit (scaling, PCA, k-means) on at most this many rows, drawn with `seed`.
    pub sample: usize,
    pub seed: u64,
    /// k-means iterations per start.
    pub max_iter: usize,
}

impl Default for SegmentParams {
    fn default() -> Self {
        Self {
            k: None,
            k_min: 3,
            k_max: 8,
            sample: 20_000,
            seed: 0,
            max_iter: 100,
        }
    }
}

/// One customer's segment, plot position and RFM scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segmented {
    pub segment: usize,
    pub label: String,
    pub pc1: f64,
    pub pc2: f64,
    /// 1–5; 5 = most recent.
    pub r_score: u8,
    /// 1–5; 5 = most orders.
    pub f_score: u8,
    /// 1–5; 5 = highest spend.
    pub m_score: u8,
}

/// A segment as seen in the fitting sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentSummary {
    pub segment: usize,
    pub label: String,
    /// Members in the fitting sample.
    pub size: usize,
    /// `size` over the sample size.
    pub share: f64,
    /// The k-means centroid mapped back to original units (medians and IQRs undone, logs
    /// exponentiated): a "typical" member, closer to a median than a mean.
    pub centroid: SegmentInput,
    /// Members' arithmetic means in original units.
    pub mean: SegmentInput,
    /// Members' mean RFM scores (1–5); the population average of each is about 3.
    pub r_score: f64,
    pub f_score: f64,
    pub m_score: f64,
    /// Members' mean tenure quintile score (1–5; 5 = longest-standing).
    pub t_score: f64,
}

/// How one candidate k fared when choosing k.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KCandidate {
    pub k: usize,
    /// Mean silhouette on the silhouette subsample (NaN if undefined).
    pub silhouette: f64,
    /// Smallest segment's share of the sample.
    pub min_share: f64,
    /// Within-cluster sum of squares on the sample, in scaled units.
    pub inertia: f64,
}

impl KCandidate {
    fn acceptable(&self) -> bool {
        self.min_share >= MIN_SEGMENT_SHARE && self.silhouette.is_finite()
    }
}

/// Quintile cut points (20th, 40th, 60th, 80th percentiles) per feature, over all rows
/// passed to `fit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RfmCuts {
    pub recency_days: [f64; 4],
    pub frequency: [f64; 4],
    pub monetary: [f64; 4],
    pub tenure_days: [f64; 4],
}

impl RfmCuts {
    fn fit(rows: &[SegmentInput]) -> Self {
        let cuts = |f: fn(&SegmentInput) -> f64| {
            let mut v: Vec<f64> = rows.par_iter().map(f).collect();
            v.par_sort_unstable_by(f64::total_cmp);
            [0.2, 0.4, 0.6, 0.8].map(|q| quantile_sorted(&v, q))
        };
        Self {
            recency_days: cuts(|r| r.recency_days),
            frequency: cuts(|r| r.frequency),
            monetary: cuts(|r| r.monetary),
            tenure_days: cuts(|r| r.tenure_days),
        }
    }

    /// (R, F, M, T) scores. Tenure is only used for labelling.
    fn scores(&self, row: &SegmentInput) -> [u8; 4] {
        [
            6 - quintile_score(row.recency_days, &self.recency_days),
            quintile_score(row.frequency, &self.frequency),
            quintile_score(row.monetary, &self.monetary),
            quintile_score(row.tenure_days, &self.tenure_days),
        ]
    }
}

/// 1 + the number of cut points strictly below `v`: values tied with a cut point take the
/// lower quintile, so when most customers share a value (one order) they all score 1
/// rather than being spread over scores by an arbitrary tie-break. Non-finite → 3.
fn quintile_score(v: f64, cuts: &[f64; 4]) -> u8 {
    if !v.is_finite() {
        return 3;
    }
    1 + cuts.iter().filter(|&&c| v > c).count() as u8
}

/// Linear-interpolation quantile (numpy's default) of ascending `sorted`; NaN if empty.
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// `sign(x)·ln(1 + |x|)`: `log1p` that also accepts negative values (refund-heavy spend).
fn signed_log1p(x: f64) -> f64 {
    x.signum() * x.abs().ln_1p()
}

fn signed_expm1(x: f64) -> f64 {
    x.signum() * x.abs().exp_m1()
}

/// Robust scaling of the (logged) features: `(x - center) / scale`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    /// Which features are passed through `signed_log1p` first.
    pub log1p: [bool; DIMS],
    /// Median of each (logged) feature.
    pub center: [f64; DIMS],
    /// Interquartile range of each (logged) feature; 1 where that is 0.
    pub scale: [f64; DIMS],
}

impl Scaler {
    fn fit(raw: &[[f64; DIMS]], log1p: [bool; DIMS]) -> Self {
        let mut center = [0.0; DIMS];
        let mut scale = [1.0; DIMS];
        for d in 0..DIMS {
            let mut col: Vec<f64> = raw.iter().map(|r| transform1(r[d], log1p[d])).collect();
            col.sort_unstable_by(f64::total_cmp);
            center[d] = quantile_sorted(&col, 0.5);
            let iqr = quantile_sorted(&col, 0.75) - quantile_sorted(&col, 0.25);
            scale[d] = if iqr > 1e-12 { iqr } else { 1.0 };
        }
        Self {
            log1p,
            center,
            scale,
        }
    }

    /// Scaled features, clipped to `±SCALED_CLIP`; a non-finite input maps to 0, i.e. the
    /// median.
    fn apply(&self, raw: [f64; DIMS]) -> [f64; DIMS] {
        std::array::from_fn(|d| {
            let v = (transform1(raw[d], self.log1p[d]) - self.center[d]) / self.scale[d];
            if v.is_finite() {
                v.clamp(-SCALED_CLIP, SCALED_CLIP)
            } else {
                0.0
            }
        })
    }

    /// Back to original units (used for centroids).
    fn invert(&self, scaled: [f64; DIMS]) -> [f64; DIMS] {
        std::array::from_fn(|d| {
            let v = scaled[d] * self.scale[d] + self.center[d];
            if self.log1p[d] { signed_expm1(v) } else { v }
        })
    }
}

fn transform1(v: f64, log: bool) -> f64 {
    if log { signed_log1p(v) } else { v }
}

/// The two principal axes of the scaled sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pca {
    pub mean: [f64; DIMS],
    /// Unit vectors; each is signed so its largest loading is positive (SVD signs are
    /// arbitrary, and a plot should not flip between refits).
    pub components: [[f64; DIMS]; 2],
    /// Share of the total variance along each axis.
    pub explained_variance: [f64; 2],
}

impl Pca {
    fn fit(points: &[[f64; DIMS]]) -> Result<Self, SegmentError> {
        let n = points.len() as f64;
        let mean: [f64; DIMS] =
            std::array::from_fn(|d| points.iter().map(|p| p[d]).sum::<f64>() / n);
        let total_var: f64 = (0..DIMS)
            .map(|d| points.iter().map(|p| (p[d] - mean[d]).powi(2)).sum::<f64>() / n)
            .sum();
        if points.len() < 2 || total_var <= 0.0 {
            // Nothing varies: any axes will do, and they explain nothing.
            return Ok(Self {
                mean,
                components: [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]],
                explained_variance: [0.0, 0.0],
            });
        }
        let x = matrix(points)?;
        let pca = PCA::fit(&x, PCAParameters::default().with_n_components(2))
            .map_err(|e| SegmentError::Fit(e.to_string()))?;
        let loadings = pca.components();
        let mut components: [[f64; DIMS]; 2] =
            std::array::from_fn(|c| std::array::from_fn(|d| *loadings.get((d, c))));
        for c in components.iter_mut() {
            orient(c);
        }
        let var_along = |axis: &[f64; DIMS]| {
            points
                .iter()
                .map(|p| {
                    (0..DIMS)
                        .map(|d| (p[d] - mean[d]) * axis[d])
                        .sum::<f64>()
                        .powi(2)
                })
                .sum::<f64>()
                / n
        };
        let mut explained = [
            var_along(&components[0]) / total_var,
            var_along(&components[1]) / total_var,
        ];
        if explained[1] > explained[0] {
            components.swap(0, 1);
            explained.swap(0, 1);
        }
        Ok(Self {
            mean,
            components,
            explained_variance: explained,
        })
    }

    fn project(&self, p: &[f64; DIMS]) -> (f64, f64) {
        let along = |axis: &[f64; DIMS]| (0..DIMS).map(|d| (p[d] - self.mean[d]) * axis[d]).sum();
        (along(&self.components[0]), along(&self.components[1]))
    }
}

/// Normalise to unit length and make the largest-magnitude loading positive.
fn orient(axis: &mut [f64; DIMS]) {
    let norm = axis.iter().map(|v| v * v).sum::<f64>().sqrt();
    let largest = axis
        .iter()
        .copied()
        .fold(0.0f64, |m, v| if v.abs() > m.abs() { v } else { m });
    let sign = if largest < 0.0 { -1.0 } else { 1.0 };
    if norm > 0.0 {
        axis.iter_mut().for_each(|v| *v *= sign / norm);
    }
}

fn matrix<const D: usize>(points: &[[f64; D]]) -> Result<DenseMatrix<f64>, SegmentError> {
    let flat: Vec<f64> = points.iter().flatten().copied().collect();
    DenseMatrix::new(points.len(), D, flat, false).map_err(|e| SegmentError::Fit(e.to_string()))
}

/// A k-means result: centroids and each point's (nearest-centroid) cluster.
#[derive(Debug, Clone, PartialEq)]
struct Clustering<const D: usize> {
    centroids: Vec<[f64; D]>,
    labels: Vec<usize>,
    inertia: f64,
}

fn squared_distance<const D: usize>(a: &[f64; D], b: &[f64; D]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn nearest<const D: usize>(p: &[f64; D], centroids: &[[f64; D]]) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (j, c) in centroids.iter().enumerate() {
        let d = squared_distance(p, c);
        if d < best.1 {
            best = (j, d);
        }
    }
    best
}

/// k-means: smartcore from each of `starts` seeds, keeping the lowest inertia.
///
/// smartcore's `KMeans` keeps its centroids private (and every training label in its serde
/// form), so the centroids are rebuilt as the means of its predicted clusters — one more
/// Lloyd step — and points re-assigned to them. A cluster left empty is dropped, so the
/// result can have fewer than `k` clusters on data with too few distinct points.
fn kmeans<const D: usize>(
    points: &[[f64; D]],
    k: usize,
    max_iter: usize,
    seeds: &[u64],
) -> Result<Clustering<D>, SegmentError> {
    let x = matrix(points)?;
    // Starts run in parallel but are compared in seed order, so the winner is fixed.
    let runs: Vec<Clustering<D>> = seeds
        .par_iter()
        .map(|&seed| {
            let mut params = KMeansParameters::default()
                .with_k(k)
                .with_max_iter(max_iter);
            params.seed = Some(seed);
            let fitted = KMeans::<f64, u32, DenseMatrix<f64>, Vec<u32>>::fit(&x, params)
                .map_err(|e| SegmentError::Fit(e.to_string()))?;
            let predicted = fitted
                .predict(&x)
                .map_err(|e| SegmentError::Fit(e.to_string()))?;
            let labels: Vec<usize> = predicted.iter().map(|&l| l as usize).collect();
            Ok(refine(points, &labels, k))
        })
        .collect::<Result<_, SegmentError>>()?;
    runs.into_iter()
        .reduce(|best, run| {
            if run.inertia < best.inertia {
                run
            } else {
                best
            }
        })
        .ok_or_else(|| SegmentError::InvalidParams("no k-means starts".into()))
}

/// Centroids as member means (empty clusters dropped), then nearest-centroid labels.
fn refine<const D: usize>(points: &[[f64; D]], labels: &[usize], k: usize) -> Clustering<D> {
    let mut sums = vec![[0.0; D]; k];
    let mut counts = vec![0usize; k];
    for (p, &l) in points.iter().zip(labels) {
        if l < k {
            counts[l] += 1;
            sums[l].iter_mut().zip(p).for_each(|(s, v)| *s += v);
        }
    }
    let centroids: Vec<[f64; D]> = sums
        .iter()
        .zip(&counts)
        .filter(|(_, c)| **c > 0)
        .map(|(s, &c)| s.map(|v| v / c as f64))
        .collect();
    let mut inertia = 0.0;
    let labels = points
        .iter()
        .map(|p| {
            let (j, d) = nearest(p, &centroids);
            inertia += d;
            j
        })
        .collect();
    Clustering {
        centroids,
        labels,
        inertia,
    }
}

/// Mean silhouette of `points` under `labels` (Euclidean). A point alone in its cluster
/// scores 0 (the usual convention); NaN when fewer than two clusters are present.
///
/// For each point, `a` is its mean distance to the rest of its cluster and `b` the smallest
/// mean distance to another cluster; its silhouette is `(b - a) / max(a, b)`. O(n²):
/// callers pass a subsample.
pub fn silhouette<const D: usize>(points: &[[f64; D]], labels: &[usize]) -> f64 {
    if points.len() != labels.len() || points.is_empty() {
        return f64::NAN;
    }
    let k = labels.iter().copied().max().map_or(0, |m| m + 1);
    let mut sizes = vec![0usize; k];
    labels.iter().for_each(|&l| sizes[l] += 1);
    if sizes.iter().filter(|&&s| s > 0).count() < 2 {
        return f64::NAN;
    }
    let per_point: Vec<f64> = points
        .par_iter()
        .zip(labels)
        .map(|(p, &own)| {
            let mut sums = vec![0.0; k];
            for (q, &l) in points.iter().zip(labels) {
                sums[l] += squared_distance(p, q).sqrt();
            }
            if sizes[own] < 2 {
                return 0.0;
            }
            let a = sums[own] / (sizes[own] - 1) as f64;
            let b = (0..k)
                .filter(|&c| c != own && sizes[c] > 0)
                .map(|c| sums[c] / sizes[c] as f64)
                .fold(f64::INFINITY, f64::min);
            let m = a.max(b);
            if m > 0.0 { (b - a) / m } else { 0.0 }
        })
        .collect();
    per_point.iter().sum::<f64>() / per_point.len() as f64
}

/// A fitted segmentation: everything needed to place new customers, plus how it was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentModel {
    k: usize,
    scaler: Scaler,
    pca: Pca,
    /// Centroids in scaled space, in segment order (most valuable first).
    centroids: Vec<[f64; DIMS]>,
    segments: Vec<SegmentSummary>,
    silhouette: f64,
    candidates: Vec<KCandidate>,
    cuts: RfmCuts,
    rows: usize,
    sample_rows: usize,
    params: SegmentParams,
}

/// Fit a segmentation of `rows`. Quintile cut points use every row; scaling, PCA and the
/// final k-means use a seeded sample of at most `params.sample` rows; choosing k uses a
/// smaller subsample of that (`SEARCH_POINTS`). Rows must be finite.
pub fn fit(rows: &[SegmentInput], params: &SegmentParams) -> Result<SegmentModel, SegmentError> {
    validate(rows, params)?;
    let cuts = RfmCuts::fit(rows);
    let sample = sample_rows(rows, params.sample, params.seed);
    let raw: Vec<[f64; DIMS]> = sample.iter().map(SegmentInput::values).collect();
    let scaler = Scaler::fit(&raw, LOG1P);
    let points: Vec<[f64; DIMS]> = raw.iter().map(|r| scaler.apply(*r)).collect();
    let pca = Pca::fit(&points)?;

    let (k, candidates) = match params.k {
        Some(k) => (k, Vec::new()),
        None => choose_k(&points, params)?,
    };
    if points.len() < k {
        return Err(SegmentError::TooFewRows {
            rows: points.len(),
            needed: k,
        });
    }
    let clustering = kmeans(&points, k, params.max_iter, &start_seeds(params.seed, k))?;
    if clustering.centroids.len() < 2 {
        return Err(SegmentError::Degenerate(
            "fewer than two distinct customer profiles".into(),
        ));
    }
    let final_candidate = evaluate_k(&points, &clustering, k, params.seed);
    let candidates = if candidates.is_empty() {
        vec![final_candidate]
    } else {
        candidates
    };
    Ok(build_model(
        rows.len(),
        &sample,
        &clustering,
        final_candidate.silhouette,
        candidates,
        Fitted { scaler, pca, cuts },
        params,
    ))
}

/// Silhouette (on a seeded subsample of `SILHOUETTE_POINTS`), smallest share and inertia
/// of a clustering of `points`.
fn evaluate_k(points: &[[f64; DIMS]], c: &Clustering<DIMS>, k: usize, seed: u64) -> KCandidate {
    let idx = subsample(points.len(), SILHOUETTE_POINTS, seed ^ SILHOUETTE_SALT);
    let sil_points: Vec<[f64; DIMS]> = idx.iter().map(|&i| points[i]).collect();
    let labels: Vec<usize> = idx.iter().map(|&i| c.labels[i]).collect();
    KCandidate {
        k,
        silhouette: silhouette(&sil_points, &labels),
        min_share: min_share(c, k),
        inertia: c.inertia,
    }
}

/// Try every k in `k_min..=k_max` (in parallel) on a subsample of `SEARCH_POINTS` and pick
/// one with [`choose`]. Returns the k and every candidate's scores.
fn choose_k(
    points: &[[f64; DIMS]],
    params: &SegmentParams,
) -> Result<(usize, Vec<KCandidate>), SegmentError> {
    let idx = subsample(points.len(), SEARCH_POINTS, params.seed ^ SEARCH_SALT);
    let search: Vec<[f64; DIMS]> = idx.iter().map(|&i| points[i]).collect();
    if search.len() < params.k_min {
        return Err(SegmentError::TooFewRows {
            rows: search.len(),
            needed: params.k_min,
        });
    }
    let candidates: Vec<KCandidate> = (params.k_min..=params.k_max.min(search.len()))
        .into_par_iter()
        .map(|k| {
            let c = kmeans(&search, k, params.max_iter, &start_seeds(params.seed, k))?;
            Ok(evaluate_k(&search, &c, k, params.seed))
        })
        .collect::<Result<_, SegmentError>>()?;
    let chosen = choose(&candidates)
        .ok_or_else(|| SegmentError::Degenerate("no candidate k could be fitted".into()))?;
    Ok((candidates[chosen].k, candidates))
}

fn validate(rows: &[SegmentInput], params: &SegmentParams) -> Result<(), SegmentError> {
    if rows.is_empty() {
        return Err(SegmentError::Empty);
    }
    let bad = |msg: String| Err(SegmentError::InvalidParams(msg));
    match params.k {
        Some(k) if k < 2 => return bad(format!("k = {k}; need at least 2")),
        None if params.k_min < 2 || params.k_min > params.k_max => {
            return bad(format!(
                "k range {}..={} must be non-empty and start at 2 or more",
                params.k_min, params.k_max
            ));
        }
        _ => {}
    }
    if params.sample < 2 || params.max_iter == 0 {
        return bad("sample must be at least 2 and max_iter at least 1".into());
    }
    let non_finite = rows
        .par_iter()
        .enumerate()
        .find_first(|(_, r)| !r.values().iter().all(|v| v.is_finite()));
    if let Some((row, r)) = non_finite {
        let d = r.values().iter().position(|v| !v.is_finite()).unwrap_or(0);
        return Err(SegmentError::NonFinite {
            row,
            field: FEATURES[d],
        });
    }
    Ok(())
}

/// Seeded indices of at most `max` of `n` rows, ascending (all rows if `n <= max`).
fn subsample(n: usize, max: usize, seed: u64) -> Vec<usize> {
    if n <= max {
        return (0..n).collect();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut picked = index::sample(&mut rng, n, max).into_vec();
    picked.sort_unstable();
    picked
}

fn sample_rows(rows: &[SegmentInput], max: usize, seed: u64) -> Vec<SegmentInput> {
    subsample(rows.len(), max, seed)
        .into_iter()
        .map(|i| rows[i])
        .collect()
}

/// k-means start seeds for a given k: a ChaCha stream per k, so candidates are independent
/// and the same whatever order they run in.
fn start_seeds(seed: u64, k: usize) -> Vec<u64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(k as u64);
    (0..KMEANS_STARTS).map(|_| rng.next_u64()).collect()
}

/// Smallest cluster's share of the points; 0 when clusters were dropped as empty.
fn min_share<const D: usize>(c: &Clustering<D>, k: usize) -> f64 {
    if c.centroids.len() < k || c.labels.is_empty() {
        return 0.0;
    }
    let mut sizes = vec![0usize; c.centroids.len()];
    c.labels.iter().for_each(|&l| sizes[l] += 1);
    sizes.iter().copied().min().unwrap_or(0) as f64 / c.labels.len() as f64
}

/// Index of the candidate to keep: the best silhouette among candidates with no segment
/// under `MIN_SEGMENT_SHARE` (ties to the smaller k); if every candidate has a tiny
/// segment, the one whose smallest segment is largest.
fn choose(candidates: &[KCandidate]) -> Option<usize> {
    let better = |i: usize, j: usize| candidates[i].silhouette > candidates[j].silhouette;
    let acceptable: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].acceptable())
        .collect();
    if let Some(&first) = acceptable.first() {
        return Some(
            acceptable
                .iter()
                .copied()
                .fold(first, |b, i| if better(i, b) { i } else { b }),
        );
    }
    (0..candidates.len()).reduce(|b, i| {
        if candidates[i].min_share > candidates[b].min_share {
            i
        } else {
            b
        }
    })
}

/// The fitted transforms that travel into the model unchanged.
struct Fitted {
    scaler: Scaler,
    pca: Pca,
    cuts: RfmCuts,
}

fn build_model(
    rows: usize,
    sample: &[SegmentInput],
    clustering: &Clustering<DIMS>,
    silhouette: f64,
    candidates: Vec<KCandidate>,
    fitted: Fitted,
    params: &SegmentParams,
) -> SegmentModel {
    let Fitted { scaler, pca, cuts } = fitted;
    let k = clustering.centroids.len();
    let mut summaries: Vec<SegmentSummary> = (0..k)
        .map(|j| summarize(j, sample, clustering, &scaler, &cuts))
        .collect();
    // Most valuable first, so segment 0 means the same kind of customer across refits.
    let mut order: Vec<usize> = (0..k).collect();
    let value = |s: &SegmentSummary| s.r_score + s.f_score + s.m_score;
    order.sort_by(|&a, &b| value(&summaries[b]).total_cmp(&value(&summaries[a])));
    let centroids = order.iter().map(|&j| clustering.centroids[j]).collect();
    summaries = order
        .iter()
        .enumerate()
        .map(|(new, &old)| SegmentSummary {
            segment: new,
            ..summaries[old].clone()
        })
        .collect();
    let labels = label_segments(&summaries);
    for (s, label) in summaries.iter_mut().zip(labels) {
        s.label = label;
    }
    SegmentModel {
        k,
        scaler,
        pca,
        centroids,
        segments: summaries,
        silhouette,
        candidates,
        cuts,
        rows,
        sample_rows: sample.len(),
        params: params.clone(),
    }
}

fn summarize(
    j: usize,
    sample: &[SegmentInput],
    clustering: &Clustering<DIMS>,
    scaler: &Scaler,
    cuts: &RfmCuts,
) -> SegmentSummary {
    let members: Vec<&SegmentInput> = sample
        .iter()
        .zip(&clustering.labels)
        .filter(|(_, l)| **l == j)
        .map(|(r, _)| r)
        .collect();
    let n = members.len().max(1) as f64;
    let mut mean = [0.0; DIMS];
    let mut scores = [0.0; 4];
    for r in &members {
        mean.iter_mut()
            .zip(r.values())
            .for_each(|(m, v)| *m += v / n);
        scores
            .iter_mut()
            .zip(cuts.scores(r))
            .for_each(|(s, v)| *s += f64::from(v) / n);
    }
    SegmentSummary {
        segment: j,
        label: String::new(),
        size: members.len(),
        share: members.len() as f64 / sample.len().max(1) as f64,
        centroid: SegmentInput::from_values(scaler.invert(clustering.centroids[j])),
        mean: SegmentInput::from_values(mean),
        r_score: scores[0],
        f_score: scores[1],
        m_score: scores[2],
        t_score: scores[3],
    }
}

/// Archetypes in mean-score space (R, F, M, T; each 1–5, population average ≈ 3). A segment
/// takes the label of the nearest archetype; tenure counts half, as it mainly separates
/// "new" from "promising".
const ARCHETYPES: [(&str, [f64; 4]); 8] = [
    ("champions", [4.5, 4.5, 4.5, 4.0]),
    ("loyal", [3.5, 4.0, 4.0, 4.0]),
    ("promising", [4.0, 2.3, 2.5, 3.0]),
    ("new", [4.3, 1.5, 2.3, 1.5]),
    ("needs attention", [3.0, 3.0, 3.0, 3.0]),
    ("about to sleep", [2.5, 2.0, 2.0, 3.0]),
    ("at risk", [1.8, 3.5, 3.5, 4.0]),
    ("hibernating", [1.5, 1.5, 1.5, 3.5]),
];
const ARCHETYPE_WEIGHTS: [f64; 4] = [1.0, 1.0, 1.0, 0.5];

fn profile(s: &SegmentSummary) -> [f64; 4] {
    [s.r_score, s.f_score, s.m_score, s.t_score]
}

fn archetype_distance(p: &[f64; 4], a: &[f64; 4]) -> f64 {
    (0..4)
        .map(|d| ARCHETYPE_WEIGHTS[d] * (p[d] - a[d]).powi(2))
        .sum()
}

/// One unique label per segment. Each segment takes its nearest archetype; when several
/// pick the same one, the closest keeps the plain label and the others get a qualifier
/// naming how they differ most from it ("loyal (lower spend)"), then a number if needed.
fn label_segments(segments: &[SegmentSummary]) -> Vec<String> {
    let nearest_archetype: Vec<(usize, f64)> = segments
        .iter()
        .map(|s| {
            let p = profile(s);
            ARCHETYPES
                .iter()
                .enumerate()
                .map(|(i, (_, a))| (i, archetype_distance(&p, a)))
                .fold((0, f64::INFINITY), |b, c| if c.1 < b.1 { c } else { b })
        })
        .collect();
    let mut labels: Vec<String> = vec![String::new(); segments.len()];
    for (archetype, (name, _)) in ARCHETYPES.iter().enumerate() {
        let mut group: Vec<usize> = (0..segments.len())
            .filter(|&s| nearest_archetype[s].0 == archetype)
            .collect();
        group.sort_by(|&a, &b| nearest_archetype[a].1.total_cmp(&nearest_archetype[b].1));
        let Some(&holder) = group.first() else {
            continue;
        };
        labels[holder] = (*name).to_string();
        for &s in &group[1..] {
            let qualifier = qualifier(&profile(&segments[s]), &profile(&segments[holder]));
            labels[s] = format!("{name} ({qualifier})");
        }
    }
    dedupe(labels)
}

/// How a segment differs from the one holding its archetype's plain label, per dimension
/// (R, F, M, T): (above, below).
const QUALIFIERS: [(&str, &str); 4] = [
    ("more recent", "less recent"),
    ("more frequent", "less frequent"),
    ("higher spend", "lower spend"),
    ("longer tenure", "newer"),
];

/// The plain labels a segment model gives, one per archetype.
pub fn plain_labels() -> Vec<&'static str> {
    ARCHETYPES.iter().map(|(name, _)| *name).collect()
}

/// Whether a segment model can give `label`: an archetype's name, alone or with a qualifier
/// ("loyal (lower spend)"), either possibly followed by a number for repeats ("loyal 2").
pub fn is_label(label: &str) -> bool {
    let base = match label.rsplit_once(' ') {
        Some((rest, n)) if n.parse::<u32>().is_ok_and(|n| n >= 2) => rest,
        _ => label,
    };
    let (name, qualifier) = match base.strip_suffix(')').and_then(|b| b.split_once(" (")) {
        Some((name, q)) => (name, Some(q)),
        None => (base, None),
    };
    ARCHETYPES.iter().any(|(n, _)| *n == name)
        && qualifier.is_none_or(|q| QUALIFIERS.iter().any(|(a, b)| *a == q || *b == q))
}

/// The dimension on which `p` differs most from `reference`, in words.
fn qualifier(p: &[f64; 4], reference: &[f64; 4]) -> &'static str {
    let d = (0..4)
        .max_by(|&a, &b| {
            (p[a] - reference[a])
                .abs()
                .total_cmp(&(p[b] - reference[b]).abs())
        })
        .unwrap_or(0);
    if p[d] >= reference[d] {
        QUALIFIERS[d].0
    } else {
        QUALIFIERS[d].1
    }
}

/// Append " 2", " 3", … to repeated labels, so labels are unique whatever happened above.
fn dedupe(labels: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(labels.len());
    for label in labels {
        let mut candidate = label.clone();
        let mut n = 2;
        while out.contains(&candidate) {
            candidate = format!("{label} {n}");
            n += 1;
        }
        out.push(candidate);
    }
    out
}

impl SegmentModel {
    /// Segment, label, plot coordinates and RFM scores for each row, in parallel.
    /// Non-finite values are treated as the population median (scaled 0, score 3).
    pub fn assign(&self, rows: &[SegmentInput]) -> Vec<Segmented> {
        rows.par_iter().map(|r| self.assign_one(r)).collect()
    }

    fn assign_one(&self, row: &SegmentInput) -> Segmented {
        let p = self.scaler.apply(row.values());
        let (segment, _) = nearest(&p, &self.centroids);
        let (pc1, pc2) = self.pca.project(&p);
        let [r_score, f_score, m_score, _] = self.cuts.scores(row);
        Segmented {
            segment,
            label: self
                .segments
                .get(segment)
                .map(|s| s.label.clone())
                .unwrap_or_default(),
            pc1,
            pc2,
            r_score,
            f_score,
            m_score,
        }
    }

    /// Number of segments: the k asked for or chosen, or fewer if the sample had fewer
    /// distinct customer profiles than that (empty clusters are dropped).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Segment sizes in the fitting sample (see [`SegmentModel::counts`] for a population).
    pub fn sizes(&self) -> Vec<usize> {
        self.segments.iter().map(|s| s.size).collect()
    }

    /// Segment sizes among `assigned` rows (from [`SegmentModel::assign`]).
    pub fn counts(&self, assigned: &[Segmented]) -> Vec<usize> {
        let mut counts = vec![0; self.k];
        for a in assigned {
            if let Some(c) = counts.get_mut(a.segment) {
                *c += 1;
            }
        }
        counts
    }

    /// Centroids in original units (see [`SegmentSummary::centroid`]).
    pub fn centroids(&self) -> Vec<SegmentInput> {
        self.segments.iter().map(|s| s.centroid).collect()
    }

    /// Centroids in the scaled space k-means ran in.
    pub fn centroids_scaled(&self) -> &[[f64; DIMS]] {
        &self.centroids
    }

    pub fn labels(&self) -> Vec<&str> {
        self.segments.iter().map(|s| s.label.as_str()).collect()
    }

    /// Per-segment profile, most valuable segment first.
    pub fn summary(&self) -> &[SegmentSummary] {
        &self.segments
    }

    /// Mean silhouette of the chosen k on the silhouette subsample.
    pub fn silhouette(&self) -> f64 {
        self.silhouette
    }

    /// Every k tried (one entry when k was given).
    pub fn candidates(&self) -> &[KCandidate] {
        &self.candidates
    }

    /// Share of the scaled features' variance along the two plot axes.
    pub fn explained_variance(&self) -> [f64; 2] {
        self.pca.explained_variance
    }

    pub fn pca(&self) -> &Pca {
        &self.pca
    }

    pub fn scaler(&self) -> &Scaler {
        &self.scaler
    }

    pub fn rfm_cuts(&self) -> &RfmCuts {
        &self.cuts
    }

    /// Rows passed to `fit`, and how many of them the sample held.
    pub fn fitted_rows(&self) -> (usize, usize) {
        (self.rows, self.sample_rows)
    }

    pub fn params(&self) -> &SegmentParams {
        &self.params
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn kmeans_finds_two_obvious_clusters() {
        let points: Vec<[f64; 2]> = vec![
            [0.0, 0.0],
            [0.1, 0.2],
            [0.2, 0.1],
            [-0.1, 0.0],
            [10.0, 10.0],
            [10.2, 9.9],
            [9.8, 10.1],
            [10.1, 10.2],
        ];
        let c = kmeans(&points, 2, 50, &start_seeds(1, 2)).unwrap();
        assert_eq!(c.centroids.len(), 2);
        let first = c.labels[0];
        assert!(c.labels[..4].iter().all(|&l| l == first));
        assert!(c.labels[4..].iter().all(|&l| l != first));
        let left = c.centroids[first];
        assert!(close(left[0], 0.05, 1e-9) && close(left[1], 0.075, 1e-9));
    }

    #[test]
    fn pca_on_a_line_puts_all_variance_on_pc1() {
        let points: Vec<[f64; 4]> = (0..50)
            .map(|i| {
                let t = i as f64 / 10.0;
                [t, 2.0 * t, -t, 0.5 * t]
            })
            .collect();
        let pca = Pca::fit(&points).unwrap();
        assert!(close(pca.explained_variance[0], 1.0, 1e-9), "{pca:?}");
        assert!(close(pca.explained_variance[1], 0.0, 1e-9));
        // Unit direction (1, 2, -1, 0.5)/|…|, largest loading positive.
        let norm = (1.0f64 + 4.0 + 1.0 + 0.25).sqrt();
        for (got, want) in pca.components[0].iter().zip([1.0, 2.0, -1.0, 0.5]) {
            assert!(close(*got, want / norm, 1e-9), "{pca:?}");
        }
        // Projection of the mean is the origin; the line's ends are symmetric.
        let (a, _) = pca.project(&points[0]);
        let (b, _) = pca.project(&points[49]);
        assert!(close(a, -b, 1e-9) && b > 0.0);
    }

    #[test]
    fn robust_scaling_uses_median_and_iqr() {
        // Column 0 (no log): 1,2,3,4,100 → median 3, IQR 4 - 2 = 2. Column 3 is constant,
        // so its IQR of 0 becomes 1.
        let raw: Vec<[f64; 4]> = [1.0, 2.0, 3.0, 4.0, 100.0]
            .iter()
            .map(|&v| [v, v, v, 7.0])
            .collect();
        let scaler = Scaler::fit(&raw, [false, false, true, false]);
        assert_eq!(scaler.center[0], 3.0);
        assert_eq!(scaler.scale[0], 2.0);
        assert_eq!(scaler.center[3], 7.0);
        assert_eq!(scaler.scale[3], 1.0);
        // Logged column: median ln 4, IQR ln 5 - ln 3.
        assert!(close(scaler.center[2], 4f64.ln(), 1e-12));
        assert!(close(scaler.scale[2], 5f64.ln() - 3f64.ln(), 1e-12));
        let scaled = scaler.apply([100.0, 1.0, f64::NAN, 7.0]);
        // (100 - 3) / 2 = 48.5, clipped to 3 IQRs.
        assert_eq!(scaled[0], SCALED_CLIP);
        assert_eq!(scaler.apply([4.0, 0.0, 0.0, 0.0])[0], 0.5);
        assert_eq!(scaled[1], -1.0);
        assert_eq!(scaled[2], 0.0);
        let back = scaler.invert(scaler.apply([5.0, 5.0, 5.0, 5.0]));
        assert!(back.iter().all(|v| close(*v, 5.0, 1e-9)), "{back:?}");
    }

    #[test]
    fn rfm_quintile_scores() {
        let rows: Vec<SegmentInput> = (1..=100)
            .map(|i| {
                let v = f64::from(i);
                SegmentInput {
                    recency_days: v,
                    frequency: v,
                    monetary: v,
                    tenure_days: v,
                }
            })
            .collect();
        let cuts = RfmCuts::fit(&rows);
        // numpy-style: 1 + q·99 → 20.8, 40.6, 60.4, 80.2.
        assert_eq!(cuts.frequency, [20.8, 40.6, 60.4, 80.2]);
        let score = |v: f64| {
            cuts.scores(&SegmentInput {
                recency_days: v,
                frequency: v,
                monetary: v,
                tenure_days: v,
            })
        };
        assert_eq!(score(1.0), [5, 1, 1, 1]);
        assert_eq!(score(20.0), [5, 1, 1, 1]);
        assert_eq!(score(21.0), [4, 2, 2, 2]);
        assert_eq!(score(50.0), [3, 3, 3, 3]);
        assert_eq!(score(100.0), [1, 5, 5, 5]);
    }

    #[test]
    fn tied_values_share_the_lower_quintile() {
        // 60% of customers ordered once: cut points 1, 1, 1, 3 → one order scores 1.
        let cuts = [1.0, 1.0, 1.0, 3.0];
        assert_eq!(quintile_score(1.0, &cuts), 1);
        assert_eq!(quintile_score(2.0, &cuts), 4);
        assert_eq!(quintile_score(4.0, &cuts), 5);
        assert_eq!(quintile_score(f64::NAN, &cuts), 3);
    }

    #[test]
    fn silhouette_hand_example() {
        // A = {0, 2}, B = {10, 12}. Point 0: a = 2, b = (10 + 12)/2 = 11 → 9/11.
        // Point 2: a = 2, b = (8 + 10)/2 = 9 → 7/9. B mirrors A.
        let points = [[0.0], [2.0], [10.0], [12.0]];
        let s = silhouette(&points, &[0, 0, 1, 1]);
        assert!(close(s, (9.0 / 11.0 + 7.0 / 9.0) / 2.0, 1e-12), "{s}");
        // A singleton scores 0: {0}, {10, 12} → (0 + 2·(1 - 2/11)... computed below).
        let s = silhouette(&[[0.0], [10.0], [12.0]], &[0, 1, 1]);
        // Point 10: a = 2, b = 10 → 0.8; point 12: a = 2, b = 12 → 5/6.
        assert!(close(s, (0.0 + 0.8 + 5.0 / 6.0) / 3.0, 1e-12), "{s}");
        assert!(silhouette(&points, &[0, 0, 0, 0]).is_nan());
    }

    /// Planted groups: (name, count, recency, frequency, monetary, tenure ranges).
    type Group = (&'static str, usize, [(f64, f64); 4]);
    const GROUPS: [Group; 5] = [
        (
            "champions",
            150,
            [(1.0, 15.0), (20.0, 40.0), (2000.0, 5000.0), (600.0, 900.0)],
        ),
        (
            "at risk",
            125,
            [
                (150.0, 250.0),
                (10.0, 20.0),
                (800.0, 2000.0),
                (600.0, 900.0),
            ],
        ),
        (
            "new",
            150,
            [(1.0, 20.0), (1.0, 1.0), (20.0, 80.0), (1.0, 25.0)],
        ),
        (
            "middle",
            200,
            [(40.0, 100.0), (3.0, 6.0), (200.0, 500.0), (300.0, 600.0)],
        ),
        (
            "hibernating",
            225,
            [(250.0, 360.0), (1.0, 1.0), (10.0, 50.0), (250.0, 400.0)],
        ),
    ];

    fn population(seed: u64) -> (Vec<SegmentInput>, Vec<&'static str>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut rows = Vec::new();
        let mut truth = Vec::new();
        for (name, count, ranges) in GROUPS {
            for _ in 0..count {
                let v: [f64; 4] = std::array::from_fn(|d| {
                    let (lo, hi) = ranges[d];
                    if hi > lo {
                        rng.random_range(lo..hi)
                    } else {
                        lo
                    }
                });
                let frequency = v[1].round();
                rows.push(SegmentInput {
                    recency_days: v[0],
                    frequency,
                    monetary: v[2],
                    tenure_days: v[3].max(v[0]),
                });
                truth.push(name);
            }
        }
        (rows, truth)
    }

    /// The label most members of planted group `name` were given.
    fn majority_label(assigned: &[Segmented], truth: &[&str], name: &str) -> String {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for (a, t) in assigned.iter().zip(truth) {
            if *t == name {
                match counts.iter_mut().find(|(l, _)| *l == a.label) {
                    Some((_, c)) => *c += 1,
                    None => counts.push((a.label.clone(), 1)),
                }
            }
        }
        counts
            .into_iter()
            .max_by_key(|(_, c)| *c)
            .map(|(l, _)| l)
            .unwrap_or_default()
    }

    #[test]
    fn planted_groups_get_sensible_unique_labels() {
        let (rows, truth) = population(5);
        let params = SegmentParams {
            seed: 11,
            ..Default::default()
        };
        let model = fit(&rows, &params).unwrap();
        assert_eq!(model.k(), 5, "{:?}", model.candidates());
        let labels = model.labels();
        let mut unique = labels.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), labels.len(), "{labels:?}");

        let assigned = model.assign(&rows);
        for name in ["champions", "at risk", "new", "hibernating"] {
            assert_eq!(majority_label(&assigned, &truth, name), name, "{labels:?}");
        }
        // Champions come first (most valuable), and every planted group is one segment.
        assert_eq!(labels[0], "champions");
        assert_eq!(model.counts(&assigned).iter().sum::<usize>(), rows.len());
        assert!(model.silhouette() > 0.5, "{}", model.silhouette());
        assert!(model.explained_variance()[0] > 0.5);
    }

    #[test]
    fn fixed_k_and_determinism_and_serde() {
        let (rows, _) = population(6);
        let params = SegmentParams {
            k: Some(3),
            seed: 3,
            ..Default::default()
        };
        let a = fit(&rows, &params).unwrap();
        let b = fit(&rows, &params).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.k(), 3);
        assert_eq!(a.candidates().len(), 1);
        let json = serde_json::to_string(&a).unwrap();
        let back: SegmentModel = serde_json::from_str(&json).unwrap();
        let (x, y) = (a.assign(&rows), back.assign(&rows));
        for (p, q) in x.iter().zip(&y) {
            assert_eq!(p.segment, q.segment);
            assert_eq!(p.label, q.label);
            assert!(close(p.pc1, q.pc1, 1e-9) && close(p.pc2, q.pc2, 1e-9));
        }
        // Small: no per-customer data in the model.
        assert!(json.len() < 10_000, "{}", json.len());
    }

    #[test]
    fn sampling_fits_on_a_subset_but_assigns_everyone() {
        let (rows, _) = population(7);
        let params = SegmentParams {
            sample: 500,
            k: Some(4),
            ..Default::default()
        };
        let model = fit(&rows, &params).unwrap();
        assert_eq!(model.fitted_rows(), (rows.len(), 500));
        assert_eq!(model.sizes().iter().sum::<usize>(), 500);
        let assigned = model.assign(&rows);
        assert_eq!(assigned.len(), rows.len());
        assert!(assigned.iter().all(|a| a.segment < 4));
    }

    #[test]
    fn automatic_k_rejects_tiny_segments() {
        // Two big groups plus 4 extreme whales (0.5%): a k that isolates the whales is
        // not acceptable when choosing k.
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut rows = Vec::new();
        for i in 0..800 {
            let recent = i % 2 == 0;
            rows.push(SegmentInput {
                recency_days: if recent {
                    rng.random_range(1.0..30.0)
                } else {
                    rng.random_range(200.0..300.0)
                },
                frequency: rng.random_range(1.0..8.0f64).round(),
                monetary: rng.random_range(50.0..500.0),
                tenure_days: rng.random_range(300.0..900.0),
            });
        }
        for _ in 0..4 {
            rows.push(SegmentInput {
                recency_days: 5.0,
                frequency: 5000.0,
                monetary: 5e7,
                tenure_days: 900.0,
            });
        }
        let model = fit(&rows, &SegmentParams::default()).unwrap();
        let smallest = model.sizes().into_iter().min().unwrap();
        assert!(
            smallest as f64 / rows.len() as f64 >= MIN_SEGMENT_SHARE,
            "{:?}",
            model.summary()
        );
    }

    #[test]
    fn choose_prefers_silhouette_but_skips_tiny_segments() {
        let c = |k, silhouette, min_share| KCandidate {
            k,
            silhouette,
            min_share,
            inertia: 0.0,
        };
        // k = 4 has the best silhouette but a 1% segment.
        let candidates = [c(3, 0.30, 0.10), c(4, 0.60, 0.01), c(5, 0.32, 0.05)];
        assert_eq!(choose(&candidates), Some(2));
        // Ties go to the smaller k.
        assert_eq!(choose(&[c(3, 0.3, 0.1), c(4, 0.3, 0.1)]), Some(0));
        // All degenerate: the least degenerate.
        assert_eq!(choose(&[c(3, 0.5, 0.001), c(4, 0.4, 0.015)]), Some(1));
        assert_eq!(choose(&[]), None);
    }

    #[test]
    fn labels_are_deduplicated_with_qualifiers() {
        let seg = |r: f64, f: f64, m: f64| SegmentSummary {
            segment: 0,
            label: String::new(),
            size: 1,
            share: 0.25,
            centroid: SegmentInput::from_values([0.0; 4]),
            mean: SegmentInput::from_values([0.0; 4]),
            r_score: r,
            f_score: f,
            m_score: m,
            t_score: 3.5,
        };
        let labels = label_segments(&[
            seg(1.5, 1.5, 1.5),
            seg(1.4, 1.5, 2.2),
            seg(1.5, 1.4, 1.4),
            seg(4.6, 4.6, 4.6),
        ]);
        assert_eq!(labels[0], "hibernating");
        assert_eq!(labels[1], "hibernating (higher spend)");
        assert!(labels[2].starts_with("hibernating ("), "{labels:?}");
        assert_eq!(labels[3], "champions");
        let labels = dedupe(vec!["a".into(), "a".into(), "a".into()]);
        assert_eq!(labels, ["a", "a 2", "a 3"]);
    }

    #[test]
    fn bad_input_is_an_error() {
        let (mut rows, _) = population(8);
        assert!(matches!(
            fit(
                &rows,
                &SegmentParams {
                    k: Some(1),
                    ..Default::default()
                }
            ),
            Err(SegmentError::InvalidParams(_))
        ));
        assert!(matches!(
            fit(
                &rows,
                &SegmentParams {
                    k_min: 5,
                    k_max: 4,
                    ..Default::default()
                }
            ),
            Err(SegmentError::InvalidParams(_))
        ));
        assert!(matches!(
            fit(&[], &SegmentParams::default()),
            Err(SegmentError::Empty)
        ));
        rows[17].monetary = f64::NAN;
        assert!(matches!(
            fit(&rows, &SegmentParams::default()),
            Err(SegmentError::NonFinite {
                row: 17,
                field: "monetary"
            })
        ));
        let same = vec![rows[0]; 50];
        assert!(matches!(
            fit(
                &same,
                &SegmentParams {
                    k: Some(3),
                    ..Default::default()
                }
            ),
            Err(SegmentError::Degenerate(_))
        ));
    }

    #[test]
    fn every_label_the_labeller_gives_is_known_and_others_are_not() {
        assert_eq!(plain_labels().len(), 8);
        for label in [
            "champions",
            "at risk",
            "loyal (lower spend)",
            "new (longer tenure)",
            "loyal 2",
            "loyal (lower spend) 3",
        ] {
            assert!(is_label(label), "{label}");
        }
        for label in [
            "champs",
            "Champions",
            "loyal (cheaper)",
            "loyal 1",
            "at  risk",
            "",
        ] {
            assert!(!is_label(label), "{label}");
        }
        // Whatever label_segments makes is a label.
        let summaries: Vec<SegmentSummary> = [
            [4.5, 4.5, 4.5, 4.0],
            [4.4, 4.5, 4.5, 4.0],
            [4.6, 4.5, 4.4, 4.0],
            [1.5, 1.5, 1.5, 3.5],
        ]
        .iter()
        .map(|&[r, f, m, t]| SegmentSummary {
            r_score: r,
            f_score: f,
            m_score: m,
            t_score: t,
            segment: 0,
            label: String::new(),
            size: 1,
            share: 0.25,
            centroid: SegmentInput::from_values([0.0; 4]),
            mean: SegmentInput::from_values([0.0; 4]),
        })
        .collect();
        for label in label_segments(&summaries) {
            assert!(is_label(&label), "{label}");
        }
    }
}
