//! Segments compiled to SQL: a filter tree over a model becomes one query in the source's
//! dialect, with every value a bound parameter and every identifier a column of a model's schema,
//! quoted. For PostgreSQL the same query is also rendered with its values written in as
//! escape-string literals, for exports (`COPY` takes no parameters; `into_export`).
//!
//! The query wraps the model's SQL verbatim: `SELECT "t0".* FROM (<model sql>) AS "t0" WHERE ...`.
//! A relation (`related`) becomes a LEFT JOIN to the related model grouped by its join columns, so
//! each base row meets at most one joined row and the result never gains or loses rows through
//! the join; `exists`, `count` and the other aggregates are then plain comparisons in the WHERE.
//! This shape needs no correlated subqueries, plans the same in DataFusion and PostgreSQL, and
//! keeps `or`/`not` over relations as simple as over columns.

mod values;

use crate::EngineError;
use arrow::datatypes::{Field, Schema};
pub use datafusion::scalar::ScalarValue;
use std::fmt::Write as _;
use values::Class;
use wharf_domain::segment::{AggregateFn, Filter, Op, Operand};

pub use values::timestamp_micros;

/// What a column of `data_type` holds as a segment sees it (`integer`, `float`, `decimal`,
/// `text`, `bool`, `date`, `timestamp`, `time` or `other`), and the operators a condition on it
/// may use, in the order an interface offers them. The same rule refuses the others when a
/// filter is compiled.
pub fn column_filtering(data_type: &arrow::datatypes::DataType) -> (&'static str, Vec<Op>) {
    let class = Class::of(data_type);
    let kind = match class {
        Class::Integer => "integer",
        Class::Float => "float",
        Class::Decimal => "decimal",
        Class::Text => "text",
        Class::Bool => "bool",
        Class::Date => "date",
        Class::Timestamp(_) => "timestamp",
        Class::Time => "time",
        Class::Other => "other",
    };
    let ops = Op::every()
        .into_iter()
        .filter(|op| class.refuses(*op).is_none())
        .collect();
    (kind, ops)
}

/// Arrow field metadata key under which the PostgreSQL warehouse records a column's server type
/// (`jsonb`, `uuid`, an enum's name...), so a segment can compare such columns as text.
pub const POSTGRES_TYPE_KEY: &str = "wharf.postgres.type";

/// The SQL flavour to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    DataFusion,
    Postgres,
}

/// A model as a segment sees it: its name (for messages), its SQL and its result's schema.
#[derive(Debug, Clone, Copy)]
pub struct ModelQuery<'a> {
    pub name: &'a str,
    pub sql: &'a str,
    pub schema: &'a Schema,
}

/// What a segment is compiled against.
#[derive(Debug, Clone, Copy)]
pub struct SegmentInput<'a> {
    pub model: ModelQuery<'a>,
    /// The models `related` nodes may name (of the same source).
    pub related: &'a [ModelQuery<'a>],
    /// `within_last` counts back from this instant, in microseconds since the epoch (UTC).
    pub as_of_micros: i64,
}

/// A segment's query and its parameters, `$1` being `params[0]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledSegment {
    pub sql: String,
    pub params: Vec<ScalarValue>,
    /// For PostgreSQL, the same query with its values written in as literals.
    literal_sql: Option<String>,
}

impl CompiledSegment {
    /// The statement and parameters an export runs. PostgreSQL exports read through `COPY`,
    /// which takes no parameters, so there the values come written into the SQL (as escaped
    /// string literals under the same casts as the placeholders); DataFusion's stay bound.
    pub fn into_export(self) -> (String, Vec<ScalarValue>) {
        match self.literal_sql {
            Some(sql) => (sql, Vec::new()),
            None => (self.sql, self.params),
        }
    }
}

/// Compiles `filter` over `input.model` for `dialect`. Errors name the node's path
/// (`and[2].or[0]`), the column and what would be accepted.
pub fn compile(
    filter: &Filter,
    input: &SegmentInput<'_>,
    dialect: Dialect,
) -> Result<CompiledSegment, EngineError> {
    let (sql, params) = render(filter, input, dialect, false)?;
    let literal_sql = match dialect {
        Dialect::Postgres => Some(render(filter, input, dialect, true)?.0),
        Dialect::DataFusion => None,
    };
    Ok(CompiledSegment {
        sql,
        params,
        literal_sql,
    })
}

