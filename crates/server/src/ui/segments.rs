//! The segment pages: the list, the visual builder (conditions, nested groups, relations to
//! other models with their aggregate) with a live count, and a segment's page. Every edit of
//! the builder posts the whole form; the server rebuilds the tree from it ([`Node`]), applies
//! the button pressed and renders the builder again, so the page needs no script of its own.
//! The count is asked for separately, debounced, and a newer edit cancels an older count
//! (htmx's `hx-sync="this:replace"`).

use super::builder::Node;
use super::form::{FormState, is_form_error};
use super::session::{Fields, Page, SignedForm};
use super::{confirm, error_page, page, render, segment};
use crate::AppState;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::{Value, context};
use serde::Deserialize;
use std::collections::BTreeMap;
use wharf_service::{Caller, FilterColumn, ServiceError};

/// Sample rows shown under the count.
const SAMPLE_ROWS: usize = 10;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/segments", get(list).post(create))
        .route("/segments/new", get(new))
        .route("/segments/builder", post(rebuild))
        .route("/segments/count", post(count))
        .route("/segments/{name}", get(show))
        .route("/segments/{name}/delete", get(confirm_delete).post(delete))
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "created" => "Segment saved. Sync it to a destination to deliver its rows.",
        "deleted" => "Segment deleted.",
        _ => return None,
    })
}

/// `GET /segments`.
async fn list(State(state): State<AppState>, Query(done): Query<Done>, page_: Page) -> Response {
    let segments = match state.service.segments(page_.caller()).await {
        Ok(s) => s,
        Err(e) => return error_page(e),
    };
    let has_models = match state.service.models(page_.caller()).await {
        Ok(m) => !m.is_empty(),
        Err(e) => return error_page(e),
    };
    page(
        "segments/list.html",
        context! { chrome => page_.chrome, nav => "segments", segments, has_models, notice => notice(done.done.as_deref()) },
    )
}

/// What the builder needs to draw a tree over `model`: every model's name, and the columns
/// (with their operators) of the model and of every model the tree relates to.
struct Schema {
    models: Vec<String>,
    columns: BTreeMap<String, Vec<FilterColumn>>,
}

impl Schema {
    async fn load(
        state: &AppState,
        caller: &Caller,
        model: &str,
        tree: &Node,
    ) -> Result<Self, ServiceError> {
        let models: Vec<String> = state
            .service
            .models(caller)
            .await?
            .into_iter()
            .map(|m| m.name)
            .collect();
        let mut wanted = vec![model.to_string()];
        collect_related(tree, &mut wanted);
        let mut columns = BTreeMap::new();
        for name in wanted {
            if columns.contains_key(&name) || !models.contains(&name) {
                continue;
            }
            let cols = state.service.filter_columns(caller, &name).await?;
            columns.insert(name, cols);
        }
        Ok(Schema { models, columns })
    }

    /// Whether every model the tree relates to has its columns here.
    fn covers(&self, tree: &Node) -> bool {
        let mut related = Vec::new();
        collect_related(tree, &mut related);
        related
            .iter()
            .all(|m| self.columns.contains_key(m) || !self.models.contains(m))
    }

    fn kind_of(&self, model: &str, column: &str) -> String {
        self.columns
            .get(model)
            .and_then(|cols| cols.iter().find(|c| c.name == column))
            .map_or("text", |c| c.kind)
            .to_string()
    }

    /// The column and operator a new condition on `model` starts with.
    fn first(&self, model: &str) -> (String, String) {
        self.columns
            .get(model)
            .and_then(|cols| cols.first())
            .map(|c| {
                let op = if c.operators.contains(&"=") {
                    "="
                } else {
                    c.operators.first().copied().unwrap_or("is_not_null")
                };
                (c.name.clone(), op.to_string())
            })
            .unwrap_or_default()
    }
}

fn collect_related(node: &Node, out: &mut Vec<String>) {
    if node.kind == "rel" && !node.model.is_empty() {
        out.push(node.model.clone());
    }
    for c in &node.children {
        collect_related(c, out);
    }
    if let Some(w) = &node.where_ {
        collect_related(w, out);
    }
}

