//! The request options every object wharf writes carries: encryption, KMS key, storage class,
//! canned ACL, and the checksum its parts and whole object carry. Runs and the connection test
//! build their requests here, so the test tries exactly what runs send.

use aws_sdk_s3::operation::create_multipart_upload::builders::CreateMultipartUploadFluentBuilder;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumType, ObjectCannedAcl, ServerSideEncryption as SdkSse,
    StorageClass as SdkStorageClass,
};
use wharf_domain::{ChecksumChoice, DeliveryOptions, ServerSideEncryption};

/// A CreateMultipartUpload of `key` with the destination's delivery options and, when the
/// destination sends checksums, the algorithm and the full-object type its Complete checks.
pub(crate) fn create_multipart(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    delivery: &DeliveryOptions,
    checksum: ChecksumChoice,
) -> CreateMultipartUploadFluentBuilder {
    let create = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .set_server_side_encryption(sse(delivery))
        .set_ssekms_key_id(kms_key(delivery))
        .set_storage_class(storage_class(delivery))
        .set_acl(acl(delivery));
    match checksum_algorithm(checksum) {
        Some(algorithm) => create
            .checksum_algorithm(algorithm)
            .checksum_type(ChecksumType::FullObject),
        None => create,
    }
}

/// The algorithm parts carry; `None` when the destination sends checksums only where S3
/// requires them.
pub(crate) fn checksum_algorithm(checksum: ChecksumChoice) -> Option<ChecksumAlgorithm> {
    match checksum {
        ChecksumChoice::Crc32c => Some(ChecksumAlgorithm::Crc32C),
        ChecksumChoice::Crc64nvme => Some(ChecksumAlgorithm::Crc64Nvme),
        ChecksumChoice::WhenRequired => None,
    }
}

pub(crate) fn sse(d: &DeliveryOptions) -> Option<SdkSse> {
    d.sse.as_ref().map(|s| match s {
        ServerSideEncryption::Aes256 => SdkSse::Aes256,
        ServerSideEncryption::Kms { .. } => SdkSse::AwsKms,
    })
}

pub(crate) fn kms_key(d: &DeliveryOptions) -> Option<String> {
    match &d.sse {
        Some(ServerSideEncryption::Kms { key_id }) => Some(key_id.as_str().to_string()),
        _ => None,
    }
}

pub(crate) fn storage_class(d: &DeliveryOptions) -> Option<SdkStorageClass> {
    d.storage_class.map(|c| SdkStorageClass::from(c.as_str()))
}

pub(crate) fn acl(d: &DeliveryOptions) -> Option<ObjectCannedAcl> {
    d.acl.map(|a| ObjectCannedAcl::from(a.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_domain::destination::S3DestinationSpec;

    /// Every delivery option a destination can have ends up on the request.
    #[tokio::test]
    async fn the_request_carries_every_delivery_option_and_the_checksum() {
        let spec: S3DestinationSpec = serde_json::from_value(serde_json::json!({
            "name": "lake", "bucket": "wharf-lake", "region": "eu-west-3",
            "auth": {"type": "access-key", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "s"},
            "sse": "kms", "kms_key_id": "arn:aws:kms:eu-west-3:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "storage_class": "STANDARD_IA", "acl": "bucket-owner-full-control", "checksum": "crc64nvme",
        }))
        .expect("spec");
        let d = spec
            .validate(
                || wharf_domain::ExternalId::from_stored("wharf-x").expect("id"),
                false,
            )
            .expect("valid");
        let settings = crate::ClientSettings::default();
        let client = crate::s3_client(&d, None, "test", settings.clone())
            .await
            .expect("client");
        let create = create_multipart(
            &client,
            "wharf-lake",
            "k",
            &d.delivery,
            settings.checksum_for(&d),
        );
        let input = create.as_input();
        assert_eq!(input.get_server_side_encryption(), &Some(SdkSse::AwsKms));
        assert!(
            input
                .get_ssekms_key_id()
                .as_deref()
                .is_some_and(|k| k.ends_with("1234567890ab"))
        );
        assert_eq!(
            input.get_storage_class(),
            &Some(SdkStorageClass::StandardIa)
        );
        assert_eq!(
            input.get_acl(),
            &Some(ObjectCannedAcl::BucketOwnerFullControl)
        );
        assert_eq!(
            input.get_checksum_algorithm(),
            &Some(ChecksumAlgorithm::Crc64Nvme)
        );
        assert_eq!(input.get_checksum_type(), &Some(ChecksumType::FullObject));
    }
}
