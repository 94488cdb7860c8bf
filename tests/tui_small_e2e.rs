//! 80×24 in a real terminal (the pty harness, no tmux): a fleet of three pools with a
//! dead-letter storm draws without broken lines, the dead letters keep their count and
//! cause, help scrolls, a terminal too small says so and resizing back restores the
//! screens; `E` edits a payload in `$EDITOR` (a script the test writes) and records
//! it after the question; Ctrl-Z gives the terminal to the shell and `fg` brings the
//! TUI back with nothing charged; a second Ctrl-C at the quit question quits.

mod common;

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::pty::{session_members, Terminal};
use common::{read_events, Scratch};

/// How long a screen or an exit may take before the test fails.
const LIMIT: Duration = Duration::from_secs(30);

const REFUSED: &str = "connection refused while fetching the upstream dependency manifest from the registry mirror";

/// Three pools: 12 dead letters with exit 3 and a long reason, 8 with exit 64, and
/// three workers that run until stopped.
fn storm(s: &Scratch) -> PathBuf {
    let mut wf = "[defaults]\nretry = { max_attempts = 1 }\n".to_string();
    let alpha = format!("cat >/dev/null; echo '{REFUSED}' >&2; exit 3");
    let beta = "cat >/dev/null; echo 'the envelope result could not be parsed as the declared schema' >&2; exit 64";
    wf += &common::sh_pool("alpha", &alpha, "");
    wf += &common::sh_pool("beta", beta, "");
    wf += &common::sh_pool("gamma", "cat >/dev/null; echo working; exec sleep 1000", "");
    for i in 1..=12 {
        wf += &format!("[[task]]\nid = \"fetch-{i:02}\"\npool = \"alpha\"\n");
    }
    for i in 1..=8 {
        wf += &format!("[[task]]\nid = \"parse-{i:02}\"\npool = \"beta\"\n");
    }
    for i in 1..=3 {
        wf += &format!("[[task]]\nid = \"agent-{i}\"\npool = \"gamma\"\n");
    }
    s.write("storm.toml", &wf)
}

/// `pitboss run` on `workflow` in a `cols`×`rows` terminal.
fn start(s: &Scratch, workflow: &Path, cols: u16, rows: u16) -> Terminal {
    let mut cmd = s.pitboss();
    cmd.args(["run", "--state-dir"]).arg(s.run_dir()).arg(workflow).env("PITBOSS_CONFIG", s.path().join("config"));
    Terminal::spawn(cmd, cols, rows)
}

fn rows(screen: &str) -> Vec<&str> {
    screen.lines().collect()
}

#[test]
fn a_dead_letter_storm_over_three_pools_reads_at_80x24() {
    let s = Scratch::new();
    let mut t = start(&s, &storm(&s), 80, 24);
    let screen = t.wait_for(LIMIT, "the storm on the dashboard", |sc| {
        sc.contains("20 dead") && sc.contains("3 running") && sc.lines().count() >= 24
    });
    let lines = rows(&screen);
    assert!(lines[0].starts_with(" pitboss") && lines[0].contains("20 dead"), "the header:\n{screen}");
    assert!(lines[23].contains("help") && lines[23].contains("quit"), "the key bar on the last row:\n{screen}");
    // No broken lines: every row between the header and the status line is inside a
    // box, and no row is wider than the terminal.
    for (n, line) in lines.iter().enumerate().take(22).skip(1) {
        assert!(line.starts_with(['┌', '│', '└']), "row {n} is not inside a panel: {line:?}\n{screen}");
    }
    assert!(lines.iter().all(|l| l.chars().count() <= 80));
    // The dashboard's dead letters keep each cause's exit code, cut at a word.
    let panel: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with("│12×") || l.starts_with("│8×")).collect();
    assert_eq!(panel.len(), 2, "{screen}");
    assert!(panel[0].contains("exit code 3: connection refused") && panel[0].contains('…'), "{screen}");
    assert!(panel[1].contains("exit code 64: the envelope") && panel[1].contains('…'), "{screen}");

    // The dead letters: count, attempts and the cause, cut at a word with "…".
    t.send_keys("3");
    let screen = t.wait_for(LIMIT, "the dead letters by cause", |sc| {
        sc.contains("Dead letters by cause") && sc.contains("exit code 64")
    });
    let lines = rows(&screen);
    assert!(lines[1].starts_with("┌ Dead letters by cause"), "{screen}");
    assert_eq!(lines[3], "│12     12       attempts spent (#/#): exit code 3: connection refused while…  │");
    assert!(lines[4].starts_with("│8      8        attempts spent (#/#): exit code 64: the envelope"), "{screen}");
    assert!(lines[4].trim_end_matches([' ', '│']).ends_with('…'), "{screen}");
    // A group opens to its members, each reason cut at a word.
    t.enter();
    let screen = t.wait_for(LIMIT, "the group's members", |sc| sc.contains("with this cause"));
    let lines = rows(&screen);
    assert_eq!(lines[3], "│fetch-01 dead_lettered 1        attempts spent (1/1): exit code 3: connection…│");
    t.esc();
    t.wait_for(LIMIT, "the groups again", |sc| sc.contains("Dead letters by cause"));

    // A second Ctrl-C at the quit question quits (the run stays resumable).
    t.send_keys("q");
    t.wait_for(LIMIT, "the quit question", |sc| sc.contains("Stop 3 running attempts and quit?"));
    t.send_keys("\x03");
    t.wait_exit(LIMIT);
    let events = read_events(&s.run_dir());
    assert!(events.iter().any(|e| e["type"] == "run_interrupted" || e["type"] == "run_stopped"), "stopped cleanly");
}

