//! Secrets stay secret (DESIGN §4, §14), checked with the real binary:
//! - a worker that prints the value of one of its pool's `secret_env` variables has it
//!   replaced by `[REDACTED:NAME]` in everything pitboss records or shows: the event
//!   log (output tails, results, errors, progress lines), the output files, `inspect`,
//!   `dlq`, `events` and pitboss.log;
//! - a pool sees the manager's environment minus the variables whose names look secret,
//!   unless its own `secret_env` lists them, so one pool never sees another's keys;
//! - `clean_env = true` gives a pool only PATH, HOME, the locale and its own lists.

mod common;

use std::path::Path;

use common::{task, OutputWithin, Scratch};

const NAME: &str = "PITBOSS_TEST_API_KEY";
const VALUE: &str = "sk-test-5ecret-v4lue-0123456789";
const MARK: &str = "[REDACTED:PITBOSS_TEST_API_KEY]";

/// Every file under `dir`, recursively, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path.display().to_string(), bytes));
        }
    }
    out
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[track_caller]
fn assert_redacted(what: &str, bytes: &[u8]) {
    let text: String = String::from_utf8_lossy(bytes).chars().take(3000).collect();
    assert!(!holds(bytes, VALUE), "{what} holds the secret:\n{text}");
    assert!(holds(bytes, MARK), "{what} does not show {MARK}:\n{text}");
}

#[test]
fn a_worker_printing_its_secret_has_it_redacted_in_everything_recorded_or_shown() {
    let s = Scratch::new();
    // `say` prints the key on both streams, in a progress line and in its result;
    // `flood` prints it 20 000 times (the file spills, and reads split the value);
    // `leak` fails quoting it (its error, the dead letter).
    let pool = |name: &str, script: &str| common::sh_pool(name, script, &format!("secret_env = [\"{NAME}\"]"));
    let wf = format!(
        "[defaults]\nretry = {{ max_attempts = 1 }}\n{}{}{}\
         [[task]]\nid = \"say\"\npool = \"say\"\n[[task]]\nid = \"flood\"\npool = \"flood\"\n[[task]]\nid = \"leak\"\npool = \"leak\"\n",
        pool(
            "say",
            &format!(
                "cat >/dev/null; echo \"key is ${NAME}\" >&2; \
                 echo '{{\"pitboss\":\"progress\",\"pct\":50,\"msg\":\"using '\"${NAME}\"'\"}}'; \
                 echo \"log line ${NAME}\"; echo '{{\"token\":\"'\"${NAME}\"'\"}}'"
            )
        ),
        pool("flood", &format!("cat >/dev/null; yes \"[${NAME}]\" | head -n 20000")),
        pool("leak", &format!("cat >/dev/null; echo \"auth failed for ${NAME}\" >&2; exit 1")),
    );
    let file = s.write("workflow.toml", &wf);
    let out = s
        .pitboss()
        .env(NAME, VALUE)
        .env("PITBOSS_LOG", "trace")
        .args(["run", "--headless", "--json", "--state-dir"])
        .arg(s.run_dir())
        .arg(&file)
        .output_within("run");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert_redacted("run --json", &out.stdout);
    assert!(!holds(&out.stderr, VALUE), "run's progress shows the secret");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(task(&doc, "say")["result"]["token"], MARK);

    let dir = s.run_dir();
    let log = std::fs::read(dir.join("events.jsonl")).unwrap();
    assert_redacted("events.jsonl", &log);
    // The first record names the secret and never holds its value.
    let first = log.split(|&b| b == b'\n').next().unwrap();
    assert!(holds(first, NAME) && !holds(first, VALUE));
    for (path, bytes) in files(&dir) {
        assert!(!holds(&bytes, VALUE), "{path} holds the secret");
    }
    let flood = std::fs::read_to_string(dir.join("output/flood.1.stdout")).unwrap();
    assert_eq!(flood.matches(MARK).count(), 20_000, "every copy of the secret is redacted in the output file");

    for (what, args) in [
        ("inspect", vec!["inspect"]),
        ("inspect say", vec!["inspect", "say"]),
        ("inspect leak", vec!["inspect", "leak"]),
        ("inspect flood", vec!["inspect", "flood"]),
        ("dlq", vec!["dlq"]),
        ("events", vec!["events"]),
        ("events --json", vec!["events", "--json"]),
    ] {
        let (cmd, rest) = args.split_first().unwrap();
        let out = s.pitboss().arg(cmd).arg(&dir).args(rest).output_within(what);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!holds(&out.stdout, VALUE) && !holds(&out.stderr, VALUE), "{what} shows the secret");
        if what != "events" {
            assert_redacted(what, &out.stdout);
        }
    }
    let home_files = files(&s.path().join("home"));
    assert!(home_files.iter().any(|(p, _)| p.ends_with("pitboss.log")), "no pitboss.log in {home_files:?}");
    for (path, bytes) in home_files {
        assert!(!holds(&bytes, VALUE), "{path} holds the secret");
    }
}