/// The segment's SQL with its values as placeholders (and the values), or written in as
/// literals (PostgreSQL only).
fn render(
    filter: &Filter,
    input: &SegmentInput<'_>,
    dialect: Dialect,
    literals: bool,
) -> Result<(String, Vec<ScalarValue>), EngineError> {
    let mut compiler = Compiler {
        input,
        dialect,
        params: Vec::new(),
        relations: 0,
        literals,
    };
    let mut scope = Scope {
        alias: quote("t0"),
        model: input.model,
        joins: Vec::new(),
    };
    let condition = compiler.node(filter, "filter", &mut scope)?;
    let mut sql = format!(
        "SELECT {alias}.*\nFROM (\n{model}\n) AS {alias}\n",
        alias = scope.alias,
        model = model_sql(input.model.sql),
    );
    for join in &scope.joins {
        sql.push_str(join);
        sql.push('\n');
    }
    let _ = write!(sql, "WHERE {condition}");
    Ok((sql, compiler.params))
}

/// A model's SQL without trailing semicolons, so it can sit inside parentheses. Nothing else is
/// touched: it runs verbatim.
pub(crate) fn model_sql(sql: &str) -> &str {
    sql.trim_end_matches(|c: char| c.is_whitespace() || c == ';')
}

/// A double-quoted identifier, inner quotes doubled: the rule of both dialects.
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

fn fail(path: &str, message: impl Into<String>) -> EngineError {
    EngineError::Segment {
        path: path.to_string(),
        message: message.into(),
    }
}

/// Where conditions are being compiled: the alias of the rows they test, the model those rows
/// come from, and the joins its relations need.
struct Scope<'a> {
    alias: String,
    model: ModelQuery<'a>,
    joins: Vec<String>,
}

struct Compiler<'a> {
    input: &'a SegmentInput<'a>,
    dialect: Dialect,
    params: Vec<ScalarValue>,
    relations: usize,
    /// Values written in as PostgreSQL literals rather than bound.
    literals: bool,
}

fn child(path: &str, step: &str) -> String {
    if path == "filter" {
        step.to_string()
    } else {
        format!("{path}.{step}")
    }
}

impl<'a> Compiler<'a> {
    fn node(
        &mut self,
        filter: &Filter,
        path: &str,
        scope: &mut Scope<'a>,
    ) -> Result<String, EngineError> {
        match filter {
            Filter::And(nodes) | Filter::Or(nodes) => {
                let (word, key) = match filter {
                    Filter::And(_) => (" AND ", "and"),
                    _ => (" OR ", "or"),
                };
                let parts = nodes
                    .iter()
                    .enumerate()
                    .map(|(i, n)| self.node(n, &child(path, &format!("{key}[{i}]")), scope))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(format!("({})", parts.join(word)))
            }
            Filter::Not(inner) => Ok(format!(
                "(NOT {})",
                self.node(inner, &child(path, "not"), scope)?
            )),
            Filter::Condition {
                column,
                op,
                operand,
            } => self.condition(column, *op, operand, path, scope),
            Filter::Related {
                model,
                on,
                filter,
                aggregate,
            } => self.related(
                model,
                on,
                filter.as_deref(),
                aggregate.as_ref(),
                path,
                scope,
            ),
        }
    }

    /// A column of the scope's model, or an error listing the columns there are.
    fn column(
        &self,
        name: &str,
        path: &str,
        model: &ModelQuery<'_>,
    ) -> Result<(Field, Class), EngineError> {
        match model.schema.field_with_name(name) {
            Ok(field) => Ok((field.clone(), Class::of_field(field))),
            Err(_) => {
                let names: Vec<&str> = model
                    .schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect();
                let hint = names
                    .iter()
                    .find(|n| n.eq_ignore_ascii_case(name))
                    .map(|n| format!(" (column names are case-sensitive: did you mean {n:?}?)"))
                    .unwrap_or_default();
                let shown = if names.len() > 40 {
                    format!("{}, … ({} in all)", names[..40].join(", "), names.len())
                } else {
                    names.join(", ")
                };
                Err(fail(
                    path,
                    format!(
                        "model {:?} has no column {:?}{hint}; its columns are: {shown}",
                        model.name,
                        truncate(name)
                    ),
                ))
            }
        }
    }

