use crate::{repo_root, LocalError};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The moto-based emulator (`infra/emulator/server.py`) on a loopback port.
///
/// It is started with our pid as `--parent-pid` and exits by itself when we
/// do, so a test binary that ends (or crashes) never leaves one behind.
#[derive(Debug)]
pub struct Emulator {
    pub endpoint: String,
    child: Option<Child>,
}

impl Emulator {
    /// The emulator of this process: the one named by `FINOPS_EMULATOR_URL`,
    /// or one started on first use on a free loopback port.
    pub fn shared() -> &'static Emulator {
        static SHARED: OnceLock<Emulator> = OnceLock::new();
        SHARED.get_or_init(
            || match shared::config::Env::process().get("FINOPS_EMULATOR_URL") {
                Some(url) => Emulator {
                    endpoint: url,
                    child: None,
                },
                None => Emulator::start()
                    .unwrap_or_else(|e| panic!("cannot start the AWS emulator: {e}")),
            },
        )
    }

    /// Starts a new emulator on a free loopback port (the launcher binds
    /// port 0 and reports the one it got, so there is no race for it).
    pub fn start() -> Result<Emulator, LocalError> {
        Self::start_on(0)
    }

    pub fn start_on(port: u16) -> Result<Emulator, LocalError> {
        let root = repo_root();
        let python = root.join("infra/.venv/bin/python");
        if !python.exists() {
            let status = Command::new("bash")
                .arg(root.join("infra/scripts/bootstrap.sh"))
                .stdout(Stdio::inherit())
                .status()
                .map_err(|e| LocalError::Emulator(format!("running bootstrap.sh: {e}")))?;
            if !status.success() {
                return Err(LocalError::Emulator(
                    "infra/scripts/bootstrap.sh failed".into(),
                ));
            }
        }
        let mut child = Command::new(&python)
            .arg(root.join("infra/emulator/server.py"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--parent-pid", &std::process::id().to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| LocalError::Emulator(format!("spawning {}: {e}", python.display())))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| LocalError::Emulator("no stdout".into()))?;
        let mut lines = BufReader::new(stdout).lines();
        let endpoint = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("READY ") {
                        break url.trim().to_string();
                    }
                }
                _ => {
                    let _ = child.kill();
                    return Err(LocalError::Emulator("exited before it was ready".into()));
                }
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Emulator {
            endpoint,
            child: Some(child),
        })
    }

    /// Stops the emulator now (the port stays closed until [`Emulator::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the emulator process (SIGSTOP): requests hang as if AWS were
    /// unreachable, and its state survives for [`Emulator::resume`].
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// The emulator's process id, when this process started it.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args([sig, &child.id().to_string()])
                .status();
        }
    }

    pub fn port(&self) -> u16 {
        self.endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .unwrap_or(0)
    }

    /// Clears every resource in the emulator.
    pub async fn reset(&self) -> Result<(), LocalError> {
        post(&self.endpoint, "/moto-api/reset", "").await
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// POSTs to the emulator's own control API (reset, Cost Explorer injection).
pub(crate) async fn post(endpoint: &str, path: &str, body: &str) -> Result<(), LocalError> {
    let url = format!("{}{path}", endpoint.trim_end_matches('/'));
    let response = shared::tls::http_client()
        .build()
        .map_err(|e| LocalError::Emulator(format!("HTTP client: {e}")))?
        .post(&url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| LocalError::Emulator(format!("POST {url}: {e}")))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(LocalError::Emulator(format!(
            "POST {url}: {}",
            response.status()
        )))
    }
}

/// SDK configuration for the emulator: fixed test credentials, us-east-1,
/// and the emulator's endpoint, exactly as `AWS_ENDPOINT_URL` would set it.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "local",
        ))
        .timeout_config(shared::config::sdk_timeouts())
        .load()
        .await
}
