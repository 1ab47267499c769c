//! TLS to PostgreSQL sources: each `sslmode` against the test cluster (which offers TLS with a
//! self-signed certificate), `verify-full` checking the CA and the host name, and `prefer`
//! falling back to a plain session when a server refuses TLS.

mod support;

use std::sync::Arc;
use support::Fixture;
use support::pg::{Schema, add_model, add_parsed_source};
use wharf_domain::{PostgresSource, SslMode};
use wharf_store::DEFAULT_WORKSPACE;

/// Each `sslmode` against the test cluster, which offers TLS with a self-signed certificate:
/// whether the session is encrypted, and `verify-full` trusting only the given CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_modes_encrypt_and_verify_as_libpq_does() {
    let fx = Fixture::start().await;
    let schema = Schema::create("tls");
    let ca = std::path::PathBuf::from(std::env::var("WHARF_TEST_POSTGRES_CA").expect(
        "WHARF_TEST_POSTGRES_CA is not set: run the tests with scripts/test, which starts a PostgreSQL cluster with TLS",
    ));
    let encrypted = "SELECT 1::int8 AS id, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    for (name, mode, root, want) in [
        ("plain", SslMode::Disable, None, false),
        ("prefer", SslMode::Prefer, None, true),
        ("require", SslMode::Require, None, true),
        ("verified", SslMode::VerifyFull, Some(ca.clone()), true),
    ] {
        let source = PostgresSource::parse(schema.url().as_str(), Some(mode), root).expect("url");
        add_parsed_source(&fx, name, source)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        add_model(&fx, &format!("{name}-ssl"), name, encrypted)
            .await
            .expect("model");
        let preview = wharf_runner::models::preview_model(
            &fx.store,
            DEFAULT_WORKSPACE,
            &format!("{name}-ssl"),
            1,
            &fx.settings,
        )
        .await
        .expect("preview");
        assert_eq!(preview.rows[0]["ssl"], want, "{name}");
    }
    // verify-full against the system's roots: the self-signed certificate is refused.
    let source =
        PostgresSource::parse(schema.url().as_str(), Some(SslMode::VerifyFull), None).expect("url");
    let e = add_parsed_source(&fx, "untrusted", source)
        .await
        .expect_err("untrusted certificate");
    assert_eq!(e.code(), "postgres.tls", "{e}");
    // verify-full checks the name too: the certificate is for 127.0.0.1 and localhost only.
    // The server is reached as 127.0.0.2, through a forwarder listening there, so the
    // connection gets as far as the certificate and fails on its name alone.
    let mut url = schema.url();
    let port = url.port().expect("the test cluster's port");
    let forwarder = Forwarder::start("127.0.0.2", ("127.0.0.1", port)).await;
    url.set_host(Some("127.0.0.2")).expect("host");
    url.set_port(Some(forwarder.port)).expect("port");
    let source =
        PostgresSource::parse(url.as_str(), Some(SslMode::VerifyFull), Some(ca)).expect("url");
    let e = add_parsed_source(&fx, "wrong-name", source)
        .await
        .expect_err("wrong host name");
    assert!(forwarder.connections() >= 1, "the server was reached");
    assert_eq!(e.code(), "postgres.tls", "{e}");
}

/// A TCP forwarder from `host:<free port>` to `to`, counting connections; stops when dropped.
/// One `refusing_tls` answers PostgreSQL's SSLRequest with `N` itself, as a server without TLS
/// does, and forwards the rest of the session in the clear.
struct Forwarder {
    port: u16,
    connections: Arc<std::sync::atomic::AtomicUsize>,
    refused: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

/// PostgreSQL's SSLRequest: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F];

impl Forwarder {
    async fn start(host: &str, to: (&'static str, u16)) -> Self {
        Self::with(host, to, false).await
    }

    async fn refusing_tls(host: &str, to: (&'static str, u16)) -> Self {
        Self::with(host, to, true).await
    }

    async fn with(host: &str, to: (&'static str, u16), refuse_tls: bool) -> Self {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind((host, 0))
            .await
            .expect("bind the forwarder");
        let port = listener.local_addr().expect("address").port();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let task = tokio::spawn({
            let (connections, refused) = (connections.clone(), refused.clone());
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let refused = refused.clone();
                    tokio::spawn(async move {
                        let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await else {
                            return;
                        };
                        if refuse_tls {
                            let mut first = [0u8; 8];
                            if inbound.read_exact(&mut first).await.is_err() {
                                return;
                            }
                            let sent = if first == SSL_REQUEST {
                                refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                inbound.write_all(b"N").await
                            } else {
                                outbound.write_all(&first).await
                            };
                            if sent.is_err() {
                                return;
                            }
                        }
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    });
                }
            }
        });
        Self {
            port,
            connections,
            refused,
            task,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn refused(&self) -> usize {
        self.refused.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `sslmode=prefer` against a server that refuses TLS falls back to a plain session, as libpq
/// does; `require` refuses to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefer_falls_back_to_plain_when_the_server_refuses_tls() {
    let fx = Fixture::start().await;
    let schema = Schema::create("prefer");
    let mut url = schema.url();
    let port = url.port().expect("the test cluster's port");
    let forwarder = Forwarder::refusing_tls("127.0.0.1", ("127.0.0.1", port)).await;
    url.set_port(Some(forwarder.port)).expect("port");
    let encrypted = "SELECT 1::int8 AS id, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    let source = PostgresSource::parse(url.as_str(), Some(SslMode::Prefer), None).expect("url");
    add_parsed_source(&fx, "preferred", source)
        .await
        .expect("prefer connects without TLS");
    add_model(&fx, "preferred-ssl", "preferred", encrypted)
        .await
        .expect("model");
    let preview = wharf_runner::models::preview_model(
        &fx.store,
        DEFAULT_WORKSPACE,
        "preferred-ssl",
        1,
        &fx.settings,
    )
    .await
    .expect("preview");
    assert_eq!(preview.rows[0]["ssl"], false, "a plain session");
    assert!(forwarder.refused() >= 1, "the server refused TLS");
    let source = PostgresSource::parse(url.as_str(), Some(SslMode::Require), None).expect("url");
    let e = add_parsed_source(&fx, "required", source)
        .await
        .expect_err("require does not fall back");
    assert_eq!(e.code(), "postgres.tls", "{e}");
}