    /// The SQL for a column: qualified, quoted and, for PostgreSQL types shown as text (json,
    /// uuid, enums), cast to text so text comparisons apply.
    fn column_sql(&self, alias: &str, field: &Field) -> String {
        let reference = format!("{alias}.{}", quote(field.name()));
        let server_type = field.metadata().get(POSTGRES_TYPE_KEY).map(String::as_str);
        match (self.dialect, server_type) {
            (Dialect::Postgres, Some(t))
                if Class::of_field(field) == Class::Text
                    && !matches!(t, "text" | "varchar" | "bpchar" | "name") =>
            {
                format!("CAST({reference} AS text)")
            }
            _ => reference,
        }
    }

    /// Binds `value` and returns its placeholder (or its literal).
    fn bind(&mut self, value: ScalarValue) -> String {
        let cast = match self.dialect {
            Dialect::DataFusion => "",
            Dialect::Postgres => postgres_cast(&value),
        };
        let written = if self.literals {
            postgres_literal(&value)
        } else {
            format!("${}", self.params.len() + 1)
        };
        self.params.push(value);
        format!("{written}{cast}")
    }

    fn bind_value(
        &mut self,
        value: &wharf_domain::segment::Scalar,
        class: &Class,
        path: &str,
        column: &str,
    ) -> Result<String, EngineError> {
        let value = values::cast(value, class).map_err(|why| {
            fail(
                path,
                format!(
                    "the value {} does not fit column {:?}: {why}",
                    show(value),
                    truncate(column)
                ),
            )
        })?;
        Ok(self.bind(value))
    }

