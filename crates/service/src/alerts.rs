//! Alert channels: webhooks told when a run fails for good, when a sync is paused, and when it
//! recovers. Events go to an outbox in the store when they happen and are posted by the serving
//! processes' delivery loop, with retries and backoff: a receiver that is down or slow never
//! holds a run up. Each POST is signed (HMAC-SHA256, see `wharf_delivery::webhook`) with the
//! channel's secret, which is write-only: given by the user, or generated and shown once.

use crate::{Caller, Role, Service, ServiceError};
use serde::Serialize;
use std::time::Duration;
use time::OffsetDateTime;
use wharf_domain::{AlertEvent, Name, Secret, WebhookUrl};
use wharf_store::{AlertChannelRecord, DeliveryRecord, Finished, Lease, PendingAlert};

/// A new channel, before validation.
#[derive(Debug, Clone, Default)]
pub struct NewAlert {
    pub name: String,
    pub url: String,
    /// `failed,paused,recovered` (any of them).
    pub on: String,
    /// Only this sync's events.
    pub sync: Option<String>,
    /// The signing secret; `None`: wharf generates one and shows it once.
    pub secret: Option<String>,
}

/// A channel as every interface shows it: never its secret, and its URL without path or query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AlertView {
    pub name: String,
    /// Scheme, host and port; a path or query (which may hold a token) shows as `/…`.
    pub url: String,
    pub on: Vec<String>,
    pub sync: Option<String>,
    pub created_at: String,
    /// The latest deliveries, newest first (`alert show` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<Vec<DeliveryView>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    pub event: String,
    pub run_id: Option<String>,
    /// `pending`, `delivered` or `failed` (every attempt failed).
    pub status: String,
    pub attempts: u32,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

/// A channel just added, with its generated secret: shown this once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NewAlertView {
    #[serde(flatten)]
    pub alert: AlertView,
    /// The signing secret wharf generated (none when the caller gave one).
    pub secret: Option<String>,
}

impl AlertView {
    fn new(r: &AlertChannelRecord, deliveries: Option<Vec<DeliveryRecord>>) -> Self {
        Self {
            name: r.name.clone(),
            url: r.url_shown.clone(),
            on: r.events.iter().map(|e| e.as_str().to_string()).collect(),
            sync: r.sync_name.clone(),
            created_at: r.created_at.clone(),
            deliveries: deliveries.map(|list| {
                list.into_iter()
                    .map(|d| DeliveryView {
                        id: d.id,
                        event: d.event,
                        run_id: d.run_id,
                        status: d.status,
                        attempts: d.attempts,
                        next_attempt_at: d.next_attempt_at,
                        last_error: d.last_error,
                        created_at: d.created_at,
                        finished_at: d.finished_at,
                    })
                    .collect()
            }),
        }
    }
}

/// How deliveries are retried: attempts in all, and the first wait (doubling, at most 10 min).
#[derive(Debug, Clone, Copy)]
pub struct AlertRetry {
    pub attempts: u32,
    pub base: Duration,
}

impl Default for AlertRetry {
    fn default() -> Self {
        Self {
            attempts: 6,
            base: Duration::from_secs(10),
        }
    }
}

impl AlertRetry {
    /// The wait after attempt `attempt` (from 1) failed, or `None` when it was the last.
    pub fn after(&self, attempt: u32) -> Option<Duration> {
        (attempt < self.attempts).then(|| {
            self.base
                .saturating_mul(1 << attempt.saturating_sub(1).min(16))
                .min(Duration::from_secs(600))
        })
    }
}

