//! The engine's one public error.

use datafusion::error::DataFusionError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The SQL does not parse or plan. `line`/`column` (1-based) point into the SQL when known.
    #[error("{message}{}", position(*line, *column))]
    Sql {
        message: String,
        line: Option<u64>,
        column: Option<u64>,
    },
    #[error(
        "the primary key column {column:?} is not in the query's result; its columns are: {available}"
    )]
    MissingKey { column: String, available: String },
    #[error("{path}: {message}")]
    Source { path: PathBuf, message: String },
    /// A segment's filter does not fit its model: a missing column, an operator or value that
    /// does not suit the column's type. `path` names the node (`and[2].or[0]`).
    #[error("segment filter at {path}: {message}")]
    Segment { path: String, message: String },
    /// PostgreSQL could not be reached, refused the login or the query, or dropped the
    /// connection. `code` is stable (`postgres.auth`, `postgres.timeout`...).
    #[error("{message}")]
    Postgres { code: &'static str, message: String },
    /// The query failed while running (a bad file, a cast that fails on some row, memory).
    #[error("the query failed: {0}")]
    Query(String),
    /// The SQL is a statement that is not a query (`EXPLAIN`, `SHOW`...).
    #[error(
        "a model is a query that returns rows (SELECT ..., WITH ... SELECT ..., VALUES ...); this SQL is {found}"
    )]
    NotAQuery { found: String },
    /// The SQL's expressions nest deeper than the planner is tested to handle.
    #[error(
        "the SQL's expressions nest {depth} levels deep, and wharf plans at most {limit} (a chain `a + b + c` is one level per operator): split long chains into several columns or a subquery, or sum values with an aggregate"
    )]
    TooDeep { depth: usize, limit: usize },
    /// An expression the optimizer's copying rewrites would grow past the limit.
    #[error(
        "the query's expressions could grow to {nodes} nodes as they are optimized, and wharf plans at most {limit}: nested coalesce/ifnull, BETWEEN, short IN lists and CASE each copy what they contain; nest fewer of them around long expressions"
    )]
    TooComplex { nodes: u64, limit: u64 },
    /// A row, value or batch larger than the limits on the way to the encoder.
    #[error("{0}")]
    TooLarge(String),
}

fn position(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" (at line {l}, column {c})"),
        _ => String::new(),
    }
}

impl EngineError {
    /// A planning or parsing error, with the position DataFusion knows.
    pub(crate) fn sql(e: DataFusionError) -> Self {
        let (line, column) = sql_position(&e).unzip();
        Self::Sql {
            message: clean_message(&e),
            line,
            column,
        }
    }

    /// A parse error that ran out of text (`found: EOF`) has no position from the parser: it
    /// is where the SQL ends, which is what the person reading it needs.
    pub(crate) fn at_end_of(self, sql: &str) -> Self {
        match self {
            Self::Sql {
                message,
                line: None,
                column: None,
            } if message.contains("found: EOF") => {
                let text = sql.trim_end();
                let line = text.lines().count().max(1) as u64;
                let column = text.lines().last().map_or(0, |l| l.chars().count()) as u64 + 1;
                Self::Sql {
                    message,
                    line: Some(line),
                    column: Some(column),
                }
            }
            other => other,
        }
    }

    pub(crate) fn query(e: DataFusionError) -> Self {
        Self::Query(clean_message(&e))
    }

    /// A stable code for run records: `query.sql`, `query.failed`...
    pub fn code(&self) -> &'static str {
        match self {
            Self::Sql { .. } => "query.sql",
            Self::MissingKey { .. } => "model.primary_key",
            Self::Source { .. } => "source.unreadable",
            Self::Segment { .. } => "segment.invalid",
            Self::Postgres { code, .. } => code,
            Self::Query(_) => "query.failed",
            Self::NotAQuery { .. } => "model.not_a_query",
            Self::TooDeep { .. } => "model.too_deep",
            Self::TooComplex { .. } => "query.too_complex",
            Self::TooLarge(_) => "query.too_large",
        }
    }
}

/// DataFusion's message without its backtrace, and without the Debug wrapping of parser errors
/// (`SQL error: ParserError("...")`).
fn clean_message(e: &DataFusionError) -> String {
    if let DataFusionError::SQL(parser, _) = e.find_root() {
        let text = parser.to_string();
        let text = text.strip_prefix("sql parser error: ").unwrap_or(&text);
        return format!("SQL syntax error: {text}");
    }
    if let Some(d) = e.diagnostic() {
        let mut message = d.message.clone();
        for help in &d.helps {
            message.push_str("; ");
            message.push_str(&help.message);
        }
        return message;
    }
    e.strip_backtrace()
}

/// Where in the SQL an error is: a diagnostic's span, or the parser's "at Line: L, Column: C".
fn sql_position(e: &DataFusionError) -> Option<(u64, u64)> {
    if let Some(span) = e.diagnostic().and_then(|d| d.span) {
        return Some((span.start.line, span.start.column));
    }
    if let DataFusionError::SQL(parser, _) = e.find_root() {
        let text = parser.to_string();
        let at = text.rfind(" at Line: ")?;
        let (line, column) = text[at + 10..].split_once(", Column: ")?;
        let column: String = column.chars().take_while(char::is_ascii_digit).collect();
        return Some((line.trim().parse().ok()?, column.parse().ok()?));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parse_error_at_the_end_points_at_the_end() {
        let e = EngineError::Sql {
            message: "SQL syntax error: Expected: an expression, found: EOF".into(),
            line: None,
            column: None,
        }
        .at_end_of("SELECT id,\nFROM t WHERE  \n");
        assert_eq!(
            e.to_string(),
            "SQL syntax error: Expected: an expression, found: EOF (at line 2, column 13)"
        );
    }
}
