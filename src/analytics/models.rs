//! Churn and purchase-intent classifiers: binary models on a dense, row-major feature
//! matrix, their training, scoring, evaluation and the champion/challenger promotion rule.
//!
//! Three algorithms share one serialisable [`Model`]:
//! - logistic regression, fitted by smartcore (L-BFGS) on standardised columns; its
//!   probabilities are `sigmoid(w·x + b)` from the fitted coefficients, because smartcore's
//!   `LogisticRegression::predict` only returns classes;
//! - a decision tree, grown by smartcore with bounded depth;
//! - a random forest of bounded-depth smartcore trees grown in parallel with rayon on
//!   bootstrap samples (smartcore's own forest is single-threaded and keeps every tree whole).
//!
//! smartcore's `DecisionTreeClassifier::predict_proba` is one-hot (the leaf's majority
//! class), which would make a single tree's AUC that of a 0/1 score. So after fitting, each
//! tree's split structure is read out of smartcore's serde form into a compact [`Tree`] of
//! our own, and every leaf gets the smoothed positive rate of the training rows that reach
//! it. Scoring then never touches smartcore: it is a walk down small arrays, in parallel.
//!
//! Everything is deterministic given the seed: bootstrap rows and feature subsets come from
//! per-tree `ChaCha8Rng` streams drawn up front, so thread scheduling cannot change a model.

use std::borrow::Cow;

use rand::seq::index;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::logistic_regression::{LogisticRegression, LogisticRegressionParameters};
use smartcore::tree::decision_tree_classifier::{
    DecisionTreeClassifier, DecisionTreeClassifierParameters,
};

use super::metrics;

/// Deepest tree accepted: a depth-12 tree has at most 8,191 nodes, which keeps a serialised
/// forest in the low megabytes.
pub const MAX_DEPTH: u16 = 12;
/// Most trees accepted in a forest; beyond a few dozen, AUC stops moving.
pub const MAX_TREES: usize = 100;
/// Most rows one tree is grown on (bootstrap size for a forest, subsample for a single
/// tree): smartcore's tree costs O(rows × columns) per node, so this bounds training time.
pub const MAX_TREE_ROWS: usize = 200_000;
/// Smallest leaf smartcore may create. Leaves of one or two rows only memorise noise, and
/// fewer leaves mean a smaller model.
const MIN_SAMPLES_LEAF: usize = 5;
/// Leaf probabilities are `(positives + M·prior) / (rows + M)`: a pure leaf of 5 rows says
/// "very likely", not "certain", which keeps log-loss sane.
const LEAF_SMOOTHING: f64 = 2.0;
/// Share of columns each forest tree may split on (random subspace). smartcore's public
/// `fit` considers every column at every split, so this is how trees are decorrelated.
const FOREST_FEATURE_FRACTION: f64 = 0.4;
/// L2 penalty of the logistic regression. smartcore adds `alpha/2·|w|²` to the summed (not
/// averaged) log-loss, so 1.0 is negligible on real data but keeps weights finite when the
/// classes are separable.
const LOGISTIC_ALPHA: f64 = 1.0;
/// Most rows used to fit a forest's calibration; out-of-bag scoring costs rows × trees.
const MAX_CALIBRATION_ROWS: usize = 50_000;
/// Mixed into the seed when sampling calibration rows, so they are not the first tree's rows.
const CALIBRATION_SEED_SALT: u64 = 0x9e37_79b9_7f4a_7c15;
/// Newton steps for Platt scaling (it converges in a handful).
const PLATT_ITERATIONS: usize = 50;
const PLATT_RIDGE: f64 = 1e-9;
/// AUC gain a challenger needs to replace the champion outright.
pub const PROMOTION_AUC_MARGIN: f64 = 0.001;
/// Log-loss gain a challenger needs when the AUCs are within the margin.
pub const PROMOTION_LOG_LOSS_MARGIN: f64 = 0.001;

/// Why a dataset could not be used or a model could not be trained.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("dataset has no rows or no columns")]
    Empty,
    #[error("dataset shape mismatch: {0}")]
    Shape(String),
    #[error("non-finite value at row {row}, column {column:?}")]
    NonFinite { row: usize, column: String },
    #[error("training labels contain a single class; a classifier needs both")]
    SingleClass,
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    #[error("smartcore failed to fit: {0}")]
    Fit(String),
    #[error("unexpected smartcore tree layout: {0}")]
    TreeLayout(String),
}

/// A dense training or evaluation set: `x` is row-major with `columns.len()` values per row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    pub columns: Vec<String>,
    pub x: Vec<f64>,
    pub y: Vec<bool>,
}

impl Dataset {
    /// A dataset after checking that `x` holds exactly one row of `columns` per label.
    pub fn new(columns: Vec<String>, x: Vec<f64>, y: Vec<bool>) -> Result<Self, ModelError> {
        let data = Self { columns, x, y };
        data.check_shape()?;
        Ok(data)
    }

    pub fn rows(&self) -> usize {
        self.y.len()
    }

    pub fn cols(&self) -> usize {
        self.columns.len()
    }

    /// Row `i`'s values. Panics if `i` is out of range, like slice indexing.
    pub fn row(&self, i: usize) -> &[f64] {
        let c = self.cols();
        &self.x[i * c..(i + 1) * c]
    }

    pub fn positives(&self) -> usize {
        self.y.iter().filter(|&&y| y).count()
    }