fn generated_secret() -> Result<String, ServiceError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ServiceError::internal("random", format!("no randomness from the OS: {e}")))?;
    Ok(format!(
        "whsec_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

impl Service {
    pub async fn add_alert(
        &self,
        caller: &Caller,
        new: NewAlert,
    ) -> Result<NewAlertView, ServiceError> {
        let object = new.name.clone();
        self.audited(caller, "create", "alert", &object, async {
            caller.require(Role::Editor)?;
            let name = Name::parse("name", &new.name)?;
            let url = WebhookUrl::parse(&new.url, self.settings.client.allow_private_endpoints)?;
            let events = AlertEvent::parse_list(&new.on)?;
            let (secret, shown) = match new.secret {
                Some(secret) if secret.len() < 16 => {
                    return Err(ServiceError::bad_input(
                        "secret",
                        "a signing secret has at least 16 characters; leave it out and wharf generates one",
                    ));
                }
                Some(secret) => (secret, None),
                None => {
                    let secret = generated_secret()?;
                    (secret.clone(), Some(secret))
                }
            };
            let record = self
                .store
                .create_alert_channel(
                    &caller.workspace,
                    &name,
                    &url,
                    &Secret::new(secret),
                    &events,
                    new.sync.as_deref(),
                )
                .await?;
            Ok(NewAlertView {
                alert: AlertView::new(&record, None),
                secret: shown,
            })
        })
        .await
    }

    pub async fn alerts(&self, caller: &Caller) -> Result<Vec<AlertView>, ServiceError> {
        let channels = self.store.list_alert_channels(&caller.workspace).await?;
        Ok(channels.iter().map(|c| AlertView::new(c, None)).collect())
    }

    /// A channel and its latest 20 deliveries.
    pub async fn alert(&self, caller: &Caller, name: &str) -> Result<AlertView, ServiceError> {
        let channel = self.store.alert_channel(&caller.workspace, name).await?;
        let deliveries = self.store.deliveries(&caller.workspace, name, 20).await?;
        Ok(AlertView::new(&channel, Some(deliveries)))
    }

    pub async fn remove_alert(&self, caller: &Caller, name: &str) -> Result<(), ServiceError> {
        let object = name.to_string();
        self.audited(caller, "remove", "alert", &object, async {
            caller.require(Role::Editor)?;
            Ok(self
                .store
                .remove_alert_channel(&caller.workspace, name)
                .await?)
        })
        .await
    }

    /// Posts queued alerts until `shutdown` completes: due deliveries are taken (held for a
    /// minute, so another process skips them), sent, and recorded delivered, to retry, or
    /// failed after the last attempt.
    pub async fn run_alert_deliveries(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let retry = self.settings.alert_retry;
        loop {
            let wake = self.alerts_wake.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            let now = OffsetDateTime::now_utc();
            match self
                .store
                .take_deliveries(now, time::Duration::minutes(1), 20)
                .await
            {
                Ok(taken) => {
                    for delivery in taken {
                        self.deliver(delivery, retry).await;
                    }
                }
                Err(e) => tracing::warn!("alerts: cannot read the outbox: {e}"),
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = &mut wake => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    async fn deliver(&self, delivery: wharf_store::TakenDelivery, retry: AlertRetry) {
        let attempt = delivery.attempts + 1;
        let sent = match self.store.alert_channel_secrets(&delivery.channel_id).await {
            Ok(channel) => wharf_delivery::webhook::post(
                &channel.url,
                delivery.body.clone().into_bytes(),
                &channel.secret,
                delivery.id,
                self.settings.client.allow_private_endpoints,
            )
            .await
            .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let (error, retry_at) = match &sent {
            Ok(_) => (None, None),
            Err(e) => (
                Some(e.as_str()),
                retry
                    .after(attempt)
                    .map(|wait| OffsetDateTime::now_utc() + wait),
            ),
        };
        match &sent {
            Ok(status) => tracing::info!(delivery = delivery.id, status, "alert delivered"),
            Err(e) => tracing::warn!(
                delivery = delivery.id,
                attempt,
                retry = retry_at.is_some(),
                "alert not delivered: {e}"
            ),
        }
        if let Err(e) = self
            .store
            .delivery_attempted(delivery.id, error, retry_at)
            .await
        {
            tracing::warn!("alerts: cannot record a delivery attempt: {e}");
        }
    }
}

/// The alerts a run's end makes: `failed` (final failures only: not one a retry follows, nor a
/// cancel or a lost lease), `paused`, `recovered`. Queued with the run's end, in its
/// transaction.
pub(crate) fn run_alerts(
    lease: &Lease,
    outcome: &wharf_runner::RunOutcome,
    finished: &Finished,
) -> Vec<PendingAlert> {
    let mut events = Vec::new();
    if let Some(error) = &outcome.error
        && finished.retry.is_none()
        && error.code != "cancelled"
        && error.code != "lease_lost"
    {
        events.push((
            AlertEvent::Failed,
            format!(
                "wharf: sync {} failed ({}): {} (run {})",
                lease.sync_name, error.code, error.message, lease.run_id
            ),
        ));
    }
    if let Some(reason) = &finished.paused {
        events.push((
            AlertEvent::Paused,
            format!("wharf: sync {} is paused: {reason}", lease.sync_name),
        ));
    }
    if outcome.error.is_none() && finished.recovered_from > 0 {
        events.push((
            AlertEvent::Recovered,
            format!(
                "wharf: sync {} recovered after {} failed scheduled run(s) (run {})",
                lease.sync_name, finished.recovered_from, lease.run_id
            ),
        ));
    }
    events
        .into_iter()
        .map(|(event, text)| PendingAlert {
            event,
            body: serde_json::json!({
                "event": event.as_str(),
                "workspace": lease.workspace,
                "sync": lease.sync_name,
                "run_id": lease.run_id,
                "status": outcome.status,
                "trigger": lease.trigger.as_str(),
                "attempt": lease.attempt,
                "error": outcome.error.as_ref().map(|e| serde_json::json!({
                    "code": e.code, "message": e.message,
                })),
                "pause_reason": finished.paused,
                "rows": outcome.rows,
                "bytes": outcome.bytes,
                "link": format!("/api/v1/runs/{}", lease.run_id),
                "at": wharf_store::stamp(OffsetDateTime::now_utc()),
                "text": text,
            })
            .to_string(),
        })
        .collect()
}
