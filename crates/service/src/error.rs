//! The service's one public error: a kind that every interface maps (the CLI to exit codes,
//! the API to HTTP statuses), a stable code, the offending field when there is one, and a
//! message that speaks of fields and values, never of CLI flags or HTTP.

use serde::Serialize;

/// What went wrong, as a caller acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The input is wrong: fix it and try again (exit 2; HTTP 400/422).
    BadInput,
    /// No such object in the caller's workspace (exit 2; HTTP 404).
    NotFound,
    /// The object exists, or is busy (exit 2; HTTP 409).
    Conflict,
    /// No valid credentials: no token, or an unknown, revoked or expired one (HTTP 401).
    Unauthorized,
    /// The caller may not do this (exit 2; HTTP 403).
    Forbidden,
    /// The operation ran and failed: a connection test, a run (exit 1; HTTP 200 with the
    /// report, or 502 when the failure is the service's peer).
    Failed,
    /// Too many attempts in a short time (failed sign-ins): wait, then try again (HTTP 429).
    Throttled,
    /// wharf itself failed: its store, its disk (exit 1; HTTP 500 with a short message).
    Internal,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ServiceError {
    pub kind: ErrorKind,
    /// Stable, for scripts and run records: `destination.not_found`, `invalid`,
    /// `s3.AccessDenied`...
    pub code: String,
    pub message: String,
    /// The input field at fault (`bucket`, `auth.role_arn`, `filter`), when there is one.
    pub field: Option<String>,
    /// For not-found and conflict errors: the kind of object (`destination`) and its name, so
    /// an interface can add its own hint (how to list them, how to remove one).
    pub object: Option<(&'static str, String)>,
}

impl ServiceError {
    pub fn new(kind: ErrorKind, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind,
            code: code.into(),
            message: message.into(),
            field: None,
            object: None,
        }
    }

    pub fn failed(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, code, message)
    }

    pub fn internal(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, code, message)
    }

    pub fn bad_input(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_string()),
            ..Self::new(ErrorKind::BadInput, "invalid", message)
        }
    }

    pub fn not_found(kind: &'static str, name: &str) -> Self {
        Self {
            object: Some((kind, name.to_string())),
            ..Self::new(
                ErrorKind::NotFound,
                format!("{kind}.not_found"),
                format!("no {kind} named {name:?}"),
            )
        }
    }
}

impl From<wharf_domain::InvalidValue> for ServiceError {
    fn from(e: wharf_domain::InvalidValue) -> Self {
        Self::bad_input(e.field, e.to_string())
    }
}

impl From<wharf_store::StoreError> for ServiceError {
    fn from(e: wharf_store::StoreError) -> Self {
        use wharf_store::StoreError as E;
        match e {
            E::NotFound { kind, name } => Self::not_found(kind, &name),
            E::AlreadyExists { kind, name } => Self {
                object: Some((kind, name.clone())),
                ..Self::new(
                    ErrorKind::Conflict,
                    format!("{kind}.exists"),
                    format!("a {kind} named {name:?} already exists"),
                )
            },
            E::NotApplicable(message) => Self::new(ErrorKind::BadInput, "not_applicable", message),
            E::InUse { kind, ref name, .. } => Self {
                object: Some((kind, name.clone())),
                ..Self::new(ErrorKind::Conflict, format!("{kind}.in_use"), e.to_string())
            },
            E::RunInProgress { .. } => {
                Self::new(ErrorKind::Conflict, "run.in_progress", e.to_string())
            }
            E::Fenced { .. } => Self::new(ErrorKind::Conflict, "run.fenced", e.to_string()),
            E::Decrypt { .. } | E::MasterKey(_) => {
                Self::internal("store.master_key", e.to_string())
            }
            E::NotAStore { .. } => Self::internal("store.not_a_store", e.to_string()),
            E::Corrupt { .. } => Self::internal("store.corrupt", e.to_string()),
            E::Open { .. } | E::Migrate(_) | E::Database(_) | E::Io { .. } => {
                Self::internal("store.error", e.to_string())
            }
        }
    }
}

impl From<wharf_delivery::DeliveryError> for ServiceError {
    fn from(e: wharf_delivery::DeliveryError) -> Self {
        use wharf_delivery::DeliveryError as E;
        let kind = match e {
            E::EndpointRefused { .. } | E::EndpointUnresolvable { .. } => ErrorKind::BadInput,
            _ => ErrorKind::Failed,
        };
        let field = matches!(
            e,
            E::EndpointRefused { .. } | E::EndpointUnresolvable { .. }
        )
        .then(|| "endpoint".to_string());
        Self {
            field,
            ..Self::new(kind, e.code(), e.to_string())
        }
    }
}

impl From<wharf_runner::RunnerError> for ServiceError {
    fn from(e: wharf_runner::RunnerError) -> Self {
        use wharf_runner::{EngineError, RunnerError as E};
        match e {
            E::Store(e) => e.into(),
            E::Delivery(e) => e.into(),
            E::Engine(ref inner) => {
                let kind = match inner {
                    EngineError::Query(_)
                    | EngineError::TooLarge(_)
                    | EngineError::Postgres { .. } => ErrorKind::Failed,
                    _ => ErrorKind::BadInput,
                };
                Self::new(kind, inner.code(), e.to_string())
            }
            E::Invalid(message) => Self::new(ErrorKind::BadInput, "invalid", message),
            E::Busy { .. } => Self::new(ErrorKind::Conflict, "run.in_progress", e.to_string()),
        }
    }
}