    /// The rows at `indices` (repeats allowed), in that order. Panics on an out-of-range index.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let mut x = Vec::with_capacity(indices.len() * self.cols());
        for &i in indices {
            x.extend_from_slice(self.row(i));
        }
        Dataset {
            columns: self.columns.clone(),
            x,
            y: indices.iter().map(|&i| self.y[i]).collect(),
        }
    }

    /// At most `max_rows` rows drawn without replacement (all rows, in order, if fewer).
    pub fn sample(&self, max_rows: usize, seed: u64) -> Dataset {
        if self.rows() <= max_rows {
            return self.clone();
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut picked = index::sample(&mut rng, self.rows(), max_rows).into_vec();
        picked.sort_unstable();
        self.subset(&picked)
    }

    /// A stratified (train, test) split: `test_fraction` of the positives and of the
    /// negatives go to test, so both halves keep the base rate.
    pub fn split(&self, test_fraction: f64, seed: u64) -> (Dataset, Dataset) {
        let fraction = test_fraction.clamp(0.0, 1.0);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for class in [true, false] {
            let mut idx: Vec<usize> = (0..self.rows()).filter(|&i| self.y[i] == class).collect();
            shuffle(&mut idx, &mut rng);
            let n_test = (idx.len() as f64 * fraction).round() as usize;
            test.extend_from_slice(&idx[..n_test]);
            train.extend_from_slice(&idx[n_test..]);
        }
        train.sort_unstable();
        test.sort_unstable();
        (self.subset(&train), self.subset(&test))
    }

    fn check_shape(&self) -> Result<(), ModelError> {
        if self.columns.is_empty() || self.y.is_empty() {
            return Err(ModelError::Empty);
        }
        if self.x.len() != self.y.len() * self.cols() {
            return Err(ModelError::Shape(format!(
                "{} values for {} rows × {} columns",
                self.x.len(),
                self.y.len(),
                self.cols()
            )));
        }
        Ok(())
    }

    fn check_finite(&self) -> Result<(), ModelError> {
        match self.x.iter().position(|v| !v.is_finite()) {
            None => Ok(()),
            Some(at) => Err(ModelError::NonFinite {
                row: at / self.cols(),
                column: self.columns[at % self.cols()].clone(),
            }),
        }
    }
}

/// Fisher–Yates with our own RNG, so the order is fixed by the seed alone.
fn shuffle(v: &mut [usize], rng: &mut ChaCha8Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
}

/// Which classifier to train, with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Algorithm {
    LogisticRegression,
    /// `max_depth` in `1..=MAX_DEPTH`. Grown on at most `MAX_TREE_ROWS` rows.
    DecisionTree {
        max_depth: u16,
    },
    /// `trees` in `1..=MAX_TREES`, `max_depth` in `1..=MAX_DEPTH`; `sample` is the bootstrap
    /// size per tree, capped at the data size and `MAX_TREE_ROWS` (0 means that cap).
    RandomForest {
        trees: usize,
        max_depth: u16,
        sample: usize,
    },
}

impl Algorithm {
    pub fn name(&self) -> &'static str {
        match self {
            Algorithm::LogisticRegression => "logistic_regression",
            Algorithm::DecisionTree { .. } => "decision_tree",
            Algorithm::RandomForest { .. } => "random_forest",
        }
    }

    fn validate(&self) -> Result<(), ModelError> {
        let depth_ok = |d: u16| (1..=MAX_DEPTH).contains(&d);
        match *self {
            Algorithm::LogisticRegression => Ok(()),
            Algorithm::DecisionTree { max_depth } if depth_ok(max_depth) => Ok(()),
            Algorithm::RandomForest {
                trees, max_depth, ..
            } if depth_ok(max_depth) && (1..=MAX_TREES).contains(&trees) => Ok(()),
            _ => Err(ModelError::InvalidParams(format!(
                "{self:?}: max_depth must be 1..={MAX_DEPTH} and trees 1..={MAX_TREES}"
            ))),
        }
    }
}

/// Per-column mean and standard deviation of the training data. Every model uses the means
/// to fill non-finite values when scoring; logistic regression also scales by them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    pub mean: Vec<f64>,
    /// Population standard deviation; a constant column gets 1 so it maps to 0, not NaN.
    pub std: Vec<f64>,
}

impl Standardizer {
    fn fit(data: &Dataset) -> Self {
        let (n, c) = (data.rows() as f64, data.cols());
        let mut mean = vec![0.0; c];
        for row in data.x.chunks_exact(c) {
            mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0; c];
        for row in data.x.chunks_exact(c) {
            for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (v - m) * (v - m);
            }
        }
        let std = var
            .into_iter()
            .map(|s| {
                let sd = (s / n).sqrt();
                if sd > 1e-12 { sd } else { 1.0 }
            })
            .collect();
        Self { mean, std }
    }

    /// `row` with non-finite values replaced by the column mean; borrowed when already clean.
    fn impute<'a>(&self, row: &'a [f64]) -> Cow<'a, [f64]> {
        if row.iter().all(|v| v.is_finite()) {
            return Cow::Borrowed(row);
        }
        let fixed = row
            .iter()
            .zip(&self.mean)
            .map(|(&v, &m)| if v.is_finite() { v } else { m })
            .collect();
        Cow::Owned(fixed)
    }

    fn scale_into(&self, row: &[f64], out: &mut Vec<f64>) {
        out.extend(
            row.iter()
                .zip(self.mean.iter().zip(&self.std))
                .map(|(v, (m, s))| (v - m) / s),
        );
    }
}

/// A compact binary tree read out of a fitted smartcore tree. Node 0 is the root; a node
/// with `left == 0` is a leaf whose `value` is P(positive). Rows with
/// `x[feature] <= threshold` go left, as in smartcore.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Node {
    #[serde(rename = "f")]
    feature: u32,
    #[serde(rename = "t")]
    threshold: f64,
    #[serde(rename = "l")]
    left: u32,
    #[serde(rename = "r")]
    right: u32,
    #[serde(rename = "v")]
    value: f64,
}

