//! What happens around a sync's runs: a trigger that arrives while one runs (overlap), retries
//! of failed runs, and pausing a sync whose scheduled runs keep failing.

use crate::error::InvalidValue;
use crate::string_enum::string_enum;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

string_enum!(
    /// What a trigger does while the sync has a run in progress: `skip` refuses it (a due
    /// time is skipped, an API call gets 409); `queue` queues it once, to run when the current
    /// run ends (more triggers while one is queued add nothing).
    Overlap, "overlap", "the overlap policy", {
        Skip => "skip",
        Queue => "queue",
    }
);

// `string_enum!` takes no attributes on variants, so `#[default]` cannot be derived.
#[allow(clippy::derivable_impls)]
impl Default for Overlap {
    fn default() -> Self {
        Self::Skip
    }
}

/// A sync's run policy. Defaults: skip overlapping triggers, 3 attempts per due time with
/// exponential backoff from 1 minute capped at 1 hour, pause after 3 failed due times in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RunPolicy {
    #[schema(value_type = String, example = "skip")]
    pub overlap: Overlap,
    /// Attempts per due time, the first included (1: never retry).
    pub max_attempts: u32,
    /// The backoff before the first retry, doubling after each.
    pub retry_base_seconds: u32,
    /// The longest backoff.
    pub retry_cap_seconds: u32,
    /// Pause the sync after this many scheduled runs in a row failed for good (0: never).
    pub pause_after: u32,
}

impl Default for RunPolicy {
    fn default() -> Self {
        Self {
            overlap: Overlap::Skip,
            max_attempts: 3,
            retry_base_seconds: 60,
            retry_cap_seconds: 3_600,
            pause_after: 3,
        }
    }
}

impl RunPolicy {
    pub fn validate(self) -> Result<Self, InvalidValue> {
        if !(1..=10).contains(&self.max_attempts) {
            return Err(InvalidValue::new(
                "max_attempts",
                self.max_attempts.to_string(),
                "attempts per due time are from 1 (no retry) to 10",
            ));
        }
        if !(1..=86_400).contains(&self.retry_base_seconds) {
            return Err(InvalidValue::new(
                "retry_base_seconds",
                self.retry_base_seconds.to_string(),
                "the first backoff is from 1 second to 1 day",
            ));
        }
        if self.retry_cap_seconds < self.retry_base_seconds || self.retry_cap_seconds > 86_400 {
            return Err(InvalidValue::new(
                "retry_cap_seconds",
                self.retry_cap_seconds.to_string(),
                format!(
                    "the longest backoff is at least the first ({} s) and at most 1 day",
                    self.retry_base_seconds
                ),
            ));
        }
        if self.pause_after > 100 {
            return Err(InvalidValue::new(
                "pause_after",
                self.pause_after.to_string(),
                "pause after 1 to 100 failed runs in a row, or 0 to never pause",
            ));
        }
        Ok(self)
    }

    /// The wait before attempt `attempt + 1` after attempt `attempt` (from 1) failed:
    /// exponential backoff with full jitter, `unit` in [0, 1) drawn by the caller.
    pub fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let ceiling =
            (u64::from(self.retry_base_seconds) << exponent).min(u64::from(self.retry_cap_seconds));
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        // Millisecond resolution; `ceiling` is at most a day, so the product is exact enough.
        Duration::from_millis((ceiling as f64 * 1_000.0 * unit) as u64)
    }
}

/// Parses `30s`, `1m`, `1h`, `2d` as seconds (for retry backoff flags).
pub fn parse_seconds(field: &'static str, text: &str) -> Result<u32, InvalidValue> {
    let fail = || {
        InvalidValue::new(
            field,
            text,
            "write a number and a unit: s, m, h or d (e.g. 1m)",
        )
    };
    let t = text.trim().to_ascii_lowercase();
    let unit = match t.chars().last() {
        Some('s') => 1,
        Some('m') => 60,
        Some('h') => 3_600,
        Some('d') => 86_400,
        _ => return Err(fail()),
    };
    let n: u32 = t[..t.len() - 1].parse().map_err(|_| fail())?;
    n.checked_mul(unit).ok_or_else(fail)
}
