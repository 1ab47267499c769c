//! Destinations: create, read, list, remove, rotate the External ID, record test outcomes.

use crate::Store;
use crate::error::StoreError;
use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wharf_domain::destination::AccessKeyId;
use wharf_domain::{
    BucketName, DeliveryOptions, Endpoint, ExternalId, KeyPrefix, Name, Region, RoleArn, S3Auth,
    S3Destination, Secret,
};

/// A stored destination with its bookkeeping.
#[derive(Debug, Clone)]
pub struct DestinationRecord {
    pub id: String,
    pub destination: S3Destination,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// When a connection test last passed since the destination (or its External ID) changed.
    pub verified_at: Option<OffsetDateTime>,
    pub last_test: Option<TestOutcome>,
    /// What made the destination unverified since its last test (none while verified, or when
    /// nothing changed since a failing test or no test at all).
    pub unverified_because: Option<Unverified>,
}

/// What changed a destination after its last connection test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unverified {
    /// A new External ID: the role's trust policy must name it.
    ExternalIdRotated,
    /// Its settings or its secret were replaced.
    SettingsChanged,
}

impl Unverified {
    fn as_str(self) -> &'static str {
        match self {
            Self::ExternalIdRotated => "external_id_rotated",
            Self::SettingsChanged => "settings_changed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "external_id_rotated" => Some(Self::ExternalIdRotated),
            "settings_changed" => Some(Self::SettingsChanged),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestOutcome {
    pub at: OffsetDateTime,
    pub ok: bool,
}

const KIND: &str = "destination";

use crate::now;

/// The associated data that binds sealed credentials to their destination.
fn credentials_aad(id: &str) -> Vec<u8> {
    format!("wharf/destination/{id}/credentials").into_bytes()
}

impl Store {
    pub async fn create_destination(
        &self,
        workspace: &str,
        destination: &S3Destination,
    ) -> Result<DestinationRecord, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        let d = destination;
        let (fingerprint, ciphertext, role_arn, external_id, session_duration) =
            self.auth_columns(&id, &d.auth);
        let delivery = serde_json::to_string(&d.delivery).map_err(|e| StoreError::Corrupt {
            record: format!("destination {:?}", d.name.as_str()),
            detail: e.to_string(),
        })?;
        let now = now();
        let result = sqlx::query(
            "INSERT INTO destinations (id, workspace_id, name, kind, bucket, region, prefix, endpoint,
                auth_type, access_key_fingerprint, credentials_ciphertext, role_arn, external_id,
                session_duration_seconds, delivery, created_at, updated_at)
             VALUES (?, ?, ?, 's3', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(workspace)
        .bind(d.name.as_str())
        .bind(d.bucket.as_str())
        .bind(d.region.as_str())
        .bind(d.prefix.as_str())
        .bind(d.endpoint.as_ref().map(|e| e.as_str().to_string()))
        .bind(d.auth.kind())
        .bind(fingerprint)
        .bind(ciphertext)
        .bind(role_arn)
        .bind(external_id)
        .bind(session_duration)
        .bind(delivery)
        .bind(&now)
        .bind(&now)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => self.destination(workspace, d.name.as_str()).await,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::AlreadyExists {
                    kind: KIND,
                    name: d.name.as_str().to_string(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The destination `name` of `workspace`; another workspace's destination is "not found".
    pub async fn destination(
        &self,
        workspace: &str,
        name: &str,
    ) -> Result<DestinationRecord, StoreError> {
        let row = sqlx::query("SELECT * FROM destinations WHERE workspace_id = ? AND name = ?")
            .bind(workspace)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => self.decode(&row),
            None => Err(StoreError::NotFound {
                kind: KIND,
                name: name.to_string(),
            }),
        }
    }

    pub async fn list_destinations(
        &self,
        workspace: &str,
    ) -> Result<Vec<DestinationRecord>, StoreError> {
        sqlx::query("SELECT * FROM destinations WHERE workspace_id = ? ORDER BY name")
            .bind(workspace)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| self.decode(row))
            .collect()
    }

    /// Removes a destination no sync writes to.
    pub async fn remove_destination(&self, workspace: &str, name: &str) -> Result<(), StoreError> {
        self.remove_unused(workspace, name, crate::catalog::Removable::Destination)
            .await
    }

    /// Replaces a role destination's External ID and marks it unverified: the role's trust
    /// policy must be updated before wharf can assume it again.
    pub async fn rotate_external_id(
        &self,
        workspace: &str,
        name: &str,
        external_id: &ExternalId,
    ) -> Result<DestinationRecord, StoreError> {
        let record = self.destination(workspace, name).await?;
        if !matches!(record.destination.auth, S3Auth::AssumeRole { .. }) {
            return Err(StoreError::NotApplicable(format!(
                "destination {name:?} uses access-key auth; only role destinations have an External ID"
            )));
        }
        sqlx::query(
            "UPDATE destinations SET external_id = ?, verified_at = NULL, updated_at = ?,
                unverified_because = ?
             WHERE workspace_id = ? AND name = ?",
        )
        .bind(external_id.as_str())
        .bind(now())
        .bind(Unverified::ExternalIdRotated.as_str())
        .bind(workspace)
        .bind(name)
        .execute(&self.pool)
        .await?;
        self.destination(workspace, name).await
    }

    /// Records a connection test: a passing one marks the destination verified, a failing one
    /// unverified (whatever passed before no longer holds).
    pub async fn record_test(
        &self,
        workspace: &str,
        name: &str,
        ok: bool,
    ) -> Result<(), StoreError> {
        let now = now();
        let done = sqlx::query(
            "UPDATE destinations
             SET last_test_at = ?, last_test_ok = ?,
                 verified_at = CASE WHEN ? THEN ? ELSE NULL END, unverified_because = NULL
             WHERE workspace_id = ? AND name = ?",
        )
        .bind(&now)
        .bind(ok)
        .bind(ok)
        .bind(&now)
        .bind(workspace)
        .bind(name)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: KIND,
                name: name.to_string(),
            });
        }
        Ok(())
    }

