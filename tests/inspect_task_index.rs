//! `inspect TASK` reads a task's records through the run's task index (`tasks.idx`,
//! written by the engine with each snapshot, issue 14), and sifts the log when the
//! index cannot be trusted: damaged, of another run, missing. Behind the log it is
//! used for what it covers, the rest sifted. Every answer is the sift's, and the debug
//! binary checks each against the whole fold too.

mod common;

use std::path::Path;

use common::{sh_pool, OutputWithin, Scratch};

const INDEX: &str = "tasks.idx";

fn workflow() -> String {
    let mut wf = sh_pool("p", "cat >/dev/null; echo '{\"ok\":1}'", "");
    wf += "[[task]]\nid = \"t1\"\n[[task]]\nid = \"t10\"\ndepends_on = [\"t1\"]\n";
    wf += "[[task]]\nid = \"t100\"\ndepends_on = [\"t10\"]\n[[task]]\nid = \"t\"\n";
    wf
}

const IDS: [&str; 4] = ["t", "t1", "t10", "t100"];

/// `inspect DIR ID`'s text; `Err` with its stderr when it fails. `index_only`: it must
/// answer from the index (else it fails); otherwise the index is not required.
fn inspect(s: &Scratch, dir: &Path, id: &str, index_only: bool) -> Result<String, String> {
    let mut cmd = s.pitboss();
    cmd.env("PITBOSS_INSPECT_PREFILTER_ONLY", "1");
    if index_only {
        cmd.env("PITBOSS_INSPECT_INDEX_ONLY", "1");
    }
    let out = cmd.arg("inspect").arg(dir).arg(id).output_within("pitboss inspect TASK");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8(out.stdout).unwrap())
}

fn all(s: &Scratch, dir: &Path, index_only: bool) -> Vec<Result<String, String>> {
    IDS.iter().map(|id| inspect(s, dir, id, index_only)).collect()
}

fn sifted(s: &Scratch, dir: &Path) -> Vec<String> {
    all(s, dir, false).into_iter().map(|r| r.expect("inspect without the index")).collect()
}

fn finished_run(s: &Scratch) -> std::path::PathBuf {
    let (code, _, out) = s.run_json(&workflow());
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    s.run_dir()
}

fn resume(s: &Scratch, dir: &Path) {
    let out = s.pitboss().args(["resume", "--headless"]).arg(dir).output_within("pitboss resume --headless");
    assert!(out.status.success(), "resume: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_engine_writes_the_index_and_inspect_task_answers_from_it() {
    let s = Scratch::new();
    let dir = finished_run(&s);
    assert!(dir.join(INDEX).exists(), "the run's stop wrote no task index");
    let indexed: Vec<String> = all(&s, &dir, true).into_iter().map(|r| r.expect("answered by the index")).collect();
    std::fs::remove_file(dir.join(INDEX)).unwrap();
    assert_eq!(indexed, sifted(&s, &dir), "the index's answer is the sift's");
    // A resume's stop writes it again, over the whole log, its own records too.
    resume(&s, &dir);
    let indexed: Vec<String> = all(&s, &dir, true).into_iter().map(|r| r.expect("answered by the index")).collect();
    std::fs::remove_file(dir.join(INDEX)).unwrap();
    assert_eq!(indexed, sifted(&s, &dir));
}

#[test]
fn an_index_behind_the_log_answers_for_what_it_covers() {
    let s = Scratch::new();
    let dir = finished_run(&s);
    let old = std::fs::read(dir.join(INDEX)).unwrap();
    resume(&s, &dir);
    std::fs::write(dir.join(INDEX), &old).unwrap();
    let indexed: Vec<String> = all(&s, &dir, true).into_iter().map(|r| r.expect("answered by the index")).collect();
    std::fs::remove_file(dir.join(INDEX)).unwrap();
    assert_eq!(indexed, sifted(&s, &dir));
}

#[test]
fn a_damaged_or_foreign_index_is_not_used_and_the_log_is_sifted() {
    let s = Scratch::new();
    let dir = finished_run(&s);
    let good = std::fs::read(dir.join(INDEX)).unwrap();
    let want = sifted(&s, &dir);
    // Another run of the same workflow: the same tasks and records, other offsets and
    // another run id.
    let other = Scratch::new();
    let foreign = std::fs::read(finished_run(&other).join(INDEX)).unwrap();
    let mut damaged = Vec::new();
    for at in [10, good.len() / 2, good.len() - 3] {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        damaged.push((format!("byte {at} changed"), bad));
    }
    damaged.push(("cut short".into(), good[..good.len() - 5].to_vec()));
    damaged.push(("another run's".into(), foreign));
    for (what, bytes) in damaged {
        std::fs::write(dir.join(INDEX), &bytes).unwrap();
        let refused = all(&s, &dir, true);
        assert!(
            refused.iter().any(|r| r.as_ref().is_err_and(|e| e.contains("task index did not answer"))),
            "{what}: the index was used: {refused:?}"
        );
        assert_eq!(sifted(&s, &dir), want, "{what}");
    }
}
