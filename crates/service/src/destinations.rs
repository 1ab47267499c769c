//! S3 destinations: add (with a generated External ID and a checked endpoint), list, show,
//! remove, rotate the External ID, the policies to install, and the connection test.

use crate::{Caller, Role, Service, ServiceError};
use serde::Serialize;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use wharf_delivery::{ConnectionReport, Identity, StepReport, TestContext};
use wharf_domain::destination::S3DestinationSpec;
use wharf_domain::{ExternalId, S3Auth, ServerSideEncryption, policy};
use wharf_store::{DestinationRecord, Unverified};

/// A destination as every interface shows it: everything but secrets. The access key id
/// appears only as a fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DestinationView {
    pub name: String,
    /// Always `s3`.
    pub kind: &'static str,
    pub bucket: String,
    pub region: String,
    pub prefix: String,
    pub auth: AuthView,
    /// The External ID wharf generated (role destinations); read-only.
    pub external_id: Option<String>,
    pub endpoint: Option<String>,
    /// `aes256` or `kms`.
    pub sse: Option<&'static str>,
    pub kms_key_id: Option<String>,
    pub storage_class: Option<&'static str>,
    pub acl: Option<&'static str>,
    /// The checksum runs send: the configured one, or the default for where requests go.
    pub checksum: &'static str,
    pub verified: bool,
    pub verified_at: Option<String>,
    pub last_test: Option<TestView>,
    pub created_at: String,
    /// `verified`; `unverified (External ID rotated)` or `unverified (settings changed)` after
    /// a test; `test failed`; or `untested`.
    pub status: &'static str,
}

/// How wharf authenticates to the bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "type")]
pub enum AuthView {
    #[serde(rename = "access_key")]
    AccessKey {
        /// The fingerprint of the key id, never the secret.
        access_key_id: String,
    },
    #[serde(rename = "role")]
    Role {
        role_arn: String,
        session_duration_seconds: u32,
    },
}

/// The outcome of the last connection test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TestView {
    pub at: String,
    pub ok: bool,
}

/// The policies the bucket's owner installs for a destination.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    /// wharf's identity, named in the trust policy (role destinations).
    pub principal_arn: Option<String>,
    pub external_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub trust_policy: Option<Value>,
    #[schema(value_type = Object)]
    pub permission_policy: Value,
    /// The key id's fingerprint, for access-key destinations: whose permissions these are.
    #[serde(skip)]
    pub access_key_fingerprint: Option<String>,
    /// Objects are encrypted with a KMS key, whose key policy must allow the principal too.
    #[serde(skip)]
    pub uses_kms: bool,
}