/// A tree with one condition on the model's first column.
fn starting_tree(schema: &Schema, model: &str) -> Node {
    let mut tree = Node::group("r", "and");
    let (column, op) = schema.first(model);
    tree.apply("add-cond:r", (&column, &op));
    tree
}

/// The builder's context: the tree and what it is drawn with.
fn builder_context(
    form: &FormState,
    model: &str,
    tree: &Node,
    schema: &Schema,
    editable: bool,
) -> Value {
    context! {
        form,
        model,
        tree,
        models => schema.models,
        columns => schema.columns,
        editable,
    }
}

#[derive(Deserialize)]
struct NewQuery {
    model: Option<String>,
    from: Option<String>,
}

/// `GET /segments/new`: the builder, on `?model=` or as a copy of `?from=` a segment.
async fn new(State(state): State<AppState>, Query(q): Query<NewQuery>, page_: Page) -> Response {
    if let Err(e) = page_.caller().require(wharf_service::Role::Editor) {
        return error_page(e);
    }
    let models = match state.service.models(page_.caller()).await {
        Ok(m) => m,
        Err(e) => return error_page(e),
    };
    let (model, tree) = match &q.from {
        Some(from) => match state.service.segment(page_.caller(), from).await {
            Ok(s) => (s.model.clone(), Some(Node::from_filter(&s.filter, "r"))),
            Err(e) => return error_page(e),
        },
        None => (
            q.model
                .clone()
                .or_else(|| models.first().map(|m| m.name.clone()))
                .unwrap_or_default(),
            None,
        ),
    };
    let name = q
        .from
        .as_ref()
        .map(|f| format!("{f}-copy"))
        .unwrap_or_default();
    let form = FormState::with(&[("name", &name), ("model", &model)]);
    builder_page(&state, page_, StatusCode::OK, form, &model, tree).await
}

async fn builder_page(
    state: &AppState,
    page_: Page,
    status: StatusCode,
    form: FormState,
    model: &str,
    tree: Option<Node>,
) -> Response {
    let probe = tree.clone().unwrap_or_else(|| Node::group("r", "and"));
    let schema = match Schema::load(state, page_.caller(), model, &probe).await {
        Ok(s) => s,
        Err(e) => return error_page(e),
    };
    let tree = tree.unwrap_or_else(|| starting_tree(&schema, model));
    let builder = builder_context(&form, model, &tree, &schema, true);
    render(
        status,
        "segments/form.html",
        context! { chrome => page_.chrome, nav => "segments", ..builder },
    )
}

/// The tree a submitted builder form describes, after the button pressed (if any); a model
/// changed since the tree was drawn starts a new tree.
async fn submitted_tree(
    state: &AppState,
    caller: &Caller,
    fields: &Fields,
) -> Result<(String, Node, Schema), ServiceError> {
    let model = fields.text("model").to_string();
    let mut tree = Node::from_fields(fields);
    let changed_model = fields.text("built_for") != model;
    let mut schema = Schema::load(state, caller, &model, &tree).await?;
    if changed_model {
        tree = starting_tree(&schema, &model);
    } else if let Some(action) = fields.opt("action") {
        let target_model = model_at(&tree, &model, action.split_once(':').map_or("", |(_, p)| p));
        let (column, op) = schema.first(&target_model);
        tree.apply(&action, (&column, &op));
    }
    fill_relations(&mut tree, &model, &schema);
    // A relation that got its model just now (or whose model changed) needs that model's
    // columns: loaded only then, and its join columns filled again.
    if !schema.covers(&tree) {
        schema = Schema::load(state, caller, &model, &tree).await?;
        fill_relations(&mut tree, &model, &schema);
    }
    Ok((model, tree, schema))
}

