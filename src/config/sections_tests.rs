//! Reading a workflow one `[[task]]` section at a time (`split.rs`,
//! `sections.rs`) gives exactly what reading the
//! whole document gives: the same workflow for a valid file, and for an invalid one
//! nothing (the whole document is then read, for the exact messages).

use std::path::PathBuf;

use super::*;

/// The whole-document reading, as [`parse`] does when a file cannot be split.
fn whole(text: &str, base: &Path) -> Result<Workflow, Vec<Problem>> {
    let raw = parse::read(text)?;
    check::check(text, &raw, base, None)
}

/// Valid files the split handles: sub-tables of tasks, other tables after tasks,
/// text that looks like headers inside strings and arrays, comments.
const SPLIT_VALID: &[&str] = &[
    "[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\n[[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\ndepends_on = [\"a\"]\n",
    concat!(
        "[run]\nname = \"x\"\n[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\ncapabilities = [\"w\"]\n",
        "[[task]]\nid = \"a\"\n[task.retry]\nmax_attempts = 5\nnever_on = [2]\n[task.payload]\nk = \"v\"\n",
        "[[task.gates]]\ncommand = [\"true\"]\n",
        "[[notify]]\non = [\"dead_lettered\"]\ncommand = [\"true\"]\n",
        "[[task]] # the second\nid = \"b\"\nrequires = [\n  \"w\", # a comment [[task]]\n]\n",
        "payload = { s = \"\"\"\n[[task]]\nid = \"fake\"\n\"\"\", t = '[[task]]' }\n",
        "[[pool]]\nname = \"q\"\ncommand = [\"echo\"]\n",
        "[defaults]\ntimeout = \"10s\"\n",
        "[[task]]\nid = \"c\"\npool = \"q\"\nfallback = { pool = \"p\" }\n",
        "consensus = { replicas = 2, strategy = \"majority\", pools = [\"p\", \"q\"] }\n",
    ),
    "[[pool]]\r\nname = \"p\"\r\ncommand = [\"echo\"]\r\n[[ 'task' ]]\r\nid = \"a\"\r\n[ task . retry ]\r\nmax_attempts = 2\r\n",
];

/// Valid files the split gives up on: a list of tasks written inline, a task's
/// sub-table after another table (it belongs to the last task above).
const UNSPLIT: &[&str] = &[
    "task = [{ id = \"a\" }, { id = \"b\" }]\n[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\n",
    "[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\n[[task]]\nid = \"a\"\n[run]\nname = \"x\"\n[task.retry]\nmax_attempts = 2\n",
];

/// Files with a problem, which only the whole document places.
const PROBLEMS: &[&str] = &[
    // Duplicate ids, an unknown dependency, across sections.
    "[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\n[[task]]\nid = \"a\"\n[[task]]\nid = \"a\"\n",
    "[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\n[[task]]\nid = \"a\"\ndepends_on = [\"z\"]\n",
    // A problem in the last section only; an unknown key; a syntax error.
    "[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\n[[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\ntimeout = \"soon\"\n",
    "[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\n[[task]]\nid = \"a\"\nretries = 3\n",
    "[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\n[[task]]\nid = \"a\"\npayload = { x = }\n",
    // TOML's own rules across sections: a table twice, a list written inline and then
    // extended, `[task]` after `[[task]]`.
    "[run]\nname = \"a\"\n[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\n[[task]]\nid = \"a\"\n[run]\nname = \"b\"\n",
    "task = []\n[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\n[[task]]\nid = \"a\"\n",
    "[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\n[[task]]\nid = \"a\"\n[task]\nid = \"b\"\n",
    // Problems of the rest: a pool's, a consensus naming no pool, a spawn pool's key.
    "[[pool]]\nname = \"p\"\n[[task]]\nid = \"a\"\n",
    "[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\n[[task]]\nid = \"a\"\nconsensus = { replicas = 2, strategy = \"majority\", pools = [\"x\"] }\n",
    "[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\nper_worker = 2\n[[task]]\nid = \"a\"\n",
];

fn fixtures() -> Vec<(String, String)> {
    let mut files = Vec::new();
    for folder in ["src/config/testdata", "assets/workflows"] {
        let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(folder);
        for entry in std::fs::read_dir(&folder).expect("the folder") {
            let path = entry.expect("an entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                files.push((path.display().to_string(), std::fs::read_to_string(&path).expect("text")));
            }
        }
    }
    assert!(files.len() > 20, "{} files", files.len());
    files
}

#[test]
fn valid_files_read_in_sections_give_the_whole_documents_workflow() {
    let base = Path::new("/base");
    for text in SPLIT_VALID {
        let sections = sections::workflow(text, base, None).unwrap_or_else(|| panic!("read in sections:\n{text}"));
        assert_eq!(Ok(sections), whole(text, base), "{text}");
    }
}

#[test]
fn files_with_problems_are_left_to_the_whole_document() {
    let base = Path::new("/base");
    for text in PROBLEMS {
        assert!(whole(text, base).is_err(), "a problem in:\n{text}");
        assert_eq!(sections::workflow(text, base, None), None, "{text}");
    }
}

