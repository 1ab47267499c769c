//! wharf's own AWS identity: the default credential chain of the machine it runs on.

use crate::aws_error::{AwsFailure, FailureKind};
use crate::error::DeliveryError;
use aws_config::meta::region::RegionProviderChain;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use std::time::Duration;

/// wharf's identity: environment variables, the shared profile, web identity (EKS), the ECS
/// task role or the EC2 instance role, in the SDK's standard order. The operator may send its STS
/// and S3 calls elsewhere with `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_STS` and
/// `AWS_ENDPOINT_URL_S3` (that is how the tests reach moto); destinations cannot.
#[derive(Clone, Debug)]
pub struct Identity {
    config: SdkConfig,
}

/// Who wharf is to AWS.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Caller {
    pub arn: String,
    pub account: String,
}

impl Identity {
    /// Loads the chain. Nothing is fetched yet: credentials resolve on the first call.
    pub async fn from_environment() -> Self {
        // STS answers in every region; without a configured region wharf still has an identity.
        let region = RegionProviderChain::default_provider().or_else("us-east-1");
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_timeout(Duration::from_secs(30))
            .build();
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(region)
            .timeout_config(timeouts)
            .load()
            .await;
        Self { config }
    }

    /// An identity from an explicit configuration (tests, embedding).
    pub fn from_config(config: SdkConfig) -> Self {
        Self { config }
    }

    pub fn sdk_config(&self) -> &SdkConfig {
        &self.config
    }

    pub(crate) fn sts(&self) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.config)
    }

    /// `sts:GetCallerIdentity`: the principal that roles must trust.
    pub async fn caller(&self) -> Result<Caller, DeliveryError> {
        let output = self.sts().get_caller_identity().send().await.map_err(|e| {
            let failure = AwsFailure::from_sdk(&e);
            if failure.kind == FailureKind::NotSent {
                DeliveryError::NoIdentity
            } else {
                DeliveryError::Aws {
                    operation: "sts:GetCallerIdentity",
                    failure,
                }
            }
        })?;
        Ok(Caller {
            arn: output.arn().unwrap_or_default().to_string(),
            account: output.account().unwrap_or_default().to_string(),
        })
    }
}
