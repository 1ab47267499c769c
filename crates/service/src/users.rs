//! Users of the web UI: an email, a password kept only as an argon2id hash, and a role in each
//! workspace they belong to. Adding an email that exists to another workspace takes that
//! user's password, so that an admin of one workspace cannot take over a user of another by
//! setting a new one.

use crate::{Caller, ErrorKind, Role, Service, ServiceError};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use serde::Serialize;
use wharf_store::UserRecord;

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted, in bytes (hashing is deliberately slow; unbounded input is not).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A user's membership of the caller's workspace, as every interface shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub email: String,
    pub workspace: String,
    pub role: String,
    pub created_at: String,
}

impl From<UserRecord> for UserView {
    fn from(u: UserRecord) -> Self {
        Self {
            email: u.email,
            workspace: u.workspace,
            role: u.role,
            created_at: u.created_at,
        }
    }
}

/// An email address as wharf keys users by it: trimmed of nothing, compared in lower case.
fn parse_email(text: &str) -> Result<String, ServiceError> {
    let bad = |why: &str| {
        ServiceError::bad_input(
            "email",
            format!(
                "{:?} is not an email address: {why}",
                text.chars().take(100).collect::<String>()
            ),
        )
    };
    if text.len() > 254 {
        return Err(bad("it is longer than 254 characters"));
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it contains spaces or control characters"));
    }
    let Some((local, domain)) = text.rsplit_once('@') else {
        return Err(bad("it has no @"));
    };
    if local.is_empty() || domain.is_empty() || !domain.contains('.') || domain.contains('@') {
        return Err(bad("write it as name@example.com"));
    }
    Ok(text.to_lowercase())
}

fn check_password(password: &str) -> Result<(), ServiceError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(ServiceError::bad_input(
            "password",
            format!("the password has {chars} characters; use at least {MIN_PASSWORD_CHARS}"),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ServiceError::bad_input(
            "password",
            format!("the password is longer than {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// argon2id with the crate's defaults (19 MiB, 2 passes: OWASP's recommended minimum), a salt
/// of 16 random bytes, in PHC string form.
fn hash_password(password: &str) -> Result<String, ServiceError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| {
        ServiceError::internal(
            "random.unavailable",
            format!("cannot hash the password: the operating system gave no randomness ({e})"),
        )
    })?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| ServiceError::internal("password.hash", e.to_string()))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| ServiceError::internal("password.hash", e.to_string()))?
        .to_string())
}

fn password_matches(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

impl Service {
    /// Adds a user to the caller's workspace with `role`. A new user gets `password`; an
    /// existing one (from another workspace) must give theirs.
    pub async fn add_user(
        &self,
        caller: &Caller,
        email: &str,
        role: &str,
        password: &str,
    ) -> Result<UserView, ServiceError> {
        let object = email.to_string();
        self.audited(caller, "create", "user", &object, async {
            caller.require(Role::Admin)?;
            let email = parse_email(email)?;
            let role = Role::parse(role)?;
            check_password(password)?;
            let hash = match self.store.user_by_email(&email).await? {
                Some(existing) => {
                    let password = password.to_string();
                    let stored = existing.password_hash.clone();
                    let matches = tokio::task::spawn_blocking(move || {
                        password_matches(&password, &stored)
                    })
                    .await
                    .unwrap_or(false);
                    if !matches {
                        return Err(ServiceError {
                            field: Some("password".into()),
                            ..ServiceError::new(
                                ErrorKind::Conflict,
                                "user.exists",
                                format!(
                                    "a user {email} exists (in another workspace); give their current password to add them here"
                                ),
                            )
                        });
                    }
                    existing.password_hash
                }
                None => {
                    let password = password.to_string();
                    tokio::task::spawn_blocking(move || hash_password(&password))
                        .await
                        .map_err(|e| ServiceError::internal("password.hash", e.to_string()))??
                }
            };
            Ok(self
                .store
                .add_user(&caller.workspace, &email, role.as_str(), &hash)
                .await?
                .into())
        })
        .await
    }

    pub async fn users(&self, caller: &Caller) -> Result<Vec<UserView>, ServiceError> {
        caller.require(Role::Admin)?;
        let users = self.store.list_users(&caller.workspace).await?;
        Ok(users.into_iter().map(UserView::from).collect())
    }

    pub async fn user(&self, caller: &Caller, email: &str) -> Result<UserView, ServiceError> {
        caller.require(Role::Admin)?;
        let email = parse_email(email).map_err(|_| ServiceError::not_found("user", email))?;
        Ok(self.store.user(&caller.workspace, &email).await?.into())
    }

    /// Removes a user from the caller's workspace (and from wharf, if it was their last).
    pub async fn remove_user(&self, caller: &Caller, email: &str) -> Result<(), ServiceError> {
        let object = email.to_string();
        self.audited(caller, "remove", "user", &object, async {
            caller.require(Role::Admin)?;
            let email = parse_email(email).map_err(|_| ServiceError::not_found("user", email))?;
            Ok(self.store.remove_user(&caller.workspace, &email).await?)
        })
        .await
    }

    /// Whether `password` is the user's (for sign-in). Unknown users take as long as known
    /// ones, so timing does not tell which emails exist.
    pub async fn verify_password(&self, email: &str, password: &str) -> Result<bool, ServiceError> {
        let stored = match parse_email(email) {
            Ok(email) => self
                .store
                .user_by_email(&email)
                .await?
                .map(|u| u.password_hash),
            Err(_) => None,
        };
        let known = stored.is_some();
        let password = password.to_string();
        let matches = tokio::task::spawn_blocking(move || {
            // A hash of a random password: verifying against it costs what a real one does.
            static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            let stored = stored.unwrap_or_else(|| {
                DECOY
                    .get_or_init(|| {
                        hash_password("decoy password, never valid").unwrap_or_default()
                    })
                    .clone()
            });
            password_matches(&password, &stored)
        })
        .await
        .unwrap_or(false);
        Ok(known && matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_compared_in_lower_case() {
        assert_eq!(
            parse_email("Ada@Example.com").ok().as_deref(),
            Some("ada@example.com")
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "a\n@b.c",
        ] {
            let e = parse_email(bad).expect_err(bad);
            assert_eq!(e.field.as_deref(), Some("email"), "{bad}");
        }
    }

    #[test]
    fn a_hash_is_argon2id_salted_and_verifies_only_its_password() {
        let one = hash_password("correct horse battery").expect("hash");
        let two = hash_password("correct horse battery").expect("hash");
        assert!(one.starts_with("$argon2id$"), "{one}");
        assert_ne!(one, two, "salted");
        assert!(password_matches("correct horse battery", &one));
        assert!(!password_matches("correct horse battery!", &one));
        assert!(!password_matches("anything", "not a hash"));
    }

    #[test]
    fn short_and_huge_passwords_are_refused() {
        assert!(check_password("short").is_err());
        assert!(check_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        assert!(check_password("twelve chars").is_ok());
    }
}
