//! The scheduler on a controlled clock: passes at chosen instants (no test sleeps for real
//! minutes), each claimed run executed for real against the in-process S3 server, then the next
//! pass. Covers due times over a simulated day, a missed window, overlap skip and queue, the bound
//! on runs in flight, retries of transient failures, pausing after failures in a row, resuming,
//! and fencing of a run whose lease was taken over.

use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wharf_delivery::local_s3::Fault;
use wharf_domain::FileSpec;
use wharf_domain::destination::S3DestinationSpec;
use wharf_service::{
    Caller, ClientSettings, ErrorKind, NewModelInput, NewSync, PolicyPatch, RunQuery, RunView,
    ScheduleSpec, Service, Settings, Trigger,
};
use wharf_testkit::S3TestServer;

const BUCKET: &str = "sched-bucket";

struct Fx {
    service: Service,
    caller: Caller,
    server: S3TestServer,
    home: tempfile::TempDir,
    _data: tempfile::TempDir,
}

async fn fixture() -> Fx {
    fixture_with_lease(time::Duration::seconds(60)).await
}

/// Leases last `lease` on the test's clock.
async fn fixture_with_lease(lease: time::Duration) -> Fx {
    let home = tempfile::tempdir().expect("home");
    let data = tempfile::tempdir().expect("data");
    std::fs::write(data.path().join("people.csv"), "id,name\n1,Ada\n2,Bob\n").expect("csv");
    let server = S3TestServer::start().await;
    server.create_bucket(BUCKET).await;
    let mut settings = Settings::new(home.path());
    settings.client = ClientSettings {
        allow_private_endpoints: true,
        ..ClientSettings::default()
    };
    settings.lease.duration = lease;
    let service = Service::open(settings).await.expect("service");
    let caller = Caller::cli("default");
    service
        .add_local_source(&caller, "files", data.path())
        .await
        .expect("source");
    service
        .add_model(
            &caller,
            NewModelInput {
                name: "people",
                source: "files",
                sql: "SELECT * FROM people",
                primary_key: "id",
            },
        )
        .await
        .expect("model");
    add_destination(&service, &caller, &server, "lake", BUCKET).await;
    Fx {
        service,
        caller,
        server,
        home,
        _data: data,
    }
}

async fn add_destination(
    service: &Service,
    caller: &Caller,
    server: &S3TestServer,
    name: &str,
    bucket: &str,
) {
    let spec: S3DestinationSpec = serde_json::from_value(serde_json::json!({
        "name": name, "bucket": bucket, "region": "us-east-1", "prefix": "out/",
        "endpoint": server.endpoint(),
        "auth": {"type": "access_key", "access_key_id": server.access_key, "secret_access_key": server.secret_key},
    }))
    .expect("spec");
    service
        .add_destination(caller, spec)
        .await
        .expect("destination");
}

fn scheduled(name: &str, destination: &str, schedule: ScheduleSpec) -> NewSync {
    NewSync {
        name: name.into(),
        model: Some("people".into()),
        destination: destination.into(),
        file: FileSpec {
            format: "csv".into(),
            ..FileSpec::default()
        },
        on_empty: "empty-file".into(),
        schedule: Some(schedule),
        ..NewSync::default()
    }
}

/// Every `text`, counted from `start` (so that the first due time is `start`, not one near
/// the real time the sync was added).
fn every(text: &str, start: OffsetDateTime) -> ScheduleSpec {
    ScheduleSpec::Interval {
        every: text.into(),
        start_at: Some(start.format(&Rfc3339).expect("format")),
    }
}

fn at(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).expect("time")
}

/// A midnight (UTC) after now, so that the clock of the test is ahead of the real one: leases
/// taken at its instants outlast the real time a run takes.
fn next_midnight() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    (now + time::Duration::days(1)).replace_time(time::Time::MIDNIGHT)
}

impl Fx {
    /// One pass at `now` with `free` slots; every claimed run executed to its end. Returns
    /// the runs' ids.
    async fn pass(&self, now: OffsetDateTime, free: usize) -> Vec<String> {
        let tick = self.service.scheduler_pass(now, free).await.expect("pass");
        let mut ids = Vec::new();
        for lease in tick.claimed {
            ids.push(lease.run_id.clone());
            let outcome = self.service.run_claimed(lease).await;
            assert!(outcome.status != "running", "{outcome:?}");
        }
        ids
    }

