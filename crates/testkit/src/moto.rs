//! A moto server for STS, IAM and S3 with IAM enforcement.
//!
//! Started from the project's Python venv (`scripts/pyenv`, or `WHARF_PYENV` when set by
//! `scripts/test`), through `scripts/moto_server_rawurl.py`: with enforcement on, plain
//! `moto_server` recomputes signatures from a URL that Werkzeug has partly decoded, and rejects
//! correctly signed requests whose key or prefix holds `/`, `=` or non-ASCII characters.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An access key pair of a moto IAM user.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct MotoKeys {
    pub access_key: String,
    pub secret_key: String,
    #[serde(default)]
    pub arn: String,
}

#[derive(serde::Deserialize)]
struct Init {
    admin: MotoKeys,
    wharf: MotoKeys,
}

/// A role to create: its trust principal, the External ID its trust policy requires (none: no
/// condition), and its permission policy document.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoleSpec {
    pub name: String,
    pub trust_principal: String,
    pub external_id: Option<String>,
    pub permission_policy: Option<serde_json::Value>,
}

/// A running moto server with an `admin` user (all permissions) and a `wharf` user (may only
/// assume roles), a bucket, and IAM enforcement on. The process is killed on drop.
pub struct Moto {
    child: Child,
    pub port: u16,
    pub bucket: String,
    pub admin: MotoKeys,
    pub wharf: MotoKeys,
    python: PathBuf,
}

/// The project's Python venv (made by `scripts/pyenv` when `WHARF_PYENV` does not name one).
pub fn pyenv() -> PathBuf {
    if let Ok(venv) = std::env::var("WHARF_PYENV")
        && PathBuf::from(&venv).join("bin/python").exists()
    {
        return PathBuf::from(venv);
    }
    let script = crate::repo_root().join("scripts/pyenv");
    let output = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(output.status.success(), "{} failed", script.display());
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

impl Moto {
    /// Starts moto, waits until it answers, and sets up the users and `bucket`.
    pub fn start(bucket: &str) -> Self {
        let venv = pyenv();
        let python = venv.join("bin/python");
        let launcher = crate::repo_root().join("scripts/moto_server_rawurl.py");
        let port = free_port();
        let child = Command::new(&python)
            .arg(&launcher)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env_remove("MOTO_ACCOUNT_ID")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto with {}: {e}", python.display()));
        let mut moto = Self {
            child,
            port,
            bucket: bucket.to_string(),
            admin: MotoKeys {
                access_key: String::new(),
                secret_key: String::new(),
                arn: String::new(),
            },
            wharf: MotoKeys {
                access_key: String::new(),
                secret_key: String::new(),
                arn: String::new(),
            },
            python,
        };
        moto.wait_ready();
        let init: Init = moto.fixture(&["init", &moto.endpoint(), bucket]);
        moto.admin = init.admin;
        moto.wharf = init.wharf;
        moto
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let request = format!(
                    "GET /moto-api/data.json HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                    self.port
                );
                let mut response = String::new();
                if stream.write_all(request.as_bytes()).is_ok()
                    && stream.read_to_string(&mut response).is_ok()
                    && response.starts_with("HTTP/1.1 200")
                {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("moto exited before it was ready: {status}");
            }
            assert!(Instant::now() < deadline, "moto did not answer within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn fixture<T: serde::de::DeserializeOwned>(&self, args: &[&str]) -> T {
        let script = crate::repo_root().join("crates/testkit/py/moto_fixture.py");
        let output = Command::new(&self.python)
            .arg(&script)
            .args(args)
            .output()
            .expect("run moto_fixture.py");
        assert!(
            output.status.success(),
            "moto_fixture.py {} failed: {}",
            args[0],
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("moto_fixture.py output")
    }

    /// Creates a role (as admin) and returns its ARN.
    pub fn create_role(&self, spec: &RoleSpec) -> String {
        #[derive(serde::Deserialize)]
        struct Created {
            arn: String,
        }
        let spec = serde_json::to_string(spec).expect("role spec");
        let created: Created = self.fixture(&[
            "role",
            &self.endpoint(),
            &self.admin.access_key,
            &self.admin.secret_key,
            &spec,
        ]);
        created.arn
    }

    /// An S3 client with the admin key (sees everything).
    pub fn admin_s3(&self) -> aws_sdk_s3::Client {
        crate::s3_client(
            &self.endpoint(),
            &self.admin.access_key,
            &self.admin.secret_key,
        )
    }

    /// Environment for a wharf process whose own identity is the `wharf` user, with STS and S3
    /// sent to this server and no lookups of the real instance metadata service.
    pub fn wharf_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", self.wharf.access_key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.wharf.secret_key.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", &self.endpoint()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
