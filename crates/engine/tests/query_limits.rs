//! Model SQL near [`MAX_EXPRESSION_DEPTH`] and [`MAX_EXPANDED_NODES`]: chains of operators
//! (which the parser reads in a loop, so nothing else bounds them), wrapped in calls and in the
//! constructs the optimizer copies (`coalesce`, short `IN` lists, `BETWEEN`, `CASE`), in the
//! select list, `WHERE`, `CASE`, subqueries and CTEs. Every statement that is accepted plans
//! and runs on the stacks the binary gives queries, in the build CI runs (debug, the largest
//! stack frames); clearly deeper ones are refused with the depth, and only copying constructs
//! are refused for their size.

use futures::StreamExt as _;
use proptest::prelude::*;
use wharf_engine::{
    EngineError, EngineSettings, LocalWarehouse, MAX_EXPANDED_NODES, MAX_EXPRESSION_DEPTH,
    MAX_VALUE_BYTES, threads,
};

/// Operators of one precedence, so a chain of them is left-deep: one level per operator.
#[derive(Debug, Clone, Copy)]
enum Chain {
    /// `id + id - id ...`
    Sum,
    /// `id * 1 * 1 ...`
    Product,
    /// `id = 0 OR id = 1 ...`
    Any,
    /// `name || name ...`
    Concat,
}

/// Where the chain sits in the statement.
#[derive(Debug, Clone, Copy)]
enum Place {
    Select,
    Where,
    Case,
    Subquery,
    Cte,
}

/// What is wrapped around the chain, one level at a time.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wrap {
    /// A call that keeps one copy of its argument (`abs`, `lower`, `NOT (...)`).
    Call,
    /// `coalesce(x, default)`: the optimizer turns it into a `CASE` holding `x` twice.
    Coalesce,
    /// Boolean chains only: `(x) IN (true, false)`, inlined as two comparisons of `x`.
    ShortIn,
    /// Boolean chains only: `(x) BETWEEN false AND true`, two comparisons of `x`.
    Between,
    /// Boolean chains only: `CASE WHEN x THEN true ELSE false END`.
    Case,
}

impl Wrap {
    /// Levels of nesting one wrapper adds: a parenthesised operand is one more.
    fn levels(self, chain: Chain) -> usize {
        match (self, chain) {
            (Wrap::ShortIn | Wrap::Between, _) | (Wrap::Call, Chain::Any) => 2,
            _ => 1,
        }
    }
}

#[derive(Debug, Clone)]
struct Model {
    chain: Chain,
    place: Place,
    /// Wrapped around the chain, innermost first.
    wraps: Vec<Wrap>,
    /// Operands in the chain.
    terms: usize,
    /// Picks `+` or `-` in sums.
    seed: u64,
}

impl Model {
    /// The nesting the statement is built to have, give or take the place's own levels (at
    /// most 4: a comparison, a `CASE`, a negative literal, a call in each term).
    fn intended_depth(&self) -> usize {
        self.terms
            + self
                .wraps
                .iter()
                .map(|w| w.levels(self.chain))
                .sum::<usize>()
    }

    fn copies(&self) -> bool {
        self.wraps.iter().any(|w| *w != Wrap::Call)
    }

    fn sql(&self) -> String {
        let mut state = self.seed;
        let mut e = String::new();
        for i in 0..self.terms {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let term = match self.chain {
                Chain::Sum => "id".to_string(),
                Chain::Product => if i == 0 { "id" } else { "1" }.to_string(),
                Chain::Any => format!("id = {i}"),
                Chain::Concat => "name".to_string(),
            };
            if i > 0 {
                e.push_str(match self.chain {
                    Chain::Sum if state >> 63 == 1 => " - ",
                    Chain::Sum => " + ",
                    Chain::Product => " * ",
                    Chain::Any => " OR ",
                    Chain::Concat => " || ",
                });
            }
            e.push_str(&term);
        }
        for wrap in &self.wraps {
            e = match (wrap, self.chain) {
                (Wrap::Call, Chain::Sum | Chain::Product) => format!("abs({e})"),
                (Wrap::Call, Chain::Any) => format!("NOT ({e})"),
                (Wrap::Call, Chain::Concat) => format!("lower({e})"),
                (Wrap::Coalesce, Chain::Sum | Chain::Product) => format!("coalesce({e}, 0)"),
                (Wrap::Coalesce, Chain::Any) => format!("coalesce({e}, false)"),
                (Wrap::Coalesce, Chain::Concat) => format!("coalesce({e}, '')"),
                (Wrap::ShortIn, _) => format!("({e}) IN (true, false)"),
                (Wrap::Between, _) => format!("({e}) BETWEEN false AND true"),
                (Wrap::Case, _) => format!("CASE WHEN {e} THEN true ELSE false END"),
            };
        }
        let condition = match self.chain {
            Chain::Any => e.clone(),
            Chain::Concat => format!("{e} <> ''"),
            Chain::Sum | Chain::Product => format!("{e} > -1000000000"),
        };
        match self.place {
            Place::Select => format!("SELECT {e} AS x, id FROM people"),
            Place::Where => format!("SELECT id, name FROM people WHERE {condition}"),
            Place::Case => {
                format!(
                    "SELECT id, CASE WHEN {condition} THEN 'in' ELSE 'out' END AS x FROM people"
                )
            }
            Place::Subquery => format!("SELECT x FROM (SELECT {e} AS x FROM people) AS t"),
            Place::Cte => format!("WITH t AS (SELECT {e} AS x, id FROM people) SELECT * FROM t"),
        }
    }
}

