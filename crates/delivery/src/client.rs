//! S3 clients for a destination.

use crate::error::DeliveryError;
use crate::identity::Identity;
use aws_config::sts::AssumeRoleProvider;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, IdentityCache, Region, RequestChecksumCalculation,
    ResponseChecksumValidation, SharedCredentialsProvider,
};
use std::time::Duration;
use wharf_domain::endpoint::classify_ip;
use wharf_domain::{ChecksumChoice, Endpoint, S3Auth, S3Destination};

/// Settings the operator controls, not the destination's owner.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// `--allow-private-endpoints`: custom endpoints may be on loopback or private networks.
    pub allow_private_endpoints: bool,
    /// Attempts per request, including the first (retries use exponential backoff with jitter).
    pub max_attempts: u32,
    /// The operator's S3 endpoint for destinations without one of their own (from
    /// `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, see [`operator_s3_endpoint`]); `None`: AWS.
    pub operator_s3_endpoint: Option<String>,
    /// Assumed-role credentials are replaced this long before they expire, so a long upload
    /// never signs a request with credentials that die mid-flight. (The SDK's own default is
    /// 10 seconds.) Tests shorten it to watch refreshes happen.
    pub credential_refresh_margin: Duration,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            allow_private_endpoints: false,
            max_attempts: 3,
            operator_s3_endpoint: None,
            credential_refresh_margin: CREDENTIAL_REFRESH_MARGIN,
        }
    }
}

impl ClientSettings {
    /// Where `destination`'s requests go: its own endpoint, else the operator's, else AWS
    /// (`None`). The one answer to "does this destination use a custom endpoint?", for the
    /// client, the upload, the connection test and every view of the destination.
    pub fn endpoint_for(&self, destination: &S3Destination) -> Option<String> {
        destination
            .endpoint
            .as_ref()
            .map(|e| e.as_str().to_string())
            .or_else(|| self.operator_s3_endpoint.clone())
    }

    /// The checksum `destination`'s uploads send, given where they go
    /// ([`DeliveryOptions::effective_checksum`](wharf_domain::destination::DeliveryOptions::effective_checksum)).
    pub fn checksum_for(&self, destination: &S3Destination) -> ChecksumChoice {
        destination
            .delivery
            .effective_checksum(self.endpoint_for(destination).is_some())
    }
}

/// The default [`ClientSettings::credential_refresh_margin`]: five minutes, a third of the
/// shortest session STS grants.
const CREDENTIAL_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// The S3 endpoint the operator configured for the whole process, if any.
pub fn operator_s3_endpoint() -> Option<String> {
    let ignore = std::env::var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    if ignore {
        return None;
    }
    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
}

/// Refuses an endpoint whose host resolves to an address the operator has not allowed. Runs
/// before every client is built: the operator's setting may have changed since the destination
/// was added, and DNS answers change.
pub async fn check_endpoint(endpoint: &Endpoint, allow_private: bool) -> Result<(), DeliveryError> {
    let (host, port) = endpoint.host_and_port();
    check_host(&endpoint.to_string(), &host, port, allow_private).await
}

/// Refuses a host (of an endpoint or a webhook, shown as `shown`) that resolves to an address
/// the operator has not allowed.
pub(crate) async fn check_host(
    shown: &str,
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<(), DeliveryError> {
    let host = host.to_string();
    let addrs: Vec<std::net::SocketAddr> = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![std::net::SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|source| DeliveryError::EndpointUnresolvable {
                endpoint: shown.to_string(),
                host: host.clone(),
                source,
            })?
            .collect(),
    };
    for addr in addrs {
        let class = classify_ip(addr.ip());
        if !class.permitted(allow_private) {
            return Err(DeliveryError::EndpointRefused {
                endpoint: shown.to_string(),
                reason: format!(
                    "{host} resolves to {}, {}; the operator can allow private endpoints with --allow-private-endpoints",
                    addr.ip(),
                    class.describe()
                ),
            });
        }
    }
    Ok(())
}

/// The configuration every S3 client of a destination shares: region, endpoint (the
/// destination's, else the operator's, else AWS), path-style addressing for custom endpoints,
/// checksums, timeouts and retries.
fn base_config(
    destination: &S3Destination,
    settings: &ClientSettings,
) -> aws_sdk_s3::config::Builder {
    let endpoint = settings.endpoint_for(destination);
    let custom_endpoint = endpoint.is_some();
    let checksum = settings.checksum_for(destination);
    let mut builder = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(destination.region.as_str().to_string()))
        // Custom endpoints rarely have wildcard DNS for virtual-hosted buckets.
        .force_path_style(custom_endpoint)
        .request_checksum_calculation(match checksum {
            ChecksumChoice::WhenRequired => RequestChecksumCalculation::WhenRequired,
            ChecksumChoice::Crc32c | ChecksumChoice::Crc64nvme => {
                RequestChecksumCalculation::WhenSupported
            }
        })
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .read_timeout(Duration::from_secs(120))
                .build(),
        );
    builder.set_endpoint_url(endpoint);
    builder
}