#[test]
fn valid_files_that_cannot_be_split_are_read_whole() {
    let base = Path::new("/base");
    for text in UNSPLIT {
        assert_eq!(sections::workflow(text, base, None), None, "{text}");
        let workflow = parse(text, "wf.toml", base).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(Ok(workflow), whole(text, base));
    }
}

#[test]
fn every_fixture_reads_alike_in_sections_and_whole() {
    for (file, text) in fixtures() {
        let base = Path::new(&file).parent().expect("a folder");
        let whole = whole(&text, base);
        match sections::workflow(&text, base, None) {
            Some(workflow) => assert_eq!(Ok(workflow), whole, "{file}"),
            None => assert!(whole.is_err() || split::split(&text).is_none(), "{file} was not read in sections"),
        }
    }
}

#[test]
fn submitted_tasks_read_in_sections_are_the_whole_documents() {
    let base = Path::new("/base");
    let run = "[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\n[defaults]\ntimeout = \"7s\"\n[[task]]\nid = \"a\"\n";
    let workflow = parse(run, "wf.toml", base).expect("valid");
    let known = &|id: &str| workflow.tasks.iter().any(|t| t.id == id);
    let whole = |text: &str| check::tasks(text, &parse::read_keys(text, shape::TASKS)?, &workflow, known, base);
    let valid = "[[task]]\nid = \"x\"\ndepends_on = [\"a\"]\n[task.retry]\nmax_attempts = 2\n[[task]]\nid = \"y\"\n";
    let tasks = sections::tasks(valid, &workflow, known, base).expect("read in sections");
    assert_eq!(tasks.len(), 2);
    assert_eq!(Ok(tasks), whole(valid));
    let problems = [
        // A clash with the run's task, an unknown dependency, a key that is not a task's.
        "[[task]]\nid = \"a\"\n",
        "[[task]]\nid = \"x\"\ndepends_on = [\"ghost\"]\n",
        "[run]\nname = \"x\"\n[[task]]\nid = \"x\"\n",
        "[[task]]\nid = \"x\"\n[[notify]]\non = [\"x\"]\ncommand = [\"true\"]\n",
    ];
    for text in problems {
        assert!(whole(text).is_err(), "a problem in:\n{text}");
        assert_eq!(sections::tasks(text, &workflow, known, base), None, "{text}");
    }
}

#[test]
fn a_problem_in_a_section_after_wide_characters_is_placed_in_the_file() {
    // A section's own offsets fall inside an `é` of the file: nothing may cut there.
    let text = format!(
        "#{}\n[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\n[[task]]\nid = \"a\"\ntimeout = \"soon\"\n",
        "é".repeat(50)
    );
    let err = parse(&text, "wf.toml", Path::new("/base")).expect_err("a bad duration");
    assert!(err.to_string().starts_with("wf.toml:7:11: bad duration \"soon\""), "{err}");
}

/// A file of `n` varied tasks (pools, dependencies on earlier tasks, retries, payloads,
/// gates), with `bad` (if any) given a duration that is not one.
fn many_tasks(n: usize, bad: Option<usize>) -> String {
    let mut text =
        String::from("[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\n[[pool]]\nname = \"q\"\ncommand = [\"cat\"]\n");
    for i in 0..n {
        text.push_str(&format!("[[task]]\nid = \"t{i}\"\npayload = {{ n = {i}, text = \"task {i}\" }}\n"));
        if i % 3 == 0 {
            text.push_str("pool = \"q\"\n");
        }
        if i > 0 && i % 5 == 0 {
            text.push_str(&format!("depends_on = [\"t{}\"]\n", i - 1));
        }
        let timeout = if bad == Some(i) { "soon".to_string() } else { format!("{}s", 1 + i % 60) };
        text.push_str(&format!("timeout = \"{timeout}\"\n"));
        if i % 7 == 0 {
            text.push_str(&format!("[task.retry]\nmax_attempts = {}\n", 1 + i % 4));
        }
        if i % 11 == 0 {
            text.push_str("[[task.gates]]\ncommand = [\"true\"]\n");
        }
    }
    text
}

#[test]
fn a_large_file_read_on_several_threads_gives_the_whole_documents_tasks_in_order() {
    let base = Path::new("/base");
    let text = many_tasks(1_500, None);
    let whole = whole(&text, base).expect("valid");
    for threads in [1, 2, 3, 4] {
        let read = sections::workflow_on(&text, base, None, threads).expect("read in sections");
        assert_eq!(read, whole, "on {threads} thread(s)");
    }
}

#[test]
fn a_problem_in_any_threads_share_leaves_the_file_to_the_whole_document() {
    let base = Path::new("/base");
    // Three shares of 500 sections: a problem in the first, the middle and the last.
    for bad in [0, 499, 500, 1_000, 1_499] {
        let text = many_tasks(1_500, Some(bad));
        assert_eq!(sections::workflow_on(&text, base, None, 3), None, "task {bad}");
        let err = parse(&text, "wf.toml", base).expect_err("a bad duration");
        assert!(err.to_string().contains("bad duration \"soon\""), "{err}");
    }
}