/// Gives a relation without a model the first other model, and join columns that exist in
/// the models joined (the first ones, until the user picks).
fn fill_relations(node: &mut Node, model: &str, schema: &Schema) {
    if node.kind == "rel" {
        if node.model.is_empty() {
            node.model = schema
                .models
                .iter()
                .find(|m| *m != model)
                .or_else(|| schema.models.first())
                .cloned()
                .unwrap_or_default();
        }
        let has = |m: &str, c: &str| {
            schema
                .columns
                .get(m)
                .is_some_and(|cols| cols.iter().any(|x| x.name == c))
        };
        if schema.columns.contains_key(&node.model) && !has(&node.model, &node.remote) {
            // A first guess people would make: this model's `id` against the related model's
            // `<this model, singular>_id` (customers.id = orders.customer_id).
            let guess = schema.columns.get(&node.model).and_then(|cols| {
                cols.iter().find(|c| {
                    c.name
                        .strip_suffix("_id")
                        .is_some_and(|stem| !stem.is_empty() && model.contains(stem))
                })
            });
            match guess {
                Some(c) if has(model, "id") => {
                    node.local = "id".into();
                    node.remote = c.name.clone();
                }
                _ => node.remote = schema.first(&node.model).0,
            }
        }
        if !has(model, &node.local) {
            node.local = schema.first(model).0;
        }
    }
    for c in &mut node.children {
        fill_relations(c, model, schema);
    }
    let related = node.model.clone();
    if let Some(w) = &mut node.where_ {
        fill_relations(w, &related, schema);
    }
}

/// The model whose columns the node at `path` filters: the base model, or inside a relation's
/// `where`, the related model.
fn model_at(tree: &Node, base: &str, path: &str) -> String {
    fn walk(node: &Node, model: &str, path: &str) -> Option<String> {
        if node.path == path {
            return Some(model.to_string());
        }
        if let Some(w) = &node.where_
            && let Some(found) = walk(w, &node.model, path)
        {
            return Some(found);
        }
        node.children.iter().find_map(|c| walk(c, model, path))
    }
    walk(tree, base, path).unwrap_or_else(|| base.to_string())
}

/// `POST /segments/builder`: the builder again after an edit (a button, a changed column,
/// operator or model). htmx swaps it in and asks for a new count; without JavaScript the whole
/// page comes back.
async fn rebuild(State(state): State<AppState>, headers: HeaderMap, form: SignedForm) -> Response {
    let SignedForm {
        page: page_,
        fields,
    } = form;
    let (model, tree, schema) = match submitted_tree(&state, page_.caller(), &fields).await {
        Ok(t) => t,
        Err(e) => return error_page(e),
    };
    let form = FormState::typed(&fields, &["name", "model"]);
    if headers.contains_key("hx-request") {
        let mut response = render(
            StatusCode::OK,
            "segments/builder.html",
            builder_context(&form, &model, &tree, &schema, true),
        );
        response
            .headers_mut()
            .insert("hx-trigger", HeaderValue::from_static("builder-changed"));
        return response;
    }
    let builder = builder_context(&form, &model, &tree, &schema, true);
    page(
        "segments/form.html",
        context! { chrome => page_.chrome, nav => "segments", ..builder },
    )
}

/// The filter JSON of a submitted builder, or `None` when it has no condition yet.
fn filter_json(tree: &Node, model: &str, schema: &Schema) -> Option<String> {
    tree.to_filter(model, &|m, c| schema.kind_of(m, c))
        .map(|f| f.to_string())
}

/// `POST /segments/count`: how many rows the tree selects, a sample, and its SQL.
async fn count(State(state): State<AppState>, form: SignedForm) -> Response {
    let SignedForm {
        page: page_,
        fields,
    } = form;
    let model = fields.text("model").to_string();
    let tree = Node::from_fields(&fields);
    let schema = match Schema::load(&state, page_.caller(), &model, &tree).await {
        Ok(s) => s,
        Err(e) => return error_page(e),
    };
    if tree.waits_for_a_value() {
        return render(
            StatusCode::OK,
            "segments/count.html",
            context! { empty => false, incomplete => true },
        );
    }
    let Some(filter) = filter_json(&tree, &model, &schema) else {
        return render(
            StatusCode::OK,
            "segments/count.html",
            context! { empty => true },
        );
    };
    match state
        .service
        .preview_filter(page_.caller(), &model, &filter, SAMPLE_ROWS)
        .await
    {
        Ok(p) => render(
            StatusCode::OK,
            "segments/count.html",
            context! {
                empty => false,
                count => p.count,
                preview => super::models::PreviewView::new(p.columns, p.text),
                sql => p.sql,
            },
        ),
        // A value not typed yet, an operator that does not suit: said where the count goes.
        Err(e) if is_form_error(&e) || e.kind == wharf_service::ErrorKind::NotFound => render(
            StatusCode::OK,
            "segments/count.html",
            context! { empty => false, error => e.message },
        ),
        Err(e) => error_page(e),
    }
}

