//! Implicit interaction matrix in compressed sparse row form, stored twice:
//! by user (rows = users) and by item (rows = items).

use serde::{Deserialize, Serialize};

/// One implicit interaction (a purchase); `weight` is e.g. a count or quantity.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    pub user: u32,
    pub item: u32,
    pub weight: f32,
}

/// Compressed sparse rows: row `r` has columns `indices[indptr[r]..indptr[r+1]]`
/// (strictly ascending) with values in `data`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Csr {
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub data: Vec<f32>,
}

impl Csr {
    pub fn n_rows(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }

    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Columns and values of row `r` (empty when out of range).
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        match (self.indptr.get(r), self.indptr.get(r + 1)) {
            (Some(&a), Some(&b)) => (&self.indices[a..b], &self.data[a..b]),
            _ => (&[], &[]),
        }
    }

    /// Builds from `(row, col, value)` triples by counting sort, summing
    /// duplicates; rows >= n_rows or cols >= n_cols are dropped.
    fn build(
        n_rows: usize,
        n_cols: usize,
        triples: impl Iterator<Item = (u32, u32, f32)> + Clone,
    ) -> Csr {
        let mut counts = vec![0usize; n_rows + 1];
        for (r, c, _) in triples.clone() {
            if (r as usize) < n_rows && (c as usize) < n_cols {
                counts[r as usize + 1] += 1;
            }
        }
        for i in 0..n_rows {
            counts[i + 1] += counts[i];
        }
        let total = counts[n_rows];
        let mut next = counts.clone();
        let mut indices = vec![0u32; total];
        let mut data = vec![0f32; total];
        for (r, c, v) in triples {
            if (r as usize) < n_rows && (c as usize) < n_cols {
                let p = next[r as usize];
                indices[p] = c;
                data[p] = v;
                next[r as usize] += 1;
            }
        }
        // sort each row by column and merge duplicates, compacting in place
        let mut out_ptr = Vec::with_capacity(n_rows + 1);
        out_ptr.push(0usize);
        let mut write = 0usize;
        let mut pairs: Vec<(u32, f32)> = Vec::new();
        for r in 0..n_rows {
            let (a, b) = (counts[r], counts[r + 1]);
            pairs.clear();
            pairs.extend(
                indices[a..b]
                    .iter()
                    .copied()
                    .zip(data[a..b].iter().copied()),
            );
            if !pairs.windows(2).all(|w| w[0].0 < w[1].0) {
                pairs.sort_by_key(|p| p.0);
            }
            let mut last: Option<u32> = None;
            for &(c, v) in &pairs {
                if last == Some(c) {
                    data[write - 1] += v;
                } else {
                    indices[write] = c;
                    data[write] = v;
                    write += 1;
                    last = Some(c);
                }
            }
            out_ptr.push(write);
        }
        indices.truncate(write);
        data.truncate(write);
        indices.shrink_to_fit();
        data.shrink_to_fit();
        Csr {
            indptr: out_ptr,
            indices,
            data,
        }
    }
}

/// The user-item matrix, by user and by item.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Interactions {
    pub n_users: usize,
    pub n_items: usize,
    pub by_user: Csr,
    pub by_item: Csr,
}

impl Interactions {
    /// Builds the matrix, summing duplicate (user, item) weights. Interactions
    /// with ids out of range or a non-finite or non-positive weight are ignored.
    pub fn new(n_users: usize, n_items: usize, interactions: &[Interaction]) -> Self {
        let valid = |x: &&Interaction| x.weight.is_finite() && x.weight > 0.0;
        let by_user = Csr::build(
            n_users,
            n_items,
            interactions
                .iter()
                .filter(valid)
                .map(|x| (x.user, x.item, x.weight)),
        );
        // transpose from the merged by-user form (cheaper than re-sorting)
        let by_item = Csr::build(
            n_items,
            n_users,
            (0..n_users).flat_map(|u| {
                let (items, w) = by_user.row(u);
                items.iter().zip(w).map(move |(&i, &v)| (i, u as u32, v))
            }),
        );
        Interactions {
            n_users,
            n_items,
            by_user,
            by_item,
        }
    }

    /// Number of stored (merged) interactions.
    pub fn nnz(&self) -> usize {
        self.by_user.nnz()
    }

    /// The user's history as `(item, weight)` sorted by item.
    pub fn user_history(&self, user: u32) -> Vec<(u32, f32)> {
        let (i, w) = self.by_user.row(user as usize);
        i.iter().copied().zip(w.iter().copied()).collect()
    }

    /// A copy with every weight transformed by `f` (e.g. `|w| 1.0` for binary
    /// or `f32::ln_1p`).
    pub fn map_weights(&self, f: impl Fn(f32) -> f32) -> Interactions {
        let mut out = self.clone();
        out.by_user.data.iter_mut().for_each(|w| *w = f(*w));
        out.by_item.data.iter_mut().for_each(|w| *w = f(*w));
        out
    }

    /// Approximate heap bytes of both CSR copies.
    pub fn heap_bytes(&self) -> usize {
        (self.by_user.indptr.len() + self.by_item.indptr.len()) * 8 + self.nnz() * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_both_orientations_and_sums_duplicates() {
        let x = [
            Interaction {
                user: 1,
                item: 2,
                weight: 1.0,
            },
            Interaction {
                user: 0,
                item: 1,
                weight: 2.0,
            },
            Interaction {
                user: 1,
                item: 0,
                weight: 1.0,
            },
            Interaction {
                user: 1,
                item: 2,
                weight: 3.0,
            },
            Interaction {
                user: 5,
                item: 0,
                weight: 1.0,
            }, // out of range
            Interaction {
                user: 0,
                item: 0,
                weight: f32::NAN,
            },
        ];
        let m = Interactions::new(2, 3, &x);
        assert_eq!(m.nnz(), 3);
        assert_eq!(m.user_history(1), vec![(0, 1.0), (2, 4.0)]);
        assert_eq!(m.by_item.row(2), (&[1u32][..], &[4.0f32][..]));
        assert_eq!(m.by_item.row(1), (&[0u32][..], &[2.0f32][..]));
    }
}