/// An S3 client signing with the given credentials (static keys, or temporary credentials the
/// caller obtained).
pub fn s3_client_with_credentials(
    destination: &S3Destination,
    credentials: Credentials,
    settings: ClientSettings,
) -> aws_sdk_s3::Client {
    let config = base_config(destination, &settings)
        .credentials_provider(credentials)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The S3 client of a destination: static keys for access-key auth; for role auth, credentials
/// from `sts:AssumeRole` on top of wharf's identity, cached by the client and refreshed
/// [`ClientSettings::credential_refresh_margin`] before expiry (a handful of STS calls per run,
/// not one per request). `purpose` ends up in the role session name
/// (`wharf-<destination>-<purpose>`), which CloudTrail shows to the bucket's owner.
pub async fn s3_client(
    destination: &S3Destination,
    identity: Option<&Identity>,
    purpose: &str,
    settings: ClientSettings,
) -> Result<aws_sdk_s3::Client, DeliveryError> {
    if let Some(endpoint) = &destination.endpoint {
        check_endpoint(endpoint, settings.allow_private_endpoints).await?;
    }
    match &destination.auth {
        S3Auth::AccessKey {
            access_key_id,
            secret_access_key,
        } => Ok(s3_client_with_credentials(
            destination,
            static_credentials(access_key_id.as_str(), secret_access_key.expose()),
            settings,
        )),
        S3Auth::AssumeRole {
            role_arn,
            external_id,
            session_duration_seconds,
        } => {
            let identity = identity.ok_or(DeliveryError::NoIdentity)?;
            let provider = AssumeRoleProvider::builder(role_arn.as_str())
                .configure(identity.sdk_config())
                .session_name(session_name(destination.name.as_str(), purpose))
                .external_id(external_id.as_str())
                .session_length(Duration::from_secs(u64::from(*session_duration_seconds)))
                .build()
                .await;
            let cache = IdentityCache::lazy()
                .buffer_time(settings.credential_refresh_margin)
                .build();
            let mut builder = base_config(destination, &settings).identity_cache(cache);
            builder.set_credentials_provider(Some(SharedCredentialsProvider::new(provider)));
            Ok(aws_sdk_s3::Client::from_conf(builder.build()))
        }
    }
}

pub(crate) fn static_credentials(access_key_id: &str, secret: &str) -> Credentials {
    Credentials::new(access_key_id, secret, None, None, "wharf-destination")
}

/// `wharf-<destination>-<purpose>`, cut to STS's 64 characters, in its alphabet `[\w+=,.@-]`.
pub fn session_name(destination: &str, purpose: &str) -> String {
    let mut name: String = format!("wharf-{destination}-{purpose}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(64);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_fit_sts_rules() {
        assert_eq!(session_name("partner", "test"), "wharf-partner-test");
        let long = session_name(&"d".repeat(63), "run-0192d1a3-7c1e-7b0a-9c3e-5f1d2e3a4b5c");
        assert_eq!(long.len(), 64);
        assert_eq!(session_name("a", "run/1 x"), "wharf-a-run-1-x");
    }

    /// With the operator's `AWS_ENDPOINT_URL_S3` set, a destination without an endpoint of its
    /// own goes to that endpoint: the client, the upload target and every view agree on it and
    /// on the checksum that follows from it (they used to answer differently).
    #[tokio::test]
    async fn the_operator_endpoint_decides_the_checksum_everywhere() {
        let spec: wharf_domain::destination::S3DestinationSpec =
            serde_json::from_value(serde_json::json!({
                "name": "lake", "bucket": "wharf-lake", "region": "eu-west-3",
                "auth": {"type": "access-key", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "s"},
            }))
            .expect("spec");
        let d = spec
            .validate(
                || wharf_domain::ExternalId::from_stored("wharf-x").expect("id"),
                false,
            )
            .expect("valid");
        let aws = ClientSettings::default();
        let operator = ClientSettings {
            operator_s3_endpoint: Some("https://s3.example.net".into()),
            ..ClientSettings::default()
        };
        assert_eq!(aws.endpoint_for(&d), None);
        assert_eq!(aws.checksum_for(&d), ChecksumChoice::Crc32c);
        assert_eq!(
            operator.endpoint_for(&d).as_deref(),
            Some("https://s3.example.net")
        );
        assert_eq!(operator.checksum_for(&d), ChecksumChoice::WhenRequired);
        let client = s3_client(&d, None, "test", operator.clone())
            .await
            .expect("client");
        let target = crate::upload::UploadTarget::new(client, &d, &operator);
        assert_eq!(target.checksum(), operator.checksum_for(&d));
    }
}
