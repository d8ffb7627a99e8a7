//! The job DAG: topological order, cycle reports that name the jobs, layers, and pictures
//! (an ASCII tree for terminals, Graphviz DOT for everything else).
//!
//! Nodes are indices into a list of `(name, upstream indices)`, so this module works for specs
//! and for runs alike.

use std::fmt::Write as _;

/// A dependency cycle, as the job names along it (the first name is not repeated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(pub Vec<String>);

impl std::fmt::Display for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut path = self.0.clone();
        if let Some(first) = self.0.first() {
            path.push(first.clone());
        }
        write!(f, "{}", path.join(" -> "))
    }
}

type Edges = [(String, Vec<usize>)];

fn downstreams(edges: &Edges) -> Vec<Vec<usize>> {
    let mut down = vec![Vec::new(); edges.len()];
    for (node, (_, ups)) in edges.iter().enumerate() {
        for &up in ups {
            down[up].push(node);
        }
    }
    down
}

/// Kahn's algorithm, stable: among jobs that are free at the same time, file order wins.
pub fn topo_order(edges: &Edges) -> Result<Vec<usize>, Cycle> {
    let down = downstreams(edges);
    let mut indegree: Vec<usize> = edges.iter().map(|(_, ups)| ups.len()).collect();
    let mut ready: std::collections::BTreeSet<usize> =
        (0..edges.len()).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(edges.len());
    while let Some(node) = ready.pop_first() {
        order.push(node);
        for &d in &down[node] {
            indegree[d] -= 1;
            if indegree[d] == 0 {
                ready.insert(d);
            }
        }
    }
    if order.len() == edges.len() {
        Ok(order)
    } else {
        Err(find_cycle(edges, &indegree))
    }
}

/// Walks upstream links among the nodes Kahn could not free; every such node has an
/// unfreed upstream, so the walk must revisit a node, and the revisited stretch is a cycle.
fn find_cycle(edges: &Edges, indegree: &[usize]) -> Cycle {
    let stuck = |i: usize| indegree[i] > 0;
    let Some(start) = (0..edges.len()).find(|&i| stuck(i)) else {
        return Cycle(Vec::new());
    };
    let mut path = vec![start];
    let mut node = start;
    loop {
        let Some(&next) = edges[node].1.iter().find(|&&u| stuck(u)) else {
            return Cycle(vec![edges[node].0.clone()]);
        };
        if let Some(pos) = path.iter().position(|&p| p == next) {
            // `path` follows upstream links; reverse it so the cycle reads in run order.
            let mut cycle: Vec<String> = path[pos..].iter().map(|&i| edges[i].0.clone()).collect();
            cycle.reverse();
            return Cycle(cycle);
        }
        path.push(next);
        node = next;
    }
}

/// The layer of each node: 0 for roots, else one more than its deepest upstream.
pub fn layers(edges: &Edges) -> Result<Vec<usize>, Cycle> {
    let order = topo_order(edges)?;
    let mut layer = vec![0; edges.len()];
    for node in order {
        layer[node] = edges[node]
            .1
            .iter()
            .map(|&u| layer[u] + 1)
            .max()
            .unwrap_or(0);
    }
    Ok(layer)
}

/// An ASCII tree from the roots downward; a job reached a second time is marked instead of
/// repeated, so diamonds stay readable.
///
/// ```text
/// extract
/// └─> transform
///     ├─> load-a
///     └─> load-b
/// ```
pub fn render_tree(edges: &Edges) -> String {
    let down = downstreams(edges);
    let mut out = String::new();
    let mut seen = vec![false; edges.len()];
    let roots: Vec<usize> = (0..edges.len())
        .filter(|&i| edges[i].1.is_empty())
        .collect();
    for root in roots {
        draw(edges, &down, root, "", None, &mut seen, &mut out);
    }
    out
}

