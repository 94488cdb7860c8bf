//! `pitboss worker` (DESIGN §7, issue 16): runs a pool's attempts on this host for
//! whichever managers publish them on a broker. It registers itself with a time to
//! live, reads jobs, runs its *own* command for each (the broker never carries a
//! command line) with the same runner and supervision rules as a local pool, streams
//! output tails and heartbeats, writes the result, and only then acks the job.
//!
//! - [`slots`]: the read loop, the running and read-ahead jobs, heartbeats and stop
//!   requests;
//! - [`report`]: one job's run, its messages to the manager, held results;
//! - [`controls`]: the attempt's usage, session and flag lines, sent with its end;
//! - [`drain`]: SIGTERM/SIGINT: stop reading, finish or hand back within a deadline.
//!
//! Secrets: the password comes from `PITBOSS_BROKER_PASSWORD` or a private file,
//! never argv. The command's environment is built like a one-pool workflow's
//! (`RunEnv`): secret-looking variables are held back (the broker password
//! included), `--secret-env` names are passed and their values redacted from
//! everything sent.

mod controls;
mod drain;
mod report;
mod scratch;
mod slots;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::core::workflow::Workflow;
use crate::io::broker::url;
use crate::io::broker::{open_worker_transport, BrokerError, BrokerErrorKind, WorkerScope, WorkerTransport};
use crate::io::guardian::Guardian;
use crate::io::runner::env::RunEnv;
use crate::io::runner::LocalRunner;

use super::run::CmdResult;
use super::{usage, EXIT_FAILED, EXIT_OK, EXIT_USAGE};

/// `pitboss worker` arguments (plan §7).
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// The broker (redis://[USER@]HOST[:PORT]); the password comes from
    /// PITBOSS_BROKER_PASSWORD or --broker-password-file, never from the URL.
    #[arg(long)]
    pub broker: String,
    /// The pool whose attempts this worker runs.
    #[arg(long)]
    pub pool: String,
    /// A capability this worker offers (repeatable); a run whose pool asks for one
    /// it lacks gets its attempts handed back.
    #[arg(long = "capability")]
    pub capabilities: Vec<String>,
    /// Attempts run at once.
    #[arg(long, default_value_t = 1)]
    pub concurrency: u32,
    /// Jobs read ahead while every slot is busy: each starts the moment a slot frees,
    /// without a trip to the broker (its timeout counts from that start). 0 (the
    /// default) reads only for free slots, leaving the manager's extra attempts on the
    /// broker for whichever worker frees first: a job held here can wait behind long
    /// jobs while another worker idles.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=64))]
    pub read_ahead: u32,
    /// Lifetime of the registration; refreshed well before it ends.
    #[arg(long, default_value = "15s", value_parser = duration)]
    pub ttl: Duration,
    /// On SIGTERM, how long running attempts may take to finish before they are
    /// stopped and handed back.
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub drain_timeout: Duration,
    /// A variable passed to the command whose value is redacted from its output
    /// (repeatable; other secret-looking variables are not passed at all).
    #[arg(long = "secret-env")]
    pub secret_env: Vec<String>,
    /// A file holding the broker password (private to its owner).
    #[arg(long)]
    pub broker_password_file: Option<PathBuf>,
    /// A TLS broker's CA file and client certificate.
    #[command(flatten)]
    pub broker_tls: super::run::BrokerTlsArgs,
    /// The command run for each attempt, with the task JSON on stdin;
    /// placeholders ({id}, {payload.KEY}, {attempt}, {run_id}) as in a workflow.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `10s`, `500ms`, `2m`, `1h` (a bare number is seconds).
fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration (like 500ms, 15s, 2m)"))?;
    let ms = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    ms.map(Duration::from_millis).ok_or_else(|| format!("{text:?} is too long"))
}

/// Everything a worker is, decided before it connects.
pub(crate) struct Setup {
    /// Its id (`HOST:PID:4hex`), also its consumer name.
    pub worker: String,
    /// Its host name.
    pub host: String,
    /// The parsed arguments.
    pub args: WorkerArgs,
    /// Where capture files go (this host only).
    pub output_dir: PathBuf,
}

