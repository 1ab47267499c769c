//! Which failed runs are tried again, when, and which count towards pausing their sync.
//!
//! [`classify_failure`] is the one function that decides whether a failure is worth another
//! attempt, from the run's error code alone:
//! - **transient**: the network, timeouts, S3 5xx answers and throttling, credentials that could
//!   not be had or refreshed, a warehouse connection lost or timed out, the store busy, a run
//!   interrupted by its process stopping. The same run may well succeed a minute later.
//! - **permanent**: everything that needs a person: access denied, a missing bucket or key, bad
//!   SQL, a missing column, a bad key template, a refused endpoint, an object that exists and
//!   may not be overwritten. Retrying would fail the same way and hide the problem.
//! - **stopped**: a person cancelled the run, or another attempt took it over; nothing to retry
//!   and nothing to count.
//!
//! Unknown codes are permanent: a wrong guess costs one run, where retrying an unknown
//! failure in a loop could hammer a destination.

use time::OffsetDateTime;
use wharf_domain::RunPolicy;
use wharf_runner::RunFailure;
use wharf_store::Trigger;

/// What kind of failure a run's error code is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    Transient,
    Permanent,
    Stopped,
}

/// S3 error codes that say "try again later".
const TRANSIENT_S3: &[&str] = &[
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "TooManyRequests",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "OperationAborted",
    "ExpiredToken",
    "NoSuchUpload",
];

/// Every other code wharf gives that is transient.
const TRANSIENT: &[&str] = &[
    "s3.network",
    "s3.timeout",
    "s3.protocol",
    "aws.no_identity",
    "endpoint.unresolvable",
    "postgres.connection_lost",
    "postgres.timeout",
    "postgres.unreachable",
    "store.error",
    "interrupted",
];

/// Decides whether a failure with this error code is worth retrying (see the module's notes).
pub fn classify_failure(code: &str) -> FailureClass {
    if code == "cancelled" || code == "lease_lost" {
        return FailureClass::Stopped;
    }
    if TRANSIENT.contains(&code) {
        return FailureClass::Transient;
    }
    if let Some(s3) = code.strip_prefix("s3.") {
        if TRANSIENT_S3.contains(&s3) {
            return FailureClass::Transient;
        }
        if let Some(status) = s3.strip_prefix("http_") {
            return match status.parse::<u16>() {
                Ok(500..=599 | 429 | 408) => FailureClass::Transient,
                _ => FailureClass::Permanent,
            };
        }
    }
    FailureClass::Permanent
}

/// What follows a run's end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Followup {
    /// Another attempt, due then.
    pub retry_at: Option<OffsetDateTime>,
    /// The failure is final for a scheduled due time.
    pub counts_towards_pause: bool,
}

