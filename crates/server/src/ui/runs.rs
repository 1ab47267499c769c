//! The run pages: the history across the workspace (filtered by status and sync), a run's page
//! (its files, its error, the attempts of the same logical run, and while it runs, its live
//! counters with Cancel), and the charts of rows and durations a sync's page draws.

use super::session::{Page, SignedForm};
use super::{error_page, page, render, segment};
use crate::AppState;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::context;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wharf_service::{PageRequest, RunQuery, RunView};

/// Runs per page of the history.
const PAGE_SIZE: u32 = 50;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/runs", get(list))
        .route("/runs/{id}", get(show))
        .route("/runs/{id}/progress", get(progress))
        .route("/runs/{id}/cancel", post(cancel))
}

/// A run as tables show it: its record with the duration worked out.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunRow {
    #[serde(flatten)]
    pub run: RunView,
    /// Seconds from start to end (or to now, while it runs).
    pub seconds: Option<f64>,
    pub duration: String,
    pub files_count: usize,
}

fn parse(at: Option<&str>) -> Option<OffsetDateTime> {
    at.and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
}

/// `1.2 s`, `3 min 05 s`, `2 h 01 min`.
fn duration_text(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else if seconds < 3600.0 {
        format!(
            "{} min {:02} s",
            (seconds / 60.0) as u64,
            (seconds % 60.0) as u64
        )
    } else {
        format!(
            "{} h {:02} min",
            (seconds / 3600.0) as u64,
            ((seconds % 3600.0) / 60.0) as u64
        )
    }
}

impl From<RunView> for RunRow {
    fn from(run: RunView) -> Self {
        let start = parse(run.started_at.as_deref());
        let end = parse(run.finished_at.as_deref())
            .or_else(|| (run.status == "running").then(OffsetDateTime::now_utc));
        let seconds = match (start, end) {
            (Some(s), Some(e)) => Some((e - s).as_seconds_f64().max(0.0)),
            _ => None,
        };
        RunRow {
            duration: seconds.map(duration_text).unwrap_or_default(),
            seconds,
            files_count: run.files.len(),
            run,
        }
    }
}

/// One bar of a chart: where it is drawn, and what it says in words.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Bar {
    pub x: f64,
    pub y: f64,
    pub height: f64,
    pub label: String,
    pub failed: bool,
}

/// A bar chart of one measure over a sync's last runs, oldest first; drawn as SVG by the
/// template, with each value in a title and in a table, so it reads without colour or sight.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Chart {
    pub title: &'static str,
    pub max_label: String,
    pub bar_width: f64,
    pub bars: Vec<Bar>,
}

/// The chart area's size in the SVG's units.
const CHART_WIDTH: f64 = 600.0;
const CHART_HEIGHT: f64 = 140.0;

fn chart(
    title: &'static str,
    runs: &[&RunRow],
    value: impl Fn(&RunRow) -> f64,
    label: impl Fn(f64) -> String,
) -> Chart {
    let max = runs.iter().map(|r| value(r)).fold(0.0_f64, f64::max);
    let slot = CHART_WIDTH / runs.len().max(1) as f64;
    let bar_width = (slot * 0.7).max(1.0);
    let bars = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let v = value(r);
            let height = if max > 0.0 {
                (v / max * CHART_HEIGHT).max(1.0)
            } else {
                1.0
            };
            Bar {
                x: i as f64 * slot + (slot - bar_width) / 2.0,
                y: CHART_HEIGHT - height,
                height,
                label: format!(
                    "{}: {} ({})",
                    r.run
                        .started_at
                        .as_deref()
                        .map(|t| t.get(..16).unwrap_or(t).replace('T', " "))
                        .unwrap_or_default(),
                    label(v),
                    r.run.status
                ),
                failed: r.run.status != "succeeded",
            }
        })
        .collect();
    Chart {
        title,
        max_label: label(max),
        bar_width,
        bars,
    }
}

/// The charts of rows and durations over `runs` (newest first, as listed), for runs that
/// ended.
pub(crate) fn charts(runs: &[RunRow]) -> Vec<Chart> {
    let ended: Vec<&RunRow> = runs
        .iter()
        .rev()
        .filter(|r| r.run.finished_at.is_some() && r.seconds.is_some())
        .collect();
    if ended.len() < 2 {
        return Vec::new();
    }
    vec![
        chart(
            "Rows per run",
            &ended,
            |r| r.run.rows as f64,
            |v| format!("{} rows", v as u64),
        ),
        chart(
            "Duration per run",
            &ended,
            |r| r.seconds.unwrap_or(0.0),
            duration_text,
        ),
    ]
}

