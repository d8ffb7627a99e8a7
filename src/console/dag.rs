//! A run's DAG as layers: layer 0 holds the jobs with no upstream, each other job sits one
//! layer right of (or below) its deepest upstream. The Run detail view draws the layers as
//! columns or rows, and moves the selection through them.

use super::data::JobNode;
use crate::pipeline::graph;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dag {
    /// Job indices per layer, in file order within a layer.
    pub layers: Vec<Vec<usize>>,
    /// `(layer, position in layer)` of each job.
    pub place: Vec<(usize, usize)>,
    /// Every job, layer by layer: the order the selection moves in.
    pub order: Vec<usize>,
}

impl Dag {
    pub fn new(jobs: &[JobNode]) -> Self {
        let edges: Vec<(String, Vec<usize>)> = jobs
            .iter()
            .map(|j| {
                let ups = j
                    .after
                    .iter()
                    .copied()
                    .filter(|&u| u < jobs.len())
                    .collect();
                (j.name.clone(), ups)
            })
            .collect();
        // A stored spec was validated, so a cycle cannot happen; should one appear anyway,
        // one flat layer still shows every job.
        let layer_of = graph::layers(&edges).unwrap_or_else(|_| vec![0; jobs.len()]);
        let depth = layer_of.iter().copied().max().map_or(0, |m| m + 1);
        let mut layers = vec![Vec::new(); depth];
        let mut place = vec![(0, 0); jobs.len()];
        for (job, &layer) in layer_of.iter().enumerate() {
            place[job] = (layer, layers[layer].len());
            layers[layer].push(job);
        }
        let order = layers.iter().flatten().copied().collect();
        Self {
            layers,
            place,
            order,
        }
    }

    /// The job `delta` steps from `job` in layer order, stopping at the ends.
    pub fn step(&self, job: usize, delta: isize) -> Option<usize> {
        let pos = self.order.iter().position(|&j| j == job).unwrap_or(0);
        let last = self.order.len().checked_sub(1)?;
        let next = pos.saturating_add_signed(delta).min(last);
        self.order.get(next).copied()
    }

    /// The job in the neighbouring layer (`dir` -1: upstream side, +1: downstream side)
    /// nearest to `job`'s position; `job` itself at the edge.
    pub fn across(&self, job: usize, dir: isize) -> usize {
        let Some(&(layer, row)) = self.place.get(job) else {
            return job;
        };
        let Some(target) = layer.checked_add_signed(dir) else {
            return job;
        };
        match self.layers.get(target) {
            Some(jobs) if !jobs.is_empty() => jobs[row.min(jobs.len() - 1)],
            _ => job,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::entities::JobState;

    fn node(name: &str, after: &[usize]) -> JobNode {
        JobNode {
            name: name.to_owned(),
            kind: "noop".to_owned(),
            state: JobState::Waiting,
            after: after.to_vec(),
            attempts: Vec::new(),
            started_at: None,
            finished_at: None,
            error: None,
        }
    }

    #[test]
    fn layers_follow_the_deepest_upstream() {
        // orders, events -> clean -> features; report after orders and features.
        let jobs = [
            node("orders", &[]),
            node("events", &[]),
            node("clean", &[0, 1]),
            node("features", &[2]),
            node("report", &[0, 3]),
        ];
        let dag = Dag::new(&jobs);
        assert_eq!(dag.layers, vec![vec![0, 1], vec![2], vec![3], vec![4]]);
        assert_eq!(dag.order, vec![0, 1, 2, 3, 4]);
        assert_eq!(dag.step(0, 1), Some(1));
        assert_eq!(dag.step(4, 5), Some(4));
        assert_eq!(dag.step(0, -3), Some(0));
        assert_eq!(dag.across(1, 1), 2);
        assert_eq!(dag.across(2, -1), 0);
        assert_eq!(dag.across(0, -1), 0);
        assert_eq!(dag.across(4, 1), 4);
    }

    #[test]
    fn empty_and_broken_graphs_do_not_panic() {
        let dag = Dag::new(&[]);
        assert!(dag.layers.is_empty());
        assert_eq!(dag.step(0, 1), None);
        // An upstream index past the end is ignored.
        let dag = Dag::new(&[node("a", &[7])]);
        assert_eq!(dag.layers, vec![vec![0]]);
    }
}