fn model() -> impl Strategy<Value = Model> {
    let chain = prop_oneof![
        1 => Just(Chain::Sum),
        1 => Just(Chain::Product),
        2 => Just(Chain::Any),
        1 => Just(Chain::Concat)
    ];
    let place = prop_oneof![
        Just(Place::Select),
        Just(Place::Where),
        Just(Place::Case),
        Just(Place::Subquery),
        Just(Place::Cte)
    ];
    // Long chains near the depth limit, or short ones under many copying wrappers. The parser
    // itself refuses more than about 50 nested calls; stay under it.
    let size = prop_oneof![
        (-8i64..=8, 0usize..24).prop_map(|(d, w)| (
            (MAX_EXPRESSION_DEPTH as i64 + d) as usize,
            w,
            0usize
        )),
        (1usize..6, 0usize..4, 8usize..22).prop_map(|(t, w, c)| (t, w, c)),
        (900usize..1000, 0usize..2, 1usize..6).prop_map(|(t, w, c)| (t, w, c)),
    ];
    (chain, place, size, any::<u64>()).prop_flat_map(
        |(chain, place, (depth, calls, copies), seed)| {
            let copying = match chain {
                Chain::Any => prop::sample::select(vec![
                    Wrap::Coalesce,
                    Wrap::ShortIn,
                    Wrap::Between,
                    Wrap::Case,
                ])
                .boxed(),
                _ => Just(Wrap::Coalesce).boxed(),
            };
            (prop::collection::vec(copying, copies), Just(calls)).prop_map(
                move |(copying, calls)| {
                    // Calls and copying wrappers interleaved, innermost first.
                    let mut wraps = vec![Wrap::Call; calls];
                    for (i, w) in copying.into_iter().enumerate() {
                        wraps.insert((i * 7 + seed as usize) % (wraps.len() + 1), w);
                    }
                    let levels: usize = wraps.iter().map(|w| w.levels(chain)).sum();
                    Model {
                        chain,
                        place,
                        wraps,
                        terms: depth.saturating_sub(levels).max(1),
                        seed,
                    }
                },
            )
        },
    )
}

fn warehouse(dir: &std::path::Path) -> LocalWarehouse {
    let mut csv = String::from("id,name\n");
    for i in 0..50 {
        csv.push_str(&format!("{i},n{i}\n"));
    }
    std::fs::write(dir.join("people.csv"), csv).expect("write people.csv");
    threads::block_on(LocalWarehouse::open(
        dir,
        &EngineSettings::new(dir.join("spill")),
    ))
    .expect("open the warehouse")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, max_shrink_iters: 8, ..ProptestConfig::default() })]
    #[test]
    fn model_sql_near_the_depth_and_size_limits_is_refused_or_runs(m in model()) {
        let dir = tempfile::tempdir().expect("dir");
        let w = warehouse(dir.path());
        let sql = m.sql();
        let depth = m.intended_depth();
        let checked = w.check_model_sql(&sql);
        let planned = match checked {
            Ok(()) => threads::block_on(async { w.plan(&sql).await.map(|_| ()) }),
            Err(e) => Err(e),
        };
        match planned {
            Err(EngineError::TooDeep { depth: found, limit }) => {
                prop_assert_eq!(limit, MAX_EXPRESSION_DEPTH);
                prop_assert!(found > limit);
                prop_assert!(depth + 5 > MAX_EXPRESSION_DEPTH, "{:?}: refused at {}", m, found);
            }
            Err(EngineError::TooComplex { nodes, limit }) => {
                prop_assert_eq!(limit, MAX_EXPANDED_NODES);
                prop_assert!(nodes > limit);
                prop_assert!(m.copies(), "{:?}: only copying wrappers grow past the limit", m);
            }
            Err(other) => prop_assert!(false, "{:?}: {}", m, other),
            Ok(()) => {
                prop_assert!(depth <= MAX_EXPRESSION_DEPTH, "{:?}: accepted past the limit", m);
                // Every row is computed (a count alone may let the optimizer drop the column).
                let rows = threads::block_on(async {
                    let mut stream = w.query(&sql).await?;
                    let mut rows = 0;
                    while let Some(batch) = stream.next().await {
                        rows += batch?.num_rows();
                    }
                    Ok::<_, EngineError>(rows)
                });
                match rows {
                    Ok(rows) => prop_assert!(rows <= 50),
                    Err(e) => prop_assert!(false, "{:?}: accepted but failed: {}", m, e),
                }
            }
        }
    }
}

