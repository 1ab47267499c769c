//! The upload conformance suite: each case written once, as a function of a server handle, and
//! run against S3 servers nobody here wrote (moto, Ceph radosgw, optionally LocalStack) as well as
//! the in-process s3s server. wharf talks to each server through a fault proxy
//! (`wharf_testkit::FaultProxy`) that loses answers, corrupts bodies on the wire and counts requests; checks
//! go straight to the server with an admin client, and expected values are computed here
//! (reference CRCs, the bytes written), never by the code under test.
//!
//! The macro calls at the end are the case-by-server table: a case a server cannot prove is
//! listed under `skips` with the reason, and shows as an ignored test with that reason.
//!
//! radosgw comes from `scripts/radosgw`, started once per run by `scripts/test`
//! (`WHARF_TEST_RADOSGW_*`). LocalStack is optional (a 500 MB venv, 6 s to start): its cases are
//! ignored unless asked for, after `scripts/localstack start DIR` and exporting what it prints
//! as `WHARF_TEST_LOCALSTACK_*`: `cargo test -p wharf-delivery --test conformance localstack::
//! -- --ignored`.

mod cases;
mod server;

use cases::*;
use server::{Kind, Server};

/// Every case, in the order the table lists them.
const CASES: &[&str] = &[
    "sizes_round_trip",
    "checksum_modes",
    "damaged_part_with_a_checksum_is_refused_and_resent",
    "damaged_part_without_a_checksum_is_refused_and_resent",
    "put_never_replaces_an_existing_key",
    "complete_never_replaces_an_existing_key",
    "upload_aborted_underneath_fails_clearly",
    "lost_answers_are_retried_into_one_object",
    "abort_leaves_no_parts",
    "janitor_aborts_stale_uploads",
    "storage_class_and_acl_reach_the_server",
    "sse_s3_is_applied",
    "sse_kms_is_applied",
];

macro_rules! on_server {
    // An optional server: every case it proves is ignored unless asked for (`--ignored`); the
    // cases it cannot prove are listed, with the reason, and never run.
    ($server:ident, $kind:expr, optional: $optional:literal,
     proves: [$($case:ident),* $(,)?],
     skips: [$($skipped:ident: $reason:literal),* $(,)?]) => {
        mod $server {
            pub const LISTED: &[&str] = &[$(stringify!($case),)* $(stringify!($skipped),)*];
            /// The cases this server cannot prove, and why.
            #[allow(dead_code)]
            pub const SKIPPED: &[(&str, &str)] = &[$((stringify!($skipped), $reason),)*];
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = $optional]
                async fn $case() {
                    super::Server::run($kind, super::$case).await
                }
            )*
        }
    };
    ($server:ident, $kind:expr,
     proves: [$($case:ident),* $(,)?],
     skips: [$($skipped:ident: $reason:literal),* $(,)?]) => {
        mod $server {
            pub const LISTED: &[&str] = &[$(stringify!($case),)* $(stringify!($skipped),)*];
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::Server::run($kind, super::$case).await
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = $reason]
                async fn $skipped() {
                    super::Server::run($kind, super::$skipped).await
                }
            )*
        }
    };
}

on_server!(s3s, super::Kind::S3s,
    proves: [
        sizes_round_trip,
        checksum_modes,
        damaged_part_with_a_checksum_is_refused_and_resent,
        damaged_part_without_a_checksum_is_refused_and_resent,
        put_never_replaces_an_existing_key,
        complete_never_replaces_an_existing_key,
        upload_aborted_underneath_fails_clearly,
        lost_answers_are_retried_into_one_object,
        abort_leaves_no_parts,
        janitor_aborts_stale_uploads,
    ],
    skips: [
        storage_class_and_acl_reach_the_server: "s3s-fs refuses every storage class but STANDARD (InvalidStorageClass)",
        sse_s3_is_applied: "s3s-fs neither applies nor reports server-side encryption",
        sse_kms_is_applied: "s3s-fs neither applies nor reports server-side encryption",
    ]
);

on_server!(moto, super::Kind::Moto,
    proves: [
        sizes_round_trip,
        checksum_modes,
        put_never_replaces_an_existing_key,
        complete_never_replaces_an_existing_key,
        lost_answers_are_retried_into_one_object,
        abort_leaves_no_parts,
        janitor_aborts_stale_uploads,
        storage_class_and_acl_reach_the_server,
        sse_s3_is_applied,
        sse_kms_is_applied,
    ],
    skips: [
        damaged_part_with_a_checksum_is_refused_and_resent: "moto 5.1.22 checks neither x-amz-checksum-* on UploadPart nor a signed payload's SHA-256: a damaged part is stored",
        damaged_part_without_a_checksum_is_refused_and_resent: "moto 5.1.22 does not check a signed payload's SHA-256: a damaged part is stored",
        upload_aborted_underneath_fails_clearly: "moto 5.1.22 answers UploadPart to an aborted upload with a 500 (a KeyError), not NoSuchUpload",
    ]
);

on_server!(radosgw, super::Kind::Radosgw,
    proves: [
        sizes_round_trip,
        checksum_modes,
        damaged_part_with_a_checksum_is_refused_and_resent,
        damaged_part_without_a_checksum_is_refused_and_resent,
        put_never_replaces_an_existing_key,
        upload_aborted_underneath_fails_clearly,
        lost_answers_are_retried_into_one_object,
        abort_leaves_no_parts,
        janitor_aborts_stale_uploads,
        storage_class_and_acl_reach_the_server,
        sse_kms_is_applied,
    ],
    skips: [
        complete_never_replaces_an_existing_key: "radosgw 16.2 ignores If-None-Match on CompleteMultipartUpload: the second object replaces the first",
        sse_s3_is_applied: "radosgw 16.2 accepts AES256 without a key store: the object is stored unencrypted and HEAD reports no encryption",
    ]
);

on_server!(localstack, super::Kind::LocalStack,
    optional: "LocalStack is optional: scripts/localstack start DIR, export WHARF_TEST_LOCALSTACK_*, run with --ignored",
    proves: [
        sizes_round_trip,
        checksum_modes,
        damaged_part_with_a_checksum_is_refused_and_resent,
        put_never_replaces_an_existing_key,
        complete_never_replaces_an_existing_key,
        upload_aborted_underneath_fails_clearly,
        lost_answers_are_retried_into_one_object,
        abort_leaves_no_parts,
        janitor_aborts_stale_uploads,
        storage_class_and_acl_reach_the_server,
        sse_s3_is_applied,
        sse_kms_is_applied,
    ],
    skips: [
        damaged_part_without_a_checksum_is_refused_and_resent: "LocalStack checks neither SigV4 signatures nor a signed payload's SHA-256: without a CRC a damaged part is stored",
    ]
);

#[test]
fn every_server_lists_every_case_once() {
    for (server, listed) in [
        ("s3s", s3s::LISTED),
        ("moto", moto::LISTED),
        ("radosgw", radosgw::LISTED),
        ("localstack", localstack::LISTED),
    ] {
        let mut listed = listed.to_vec();
        let mut cases = CASES.to_vec();
        listed.sort_unstable();
        cases.sort_unstable();
        assert_eq!(listed, cases, "{server}");
    }
}