    /// `left OP operand`, with the operand's values bound for a column of class `class`.
    fn compare(
        &mut self,
        left: &str,
        op: Op,
        operand: &Operand,
        class: &Class,
        path: &str,
        column: &str,
    ) -> Result<String, EngineError> {
        let vpath = format!("{path}.value");
        let sql = match (op, operand) {
            (Op::IsNull, _) => format!("{left} IS NULL"),
            (Op::IsNotNull, _) => format!("{left} IS NOT NULL"),
            (Op::In | Op::NotIn, Operand::List(items)) => {
                let mut placeholders = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    placeholders.push(self.bind_value(
                        item,
                        class,
                        &format!("{vpath}[{i}]"),
                        column,
                    )?);
                }
                let word = if op == Op::In { "IN" } else { "NOT IN" };
                format!("{left} {word} ({})", placeholders.join(", "))
            }
            (Op::Between, Operand::Range(low, high)) => {
                let low = self.bind_value(low, class, &format!("{vpath}[0]"), column)?;
                let high = self.bind_value(high, class, &format!("{vpath}[1]"), column)?;
                format!("{left} BETWEEN {low} AND {high}")
            }
            (Op::WithinLast, Operand::Within { hours, written }) => {
                let (low, high) = self.window(*hours, written, class, &vpath)?;
                let low = self.bind(low);
                let high = self.bind(high);
                format!("{left} BETWEEN {low} AND {high}")
            }
            (Op::Contains | Op::StartsWith | Op::EndsWith, Operand::One(value)) => {
                let p = self.bind_value(value, class, &vpath, column)?;
                match (op, self.dialect) {
                    (Op::Contains, _) => format!("strpos({left}, {p}) > 0"),
                    (Op::StartsWith, _) => format!("starts_with({left}, {p})"),
                    (_, Dialect::DataFusion) => format!("ends_with({left}, {p})"),
                    (_, Dialect::Postgres) => format!("right({left}, char_length({p})) = {p}"),
                }
            }
            (_, Operand::One(value)) => {
                let p = self.bind_value(value, class, &vpath, column)?;
                let symbol = match op {
                    Op::Eq => "=",
                    Op::Ne => "<>",
                    Op::Lt => "<",
                    Op::Le => "<=",
                    Op::Gt => ">",
                    _ => ">=",
                };
                format!("{left} {symbol} {p}")
            }
            _ => {
                return Err(fail(
                    path,
                    format!("\"{}\" does not take this kind of value", op.as_str()),
                ));
            }
        };
        Ok(sql)
    }

    /// `[as_of - hours, as_of]` as parameters for a column of `class`. A date column compares
    /// with the dates of both ends.
    fn window(
        &self,
        hours: i64,
        written: &str,
        class: &Class,
        path: &str,
    ) -> Result<(ScalarValue, ScalarValue), EngineError> {
        let high = self.input.as_of_micros;
        let low = hours
            .checked_mul(3_600_000_000)
            .and_then(|span| high.checked_sub(span))
            .filter(|low| *low > -62_135_596_800_000_000)
            .ok_or_else(|| {
                fail(
                    path,
                    format!("{written} back from now reaches before the year 1"),
                )
            })?;
        Ok(match class {
            Class::Date => {
                let day = |us: i64| ScalarValue::Date32(Some(us.div_euclid(86_400_000_000) as i32));
                (day(low), day(high))
            }
            Class::Timestamp(zone) => (
                ScalarValue::TimestampMicrosecond(Some(low), zone.clone()),
                ScalarValue::TimestampMicrosecond(Some(high), zone.clone()),
            ),
            _ => {
                return Err(fail(
                    path,
                    "within_last applies to date and timestamp columns only",
                ));
            }
        })
    }

    fn condition(
        &mut self,
        column: &str,
        op: Op,
        operand: &Operand,
        path: &str,
        scope: &Scope<'a>,
    ) -> Result<String, EngineError> {
        let (field, class) = self.column(column, path, &scope.model)?;
        if let Some(why) = class.refuses(op) {
            return Err(fail(
                path,
                format!(
                    "\"{}\" {why}; column {:?} is {}",
                    op.as_str(),
                    truncate(column),
                    field.data_type()
                ),
            ));
        }
        let left = self.column_sql(&scope.alias, &field);
        self.compare(&left, op, operand, &class, path, column)
    }

    fn related(
        &mut self,
        model: &str,
        on: &[(String, String)],
        filter: Option<&Filter>,
        aggregate: Option<&wharf_domain::segment::Aggregate>,
        path: &str,
        scope: &mut Scope<'a>,
    ) -> Result<String, EngineError> {
        let related = *self
            .input
            .related
            .iter()
            .find(|m| m.name == model)
            .ok_or_else(|| {
                fail(
                    path,
                    format!(
                        "there is no model {:?} on this model's source to relate to; add it with `wharf model add`",
                        truncate(model)
                    ),
                )
            })?;
        self.relations += 1;
        let n = self.relations;
        let mut inner = Scope {
            alias: quote(&format!("t{n}")),
            model: related,
            joins: Vec::new(),
        };
        let join_alias = quote(&format!("j{n}"));
        let mut keys = Vec::new();
        let mut group = Vec::new();
        let mut matches = Vec::new();
        for (i, (local, remote)) in on.iter().enumerate() {
            let pair_path = format!("{path}.on[{i}]");
            let (local_field, local_class) = self.column(local, &pair_path, &scope.model)?;
            let (remote_field, remote_class) = self.column(remote, &pair_path, &related)?;
            if !local_class.joins_with(&remote_class) {
                return Err(fail(
                    &pair_path,
                    format!(
                        "cannot join {:?} ({}) with {:?} ({}): join columns hold the same kind of value",
                        local,
                        local_field.data_type(),
                        remote,
                        remote_field.data_type()
                    ),
                ));
            }
            let key = quote(&format!("k{i}"));
            let remote_sql = self.column_sql(&inner.alias, &remote_field);
            keys.push(format!("{remote_sql} AS {key}"));
            group.push(remote_sql);
            matches.push(format!(
                "{join_alias}.{key} = {}",
                self.column_sql(&scope.alias, &local_field)
            ));
        }
        let condition = match filter {
            Some(f) => Some(self.node(f, &format!("{path}.where"), &mut inner)?),
            None => None,
        };
        let value = quote("v");
        let (measure, test) = match aggregate {
            None => (
                "COUNT(*)".to_string(),
                format!("{join_alias}.{value} IS NOT NULL"),
            ),
            Some(agg) => {
                let apath = format!("{path}.aggregate");
                let (column_sql, column_class, column_name) = match &agg.column {
                    Some(c) => {
                        let (field, class) = self.column(c, &apath, &related)?;
                        (
                            Some(self.column_sql(&inner.alias, &field)),
                            Some(class),
                            c.as_str(),
                        )
                    }
                    None => (None, None, "count"),
                };
                let class =
                    Class::aggregate(agg.function, column_class.as_ref()).map_err(|why| {
                        fail(
                            &apath,
                            format!("{why}; column {:?} is not", truncate(column_name)),
                        )
                    })?;
                let (function, subject) = match agg.function {
                    AggregateFn::Count => ("COUNT", "*".to_string()),
                    AggregateFn::Sum => ("SUM", column_sql.unwrap_or_default()),
                    AggregateFn::Min => ("MIN", column_sql.unwrap_or_default()),
                    AggregateFn::Max => ("MAX", column_sql.unwrap_or_default()),
                    AggregateFn::Avg => ("AVG", column_sql.unwrap_or_default()),
                };
                let left = if agg.function == AggregateFn::Count {
                    format!("COALESCE({join_alias}.{value}, 0)")
                } else {
                    format!("{join_alias}.{value}")
                };
                let test =
                    self.compare(&left, agg.op, &agg.operand, &class, &apath, column_name)?;
                (format!("{function}({subject})"), test)
            }
        };
        let mut join = format!(
            "LEFT JOIN (\nSELECT {}, {measure} AS {value}\nFROM (\n{}\n) AS {}\n",
            keys.join(", "),
            model_sql(related.sql),
            inner.alias
        );
        for nested in &inner.joins {
            join.push_str(nested);
            join.push('\n');
        }
        if let Some(c) = condition {
            let _ = writeln!(join, "WHERE {c}");
        }
        let _ = write!(
            join,
            "GROUP BY {}\n) AS {join_alias} ON {}",
            group.join(", "),
            matches.join(" AND ")
        );
        scope.joins.push(join);
        Ok(test)
    }
}

