//! The audit log: every change a caller makes (or tries) is recorded with who, what, which
//! object, when and how it ended: names and error codes, never values or secrets.

use crate::{Actor, Caller, Page, PageRequest, Role, Service, ServiceError};
use serde::Serialize;
use std::future::Future;
use wharf_store::NewAudit;

/// Longest object name the log keeps (names are at most 63 bytes when valid).
const MAX_LOGGED_NAME: usize = 200;

/// An audit entry as every interface shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditView {
    /// Increasing in the order entries were written.
    pub id: i64,
    pub at: String,
    /// `cli`, `token:NAME` or `user:EMAIL`.
    pub actor: String,
    pub action: String,
    pub object_kind: String,
    pub object_name: String,
    /// `ok` or `error`.
    pub outcome: &'static str,
    pub error_code: Option<String>,
}

impl Caller {
    /// Who the audit log names.
    pub fn actor_name(&self) -> String {
        match &self.actor {
            Actor::Cli => "cli".to_string(),
            Actor::Token { name, .. } => format!("token:{name}"),
            Actor::User { email, .. } => format!("user:{email}"),
        }
    }
}

impl Service {
    /// Runs `change` and records it in the caller's workspace, failed or not (a change refused
    /// for the caller's role too, when the change checks it first). A change that happened but
    /// could not be recorded is reported as an internal error: the log is never silently short.
    pub(crate) async fn audited<T>(
        &self,
        caller: &Caller,
        action: &str,
        object_kind: &str,
        object_name: &str,
        change: impl Future<Output = Result<T, ServiceError>>,
    ) -> Result<T, ServiceError> {
        let result = change.await;
        let actor = caller.actor_name();
        // Names are checked inside the change; a refused one may be long.
        let object_name: String = object_name.chars().take(MAX_LOGGED_NAME).collect();
        self.store
            .append_audit(&NewAudit {
                workspace: &caller.workspace,
                actor: &actor,
                action,
                object_kind,
                object_name: &object_name,
                error_code: result.as_ref().err().map(|e| e.code.as_str()),
            })
            .await?;
        result
    }

    /// The workspace's latest `limit` audit entries, newest first.
    pub async fn audit(&self, caller: &Caller, limit: u32) -> Result<Vec<AuditView>, ServiceError> {
        let page = PageRequest {
            cursor: None,
            limit: Some(limit),
        };
        Ok(self.audit_page(caller, &page).await?.items)
    }

    /// A page of the workspace's audit entries, newest first. Admins only: the log names
    /// every token and user.
    pub async fn audit_page(
        &self,
        caller: &Caller,
        page: &PageRequest,
    ) -> Result<Page<AuditView>, ServiceError> {
        caller.require(Role::Admin)?;
        let limit = page.limit()?;
        let before = match page.after()? {
            None => None,
            Some(id) => Some(id.parse::<i64>().map_err(|_| {
                ServiceError::bad_input("cursor", "the cursor is not one this server gave")
            })?),
        };
        let entries = self
            .store
            .audit(&caller.workspace, before, limit + 1)
            .await?;
        page.cut(
            entries
                .into_iter()
                .map(|e| AuditView {
                    id: e.id,
                    at: e.at,
                    actor: e.actor,
                    action: e.action,
                    object_kind: e.object_kind,
                    object_name: e.object_name,
                    outcome: if e.error_code.is_some() {
                        "error"
                    } else {
                        "ok"
                    },
                    error_code: e.error_code,
                })
                .collect(),
            |e| e.id.to_string(),
        )
    }
}