impl Node {
    fn leaf(value: f64) -> Self {
        Node {
            feature: 0,
            threshold: 0.0,
            left: 0,
            right: 0,
            value,
        }
    }

    fn is_leaf(&self) -> bool {
        self.left == 0
    }
}

impl Tree {
    fn constant(p: f64) -> Self {
        Tree {
            nodes: vec![Node::leaf(p)],
        }
    }

    /// Index of the leaf `row` falls into. Children always follow their parent in the node
    /// list, so a walk that does not move forward (a corrupt model) stops instead of looping.
    fn leaf_of(&self, row: &[f64]) -> Option<usize> {
        let mut i = 0;
        loop {
            let node = self.nodes.get(i)?;
            if node.is_leaf() {
                return Some(i);
            }
            let x = *row.get(node.feature as usize)?;
            let next = if x <= node.threshold {
                node.left
            } else {
                node.right
            } as usize;
            if next <= i {
                return None;
            }
            i = next;
        }
    }

    fn predict(&self, row: &[f64]) -> f64 {
        self.leaf_of(row)
            .and_then(|i| self.nodes.get(i))
            .map_or(f64::NAN, |n| n.value)
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

/// The part of smartcore's serialised `DecisionTreeClassifier` we read. Its fields are
/// private, but the `serde` feature exposes them; a layout change fails loudly here (and in
/// the `tree_matches_smartcore` test) rather than mis-scoring.
#[derive(Deserialize)]
struct RawTree {
    nodes: Vec<RawNode>,
}

#[derive(Deserialize)]
struct RawNode {
    split_feature: usize,
    split_value: Option<f64>,
    true_child: Option<usize>,
    false_child: Option<usize>,
}

/// The fitted parameters of one algorithm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Fitted {
    /// Coefficients on standardised columns.
    Logistic {
        weights: Vec<f64>,
        intercept: f64,
    },
    Tree(Tree),
    /// Trees whose leaf probabilities are averaged, then recalibrated by `platt`.
    Forest {
        trees: Vec<Tree>,
        platt: Platt,
    },
}

/// A trained classifier: what was asked for, how columns are prepared, and the fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    algorithm: Algorithm,
    columns: Vec<String>,
    standardizer: Standardizer,
    fitted: Fitted,
    seed: u64,
    train_rows: usize,
    train_positive_rate: f64,
}

/// Train `algorithm` on `data`. Fails on empty or non-finite data, a single class, or
/// parameters outside the documented bounds.
pub fn train(algorithm: &Algorithm, data: &Dataset, seed: u64) -> Result<Model, ModelError> {
    algorithm.validate()?;
    data.check_shape()?;
    data.check_finite()?;
    let positives = data.positives();
    if positives == 0 || positives == data.rows() {
        return Err(ModelError::SingleClass);
    }
    let prior = positives as f64 / data.rows() as f64;
    let standardizer = Standardizer::fit(data);
    let fitted = match *algorithm {
        Algorithm::LogisticRegression => fit_logistic(data, &standardizer)?,
        Algorithm::DecisionTree { max_depth } => {
            Fitted::Tree(fit_single_tree(data, max_depth, prior, seed)?)
        }
        Algorithm::RandomForest {
            trees,
            max_depth,
            sample,
        } => fit_forest(data, trees, max_depth, sample, prior, seed)?,
    };
    Ok(Model {
        algorithm: algorithm.clone(),
        columns: data.columns.clone(),
        standardizer,
        fitted,
        seed,
        train_rows: data.rows(),
        train_positive_rate: prior,
    })
}

fn labels_u32(y: &[bool]) -> Vec<u32> {
    y.iter().map(|&b| u32::from(b)).collect()
}

fn dense(rows: usize, cols: usize, values: Vec<f64>) -> Result<DenseMatrix<f64>, ModelError> {
    DenseMatrix::new(rows, cols, values, false).map_err(|e| ModelError::Shape(e.to_string()))
}

fn fit_logistic(data: &Dataset, standardizer: &Standardizer) -> Result<Fitted, ModelError> {
    let mut scaled = Vec::with_capacity(data.x.len());
    for row in data.x.chunks_exact(data.cols()) {
        standardizer.scale_into(row, &mut scaled);
    }
    let x = dense(data.rows(), data.cols(), scaled)?;
    let y = labels_u32(&data.y);
    let params = LogisticRegressionParameters::default().with_alpha(LOGISTIC_ALPHA);
    let lr = LogisticRegression::fit(&x, &y, params).map_err(|e| ModelError::Fit(e.to_string()))?;
    // sigmoid(w·x + b) is P(classes[1]); with labels 0/1 that must be P(true).
    if lr.classes().as_slice() != [0, 1] {
        return Err(ModelError::Fit(format!(
            "unexpected classes {:?}",
            lr.classes()
        )));
    }
    let coefficients = lr.coefficients();
    let weights = (0..data.cols())
        .map(|j| *smartcore::linalg::basic::arrays::Array::get(coefficients, (0, j)))
        .collect();
    let intercept = *smartcore::linalg::basic::arrays::Array::get(lr.intercept(), (0, 0));
    Ok(Fitted::Logistic { weights, intercept })
}

/// One tree on all rows, or on a seeded subsample of `MAX_TREE_ROWS` when there are more.
fn fit_single_tree(
    data: &Dataset,
    max_depth: u16,
    prior: f64,
    seed: u64,
) -> Result<Tree, ModelError> {
    let rows: Vec<usize> = if data.rows() <= MAX_TREE_ROWS {
        (0..data.rows()).collect()
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut picked = index::sample(&mut rng, data.rows(), MAX_TREE_ROWS).into_vec();
        picked.sort_unstable();
        picked
    };
    let features: Vec<usize> = (0..data.cols()).collect();
    fit_tree(data, &rows, &features, max_depth, prior, seed)
}

