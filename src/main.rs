//! The `pitboss` binary: parses arguments, sets up logging, and hands over to the
//! command. Everything else lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use pitboss::cli::{self, run};
use pitboss::config;
use pitboss::launch::Prepared;

/// The bundled demo workflow, so `pitboss` runs anywhere with zero setup.
const DEMO: &str = include_str!("../assets/workflows/demo.toml");

#[derive(Parser)]
#[command(name = "pitboss", version, about = "A terminal control panel for fleets of AI agents", long_about = None)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start a run of a workflow file.
    Run {
        /// The workflow (TOML).
        file: PathBuf,
        /// Run folder (default: a new folder under $PITBOSS_HOME or the data dir).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// No TUI: progress on stderr (the default when stdin or stdout is not a terminal, or with --json).
        #[arg(long)]
        headless: bool,
        /// Print the run's JSON document on stdout at the end.
        #[arg(long)]
        json: bool,
        /// Run the attempts on `pitboss worker`s through this broker (redis://HOST:PORT); the password, if any, comes from PITBOSS_BROKER_PASSWORD or --broker-password-file, never the URL.
        #[arg(long, value_name = "URL")]
        broker: Option<String>,
        /// A file holding the broker's password (readable by its owner only).
        #[arg(long, value_name = "FILE")]
        broker_password_file: Option<PathBuf>,
        /// A TLS broker's CA file and client certificate.
        #[command(flatten)]
        broker_tls: run::BrokerTlsArgs,
        /// Headless: stop with exit code 3 (resumable) when only tasks held for approval are left, instead of waiting for an operator.
        #[arg(long)]
        exit_when_blocked: bool,
        /// Also serve the control protocol over WebSocket at HOST:PORT (a bearer token is printed once and stored in STATE_DIR/ctl.token). Loopback only, unless --behind-proxy.
        #[arg(long, value_name = "HOST:PORT")]
        listen: Option<String>,
        /// --listen on a non-loopback address: a TLS proxy is in front (pitboss serves no TLS; without one the token travels in clear text).
        #[arg(long, requires = "listen")]
        behind_proxy: bool,
    },
    /// Replay a run folder's event log and carry on.
    Resume {
        /// The run folder.
        dir: PathBuf,
        /// No TUI: progress on stderr (the default when stdin or stdout is not a terminal, or with --json).
        #[arg(long)]
        headless: bool,
        /// Print the run's JSON document on stdout at the end.
        #[arg(long)]
        json: bool,
        /// Reconnect to this broker instead of the one the run recorded (redis://HOST:PORT).
        #[arg(long, value_name = "URL")]
        broker: Option<String>,
        /// A file holding the broker's password (readable by its owner only).
        #[arg(long, value_name = "FILE")]
        broker_password_file: Option<PathBuf>,
        /// A TLS broker's CA file and client certificate.
        #[command(flatten)]
        broker_tls: run::BrokerTlsArgs,
        /// Cut the log before this record first (the way out of mid-log corruption).
        #[arg(long, value_name = "SEQ")]
        truncate_at: Option<u64>,
        /// Headless: stop with exit code 3 (resumable) when only tasks held for approval are left, instead of waiting for an operator.
        #[arg(long)]
        exit_when_blocked: bool,
        /// Also serve the control protocol over WebSocket at HOST:PORT (a bearer token is printed once and stored in STATE_DIR/ctl.token). Loopback only, unless --behind-proxy.
        #[arg(long, value_name = "HOST:PORT")]
        listen: Option<String>,
        /// --listen on a non-loopback address: a TLS proxy is in front (pitboss serves no TLS; without one the token travels in clear text).
        #[arg(long, requires = "listen")]
        behind_proxy: bool,
    },
    /// Show a run's task table, or one task's whole history.
    Inspect {
        /// The run folder.
        dir: PathBuf,
        /// A task id.
        task: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// List dead letters, or replay them.
    #[command(args_conflicts_with_subcommands = true)]
    Dlq {
        #[command(subcommand)]
        action: Option<DlqAction>,
        /// The run folder.
        dir: Option<PathBuf>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Check every record of a run's log and every snapshot against the log's fold.
    Verify {
        /// The run folder.
        dir: PathBuf,
    },
    /// Move the run's log into `archive/` segments (after a snapshot of its state), so
    /// opening it never reads those records again; refused while a manager holds it.
    Compact {
        /// The run folder.
        dir: PathBuf,
    },
    /// Remove a stopped run's git worktrees and temp workspaces (its branches stay
    /// unless --branches); refused while a manager holds the run.
    Clean {
        /// The run folder.
        dir: PathBuf,
        /// Also delete the run's branches (`pitboss/RUN/…`) from the repositories.
        #[arg(long)]
        branches: bool,
    },
    /// A new run from this run's state at record SEQ (its log up to SEQ, then
    /// `forked_from`); attempts running then run again. The original is untouched.
    Fork {
        /// The run folder to fork.
        dir: PathBuf,
        /// The last record the fork keeps (see `pitboss events DIR`).
        #[arg(long, value_name = "SEQ")]
        at: u64,
        /// The new run folder (default: DIR-fork-SEQ beside DIR); must not exist.
        #[arg(long, value_name = "NEWDIR")]
        to: Option<PathBuf>,
        /// Give TASK a new payload in the fork (JSON); repeat for more tasks.
        #[arg(long, value_name = "TASK=JSON")]
        edit: Vec<String>,
    },
    /// Print the event log.
    Events {
        /// The run folder.
        dir: PathBuf,
        /// Keep printing as a live manager appends.
        #[arg(long, short)]
        follow: bool,
        /// One JSON record per line.
        #[arg(long)]
        json: bool,
    },
    /// Operate a live run from another terminal: status, tasks, task ID,
    /// retry ID [--continue] (the next attempt continues its agent session),
    /// cancel ID, replay ID|all, pause|resume POOL|all, concurrency POOL N,
    /// breaker trip|reset POOL, approve ID…, reject ID… [--reason TEXT], budget --max-cost-usd N
    /// [--task-cost-usd M], subscribe [--from SEQ].
    /// `--json` prints the manager's raw reply.
    Ctl {
        /// The run folder.
        dir: PathBuf,
        /// The command and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        words: Vec<String>,
    },
    /// The TUI on a run another (headless) manager process is running; `q` detaches
    /// and leaves the run going. Remotely: `attach ws://HOST:PORT --token-file F`
    /// (a manager started with --listen).
    Attach {
        /// The run folder, or ws://HOST:PORT.
        target: String,
        /// ws:// only: the file holding the bearer token (the run folder's ctl.token).
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
    },
    /// Add the tasks of a TOML file ([[task]] entries) to a live run.
    Submit {
        /// The run folder.
        dir: PathBuf,
        /// The tasks (TOML).
        file: PathBuf,
    },
    /// Serve the Model Context Protocol on stdin/stdout for the live run at DIR, so an
    /// AI client (`claude mcp add pitboss -- pitboss mcp DIR`) can submit, watch,
    /// approve, cancel and replay its tasks through the control socket.
    Mcp {
        /// The run folder.
        dir: PathBuf,
    },
    /// Check a workflow file; problems are printed as FILE:LINE:COL: message.
    Validate {
        /// The workflow (TOML).
        file: PathBuf,
        /// Check it as a run given `--broker URL` (its pools may leave `command` out).
        #[arg(long, value_name = "URL")]
        broker: Option<String>,
    },
    /// Print shell completions.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Run a pool's attempts from a broker on this host (remote worker, DESIGN §7).
    Worker(pitboss::cli::worker::WorkerArgs),
    /// Internal: the helper that ends a dead manager's workers (see io/guardian.rs).
    #[command(hide = true)]
    Guardian {
        /// Run whose workers to watch.
        #[arg(long)]
        run_id: String,
        /// The manager's pid.
        #[arg(long)]
        manager_pid: u32,
    },
    /// A simulated agent CLI for the demo and tests (reads a task JSON on stdin).
    SimAgent {
        /// Name it logs under.
        #[arg(long, default_value = "agent")]
        role: String,
        /// Serve a persistent pool: one task per stdin line, one reply line each.
        #[arg(long)]
        persistent: bool,
    },
}

#[derive(Subcommand)]
enum DlqAction {
    /// Requeue dead letters (and revive their skipped dependents); `resume` runs them.
    Replay {
        /// The run folder.
        dir: PathBuf,
        /// Tasks to replay.
        tasks: Vec<String>,
        /// Replay every dead letter.
        #[arg(long, conflicts_with = "tasks")]
        all: bool,
    },
}

fn main() -> ExitCode {
    // First: a stop signal from here on waits for pitboss instead of killing it
    // silently (see io/signal.rs). Nothing else has run, and no thread exists yet.
    pitboss::io::signal::block_stop_signals();
    let args = Args::parse();
    if matches!(
        args.command,
        Some(
            Command::Inspect { .. }
                | Command::Events { .. }
                | Command::Verify { .. }
                | Command::Ctl { .. }
                | Command::Submit { .. }
                | Command::Dlq { .. }
                | Command::Completions { .. }
                | Command::Validate { .. }
        )
    ) {
        // Read-only commands end quietly when their reader goes away (`| head`), like
        // other Unix tools. A manager keeps the default of ignoring it: it must never
        // die because a terminal or pipe closed.
        pitboss::io::platform::default_sigpipe();
    }
    if is_manager(&args.command) {
        // Before anything opens a descriptor: under a very low limit tokio would panic.
        if let Err(short) = pitboss::io::fdlimit::ensure(pitboss::io::fdlimit::BASE, pitboss::io::fdlimit::FOR_ITSELF) {
            eprintln!("{short}");
            return ExitCode::from(cli::EXIT_USAGE);
        }
        let hint = match &args.command {
            Some(Command::Resume { dir, .. }) => Some(dir.clone()),
            _ => None,
        };
        if let Err(e) = pitboss::io::signal::listen(hint) {
            eprintln!("pitboss: cannot start its signal thread: {e}");
            return ExitCode::from(cli::EXIT_USAGE);
        }
    } else {
        // Other commands keep the default dispositions: Ctrl-C simply ends a reader.
        pitboss::io::signal::unblock_stop_signals();
    }
    let _log_guard = init_logging();
    let result = command(args.command);
    match result {
        Ok(code) => ExitCode::from(code),
        Err((code, message)) => {
            eprintln!("{message}");
            ExitCode::from(code)
        }
    }
}

/// Commands that run a manager (and so need signals, descriptors and workers).
fn is_manager(command: &Option<Command>) -> bool {
    matches!(command, None | Some(Command::Run { .. } | Command::Resume { .. }))
}

/// Runs one command; the exit code, or the code and message for stderr.
fn command(command: Option<Command>) -> cli::run::CmdResult {
    match command {
        None => {
            let base = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            match config::parse(DEMO, "demo.toml (bundled)", &base) {
                Ok(workflow) => {
                    let tui = interactive();
                    if !tui {
                        eprintln!("pitboss: not a terminal: running the bundled demo fleet headless");
                    }
                    // Without a terminal nobody can answer the demo's held task: stop
                    // there (exit 3, resumable) rather than wait unseen.
                    launch_run(|| run::prepare_new(workflow, None), tui, false, !tui, None)
                }
                Err(e) => Err(cli::usage(e)),
            }
        }
        Some(Command::Run {
            file,
            state_dir,
            headless,
            json,
            broker,
            broker_password_file,
            broker_tls,
            exit_when_blocked,
            listen,
            behind_proxy,
        }) => match config::load_with_broker(&file, run::broker_flag(broker.as_deref())?.as_ref()) {
            Ok(mut workflow) => {
                run::check_files(&workflow)?;
                let broker = run::broker_setup(
                    &mut workflow.broker,
                    broker.as_deref(),
                    broker_password_file.as_deref(),
                    &broker_tls.files(),
                )?;
                let run_id = uuid::Uuid::new_v4().simple().to_string();
                // Like --listen: a broker that cannot be reached leaves no run folder.
                if let Some(broker) = &broker {
                    pitboss::launch::check_broker(broker, &run_id, &workflow).map_err(cli::usage)?;
                }
                let listen = bind_listen(listen.as_deref(), behind_proxy)?;
                let tui = !headless && !json && interactive();
                let prepare = || run::prepare_new_with(workflow, state_dir, run_id, broker);
                launch_run(prepare, tui, json, exit_when_blocked, listen)
            }
            Err(e) => Err(cli::usage(e)),
        },
        Some(Command::Resume {
            dir,
            headless,
            json,
            broker,
            broker_password_file,
            broker_tls,
            truncate_at,
            exit_when_blocked,
            listen,
            behind_proxy,
        }) => {
            let listen = bind_listen(listen.as_deref(), behind_proxy)?;
            let tui = !headless && !json && interactive();
            let prepare = || {
                run::prepare_resume_with(
                    &dir,
                    truncate_at,
                    broker.as_deref(),
                    broker_password_file.as_deref(),
                    &broker_tls.files(),
                )
            };
            launch_run(prepare, tui, json, exit_when_blocked, listen)
        }
        Some(Command::Inspect { dir, task, json }) => cli::inspect::inspect(&dir, task.as_deref(), json),
        Some(Command::Dlq { action: Some(DlqAction::Replay { dir, tasks, all }), .. }) => {
            if tasks.is_empty() && !all {
                Err(cli::usage("dlq replay: name the tasks to replay, or pass --all"))
            } else {
                cli::dlq::dlq_replay(&dir, &tasks, all)
            }
        }
        Some(Command::Dlq { action: None, dir: Some(dir), json }) => cli::dlq::dlq_list(&dir, json),
        Some(Command::Dlq { action: None, dir: None, .. }) => {
            Err(cli::usage("usage: pitboss dlq DIR [--json] | pitboss dlq replay DIR (TASK…|--all)"))
        }
        Some(Command::Verify { dir }) => cli::verify::verify(&dir),
        Some(Command::Compact { dir }) => cli::compact::compact(&dir),
        Some(Command::Clean { dir, branches }) => cli::clean::clean(&dir, branches),
        Some(Command::Fork { dir, at, to, edit }) => cli::fork::fork(&dir, at, to.as_deref(), &edit),
        Some(Command::Events { dir, follow, json }) => cli::events::events(&dir, follow, json),
        Some(Command::Ctl { dir, words }) => cli::ctl::ctl(&dir, &words),
        Some(Command::Submit { dir, file }) => cli::ctl::submit(&dir, &file),
        Some(Command::Attach { target, token_file }) => attach(&target, token_file.as_deref()),
        Some(Command::Mcp { dir }) => pitboss::mcp::main(&dir).map(|()| cli::EXIT_OK).map_err(cli::usage),
        Some(Command::Validate { file, broker }) => {
            match config::load_with_broker(&file, run::broker_flag(broker.as_deref())?.as_ref()) {
                Ok(wf) => {
                    println!("{}: ok ({} pools, {} tasks)", file.display(), wf.pools.len(), wf.tasks.len());
                    Ok(cli::EXIT_OK)
                }
                Err(e) => Err(cli::usage(e)),
            }
        }
        Some(Command::Completions { shell }) => {
            clap_complete::generate(shell, &mut Args::command(), "pitboss", &mut std::io::stdout());
            Ok(cli::EXIT_OK)
        }
        Some(Command::SimAgent { role, persistent: false }) => Ok(cli::sim_agent::main(&role)),
        Some(Command::SimAgent { role, persistent: true }) => Ok(cli::sim_agent::persistent(&role)),
        Some(Command::Worker(args)) => cli::worker::main(args),
        Some(Command::Guardian { run_id, manager_pid }) => Ok(pitboss::io::guardian::main(&run_id, manager_pid)),
    }
}

/// The TUI needs a terminal on both sides; anything else (pipes, CI) runs headless.
/// Picks the front end (`main` is the one place that knows both), prepares the run
/// and drives it. The TUI's settings are read first, so a bad keymap holds no folder.
fn launch_run(
    prepare: impl FnOnce() -> Result<Prepared, (u8, String)>,
    tui: bool,
    json: bool,
    exit_when_blocked: bool,
    listen: Option<pitboss::ctl::ws::Listen>,
) -> cli::run::CmdResult {
    let (front, mut prepared) = if tui {
        let options = pitboss::tui::TuiOptions::from_environment().map_err(cli::usage)?;
        (pitboss::tui::front_end(options), prepare()?)
    } else {
        // The headless front end names the run's folder in what it says.
        let prepared = prepare()?;
        (run::headless(exit_when_blocked, prepared.dir().to_path_buf()), prepared)
    };
    // Every live manager, TUI or headless, can be operated from another terminal.
    prepared.serve(pitboss::ctl::service_with(listen));
    run::drive(prepared, front, run::RunOptions { json })
}

/// `--listen`: bound before the run folder is made, so a taken port or a refused
/// address is a plain usage error that leaves nothing behind.
fn bind_listen(listen: Option<&str>, behind_proxy: bool) -> Result<Option<pitboss::ctl::ws::Listen>, (u8, String)> {
    listen.map(|addr| pitboss::ctl::ws::Listen::bind(addr, behind_proxy)).transpose().map_err(cli::usage)
}

/// `pitboss attach DIR|ws://…`: the TUI over the control socket of the manager
/// running DIR, or over its `--listen` WebSocket.
fn attach(target: &str, token_file: Option<&std::path::Path>) -> cli::run::CmdResult {
    use pitboss::ctl::client::Target;
    let target = if target.starts_with("ws://") || target.starts_with("wss://") {
        let file = token_file.ok_or_else(|| {
            cli::usage(format!(
                "attach {target}: pass --token-file FILE (the run folder's ctl.token; never the token itself)"
            ))
        })?;
        Target::Ws { url: target.to_string(), token: pitboss::ctl::token::read(file).map_err(cli::usage)? }
    } else if token_file.is_some() {
        return Err(cli::usage("--token-file is for attach ws://HOST:PORT; a run folder needs none"));
    } else {
        Target::Dir(PathBuf::from(target))
    };
    let options = pitboss::tui::TuiOptions {
        attached: true,
        ..pitboss::tui::TuiOptions::from_environment().map_err(cli::usage)?
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(cli::usage)?;
    let name = target.describe();
    runtime.block_on(async {
        // Connected first: a wrong token or no manager is said even without a terminal.
        let (handle, stopped) = pitboss::ctl::attach::attach(&target).await.map_err(cli::usage)?;
        if !interactive() {
            return Err(cli::usage(
                "pitboss attach needs a terminal; use pitboss ctl or pitboss events --follow instead",
            ));
        }
        pitboss::tui::run(handle, options).await.map_err(cli::usage)?;
        if stopped.stopped() {
            eprintln!("pitboss: the run at {name} stopped (its manager ended)");
        } else {
            eprintln!("pitboss: detached; the run at {name} goes on (pitboss attach {name} to come back)");
        }
        Ok(cli::EXIT_OK)
    })
}

fn interactive() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// Logs go to a file under the pitboss home (never to the terminal, which belongs to
/// the progress display or the TUI). `PITBOSS_LOG` sets the filter (default `info`).
/// The file is private and never opened through a link (`io::dirs::open_own_log`);
/// when it cannot be opened pitboss says why and carries on without it.
fn init_logging() -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let file = match pitboss::io::dirs::open_own_log(&cli::home()) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("pitboss: warning: running without its own log: {e}");
            return None;
        }
    };
    // 16,384 lines queued at most, not the default 128,000: the queue's slots are
    // allocated and touched at start (4 MB in every command, a read-only `inspect`
    // too; issue 14). A burst past it drops lines (the writer's lossy mode), as a
    // full default queue did.
    let (writer, guard) =
        tracing_appender::non_blocking::NonBlockingBuilder::default().buffered_lines_limit(16_384).finish(file);
    let filter = tracing_subscriber::EnvFilter::try_from_env("PITBOSS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(false).try_init().ok()?;
    Some(guard)
}
