//! Trees at and just past every limit of `wharf_domain::segment` (nodes, depth, `in` length,
//! values in all): each parses exactly when it is within the limits, the error names a limit it
//! passes, and every tree that parses compiles, plans and runs in DataFusion on the stacks the
//! binary gives queries, in the build CI runs (debug, whose stack frames are the largest).

use super::*;
use proptest::prelude::*;
use wharf_domain::segment::{MAX_DEPTH, MAX_LIST_VALUES, MAX_NODES, MAX_VALUES};

/// What a generated tree is made of.
#[derive(Debug, Clone)]
struct Shape {
    /// Levels of nesting, the root being level 1.
    depth: usize,
    /// Nodes in all: groups and conditions.
    nodes: usize,
    /// Lengths of `in` lists among the leaves.
    lists: Vec<usize>,
    /// The group at each level of the spine, from the root down (`and`, `or`, `not`, or
    /// `related` with a `where`).
    spine: Vec<&'static str>,
    /// Picks where each extra leaf goes and what it tests.
    seed: u64,
}

impl Shape {
    /// Values the tree holds: one per list item, one per comparison leaf.
    fn values(&self, leaves: &[Value]) -> usize {
        leaves
            .iter()
            .map(|l| match &l["value"] {
                Value::Array(items) => items.len(),
                Value::Null => 0,
                _ => 1,
            })
            .sum()
    }
}

/// A condition valid on the people model; odd `i` has no value (`is_null`).
fn leaf(i: u64) -> Value {
    match i % 4 {
        0 => json!({"column": "name", "op": "contains", "value": format!("n{i}")}),
        1 => json!({"column": "price", "op": "is_null"}),
        2 => json!({"column": "select", "op": ">", "value": i % 7}),
        _ => json!({"column": "seen", "op": "is_not_null"}),
    }
}

/// A small deterministic generator, so a shape alone says which tree it is.
fn next(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    *state >> 33
}

/// Builds the tree: a spine of groups `depth - 1` levels deep ending in one leaf at `depth`,
/// then leaves hung on the spine's `and`/`or` groups until there are `nodes` nodes. The lists
/// are the first leaves. Returns the tree and its leaves.
fn build(shape: &Shape) -> (Value, Vec<Value>) {
    let mut state = shape.seed;
    let groups = shape.spine.len();
    let extra = shape.nodes.saturating_sub(groups + 1);
    let mut leaves: Vec<Value> = shape
        .lists
        .iter()
        .map(|&n| json!({"column": "id", "op": "in", "value": (0..n as i64).collect::<Vec<_>>()}))
        .collect();
    while leaves.len() < extra + 1 {
        leaves.push(leaf(next(&mut state)));
    }
    // Which spine level each leaf hangs under: the deepest group takes the first leaf (so the
    // depth is reached), the others go to a random `and`/`or` group.
    let open: Vec<usize> = (0..groups)
        .filter(|&g| matches!(shape.spine[g], "and" | "or"))
        .collect();
    let mut children: Vec<Vec<Value>> = vec![Vec::new(); groups];
    for (i, l) in leaves.iter().enumerate() {
        let at = if i == 0 || open.is_empty() {
            groups - 1
        } else {
            open[(next(&mut state) as usize) % open.len()]
        };
        children[at].push(l.clone());
    }
    let mut node: Option<Value> = None;
    for g in (0..groups).rev() {
        let mut kids = std::mem::take(&mut children[g]);
        if let Some(below) = node.take() {
            kids.push(below);
        }
        node = Some(match shape.spine[g] {
            "not" => json!({"not": kids.pop().unwrap_or(Value::Null)}),
            // The model related to itself: a subquery per level.
            "related" => json!({
                "related": "people",
                "on": [["id", "id"]],
                "where": kids.pop().unwrap_or(Value::Null),
            }),
            kind => json!({ kind: kids }),
        });
    }
    (node.unwrap_or_else(|| leaves[0].clone()), leaves)
}

