//! Signals at awkward moments: a SIGTERM that reaches `resume` while it is still
//! starting (holding the folder, folding a long log, starting its guardian) ends it
//! at once with exit 130 and a message, the log intact; once the engine runs, the
//! same signal interrupts the run as usual (exit 130, resumable). From pitboss's first
//! instruction on, no stop signal kills it silently (exit 143).

mod common;

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use common::{finish_within, KillOnPanic, OutputWithin, Scratch};
use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::{step, Event, Input, RunState, SmallOutput, StepContext, TaskState};
use pitboss::io::journal::{self, encode};

const TASKS: usize = 6000;

/// A run folder whose log holds a run of `TASKS` tasks, all but the last few finished
/// (one attempt in flight when its manager "crashed"): a long fold for `resume`.
fn write_long_run(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut text = "[run]\nname = \"long\"\nmax_parallel = 1\n".to_string();
    // The last tasks wait for `release` (made before the last resume), so a resumed
    // run is still live when the test stops it.
    let release = dir.parent().unwrap().join("release");
    let script = format!("cat >/dev/null; while [ ! -e {} ]; do sleep 0.02; done; echo '{{}}'", release.display());
    text += &format!("[[pool]]\nname = \"p\"\ncommand = [\"sh\", \"-c\", {:?}]\nconcurrency = 1\n", script);
    for i in 0..TASKS {
        text += &format!("[[task]]\nid = \"t{i:05}\"\npayload = {{ n = {i} }}\n");
    }
    let workflow = config::parse(&text, "long.toml", Path::new(".")).unwrap();
    let first = Event::RunStarted {
        run_id: "0123456789abcdef0123456789abcdef".into(),
        workflow: std::sync::Arc::new(workflow),
    };
    let mut state = RunState::from_first(&first).unwrap();
    let mut out = BufWriter::new(File::create(dir.join(journal::LOG_FILE)).unwrap());
    let (mut seq, mut buf) = (0, Vec::new());
    let mut write = |events: Vec<Event>, ts: u64| {
        for event in events {
            seq += 1;
            buf.clear();
            encode(seq, ts, &event, &mut buf);
            out.write_all(&buf).unwrap();
        }
    };
    let ts = 1_790_000_000_000;
    write(vec![first], ts);
    let ctx = StepContext { now_ms: ts, jitter: 0.5 };
    let mut events = step(&mut state, Input::Start { pid: 1, version: "test".into(), resumed: false }, ctx).unwrap();
    events.extend(dispatch(&mut state, ctx).unwrap());
    write(events, ts);
    for i in 0..TASKS - 5 {
        let id = format!("t{i:05}");
        let TaskState::Running { attempt, .. } = state.tasks[i].state else { panic!("{id} not running") };
        let mut events =
            step(&mut state, Input::Spawned { task: id.clone(), attempt, pid: 1, worker: None }, ctx).unwrap();
        let outcome = Outcome::Success {
            result: serde_json::json!({ "n": i }),
            exit_code: Some(0),
            duration_ms: 1,
            output: SmallOutput::default(),
        };
        events.extend(step(&mut state, Input::Finished { task: id, attempt, outcome }, ctx).unwrap());
        events.extend(dispatch(&mut state, ctx).unwrap());
        write(events, ts);
    }
    out.flush().unwrap();
}

/// A signal mask line of /proc/PID/status (`SigBlk`, `SigCgt`) as bits.
fn signal_bits(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(":\t").and_then(|hex| u64::from_str_radix(hex, 16).ok()))
        .unwrap_or(0)
}

/// True once `pid` blocks or catches SIGTERM: pitboss's own code is running.
fn takes_sigterm(pid: u32) -> bool {
    let bit = 1u64 << (libc::SIGTERM - 1);
    (signal_bits(pid, "SigBlk") | signal_bits(pid, "SigCgt")) & bit != 0
}

