//! What a planned query may cost DataFusion's optimizer before a single row is read.
//!
//! Some of the optimizer's rewrites copy a sub-expression: `coalesce(a, b)` becomes
//! `CASE WHEN a IS NOT NULL THEN a ELSE b END`, `x BETWEEN l AND h` becomes `x >= l AND x <= h`,
//! `x IN (a, b, c)` becomes `x = a OR x = b OR x = c`, `CASE x WHEN ...` compares `x` in every
//! arm, and a `CASE` with boolean results becomes an `OR` that repeats its conditions. Nested,
//! the copies multiply: 16 nested `coalesce` calls around a 300-byte condition took 114 s and
//! 18 ran out of memory (the whole process dies; a shared server with it). So before a plan
//! runs, wharf works out how large its expressions can grow under these rewrites, and refuses
//! a query past [`MAX_EXPANDED_NODES`]. The count errs high: every rewrite is assumed to fire.

use crate::EngineError;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan};

/// Most nodes one expression of a query may reach once the optimizer's copying rewrites have
/// run. A 1,000-term chain is about 2,000, the same chain inside a `CASE` 4,000. Measured on a
/// debug build: 36,000 nodes optimize in 5 s, 73,000 in 15 s, 330,000 in 114 s.
pub const MAX_EXPANDED_NODES: u64 = 50_000;

/// Functions the optimizer rewrites into a `CASE` that repeats every argument but the last.
const REPEATING_FUNCTIONS: [&str; 3] = ["coalesce", "nvl", "ifnull"];

/// `IN` lists this short become a chain of `=` that repeats the tested expression
/// (DataFusion's `THRESHOLD_INLINE_INLIST`).
const INLINED_LIST_LEN: u64 = 3;

/// Refuses `plan` when one of its expressions may grow past [`MAX_EXPANDED_NODES`].
pub(crate) fn check_expansion(plan: &LogicalPlan) -> Result<(), EngineError> {
    let mut largest = 0u64;
    let walked = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            largest = largest.max(expanded(e));
            Ok(TreeNodeRecursion::Continue)
        })
    });
    walked.map_err(EngineError::sql)?;
    if largest > MAX_EXPANDED_NODES {
        return Err(EngineError::TooComplex {
            nodes: largest,
            limit: MAX_EXPANDED_NODES,
        });
    }
    Ok(())
}

/// The nodes `e` may have after the optimizer's copying rewrites, saturating.
pub(crate) fn expanded(e: &Expr) -> u64 {
    let sum = |items: &mut dyn Iterator<Item = &Expr>, times: u64| {
        items.fold(0u64, |n, x| {
            n.saturating_add(expanded(x).saturating_mul(times))
        })
    };
    let own = match e {
        Expr::Between(b) => expanded(&b.expr)
            .saturating_mul(2)
            .saturating_add(expanded(&b.low))
            .saturating_add(expanded(&b.high)),
        Expr::InList(l) => {
            let len = l.list.len() as u64;
            let copies = if len <= INLINED_LIST_LEN {
                len.max(1)
            } else {
                1
            };
            expanded(&l.expr)
                .saturating_mul(copies)
                .saturating_add(sum(&mut l.list.iter(), 1))
        }
        Expr::ScalarFunction(f)
            if REPEATING_FUNCTIONS.contains(&f.func.name()) && !f.args.is_empty() =>
        {
            let (last, init) = f.args.split_last().unwrap_or((&f.args[0], &[]));
            sum(&mut init.iter(), 2).saturating_add(expanded(last))
        }
        Expr::Case(c) => {
            let arms = c.when_then_expr.len() as u64;
            let operand = c
                .expr
                .as_deref()
                .map_or(0, |x| expanded(x).saturating_mul(arms));
            let whens = sum(
                &mut c.when_then_expr.iter().map(|(w, _)| w.as_ref()),
                arms + 1,
            );
            let thens = sum(&mut c.when_then_expr.iter().map(|(_, t)| t.as_ref()), 1);
            let otherwise = c.else_expr.as_deref().map_or(0, expanded);
            operand
                .saturating_add(whens)
                .saturating_add(thens)
                .saturating_add(otherwise)
        }
        Expr::BinaryExpr(BinaryExpr { left, right, .. }) => {
            expanded(left).saturating_add(expanded(right))
        }
        other => {
            let mut n = 0u64;
            let _ = other.apply_children(|child| {
                n = n.saturating_add(expanded(child));
                Ok(TreeNodeRecursion::Continue)
            });
            n
        }
    };
    own.saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::{col, lit};
    use datafusion::prelude::coalesce;

    #[test]
    fn copies_multiply_with_nesting() {
        let a = col("a");
        assert_eq!(expanded(&a), 1);
        assert_eq!(expanded(&(a.clone() + lit(1))), 3);
        // a BETWEEN 1 AND 2: a twice, the bounds once, the node.
        assert_eq!(expanded(&a.clone().between(lit(1), lit(2))), 5);
        let mut e = a.clone();
        for _ in 0..20 {
            e = coalesce(vec![e, lit(0)]);
        }
        assert!(expanded(&e) > 1 << 20, "{}", expanded(&e));
        let mut e = a.clone();
        for _ in 0..12 {
            e = e.in_list(vec![lit(1), lit(2), lit(3)], false).is_true();
        }
        assert!(expanded(&e) > 500_000, "{}", expanded(&e));
        // Long lists stay lists: no copies.
        let long = a.in_list((0..10).map(lit).collect(), false);
        assert_eq!(expanded(&long), 12);
    }
}
