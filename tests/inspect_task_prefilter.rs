//! `inspect TASK` reads only the lines that can matter to the task (issue 14): the
//! records naming it, its dependencies' and the run's own, told from each line's first
//! bytes. These runs give it what a byte prefilter gets wrong: ids that are prefixes of
//! one another, an id that JSON escapes (a quote, a backslash), and records spread over
//! archived segments and the live log. The debug binary these tests run checks every
//! answer against the whole fold (and fails if they differ); here the output is checked
//! for the task's own records too, and the prefilter must answer (the whole fold it
//! falls back on is turned off).

mod common;

use std::path::Path;
use std::process::Output;

use common::{sh_pool, OutputWithin, Scratch};

fn pitboss_ok(s: &Scratch, args: &[&str], dir: &Path) -> Output {
    let out = s.pitboss().args(args).arg(dir).output_within(&format!("pitboss {args:?}"));
    assert!(out.status.success(), "pitboss {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn inspect(s: &Scratch, dir: &Path, id: &str) -> String {
    // The prefilter must answer: no whole fold behind it.
    let out = s
        .pitboss()
        .env("PITBOSS_INSPECT_PREFILTER_ONLY", "1")
        .arg("inspect")
        .arg(dir)
        .arg(id)
        .output_within("pitboss inspect TASK");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "inspect {id:?}: {err}");
    String::from_utf8(out.stdout).unwrap()
}

/// The history lines of `inspect TASK`'s text (`  #SEQ TIME KIND DETAIL`).
fn history(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.trim_start().starts_with('#')).collect()
}

#[test]
fn prefix_ids_and_records_across_archive_segments() {
    let s = Scratch::new();
    let mut wf = sh_pool("p", "cat >/dev/null; echo '{\"ok\":1}'", "");
    wf += "[[task]]\nid = \"t1\"\n[[task]]\nid = \"t10\"\ndepends_on = [\"t1\"]\n";
    wf += "[[task]]\nid = \"t100\"\ndepends_on = [\"t10\"]\n[[task]]\nid = \"t\"\n";
    let (code, _, out) = s.run_json(&wf);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let dir = s.run_dir();
    let before: Vec<String> = ["t", "t1", "t10", "t100"].iter().map(|id| inspect(&s, &dir, id)).collect();
    // The records go to archive/001.jsonl; a resume adds to the new live log.
    pitboss_ok(&s, &["compact"], &dir);
    pitboss_ok(&s, &["resume", "--headless"], &dir);
    assert!(dir.join("archive/001.jsonl").exists());
    for (id, was) in ["t", "t1", "t10", "t100"].iter().zip(&before) {
        let text = inspect(&s, &dir, id);
        assert_eq!(&text, was, "inspect {id} after the compaction");
        let lines = history(&text);
        // ready, started, spawned, succeeded: no other task's records.
        assert_eq!(lines.len(), 4, "inspect {id}:\n{text}");
        assert!(text.contains("states: blocked → queued → running → completed"), "inspect {id}:\n{text}");
    }
}

#[test]
fn an_id_json_escapes_is_found_by_decoding() {
    let s = Scratch::new();
    let mut wf = sh_pool("p", "cat >/dev/null; echo '{\"ok\":1}'", "");
    wf += "[[task]]\nid = \"alpha\"\n[[task]]\nid = \"al\"\ndepends_on = [\"alpha\"]\n";
    let (code, _, out) = s.run_json(&wf);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    // The workflow does not allow such an id; a log may hold one all the same (ids are
    // only checked where a workflow is read). Rename `alpha` to `al"p\ha` in every
    // record, seal each line again, and drop the snapshots (they hold the old name).
    let dir = s.run_dir();
    let log = dir.join("events.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let mut renamed = String::new();
    for line in text.lines() {
        let line = line.replace("\"alpha\"", r#""al\"p\\ha""#);
        let cut = line.rfind(",\"crc\":").unwrap();
        let body = format!("{}}}", &line[..cut]);
        renamed += &format!("{},\"crc\":{}}}\n", &line[..cut], crc32fast::hash(body.as_bytes()));
    }
    std::fs::write(&log, renamed).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("snapshot-") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let text = inspect(&s, &dir, "al\"p\\ha");
    assert!(text.starts_with("task al\"p\\ha "), "{text}");
    assert_eq!(history(&text).len(), 4, "{text}");
    assert!(text.contains("states: blocked → queued → running → completed"), "{text}");
    // `al` is a prefix of the old name and depends on the escaped one.
    let text = inspect(&s, &dir, "al");
    assert_eq!(history(&text).len(), 4, "{text}");
}
