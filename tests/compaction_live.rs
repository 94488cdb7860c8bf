//! Readers of a live run whose manager rolls its log into the archive (DESIGN §6):
//! `ctl subscribe` from seq 1 after rolls, a subscriber refilled from the log while
//! the log rolls, and `events --follow` tailing the files across rolls each see every record once, in
//! order, equal to the log's files read end to end.

mod common;
mod ctl_common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use serde_json::{json, Value};

use common::{finish_within, Scratch};
use ctl_common::{eventually, stderr, Live, POOLS};
use pitboss::io::roll::ROLL_ENV;
use pitboss::io::segments;
use pitboss::io::snapshot::EVERY_ENV;

/// Rolls every couple of kilobytes, after snapshots every few records.
const ROLLING: [(&str, &str); 2] = [(ROLL_ENV, "2500"), (EVERY_ENV, "3")];

/// `n` quick tasks that wait for the file `go`, and a task that runs until cancelled.
fn gated(scratch: &Scratch, n: usize) -> String {
    let go = scratch.path().join("go");
    let script = format!("cat >/dev/null; while [ ! -e {} ]; do sleep 0.02; done; echo '{{}}'", go.display());
    let mut wf = format!(
        "{POOLS}\n[[pool]]\nname = \"gated\"\ncommand = [\"sh\", \"-c\", {}]\nconcurrency = 4\n",
        common::toml_string(&script)
    );
    for i in 0..n {
        wf.push_str(&format!("[[task]]\nid = \"t{i}\"\npool = \"gated\"\n"));
    }
    wf + "[[task]]\nid = \"long\"\npool = \"slow\"\n"
}

/// Every record of the run, over its archived segments and the live log.
fn all_records(dir: &Path) -> Vec<Value> {
    let mut records = Vec::new();
    segments::scan(dir, |rec, _| {
        records.push(json!({"seq": rec.seq, "ts": rec.ts, "event": rec.event}));
        Ok(())
    })
    .unwrap();
    records
}

#[track_caller]
fn assert_same(stream: &[Value], log: &[Value]) {
    let seqs = |v: &[Value]| v.iter().map(|r| r["seq"].as_u64().unwrap_or(0)).collect::<Vec<_>>();
    assert_eq!(seqs(stream), seqs(log), "the stream's seqs differ from the log's");
    if let Some((a, b)) = stream.iter().zip(log).find(|(a, b)| a != b) {
        panic!("record {} differs:\nstream {a}\nlog    {b}", a["seq"]);
    }
}

fn archived(dir: &Path) -> usize {
    segments::archived(dir, None).unwrap().len()
}

/// A reader of the run (`pitboss ARGS`) printing one JSON record per line.
struct Reader {
    child: std::process::Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    /// The first record, read at start: it proves the reader is up.
    first: Value,
}

impl Reader {
    fn start(live: &Live, args: &[&str]) -> Reader {
        let mut command = live.scratch.pitboss();
        command.arg(args[0]).arg(&live.dir).args(&args[1..]);
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        Reader { child, lines, first }
    }

    /// Every record it printed, once it exited 0 (the run must be ending).
    fn records(self, what: &str) -> Vec<Value> {
        let mut records = vec![self.first];
        records.extend(self.lines.map(|l| serde_json::from_str::<Value>(&l.unwrap()).unwrap()));
        let out = finish_within(self.child, what);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        records
    }
}

#[test]
fn subscribe_from_1_after_the_log_rolled_gets_every_record() {
    let scratch = Scratch::new();
    let workflow = gated(&scratch, 30);
    let go = scratch.path().join("go");
    let mut live = Live::start_in(scratch, None, &workflow, &ROLLING);
    std::fs::write(&go, "").unwrap();
    eventually("30 completed tasks", || live.status()["counts"]["completed"] == 30);
    assert!(archived(&live.dir) >= 2, "the log rolled: {} segment(s)", archived(&live.dir));
    // The first record proves the subscription is up before the run is ended.
    let reader = Reader::start(&live, &["ctl", "subscribe", "--json", "--from", "1"]);
    let out = live.ctl(&["cancel", "long"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut records = reader.records("pitboss ctl subscribe");
    let last = records.pop().unwrap();
    assert_eq!(last["end"], true, "{last}");
    live.finish();
    assert_same(&records, &all_records(&live.dir));
}

#[test]
fn a_subscriber_refilled_from_a_rolling_log_misses_nothing() {
    // A queue of one batch overflows at once: the stream is refilled from the log's
    // files while the manager keeps rolling them.
    let scratch = Scratch::new();
    let workflow = gated(&scratch, 60);
    let go = scratch.path().join("go");
    let env = [ROLLING[0], ROLLING[1], ("PITBOSS_CTL_QUEUE", "1")];
    let mut live = Live::start_in(scratch, None, &workflow, &env);
    let reader = Reader::start(&live, &["ctl", "subscribe", "--json"]);
    std::fs::write(&go, "").unwrap();
    eventually("60 completed tasks", || live.status()["counts"]["completed"] == 60);
    let out = live.ctl(&["cancel", "long"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut records = reader.records("pitboss ctl subscribe");
    assert_eq!(records.pop().unwrap()["end"], true);
    live.finish();
    assert!(archived(&live.dir) >= 2, "the log rolled: {} segment(s)", archived(&live.dir));
    assert_same(&records, &all_records(&live.dir));
}

#[test]
fn events_follow_goes_on_across_rolls_until_the_run_ends() {
    let scratch = Scratch::new();
    let workflow = gated(&scratch, 30);
    let go = scratch.path().join("go");
    let mut live = Live::start_in(scratch, None, &workflow, &ROLLING);
    // Without the socket `events --follow` tails the log's files itself.
    let socket = live.dir.join(pitboss::launch::CTL_SOCKET);
    let hidden = live.dir.join("hidden.sock");
    std::fs::rename(&socket, &hidden).unwrap();
    let reader = Reader::start(&live, &["events", "--follow", "--json"]);
    std::fs::rename(&hidden, &socket).unwrap();
    std::fs::write(&go, "").unwrap();
    eventually("30 completed tasks", || live.status()["counts"]["completed"] == 30);
    let out = live.ctl(&["cancel", "long"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = reader.records("pitboss events --follow");
    live.finish();
    assert!(archived(&live.dir) >= 2, "the log rolled: {} segment(s)", archived(&live.dir));
    assert_same(&records, &all_records(&live.dir));
}
