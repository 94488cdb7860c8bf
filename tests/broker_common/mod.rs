//! Shared by the broker tests: finding the real services, and a private
//! `redis-server` for tests that restart or reconfigure one (the shared :6379 runs
//! without persistence and is used by others at once).
//!
//! A machine without the service skips these tests with a loud message; under
//! `CI=true` a missing service fails them instead (CI starts the services).

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The shared Redis.
pub const SHARED_REDIS: &str = "127.0.0.1:6379";

/// True under CI, where a missing service is a failure.
fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Says why a test cannot run: panics under CI, else prints a loud SKIPPED line.
/// Returns false so callers write `if !broker_common::redis() { return; }`.
fn missing(what: &str) -> bool {
    if under_ci() {
        panic!("{what} is required under CI=true");
    }
    eprintln!("SKIPPED (no Redis on {SHARED_REDIS}): {what} — start redis-server to run this test");
    false
}

/// Like [`missing`], for a program a test starts itself.
fn missing_tool(what: &str) -> bool {
    if under_ci() {
        panic!("{what} is required under CI=true");
    }
    eprintln!("SKIPPED (not found): {what} — install it to run this test");
    false
}

/// True when the shared Redis answers on 127.0.0.1:6379.
pub fn redis() -> bool {
    let addr: SocketAddr = SHARED_REDIS.parse().expect("a literal address");
    if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
        return true;
    }
    missing("Redis on 127.0.0.1:6379")
}

/// True when `redis-server` can be started (for [`OwnRedis`]).
pub fn redis_server() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    found || missing("redis-server on PATH")
}

/// A run id nobody else uses, so parallel tests on the shared server never meet.
pub fn run_id(label: &str) -> String {
    format!("t-{label}-{}", uuid::Uuid::new_v4().simple())
}

/// A private redis-server on a free port: no persistence, killed (by pid) on drop.
pub struct OwnRedis {
    /// Its port.
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Extra `redis-server` arguments (kept for restarts).
    args: Vec<String>,
}

impl OwnRedis {
    /// Starts one and waits until it accepts connections.
    pub fn start() -> OwnRedis {
        OwnRedis::start_with(&[])
    }

    /// Starts one with extra arguments (`--requirepass`, …).
    pub fn start_with(args: &[&str]) -> OwnRedis {
        let port = free_port();
        let mut own = OwnRedis {
            port,
            child: None,
            dir: tempfile::tempdir().expect("a temp dir"),
            args: args.iter().map(|s| s.to_string()).collect(),
        };
        own.spawn();
        own
    }

    /// `redis://127.0.0.1:PORT` (with `user@` when given).
    pub fn url(&self, user: Option<&str>) -> String {
        match user {
            Some(u) => format!("redis://{u}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// Its folder (for files a test writes).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Kills it (SIGKILL): everything in it is gone, as with the shared one.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The port is free once nothing answers on it.
        wait_until(Duration::from_secs(10), || TcpStream::connect(("127.0.0.1", self.port)).is_err());
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let port = self.port;
        assert!(
            wait_until(Duration::from_secs(10), || TcpStream::connect(("127.0.0.1", port)).is_ok()),
            "own redis-server did not listen on {port} within 10 s"
        );
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("its address").port()
}

/// Polls `done` every 10 ms until it holds or `limit` passes; true when it held.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}

pub mod rabbit;
pub mod rows;
pub mod suite;

/// The shared RabbitMQ (guest/guest).
pub const SHARED_AMQP: &str = "127.0.0.1:5672";

/// True when the shared RabbitMQ answers on 127.0.0.1:5672; else a loud SKIPPED line
/// (a failure under `CI=true`).
pub fn amqp() -> bool {
    let addr: SocketAddr = SHARED_AMQP.parse().expect("a literal address");
    if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
        return true;
    }
    if under_ci() {
        panic!("RabbitMQ on {SHARED_AMQP} is required under CI=true");
    }
    eprintln!("SKIPPED (no RabbitMQ on {SHARED_AMQP}): start rabbitmq-server to run this test");
    false
}

/// True when `rabbitmqctl` can list connections (to close them in partition tests).
pub fn rabbitmqctl() -> bool {
    let found = Command::new("rabbitmqctl")
        .args(["list_connections", "name"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return true;
    }
    if under_ci() {
        panic!("rabbitmqctl is required under CI=true");
    }
    eprintln!("SKIPPED (no usable rabbitmqctl): this test closes RabbitMQ connections with it");
    false
}

/// Closes every RabbitMQ connection the client named `name` (`rabbitmqctl close_connection`);
/// waits up to 10 s for it to be listed first. Err holds the last listing.
pub fn close_amqp_connection(name: &str) -> Result<(), String> {
    let start = Instant::now();
    let mut listing = String::new();
    // RabbitMQ 3.10 lists the client's name in its properties only (`name` is the
    // peer address there).
    let wanted = format!("{{\"connection_name\",\"{name}\"}}");
    while start.elapsed() < Duration::from_secs(10) {
        let out = Command::new("rabbitmqctl")
            .args(["list_connections", "pid", "client_properties", "--quiet", "--no-table-headers"])
            .output()
            .expect("rabbitmqctl runs");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let pids: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .filter(|(_, props)| props.contains(&wanted))
            .map(|(pid, _)| pid.trim())
            .collect();
        if !pids.is_empty() {
            for pid in pids {
                let status = Command::new("rabbitmqctl")
                    .args(["close_connection", pid, "closed by a pitboss test"])
                    .stdout(Stdio::null())
                    .status()
                    .expect("rabbitmqctl runs");
                assert!(status.success(), "rabbitmqctl close_connection {pid} failed");
            }
            return Ok(());
        }
        listing = text;
    }
    Err(format!("no connection named {name:?} in:\n{listing}"))
}
