//! Alert channels: the webhook URL a channel posts to, and the events it is told about.

use crate::endpoint::check_url_host;
use crate::error::InvalidValue;
use crate::string_enum::string_enum;
use serde::{Deserialize, Serialize};
use std::fmt;

string_enum!(
    /// What an alert channel is told about: a run that failed for good (no retry follows), a
    /// sync paused after failures in a row, a sync whose run succeeded after failing.
    AlertEvent, "on", "an alert event", {
        Failed => "failed",
        Paused => "paused",
        Recovered => "recovered",
    }
);

impl AlertEvent {
    /// `failed,paused,recovered` as a list; repeats removed.
    pub fn parse_list(value: &str) -> Result<Vec<Self>, InvalidValue> {
        let mut events = Vec::new();
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let event = Self::parse(item)?;
            if !events.contains(&event) {
                events.push(event);
            }
        }
        if events.is_empty() {
            return Err(InvalidValue::new(
                "on",
                value,
                "name at least one event: failed, paused, recovered",
            ));
        }
        Ok(events)
    }
}

/// An http(s) URL an alert is posted to. Its host passes the same address rules as an S3
/// endpoint (no cloud metadata service ever; private and loopback addresses only when the
/// operator allows them); host names are resolved and checked again before each delivery.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    url: url::Url,
}

impl WebhookUrl {
    pub fn parse(value: &str, allow_private: bool) -> Result<Self, InvalidValue> {
        // Webhook URLs often hold a secret in their path (Slack's do): errors do not echo it.
        let shown = redact_text(value);
        let fail = |reason: String| Err(InvalidValue::new("url", shown.clone(), reason));
        let Ok(url) = url::Url::parse(value) else {
            return fail("expected a URL like \"https://hooks.example.com/wharf\"".into());
        };
        if url.scheme() != "http" && url.scheme() != "https" {
            return fail(format!(
                "the scheme is \"https\" or \"http\", not {:?}",
                url.scheme()
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return fail("a webhook URL cannot carry a user name or password".into());
        }
        if url.host().is_none() {
            return fail("a webhook URL needs a host".into());
        }
        if let Err(reason) = check_url_host(&url, allow_private) {
            return fail(reason);
        }
        Ok(Self { url })
    }

    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// Host name or address and port, for resolution.
    pub fn host_and_port(&self) -> (String, u16) {
        let host = match self.url.host() {
            Some(url::Host::Ipv6(v6)) => v6.to_string(),
            Some(host) => host.to_string(),
            None => String::new(),
        };
        (host, self.url.port_or_known_default().unwrap_or(443))
    }

    /// The URL as shown: scheme, host and port, with the path and query (which may hold a
    /// token) replaced by `/…`.
    pub fn redacted(&self) -> String {
        let mut shown = format!(
            "{}://{}",
            self.url.scheme(),
            self.url.host_str().unwrap_or("")
        );
        if let Some(port) = self.url.port() {
            shown.push_str(&format!(":{port}"));
        }
        if self.url.path() != "/" || self.url.query().is_some() {
            shown.push_str("/…");
        }
        shown
    }
}

fn redact_text(value: &str) -> String {
    match url::Url::parse(value) {
        Ok(url) if url.host_str().is_some() => WebhookUrl { url }.redacted(),
        _ => "[not a URL]".to_string(),
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_pass_the_address_rules_and_are_shown_redacted() {
        let slack = WebhookUrl::parse("https://hooks.slack.com/services/T0/B0/SECRETxyz", false)
            .expect("public");
        assert_eq!(slack.redacted(), "https://hooks.slack.com/…");
        assert!(!format!("{slack:?}").contains("SECRET"));
        let local = WebhookUrl::parse("http://127.0.0.1:8099/hook", true).expect("allowed");
        assert_eq!(local.host_and_port(), ("127.0.0.1".into(), 8099));
        assert_eq!(local.redacted(), "http://127.0.0.1:8099/…");
        let refused =
            WebhookUrl::parse("http://127.0.0.1:8099/hook?token=abc", false).expect_err("loopback");
        assert_eq!(refused.field, "url");
        assert!(
            refused.reason.contains("--allow-private-endpoints"),
            "{refused}"
        );
        assert!(!refused.to_string().contains("token=abc"), "{refused}");
        for metadata in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
        ] {
            let e = WebhookUrl::parse(metadata, true).expect_err("metadata");
            assert!(e.reason.contains("never sends data there"), "{e}");
        }
        assert!(WebhookUrl::parse("ftp://example.com/x", true).is_err());
        assert!(WebhookUrl::parse("https://u:p@example.com/x", true).is_err());
        assert_eq!(
            AlertEvent::parse_list("failed, paused,failed").expect("list"),
            [AlertEvent::Failed, AlertEvent::Paused]
        );
        assert_eq!(AlertEvent::parse_list("boom").expect_err("x").field, "on");
    }
}
