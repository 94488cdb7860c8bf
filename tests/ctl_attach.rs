//! `pitboss attach DIR`: the full TUI, in a terminal of its own, against a run a
//! headless manager is running. Keys go over the socket; `q` detaches and leaves the
//! run going; the manager ending ends the attach with a message.

mod common;
mod ctl_common;

use std::time::Duration;

use common::pty::Terminal;
use common::{read_events, wait_for};
use ctl_common::{Live, POOLS};

const LIMIT: Duration = Duration::from_secs(30);

fn attach(live: &Live) -> Terminal {
    let mut cmd = live.scratch.pitboss();
    cmd.arg("attach").arg(&live.dir).env("PITBOSS_CONFIG", live.scratch.path().join("config"));
    Terminal::spawn(cmd, 120, 40)
}

fn workflow() -> String {
    format!("{POOLS}\n[[task]]\nid = \"long\"\npool = \"slow\"\n[[task]]\nid = \"early\"\npool = \"quick\"\n")
}

#[test]
fn attach_shows_the_dashboard_sends_commands_and_q_detaches_leaving_the_run_going() {
    let mut live = Live::start(&workflow());
    live.wait_state("early", "completed");
    let mut t = attach(&live);
    t.wait_for(LIMIT, "the dashboard with the running task", |sc| sc.contains("long") && sc.contains("Workers"));
    // A palette command goes over the socket to the headless manager.
    t.send_keys(":pause quick");
    t.enter();
    let paused = wait_for(LIMIT, || read_events(&live.dir).iter().any(|e| e["type"] == "pool_paused"));
    assert!(paused, "the attached TUI's pause never reached the manager; screen:\n{}", t.screen());
    // q asks whether to detach (nothing is stopped), y detaches: the run goes on.
    t.send_keys("q");
    t.wait_for(LIMIT, "the detach question", |sc| sc.contains("Detach? The run keeps going."));
    t.send_keys("y");
    assert_eq!(t.wait_exit(LIMIT), 0);
    assert_eq!(live.status()["counts"]["running"], 1, "detaching stopped the run");
    assert!(!read_events(&live.dir).iter().any(|e| e["type"] == "run_interrupted"));
    live.stop();
}

#[test]
fn the_manager_ending_ends_the_attach_with_a_message() {
    let mut live = Live::start(&workflow());
    let t = attach(&live);
    t.wait_for(LIMIT, "the dashboard", |sc| sc.contains("long"));
    live.stop();
    assert_eq!(t.wait_exit(LIMIT), 0);
    t.wait_for(LIMIT, "the message", |sc| sc.contains("stopped (its manager ended)"));
}

#[test]
fn attach_without_a_manager_says_so() {
    let scratch = common::Scratch::new();
    let dir = scratch.path().join("idle");
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = scratch.pitboss();
    cmd.arg("attach").arg(&dir);
    let t = Terminal::spawn(cmd, 120, 40);
    assert_eq!(t.wait_exit(LIMIT), 2);
    t.wait_for(LIMIT, "the message", |sc| sc.contains("no manager is running"));
}
