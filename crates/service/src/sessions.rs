//! Signing in to the web UI. A session is 256 random bits from the operating system, held by
//! the browser in a cookie; the store keeps only its SHA-256. A session ends when it has been
//! idle for [`SESSION_IDLE`], [`SESSION_LIFETIME`] after it began, on sign-out, or when its
//! user leaves the workspace it is in. Its CSRF token is derived from the session token, so a
//! store that leaks its hashes leaks no CSRF token either.
//!
//! Failed sign-ins are counted per account and per address, in this process: past the limits
//! below, sign-ins are refused for a while without checking the password, so guessing is slow
//! and costs no argon2 work.

use crate::{Actor, Caller, ErrorKind, Role, Service, ServiceError};
use sha2::{Digest as _, Sha256};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A session unused for this long is over.
pub const SESSION_IDLE: Duration = Duration::from_secs(2 * 3600);
/// A session is over this long after sign-in, used or not.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Failed sign-ins counted over this window.
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failed sign-ins to one account within the window before its sign-ins are refused.
const FAILURES_PER_ACCOUNT: usize = 5;
/// Failed sign-ins from one address within the window (to any accounts) before refusal.
const FAILURES_PER_ADDRESS: usize = 20;
/// Accounts and addresses remembered at most; the oldest are forgotten first.
const MAX_TRACKED: usize = 100_000;

/// A session just begun: the cookie's value. Shown to the browser once, never stored.
#[derive(Clone)]
pub struct NewSession {
    pub token: String,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewSession { token: <redacted> }")
    }
}

/// A live session, as a request sees it.
#[derive(Debug, Clone)]
pub struct SessionView {
    /// Acts as the signed-in user in the workspace they are looking at.
    pub caller: Caller,
    pub email: String,
    pub role: Role,
    /// Every workspace the user belongs to, with their role there, by name.
    pub workspaces: Vec<(String, Role)>,
    /// What every state-changing form of this session must carry.
    pub csrf_token: String,
}

/// Recent failed sign-ins.
#[derive(Debug, Default)]
pub(crate) struct Failures {
    by_account: HashMap<String, VecDeque<Instant>>,
    by_address: HashMap<IpAddr, VecDeque<Instant>>,
}

impl Failures {
    /// How long until `email` from `address` may try again, when either is over its limit.
    fn wait(&mut self, email: &str, address: IpAddr, now: Instant) -> Option<Duration> {
        let account = recent(self.by_account.get_mut(email), now);
        let from_address = recent(self.by_address.get_mut(&address), now);
        let over = |times: Option<&VecDeque<Instant>>, limit: usize| {
            times
                .filter(|t| t.len() >= limit)
                .and_then(|t| t.front())
                .map(|first| FAILURE_WINDOW.saturating_sub(now.duration_since(*first)))
        };
        over(account, FAILURES_PER_ACCOUNT)
            .into_iter()
            .chain(over(from_address, FAILURES_PER_ADDRESS))
            .max()
    }

    fn record(&mut self, email: &str, address: IpAddr, now: Instant) {
        if self.by_account.len() >= MAX_TRACKED || self.by_address.len() >= MAX_TRACKED {
            self.by_account
                .retain(|_, t| recent(Some(t), now).is_some_and(|t| !t.is_empty()));
            self.by_address
                .retain(|_, t| recent(Some(t), now).is_some_and(|t| !t.is_empty()));
            if self.by_account.len() >= MAX_TRACKED {
                self.by_account.clear();
            }
            if self.by_address.len() >= MAX_TRACKED {
                self.by_address.clear();
            }
        }
        self.by_account
            .entry(email.to_string())
            .or_default()
            .push_back(now);
        self.by_address.entry(address).or_default().push_back(now);
    }

    fn forget_account(&mut self, email: &str) {
        self.by_account.remove(email);
    }
}