/// A value as PostgreSQL reads it as text: numbers and booleans as Rust writes them (the
/// shortest text that reads back as the same float), the rest as Arrow displays it, which is
/// the text form the placeholder's cast parses (`::text::timestamptz`).
pub(crate) fn postgres_text(value: &ScalarValue) -> String {
    match value {
        ScalarValue::Int64(Some(v)) => v.to_string(),
        ScalarValue::Float64(Some(v)) if v.is_infinite() => {
            if *v > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
        }
        ScalarValue::Float64(Some(v)) => v.to_string(),
        ScalarValue::Boolean(Some(v)) => v.to_string(),
        ScalarValue::Utf8(Some(v)) => v.clone(),
        other => other
            .to_array()
            .ok()
            .and_then(|a| arrow::util::display::array_value_to_string(&a, 0).ok())
            .unwrap_or_else(|| other.to_string()),
    }
}

/// `value` as a PostgreSQL escape-string literal (`E'...'`), whose backslash escapes hold
/// whatever `standard_conforming_strings` says; the caller adds the cast. A NUL is written as
/// `\000`, which PostgreSQL refuses as it refuses one in a bound value.
fn postgres_literal(value: &ScalarValue) -> String {
    let text = postgres_text(value);
    let mut literal = String::with_capacity(text.len() + 3);
    literal.push_str("E'");
    for c in text.chars() {
        match c {
            '\\' => literal.push_str("\\\\"),
            '\'' => literal.push_str("\\'"),
            '\0' => literal.push_str("\\000"),
            c => literal.push(c),
        }
    }
    literal.push('\'');
    literal
}

/// The cast PostgreSQL needs to type a parameter: numbers, booleans and text travel as
/// themselves; decimals, dates, times and timestamps as ISO text parsed by the server.
fn postgres_cast(value: &ScalarValue) -> &'static str {
    match value {
        ScalarValue::Int64(_) => "::int8",
        ScalarValue::Float64(_) => "::float8",
        ScalarValue::Boolean(_) => "::bool",
        ScalarValue::Decimal128(..) => "::text::numeric",
        ScalarValue::Date32(_) => "::text::date",
        ScalarValue::Time64Microsecond(_) => "::text::time",
        ScalarValue::TimestampMicrosecond(_, Some(_)) => "::text::timestamptz",
        ScalarValue::TimestampMicrosecond(_, None) => "::text::timestamp",
        _ => "::text",
    }
}

/// A value for an error message: short, quoted, never a megabyte.
fn show(value: &wharf_domain::segment::Scalar) -> String {
    use wharf_domain::segment::Scalar;
    match value {
        Scalar::Text(s) => format!("{:?}", truncate(s)),
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(f) => f.to_string(),
        Scalar::Bool(b) => b.to_string(),
    }
}

fn truncate(text: &str) -> String {
    if text.chars().count() <= 64 {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(64).collect::<String>())
    }
}

#[cfg(test)]
mod tests;