#[test]
fn help_scrolls_at_80x24_and_esc_closes_it() {
    let s = Scratch::new();
    let mut t = start(&s, &storm(&s), 80, 24);
    t.wait_for(LIMIT, "the dashboard", |sc| sc.contains("20 dead"));
    t.send_keys("?");
    let top = t.wait_for(LIMIT, "help at its top", |sc| sc.contains("Help 1-22/"));
    assert!(top.contains("move up") && !top.contains("ctrl-z"), "{top}");
    // j scrolls by one; G to the end, where the last lines are.
    t.send_keys("j");
    t.wait_for(LIMIT, "help scrolled by one", |sc| sc.contains("Help 2-23/"));
    t.send_keys("G");
    let end = t.wait_for(LIMIT, "help at its end", |sc| sc.contains("esc, q or ? closes"));
    assert!(end.contains("ctrl-z") && end.contains("ctrl-u deletes") && !end.contains("move up"), "{end}");
    // A key that is not a movement does nothing while help is open.
    t.send_keys("2");
    t.wait_for(LIMIT, "help still open", |sc| sc.contains("esc, q or ? closes"));
    t.esc();
    let closed = t.wait_for(LIMIT, "help closed", |sc| !sc.contains("Help "));
    assert!(closed.contains("20 dead") && !closed.contains("TASKS"), "still the dashboard:\n{closed}");
    t.send_keys("q");
    t.wait_for(LIMIT, "the quit question", |sc| sc.contains("quit?"));
    t.send_keys("y");
    t.wait_exit(LIMIT);
}

#[test]
fn a_terminal_too_small_says_so_and_resizing_back_restores_the_screens() {
    let s = Scratch::new();
    let mut t = start(&s, &storm(&s), 50, 12);
    let small = t.wait_for(LIMIT, "the too-small notice", |sc| sc.contains("terminal too small"));
    assert!(small.contains("(need 60×10, have 50×12)"), "{small}");
    t.resize(80, 24);
    let back = t.wait_for(LIMIT, "the dashboard at 80×24", |sc| sc.contains("20 dead") && !sc.contains("too small"));
    assert!(rows(&back)[0].starts_with(" pitboss"), "{back}");
    t.resize(59, 24);
    t.wait_for(LIMIT, "the notice again", |sc| sc.contains("have 59×24"));
    t.resize(80, 24);
    t.wait_for(LIMIT, "the dashboard again", |sc| sc.contains("20 dead"));
    t.send_keys("q");
    t.wait_for(LIMIT, "the quit question", |sc| sc.contains("quit?"));
    t.send_keys("y");
    t.wait_exit(LIMIT);
}

