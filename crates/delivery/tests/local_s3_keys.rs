//! The local S3 endpoint stores every key S3 does, up to 1,024 bytes, though its folder's file
//! names stop at 255: written whole or in parts, read, listed under its own name (with a
//! prefix, a delimiter, page by page), copied, deleted, and recovered after a restart.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use wharf_delivery::local_s3::{LocalS3Config, LocalS3Server};
use wharf_testkit::{bucket_residue, object_bytes, s3_client};

/// The longest bucket name: it leaves the least room for a key in a side-file name.
const BUCKET: &str = "wharf-long-keys-00000000000000000000000000000000000000000000000";

async fn start(root: &std::path::Path) -> (LocalS3Server, aws_sdk_s3::Client) {
    let server = LocalS3Server::start(LocalS3Config {
        root: root.to_path_buf(),
        port: 0,
        credentials: vec![("AKIALONGKEYS".into(), "secret".into())],
        access_rule: None,
        hook: None,
    })
    .await
    .expect("start");
    let client = s3_client(&server.endpoint(), "AKIALONGKEYS", "secret");
    (server, client)
}

/// [`start`] on an empty folder, then the bucket.
async fn start_with_bucket(root: &std::path::Path) -> (LocalS3Server, aws_sdk_s3::Client) {
    let (server, client) = start(root).await;
    client
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("bucket");
    (server, client)
}

/// A key of exactly `len` bytes under `exports/<name>/`.
fn key(name: &str, len: usize) -> String {
    let head = format!("exports/{name}/");
    format!("{head}{}", "k".repeat(len - head.len()))
}