/// `trees` trees, each on its own bootstrap sample and column subset, grown in parallel,
/// then a Platt calibration fitted on their out-of-bag scores.
fn fit_forest(
    data: &Dataset,
    trees: usize,
    max_depth: u16,
    sample: usize,
    prior: f64,
    seed: u64,
) -> Result<Fitted, ModelError> {
    let bag = Bagging::new(data, sample);
    // Seeds are drawn before any work starts, so tree i is the same on any thread count.
    let mut master = ChaCha8Rng::seed_from_u64(seed);
    let seeds: Vec<u64> = (0..trees).map(|_| master.next_u64()).collect();
    let fitted: Vec<Tree> = seeds
        .par_iter()
        .map(|&tree_seed| {
            let (rows, features) = bag.draw(tree_seed);
            fit_tree(data, &rows, &features, max_depth, prior, tree_seed)
        })
        .collect::<Result<_, _>>()?;
    let platt = oob_platt(data, &fitted, &seeds, &bag, seed);
    Ok(Fitted::Forest {
        trees: fitted,
        platt,
    })
}

/// How each forest tree's rows and columns are drawn: `rows` bootstrap rows (with
/// replacement) and `features` columns (without), both from the tree's own seed, so the
/// draw can be repeated later to find a tree's out-of-bag rows.
struct Bagging {
    n: usize,
    cols: usize,
    rows: usize,
    features: usize,
}

impl Bagging {
    fn new(data: &Dataset, sample: usize) -> Self {
        let features =
            ((data.cols() as f64 * FOREST_FEATURE_FRACTION).ceil() as usize).clamp(1, data.cols());
        Self {
            n: data.rows(),
            cols: data.cols(),
            rows: forest_sample_size(sample, data.rows()),
            features,
        }
    }

    fn draw(&self, tree_seed: u64) -> (Vec<usize>, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(tree_seed);
        let rows = (0..self.rows)
            .map(|_| rng.random_range(0..self.n))
            .collect();
        let mut features = index::sample(&mut rng, self.cols, self.features).into_vec();
        features.sort_unstable();
        (rows, features)
    }
}

/// Averaging trees that each see only some columns pulls probabilities toward the base
/// rate (AUC is fine, log-loss suffers), so the forest's mean is recalibrated with Platt
/// scaling, fitted on out-of-bag scores: each row is scored only by the trees that did not
/// train on it, so the calibration is not fooled by in-sample optimism.
fn oob_platt(data: &Dataset, trees: &[Tree], seeds: &[u64], bag: &Bagging, seed: u64) -> Platt {
    let calib: Vec<usize> = if data.rows() <= MAX_CALIBRATION_ROWS {
        (0..data.rows()).collect()
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ CALIBRATION_SEED_SALT);
        let mut picked = index::sample(&mut rng, data.rows(), MAX_CALIBRATION_ROWS).into_vec();
        picked.sort_unstable();
        picked
    };
    // Per tree, its score for each calibration row it did not train on (NaN otherwise).
    // Collected in tree order and summed sequentially so the result is deterministic.
    let per_tree: Vec<Vec<f64>> = trees
        .par_iter()
        .zip(seeds)
        .map(|(tree, &tree_seed)| {
            let mut in_bag = vec![false; data.rows()];
            for i in bag.draw(tree_seed).0 {
                in_bag[i] = true;
            }
            calib
                .iter()
                .map(|&i| {
                    if in_bag[i] {
                        f64::NAN
                    } else {
                        tree.predict(data.row(i))
                    }
                })
                .collect()
        })
        .collect();
    let mut scores = Vec::with_capacity(calib.len());
    let mut labels = Vec::with_capacity(calib.len());
    for (k, &i) in calib.iter().enumerate() {
        let (sum, count) = per_tree
            .iter()
            .map(|scores| scores[k])
            .filter(|v| !v.is_nan())
            .fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
        if count > 0 {
            scores.push(sum / count as f64);
            labels.push(data.y[i]);
        }
    }
    Platt::fit(&scores, &labels)
}

fn forest_mean(trees: &[Tree], row: &[f64]) -> f64 {
    let sum: f64 = trees.iter().map(|t| t.predict(row)).sum();
    sum / trees.len() as f64
}

/// Platt scaling of a probability: `sigmoid(a · logit(p) + b)`. `a = 1, b = 0` is the
/// identity, used when there is nothing to fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Platt {
    pub a: f64,
    pub b: f64,
}

impl Platt {
    const IDENTITY: Platt = Platt { a: 1.0, b: 0.0 };

    fn apply(&self, p: f64) -> f64 {
        sigmoid(self.a * logit(p) + self.b)
    }

    /// Newton's method on the mean log-loss of `sigmoid(a·z + b)`, `z = logit(score)`. Two
    /// parameters, a convex loss: a few iterations converge. Falls back to the identity if
    /// a class is missing or the fit goes non-finite.
    fn fit(scores: &[f64], labels: &[bool]) -> Platt {
        let positives = labels.iter().filter(|&&y| y).count();
        if positives == 0 || positives == labels.len() {
            return Platt::IDENTITY;
        }
        let z: Vec<f64> = scores.iter().map(|&p| logit(p)).collect();
        let (mut a, mut b) = (1.0, 0.0);
        for _ in 0..PLATT_ITERATIONS {
            // Gradient and Hessian of the summed loss; a tiny ridge keeps the Hessian
            // invertible when z is (nearly) constant.
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) =
                (0.0, 0.0, PLATT_RIDGE, 0.0, PLATT_RIDGE);
            for (&zi, &yi) in z.iter().zip(labels) {
                let p = sigmoid(a * zi + b);
                let r = p - f64::from(u8::from(yi));
                let w = p * (1.0 - p);
                ga += r * zi;
                gb += r;
                haa += w * zi * zi;
                hab += w * zi;
                hbb += w;
            }
            let det = haa * hbb - hab * hab;
            if !det.is_finite() || det <= 0.0 {
                break;
            }
            let da = (hbb * ga - hab * gb) / det;
            let db = (haa * gb - hab * ga) / det;
            a -= da;
            b -= db;
            if da.abs() < 1e-9 && db.abs() < 1e-9 {
                break;
            }
        }
        if a.is_finite() && b.is_finite() && a > 0.0 {
            Platt { a, b }
        } else {
            Platt::IDENTITY
        }
    }
}