/// A dead letter that completes only with `{"fixed": true}`, and an `$EDITOR` script
/// that answers invalid JSON the first time and, reopened on the same text, fixes it.
#[test]
fn e_edits_a_payload_in_the_editor_refuses_bad_json_and_records_the_fix() {
    let s = Scratch::new();
    let script = "if grep -q '\"fixed\": *true'; then echo '{\"ok\":1}'; else echo broken >&2; exit 4; fi";
    let wf = format!(
        "[defaults]\nretry = {{ max_attempts = 1 }}\n{}[[task]]\nid = \"flaky\"\n",
        common::sh_pool("p", script, "")
    );
    let file = s.write("workflow.toml", &wf);
    let first = s.path().join("first-edit-done");
    // The second time it reads the new payload from the terminal, as an editor reads
    // keys, but only once the test says so through a fifo: the keys wait in the
    // terminal meanwhile, where a TUI event reader still reading would take them.
    let go = s.path().join("go");
    assert!(std::process::Command::new("mkfifo").arg(&go).status().unwrap().success());
    let editor = s.write(
        "editor.sh",
        &format!(
            "#!/bin/sh\n# The first edit leaves broken JSON; the second must see it again.\n\
             if [ ! -e {first} ]; then touch {first}; printf '{{\"fixed\": ' > \"$1\"; exit 0; fi\n\
             grep -q fixed \"$1\" || exit 9\n\
             exec 3<>{go}\n\
             printf 'EDITOR> '\n\
             read -r go <&3\n\
             read -r line\n\
             printf '%s\\n' \"$line\" > \"$1\"\n",
            first = first.display(),
            go = go.display()
        ),
    );
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let tmp = s.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let mut cmd = s.pitboss();
    cmd.args(["run", "--state-dir"])
        .arg(s.run_dir())
        .arg(&file)
        .env("PITBOSS_CONFIG", s.path().join("config"))
        .env("EDITOR", &editor)
        .env_remove("VISUAL")
        .env("TMPDIR", &tmp);
    let mut t = Terminal::spawn(cmd, 80, 24);
    t.wait_for(LIMIT, "the dead letter", |sc| sc.contains("1 dead") && sc.contains("finished"));
    t.send_keys("3");
    t.wait_for(LIMIT, "the dead letters view", |sc| sc.contains("Dead letters by cause"));
    t.send_keys("E");
    let refused = t.wait_for(LIMIT, "the JSON refused", |sc| sc.contains("not valid JSON"));
    assert!(refused.contains("not recorded (E reopens your text)"), "{refused}");
    assert!(!read_events(&s.run_dir()).iter().any(|e| e["type"] == "payload_edited"));
    // The refused text is kept, private, and reopened by the next E.
    let kept: Vec<PathBuf> = walk(&tmp).into_iter().filter(|p| p.ends_with("flaky.json")).collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&kept[0]).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(kept[0].parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
    t.send_keys("E");
    t.wait_for(LIMIT, "the editor waiting for keys", |sc| sc.contains("EDITOR> "));
    t.send_keys("{\"fixed\": true, \"note\": \"typed into the editor, every key of it\"}");
    t.enter();
    t.wait_for(LIMIT, "the keys echoed", |sc| sc.contains("every key of it\"}"));
    // Non-blocking: the editor holds the fifo open, so this never waits.
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&go)
        .expect("the editor holds the fifo");
    std::io::Write::write_all(&mut fifo, b"go\n").unwrap();
    t.wait_for(LIMIT, "the question", |sc| sc.contains("Record the edited payload of flaky?"));
    t.send_keys("y");
    t.wait_for(LIMIT, "the edit acknowledged", |sc| sc.contains("flaky: payload edited"));
    let events = t_wait_events(&s, |events| events.iter().any(|e| e["type"] == "payload_edited"));
    let edited = events.iter().find(|e| e["type"] == "payload_edited").unwrap();
    assert_eq!(edited["task"], "flaky");
    assert_eq!(edited["payload"], serde_json::json!({"fixed": true, "note": "typed into the editor, every key of it"}));
    assert!(!kept[0].exists(), "the file goes once its text is recorded");
    // The edit took the same path as the palette's: a replay now completes the task.
    t.send_keys("R");
    t.wait_for(LIMIT, "the task completed", |sc| sc.contains("1 done") && sc.contains("finished"));
    t.send_keys("q");
    assert_eq!(t.wait_exit(LIMIT), 0);
}

/// Ctrl-Z under a shell with job control: the TUI leaves the screen and stops, the
/// shell has the terminal; `fg` brings the TUI back, redrawn, with its workers still
/// running and no attempt charged for the pause.
#[test]
fn ctrl_z_gives_the_terminal_to_the_shell_and_fg_brings_the_tui_back() {
    let s = Scratch::new();
    let wf = s.write(
        "workflow.toml",
        &format!(
            "{}[[task]]\nid = \"agent-1\"\n",
            common::sh_pool("p", "cat >/dev/null; echo working; exec sleep 1000", "")
        ),
    );
    let mut t = under_a_job_control_shell(&s, &wf);
    t.wait_for(LIMIT, "the worker running", |sc| sc.contains("1 running") && sc.contains("working"));
    let pitboss = job_pid(t.pid());
    t.send_keys("\x1a");
    let shell = t.wait_for(LIMIT, "the shell's turn", |sc| sc.contains("[shell] job stopped"));
    assert!(!shell.contains("Workers"), "the TUI left the screen:\n{shell}");
    assert!(common::wait_for(LIMIT, || process_state(pitboss) == Some('T')), "pitboss is stopped");
    t.enter();
    let back = t.wait_for(LIMIT, "the TUI back", |sc| sc.contains("1 running") && sc.contains("working"));
    assert!(rows(&back)[0].starts_with(" pitboss"), "redrawn in full:\n{back}");
    assert_ne!(process_state(pitboss), Some('T'));
    let events = read_events(&s.run_dir());
    assert!(
        !events
            .iter()
            .any(|e| matches!(e["type"].as_str(), Some("attempt_failed" | "task_failed" | "task_dead_lettered"))),
        "the pause charged an attempt: {events:?}"
    );
    t.send_keys("q");
    t.wait_for(LIMIT, "the quit question", |sc| sc.contains("quit?"));
    t.send_keys("y");
    t.wait_for(LIMIT, "the shell after pitboss", |sc| sc.contains("[shell] done"));
    t.enter();
    t.wait_exit(LIMIT);
}

