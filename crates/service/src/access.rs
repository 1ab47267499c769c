//! Who may call: workspaces, and API tokens scoped to one workspace and one role. A token is
//! 256 random bits from the operating system, shown once as `wharf_<64 hex digits>` (the
//! prefix lets secret scanners find leaked ones); the store keeps only its SHA-256.

use crate::{Actor, Caller, ErrorKind, Service, ServiceError};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wharf_domain::Name;
use wharf_store::{NewToken, TokenRecord};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything in its workspace.
    Viewer,
    /// Also manages sources, models, segments, destinations and syncs, and runs syncs.
    Editor,
    /// Also manages workspaces and tokens.
    Admin,
}

impl Role {
    pub fn parse(text: &str) -> Result<Self, ServiceError> {
        match text {
            "admin" => Ok(Role::Admin),
            "editor" => Ok(Role::Editor),
            "viewer" => Ok(Role::Viewer),
            other => Err(ServiceError::bad_input(
                "role",
                format!("role {other:?} is not one of admin, editor, viewer"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
        }
    }
}

/// The text a token starts with.
pub const TOKEN_PREFIX: &str = "wharf_";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WorkspaceView {
    pub name: String,
    pub created_at: String,
}

/// A token just created: the only time its text is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct NewTokenView {
    pub name: String,
    pub workspace: String,
    pub role: &'static str,
    pub token: String,
    pub expires_at: Option<String>,
}

/// A token as lists show it: never its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    pub name: String,
    pub workspace: String,
    pub role: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl From<TokenRecord> for TokenView {
    fn from(t: TokenRecord) -> Self {
        Self {
            name: t.name,
            workspace: t.workspace,
            role: t.role,
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// `90d`, `12h`, `30m`: a lifetime, in seconds.
fn parse_lifetime(text: &str) -> Result<i64, ServiceError> {
    let bad = || {
        ServiceError::bad_input(
            "expires_in",
            format!(
                "{text:?} is not a lifetime: write a whole number of days, hours or minutes, as 90d, 12h or 30m"
            ),
        )
    };
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        _ => return Err(bad()),
    };
    match n.checked_mul(seconds) {
        Some(s) if n > 0 && s <= 10 * 365 * 86_400 => Ok(s),
        _ => Err(ServiceError::bad_input(
            "expires_in",
            format!("{text:?}: a token lives at least a minute and at most ten years"),
        )),
    }
}

/// Equal without returning early, so the time taken says nothing about where bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unauthorized(message: &str) -> ServiceError {
    ServiceError::new(ErrorKind::Unauthorized, "auth.invalid_token", message)
}

impl Service {
    pub async fn create_workspace(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<WorkspaceView, ServiceError> {
        let object = name.to_string();
        self.audited(caller, "create", "workspace", &object, async {
            caller.require(Role::Admin)?;
            let name = Name::parse("name", name)?;
            let record = self.store.create_workspace(&name).await?;
            Ok(WorkspaceView {
                name: record.name,
                created_at: record.created_at,
            })
        })
        .await
    }

    /// The workspaces the caller can see: every one from the command line, a token's own
    /// otherwise (a token knows nothing of other workspaces).
    pub async fn workspaces(&self, caller: &Caller) -> Result<Vec<WorkspaceView>, ServiceError> {
        Ok(self
            .store
            .list_workspaces()
            .await?
            .into_iter()
            .filter(|w| caller.actor == Actor::Cli || w.name == caller.workspace)
            .map(|w| WorkspaceView {
                name: w.name,
                created_at: w.created_at,
            })
            .collect())
    }

    /// Creates a token for the caller's workspace. `expires_in`: `90d`, `12h`, `30m`; `None`:
    /// it never expires.
    pub async fn create_token(
        &self,
        caller: &Caller,
        name: &str,
        role: &str,
        expires_in: Option<&str>,
    ) -> Result<NewTokenView, ServiceError> {
        let object = name.to_string();
        self.audited(caller, "create", "token", &object, async {
            caller.require(Role::Admin)?;
            let name = Name::parse("name", name)?;
            let role = Role::parse(role)?;
            let expires_at = expires_in
                .map(|text| {
                    let seconds = parse_lifetime(text)?;
                    (OffsetDateTime::now_utc() + time::Duration::seconds(seconds))
                        .format(&Rfc3339)
                        .map_err(|e| ServiceError::internal("time", e.to_string()))
                })
                .transpose()?;
            let mut random = [0u8; 32];
            getrandom::fill(&mut random).map_err(|e| {
                ServiceError::internal(
                    "random.unavailable",
                    format!("cannot make a token: the operating system gave no randomness ({e})"),
                )
            })?;
            let token: String = std::iter::once(TOKEN_PREFIX.to_string())
                .chain(random.iter().map(|b| format!("{b:02x}")))
                .collect();
            let sha256: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            let record = self
                .store
                .create_token(
                    &caller.workspace,
                    &NewToken {
                        name: &name,
                        role: role.as_str(),
                        sha256: &sha256,
                        expires_at: expires_at.as_deref(),
                    },
                )
                .await?;
            Ok(NewTokenView {
                name: record.name,
                workspace: record.workspace,
                role: role.as_str(),
                token,
                expires_at: record.expires_at,
            })
        })
        .await
    }

    pub async fn tokens(&self, caller: &Caller) -> Result<Vec<TokenView>, ServiceError> {
        caller.require(Role::Admin)?;
        let tokens = self.store.list_tokens(&caller.workspace).await?;
        Ok(tokens.into_iter().map(TokenView::from).collect())
    }

    /// Revokes a token of the caller's workspace: it stops working at once.
    pub async fn revoke_token(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<TokenView, ServiceError> {
        let object = name.to_string();
        self.audited(caller, "revoke", "token", &object, async {
            caller.require(Role::Admin)?;
            Ok(self
                .store
                .revoke_token(&caller.workspace, name)
                .await?
                .into())
        })
        .await
    }

    /// Whether anyone can get in: a token that is neither revoked nor expired, or a user.
    /// A server with neither would answer every request with 401.
    pub async fn has_way_in(&self) -> Result<bool, ServiceError> {
        Ok(self.store.has_live_token().await? || self.store.has_users().await?)
    }

    /// The caller a bearer token stands for. An unknown, revoked or expired token is
    /// `Unauthorized`, with one message for all three: a caller learns nothing about which.
    pub async fn authenticate(&self, token: &str) -> Result<Caller, ServiceError> {
        let invalid = "the token is not valid: it is unknown, revoked or expired";
        if !token.starts_with(TOKEN_PREFIX) {
            return Err(unauthorized(invalid));
        }
        let sha256: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let Some((record, stored)) = self.store.token_by_hash(&sha256).await? else {
            return Err(unauthorized(invalid));
        };
        if !constant_time_eq(&stored, &sha256) || record.revoked_at.is_some() {
            return Err(unauthorized(invalid));
        }
        if let Some(expires_at) = &record.expires_at {
            let expired = OffsetDateTime::parse(expires_at, &Rfc3339)
                .map_or(true, |at| at <= OffsetDateTime::now_utc());
            if expired {
                return Err(unauthorized(invalid));
            }
        }
        Ok(Caller {
            workspace: record.workspace,
            actor: Actor::Token {
                name: record.name,
                role: Role::parse(&record.role)?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_are_whole_days_hours_or_minutes() {
        assert_eq!(parse_lifetime("90d").ok(), Some(90 * 86_400));
        assert_eq!(parse_lifetime("12h").ok(), Some(12 * 3_600));
        assert_eq!(parse_lifetime("30m").ok(), Some(30 * 60));
        for bad in ["", "d", "90", "1.5d", "-1d", "0m", "90w", "99999999999d"] {
            let e = parse_lifetime(bad).expect_err(bad);
            assert_eq!(e.field.as_deref(), Some("expires_in"), "{bad}");
        }
    }

    #[test]
    fn equal_bytes_compare_equal_and_others_do_not() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