/// What follows a run that ended with `failure` (none: it succeeded). Runs started from the
/// command line are not retried (the person who started it sees the error); scheduled, API and
/// UI runs are, while attempts remain. Only scheduled runs (and their retries) count towards
/// pausing. `unit` is the random draw in [0, 1) of the backoff's jitter.
pub fn decide(
    trigger: Trigger,
    attempt: u32,
    policy: &RunPolicy,
    failure: Option<&RunFailure>,
    now: OffsetDateTime,
    unit: f64,
) -> Followup {
    let Some(failure) = failure else {
        return Followup {
            retry_at: None,
            counts_towards_pause: false,
        };
    };
    let class = classify_failure(&failure.code);
    let retry = class == FailureClass::Transient
        && trigger != Trigger::Manual
        && attempt < policy.max_attempts;
    let retry_at = retry.then(|| {
        // An interruption is not the destination's doing: no reason to wait.
        let wait = if failure.code == "interrupted" {
            std::time::Duration::ZERO
        } else {
            policy.backoff(attempt, unit)
        };
        now + wait
    });
    Followup {
        retry_at,
        counts_towards_pause: retry_at.is_none()
            && class != FailureClass::Stopped
            && trigger.is_scheduled(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classification_table() {
        use FailureClass::*;
        let table = [
            ("s3.network", Transient),
            ("s3.timeout", Transient),
            ("s3.SlowDown", Transient),
            ("s3.InternalError", Transient),
            ("s3.ServiceUnavailable", Transient),
            ("s3.RequestTimeout", Transient),
            ("s3.ExpiredToken", Transient),
            ("s3.NoSuchUpload", Transient),
            ("s3.http_503", Transient),
            ("s3.http_429", Transient),
            ("aws.no_identity", Transient),
            ("postgres.connection_lost", Transient),
            ("postgres.timeout", Transient),
            ("postgres.unreachable", Transient),
            ("endpoint.unresolvable", Transient),
            ("interrupted", Transient),
            ("s3.AccessDenied", Permanent),
            ("s3.NoSuchBucket", Permanent),
            ("s3.InvalidAccessKeyId", Permanent),
            ("s3.SignatureDoesNotMatch", Permanent),
            ("s3.KMS.DisabledException", Permanent),
            ("s3.key_exists", Permanent),
            ("s3.http_403", Permanent),
            ("query.sql", Permanent),
            ("model.primary_key", Permanent),
            ("segment.invalid", Permanent),
            ("sync.key_template", Permanent),
            ("sync.invalid", Permanent),
            ("postgres.auth", Permanent),
            ("postgres.permission_denied", Permanent),
            ("endpoint.refused", Permanent),
            ("format.error", Permanent),
            ("something.new", Permanent),
            ("cancelled", Stopped),
            ("lease_lost", Stopped),
        ];
        for (code, class) in table {
            assert_eq!(classify_failure(code), class, "{code}");
        }
    }

    fn failed(code: &str) -> RunFailure {
        RunFailure {
            code: code.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn retries_until_the_attempts_run_out_then_count() {
        let policy = RunPolicy::default();
        let now = OffsetDateTime::UNIX_EPOCH;
        let slow = failed("s3.SlowDown");
        let first = decide(Trigger::Schedule, 1, &policy, Some(&slow), now, 0.5);
        assert_eq!(first.retry_at, Some(now + time::Duration::seconds(30)));
        assert!(!first.counts_towards_pause);
        let second = decide(Trigger::Retry, 2, &policy, Some(&slow), now, 0.5);
        assert_eq!(second.retry_at, Some(now + time::Duration::seconds(60)));
        let last = decide(Trigger::Retry, 3, &policy, Some(&slow), now, 0.5);
        assert_eq!(last.retry_at, None);
        assert!(last.counts_towards_pause);
        // Permanent: no retry, counted at once.
        let denied = decide(
            Trigger::Schedule,
            1,
            &policy,
            Some(&failed("s3.AccessDenied")),
            now,
            0.5,
        );
        assert_eq!(denied.retry_at, None);
        assert!(denied.counts_towards_pause);
        // An interruption is retried without waiting.
        let interrupted = decide(
            Trigger::Schedule,
            1,
            &policy,
            Some(&failed("interrupted")),
            now,
            0.9,
        );
        assert_eq!(interrupted.retry_at, Some(now));
        // A person's command-line run is neither retried nor counted; an API run is retried.
        let manual = decide(Trigger::Manual, 1, &policy, Some(&slow), now, 0.5);
        assert_eq!(
            manual,
            Followup {
                retry_at: None,
                counts_towards_pause: false
            }
        );
        assert!(
            decide(Trigger::Api, 1, &policy, Some(&slow), now, 0.5)
                .retry_at
                .is_some()
        );
        let api_denied = decide(
            Trigger::Api,
            1,
            &policy,
            Some(&failed("s3.AccessDenied")),
            now,
            0.5,
        );
        assert!(!api_denied.counts_towards_pause);
        // Cancelled: nothing follows.
        let cancelled = decide(
            Trigger::Schedule,
            1,
            &policy,
            Some(&failed("cancelled")),
            now,
            0.5,
        );
        assert_eq!(
            cancelled,
            Followup {
                retry_at: None,
                counts_towards_pause: false
            }
        );
        // Success: nothing follows.
        assert_eq!(
            decide(Trigger::Schedule, 1, &policy, None, now, 0.5),
            Followup {
                retry_at: None,
                counts_towards_pause: false
            }
        );
        // One attempt only: the first transient failure is final.
        let once = RunPolicy {
            max_attempts: 1,
            ..policy
        };
        assert!(decide(Trigger::Schedule, 1, &once, Some(&slow), now, 0.5).counts_towards_pause);
    }
}