fn shape() -> impl Strategy<Value = Shape> {
    let depth = prop_oneof![2 => (MAX_DEPTH - 2)..=(MAX_DEPTH + 1), 1 => 2usize..6];
    let nodes = prop_oneof![2 => (MAX_NODES - 2)..=(MAX_NODES + 1), 1 => 40usize..80];
    let lists = prop_oneof![
        2 => Just(vec![]),
        1 => ((MAX_LIST_VALUES - 1)..=(MAX_LIST_VALUES + 1)).prop_map(|n| vec![n]),
        1 => (-1i64..=1).prop_map(|d| {
            // Two lists that, with the comparison leaves, bring the total next to the limit.
            let half = MAX_VALUES / 2 - 300;
            vec![half, (half as i64 + d) as usize]
        }),
    ];
    (depth, nodes, lists, any::<u64>()).prop_flat_map(|(depth, nodes, lists, seed)| {
        let kinds = prop::sample::select(vec!["and", "or", "not", "related"]);
        // The root is a group that can hold many children; `not` appears below it.
        (
            prop::sample::select(vec!["and", "or"]),
            prop::collection::vec(kinds, depth - 2),
        )
            .prop_map(move |(root, rest)| {
                let mut spine = vec![root];
                spine.extend(rest);
                Shape {
                    depth,
                    nodes: nodes.max(depth),
                    lists: lists.clone(),
                    spine,
                    seed,
                }
            })
    })
}

/// Counts what `parse` counts, on the tree itself: nodes and the deepest level.
fn measure(tree: &Value, level: usize, nodes: &mut usize, depth: &mut usize) {
    *nodes += 1;
    *depth = (*depth).max(level);
    for key in ["and", "or"] {
        if let Some(kids) = tree[key].as_array() {
            for k in kids {
                measure(k, level + 1, nodes, depth);
            }
        }
    }
    for key in ["not", "where"] {
        if let Some(inner) = tree.get(key) {
            measure(inner, level + 1, nodes, depth);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 32, ..ProptestConfig::default() })]
    #[test]
    fn trees_near_the_limits_parse_exactly_within_them_and_run(shape in shape()) {
        let (tree, leaves) = build(&shape);
        let (mut nodes, mut depth) = (0, 0);
        measure(&tree, 1, &mut nodes, &mut depth);
        // The generator builds what it says it builds.
        prop_assert_eq!(depth, shape.depth);
        prop_assert_eq!(nodes, shape.nodes);
        let values = shape.values(&leaves);
        let longest = shape.lists.iter().copied().max().unwrap_or(0);
        let mut passed = Vec::new();
        if nodes > MAX_NODES { passed.push(format!("at most {MAX_NODES} nodes")); }
        if depth > MAX_DEPTH { passed.push(format!("nests at most {MAX_DEPTH} levels")); }
        if longest > MAX_LIST_VALUES { passed.push(format!("takes at most {MAX_LIST_VALUES} values")); }
        if values > MAX_VALUES { passed.push(format!("at most {MAX_VALUES} values in all")); }
        let what = format!("{nodes} nodes, {depth} levels, lists {:?}, {values} values", shape.lists);
        match parse(&tree) {
            Ok(_) => prop_assert!(passed.is_empty(), "accepted past a limit: {}", what),
            Err(e) => {
                let message = e.to_string();
                prop_assert!(
                    passed.iter().any(|p| message.contains(p.as_str())),
                    "{}: refused with {} (limits passed: {:?})", what, message, passed
                );
                return Ok(());
            }
        }
        let text = tree.to_string();
        let (count, planned) = crate::threads::block_on(async move {
            let (_dir, w) = warehouse().await;
            let m = models(&w).await;
            let compiled = compile_with(&m, &tree, Dialect::DataFusion).expect("compiles");
            let planned = w.plan_with(&compiled.sql, &compiled.params).await.map(|_| ());
            let count = w.count(&compiled.sql, &compiled.params).await;
            (count, planned)
        });
        prop_assert!(planned.is_ok(), "{}: {:?}\n{}", what, planned, &text[..text.len().min(400)]);
        prop_assert!(count.is_ok(), "{}: {:?}", what, count);
        prop_assert!(count.unwrap_or(0) <= 8, "at most the 8 people");
    }
}

/// The deepest parse: `related` (a subquery) at every level down to the depth limit.
#[test]
fn related_at_every_level_down_to_the_depth_limit_plans_and_runs() {
    let shape = Shape {
        depth: MAX_DEPTH,
        nodes: MAX_DEPTH,
        lists: vec![],
        spine: vec!["related"; MAX_DEPTH - 1],
        seed: 1,
    };
    let (tree, _) = build(&shape);
    let (mut nodes, mut depth) = (0, 0);
    measure(&tree, 1, &mut nodes, &mut depth);
    assert_eq!((nodes, depth), (MAX_DEPTH, MAX_DEPTH));
    parse(&tree).expect("within the limits");
    let count = crate::threads::block_on(async move {
        let (_dir, w) = warehouse().await;
        let m = models(&w).await;
        let compiled = compile_with(&m, &tree, Dialect::DataFusion).expect("compiles");
        w.count(&compiled.sql, &compiled.params).await
    });
    assert!(count.is_ok(), "{count:?}");
}
