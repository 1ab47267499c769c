//! What a model's SQL may be: one query that returns rows, no deeper than the engine can plan.
//!
//! - `EXPLAIN`, `SHOW`, `DESCRIBE` and the like return rows too, but they are not data: `sync
//!   run` would export a query plan with server paths in it. Only `SELECT`, `WITH ... SELECT`,
//!   `VALUES` and `TABLE` are models.
//! - Every planner and optimizer pass walks expressions recursively, so a long chain such as
//!   `id+id+...+id` (left-deep, one level per operator) is as deep as it is long. wharf runs
//!   queries on threads with large stacks (see the CLI's `main`), and refuses model SQL whose
//!   expressions nest deeper than [`MAX_EXPRESSION_DEPTH`], a bound tested to plan and run in
//!   debug and release builds.

use crate::EngineError;
use datafusion::sql::sqlparser::ast::{Expr, Statement, Visit, Visitor};
use std::ops::ControlFlow;

/// Deepest expression nesting allowed in a model's SQL: operators chained (`a + b + c` is 2
/// deep), function calls and `CASE` inside each other. Parenthesised subqueries count too.
pub const MAX_EXPRESSION_DEPTH: usize = 1_000;

/// How deep the SQL parser may recurse (nested parentheses, calls, subqueries). A segment at
/// `wharf_domain::segment::MAX_DEPTH`, `related` at every level, needs about 200.
pub(crate) const PARSER_RECURSION_LIMIT: usize = 256;

/// Refuses a statement that is not a query returning rows.
pub(crate) fn check_is_query(statement: &Statement) -> Result<(), EngineError> {
    if matches!(statement, Statement::Query(_)) {
        return Ok(());
    }
    Err(EngineError::NotAQuery {
        found: first_words(&statement.to_string()),
    })
}

/// Refuses a statement whose expressions nest deeper than [`MAX_EXPRESSION_DEPTH`].
pub(crate) fn check_depth(statement: &Statement) -> Result<(), EngineError> {
    let depth = expression_depth(statement);
    if depth > MAX_EXPRESSION_DEPTH {
        return Err(EngineError::TooDeep {
            depth,
            limit: MAX_EXPRESSION_DEPTH,
        });
    }
    Ok(())
}

/// The deepest nesting of expressions in `statement`.
pub(crate) fn expression_depth(statement: &Statement) -> usize {
    struct Depth {
        now: usize,
        max: usize,
    }
    impl Visitor for Depth {
        type Break = ();
        fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
            self.now += 1;
            self.max = self.max.max(self.now);
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
            self.now -= 1;
            ControlFlow::Continue(())
        }
    }
    let mut depth = Depth { now: 0, max: 0 };
    let _ = statement.visit(&mut depth);
    depth.max
}

/// PostgreSQL's SQL is sent as written, in dialects sqlparser may not know: the check is on
/// the statement's first keyword (after comments and opening parentheses), and, when sqlparser
/// reads the text, on the parsed statements as well.
pub(crate) fn check_postgres_model(sql: &str) -> Result<(), EngineError> {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    let keyword = first_keyword(sql);
    if !matches!(
        keyword.as_str(),
        "select" | "with" | "values" | "table" | "("
    ) {
        return Err(EngineError::NotAQuery {
            found: first_words(sql.trim_start()),
        });
    }
    if let Ok(statements) = Parser::new(&PostgreSqlDialect {})
        .with_recursion_limit(64)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
    {
        if statements.len() > 1 {
            return Err(EngineError::NotAQuery {
                found: format!("{} statements", statements.len()),
            });
        }
        for statement in &statements {
            check_is_query(statement)?;
        }
    }
    Ok(())
}

/// The first keyword of `sql`, lowercase, skipping whitespace and comments; `(` if it opens
/// with a parenthesis.
fn first_keyword(sql: &str) -> String {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r);
        } else {
            break;
        }
    }
    if rest.starts_with('(') {
        return "(".into();
    }
    rest.chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// The statement's first two words, for messages (`EXPLAIN SELECT`).
fn first_words(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    let mut found = words.join(" ");
    if found.len() > 40 {
        found = found.chars().take(40).collect();
    }
    format!("`{found} ...`")
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn parse(sql: &str) -> Statement {
        Parser::parse_sql(&GenericDialect {}, sql)
            .expect("parses")
            .remove(0)
    }

    #[test]
    fn only_queries_are_models() {
        for sql in [
            "SELECT 1",
            "WITH a AS (SELECT 1 AS x) SELECT x FROM a",
            "VALUES (1), (2)",
            "(SELECT 1) UNION ALL (SELECT 2)",
        ] {
            assert!(check_is_query(&parse(sql)).is_ok(), "{sql}");
        }
        for sql in ["EXPLAIN SELECT 1", "SHOW TABLES", "DESCRIBE customers"] {
            let err = check_is_query(&parse(sql)).expect_err(sql);
            assert!(
                err.to_string()
                    .contains("a model is a query that returns rows"),
                "{err}"
            );
        }
    }

    #[test]
    fn postgres_models_are_checked_by_their_first_keyword_and_parse() {
        for sql in [
            "SELECT 1",
            "  -- a comment\n/* another */ with x as (select 1) select * from x",
            "(select 1)",
            "select $$odd$$::text, x::int4 from t where y ~ 'a'",
        ] {
            assert!(check_postgres_model(sql).is_ok(), "{sql}");
        }
        for sql in [
            "EXPLAIN SELECT 1",
            "explain analyze select 1",
            "SHOW search_path",
            "/* hidden */ EXPLAIN select 1",
            "select 1; select 2",
        ] {
            assert!(check_postgres_model(sql).is_err(), "{sql}");
        }
    }

    #[test]
    fn depth_counts_chained_operators() {
        let chain = |n: usize| {
            let terms = vec!["id"; n].join("+");
            format!("SELECT {terms} AS x, id FROM t")
        };
        assert_eq!(expression_depth(&parse("SELECT id FROM t")), 1);
        let deep = expression_depth(&parse(&chain(500)));
        assert!((499..=501).contains(&deep), "{deep}");
        assert!(check_depth(&parse(&chain(MAX_EXPRESSION_DEPTH - 5))).is_ok());
        let err = check_depth(&parse(&chain(MAX_EXPRESSION_DEPTH + 5))).expect_err("deep");
        assert!(err.to_string().contains("nest"), "{err}");
    }
}