/// Nesting the parser reads recursively (calls, parentheses, subqueries), as deep as it
/// accepts: each either runs or is refused with an error, never a crash.
#[test]
fn calls_and_subqueries_nested_as_deep_as_the_parser_goes_run_or_are_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let w = warehouse(dir.path());
    let mut outcomes = Vec::new();
    for levels in [60, 120, 250, 300] {
        let calls = format!(
            "SELECT {}id{} AS x FROM people",
            "abs(".repeat(levels),
            ")".repeat(levels)
        );
        let mut subqueries = "SELECT id FROM people".to_string();
        for i in 0..levels / 2 {
            subqueries = format!("SELECT id FROM ({subqueries}) AS s{i}");
        }
        for sql in [calls, subqueries] {
            let result = w.check_model_sql(&sql).and_then(|()| {
                threads::block_on(async {
                    let mut stream = w.query(&sql).await?;
                    let mut rows = 0;
                    while let Some(batch) = stream.next().await {
                        rows += batch?.num_rows();
                    }
                    Ok::<_, EngineError>(rows)
                })
            });
            outcomes.push((levels, result.map_err(|e| e.code())));
        }
    }
    // Up to the parser's limit they run; past it they are refused as bad SQL.
    for (levels, outcome) in &outcomes {
        match outcome {
            Ok(rows) => assert_eq!(*rows, 50, "{levels}"),
            Err(code) => {
                assert!(*levels > 200, "{levels}: {code}");
                assert_eq!(*code, "query.sql", "{levels}");
            }
        }
    }
    assert!(outcomes[..4].iter().all(|(_, o)| o.is_ok()), "{outcomes:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, max_shrink_iters: 8, ..ProptestConfig::default() })]
    /// Values a few units either side of [`MAX_VALUE_BYTES`], in characters of every UTF-8
    /// width: `repeat` makes them when they fit (exactly: it knows its output's size) and
    /// refuses them before computing when they do not; `lpad` counts 4 bytes a character, the
    /// most one can take.
    #[test]
    fn values_near_the_size_limit_are_made_or_refused(
        unit in prop::sample::select(vec!["a", "é", "€", "🌍"]),
        k in -1i64..=1,
        pad in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().expect("dir");
        let w = warehouse(dir.path());
        // `bound` is what the function reckons before computing, `made` what it makes.
        let (sql, bound, made_bytes) = if pad {
            let n = (MAX_VALUE_BYTES / 4) as i64 + k;
            (format!("SELECT lpad('{unit}', {n}, '{unit}') AS v"), n as u64 * 4, n as u64 * unit.len() as u64)
        } else {
            let n = (MAX_VALUE_BYTES / unit.len() as u64) as i64 + k;
            let size = n as u64 * unit.len() as u64;
            (format!("SELECT repeat('{unit}', {n}) AS v"), size, size)
        };
        let made = threads::block_on(async {
            let mut stream = w.query(&sql).await?;
            let mut longest = 0;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                let column = batch.column(0);
                longest = longest.max(column.to_data().buffers().iter().map(|b| b.len()).max().unwrap_or(0));
            }
            Ok::<_, EngineError>(longest)
        });
        match made {
            Ok(bytes) => {
                prop_assert!(bound <= MAX_VALUE_BYTES, "{}: made past the limit", sql);
                prop_assert_eq!(bytes as u64, made_bytes, "{}", sql);
            }
            Err(e) => {
                prop_assert!(bound > MAX_VALUE_BYTES, "{}: refused at {} bytes: {}", sql, bound, e);
                prop_assert!(e.to_string().contains("over wharf's limit"), "{}", e);
            }
        }
    }
}