fn timestamp(t: &time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn new_external_id() -> Result<ExternalId, ServiceError> {
    ExternalId::generate().map_err(|e| {
        ServiceError::internal(
            "random.unavailable",
            format!(
                "cannot generate an External ID: the operating system gave no randomness ({e})"
            ),
        )
    })
}

impl Service {
    fn destination_view(&self, record: &DestinationRecord) -> DestinationView {
        let d = &record.destination;
        let (auth, external_id) = match &d.auth {
            S3Auth::AccessKey { access_key_id, .. } => (
                AuthView::AccessKey {
                    access_key_id: access_key_id.fingerprint(),
                },
                None,
            ),
            S3Auth::AssumeRole {
                role_arn,
                external_id,
                session_duration_seconds,
            } => (
                AuthView::Role {
                    role_arn: role_arn.as_str().to_string(),
                    session_duration_seconds: *session_duration_seconds,
                },
                Some(external_id.as_str().to_string()),
            ),
        };
        let (sse, kms_key_id) = match &d.delivery.sse {
            None => (None, None),
            Some(ServerSideEncryption::Aes256) => (Some("aes256"), None),
            Some(ServerSideEncryption::Kms { key_id }) => {
                (Some("kms"), Some(key_id.as_str().to_string()))
            }
        };
        DestinationView {
            name: d.name.as_str().to_string(),
            kind: "s3",
            bucket: d.bucket.as_str().to_string(),
            region: d.region.as_str().to_string(),
            prefix: d.prefix.as_str().to_string(),
            auth,
            external_id,
            endpoint: d.endpoint.as_ref().map(|e| e.to_string()),
            sse,
            kms_key_id,
            storage_class: d.delivery.storage_class.map(|s| s.as_str()),
            acl: d.delivery.acl.map(|a| a.as_str()),
            checksum: self.settings.client.checksum_for(d).as_str(),
            verified: record.verified_at.is_some(),
            verified_at: record.verified_at.as_ref().map(timestamp),
            last_test: record.last_test.map(|t| TestView {
                at: timestamp(&t.at),
                ok: t.ok,
            }),
            created_at: timestamp(&record.created_at),
            status: status(record),
        }
    }

    /// Adds a destination: a role destination gets a new External ID; a custom endpoint must
    /// resolve to an address the operator allows.
    pub async fn add_destination(
        &self,
        caller: &Caller,
        spec: S3DestinationSpec,
    ) -> Result<DestinationView, ServiceError> {
        let object = spec.name.clone();
        self.audited(caller, "create", "destination", &object, async {
            caller.require(Role::Editor)?;
            let external_id = new_external_id()?;
            let allow_private = self.settings.client.allow_private_endpoints;
            let destination = spec.validate(|| external_id, allow_private)?;
            if let Some(endpoint) = &destination.endpoint {
                wharf_delivery::check_endpoint(endpoint, allow_private).await?;
            }
            let record = self
                .store
                .create_destination(&caller.workspace, &destination)
                .await?;
            Ok(self.destination_view(&record))
        })
        .await
    }

    /// Replaces a destination's settings after the checks `add_destination` makes. Without
    /// `auth`, its auth stays; a role destination keeps its External ID. It is unverified
    /// until its next connection test passes.
    pub async fn update_destination(
        &self,
        caller: &Caller,
        name: &str,
        spec: S3DestinationSpec,
    ) -> Result<DestinationView, ServiceError> {
        let object = name.to_string();
        self.audited(caller, "update", "destination", &object, async {
            caller.require(Role::Editor)?;
            let current = self.store.destination(&caller.workspace, name).await?;
            let external_id = new_external_id()?;
            let allow_private = self.settings.client.allow_private_endpoints;
            let destination =
                spec.validate_replacing(&current.destination, || external_id, allow_private)?;
            if let Some(endpoint) = &destination.endpoint {
                wharf_delivery::check_endpoint(endpoint, allow_private).await?;
            }
            let record = self
                .store
                .replace_destination(&caller.workspace, &destination)
                .await?;
            Ok(self.destination_view(&record))
        })
        .await
    }

    pub async fn destinations(
        &self,
        caller: &Caller,
    ) -> Result<Vec<DestinationView>, ServiceError> {
        let records = self.store.list_destinations(&caller.workspace).await?;
        Ok(records.iter().map(|r| self.destination_view(r)).collect())
    }

    pub async fn destination(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<DestinationView, ServiceError> {
        let record = self.store.destination(&caller.workspace, name).await?;
        Ok(self.destination_view(&record))
    }

    /// Removes a destination no sync uses.
    pub async fn remove_destination(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<(), ServiceError> {
        let object = name.to_string();
        self.audited(caller, "remove", "destination", &object, async {
            caller.require(Role::Editor)?;
            Ok(self
                .store
                .remove_destination(&caller.workspace, name)
                .await?)
        })
        .await
    }

    /// Gives a role destination a new External ID; it is unverified until a test passes with
    /// the role's trust policy updated.
    pub async fn rotate_external_id(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<DestinationView, ServiceError> {
        let object = name.to_string();
        self.audited(
            caller,
            "rotate_external_id",
            "destination",
            &object,
            async {
                caller.require(Role::Editor)?;
                let external_id = new_external_id()?;
                let record = self
                    .store
                    .rotate_external_id(&caller.workspace, name, &external_id)
                    .await?;
                Ok(self.destination_view(&record))
            },
        )
        .await
    }

    /// wharf's own identity, as a trust policy names it: asked of STS with the credentials
    /// wharf runs with.
    pub async fn principal_arn(&self) -> Result<String, ServiceError> {
        let caller = Identity::from_environment()
            .await
            .caller()
            .await
            .map_err(|e| ServiceError {
                field: Some("principal_arn".into()),
                ..ServiceError::failed(
                    "identity.unknown",
                    format!("{e}; wharf needs its own identity to name it in the trust policy"),
                )
            })?;
        Ok(policy::trust_principal(&caller.arn))
    }

    /// The trust policy (role destinations) and the permission policy to install.
    /// `principal_arn`: wharf's identity to name in the trust policy; by default the one wharf
    /// runs with, asked of STS.
    pub async fn destination_policy(
        &self,
        caller: &Caller,
        name: &str,
        principal_arn: Option<String>,
    ) -> Result<PolicyView, ServiceError> {
        let record = self.store.destination(&caller.workspace, name).await?;
        let destination = &record.destination;
        let permission_policy = policy::permission_policy(destination);
        let uses_kms = matches!(
            destination.delivery.sse,
            Some(ServerSideEncryption::Kms { .. })
        );
        Ok(match &destination.auth {
            S3Auth::AccessKey { access_key_id, .. } => PolicyView {
                principal_arn: None,
                external_id: None,
                trust_policy: None,
                permission_policy,
                access_key_fingerprint: Some(access_key_id.fingerprint()),
                uses_kms,
            },
            S3Auth::AssumeRole { external_id, .. } => {
                let principal = match principal_arn {
                    Some(arn) => arn,
                    None => self.principal_arn().await?,
                };
                PolicyView {
                    trust_policy: Some(policy::trust_policy(&principal, external_id)),
                    principal_arn: Some(principal),
                    external_id: Some(external_id.as_str().to_string()),
                    permission_policy,
                    access_key_fingerprint: None,
                    uses_kms,
                }
            }
        })
    }

    /// Runs the zero-residue connection test with the exact settings runs use, and records its
    /// outcome (a pass verifies the destination).
    pub async fn test_destination(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<ConnectionReport, ServiceError> {
        self.test_destination_watched(caller, name, &|_| {}).await
    }

    /// [`Service::test_destination`], calling `on_step` with each step as it ends.
    pub async fn test_destination_watched(
        &self,
        caller: &Caller,
        name: &str,
        on_step: &(dyn Fn(&StepReport) + Send + Sync),
    ) -> Result<ConnectionReport, ServiceError> {
        let object = name.to_string();
        self.audited(caller, "test", "destination", &object, async {
            caller.require(Role::Editor)?;
            let record = self.store.destination(&caller.workspace, name).await?;
            let destination = &record.destination;
            let (identity, principal_arn) = match destination.auth {
                S3Auth::AssumeRole { .. } => {
                    let identity = Identity::from_environment().await;
                    let principal = identity
                        .caller()
                        .await
                        .ok()
                        .map(|c| policy::trust_principal(&c.arn));
                    (Some(identity), principal)
                }
                S3Auth::AccessKey { .. } => (None, None),
            };
            let context = TestContext {
                principal_arn,
                external_id_rotated: record.unverified_because
                    == Some(Unverified::ExternalIdRotated),
            };
            let report = wharf_delivery::test_connection_watched(
                destination,
                identity.as_ref(),
                &context,
                self.settings.client.clone(),
                on_step,
            )
            .await;
            self.store
                .record_test(&caller.workspace, destination.name.as_str(), report.ok)
                .await?;
            Ok(report)
        })
        .await
    }
}

/// A change since the last test says more than that test's outcome: a failure the change may
/// well have fixed is no longer the news.
fn status(record: &DestinationRecord) -> &'static str {
    match (
        &record.verified_at,
        &record.last_test,
        record.unverified_because,
    ) {
        (Some(_), _, _) => "verified",
        (None, None, _) => "untested",
        (None, Some(_), Some(Unverified::ExternalIdRotated)) => "unverified (External ID rotated)",
        (None, Some(_), Some(Unverified::SettingsChanged)) => "unverified (settings changed)",
        (None, Some(t), None) if !t.ok => "test failed",
        // A pass with no change recorded: a store from before reasons were kept.
        (None, Some(_), None) => "unverified (settings changed)",
    }
}