/// `POST /segments`: saves the segment the builder describes.
async fn create(State(state): State<AppState>, form: SignedForm) -> Response {
    let SignedForm {
        page: page_,
        fields,
    } = form;
    let (model, tree, schema) = match submitted_tree(&state, page_.caller(), &fields).await {
        Ok(t) => t,
        Err(e) => return error_page(e),
    };
    let name = fields.text("name").trim().to_string();
    let result = match filter_json(&tree, &model, &schema) {
        Some(filter) => {
            state
                .service
                .add_segment(page_.caller(), &name, &model, &filter)
                .await
        }
        None => Err(ServiceError::bad_input(
            "filter",
            "the segment has no condition yet: add one (a segment of every row is the model itself)",
        )),
    };
    match result {
        Ok(s) => {
            Redirect::to(&format!("/segments/{}?done=created", segment(&s.name))).into_response()
        }
        Err(e) if is_form_error(&e) || e.kind == wharf_service::ErrorKind::NotFound => {
            let form = FormState::failed(&fields, &["name", "model"], &e);
            let builder = builder_context(&form, &model, &tree, &schema, true);
            render(
                StatusCode::UNPROCESSABLE_ENTITY,
                "segments/form.html",
                context! { chrome => page_.chrome, nav => "segments", ..builder },
            )
        }
        Err(e) => error_page(e),
    }
}

/// `GET /segments/{name}`: its tree (read-only), count, sample and SQL.
async fn show(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(done): Query<Done>,
    page_: Page,
) -> Response {
    let seg = match state.service.segment(page_.caller(), &name).await {
        Ok(s) => s,
        Err(e) => return error_page(e),
    };
    let tree = Node::from_filter(&seg.filter, "r");
    let schema = match Schema::load(&state, page_.caller(), &seg.model, &tree).await {
        Ok(s) => s,
        Err(e) => return error_page(e),
    };
    let (count, preview, preview_error) = match state
        .service
        .preview_segment(page_.caller(), &name, SAMPLE_ROWS, None)
        .await
    {
        Ok(p) => (
            Some(p.count),
            Some(super::models::PreviewView::new(p.columns, p.text)),
            None,
        ),
        Err(e) => (None, None, Some(e.message)),
    };
    let sql = state
        .service
        .segment_sql(page_.caller(), &name, None)
        .await
        .ok();
    let builder = builder_context(&FormState::default(), &seg.model, &tree, &schema, false);
    page(
        "segments/show.html",
        context! {
            chrome => page_.chrome,
            nav => "segments",
            segment => seg,
            count,
            preview,
            preview_error,
            sql,
            filter_json => serde_json::to_string_pretty(&seg.filter).unwrap_or_default(),
            notice => notice(done.done.as_deref()),
            ..builder
        },
    )
}

/// `GET /segments/{name}/delete`.
async fn confirm_delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    page_: Page,
) -> Response {
    if let Err(e) = state.service.segment(page_.caller(), &name).await {
        return error_page(e);
    }
    let path = format!("/segments/{}", segment(&name));
    confirm(
        page_,
        "segments",
        format!("Delete the segment {name}?"),
        vec![
            "wharf forgets this segment's filter. Files already delivered stay where they are."
                .into(),
            "A segment that a sync uses cannot be deleted: delete or change that sync first."
                .into(),
        ],
        format!("{path}/delete"),
        "Delete segment",
        path,
    )
}

/// `POST /segments/{name}/delete`.
async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: SignedForm,
) -> Response {
    match state
        .service
        .remove_segment(form.page.caller(), &name)
        .await
    {
        Ok(()) => Redirect::to("/segments?done=deleted").into_response(),
        Err(e) => error_page(e),
    }
}
