//! The connection test as the destination page shows it: started by a form, run in the
//! background, its steps shown as each one ends (the page polls for them with htmx, or
//! reloads itself without JavaScript). Tests are kept in memory for [`KEEP`]: a result is
//! also recorded on the destination (its status and last test time), which is what lasts.

use super::session::{Page, SignedForm};
use super::{error_page, page, render};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use wharf_service::{Caller, ConnectionReport, ServiceError, StepReport};

/// How long a test's steps stay viewable.
const KEEP: Duration = Duration::from_secs(15 * 60);
/// Tests kept at most (the oldest are forgotten first).
const MAX_KEPT: usize = 1000;

/// The tests started from this process's pages.
#[derive(Default)]
pub(crate) struct Tests {
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

struct Job {
    workspace: String,
    destination: String,
    started: Instant,
    steps: Mutex<Vec<StepReport>>,
    outcome: Mutex<Option<Result<ConnectionReport, ServiceError>>>,
}

impl Tests {
    pub(crate) fn start(&self, state: &AppState, caller: &Caller, destination: &str) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let job = Arc::new(Job {
            workspace: caller.workspace.clone(),
            destination: destination.to_string(),
            started: Instant::now(),
            steps: Mutex::default(),
            outcome: Mutex::default(),
        });
        {
            let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
            jobs.retain(|_, j| j.started.elapsed() < KEEP);
            if jobs.len() >= MAX_KEPT
                && let Some(oldest) = jobs
                    .iter()
                    .min_by_key(|(_, j)| j.started)
                    .map(|(id, _)| id.clone())
            {
                jobs.remove(&oldest);
            }
            jobs.insert(id.clone(), job.clone());
        }
        let service = state.service.clone();
        let caller = caller.clone();
        tokio::spawn(async move {
            let watched = job.clone();
            let on_step = move |step: &StepReport| {
                watched
                    .steps
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(step.clone());
            };
            let outcome = service
                .test_destination_watched(&caller, &job.destination, &on_step)
                .await;
            *job.outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
        });
        id
    }

    /// The test `id` of `destination` in `workspace`: another workspace's is not found.
    fn get(&self, workspace: &str, destination: &str, id: &str) -> Option<Arc<Job>> {
        let jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        jobs.get(id)
            .filter(|j| j.workspace == workspace && j.destination == destination)
            .cloned()
    }
}

/// A step as the page shows it.
#[derive(Serialize)]
struct StepView {
    title: &'static str,
    /// `pass`, `warn` or `fail`.
    result: &'static str,
    message: String,
    error_code: Option<String>,
    request_id: Option<String>,
    fix: Option<String>,
}

/// What each step checks, in words, with the permission it needs.
fn title(step: &str) -> &'static str {
    match step {
        "assume_role" => "Assume the role with the External ID (sts:AssumeRole)",
        "assume_role_without_external_id" => "Try the role without the External ID",
        "list_multipart_uploads" => "List uploads in progress (s3:ListBucketMultipartUploads)",
        "create_multipart_upload" => "Start a test upload (s3:PutObject)",
        "upload_part" => "Upload a test part (s3:PutObject)",
        "list_parts" => "List the test upload's parts (s3:ListMultipartUploadParts)",
        "abort_multipart_upload" => "Remove the test upload (s3:AbortMultipartUpload)",
        _ => "Check",
    }
}

fn step_view(step: &StepReport) -> StepView {
    StepView {
        title: title(step.step),
        result: match (step.ok, step.fix.is_some()) {
            (true, false) => "pass",
            (true, true) => "warn",
            (false, _) => "fail",
        },
        message: step.message.clone(),
        error_code: step.error_code.clone(),
        request_id: step.request_id.clone(),
        fix: step.fix.clone(),
    }
}

/// The context of the steps fragment.
fn steps_context(name: &str, id: &str, job: &Job, csrf: &str) -> minijinja::Value {
    let steps: Vec<StepView> = job
        .steps
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(step_view)
        .collect();
    let outcome = job.outcome.lock().unwrap_or_else(PoisonError::into_inner);
    let (done, ok, error) = match &*outcome {
        None => (false, false, None),
        Some(Ok(report)) => (true, report.ok, None),
        Some(Err(e)) => (true, false, Some(e.message.clone())),
    };
    // The test never completes an object; the one upload it starts is aborted by the last
    // step. Unless that step failed, nothing of the test is in the bucket.
    let residue = steps
        .iter()
        .any(|s| s.result == "fail" && s.title == title("abort_multipart_upload"));
    context! { name, id, steps, done, ok, error, residue, csrf }
}

/// `POST /destinations/{name}/connect`.
pub(crate) async fn start(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: SignedForm,
) -> Response {
    let caller = form.page.caller();
    // Not found and not allowed are answered now, not on the test's page.
    if let Err(e) = state.service.destination(caller, &name).await {
        return error_page(e);
    }
    if let Err(e) = caller.require(wharf_service::Role::Editor) {
        return error_page(e);
    }
    let id = state.ui_tests.start(&state, caller, &name);
    Redirect::to(&format!(
        "/destinations/{}/tests/{id}",
        super::segment(&name)
    ))
    .into_response()
}

/// `GET /destinations/{name}/tests/{id}`.
pub(crate) async fn show(
    State(state): State<AppState>,
    Path((name, id)): Path<(String, String)>,
    page_: Page,
) -> Response {
    let destination = match state.service.destination(page_.caller(), &name).await {
        Ok(d) => d,
        Err(e) => return error_page(e),
    };
    let Some(job) = state.ui_tests.get(&page_.caller().workspace, &name, &id) else {
        return expired(&name);
    };
    page(
        "destinations/test.html",
        context! {
            chrome => page_.chrome,
            nav => "destinations",
            destination,
            ..steps_context(&name, &id, &job, &page_.chrome.csrf)
        },
    )
}

/// `GET /destinations/{name}/tests/{id}/steps`: the steps so far, for the page to swap in.
pub(crate) async fn steps(
    State(state): State<AppState>,
    Path((name, id)): Path<(String, String)>,
    page_: Page,
) -> Response {
    let Some(job) = state.ui_tests.get(&page_.caller().workspace, &name, &id) else {
        return expired(&name);
    };
    render(
        StatusCode::OK,
        "destinations/steps.html",
        steps_context(&name, &id, &job, &page_.chrome.csrf),
    )
}

fn expired(name: &str) -> Response {
    error_page(ServiceError::new(
        wharf_service::ErrorKind::NotFound,
        "test.not_found",
        format!(
            "this connection test of {name:?} is over and forgotten; its result is on the destination's page"
        ),
    ))
}
