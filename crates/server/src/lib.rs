//! The HTTP server behind `wharf serve`: the REST API (`/api/v1`, described by the OpenAPI
//! document at `/api/openapi.json`), the web UI (every other path), health probes, request
//! logs, and a graceful shutdown that interrupts running runs.
//!
//! It owns HTTP: routes, status codes, JSON bodies and their parse errors, bearer tokens,
//! request ids. Every operation is a call into `wharf_service`, which holds the rules; this
//! crate holds none. It must never see Arrow, AWS SDK or sqlx types.

pub mod api;
pub mod client;
mod error;
mod extract;
mod log;
mod ui;

pub use error::{ApiError, ErrorBody};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use wharf_service::Service;

/// What every handler reaches.
#[derive(Clone)]
pub struct AppState {
    pub service: Service,
    openapi: Arc<serde_json::Value>,
    options: ServerOptions,
    /// The connection tests started from the UI's pages.
    ui_tests: Arc<ui::Tests>,
}

/// What the operator decides about the server.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerOptions {
    /// `/metrics` without a token (for a scraper on a private network).
    pub metrics_public: bool,
    /// Browsers reach wharf through an HTTPS proxy: session cookies are `Secure`, and the
    /// client's address for sign-in throttling is the one the proxy appends to
    /// `X-Forwarded-For`.
    pub behind_https_proxy: bool,
}

/// How long in-flight requests and runs get to finish once shutdown starts.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// The whole application: `/api/v1`, `/api/openapi.json`, `/healthz`, `/readyz`, `/metrics`
/// and the web UI.
pub fn router(service: Service, options: ServerOptions) -> Router {
    let (api, openapi) = api::routes();
    let openapi = serde_json::to_value(&openapi).unwrap_or_default();
    let state = AppState {
        service,
        openapi: Arc::new(openapi),
        options,
        ui_tests: Arc::default(),
    };
    Router::new()
        .nest("/api/v1", api)
        .route("/api/openapi.json", get(openapi_document))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(ui::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "route.method_not_allowed",
                "this route does not take that method; see /api/openapi.json",
            )
        })
        .layer(axum::middleware::from_fn(ui::security_headers))
        .layer(axum::middleware::from_fn(log::requests))
        .with_state(state)
}

/// No route: a JSON error under `/api`, a page elsewhere.
async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    if uri.path().starts_with("/api/") {
        ApiError::not_found_route().into_response()
    } else {
        ui::not_found()
    }
}

async fn openapi_document(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.openapi.as_ref().clone())
}

/// Live: the process answers.
async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Ready: the store answers and its schema is this build's.
/// `GET /metrics`: Prometheus' text format; an admin token unless the operator made it public.
async fn metrics(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let caller = if state.options.metrics_public {
        None
    } else {
        Some(extract::bearer(&headers, &state).await?)
    };
    let text = state.service.metrics_text(caller.as_ref()).await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    ))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.service.ready().await {
        Ok(()) => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ready" })),
        ),
        Err(e) => {
            tracing::warn!(code = %e.code, "not ready: {}", e.message);
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "status": "unavailable", "code": e.code })),
            )
        }
    }
}

/// Serves `service` on `listener` until `shutdown` completes; then stops accepting, lets
/// in-flight requests finish and interrupts running runs (their uploads aborted, recorded
/// `interrupted`), giving both [`SHUTDOWN_GRACE`] before returning anyway.
pub async fn serve(
    listener: TcpListener,
    service: Service,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(service.clone(), options);
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        stopping_tx.send_replace(true);
    };
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(signal);
    let interrupt = {
        let service = service.clone();
        let mut stopping = stopping_rx.clone();
        async move {
            let _ = stopping.wait_for(|s| *s).await;
            tracing::info!("shutting down: no new requests; interrupting runs in progress");
            let left = service.interrupt_runs(SHUTDOWN_GRACE).await;
            if left > 0 {
                tracing::warn!(
                    runs = left,
                    "runs still stopping at exit; the next run of each closes it"
                );
            }
        }
    };
    let deadline = {
        let mut stopping = stopping_rx.clone();
        async move {
            let _ = stopping.wait_for(|s| *s).await;
            tokio::time::sleep(SHUTDOWN_GRACE + Duration::from_secs(2)).await;
        }
    };
    let scheduler = {
        let service = service.clone();
        let mut stopping = stopping_rx.clone();
        async move {
            service
                .run_scheduler(async move {
                    let _ = stopping.wait_for(|s| *s).await;
                })
                .await;
        }
    };
    let alerts = {
        let service = service.clone();
        let mut stopping = stopping_rx;
        async move {
            service
                .run_alert_deliveries(async move {
                    let _ = stopping.wait_for(|s| *s).await;
                })
                .await;
        }
    };
    let (served, (), (), ()) = tokio::join!(
        async {
            tokio::select! {
                served = server => served,
                () = deadline => {
                    tracing::warn!("requests still open after the grace period; closing them");
                    Ok(())
                }
            }
        },
        interrupt,
        scheduler,
        alerts
    );
    served
}

/// The scheduler without HTTP (`wharf worker`), for deployments that run the API and the
/// runs apart: runs syncs on their schedules until `shutdown`, then interrupts the runs it
/// started (within [`SHUTDOWN_GRACE`]).
pub async fn work(service: Service, shutdown: impl Future<Output = ()>) {
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    tokio::join!(
        async {
            shutdown.await;
            stopping_tx.send_replace(true);
        },
        service.run_scheduler(stopped(stopping_rx.clone())),
        service.run_alert_deliveries(stopped(stopping_rx)),
    );
    let left = service.interrupt_runs(SHUTDOWN_GRACE).await;
    if left > 0 {
        tracing::warn!(
            runs = left,
            "runs still stopping at exit; their leases expire and they are retried"
        );
    }
}
