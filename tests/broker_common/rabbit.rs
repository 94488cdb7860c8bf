//! A private RabbitMQ node for tests that restart the broker (the shared :5672 is
//! never restarted), and deleting by name what a test left on the shared one.
//!
//! The node runs the real `rabbitmq-server` script as the test's own user with
//! everything in a scratch folder: its node name, AMQP and distribution ports, data,
//! logs, an empty plugin list, and `HOME` (so its Erlang cookie is its own). It
//! registers with whatever `epmd` runs (shared, never ours to stop). Stopping kills
//! the script's whole process tree by pid: a crash, as an operator's kill -9 would be.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, missing_tool, wait_until};

/// How long a node may take to accept AMQP connections: ~18 s to boot on this box
/// at load 8 (2 cores shared by several test runs), ~15 s to restart.
const BOOT: Duration = Duration::from_secs(90);

/// The server script: Debian's `/usr/sbin` one re-runs itself as the `rabbitmq` user
/// (with that user's cookie and folders), so the one it wraps is taken when present.
fn server_script() -> PathBuf {
    let debian = PathBuf::from("/usr/lib/rabbitmq/bin/rabbitmq-server");
    if debian.exists() {
        debian
    } else {
        PathBuf::from("rabbitmq-server")
    }
}

/// True when a private node can be started (`rabbitmq-server` found); else the loud
/// skip (a failure under `CI=true`).
pub fn rabbitmq_server() -> bool {
    let script = server_script();
    let found = script.is_absolute()
        || Command::new("sh")
            .args(["-c", "command -v rabbitmq-server"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    found || missing_tool("rabbitmq-server (for a private RabbitMQ node)")
}

/// A private RabbitMQ node on free ports, killed (its process tree, by pid) on drop.
pub struct OwnRabbit {
    /// Its AMQP port.
    pub port: u16,
    dist_port: u16,
    node: String,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl OwnRabbit {
    /// Starts one and waits (at most [`BOOT`]) until it accepts AMQP connections.
    pub fn start() -> OwnRabbit {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let mut own = OwnRabbit {
            port: free_port(),
            dist_port: free_port(),
            node: format!("pitboss-test-{}@localhost", &tag[..12]),
            child: None,
            dir: tempfile::tempdir().expect("a temp dir"),
        };
        std::fs::write(own.dir.path().join("plugins"), "[].\n").expect("the plugin list");
        std::fs::write(own.dir.path().join("env.conf"), "").expect("an empty rabbitmq-env.conf");
        own.spawn();
        own
    }

    /// `amqp://127.0.0.1:PORT` (guest, the stock account).
    pub fn url(&self) -> String {
        format!("amqp://127.0.0.1:{}", self.port)
    }

    /// Kills it (its whole process tree); its data stays for [`OwnRabbit::restart`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Children first found, then killed: once the script dies its children
            // are reparented and no longer found under it.
            let tree = descendants(child.id());
            let _ = child.kill();
            for pid in tree {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
            let _ = child.wait();
        }
        let port = self.port;
        let freed = wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
        assert!(freed, "the private RabbitMQ still answers on {port} after its kill");
    }

    /// Starts it again on the same ports and data: durable queues come back.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn spawn(&mut self) {
        let dir = self.dir.path();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("server.out")).unwrap();
        let child = Command::new(server_script())
            .env("HOME", dir)
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_PID_FILE", dir.join("pid"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("plugins"))
            .env("RABBITMQ_CONF_ENV_FILE", dir.join("env.conf"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("none"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", dir.join("none.config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("rabbitmq-server starts");
        self.child = Some(child);
        let port = self.port;
        let up = wait_until(BOOT, || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        if !up {
            let out = std::fs::read_to_string(dir.join("server.out")).unwrap_or_default();
            self.kill_quietly();
            panic!("the private RabbitMQ did not accept connections on {port} within {BOOT:?}:\n{out}");
        }
    }

    fn kill_quietly(&mut self) {
        if let Some(mut child) = self.child.take() {
            let tree = descendants(child.id());
            let _ = child.kill();
            for pid in tree {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRabbit {
    fn drop(&mut self) {
        self.kill_quietly();
    }
}

/// Every process under `root` (children, grandchildren, …), read from /proc.
fn descendants(root: u32) -> Vec<i32> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`: comm may hold spaces and parentheses.
        let ppid = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().nth(1)?.parse::<i32>().ok());
        if let Some(ppid) = ppid {
            parent_of.push((pid, ppid));
        }
    }
    let mut found = vec![i32::try_from(root).unwrap_or(i32::MAX)];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parent_of.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    found.remove(0);
    found
}

/// Messages of `queue` on the shared server delivered and not yet acked, by
/// `rabbitmqctl list_queues`; `None` when it cannot tell.
pub fn unacked(queue: &str) -> Option<usize> {
    let out = Command::new("rabbitmqctl")
        .args(["list_queues", "name", "messages_unacknowledged", "--quiet", "--no-table-headers"])
        .output();
    let text = String::from_utf8(out.ok()?.stdout).ok()?;
    text.lines().filter_map(|l| l.split_once('\t')).find(|(name, _)| *name == queue)?.1.trim().parse().ok()
}

/// Deletes queues and exchanges by name on the RabbitMQ at `url` (guest); what is
/// missing or unreachable is left alone. On a thread of its own: callers may be in
/// a runtime, or in a `Drop`.
pub fn delete_amqp(url: &str, queues: Vec<String>, exchanges: Vec<String>) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let uri = url.replacen("amqp://", "amqp://guest:guest@", 1);
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        rt.block_on(async {
            let props = lapin::ConnectionProperties::default();
            let open = lapin::Connection::connect(&uri, props);
            let Ok(Ok(conn)) = tokio::time::timeout(Duration::from_secs(5), open).await else {
                return;
            };
            // A failed delete closes its channel: one channel per name.
            for queue in queues {
                if let Ok(ch) = conn.create_channel().await {
                    let _ = ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
                }
            }
            for exchange in exchanges {
                if let Ok(ch) = conn.create_channel().await {
                    let _ = ch.exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default()).await;
                }
            }
            let _ = conn.close(200, "cleaned".into()).await;
        });
    })
    .join();
}
