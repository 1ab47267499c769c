//! Alert channels and their deliveries: an outbox written when an event happens and drained by
//! the serving processes, each delivery held by the process sending it.

use crate::Store;
use crate::catalog::{from_json, json};
use crate::error::StoreError;
use crate::scheduler::stamp;
use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;
use wharf_domain::{AlertEvent, Name, Secret, WebhookUrl};

/// A channel as stored, with its URL and secret opened (for sending) or not (for showing).
#[derive(Debug, Clone)]
pub struct AlertChannelRecord {
    pub id: String,
    pub name: String,
    pub url_shown: String,
    pub events: Vec<AlertEvent>,
    pub sync_name: Option<String>,
    pub created_at: String,
}

/// An event to tell the channels that listen for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAlert {
    pub event: AlertEvent,
    /// The JSON body posted.
    pub body: String,
}

/// Queues `alert` for every channel of the workspace told about its event (all syncs, or this
/// one), on `conn` (inside the caller's transaction, when it has one).
pub(crate) async fn insert_alert(
    conn: &mut sqlx::SqliteConnection,
    workspace: &str,
    sync_id: &str,
    run_id: Option<&str>,
    alert: &PendingAlert,
) -> Result<u64, StoreError> {
    let now = crate::now();
    let pattern = format!("%\"{}\"%", alert.event.as_str());
    let done = sqlx::query(
        "INSERT INTO alert_deliveries (channel_id, event, run_id, body, status,
             next_attempt_at, created_at)
         SELECT id, ?, ?, ?, 'pending', ?, ? FROM alert_channels
         WHERE workspace_id = ? AND events LIKE ? AND (sync_id IS NULL OR sync_id = ?)",
    )
    .bind(alert.event.as_str())
    .bind(run_id)
    .bind(&alert.body)
    .bind(&now)
    .bind(&now)
    .bind(workspace)
    .bind(pattern)
    .bind(sync_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// What sending to a channel needs.
pub struct ChannelSecrets {
    pub url: String,
    pub secret: Secret<String>,
}

/// A delivery as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: i64,
    pub channel: String,
    pub event: String,
    pub run_id: Option<String>,
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

/// A delivery taken by a process to send now.
pub struct TakenDelivery {
    pub id: i64,
    pub channel_id: String,
    pub body: String,
    pub attempts: u32,
}

fn aad(id: &str) -> Vec<u8> {
    format!("alert_channel:{id}").into_bytes()
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Sealed {
    url: String,
    secret: String,
}

const CHANNEL_SELECT: &str = "SELECT c.id, c.name, c.url_shown, c.events, c.created_at,
        y.name AS sync_name
    FROM alert_channels c LEFT JOIN syncs y ON y.id = c.sync_id";

fn channel_from_row(row: &SqliteRow) -> Result<AlertChannelRecord, StoreError> {
    let name: String = row.try_get("name")?;
    let events: Vec<AlertEvent> = from_json(
        &row.try_get::<String, _>("events")?,
        &format!("alert {name:?}"),
    )?;
    Ok(AlertChannelRecord {
        id: row.try_get("id")?,
        url_shown: row.try_get("url_shown")?,
        events,
        sync_name: row.try_get("sync_name")?,
        created_at: row.try_get("created_at")?,
        name,
    })
}

impl Store {
    pub async fn create_alert_channel(
        &self,
        workspace: &str,
        name: &Name,
        url: &WebhookUrl,
        secret: &Secret<String>,
        events: &[AlertEvent],
        sync: Option<&str>,
    ) -> Result<AlertChannelRecord, StoreError> {
        let sync_id = match sync {
            Some(sync) => Some(self.sync(workspace, sync).await?.id),
            None => None,
        };
        let id = uuid::Uuid::new_v4().to_string();
        let sealed = serde_json::to_vec(&Sealed {
            url: url.as_str().to_string(),
            secret: secret.expose().clone(),
        })
        .map_err(|e| StoreError::Corrupt {
            record: "alert".into(),
            detail: e.to_string(),
        })?;
        let sealed = self.cipher.seal(&sealed, &aad(&id));
        let result = sqlx::query(
            "INSERT INTO alert_channels (id, workspace_id, name, url_shown, sealed, events,
                 sync_id, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(workspace)
        .bind(name.as_str())
        .bind(url.redacted())
        .bind(sealed)
        .bind(json(&events, "alert")?)
        .bind(sync_id)
        .bind(crate::now())
        .execute(&self.pool)
        .await;
        crate::catalog::inserted(result, "alert", name.as_str())?;
        self.alert_channel(workspace, name.as_str()).await
    }

    pub async fn alert_channel(
        &self,
        workspace: &str,
        name: &str,
    ) -> Result<AlertChannelRecord, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{CHANNEL_SELECT} WHERE c.workspace_id = ? AND c.name = ?"
        )))
        .bind(workspace)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "alert",
            name: name.to_string(),
        })?;
        channel_from_row(&row)
    }

    pub async fn list_alert_channels(
        &self,
        workspace: &str,
    ) -> Result<Vec<AlertChannelRecord>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{CHANNEL_SELECT} WHERE c.workspace_id = ? ORDER BY c.name"
        )))
        .bind(workspace)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(channel_from_row)
        .collect()
    }

    /// Removes a channel and its deliveries (pending ones are not sent).
    pub async fn remove_alert_channel(
        &self,
        workspace: &str,
        name: &str,
    ) -> Result<(), StoreError> {
        let channel = self.alert_channel(workspace, name).await?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM alert_deliveries WHERE channel_id = ?")
            .bind(&channel.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM alert_channels WHERE id = ?")
            .bind(&channel.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The channel's URL and secret, opened, for sending.
    pub async fn alert_channel_secrets(&self, id: &str) -> Result<ChannelSecrets, StoreError> {
        let sealed: Vec<u8> = sqlx::query_scalar("SELECT sealed FROM alert_channels WHERE id = ?")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        let corrupt = || StoreError::Corrupt {
            record: "alert channel".into(),
            detail: "its sealed URL and secret do not open".into(),
        };
        let opened = self.cipher.open(&sealed, &aad(id)).map_err(|_| corrupt())?;
        let sealed: Sealed = serde_json::from_slice(&opened).map_err(|_| corrupt())?;
        Ok(ChannelSecrets {
            url: sealed.url,
            secret: Secret::new(sealed.secret),
        })
    }

    /// Takes up to `limit` deliveries due at `now`, holding each for `hold` (another process
    /// skips it meanwhile).
    pub async fn take_deliveries(
        &self,
        now: OffsetDateTime,
        hold: time::Duration,
        limit: u32,
    ) -> Result<Vec<TakenDelivery>, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let rows = sqlx::query(
            "SELECT id, channel_id, body, attempts FROM alert_deliveries
             WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id
             LIMIT ?",
        )
        .bind(stamp(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let mut taken = Vec::new();
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            sqlx::query("UPDATE alert_deliveries SET next_attempt_at = ? WHERE id = ?")
                .bind(stamp(now + hold))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            taken.push(TakenDelivery {
                id,
                channel_id: row.try_get("channel_id")?,
                body: row.try_get("body")?,
                attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(0),
            });
        }
        tx.commit().await?;
        Ok(taken)
    }

    /// Records an attempt: delivered (`error` none), to try again at `retry_at`, or failed
    /// for good (`retry_at` none).
    pub async fn delivery_attempted(
        &self,
        id: i64,
        error: Option<&str>,
        retry_at: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let now = crate::now();
        let (status, next, finished) = match (error, retry_at) {
            (None, _) => ("delivered", now.clone(), Some(now.clone())),
            (Some(_), Some(at)) => ("pending", stamp(at), None),
            (Some(_), None) => ("failed", now.clone(), Some(now.clone())),
        };
        sqlx::query(
            "UPDATE alert_deliveries SET status = ?, attempts = attempts + 1, next_attempt_at = ?,
                 last_error = COALESCE(?, last_error), finished_at = ?
             WHERE id = ? AND status = 'pending'",
        )
        .bind(status)
        .bind(next)
        .bind(error)
        .bind(finished)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A channel's latest deliveries, newest first.
    pub async fn deliveries(
        &self,
        workspace: &str,
        channel: &str,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let channel = self.alert_channel(workspace, channel).await?;
        let rows = sqlx::query(
            "SELECT * FROM alert_deliveries WHERE channel_id = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(&channel.id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DeliveryRecord {
                    id: row.try_get("id")?,
                    channel: channel.name.clone(),
                    event: row.try_get("event")?,
                    run_id: row.try_get("run_id")?,
                    status: row.try_get("status")?,
                    attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(0),
                    next_attempt_at: row.try_get("next_attempt_at")?,
                    last_error: row.try_get("last_error")?,
                    created_at: row.try_get("created_at")?,
                    finished_at: row.try_get("finished_at")?,
                })
            })
            .collect()
    }
}
