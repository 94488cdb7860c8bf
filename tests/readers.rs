//! The read-only commands (`events`, `inspect`, `dlq`) on logs they cannot use: an
//! empty file, a log whose line endings were converted to CRLF, a file that is not a
//! pitboss log, and a log with a torn tail. Each says what is wrong on stderr; an
//! unusable log exits 2, a torn tail is a note and the valid records are shown.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{sh_pool, OutputWithin, Scratch};

/// A finished run's log, copied into folder `name` after `change` rewrote its bytes.
fn log_variant(s: &Scratch, name: &str, change: impl Fn(Vec<u8>) -> Vec<u8>) -> PathBuf {
    let good = s.run_dir().join("events.jsonl");
    if !good.exists() {
        let mut wf = sh_pool("p", "cat >/dev/null; echo '{\"ok\":1}'", "");
        wf += "[[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\n";
        let (code, _, out) = s.run_json(&wf);
        assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    }
    let dir = s.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("events.jsonl"), change(std::fs::read(&good).unwrap())).unwrap();
    dir
}

fn pitboss(s: &Scratch, args: &[&str], dir: &Path) -> Output {
    s.pitboss().args(args).arg(dir).output_within(&format!("pitboss {}", args.join(" ")))
}

/// Runs `events`, `inspect` and `dlq` on `dir`; each must exit 2 with `words` on stderr.
#[track_caller]
fn all_refuse(s: &Scratch, dir: &Path, words: &[&str]) {
    for args in [&["events"][..], &["events", "--json"], &["inspect"], &["dlq"]] {
        let out = pitboss(s, args, dir);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "pitboss {args:?} on {}: stderr {err:?}", dir.display());
        for w in words {
            assert!(err.contains(w), "pitboss {args:?}: stderr should say {w:?}: {err:?}");
        }
        assert!(out.stdout.is_empty(), "pitboss {args:?} printed {:?}", String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn an_empty_log_is_named_as_empty() {
    let s = Scratch::new();
    let dir = log_variant(&s, "empty", |_| Vec::new());
    all_refuse(&s, &dir, &["events.jsonl", "empty"]);
}

#[test]
fn a_log_with_crlf_line_endings_is_named_as_such() {
    let s = Scratch::new();
    let dir = log_variant(&s, "crlf", |bytes| {
        let text = String::from_utf8(bytes).unwrap();
        text.replace('\n', "\r\n").into_bytes()
    });
    all_refuse(&s, &dir, &["events.jsonl", "CRLF"]);
}

#[test]
fn a_file_that_is_not_a_pitboss_log_is_named_as_such() {
    let s = Scratch::new();
    let dir = log_variant(&s, "other", |_| b"hello\nworld\n".to_vec());
    all_refuse(&s, &dir, &["events.jsonl:1:", "not a pitboss"]);
}

#[test]
fn a_torn_tail_is_reported_and_the_valid_records_shown() {
    let s = Scratch::new();
    let dir = log_variant(&s, "torn", |mut bytes| {
        bytes.truncate(bytes.len() - 20);
        bytes
    });
    let lines = std::fs::read(dir.join("events.jsonl")).unwrap().iter().filter(|&&b| b == b'\n').count();
    for args in [&["events"][..], &["events", "--json"], &["inspect"], &["dlq"]] {
        let out = pitboss(&s, args, &dir);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "pitboss {args:?}: {err:?}");
        assert!(
            err.contains("damaged record") && err.contains(&format!("line {}", lines + 1)),
            "pitboss {args:?} should report the torn tail: {err:?}"
        );
    }
    let out = pitboss(&s, &["events", "--json"], &dir);
    let shown = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(shown, lines, "every valid record is printed");
}