#[derive(Deserialize)]
struct Filter {
    status: Option<String>,
    sync: Option<String>,
    after: Option<String>,
}

const STATUSES: &[&str] = &[
    "queued",
    "running",
    "succeeded",
    "failed",
    "interrupted",
    "cancelled",
];

/// `GET /runs`.
async fn list(
    State(state): State<AppState>,
    Query(filter): Query<Filter>,
    page_: Page,
) -> Response {
    let status = filter.status.filter(|s| !s.is_empty());
    let sync = filter.sync.filter(|s| !s.is_empty());
    let query = RunQuery {
        sync: sync.clone(),
        status: status.clone(),
        page: PageRequest {
            cursor: filter.after.clone(),
            limit: Some(PAGE_SIZE),
        },
    };
    let result = match state.service.runs_page(page_.caller(), &query).await {
        Ok(r) => r,
        Err(e) => return error_page(e),
    };
    let syncs: Vec<String> = match state.service.syncs(page_.caller()).await {
        Ok(s) => s.into_iter().map(|s| s.name).collect(),
        Err(e) => return error_page(e),
    };
    let runs: Vec<RunRow> = result.items.into_iter().map(RunRow::from).collect();
    page(
        "runs/list.html",
        context! {
            chrome => page_.chrome,
            nav => "runs",
            runs,
            next => result.next_cursor,
            status,
            sync,
            statuses => STATUSES,
            syncs,
        },
    )
}

/// `GET /runs/{id}`.
async fn show(State(state): State<AppState>, Path(id): Path<String>, page_: Page) -> Response {
    let run = match state.service.run(page_.caller(), &id).await {
        Ok(r) => r,
        Err(e) => return error_page(e),
    };
    // The attempts of the same logical run: the first, its retries, this one.
    let attempts: Vec<RunRow> = match state
        .service
        .runs(page_.caller(), Some(&run.sync), 200)
        .await
    {
        Ok(runs) => runs
            .into_iter()
            .filter(|r| r.logical_run == run.logical_run)
            .map(RunRow::from)
            .collect(),
        Err(e) => return error_page(e),
    };
    // A retry that has yet to end: the failed attempt's page says so and links to it.
    let next_attempt = attempts
        .iter()
        .filter(|a| a.run.attempt > run.attempt && a.run.finished_at.is_none())
        .min_by_key(|a| a.run.attempt)
        .cloned();
    let live = state
        .service
        .run_progress(page_.caller(), &id)
        .await
        .ok()
        .flatten();
    let definition = run
        .definition
        .as_ref()
        .map(|d| serde_json::to_string_pretty(d).unwrap_or_default());
    page(
        "runs/show.html",
        context! {
            chrome => page_.chrome,
            nav => "runs",
            run => RunRow::from(run),
            attempts,
            next_attempt,
            live,
            definition,
        },
    )
}

/// `GET /runs/{id}/progress`: the live panel, for the page to swap in until the run ends.
async fn progress(State(state): State<AppState>, Path(id): Path<String>, page_: Page) -> Response {
    let run = match state.service.run(page_.caller(), &id).await {
        Ok(r) => r,
        Err(e) => return error_page(e),
    };
    let live = state
        .service
        .run_progress(page_.caller(), &id)
        .await
        .ok()
        .flatten();
    let ended = run.finished_at.is_some();
    let mut response = render(
        StatusCode::OK,
        "runs/progress.html",
        context! { run => RunRow::from(run), live, chrome => page_.chrome },
    );
    if ended {
        // The run is over: load its page again for its files and outcome.
        response
            .headers_mut()
            .insert("hx-refresh", axum::http::HeaderValue::from_static("true"));
    }
    response
}

/// `POST /runs/{id}/cancel`.
async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: SignedForm,
) -> Response {
    match state.service.cancel_run(form.page.caller(), &id).await {
        Ok(()) => Redirect::to(&format!("/runs/{}", segment(&id))).into_response(),
        Err(e) => error_page(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration_text(1.234), "1.2 s");
        assert_eq!(duration_text(185.0), "3 min 05 s");
        assert_eq!(duration_text(7260.0), "2 h 01 min");
    }
}