#[test]
fn a_secret_shorter_than_four_bytes_is_passed_but_not_redacted_and_the_run_says_so() {
    let s = Scratch::new();
    let wf = format!(
        "{}[[task]]\nid = \"t\"\n",
        common::sh_pool("p", "cat >/dev/null; echo \"{\\\"n\\\":\\\"$PIN\\\"}\"", "secret_env = [\"PIN\"]")
    );
    let file = s.write("workflow.toml", &wf);
    let out = s
        .pitboss()
        .env("PIN", "123")
        .args(["run", "--headless", "--json", "--state-dir"])
        .arg(s.run_dir())
        .arg(&file)
        .output_within("run");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(task(&doc, "t")["result"]["n"], "123", "the worker got its secret");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PIN") && stderr.contains("shorter than 4 bytes"),
        "no warning that PIN is too short to redact:\n{stderr}"
    );
}

/// What each pool's worker sees of a few variables, as `NAME=value` lines (`-` when unset).
const PROBE: &str =
    "cat >/dev/null; for v in FOO_API_KEY AWS_PROFILE DB_PASSWORD PLAIN_SETTING PATH HOME LANG OWN; do eval \"x=\\${$v-}\"; [ -n \"$x\" ] && echo \"$v=set\" || echo \"$v=-\"; done";

fn probe(doc: &serde_json::Value, id: &str) -> String {
    task(doc, id)["result"].as_str().unwrap_or_else(|| panic!("no text result for {id}: {doc}")).to_string()
}

#[test]
fn a_pool_without_secret_env_does_not_see_another_pools_keys() {
    let s = Scratch::new();
    let wf = format!(
        "{}{}[[task]]\nid = \"a\"\npool = \"a\"\n[[task]]\nid = \"b\"\npool = \"b\"\n",
        common::sh_pool("a", PROBE, "secret_env = [\"FOO_API_KEY\"]"),
        common::sh_pool("b", PROBE, ""),
    );
    let file = s.write("workflow.toml", &wf);
    let out = s
        .pitboss()
        .env("FOO_API_KEY", "foo-key-value-1")
        .env("AWS_PROFILE", "production")
        .env("DB_PASSWORD", "hunter22")
        .env("PLAIN_SETTING", "visible")
        .env("LANG", "C.UTF-8")
        .args(["run", "--headless", "--json", "--state-dir"])
        .arg(s.run_dir())
        .arg(&file)
        .output_within("run");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = probe(&doc, "a");
    let b = probe(&doc, "b");
    assert!(a.contains("FOO_API_KEY=set"), "pool a lost its own secret:\n{a}");
    assert!(b.contains("FOO_API_KEY=-"), "pool b sees pool a's key:\n{b}");
    for secretish in ["AWS_PROFILE=-", "DB_PASSWORD=-"] {
        assert!(a.contains(secretish) && b.contains(secretish), "a secret-looking variable leaked:\n{a}\n{b}");
    }
    for plain in ["PLAIN_SETTING=set", "PATH=set", "HOME=set", "LANG=set"] {
        assert!(a.contains(plain) && b.contains(plain), "an ordinary variable was not inherited:\n{a}\n{b}");
    }
}

#[test]
fn clean_env_gives_a_pool_only_path_home_locale_and_its_own_lists() {
    let s = Scratch::new();
    let wf = format!(
        "{}[[task]]\nid = \"c\"\n",
        common::sh_pool("c", PROBE, "clean_env = true\nsecret_env = [\"FOO_API_KEY\"]\nenv = { OWN = \"mine\" }"),
    );
    let file = s.write("workflow.toml", &wf);
    let out = s
        .pitboss()
        .env("FOO_API_KEY", "foo-key-value-1")
        .env("PLAIN_SETTING", "visible")
        .env("LANG", "C.UTF-8")
        .args(["run", "--headless", "--json", "--state-dir"])
        .arg(s.run_dir())
        .arg(&file)
        .output_within("run");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = probe(&doc, "c");
    for line in ["FOO_API_KEY=set", "OWN=set", "PATH=set", "HOME=set", "LANG=set", "PLAIN_SETTING=-"] {
        assert!(c.contains(line), "clean_env: expected {line}:\n{c}");
    }
}

#[test]
fn a_persistent_worker_replying_with_its_secret_has_it_redacted() {
    let s = Scratch::new();
    let script = format!("while read -r line; do echo '{{\"token\":\"'\"${NAME}\"'\"}}'; done");
    let wf = format!(
        "{}[[task]]\nid = \"p1\"\n[[task]]\nid = \"p2\"\n",
        common::sh_pool("p", &script, &format!("mode = \"persistent\"\nsecret_env = [\"{NAME}\"]"))
            .replace("concurrency = 4", "concurrency = 1"),
    );
    let file = s.write("workflow.toml", &wf);
    let out = s
        .pitboss()
        .env(NAME, VALUE)
        .args(["run", "--headless", "--json", "--state-dir"])
        .arg(s.run_dir())
        .arg(&file)
        .output_within("run");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_redacted("run --json", &out.stdout);
    assert_redacted("events.jsonl", &std::fs::read(s.run_dir().join("events.jsonl")).unwrap());
}