    fn decode(&self, row: &SqliteRow) -> Result<DestinationRecord, StoreError> {
        let id: String = row.try_get("id")?;
        let name: String = row.try_get("name")?;
        let record = format!("destination {name:?}");
        let corrupt = |detail: String| StoreError::Corrupt {
            record: record.clone(),
            detail,
        };
        let invalid = |e: wharf_domain::InvalidValue| corrupt(e.to_string());
        let auth = match row.try_get::<String, _>("auth_type")?.as_str() {
            "access-key" => {
                let sealed: Vec<u8> = row.try_get("credentials_ciphertext")?;
                let mut plaintext =
                    self.cipher
                        .open(&sealed, &credentials_aad(&id))
                        .map_err(|_| StoreError::Decrypt {
                            record: record.clone(),
                            key_origin: self.cipher.key_origin().to_string(),
                        })?;
                let parsed: Result<StoredCredentials, _> = serde_json::from_slice(&plaintext);
                zeroize::Zeroize::zeroize(&mut plaintext);
                let credentials =
                    parsed.map_err(|_| corrupt("sealed credentials are malformed".into()))?;
                S3Auth::AccessKey {
                    access_key_id: AccessKeyId::parse(&credentials.access_key_id)
                        .map_err(invalid)?,
                    secret_access_key: credentials.secret_access_key,
                }
            }
            "role" => {
                let duration: i64 = row.try_get("session_duration_seconds")?;
                S3Auth::AssumeRole {
                    role_arn: RoleArn::parse(&row.try_get::<String, _>("role_arn")?)
                        .map_err(invalid)?,
                    external_id: ExternalId::from_stored(&row.try_get::<String, _>("external_id")?)
                        .map_err(invalid)?,
                    session_duration_seconds: u32::try_from(duration)
                        .map_err(|_| corrupt(format!("session duration {duration}")))?,
                }
            }
            other => return Err(corrupt(format!("unknown auth type {other:?}"))),
        };
        // Stored endpoints passed the private-address check when added; the check that matters
        // runs again on every connection, in `delivery`.
        let endpoint = row
            .try_get::<Option<String>, _>("endpoint")?
            .map(|e| Endpoint::parse(&e, true))
            .transpose()
            .map_err(invalid)?;
        let delivery: DeliveryOptions =
            serde_json::from_str(&row.try_get::<String, _>("delivery")?)
                .map_err(|e| corrupt(format!("delivery options: {e}")))?;
        let destination = S3Destination {
            name: Name::parse("name", &name).map_err(invalid)?,
            bucket: BucketName::parse(&row.try_get::<String, _>("bucket")?).map_err(invalid)?,
            region: Region::parse(&row.try_get::<String, _>("region")?).map_err(invalid)?,
            prefix: KeyPrefix::parse(&row.try_get::<String, _>("prefix")?).map_err(invalid)?,
            auth,
            endpoint,
            delivery,
        };
        let last_test = match row.try_get::<Option<String>, _>("last_test_at")? {
            Some(at) => Some(TestOutcome {
                at: parse_time(&at).map_err(corrupt)?,
                ok: row
                    .try_get::<Option<bool>, _>("last_test_ok")?
                    .unwrap_or(false),
            }),
            None => None,
        };
        Ok(DestinationRecord {
            id,
            destination,
            created_at: parse_time(&row.try_get::<String, _>("created_at")?).map_err(corrupt)?,
            updated_at: parse_time(&row.try_get::<String, _>("updated_at")?).map_err(corrupt)?,
            verified_at: row
                .try_get::<Option<String>, _>("verified_at")?
                .map(|t| parse_time(&t))
                .transpose()
                .map_err(corrupt)?,
            last_test,
            unverified_because: row
                .try_get::<Option<String>, _>("unverified_because")?
                .as_deref()
                .and_then(Unverified::parse),
        })
    }
}