/// A Ctrl-Z longer than an attempt's timeout: the manager was not there to read its
/// worker, so the stop is not the attempt's time. The worker (in its own process group,
/// so it runs on) marks when 6 s have passed; `fg` then; the 5 s limit still has most of
/// its awake time to go, so the timeout comes seconds later, not at once.
#[test]
fn a_ctrl_z_longer_than_the_timeout_is_not_charged_to_the_attempt() {
    let s = Scratch::new();
    let marker = s.path().join("six-seconds");
    let script = format!("cat >/dev/null; echo working; sleep 6; touch '{}'; exec sleep 1000", marker.display());
    let wf = s.write(
        "workflow.toml",
        &format!(
            "[defaults]\ntimeout = \"5s\"\nretry = {{ max_attempts = 1 }}\n{}[[task]]\nid = \"agent-1\"\n",
            common::sh_pool("p", &script, "")
        ),
    );
    let mut t = under_a_job_control_shell(&s, &wf);
    t.wait_for(LIMIT, "the worker running", |sc| sc.contains("1 running") && sc.contains("working"));
    let pitboss = job_pid(t.pid());
    t.send_keys("\x1a");
    t.wait_for(LIMIT, "the shell's turn", |sc| sc.contains("[shell] job stopped"));
    assert!(common::wait_for(LIMIT, || marker.exists()), "the worker ran on for 6 s");
    assert_eq!(process_state(pitboss), Some('T'), "pitboss stayed stopped");
    t.enter();
    let continued = std::time::Instant::now();
    let events = t_wait_events(&s, |events| events.iter().any(|e| e["type"] == "attempt_failed"));
    let after = continued.elapsed();
    let failed = events.iter().find(|e| e["type"] == "attempt_failed").unwrap();
    assert_eq!(failed["class"], "timeout", "{failed}");
    assert!(after >= Duration::from_millis(1_500), "timed out {after:?} after fg: the stop was counted");
    // The header's own words: "dead" alone also matches the empty dead-letter panel,
    // and a `q` sent before the view has the run's end asks to stop a running attempt.
    t.wait_for(LIMIT, "the run's end on screen", |sc| sc.contains(" 1 dead") && sc.contains("finished"));
    t.send_keys("q");
    t.wait_for(LIMIT, "the shell after pitboss", |sc| sc.contains("[shell] done"));
    t.enter();
    t.wait_exit(LIMIT);
}

/// `pitboss run WF` in an 80×24 terminal under a non-interactive bash with job control
/// (set -m): pitboss runs as a job in a process group of its own, as under an
/// operator's shell. The shell says "[shell] job stopped" when the job stops, waits for
/// Enter, runs `fg`, then says "[shell] done" and waits for Enter again.
fn under_a_job_control_shell(s: &Scratch, wf: &Path) -> Terminal {
    let mut cmd = std::process::Command::new("bash");
    cmd.arg("-c")
        .arg("set -m; \"$0\" run --state-dir \"$1\" \"$2\"; echo \"[shell] job stopped\"; read line; fg %1; echo \"[shell] done\"; read line")
        .arg(env!("CARGO_BIN_EXE_pitboss"))
        .arg(s.run_dir())
        .arg(wf)
        .env("PITBOSS_HOME", s.path().join("home"))
        .env("PITBOSS_CONFIG", s.path().join("config"));
    Terminal::spawn(cmd, 80, 24)
}

/// The job bash started: its child that is pitboss.
fn job_pid(shell: i32) -> i32 {
    let mut found = None;
    assert!(common::wait_for(LIMIT, || {
        found = session_members(shell).into_iter().find(|&pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().nth(1)?.parse::<i32>().ok());
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            ppid == Some(shell) && String::from_utf8_lossy(&cmdline).contains("run")
        });
        found.is_some()
    }));
    found.unwrap()
}

/// A process's state letter (R, S, T…).
fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().next()?.chars().next()
}

/// The events once `cond` holds of them (polled, with a deadline).
fn t_wait_events(s: &Scratch, cond: impl Fn(&[serde_json::Value]) -> bool) -> Vec<serde_json::Value> {
    let mut events = Vec::new();
    let ok = common::wait_for(LIMIT, || {
        events = read_events(&s.run_dir());
        cond(&events)
    });
    assert!(ok, "the events never matched: {events:?}");
    events
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