    async fn runs(&self, sync: &str) -> Vec<RunView> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .service
                .runs_page(
                    &self.caller,
                    &RunQuery {
                        sync: Some(sync.into()),
                        status: None,
                        page: wharf_service::PageRequest {
                            cursor: cursor.clone(),
                            limit: Some(1000),
                        },
                    },
                )
                .await
                .expect("runs");
            all.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        all.reverse();
        all
    }

    async fn keys(&self) -> Vec<String> {
        wharf_testkit::bucket_residue(&self.server.admin(), BUCKET)
            .await
            .0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_every_five_minutes_runs_at_the_right_instants_over_a_simulated_day() {
    let fx = fixture().await;
    let start = next_midnight();
    fx.service
        .add_sync(&fx.caller, scheduled("five", "lake", every("5m", start)))
        .await
        .expect("sync");
    // Passes every minute, 30 s after each minute, for a day.
    let mut claimed = 0;
    for minute in 0..24 * 60 {
        let now = start + time::Duration::minutes(minute) + time::Duration::seconds(30);
        claimed += fx.pass(now, 2).await.len();
    }
    let runs = fx.runs("five").await;
    assert_eq!(claimed, 288);
    assert_eq!(runs.len(), 288, "one run per due time");
    for (i, run) in runs.iter().enumerate() {
        let due = start + time::Duration::minutes(5 * i as i64);
        assert_eq!(at(&run.due_at), due, "run {i}");
        assert_eq!(run.trigger, "schedule");
        assert_eq!(run.attempt, 1);
        assert_eq!(run.status, "succeeded", "{run:?}");
        // Started at the first pass after it was due: 30 s late on this clock.
        let started = at(run.started_at.as_deref().expect("started"));
        assert_eq!(started - due, time::Duration::seconds(30));
        assert_eq!(run.files.len(), 1);
    }
    // Every epoch is new: each run fenced off the one before.
    let epochs: Vec<i64> = runs.iter().map(|r| r.epoch.expect("epoch")).collect();
    assert!(epochs.windows(2).all(|w| w[1] == w[0] + 1), "{epochs:?}");
    assert_eq!(fx.keys().await.len(), 288, "one file per run, none twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_window_runs_once_and_the_schedule_goes_on_from_now() {
    let fx = fixture().await;
    let start = next_midnight();
    fx.service
        .add_sync(&fx.caller, scheduled("hourly", "lake", every("1h", start)))
        .await
        .expect("sync");
    assert_eq!(fx.pass(start, 2).await.len(), 1);
    // Down from 00:01 to 05:20: five due times missed; one run at start-up.
    let back = start + time::Duration::minutes(5 * 60 + 20);
    assert_eq!(fx.pass(back, 2).await.len(), 1);
    assert!(
        fx.pass(back + time::Duration::minutes(1), 2)
            .await
            .is_empty()
    );
    let runs = fx.runs("hourly").await;
    assert_eq!(runs.len(), 2);
    assert_eq!(at(&runs[1].due_at), start + time::Duration::hours(1));
    // The next is the next slot after start-up, not one of the missed ones.
    let show = fx.service.sync(&fx.caller, "hourly").await.expect("show");
    assert_eq!(
        show.schedule.description,
        format!(
            "every hour, from {}",
            start.format(&Rfc3339).expect("format")
        )
    );
    assert_eq!(
        fx.pass(start + time::Duration::hours(6), 2).await.len(),
        1,
        "06:00 runs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_skip_refuses_and_queue_waits_once() {
    // Leases outlast the test's clock: the run in progress stays alive while it jumps.
    let fx = fixture_with_lease(time::Duration::days(1)).await;
    let start = next_midnight();
    fx.service
        .add_sync(&fx.caller, scheduled("busy", "lake", every("5m", start)))
        .await
        .expect("sync");
    let tick = fx.service.scheduler_pass(start, 2).await.expect("pass");
    assert_eq!(tick.claimed.len(), 1);
    let held = tick.claimed.into_iter().next().expect("lease");
    // Still running at the next due time: skipped.
    let tick = fx
        .service
        .scheduler_pass(start + time::Duration::minutes(5), 2)
        .await
        .expect("pass");
    assert!(
        tick.claimed.is_empty() && tick.queued.is_empty(),
        "{tick:?}"
    );
    assert_eq!(tick.skipped.len(), 1);
    assert_eq!(tick.skipped[0].running, held.run_id);
    // A trigger through the API is refused the same way.
    let api = Caller::cli("default");
    let refused = fx
        .service
        .trigger_run(&api, "busy", Trigger::Api)
        .await
        .expect_err("busy");
    assert_eq!(refused.kind, ErrorKind::Conflict);
    assert_eq!(refused.code, "run.in_progress");

    // With `queue`: one run waits, however many triggers come.
    let mut update = scheduled("busy", "lake", every("5m", start));
    update.schedule = None;
    update.policy = PolicyPatch {
        overlap: Some("queue".into()),
        ..PolicyPatch::default()
    };
    let view = fx
        .service
        .update_sync(&fx.caller, "busy", update)
        .await
        .expect("update");
    assert!(
        view.schedule
            .description
            .starts_with("every 5 minutes, from "),
        "kept: {}",
        view.schedule.description
    );
    let tick = fx
        .service
        .scheduler_pass(start + time::Duration::minutes(10), 2)
        .await
        .expect("pass");
    assert_eq!(tick.queued.len(), 1);
    let waiting = tick.queued[0].clone();
    let again = fx
        .service
        .trigger_run(&api, "busy", Trigger::Api)
        .await
        .expect("queued");
    assert_eq!(again, waiting, "the waiting run, not a second one");
    let tick = fx
        .service
        .scheduler_pass(start + time::Duration::minutes(15), 2)
        .await
        .expect("pass");
    assert!(tick.queued.is_empty() && tick.claimed.is_empty());
    let runs = fx.runs("busy").await;
    assert_eq!(
        runs.iter().map(|r| r.status).collect::<Vec<_>>(),
        ["running", "queued"]
    );
    // The first ends; the waiting one starts at the next pass.
    assert_eq!(fx.service.run_claimed(held).await.status, "succeeded");
    let started = fx.pass(start + time::Duration::minutes(16), 2).await;
    assert_eq!(started, [waiting]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_that_sends_changes_is_not_redefined_or_reset_while_it_runs() {
    let fx = fixture_with_lease(time::Duration::days(1)).await;
    let start = next_midnight();
    let mut sync = scheduled("changes", "lake", every("1h", start));
    sync.mode = Some("diff".into());
    sync.on_empty = "skip".into();
    fx.service
        .add_sync(&fx.caller, sync.clone())
        .await
        .expect("sync");
    let tick = fx.service.scheduler_pass(start, 2).await.expect("pass");
    let held = tick.claimed.into_iter().next().expect("running");
    // Its run would make a snapshot of the old definition current: refused, saying why.
    let mut redefined = sync.clone();
    redefined.schedule = None;
    redefined.columns = Some("id".into());
    let refused = fx
        .service
        .update_sync(&fx.caller, "changes", redefined.clone())
        .await
        .expect_err("running");
    assert_eq!(refused.kind, ErrorKind::Conflict);
    assert_eq!(refused.code, "run.in_progress");
    assert!(
        refused.message.contains(&held.run_id),
        "{}",
        refused.message
    );
    let refused = fx
        .service
        .reset_sync(&fx.caller, "changes")
        .await
        .expect_err("running");
    assert_eq!(refused.code, "run.in_progress");
    // The schedule or the policy alone keep the snapshot: allowed.
    let mut policy = sync.clone();
    policy.schedule = None;
    policy.policy = PolicyPatch {
        max_attempts: Some(5),
        ..PolicyPatch::default()
    };
    fx.service
        .update_sync(&fx.caller, "changes", policy)
        .await
        .expect("a policy change");
    // Once the run ends, the change is made.
    assert_eq!(fx.service.run_claimed(held).await.status, "succeeded");
    let view = fx
        .service
        .update_sync(&fx.caller, "changes", redefined)
        .await
        .expect("after the run");
    assert!(view.snapshot_reset, "{view:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_in_flight_are_bounded_and_the_rest_wait_in_order_of_due_time() {
    let fx = fixture().await;
    let start = next_midnight() + time::Duration::minutes(3);
    for (name, minute) in [("c", 2), ("a", 0), ("b", 1)] {
        let first = start - time::Duration::minutes(3 - minute);
        fx.service
            .add_sync(&fx.caller, scheduled(name, "lake", every("1h", first)))
            .await
            .expect("sync");
    }
    let tick = fx.service.scheduler_pass(start, 2).await.expect("pass");
    let names: Vec<&str> = tick.claimed.iter().map(|l| l.sync_name.as_str()).collect();
    assert_eq!(names, ["a", "b"], "earliest due first");
    assert_eq!(tick.queued.len(), 3);
    for lease in tick.claimed {
        fx.service.run_claimed(lease).await;
    }
    let tick = fx
        .service
        .scheduler_pass(start + time::Duration::seconds(1), 2)
        .await
        .expect("pass");
    let names: Vec<&str> = tick.claimed.iter().map(|l| l.sync_name.as_str()).collect();
    assert_eq!(names, ["c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_permanent_ones_pause_the_sync_after_three() {
    let fx = fixture().await;
    // A bucket that does not exist: NoSuchBucket, permanent.
    add_destination(
        &fx.service,
        &fx.caller,
        &fx.server,
        "gone",
        "no-such-bucket",
    )
    .await;
    let start = next_midnight();
    let mut sync = scheduled("doomed", "gone", every("1h", start));
    sync.policy = PolicyPatch {
        retry_base_seconds: Some(10),
        ..PolicyPatch::default()
    };
    fx.service.add_sync(&fx.caller, sync).await.expect("sync");
    for hour in 0..3 {
        let ran = fx.pass(start + time::Duration::hours(hour), 2).await;
        assert_eq!(ran.len(), 1, "hour {hour}");
    }
    let runs = fx.runs("doomed").await;
    assert!(
        runs.iter()
            .all(|r| r.status == "failed" && r.attempt == 1 && r.trigger == "schedule"),
        "permanent: never retried: {runs:?}"
    );
    assert_eq!(
        runs[0].error.as_ref().expect("error").code,
        "s3.NoSuchBucket"
    );
    let view = fx.service.sync(&fx.caller, "doomed").await.expect("show");
    assert!(view.paused);
    let reason = view.pause_reason.expect("reason");
    assert!(
        reason.contains("3 scheduled runs in a row failed") && reason.contains("s3.NoSuchBucket"),
        "{reason}"
    );
    assert!(view.schedule.next_runs.is_empty(), "paused: no next runs");
    // The run history says which run paused it, and why.
    assert_eq!(runs[2].paused_sync.as_deref(), Some(reason.as_str()));
    assert!(
        runs[..2].iter().all(|r| r.paused_sync.is_none()),
        "{runs:?}"
    );
    // Paused: skipped by the scheduler, but a run asked for by hand still runs.
    assert!(
        fx.pass(start + time::Duration::hours(5), 2)
            .await
            .is_empty()
    );
    let asked = fx
        .service
        .trigger_run(&fx.caller, "doomed", Trigger::Api)
        .await
        .expect("manual");
    assert_eq!(fx.pass(start + time::Duration::hours(5), 2).await, [asked]);
    let resumed = fx
        .service
        .resume_sync(&fx.caller, "doomed")
        .await
        .expect("resume");
    assert!(!resumed.paused && resumed.pause_reason.is_none());
    assert_eq!(resumed.failures_in_row, 0);
    assert_eq!(resumed.schedule.next_runs.len(), 3);
    let history = fx.runs("doomed").await;
    assert_eq!(
        history[2].paused_sync.as_deref(),
        Some(reason.as_str()),
        "resuming the sync leaves its history as it was"
    );
    fx.service
        .remove_sync(&fx.caller, "doomed")
        .await
        .expect("removed");

    // Transient: SlowDown on every attempt of the SDK, then a retry after the backoff.
    let day2 = start + time::Duration::days(1);
    fx.service
        .add_sync(&fx.caller, scheduled("flaky", "lake", every("1h", day2)))
        .await
        .expect("sync");
    fx.server.faults.inject(
        "PutObject",
        Fault::Error {
            code: "SlowDown".into(),
            status: 503,
        },
        1000,
    );
    let first = fx.pass(day2, 2).await;
    fx.server.faults.clear("PutObject");
    let runs = fx.runs("flaky").await;
    assert_eq!(first.len(), 1, "{first:?} {runs:?}");
    assert_eq!(
        runs.len(),
        2,
        "the failed run and its queued retry: {runs:?}"
    );
    assert_eq!(runs[0].run_id, first[0]);
    assert_eq!(runs[0].error.as_ref().expect("error").code, "s3.SlowDown");
    assert_eq!(runs[1].status, "queued");
    assert_eq!(runs[1].trigger, "retry");
    assert_eq!(runs[1].attempt, 2);
    assert_eq!(runs[1].retry_of.as_deref(), Some(first[0].as_str()));
    let backoff = at(&runs[1].due_at) - at(runs[0].finished_at.as_deref().expect("finished"));
    assert!(backoff <= time::Duration::seconds(61), "{backoff}");
    // Due after the backoff (at most 60 s from the first failure).
    let retried = fx.pass(day2 + time::Duration::minutes(2), 2).await;
    assert_eq!(retried, [runs[1].run_id.clone()]);
    let runs = fx.runs("flaky").await;
    assert_eq!(runs[1].status, "succeeded", "{runs:?}");
    let view = fx.service.sync(&fx.caller, "flaky").await.expect("show");
    assert!(!view.paused && view.failures_in_row == 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_lease_was_taken_over_commits_nothing() {
    let fx = fixture().await;
    let start = next_midnight();
    fx.service
        .add_sync(&fx.caller, scheduled("fenced", "lake", every("1h", start)))
        .await
        .expect("sync");
    let tick = fx.service.scheduler_pass(start, 2).await.expect("pass");
    let stalled = tick.claimed.into_iter().next().expect("claimed");
    // The first attempt stalls on its way to S3 (its PutObject waits on the server)...
    fx.server
        .faults
        .inject("PutObject", Fault::Delay(Duration::from_secs(4)), 1);
    let zombie = {
        let service = fx.service.clone();
        let lease = stalled.clone();
        tokio::spawn(async move { service.run_claimed(lease).await })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while fx.server.faults.seen("PutObject") < 1 {
        assert!(std::time::Instant::now() < deadline, "no PutObject");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...past its lease: the next pass closes it and its retry takes the sync, a new epoch.
    let later = start + time::Duration::minutes(5);
    let tick = fx.service.scheduler_pass(later, 2).await.expect("pass");
    assert_eq!(tick.expired.len(), 1);
    assert_eq!(tick.expired[0].run_id, stalled.run_id);
    let winner = tick.claimed.into_iter().next().expect("the retry");
    assert!(winner.epoch > stalled.epoch);
    assert_eq!(
        fx.service.run_claimed(winner.clone()).await.status,
        "succeeded"
    );
    // The zombie wakes: its object landed (the request was on the wire), but it may not
    // record it; it removes it, and its end is not recorded.
    let zombie = zombie.await.expect("join");
    assert_eq!(zombie.status, "failed", "{zombie:?}");
    assert_eq!(zombie.error.as_ref().expect("error").code, "lease_lost");
    let runs = fx.runs("fenced").await;
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].status, "interrupted");
    assert!(runs[0].files.is_empty(), "{:?}", runs[0]);
    assert_eq!(runs[1].status, "succeeded");
    assert_eq!(runs[1].retry_of.as_deref(), Some(stalled.run_id.as_str()));
    let winner_keys: Vec<String> = runs[1].files.iter().map(|f| f.key.clone()).collect();
    assert_eq!(winner_keys.len(), 1);
    assert_eq!(fx.keys().await, winner_keys, "exactly the winner's files");
    let (_, uploads) = wharf_testkit::bucket_residue(&fx.server.admin(), BUCKET).await;
    assert!(uploads.is_empty(), "{uploads:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_whose_stored_schedule_cannot_be_read_is_paused_and_the_others_run() {
    let fx = fixture().await;
    let start = next_midnight();
    for name in ["from-the-future", "ordinary"] {
        fx.service
            .add_sync(&fx.caller, scheduled(name, "lake", every("1h", start)))
            .await
            .expect("sync");
    }
    // What a newer wharf might have written: a schedule kind this build does not know.
    let db = fx.home.path().join(wharf_store::DATABASE_FILE);
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("db");
    sqlx::query("UPDATE syncs SET schedule = ? WHERE name = 'from-the-future'")
        .bind(r#"{"kind":"lunar","phase":"full"}"#)
        .execute(&pool)
        .await
        .expect("update");
    pool.close().await;

    let ran = fx.pass(start, 2).await;
    assert_eq!(ran.len(), 1, "the readable sync still runs: {ran:?}");
    let ordinary = fx.runs("ordinary").await;
    assert_eq!(ordinary.len(), 1);
    assert_eq!(
        ordinary[0].run_id, ran[0],
        "the run was the readable sync's"
    );
    assert_eq!(ordinary[0].status, "succeeded");
    // Paused with the reason, so the next passes skip it rather than failing on it again.
    let tick = fx
        .service
        .scheduler_pass(start + time::Duration::hours(1), 2)
        .await
        .expect("a later pass succeeds");
    assert_eq!(tick.claimed.len(), 1, "only the ordinary sync's next run");
    assert!(
        tick.unreadable.is_empty(),
        "reported once: {:?}",
        tick.unreadable
    );
    for lease in tick.claimed {
        fx.service.run_claimed(lease).await;
    }
    let err = fx
        .service
        .sync(&fx.caller, "from-the-future")
        .await
        .expect_err("unreadable");
    assert!(err.to_string().contains("from-the-future"), "{err}");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("db");
    let (paused_at, reason, next): (Option<String>, Option<String>, Option<String>) =
        sqlx::query_as(
            "SELECT paused_at, pause_reason, next_run_at FROM syncs WHERE name = 'from-the-future'",
        )
        .fetch_one(&pool)
        .await
        .expect("row");
    assert!(paused_at.is_some() && next.is_none());
    let reason = reason.expect("reason");
    assert!(
        reason.contains("cannot be read") && reason.contains("lunar"),
        "{reason}"
    );
}
