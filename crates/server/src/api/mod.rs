//! REST API v1: the routes, each registered together with its OpenAPI description (a route
//! cannot exist without one), and the document served at `/api/openapi.json`.

pub mod access;
pub mod alerts;
pub mod catalog;
pub mod destinations;
pub mod segments;
pub mod syncs;

use crate::AppState;
use crate::error::ErrorBody;
use serde::Deserialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, RefOr, ResponseBuilder};
use utoipa::{IntoParams, Modify, OpenApi as _};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wharf_service::PageRequest;

/// A page of a list: `cursor` from the previous page's `next_cursor`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// From the previous page's `next_cursor`; leave out for the first page.
    pub cursor: Option<String>,
    /// Items per page: 1 to 1000, default 100.
    pub limit: Option<u32>,
}

impl From<PageParams> for PageRequest {
    fn from(p: PageParams) -> Self {
        PageRequest {
            cursor: p.cursor,
            limit: p.limit,
        }
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "wharf",
        description = "wharf's REST API: sources, models, segments, S3 destinations, syncs and their runs, in one workspace per token. Send `Authorization: Bearer wharf_...` on every call. Errors are `{\"error\": {\"code\", \"message\", \"field\"}}`.",
    ),
    servers((url = "/api/v1")),
    components(schemas(ErrorBody)),
    modifiers(&Security),
    security(("bearer" = [])),
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("wharf_<64 hex digits>")
                    .build(),
            ),
        );
    }
}

/// The error statuses every operation may answer, with the error body.
const ERRORS: &[(&str, &str)] = &[
    (
        "400",
        "Malformed: not JSON, a duplicate key, an unknown field or parameter",
    ),
    ("401", "No token, or an unknown, revoked or expired one"),
    ("403", "The token's role may not do this"),
    ("404", "No such object in the token's workspace"),
    (
        "409",
        "The name is taken, the object is in use, or a run is in progress",
    ),
    (
        "422",
        "A value is invalid (`field` names it), or the operation failed on what it names",
    ),
    ("500", "wharf failed; the server's log has the details"),
];

/// Every operation gets the error responses, so clients and fuzzers know their shape.
fn add_error_responses(api: &mut OpenApi) {
    let error_schema = RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody"));
    for item in api.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            for (status, description) in ERRORS {
                operation
                    .responses
                    .responses
                    .entry((*status).to_string())
                    .or_insert_with(|| {
                        RefOr::T(
                            ResponseBuilder::new()
                                .description(*description)
                                .content(
                                    "application/json",
                                    ContentBuilder::new()
                                        .schema(Some(error_schema.clone()))
                                        .build(),
                                )
                                .build(),
                        )
                    });
            }
        }
    }
}