/// Runs `pitboss worker`: 0 after a clean stop (drained), 2 for bad arguments or a
/// broker that refuses us, 1 when results could not be delivered before exit.
pub fn main(args: WorkerArgs) -> CmdResult {
    let broker_url = url::parse(&args.broker).map_err(|e| usage(format!("--broker: {e}")))?;
    let broker_url = crate::io::broker::trust::apply(broker_url, &args.broker_tls.files()).map_err(usage)?;
    if args.concurrency == 0 {
        return Err(usage("--concurrency must be at least 1"));
    }
    let password = url::password(args.broker_password_file.as_deref()).map_err(usage)?;
    let workflow = check_command(&args)?;
    let host = host_name();
    let pid = std::process::id();
    let worker = format!("{host}:{pid}:{:04x}", rand::random::<u16>());
    let temp = std::env::temp_dir();
    scratch::sweep_dead(&temp);
    let output_dir = scratch::folder(&temp, pid);
    make_private_dir(&output_dir).map_err(|e| usage(format!("{}: {e}", output_dir.display())))?;
    let env = RunEnv::from_process(&workflow);
    for warning in env.warnings() {
        eprintln!("pitboss worker: {warning}");
    }
    let scope = WorkerScope { worker: worker.clone(), pool: args.pool.clone() };
    let transport: Arc<dyn WorkerTransport> =
        open_worker_transport(&broker_url, password.as_ref(), scope).map_err(broker_exit)?;
    // SIGKILL of this worker takes its commands with it: the guardian sweeps every
    // process carrying this worker's pid as its manager mark (io/guardian.rs).
    let exe = std::env::current_exe().map_err(|e| usage(format!("cannot find the pitboss binary: {e}")))?;
    let guardian = match Guardian::start_worker(&exe) {
        Ok(g) => Some(g),
        Err(e) => {
            eprintln!("pitboss worker: warning: no guardian ({e}); a killed worker may leave its commands running");
            None
        }
    };
    let setup = Setup { worker, host, args, output_dir: output_dir.clone() };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(usage)?;
    let result = runtime.block_on(async move {
        let runner = LocalRunner::for_manager(env);
        slots::serve(setup, transport, Arc::new(runner)).await
    });
    drop(runtime);
    drop(guardian);
    let _ = std::fs::remove_dir_all(&output_dir);
    match result {
        Ok(slots::Ending::Clean) => Ok(EXIT_OK),
        Ok(slots::Ending::Undelivered(n)) => {
            Err((EXIT_FAILED, format!("pitboss worker: {n} result(s) could not be delivered before exit")))
        }
        Err(e) => Err(broker_exit(e)),
    }
}

/// A broker failure as an exit: refused (password, ACL) and bad setup are usage
/// errors (2) with the broker's words; the rest is 1.
fn broker_exit(e: BrokerError) -> (u8, String) {
    let code = match e.kind() {
        BrokerErrorKind::Refused | BrokerErrorKind::Config | BrokerErrorKind::Unreachable => EXIT_USAGE,
        _ => EXIT_FAILED,
    };
    (code, format!("pitboss worker: {e}"))
}

/// Checks CMD like a workflow's pool command (placeholders known, none inside a
/// script a shell runs), by reading it as a one-pool workflow: the same checks,
/// the same words. That workflow also gives the command's environment.
fn check_command(args: &WorkerArgs) -> Result<Workflow, (u8, String)> {
    let mut pool = toml::Table::new();
    pool.insert("name".into(), args.pool.clone().into());
    pool.insert("command".into(), args.command.clone().into());
    pool.insert("secret_env".into(), args.secret_env.clone().into());
    pool.insert("capabilities".into(), args.capabilities.clone().into());
    pool.insert("concurrency".into(), i64::from(args.concurrency).into());
    let mut task = toml::Table::new();
    task.insert("id".into(), "worker-check".into());
    let mut doc = toml::Table::new();
    doc.insert("pool".into(), toml::Value::Array(vec![pool.into()]));
    doc.insert("task".into(), toml::Value::Array(vec![task.into()]));
    let text = toml::to_string(&doc).map_err(usage)?;
    let base = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    crate::config::parse(&text, "pitboss worker arguments", &base)
        .map_err(|e| usage(format!("pitboss worker: the command or pool is not usable:\n{e}")))
}

/// A folder only this user can read (capture files may hold task data).
fn make_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    crate::io::platform::private_dir_builder().recursive(true).create(dir)
}

/// This host's name, as the manager shows it.
fn host_name() -> String {
    crate::io::platform::host_name()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("3"), Ok(Duration::from_secs(3)));
        assert!(duration("3d").unwrap_err().contains("unknown unit"));
        assert!(duration("s").is_err());
    }
}