/// The failures within the window (older ones dropped).
fn recent(times: Option<&mut VecDeque<Instant>>, now: Instant) -> Option<&VecDeque<Instant>> {
    let times = times?;
    while times
        .front()
        .is_some_and(|t| now.duration_since(*t) >= FAILURE_WINDOW)
    {
        times.pop_front();
    }
    Some(times)
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The CSRF token of the session with `token`.
fn csrf_token(token: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(b"wharf csrf v1\0");
    digest.update(token.as_bytes());
    hex(&digest.finalize())
}

/// A session token: 64 hex digits.
fn well_formed(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

fn session_over(message: &str) -> ServiceError {
    ServiceError::new(ErrorKind::Unauthorized, "auth.session_expired", message)
}

/// Whether `stamp` (a store time) is more than `limit` before `now`; unreadable times count
/// as over.
fn older_than(stamp: &str, limit: Duration, now: OffsetDateTime) -> bool {
    OffsetDateTime::parse(stamp, &Rfc3339).map_or(true, |at| now - at > limit)
}

impl Service {
    /// Signs `email` in with `password` from `address`: a new session in the first of their
    /// workspaces (by name). A wrong email and a wrong password get the same answer.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        address: IpAddr,
    ) -> Result<NewSession, ServiceError> {
        let email = email.trim().to_lowercase();
        let wait = self.failures().wait(&email, address, Instant::now());
        if let Some(wait) = wait {
            let minutes = wait.as_secs().div_ceil(60).max(1);
            return Err(ServiceError::new(
                ErrorKind::Throttled,
                "auth.throttled",
                format!(
                    "too many failed sign-ins; try again in {minutes} minute{}",
                    if minutes == 1 { "" } else { "s" }
                ),
            ));
        }
        if !self.verify_password(&email, password).await? {
            self.failures().record(&email, address, Instant::now());
            tracing::info!(%address, "a sign-in failed: wrong email or password");
            return Err(ServiceError {
                field: Some("password".into()),
                ..ServiceError::new(
                    ErrorKind::Unauthorized,
                    "auth.sign_in_failed",
                    "the email or the password is not right",
                )
            });
        }
        self.failures().forget_account(&email);
        let workspaces = self.store.workspaces_of_user(&email).await?;
        let Some((workspace, _)) = workspaces.first() else {
            return Err(ServiceError::new(
                ErrorKind::Unauthorized,
                "auth.no_workspace",
                "this user belongs to no workspace; ask an admin to add them to one",
            ));
        };
        let now = OffsetDateTime::now_utc();
        self.store
            .delete_expired_sessions(
                &wharf_store::stamp(now - SESSION_LIFETIME),
                &wharf_store::stamp(now - SESSION_IDLE),
            )
            .await?;
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(|e| {
            ServiceError::internal(
                "random.unavailable",
                format!("cannot start a session: the operating system gave no randomness ({e})"),
            )
        })?;
        let token = hex(&random);
        self.store
            .create_session(&token_hash(&token), &email, workspace)
            .await?;
        Ok(NewSession { token })
    }

    /// The live session with `token`, or `Unauthorized` when it is unknown, over, or its user
    /// left its workspace.
    pub async fn session(&self, token: &str) -> Result<SessionView, ServiceError> {
        self.session_at(token, OffsetDateTime::now_utc()).await
    }

    /// [`Service::session`] as it would answer at `now` (tests move the clock forward with
    /// it; the times stored are the real ones).
    pub async fn session_at(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<SessionView, ServiceError> {
        let gone = "your session has ended; sign in again";
        if !well_formed(token) {
            return Err(session_over(gone));
        }
        let hash = token_hash(token);
        let Some(record) = self.store.session(&hash).await? else {
            return Err(session_over(gone));
        };
        if older_than(&record.created_at, SESSION_LIFETIME, now)
            || older_than(&record.last_seen_at, SESSION_IDLE, now)
        {
            self.store.delete_session(&hash).await?;
            return Err(session_over(gone));
        }
        // One write a minute at most per session, not one per request.
        if older_than(&record.last_seen_at, Duration::from_secs(60), now) {
            self.store
                .touch_session(&hash, &wharf_store::stamp(now))
                .await?;
        }
        let role = Role::parse(&record.role)?;
        let workspaces = self
            .store
            .workspaces_of_user(&record.email)
            .await?
            .into_iter()
            .map(|(name, role)| Ok((name, Role::parse(&role)?)))
            .collect::<Result<_, ServiceError>>()?;
        Ok(SessionView {
            caller: Caller {
                workspace: record.workspace,
                actor: Actor::User {
                    email: record.email.clone(),
                    role,
                },
            },
            email: record.email,
            role,
            workspaces,
            csrf_token: csrf_token(token),
        })
    }

    /// Points the session at another of its user's workspaces (`NotFound` for any other).
    pub async fn switch_workspace(&self, token: &str, workspace: &str) -> Result<(), ServiceError> {
        self.session(token).await?;
        Ok(self
            .store
            .switch_session_workspace(&token_hash(token), workspace)
            .await?)
    }

    /// Ends the session with `token` (nothing happens for an unknown one).
    pub async fn sign_out(&self, token: &str) -> Result<(), ServiceError> {
        if well_formed(token) {
            self.store.delete_session(&token_hash(token)).await?;
        }
        Ok(())
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, Failures> {
        // A panic while holding the lock leaves counts that are still counts.
        self.sign_in_failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_refused_after_five_failures_for_the_rest_of_the_window() {
        let mut f = Failures::default();
        let start = Instant::now();
        let here: IpAddr = [127, 0, 0, 1].into();
        for i in 0..FAILURES_PER_ACCOUNT {
            assert_eq!(f.wait("ada@example.com", here, start), None, "after {i}");
            f.record("ada@example.com", here, start);
        }
        let wait = f.wait("ada@example.com", here, start + Duration::from_secs(60));
        assert_eq!(wait, Some(FAILURE_WINDOW - Duration::from_secs(60)));
        assert_eq!(
            f.wait("bob@example.com", here, start),
            None,
            "another account"
        );
        assert_eq!(
            f.wait("ada@example.com", here, start + FAILURE_WINDOW),
            None,
            "the window passed"
        );
    }

    #[test]
    fn an_address_is_refused_after_twenty_failures_across_accounts() {
        let mut f = Failures::default();
        let start = Instant::now();
        let there: IpAddr = [10, 0, 0, 9].into();
        for i in 0..FAILURES_PER_ADDRESS {
            f.record(&format!("user{i}@example.com"), there, start);
        }
        assert!(f.wait("new@example.com", there, start).is_some());
        assert_eq!(f.wait("new@example.com", [10, 0, 0, 8].into(), start), None);
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_are_not_the_session_token() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        assert_ne!(csrf_token(&a), csrf_token(&b));
        assert_ne!(csrf_token(&a), a);
        assert_eq!(csrf_token(&a).len(), 64);
        assert!(well_formed(&a));
        assert!(!well_formed("wharf_abc"));
    }
}