async fn list_all(client: &aws_sdk_s3::Client, prefix: &str, page: i32) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let out = client
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix(prefix)
            .max_keys(page)
            .set_continuation_token(token)
            .send()
            .await
            .expect("list");
        keys.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        token = out.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return keys;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_up_to_1024_bytes_are_stored_read_and_listed_under_their_own_names() {
    let root = tempfile::tempdir().expect("dir");
    let (_server, client) = start_with_bucket(root.path()).await;
    let short = "exports/a/short.csv".to_string();
    let long = key("a", 1024);
    let segment = format!("exports/b/{}.csv", "s".repeat(300));
    for (k, body) in [(&short, "short"), (&long, "long"), (&segment, "segment")] {
        client
            .put_object()
            .bucket(BUCKET)
            .key(k)
            .if_none_match("*")
            .body(ByteStream::from_static(body.as_bytes()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {} bytes: {e:?}", k.len()));
        assert_eq!(object_bytes(&client, BUCKET, k).await, body.as_bytes());
        let head = client
            .head_object()
            .bucket(BUCKET)
            .key(k)
            .send()
            .await
            .expect("head");
        assert_eq!(head.content_length(), Some(body.len() as i64));
    }
    // Over S3's limit: refused as S3 refuses it, nothing written.
    let too_long = key("a", 1025);
    let err = client
        .put_object()
        .bucket(BUCKET)
        .key(&too_long)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect_err("1,025 bytes");
    assert!(format!("{err:?}").contains("KeyTooLong"), "{err:?}");

    // Listed under their own names, in S3's order, with prefixes and pages.
    let mut expected = vec![short.clone(), long.clone(), segment.clone()];
    expected.sort();
    assert_eq!(list_all(&client, "", 1000).await, expected);
    assert_eq!(list_all(&client, "", 1).await, expected);
    assert_eq!(
        list_all(&client, "exports/a/", 1000).await,
        [long.clone(), short.clone()],
        "k before s"
    );
    assert_eq!(
        list_all(&client, &long[..600], 1000).await,
        vec![long.clone()]
    );
    let rolled = client
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("exports/")
        .delimiter("/")
        .send()
        .await
        .expect("list with a delimiter");
    let prefixes: Vec<_> = rolled
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, ["exports/a/", "exports/b/"]);
    assert!(rolled.contents().is_empty());
    let v1 = client
        .list_objects()
        .bucket(BUCKET)
        .prefix("exports/a/")
        .send()
        .await
        .expect("list v1");
    let v1: Vec<_> = v1.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(v1, [long.as_str(), short.as_str()]);

    // Copied to another long key, then deleted: nothing is left, not even the names.
    let copy = key("c", 1000);
    client
        .copy_object()
        .bucket(BUCKET)
        .key(&copy)
        .copy_source(format!("{BUCKET}/{}", urlencode(&long)))
        .send()
        .await
        .expect("copy");
    assert_eq!(object_bytes(&client, BUCKET, &copy).await, b"long");
    for k in [&short, &long, &segment, &copy] {
        client
            .delete_object()
            .bucket(BUCKET)
            .key(k)
            .send()
            .await
            .expect("delete");
    }
    assert!(list_all(&client, "", 1000).await.is_empty());
    let names = walk(&root.path().join(".wharf-long-keys"));
    assert!(
        names.iter().all(|n| n.ends_with('/')),
        "names left: {names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_upload_to_a_long_key_survives_a_restart_and_completes() {
    let root = tempfile::tempdir().expect("dir");
    let (server, client) = start_with_bucket(root.path()).await;
    let long = key("parts", 1024);
    let upload = client
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(&long)
        .send()
        .await
        .expect("create");
    assert_eq!(upload.key(), Some(long.as_str()));
    let upload_id = upload.upload_id().expect("id").to_string();
    let part = vec![7u8; 5 * 1024 * 1024];
    let out = client
        .upload_part()
        .bucket(BUCKET)
        .key(&long)
        .upload_id(&upload_id)
        .part_number(1)
        .body(ByteStream::from(part.clone()))
        .send()
        .await
        .expect("part");
    let e_tag = out.e_tag().map(str::to_owned);
    server.shutdown().await;

    // After a restart the open upload is listed under its own key, and it completes.
    let (_server, client) = start(root.path()).await;
    let (objects, uploads) = bucket_residue(&client, BUCKET).await;
    assert!(objects.is_empty(), "{objects:?}");
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    assert!(uploads[0].contains(&long), "{uploads:?}");
    let parts = client
        .list_parts()
        .bucket(BUCKET)
        .key(&long)
        .upload_id(&upload_id)
        .send()
        .await
        .expect("list parts");
    assert_eq!(parts.parts().len(), 1);
    let done = client
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key(&long)
        .upload_id(&upload_id)
        .if_none_match("*")
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .set_e_tag(e_tag)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("complete");
    assert_eq!(done.key(), Some(long.as_str()));
    assert!(object_bytes(&client, BUCKET, &long).await == part);
    let (objects, uploads) = bucket_residue(&client, BUCKET).await;
    assert_eq!(objects, vec![long.clone()]);
    assert!(uploads.is_empty(), "{uploads:?}");

    // An aborted upload to another long key leaves neither parts nor its name.
    let other = key("aborted", 900);
    let upload = client
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(&other)
        .send()
        .await
        .expect("create");
    client
        .abort_multipart_upload()
        .bucket(BUCKET)
        .key(&other)
        .upload_id(upload.upload_id().expect("id"))
        .send()
        .await
        .expect("abort");
    let names: Vec<_> = walk(&root.path().join(".wharf-long-keys"))
        .into_iter()
        .filter(|n| !n.ends_with('/'))
        .collect();
    assert_eq!(names.len(), 1, "only the completed key's name: {names:?}");
}

/// Every file and folder under `dir`, folders with a trailing `/`.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() {
            found.push(format!("{name}/"));
            found.extend(
                walk(&entry.path())
                    .into_iter()
                    .map(|n| format!("{name}/{n}")),
            );
        } else {
            found.push(name);
        }
    }
    found
}

/// Percent-encodes a key for `x-amz-copy-source`.
fn urlencode(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