#[derive(serde::Deserialize)]
struct StoredCredentials {
    access_key_id: String,
    secret_access_key: Secret<String>,
}

fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|e| format!("timestamp {text:?}: {e}"))
}

/// The auth columns of a destination row: fingerprint, sealed credentials, role ARN, External ID,
/// session duration.
type AuthColumns = (
    Option<String>,
    Option<Vec<u8>>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

impl Store {
    fn auth_columns(&self, id: &str, auth: &S3Auth) -> AuthColumns {
        match auth {
            S3Auth::AccessKey {
                access_key_id,
                secret_access_key,
            } => {
                let mut plaintext = serde_json::json!({
                    "access_key_id": access_key_id.as_str(),
                    "secret_access_key": secret_access_key.expose(),
                })
                .to_string();
                let sealed = self.cipher.seal(plaintext.as_bytes(), &credentials_aad(id));
                zeroize::Zeroize::zeroize(&mut plaintext);
                (
                    Some(access_key_id.fingerprint()),
                    Some(sealed),
                    None,
                    None,
                    None,
                )
            }
            S3Auth::AssumeRole {
                role_arn,
                external_id,
                session_duration_seconds,
            } => (
                None,
                None,
                Some(role_arn.as_str().to_string()),
                Some(external_id.as_str().to_string()),
                Some(i64::from(*session_duration_seconds)),
            ),
        }
    }

    /// Replaces a destination's settings in place, keeping its id (and so the syncs that use
    /// it). It becomes unverified until its next connection test.
    pub async fn replace_destination(
        &self,
        workspace: &str,
        destination: &S3Destination,
    ) -> Result<DestinationRecord, StoreError> {
        let d = destination;
        let id = self.destination(workspace, d.name.as_str()).await?.id;
        let (fingerprint, ciphertext, role_arn, external_id, session_duration) =
            self.auth_columns(&id, &d.auth);
        let delivery = serde_json::to_string(&d.delivery).map_err(|e| StoreError::Corrupt {
            record: format!("destination {:?}", d.name.as_str()),
            detail: e.to_string(),
        })?;
        sqlx::query(
            "UPDATE destinations SET bucket = ?, region = ?, prefix = ?, endpoint = ?, auth_type = ?,
                access_key_fingerprint = ?, credentials_ciphertext = ?, role_arn = ?, external_id = ?,
                session_duration_seconds = ?, delivery = ?, verified_at = NULL, updated_at = ?,
                unverified_because = ?
             WHERE id = ?",
        )
        .bind(d.bucket.as_str())
        .bind(d.region.as_str())
        .bind(d.prefix.as_str())
        .bind(d.endpoint.as_ref().map(|e| e.as_str().to_string()))
        .bind(d.auth.kind())
        .bind(fingerprint)
        .bind(ciphertext)
        .bind(role_arn)
        .bind(external_id)
        .bind(session_duration)
        .bind(delivery)
        .bind(now())
        .bind(Unverified::SettingsChanged.as_str())
        .bind(&id)
        .execute(&self.pool)
        .await?;
        self.destination(workspace, d.name.as_str()).await
    }
}
