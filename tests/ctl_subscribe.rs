//! `subscribe` over the control socket: every record from N, in order, equal to the
//! log file, then a last line when the run stops; a subscriber whose queue overflows
//! is refilled from the log, one that stops reading is dropped, and neither slows the
//! engine. `events --follow` streams the same records from a live manager.

mod common;
mod ctl_common;

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use serde_json::Value;

use common::{finish_within, Scratch};
use ctl_common::{connect, eventually, stderr, Live, POOLS};

/// `n` quick tasks that wait for the file `go` before they succeed.
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
    wf
}

/// The log file's records as `{seq, ts, event}`.
fn log_records(dir: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            serde_json::json!({"seq": v["seq"], "ts": v["ts"], "event": v["event"]})
        })
        .collect()
}

/// The stream equals the log: same records, same order (the first difference named).
#[track_caller]
fn assert_same(stream: &[Value], log: &[Value]) {
    let seqs = |v: &[Value]| v.iter().map(|r| r["seq"].as_u64().unwrap_or(0)).collect::<Vec<_>>();
    assert_eq!(seqs(stream), seqs(log), "the stream's seqs differ from the log's");
    if let Some((a, b)) = stream.iter().zip(log).find(|(a, b)| a != b) {
        panic!("record {} differs:\nstream {a}\nlog    {b}", a["seq"]);
    }
}

/// Lines of `pitboss ctl DIR subscribe --json [--from N]` until the run ends: the
/// records and the last line.
fn subscribe_until_the_end(live: &Live, from: Option<u64>, go: impl FnOnce()) -> (Vec<Value>, Value) {
    let mut cmd = live.scratch.pitboss();
    cmd.arg("ctl").arg(&live.dir).args(["subscribe", "--json"]);
    if let Some(n) = from {
        cmd.args(["--from", &n.to_string()]);
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    // The first record proves the subscription is up before the run moves on.
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    go();
    let mut all = vec![first];
    for line in lines {
        all.push(serde_json::from_str(&line.unwrap()).unwrap());
    }
    let out = finish_within(child, "pitboss ctl subscribe");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let last = all.pop().unwrap();
    (all, last)
}

#[test]
fn subscribe_from_0_sees_every_record_in_order_equal_to_the_log() {
    let scratch = Scratch::new();
    let workflow = gated(&scratch, 12);
    let go = scratch.path().join("go");
    let mut live = Live::start_in(scratch, None, &workflow, &[]);
    let (records, last) = subscribe_until_the_end(&live, None, || std::fs::write(&go, "").unwrap());
    assert_eq!(last["end"], true, "{last}");
    let out = live.finish();
    assert_eq!(out.status.code(), Some(0));
    let log = log_records(&live.dir);
    assert_same(&records, &log);
    assert_eq!(last["next_seq"], log.last().unwrap()["seq"].as_u64().unwrap() + 1);
}

#[test]
fn subscribe_from_n_starts_at_n() {
    let scratch = Scratch::new();
    let workflow = gated(&scratch, 3);
    let go = scratch.path().join("go");
    let mut live = Live::start_in(scratch, None, &workflow, &[]);
    let (records, _) = subscribe_until_the_end(&live, Some(3), || std::fs::write(&go, "").unwrap());
    live.finish();
    let log = log_records(&live.dir);
    assert_eq!(records[0]["seq"], 3);
    assert_same(&records, &log[2..]);
}

#[test]
fn a_subscriber_whose_queue_overflows_is_refilled_from_the_log_without_a_gap() {
    // A queue of one batch overflows at once; the stream must still equal the log.
    let scratch = Scratch::new();
    let workflow = gated(&scratch, 60);
    let go = scratch.path().join("go");
    let mut live = Live::start_in(scratch, None, &workflow, &[("PITBOSS_CTL_QUEUE", "1")]);
    let (records, last) = subscribe_until_the_end(&live, None, || std::fs::write(&go, "").unwrap());
    assert_eq!(last["end"], true);
    live.finish();
    assert_same(&records, &log_records(&live.dir));
}

#[test]
fn a_subscriber_that_stops_reading_is_dropped_and_never_slows_the_run() {
    let scratch = Scratch::new();
    let workflow = gated(&scratch, 400) + "[[task]]\nid = \"long\"\npool = \"slow\"\n";
    let go = scratch.path().join("go");
    let mut live = Live::start_in(scratch, None, &workflow, &[("PITBOSS_CTL_STALL_MS", "300")]);
    let mut stuck = connect(&live.dir);
    stuck.write_all(b"{\"cmd\":\"subscribe\",\"from_seq\":0}\n").unwrap();
    // Its first line proves the subscription is in place (read byte by byte, so
    // nothing more is taken off the socket); then it reads nothing more.
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    while byte[0] != b'\n' {
        assert_eq!(std::io::Read::read(&mut stuck, &mut byte).unwrap(), 1, "the subscription ended at once");
        first.push(byte[0]);
    }
    std::fs::write(&go, "").unwrap();
    // The run goes on: every quick task completes while the subscriber reads nothing.
    eventually("400 completed tasks", || live.status()["counts"]["completed"] == 400);
    // Dropped means the manager closed its end: reading finds the end of the stream
    // (what was sent before), never the time limit. Not an fd count: the long task's
    // pipes may open after any baseline, and a slow start made that count flaky.
    stuck.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
    let mut got = Vec::new();
    let read = std::io::Read::read_to_end(&mut stuck, &mut got);
    assert!(read.is_ok(), "the stuck subscriber was never dropped: {read:?}");
    // What it gets ends early: no last line.
    let lines: Vec<String> = BufReader::new(&got[..]).lines().map_while(Result::ok).collect();
    assert!(!lines.is_empty());
    assert!(!lines.last().unwrap().contains("\"end\""), "the stuck subscriber was not dropped");
    live.stop();
}

#[test]
fn events_follow_streams_a_live_run_until_it_ends() {
    let scratch = Scratch::new();
    let workflow = gated(&scratch, 5);
    let go = scratch.path().join("go");
    let mut live = Live::start_in(scratch, None, &workflow, &[]);
    let mut child = live
        .scratch
        .pitboss()
        .arg("events")
        .arg(&live.dir)
        .args(["--follow", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    std::fs::write(&go, "").unwrap();
    let mut records = vec![first];
    records.extend(lines.map(|l| serde_json::from_str::<Value>(&l.unwrap()).unwrap()));
    let out = finish_within(child, "pitboss events --follow");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    live.finish();
    assert_same(&records, &log_records(&live.dir));
}