fn draw(
    edges: &Edges,
    down: &[Vec<usize>],
    node: usize,
    prefix: &str,
    last: Option<bool>,
    seen: &mut [bool],
    out: &mut String,
) {
    let (branch, child_prefix) = match last {
        None => (String::new(), String::new()),
        Some(true) => (format!("{prefix}└─> "), format!("{prefix}    ")),
        Some(false) => (format!("{prefix}├─> "), format!("{prefix}│   ")),
    };
    let name = &edges[node].0;
    let ups = edges[node].1.len();
    if seen[node] {
        let _ = writeln!(out, "{branch}{name} (see above)");
        return;
    }
    seen[node] = true;
    let joins = if ups > 1 {
        let names: Vec<&str> = edges[node].1.iter().map(|&u| edges[u].0.as_str()).collect();
        format!("   [after {}]", names.join(", "))
    } else {
        String::new()
    };
    let _ = writeln!(out, "{branch}{name}{joins}");
    let children = &down[node];
    for (i, &child) in children.iter().enumerate() {
        draw(
            edges,
            down,
            child,
            &child_prefix,
            Some(i + 1 == children.len()),
            seen,
            out,
        );
    }
}

/// Graphviz DOT, for `dot -Tsvg`.
pub fn render_dot(pipeline: &str, edges: &Edges) -> String {
    let mut out = format!(
        "digraph {:?} {{\n  rankdir=LR;\n  node [shape=box];\n",
        pipeline
    );
    for (name, _) in edges {
        let _ = writeln!(out, "  {name:?};");
    }
    for (name, ups) in edges {
        for &u in ups {
            let _ = writeln!(out, "  {:?} -> {name:?};", edges[u].0);
        }
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(spec: &[(&str, &[usize])]) -> Vec<(String, Vec<usize>)> {
        spec.iter()
            .map(|(n, ups)| ((*n).to_owned(), ups.to_vec()))
            .collect()
    }

    #[test]
    fn topo_order_puts_upstreams_first_and_keeps_file_order() {
        // d after b and c; b and c after a.
        let edges = g(&[("d", &[1, 2]), ("b", &[3]), ("c", &[3]), ("a", &[])]);
        let order = topo_order(&edges).unwrap();
        let names: Vec<&str> = order.iter().map(|&i| edges[i].0.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
    }

    #[test]
    fn cycle_is_named_in_run_order() {
        // a -> b -> c -> a, plus a free root r.
        let edges = g(&[("r", &[]), ("a", &[3]), ("b", &[1]), ("c", &[2])]);
        let cycle = topo_order(&edges).unwrap_err();
        assert_eq!(cycle.0.len(), 3);
        let text = cycle.to_string();
        // The cycle may start anywhere, but must follow a -> b -> c.
        assert!(
            ["a -> b -> c -> a", "b -> c -> a -> b", "c -> a -> b -> c"].contains(&text.as_str()),
            "{text}"
        );
    }

    #[test]
    fn self_loop_is_a_cycle() {
        let edges = g(&[("a", &[0])]);
        assert_eq!(topo_order(&edges).unwrap_err().to_string(), "a -> a");
    }

    #[test]
    fn layers_follow_the_longest_path() {
        let edges = g(&[("a", &[]), ("b", &[0]), ("c", &[0, 1])]);
        assert_eq!(layers(&edges).unwrap(), vec![0, 1, 2]);
    }

    #[test]
    fn tree_marks_a_diamond_join_once() {
        let edges = g(&[("a", &[]), ("b", &[0]), ("c", &[0]), ("d", &[1, 2])]);
        let tree = render_tree(&edges);
        assert_eq!(
            tree,
            "a\n├─> b\n│   └─> d   [after b, c]\n└─> c\n    └─> d (see above)\n"
        );
    }

    #[test]
    fn dot_lists_every_edge() {
        let edges = g(&[("a", &[]), ("b", &[0])]);
        let dot = render_dot("p", &edges);
        assert!(dot.contains("\"a\" -> \"b\";"), "{dot}");
    }
}
