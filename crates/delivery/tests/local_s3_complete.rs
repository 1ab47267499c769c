//! CompleteMultipartUpload on the local S3 endpoint answers as S3 does: the object is the parts
//! in order with the upload's content type, its ETag is the MD5 of the parts' MD5s with the part
//! count, and a request S3 refuses (no parts, a part's ETag that is not the stored part's, parts
//! out of order, another key's upload id, an `If-Match` or `If-None-Match` the object does not
//! meet) is refused with S3's code without losing the upload, which completes afterwards.

use aws_sdk_s3::error::ProvideErrorMetadata as _;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use md5::{Digest as _, Md5};
use wharf_testkit::{S3TestServer, bucket_residue, object_bytes};

const BUCKET: &str = "complete";

/// An open upload to `key` with `parts` stored; their ETags as the endpoint answered.
async fn upload(
    client: &aws_sdk_s3::Client,
    key: &str,
    parts: &[Vec<u8>],
) -> (String, Vec<CompletedPart>) {
    let id = client
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .content_type("text/csv; charset=utf-8")
        .send()
        .await
        .expect("create")
        .upload_id()
        .expect("id")
        .to_string();
    let mut done = Vec::new();
    for (i, body) in parts.iter().enumerate() {
        let number = i32::try_from(i + 1).expect("part number");
        let out = client
            .upload_part()
            .bucket(BUCKET)
            .key(key)
            .upload_id(&id)
            .part_number(number)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .expect("part");
        done.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .build(),
        );
    }
    (id, done)
}

async fn complete(
    client: &aws_sdk_s3::Client,
    key: &str,
    id: &str,
    parts: Vec<CompletedPart>,
    if_match: Option<&str>,
) -> Result<String, String> {
    client
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(id)
        .set_if_match(if_match.map(str::to_owned))
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map(|out| out.e_tag().unwrap_or_default().to_string())
        .map_err(|e| {
            let e = e.into_service_error();
            e.code().map_or_else(|| format!("{e:?}"), str::to_owned)
        })
}

/// S3's ETag of a multipart object: the MD5 of the parts' MD5s, `-`, the part count, quoted.
fn multipart_e_tag(parts: &[Vec<u8>]) -> String {
    let mut all = Md5::new();
    for part in parts {
        all.update(Md5::digest(part));
    }
    let hex: String = all.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}-{}\"", parts.len())
}

fn part(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add((i % 251) as u8))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_upload_is_its_parts_with_s3s_e_tag_and_refusals_keep_the_upload() {
    let server = S3TestServer::start().await;
    server.create_bucket(BUCKET).await;
    let client = server.admin();
    let parts = vec![
        part(1, 5 * 1024 * 1024),
        part(2, 5 * 1024 * 1024 + 7),
        part(3, 10),
    ];
    let key = "exports/run/part-0.csv";
    let (id, done) = upload(&client, key, &parts).await;

    // Refused, each leaving the upload as it was.
    let mut wrong = done.clone();
    wrong[1] = CompletedPart::builder()
        .part_number(2)
        .e_tag(done[0].e_tag().expect("tag"))
        .build();
    assert_eq!(
        complete(&client, key, &id, wrong, None).await,
        Err("InvalidPart".into())
    );
    assert_eq!(
        complete(&client, key, &id, Vec::new(), None).await,
        Err("InvalidPart".into())
    );
    let swapped = vec![done[1].clone(), done[0].clone(), done[2].clone()];
    assert_eq!(
        complete(&client, key, &id, swapped, None).await,
        Err("InvalidPartOrder".into())
    );
    assert_eq!(
        complete(&client, "exports/other.csv", &id, done.clone(), None).await,
        Err("NoSuchUpload".into())
    );
    assert_eq!(
        complete(&client, key, &id, done.clone(), Some("*")).await,
        Err("PreconditionFailed".into()),
        "If-Match: * and no object yet"
    );
    let (objects, uploads) = bucket_residue(&client, BUCKET).await;
    assert!(objects.is_empty(), "{objects:?}");
    assert_eq!(uploads.len(), 1, "{uploads:?}");

    // Completed: the parts in order, S3's ETag, the upload's content type.
    let e_tag = complete(&client, key, &id, done, None)
        .await
        .expect("complete");
    assert_eq!(e_tag, multipart_e_tag(&parts));
    assert!(object_bytes(&client, BUCKET, key).await == parts.concat());
    let head = client
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .expect("head");
    assert_eq!(head.e_tag(), Some(e_tag.as_str()));
    assert_eq!(head.content_type(), Some("text/csv; charset=utf-8"));
    let (objects, uploads) = bucket_residue(&client, BUCKET).await;
    assert_eq!(objects, vec![key.to_string()]);
    assert!(uploads.is_empty(), "{uploads:?}");

    // Replacing it: If-Match must name the object there now. The second upload's parts were
    // stored before a restart, so their MD5s come from their files.
    let second = vec![part(9, 5 * 1024 * 1024), part(8, 1)];
    let (id, done) = upload(&client, key, &second).await;
    let server = S3TestServer::restart(server.stop_keeping_files().await).await;
    let client = server.admin();
    assert_eq!(
        complete(&client, key, &id, done.clone(), Some("\"0123\"")).await,
        Err("PreconditionFailed".into())
    );
    let refused = client
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&id)
        .if_none_match("*")
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done.clone()))
                .build(),
        )
        .send()
        .await
        .expect_err("If-None-Match: * and the object exists");
    assert_eq!(
        refused.into_service_error().code(),
        Some("PreconditionFailed")
    );
    let replaced = complete(&client, key, &id, done, Some(&e_tag))
        .await
        .expect("complete over the object");
    assert_eq!(replaced, multipart_e_tag(&second));
    assert!(object_bytes(&client, BUCKET, key).await == second.concat());
    let leftovers: Vec<String> = std::fs::read_dir(server.root.path())
        .expect("root")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(".upload") || n.starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