/// Log-odds with the probability clipped so 0 and 1 map to finite values.
fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

fn forest_sample_size(sample: usize, rows: usize) -> usize {
    let cap = rows.min(MAX_TREE_ROWS);
    if sample == 0 { cap } else { sample.min(cap) }
}

/// Grow a smartcore tree on `rows` (repeats allowed) × `features` of `data`, convert it,
/// and set each leaf to the smoothed positive rate of those rows.
fn fit_tree(
    data: &Dataset,
    rows: &[usize],
    features: &[usize],
    max_depth: u16,
    prior: f64,
    seed: u64,
) -> Result<Tree, ModelError> {
    let y: Vec<bool> = rows.iter().map(|&i| data.y[i]).collect();
    let positives = y.iter().filter(|&&b| b).count();
    // A bootstrap of a tiny or extremely unbalanced set can hold one class; smartcore
    // refuses that, and a constant leaf is the right answer anyway.
    if positives == 0 || positives == y.len() {
        return Ok(Tree::constant(smoothed(positives, y.len(), prior)));
    }
    let mut values = Vec::with_capacity(rows.len() * features.len());
    for &i in rows {
        let row = data.row(i);
        values.extend(features.iter().map(|&f| row[f]));
    }
    let x = dense(rows.len(), features.len(), values)?;
    let params = DecisionTreeClassifierParameters {
        max_depth: Some(max_depth),
        min_samples_leaf: MIN_SAMPLES_LEAF,
        seed: Some(seed),
        ..Default::default()
    };
    let fitted = DecisionTreeClassifier::<f64, u32, DenseMatrix<f64>, Vec<u32>>::fit(
        &x,
        &labels_u32(&y),
        params,
    )
    .map_err(|e| ModelError::Fit(e.to_string()))?;
    let raw = serde_json::to_value(&fitted)
        .and_then(serde_json::from_value::<RawTree>)
        .map_err(|e| ModelError::TreeLayout(e.to_string()))?;
    let mut tree = convert_tree(&raw, features)?;
    set_leaf_values(&mut tree, data, rows, prior);
    Ok(tree)
}

/// smartcore nodes → our nodes, mapping column positions in the tree's feature subset back
/// to dataset columns.
fn convert_tree(raw: &RawTree, features: &[usize]) -> Result<Tree, ModelError> {
    let bad = |what: &str, i: usize| ModelError::TreeLayout(format!("node {i}: {what}"));
    let mut nodes = Vec::with_capacity(raw.nodes.len());
    for (i, n) in raw.nodes.iter().enumerate() {
        let node = match (n.true_child, n.false_child) {
            // Leaf values are filled in by `set_leaf_values`; NaN would not survive JSON.
            (None, None) => Node::leaf(0.0),
            (Some(l), Some(r)) => {
                if l <= i || r <= i || l >= raw.nodes.len() || r >= raw.nodes.len() {
                    return Err(bad("child index out of order", i));
                }
                let threshold = n.split_value.ok_or_else(|| bad("split without value", i))?;
                let feature = *features
                    .get(n.split_feature)
                    .ok_or_else(|| bad("feature out of range", i))?;
                let as_u32 = |v: usize| u32::try_from(v).map_err(|_| bad("index too large", i));
                Node {
                    feature: as_u32(feature)?,
                    threshold,
                    left: as_u32(l)?,
                    right: as_u32(r)?,
                    value: 0.0,
                }
            }
            _ => return Err(bad("one child missing", i)),
        };
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(ModelError::TreeLayout("no nodes".into()));
    }
    Ok(Tree { nodes })
}

fn smoothed(positives: usize, total: usize, prior: f64) -> f64 {
    (positives as f64 + LEAF_SMOOTHING * prior) / (total as f64 + LEAF_SMOOTHING)
}