/// When, during `resume`, the SIGTERM is sent.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// Once pitboss has taken SIGTERM over, after this many more reads of its status
    /// (tiny, growing offsets without sleeping).
    TakenOver(u32),
    /// Once it holds the folder (its pid is in the lock file): it is folding the log.
    Holding,
    /// Once its engine recorded `manager_started`: the run is live.
    Started,
}

fn log_tail(dir: &Path) -> String {
    let Ok(mut f) = File::open(dir.join(journal::LOG_FILE)) else { return String::new() };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(8192)));
    let mut tail = String::new();
    let _ = f.read_to_string(&mut tail);
    tail
}

/// Polls `cond` without sleeping until it holds; panics naming `what` at the deadline.
fn spin_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + common::deadline();
    while !cond() {
        assert!(Instant::now() < end, "{what}: not within {:?}", common::deadline());
        std::thread::yield_now();
    }
}

#[test]
fn sigterm_while_resume_starts_ends_it_with_130_and_a_message() {
    let s = Scratch::new();
    let dir = s.run_dir();
    write_long_run(&dir);
    let moments = [
        Moment::TakenOver(0),
        Moment::TakenOver(10),
        Moment::TakenOver(100),
        Moment::TakenOver(1000),
        Moment::Holding,
        Moment::Started,
    ];
    for moment in moments {
        let child = s
            .pitboss()
            .args(["resume", "--headless"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pitboss resume");
        let pid = child.id();
        let _guard = KillOnPanic::new(&[pid]);
        let what = format!("resume (pid {pid}) at {moment:?}");
        match moment {
            Moment::TakenOver(extra) => {
                spin_until(&format!("{what}: SIGTERM blocked or caught"), || takes_sigterm(pid));
                for _ in 0..extra {
                    let _ = signal_bits(pid, "SigBlk");
                }
            }
            Moment::Holding => spin_until(&format!("{what}: the lock names it"), || {
                std::fs::read_to_string(dir.join("manager.lock")).is_ok_and(|l| l.trim() == pid.to_string())
            }),
            Moment::Started => spin_until(&format!("{what}: manager_started recorded"), || {
                log_tail(&dir).contains(&format!("\"type\":\"manager_started\",\"pid\":{pid}"))
            }),
        }
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        let out = finish_within(child, &what);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{what}: {:?}, stderr: {err}", out.status);
        assert!(err.contains("SIGTERM"), "{what}: stderr should say what stopped it: {err}");
        let scan = journal::scan(&dir.join(journal::LOG_FILE), |_, _| Ok(())).expect("the log stays readable");
        assert!(scan.torn.is_none(), "{what}: the log was left torn: {:?}", scan.torn);
    }
    // Nothing was lost: the run finishes with every task completed.
    std::fs::write(s.path().join("release"), "").unwrap();
    let out = s.pitboss().args(["resume", "--headless", "--json"]).arg(&dir).output_within("the last resume");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["counts"]["completed"], TASKS, "{}", doc["counts"]);
}

#[test]
fn workers_do_not_inherit_the_blocked_stop_signals() {
    let s = Scratch::new();
    // A worker reports its own blocked-signal mask; SIGINT and SIGTERM must be free.
    let script = "cat >/dev/null; m=$(sed -n 's/^SigBlk:[[:space:]]*//p' /proc/self/status); echo \"{\\\"blocked\\\":\\\"$m\\\"}\"";
    let wf = common::sh_pool("p", script, "") + "[[task]]\nid = \"a\"\n";
    let (code, doc, out) = s.run_json(&wf);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let mask = common::task(&doc, "a")["result"]["blocked"].as_str().unwrap_or_default().to_string();
    let bits = u64::from_str_radix(&mask, 16).unwrap_or_else(|_| panic!("no mask in {doc}"));
    let stop = (1u64 << (libc::SIGINT - 1)) | (1u64 << (libc::SIGTERM - 1));
    assert_eq!(bits & stop, 0, "the worker started with SIGINT/SIGTERM blocked: {mask}");
}
