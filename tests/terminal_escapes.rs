//! Worker output never reaches the operator's terminal raw (DESIGN §4, §14): a worker
//! printing terminal escapes (OSC title, CSI clear screen, bare CR, backspace, C1
//! controls, a bidi override) has them shown escaped by every command that prints
//! worker text, while the bytes it printed stay as they were in its output files.

mod common;

use common::{OutputWithin, Scratch};

/// What the hostile worker prints on both streams: an OSC title change ended by BEL, a
/// clear screen, a bare CR, a backspace, a C1 CSI (U+009B) and a right-to-left override.
const HOSTILE: &str = r"\033]0;pwned\007\033[2J hello\rX\bY \302\233Z \342\200\256evil";

/// The raw bytes that must not reach a terminal: ESC, BEL, CR, BS, the UTF-8 forms of
/// C1 controls (C2 80..C2 9F) and of the bidi override U+202E.
fn raw_controls(bytes: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            0x1b | 0x07 | 0x08 | b'\r' => found.push(format!("byte {b:#04x} at {i}")),
            0xc2 if bytes.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)) => {
                found.push(format!("C1 control at {i}"))
            }
            0xe2 if bytes.get(i + 1..i + 3) == Some(&[0x80, 0xae]) => found.push(format!("U+202E at {i}")),
            _ => {}
        }
    }
    found
}

#[track_caller]
fn assert_neutralised(what: &str, out: &std::process::Output, json: bool) {
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let raw = raw_controls(bytes);
        assert!(
            raw.is_empty(),
            "{what}: {stream} holds raw control bytes {raw:?}:\n{}",
            String::from_utf8_lossy(bytes)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let (esc, bidi) = if json { (r"\u001b", r"\u202e") } else { (r"\x1b", r"\u{202e}") };
    assert!(text.contains(esc), "{what}: the escape is not shown as {esc}:\n{text}");
    assert!(text.contains(bidi), "{what}: the bidi override is not shown as {bidi}:\n{text}");
}

fn workflow() -> String {
    // `bad` fails with the escapes on stderr (its error quotes them) and is
    // dead-lettered; `good` completes with them as its text result.
    format!(
        "[defaults]\nretry = {{ max_attempts = 1 }}\n{}{}[[task]]\nid = \"bad\"\npool = \"bad\"\n[[task]]\nid = \"good\"\npool = \"good\"\n",
        common::sh_pool("bad", &format!("cat >/dev/null; printf '{HOSTILE}\\n'; printf '{HOSTILE}\\n' >&2; exit 1"), ""),
        common::sh_pool("good", &format!("cat >/dev/null; printf '{HOSTILE}\\n'"), ""),
    )
}

#[test]
fn worker_escapes_are_shown_escaped_by_run_inspect_events_and_dlq() {
    let s = Scratch::new();
    let file = s.write("workflow.toml", &workflow());
    let run = s.pitboss().args(["run", "--headless", "--state-dir"]).arg(s.run_dir()).arg(&file).output_within("run");
    assert_eq!(run.status.code(), Some(1), "{}", String::from_utf8_lossy(&run.stderr));
    assert_neutralised("run --headless", &run, false);

    let dir = s.run_dir();
    let views: [(&str, Vec<&str>); 5] = [
        ("inspect", vec!["inspect"]),
        ("inspect bad", vec!["inspect", "bad"]),
        ("inspect good", vec!["inspect", "good"]),
        ("events", vec!["events"]),
        ("dlq", vec!["dlq"]),
    ];
    for (what, args) in views {
        let (cmd, rest) = args.split_first().unwrap();
        let out = s.pitboss().arg(cmd).arg(&dir).args(rest).output_within(what);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        if what == "inspect good" {
            // Only the text result carries the worker's text here; the table is checked
            // by `inspect` and the output tail by `inspect bad`.
            assert!(raw_controls(&out.stdout).is_empty(), "{what}: {}", String::from_utf8_lossy(&out.stdout));
            continue;
        }
        assert_neutralised(what, &out, false);
    }
}

#[test]
fn json_outputs_escape_c1_controls_and_bidi_overrides_too() {
    let s = Scratch::new();
    let (code, _doc, run) = s.run_json(&workflow());
    assert_eq!(code, 1, "{}", String::from_utf8_lossy(&run.stderr));
    assert_neutralised("run --json", &run, true);
    let dir = s.run_dir();
    let views: [(&str, Vec<&str>); 4] = [
        ("inspect --json", vec!["inspect", "--json"]),
        ("inspect bad --json", vec!["inspect", "bad", "--json"]),
        ("events --json", vec!["events", "--json"]),
        ("dlq --json", vec!["dlq", "--json"]),
    ];
    for (what, args) in views {
        let (cmd, rest) = args.split_first().unwrap();
        let out = s.pitboss().arg(cmd).arg(&dir).args(rest).output_within(what);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        assert_neutralised(what, &out, true);
        // Still JSON (one document, or one per line), with the worker's text intact.
        let values: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{what}: {e}: {line}")))
            .collect();
        let intact = values.iter().any(|v| v.to_string().contains('\u{202e}'));
        assert!(intact, "{what}: the parsed JSON lost the worker's text");
    }
}

#[test]
fn large_output_files_keep_the_raw_bytes() {
    // Output past the in-log size spills to files; those are the worker's bytes,
    // unchanged (an operator who wants them raw reads the file on purpose).
    let s = Scratch::new();
    let script = format!("cat >/dev/null; head -c 8000 /dev/zero | tr '\\0' 'a'; echo; printf '{HOSTILE}\\n'");
    let wf = format!("{}[[task]]\nid = \"big\"\n", common::sh_pool("w", &script, ""));
    let (code, _doc, run) = s.run_json(&wf);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&run.stderr));
    let file = std::fs::read(s.run_dir().join("output/big.1.stdout")).unwrap();
    assert!(file.windows(4).any(|w| w == b"\x1b]0;"), "the output file lost the raw escape");
    let out = s.pitboss().arg("inspect").arg(s.run_dir()).arg("big").output_within("inspect big");
    assert!(raw_controls(&out.stdout).is_empty(), "inspect big: {}", String::from_utf8_lossy(&out.stdout));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(r"\x1b]0;pwned\x07"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