/// Route the training rows to leaves and store each leaf's smoothed positive rate. Leaves
/// no row reaches (not possible for rows the tree was grown on) fall back to the prior.
fn set_leaf_values(tree: &mut Tree, data: &Dataset, rows: &[usize], prior: f64) {
    let mut counts = vec![(0usize, 0usize); tree.nodes.len()];
    for &i in rows {
        if let Some(leaf) = tree.leaf_of(data.row(i)) {
            counts[leaf].0 += usize::from(data.y[i]);
            counts[leaf].1 += 1;
        }
    }
    for (node, (pos, total)) in tree.nodes.iter_mut().zip(counts) {
        if node.is_leaf() {
            node.value = smoothed(pos, total, prior);
        }
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl Model {
    /// P(true) for each complete row of `x` (row-major, the training columns in order).
    /// Non-finite values are replaced by the training column mean. A trailing partial row is
    /// ignored; [`Model::try_predict_proba`] reports it instead.
    pub fn predict_proba(&self, x: &[f64]) -> Vec<f64> {
        let c = self.columns.len().max(1);
        x.par_chunks_exact(c)
            .map(|row| self.predict_row(row))
            .collect()
    }

    /// Like [`Model::predict_proba`], but fails unless `x` is whole rows.
    pub fn try_predict_proba(&self, x: &[f64]) -> Result<Vec<f64>, ModelError> {
        let c = self.columns.len();
        if c == 0 || !x.len().is_multiple_of(c) {
            return Err(ModelError::Shape(format!(
                "{} values is not a whole number of {c}-column rows",
                x.len()
            )));
        }
        Ok(self.predict_proba(x))
    }

    fn predict_row(&self, row: &[f64]) -> f64 {
        let row = self.standardizer.impute(row);
        match &self.fitted {
            Fitted::Logistic { weights, intercept } => {
                let s = &self.standardizer;
                let z: f64 = row
                    .iter()
                    .zip(weights)
                    .zip(s.mean.iter().zip(&s.std))
                    .map(|((v, w), (m, sd))| w * (v - m) / sd)
                    .sum();
                sigmoid(z + intercept)
            }
            Fitted::Tree(tree) => tree.predict(&row),
            Fitted::Forest { trees, platt } => platt.apply(forest_mean(trees, &row)),
        }
    }

    /// "logistic_regression", "decision_tree" or "random_forest".
    pub fn algorithm_name(&self) -> &str {
        self.algorithm.name()
    }

    pub fn algorithm(&self) -> &Algorithm {
        &self.algorithm
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The algorithm's parameters and the fixed settings it was trained with, for storing
    /// next to the model.
    pub fn params_json(&self) -> serde_json::Value {
        let mut params = serde_json::json!({
            "algorithm": self.algorithm_name(),
            "seed": self.seed,
            "columns": self.columns,
            "train_rows": self.train_rows,
            "train_positive_rate": self.train_positive_rate,
        });
        let extra = match self.algorithm {
            Algorithm::LogisticRegression => serde_json::json!({ "l2_alpha": LOGISTIC_ALPHA }),
            Algorithm::DecisionTree { max_depth } => serde_json::json!({
                "max_depth": max_depth,
                "max_rows": MAX_TREE_ROWS,
                "min_samples_leaf": MIN_SAMPLES_LEAF,
                "leaf_smoothing": LEAF_SMOOTHING,
            }),
            Algorithm::RandomForest {
                trees,
                max_depth,
                sample,
            } => serde_json::json!({
                "trees": trees,
                "max_depth": max_depth,
                "sample": sample,
                "rows_per_tree": forest_sample_size(sample, self.train_rows),
                "feature_fraction": FOREST_FEATURE_FRACTION,
                "platt": self.platt(),
                "min_samples_leaf": MIN_SAMPLES_LEAF,
                "leaf_smoothing": LEAF_SMOOTHING,
            }),
        };
        if let (Some(p), serde_json::Value::Object(e)) = (params.as_object_mut(), extra) {
            p.extend(e);
        }
        params
    }

    /// Logistic-regression coefficients per column, on standardised columns (so their sizes
    /// compare); `None` for tree models.
    pub fn coefficients(&self) -> Option<Vec<(String, f64)>> {
        match &self.fitted {
            Fitted::Logistic { weights, .. } => Some(
                self.columns
                    .iter()
                    .cloned()
                    .zip(weights.iter().copied())
                    .collect(),
            ),
            Fitted::Tree(_) | Fitted::Forest { .. } => None,
        }
    }

    /// The forest's out-of-bag Platt calibration; `None` for other models.
    pub fn platt(&self) -> Option<Platt> {
        match &self.fitted {
            Fitted::Forest { platt, .. } => Some(*platt),
            _ => None,
        }
    }

    /// Total nodes over all trees (0 for logistic regression): a size check.
    pub fn node_count(&self) -> usize {
        match &self.fitted {
            Fitted::Logistic { .. } => 0,
            Fitted::Tree(tree) => tree.node_count(),
            Fitted::Forest { trees, .. } => trees.iter().map(Tree::node_count).sum(),
        }
    }
}

/// How a model scores on a labelled dataset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub auc: f64,
    pub log_loss: f64,
    pub lift_top_decile: f64,
    pub positives: usize,
    pub rows: usize,
}

/// Score `data` with `model` and measure it. Metrics are NaN where undefined (e.g. AUC on
/// one class). `data` must have the model's columns; only whole rows are scored.
pub fn evaluate(model: &Model, data: &Dataset) -> Evaluation {
    let probs = model.predict_proba(&data.x);
    Evaluation {
        auc: metrics::auc(&probs, &data.y),
        log_loss: metrics::log_loss(&probs, &data.y),
        lift_top_decile: metrics::lift_top_decile(&probs, &data.y),
        positives: data.positives(),
        rows: data.rows(),
    }
}

/// The promotion rule: should `challenger` replace `champion`? Both must be evaluated on
/// the same holdout.
///
/// - A challenger with an undefined (NaN) AUC never wins; one with a defined AUC beats a
///   champion whose AUC is undefined.
/// - AUC higher by more than `PROMOTION_AUC_MARGIN` (0.001): promote.
/// - AUC lower by more than the margin: keep the champion.
/// - Otherwise the AUCs are a tie and log-loss decides: promote only if the challenger's is
///   lower by more than `PROMOTION_LOG_LOSS_MARGIN` (0.001). An exact tie keeps the champion,
///   so retraining on unchanged data does not churn the model.
pub fn beats(challenger: &Evaluation, champion: &Evaluation) -> bool {
    if challenger.auc.is_nan() {
        return false;
    }
    if champion.auc.is_nan() {
        return true;
    }
    let auc_gain = challenger.auc - champion.auc;
    if auc_gain > PROMOTION_AUC_MARGIN {
        return true;
    }
    if auc_gain < -PROMOTION_AUC_MARGIN {
        return false;
    }
    match (challenger.log_loss.is_nan(), champion.log_loss.is_nan()) {
        (true, _) => false,
        (false, true) => true,
        (false, false) => challenger.log_loss < champion.log_loss - PROMOTION_LOG_LOSS_MARGIN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` rows of 4 columns. The label is `x0 + 0.5·x1 > 0` (plus label noise when
    /// `noise > 0`); x2 and x3 are pure noise.
    fn toy(n: usize, noise: f64, seed: u64) -> Dataset {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut x = Vec::with_capacity(n * 4);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let row: [f64; 4] = std::array::from_fn(|_| rng.random_range(-1.0..1.0));
            let flip = rng.random::<f64>() < noise;
            y.push((row[0] + 0.5 * row[1] > 0.0) != flip);
            x.extend_from_slice(&row);
        }
        let columns = ["a", "b", "c", "d"].map(String::from).to_vec();
        Dataset::new(columns, x, y).unwrap()
    }

    fn algorithms() -> Vec<Algorithm> {
        vec![
            Algorithm::LogisticRegression,
            Algorithm::DecisionTree { max_depth: 6 },
            Algorithm::RandomForest {
                trees: 12,
                max_depth: 6,
                sample: 300,
            },
        ]
    }

    #[test]
    fn each_model_learns_a_separable_problem() {
        let train_set = toy(600, 0.0, 1);
        let test_set = toy(400, 0.0, 2);
        for algorithm in algorithms() {
            let model = train(&algorithm, &train_set, 7).unwrap();
            let eval = evaluate(&model, &test_set);
            assert!(eval.auc > 0.9, "{algorithm:?}: {eval:?}");
            assert!(eval.log_loss < 0.5, "{algorithm:?}: {eval:?}");
            assert!(eval.lift_top_decile > 1.5, "{algorithm:?}: {eval:?}");
            assert_eq!(eval.rows, 400);
            let probs = model.predict_proba(&test_set.x);
            assert!(probs.iter().all(|p| (0.0..=1.0).contains(p)));
        }
    }

    #[test]
    fn forest_is_deterministic_for_a_seed() {
        let data = toy(500, 0.1, 3);
        let algorithm = Algorithm::RandomForest {
            trees: 8,
            max_depth: 5,
            sample: 400,
        };
        let a = train(&algorithm, &data, 42).unwrap();
        let b = train(&algorithm, &data, 42).unwrap();
        let c = train(&algorithm, &data, 43).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.predict_proba(&data.x), b.predict_proba(&data.x));
        assert_ne!(a.predict_proba(&data.x), c.predict_proba(&data.x));
    }

    #[test]
    fn models_round_trip_through_json() {
        let data = toy(400, 0.05, 4);
        for algorithm in algorithms() {
            let model = train(&algorithm, &data, 5).unwrap();
            let json = serde_json::to_string(&model).unwrap();
            let back: Model = serde_json::from_str(&json).unwrap();
            // serde_json (without its `float_roundtrip` feature) may parse a float one ulp
            // off, so compare to within rounding rather than bit for bit.
            let (before, after) = (model.predict_proba(&data.x), back.predict_proba(&data.x));
            assert_eq!(before.len(), after.len());
            for (a, b) in before.iter().zip(&after) {
                assert!((a - b).abs() < 1e-12, "{algorithm:?}: {a} vs {b}");
            }
            assert_eq!(back.algorithm_name(), algorithm.name());
            assert_eq!(back.params_json(), model.params_json());
        }
    }

    #[test]
    fn tree_matches_smartcore() {
        // Our converted tree must route rows exactly as smartcore does: compare the leaf's
        // majority class with smartcore's own prediction (no smoothing: prior 0.5, so
        // value > 0.5 iff positives outnumber negatives, ties aside).
        let data = toy(300, 0.2, 6);
        let x = dense(data.rows(), data.cols(), data.x.clone()).unwrap();
        let y = labels_u32(&data.y);
        let params = DecisionTreeClassifierParameters {
            max_depth: Some(5),
            min_samples_leaf: MIN_SAMPLES_LEAF,
            ..Default::default()
        };
        let fitted =
            DecisionTreeClassifier::<f64, u32, DenseMatrix<f64>, Vec<u32>>::fit(&x, &y, params)
                .unwrap();
        let expected = fitted.predict(&x).unwrap();
        let raw: RawTree = serde_json::from_value(serde_json::to_value(&fitted).unwrap()).unwrap();
        let mut tree = convert_tree(&raw, &[0, 1, 2, 3]).unwrap();
        let rows: Vec<usize> = (0..data.rows()).collect();
        set_leaf_values(&mut tree, &data, &rows, 0.5);
        for (i, &class) in expected.iter().enumerate() {
            let p = tree.predict(data.row(i));
            if (p - 0.5).abs() > 1e-12 {
                assert_eq!(u32::from(p > 0.5), class, "row {i}: p = {p}");
            }
        }
    }

    #[test]
    fn forest_features_map_back_to_dataset_columns() {
        // Only column 3 carries the signal; trees that were given column 3 must split on
        // it under its dataset index.
        let mut data = toy(400, 0.0, 8);
        for i in 0..data.rows() {
            data.x[i * 4 + 3] = if data.y[i] { 1.0 } else { -1.0 };
        }
        let model = train(
            &Algorithm::RandomForest {
                trees: 10,
                max_depth: 3,
                sample: 0,
            },
            &data,
            1,
        )
        .unwrap();
        let Fitted::Forest { trees, .. } = &model.fitted else {
            panic!("forest expected");
        };
        assert!(
            trees
                .iter()
                .any(|t| t.nodes[0].feature == 3 && !t.nodes[0].is_leaf())
        );
        assert!(evaluate(&model, &data).auc > 0.99);
    }

    #[test]
    fn logistic_coefficients_point_the_right_way() {
        let model = train(&Algorithm::LogisticRegression, &toy(500, 0.0, 9), 0).unwrap();
        let coefs = model.coefficients().unwrap();
        assert!(coefs[0].1 > coefs[1].1 && coefs[1].1 > 0.0, "{coefs:?}");
        assert!(coefs[2].1.abs() < coefs[1].1 && coefs[3].1.abs() < coefs[1].1);
    }

    #[test]
    fn non_finite_values_are_rejected_in_training_and_imputed_in_scoring() {
        let mut data = toy(100, 0.0, 10);
        data.x[5] = f64::NAN;
        match train(&Algorithm::LogisticRegression, &data, 0) {
            Err(ModelError::NonFinite { row: 1, column }) => assert_eq!(column, "b"),
            other => panic!("unexpected {other:?}"),
        }
        data.x[5] = 0.0;
        let model = train(&Algorithm::DecisionTree { max_depth: 3 }, &data, 0).unwrap();
        let p = model.predict_proba(&[f64::NAN, f64::INFINITY, 0.0, 0.0]);
        assert!(p[0].is_finite());
    }

    #[test]
    fn bad_inputs_are_errors() {
        let data = toy(50, 0.0, 11);
        let one_class = Dataset::new(data.columns.clone(), data.x.clone(), vec![true; 50]).unwrap();
        assert!(matches!(
            train(&Algorithm::LogisticRegression, &one_class, 0),
            Err(ModelError::SingleClass)
        ));
        assert!(matches!(
            train(&Algorithm::DecisionTree { max_depth: 0 }, &data, 0),
            Err(ModelError::InvalidParams(_))
        ));
        let too_many = Algorithm::RandomForest {
            trees: MAX_TREES + 1,
            max_depth: 4,
            sample: 10,
        };
        assert!(matches!(
            train(&too_many, &data, 0),
            Err(ModelError::InvalidParams(_))
        ));
        assert!(Dataset::new(data.columns.clone(), vec![1.0; 7], vec![true; 2]).is_err());
        let model = train(&Algorithm::LogisticRegression, &data, 0).unwrap();
        assert!(model.try_predict_proba(&[1.0; 5]).is_err());
        assert_eq!(model.predict_proba(&[1.0; 5]).len(), 1);
    }

    #[test]
    fn split_is_stratified_and_deterministic() {
        let data = toy(1000, 0.0, 12);
        let (train_a, test_a) = data.split(0.25, 3);
        let (train_b, test_b) = data.split(0.25, 3);
        assert_eq!(train_a, train_b);
        assert_eq!(test_a, test_b);
        assert_eq!(train_a.rows() + test_a.rows(), 1000);
        let rate = |d: &Dataset| d.positives() as f64 / d.rows() as f64;
        assert!((rate(&train_a) - rate(&test_a)).abs() < 0.01);
    }

    #[test]
    fn params_json_names_the_settings() {
        let data = toy(200, 0.0, 13);
        let algorithm = Algorithm::RandomForest {
            trees: 3,
            max_depth: 4,
            sample: 150,
        };
        let params = train(&algorithm, &data, 9).unwrap().params_json();
        assert_eq!(params["algorithm"], "random_forest");
        assert_eq!(params["trees"], 3);
        assert_eq!(params["rows_per_tree"], 150);
        assert_eq!(params["seed"], 9);
    }

    #[test]
    fn platt_recovers_a_known_distortion() {
        // Scores whose true positive rate is sigmoid(2·logit(s) + 0.5): Platt should find
        // a ≈ 2, b ≈ 0.5 (up to rounding of the counts).
        let (mut scores, mut labels) = (Vec::new(), Vec::new());
        for s in [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8] {
            let positives = (1000.0 * sigmoid(2.0 * logit(s) + 0.5)).round() as usize;
            for i in 0..1000 {
                scores.push(s);
                labels.push(i < positives);
            }
        }
        let platt = Platt::fit(&scores, &labels);
        assert!(
            (platt.a - 2.0).abs() < 0.02 && (platt.b - 0.5).abs() < 0.02,
            "{platt:?}"
        );
        assert_eq!(Platt::fit(&[0.3, 0.4], &[true, true]), Platt::IDENTITY);
        assert!((Platt::IDENTITY.apply(0.3) - 0.3).abs() < 1e-12);
    }

    fn eval(auc: f64, log_loss: f64) -> Evaluation {
        Evaluation {
            auc,
            log_loss,
            lift_top_decile: 1.0,
            positives: 10,
            rows: 100,
        }
    }

    #[test]
    fn promotion_rule() {
        // Clear AUC win or loss decides regardless of log-loss.
        assert!(beats(&eval(0.80, 0.9), &eval(0.79, 0.3)));
        assert!(!beats(&eval(0.79, 0.1), &eval(0.80, 0.5)));
        // AUC within 0.001: log-loss must improve by more than 0.001.
        assert!(beats(&eval(0.8005, 0.40), &eval(0.8, 0.45)));
        assert!(!beats(&eval(0.8005, 0.4495), &eval(0.8, 0.45)));
        assert!(!beats(&eval(0.7995, 0.46), &eval(0.8, 0.45)));
        // Identical: the champion stays.
        assert!(!beats(&eval(0.8, 0.45), &eval(0.8, 0.45)));
        // Undefined metrics.
        assert!(!beats(&eval(f64::NAN, 0.1), &eval(0.6, 0.5)));
        assert!(beats(&eval(0.6, 0.5), &eval(f64::NAN, 0.1)));
    }
}