/// The `/api/v1` routes and their OpenAPI document.
pub fn routes() -> (axum::Router<AppState>, OpenApi) {
    let (router, mut api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(catalog::list_sources, catalog::add_source))
        .routes(routes!(catalog::show_source, catalog::remove_source))
        .routes(routes!(catalog::list_models, catalog::add_model))
        .routes(routes!(catalog::show_model, catalog::remove_model))
        .routes(routes!(catalog::preview_model))
        .routes(routes!(segments::list, segments::add))
        .routes(routes!(segments::show, segments::remove))
        .routes(routes!(segments::preview))
        .routes(routes!(segments::sql))
        .routes(routes!(destinations::list, destinations::add))
        .routes(routes!(
            destinations::show,
            destinations::update,
            destinations::remove
        ))
        .routes(routes!(destinations::policy))
        .routes(routes!(destinations::test))
        .routes(routes!(destinations::rotate_external_id))
        .routes(routes!(syncs::list, syncs::add))
        .routes(routes!(syncs::show, syncs::update, syncs::remove))
        .routes(routes!(syncs::plan))
        .routes(routes!(syncs::trigger))
        .routes(routes!(syncs::resume))
        .routes(routes!(syncs::pause))
        .routes(routes!(syncs::reset))
        .routes(routes!(syncs::list_runs))
        .routes(routes!(syncs::show_run))
        .routes(routes!(syncs::run_files))
        .routes(routes!(access::list_workspaces, access::add_workspace))
        .routes(routes!(access::list_users, access::add_user))
        .routes(routes!(access::show_user, access::remove_user))
        .routes(routes!(access::list_tokens, access::add_token))
        .routes(routes!(access::revoke_token))
        .routes(routes!(access::audit))
        .routes(routes!(alerts::list, alerts::add))
        .routes(routes!(alerts::show, alerts::remove))
        .split_for_parts();
    add_error_responses(&mut api);
    (router, api)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The operations of the document, as (method, path).
    fn operations(api: &OpenApi) -> Vec<(&'static str, String)> {
        let mut found = Vec::new();
        for (path, item) in &api.paths.paths {
            for (method, op) in [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("DELETE", &item.delete),
                ("PATCH", &item.patch),
            ] {
                if op.is_some() {
                    found.push((method, path.clone()));
                }
            }
        }
        found
    }

    #[test]
    fn every_resource_of_the_issue_has_its_operations_in_the_document() {
        let (_, api) = routes();
        let ops = operations(&api);
        let expected = [
            ("GET", "/sources"),
            ("POST", "/sources"),
            ("GET", "/sources/{name}"),
            ("DELETE", "/sources/{name}"),
            ("GET", "/models"),
            ("POST", "/models"),
            ("GET", "/models/{name}"),
            ("DELETE", "/models/{name}"),
            ("GET", "/models/{name}/preview"),
            ("GET", "/segments"),
            ("POST", "/segments"),
            ("GET", "/segments/{name}"),
            ("DELETE", "/segments/{name}"),
            ("GET", "/segments/{name}/preview"),
            ("GET", "/segments/{name}/sql"),
            ("GET", "/destinations"),
            ("POST", "/destinations"),
            ("GET", "/destinations/{name}"),
            ("PUT", "/destinations/{name}"),
            ("DELETE", "/destinations/{name}"),
            ("GET", "/destinations/{name}/policy"),
            ("POST", "/destinations/{name}/test"),
            ("POST", "/destinations/{name}/rotate-external-id"),
            ("GET", "/syncs"),
            ("POST", "/syncs"),
            ("GET", "/syncs/{name}"),
            ("PUT", "/syncs/{name}"),
            ("DELETE", "/syncs/{name}"),
            ("GET", "/syncs/{name}/plan"),
            ("POST", "/syncs/{name}/runs"),
            ("GET", "/runs"),
            ("POST", "/syncs/{name}/resume"),
            ("POST", "/syncs/{name}/pause"),
            ("POST", "/syncs/{name}/reset"),
            ("GET", "/runs/{run_id}"),
            ("GET", "/runs/{run_id}/files"),
            ("GET", "/workspaces"),
            ("POST", "/workspaces"),
            ("GET", "/users"),
            ("POST", "/users"),
            ("GET", "/users/{email}"),
            ("DELETE", "/users/{email}"),
            ("GET", "/tokens"),
            ("POST", "/tokens"),
            ("DELETE", "/tokens/{name}"),
            ("GET", "/audit"),
            ("GET", "/alerts"),
            ("POST", "/alerts"),
            ("GET", "/alerts/{name}"),
            ("DELETE", "/alerts/{name}"),
        ];
        for (method, path) in expected {
            assert!(
                ops.iter().any(|(m, p)| *m == method && p == path),
                "{method} {path} is not in the OpenAPI document"
            );
        }
        assert_eq!(ops.len(), expected.len(), "{ops:?}");
    }

    #[test]
    fn every_operation_documents_its_errors_and_requires_a_token() {
        let (_, api) = routes();
        let document = serde_json::to_value(&api).unwrap_or_default();
        assert_eq!(document["openapi"], "3.1.0");
        assert!(document["components"]["securitySchemes"]["bearer"].is_object());
        assert!(document["components"]["schemas"]["ErrorBody"].is_object());
        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                for status in ["400", "401", "403", "404", "409", "422", "500"] {
                    assert!(
                        op["responses"][status].is_object(),
                        "{method} {path} lacks {status}"
                    );
                }
                let ok = op["responses"]
                    .as_object()
                    .is_some_and(|r| r.keys().any(|k| k.starts_with('2')));
                assert!(ok, "{method} {path} documents no success");
            }
        }
    }

    /// Routes can only be added with the operation that documents them (`routes!` above);
    /// the only plain `.route(` calls are the four outside the API, in `lib.rs`, and the web
    /// UI's pages (`src/ui/`), which are not API operations.
    #[test]
    fn no_route_is_registered_without_its_description() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut plain = Vec::new();
        let mut stack = vec![dir];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() && !path.ends_with("ui") {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    for line in text
                        .lines()
                        .filter(|l| l.trim_start().starts_with(".route("))
                    {
                        plain.push(line.trim().to_string());
                    }
                }
            }
        }
        plain.sort();
        assert_eq!(
            plain,
            [
                ".route(\"/api/openapi.json\", get(openapi_document))",
                ".route(\"/healthz\", get(healthz))",
                ".route(\"/metrics\", get(metrics))",
                ".route(\"/readyz\", get(readyz))",
            ]
        );
    }
}
