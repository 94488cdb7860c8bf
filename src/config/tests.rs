//! The file-level behaviour of `config`: defaults, paths, and every problem at its
//! line and column. `testdata/` holds workflows with the exact report each gives: the
//! first ones as they were before the checks moved into `core::workflow`, the later
//! ones (wrong kinds of value, sections, unknown keys, dates, numbers out of range,
//! shell code) written for the hardening of issue 11.

use super::*;
use std::path::PathBuf;

use crate::core::workflow::{BrokerUrl, PasswordSource, RetryPolicy, StdinMode};

fn check(text: &str) -> Result<Workflow, ConfigError> {
    parse(text, "wf.toml", Path::new("/base"))
}

const POOL: &str = "[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\ncapabilities = [\"write\"]\n";

#[test]
fn minimal_workflow_gets_defaults() {
    let wf = check(&format!("{POOL}[[task]]\nid = \"a\"\n")).unwrap();
    assert_eq!(wf.max_parallel, 8);
    assert_eq!(*wf.tasks[0].retry, RetryPolicy::default());
    assert_eq!(wf.tasks[0].timeout_ms, 300_000);
    assert_eq!(wf.pools[0].stdin, StdinMode::Task);
}

#[test]
fn relative_command_resolves_next_to_the_workflow() {
    let wf = check("[[pool]]\nname = \"p\"\ncommand = [\"./agent.sh\", \"x\"]\n").unwrap();
    assert_eq!(wf.pools[0].command[0], "/base/./agent.sh");
}

#[test]
fn unknown_key_has_line_and_column() {
    let err = check(&format!("{POOL}[[task]]\nid = \"a\"\nbogus = 1\n")).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("wf.toml:7:1: "), "{text}");
    assert!(text.contains("bogus"), "{text}");
}

#[test]
fn every_semantic_problem_is_reported() {
    let text = format!(
        "{POOL}[[task]]\nid = \"a\"\ndepends_on = [\"ghost\"]\ntimeout = \"soon\"\n\
         [[task]]\nid = \"a\"\npool = \"nope\"\n\
         [[task]]\nid = \"c\"\nrequires = [\"fly\"]\n"
    );
    let err = check(&text).unwrap_err();
    let msgs: Vec<String> = err.problems.iter().map(|p| format!("{}:{} {}", p.line, p.col, p.message)).collect();
    let all = msgs.join("\n");
    assert!(all.contains("7:15 task \"a\" depends on unknown task \"ghost\""), "{all}");
    assert!(all.contains("8:11 bad duration"), "{all}");
    assert!(all.contains("10:6 duplicate task id"), "{all}");
    assert!(all.contains("unknown pool \"nope\""), "{all}");
    assert!(all.contains("no pool has all of the capabilities"), "{all}");
}

#[test]
fn cycle_is_named() {
    let text = format!(
        "{POOL}[[task]]\nid = \"a\"\ndepends_on = [\"c\"]\n[[task]]\nid = \"b\"\ndepends_on = [\"a\"]\n[[task]]\nid = \"c\"\ndepends_on = [\"b\"]\n"
    );
    let err = check(&text).unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err}");
    assert!(err.problems[0].message.contains("dependency cycle: a -> c -> b -> a"), "{err}");
}

#[test]
fn empty_command_and_unsupported_keys_are_refused() {
    let err = check("[[pool]]\nname = \"p\"\ncommand = []\npreset = \"gpt\"\n").unwrap_err();
    let all = err.to_string();
    assert!(all.contains("wf.toml:3:11: pool \"p\" has an empty command"), "{all}");
    assert!(all.contains("wf.toml:4:10: unknown preset \"gpt\": expected one of claude, codex"), "{all}");
}

#[test]
fn syntax_error_has_position() {
    let err = check("[run\nname = 1").unwrap_err();
    assert_eq!(err.problems.len(), 1);
    assert_eq!(err.problems[0].line, 1, "{err}");
}

#[test]
fn missing_payload_key_for_placeholder() {
    let text = "[[pool]]\nname = \"p\"\ncommand = [\"echo\", \"{payload.prompt}\"]\n[[task]]\nid = \"a\"\n";
    let err = check(text).unwrap_err();
    assert!(err.to_string().contains("payload has no \"prompt\""), "{err}");
    let ok = "[[pool]]\nname = \"p\"\ncommand = [\"echo\", \"{payload.prompt}\"]\n[[task]]\nid = \"a\"\npayload = { prompt = \"hi\" }\n";
    assert!(check(ok).is_ok());
}

#[test]
fn unknown_placeholder_is_refused() {
    let err = check("[[pool]]\nname = \"p\"\ncommand = [\"echo\", \"{nope}\"]\n").unwrap_err();
    assert!(err.to_string().contains("unknown placeholder {nope}"), "{err}");
}

/// Each `testdata/NAME.toml` reports exactly `testdata/NAME.expected`.
#[test]
fn every_problem_is_placed_as_before() {
    let cases: &[(&str, &str, &str)] = &[
        ("pools.toml", include_str!("testdata/pools.toml"), include_str!("testdata/pools.expected")),
        ("tasks.toml", include_str!("testdata/tasks.toml"), include_str!("testdata/tasks.expected")),
        ("graph.toml", include_str!("testdata/graph.toml"), include_str!("testdata/graph.expected")),
        ("graph2.toml", include_str!("testdata/graph2.toml"), include_str!("testdata/graph2.expected")),
        ("more.toml", include_str!("testdata/more.toml"), include_str!("testdata/more.expected")),
        ("more2.toml", include_str!("testdata/more2.toml"), include_str!("testdata/more2.expected")),
        (
            "defaults_bad.toml",
            include_str!("testdata/defaults_bad.toml"),
            include_str!("testdata/defaults_bad.expected"),
        ),
        (
            "defaults_notask.toml",
            include_str!("testdata/defaults_notask.toml"),
            include_str!("testdata/defaults_notask.expected"),
        ),
        ("timeout_tbl.toml", include_str!("testdata/timeout_tbl.toml"), include_str!("testdata/timeout_tbl.expected")),
        (
            "fallback_tbl.toml",
            include_str!("testdata/fallback_tbl.toml"),
            include_str!("testdata/fallback_tbl.expected"),
        ),
        ("run_bad.toml", include_str!("testdata/run_bad.toml"), include_str!("testdata/run_bad.expected")),
        ("run_neg.toml", include_str!("testdata/run_neg.toml"), include_str!("testdata/run_neg.expected")),
        (
            "tasks_nopool.toml",
            include_str!("testdata/tasks_nopool.toml"),
            include_str!("testdata/tasks_nopool.expected"),
        ),
        ("balancer.toml", include_str!("testdata/balancer.toml"), include_str!("testdata/balancer.expected")),
        // Hardening (issue 11): every message in plain words, every number in range,
        // no placeholder inside shell code.
        ("wrong_types.toml", include_str!("testdata/wrong_types.toml"), include_str!("testdata/wrong_types.expected")),
        ("sections.toml", include_str!("testdata/sections.toml"), include_str!("testdata/sections.expected")),
        (
            "unknown_keys.toml",
            include_str!("testdata/unknown_keys.toml"),
            include_str!("testdata/unknown_keys.expected"),
        ),
        ("datetimes.toml", include_str!("testdata/datetimes.toml"), include_str!("testdata/datetimes.expected")),
        ("numbers.toml", include_str!("testdata/numbers.toml"), include_str!("testdata/numbers.expected")),
        ("shell.toml", include_str!("testdata/shell.toml"), include_str!("testdata/shell.expected")),
        (
            "wide_numbers.toml",
            include_str!("testdata/wide_numbers.toml"),
            include_str!("testdata/wide_numbers.expected"),
        ),
    ];
    for (file, text, expected) in cases {
        let err = parse(text, file, Path::new("/base")).expect_err(file);
        assert_eq!(format!("{err}\n"), *expected, "{file}");
    }
}

#[test]
fn relative_cwd_resolves_next_to_the_workflow_and_absolute_stays() {
    let wf = check("[[pool]]\nname = \"p\"\ncommand = [\"{pitboss}\"]\ncwd = \"sub\"\n[[pool]]\nname = \"q\"\ncommand = [\"x\"]\ncwd = \"/abs\"\n").unwrap();
    assert_eq!(wf.pools[0].cwd.as_deref(), Some(Path::new("/base/sub")));
    assert_eq!(wf.pools[0].command[0], "{pitboss}", "a placeholder program is not a path");
    assert_eq!(wf.pools[1].cwd.as_deref(), Some(Path::new("/abs")));
}

#[test]
fn a_consensus_is_read_into_the_task() {
    let wf = check(&format!(
        "{POOL}[[pool]]\nname = \"j\"\ncommand = [\"echo\"]\n[[task]]\nid = \"a\"\nconsensus = {{ replicas = 3, strategy = \"judge\", key = \"/answer\", pools = [\"p\", \"j\"], judge = \"j\" }}\n"
    ))
    .unwrap();
    let spec = wf.tasks[0].consensus.as_ref().expect("a consensus");
    assert_eq!((spec.replicas, spec.quorum(), spec.key.as_deref()), (3, 2, Some("/answer")));
    assert_eq!(spec.replica_pool(1), Some("j"));
    assert_eq!(check(&format!("{POOL}[[task]]\nid = \"a\"\n")).unwrap().tasks[0].consensus, None);
}

#[test]
fn a_bad_consensus_is_refused_at_its_line_and_column() {
    let bad = |consensus: &str| {
        let text = format!("{POOL}[[task]]\nid = \"a\"\nconsensus = {consensus}\n");
        check(&text).unwrap_err().to_string()
    };
    let err = bad("{ replicas = 1, strategy = \"majority\" }");
    assert!(err.contains("wf.toml:7:13: consensus: `replicas` must be 2 to 16, not 1"), "{err}");
    let err = bad("{ replicas = 3, strategy = \"majority\", quorum = 1 }");
    assert!(err.contains("wf.toml:7:13: consensus: `quorum` must be 2 to 3"), "{err}");
    let err = bad("{ replicas = 3, strategy = \"judge\" }");
    assert!(err.contains("needs a `judge` pool"), "{err}");
    let err = bad("{ replicas = 3, strategy = \"vote\" }");
    assert!(err.contains("wf.toml:7:13: consensus: ") && err.contains("vote"), "{err}");
    let err = bad("{ replicas = 3, strategy = \"majority\", extra = 1 }");
    assert!(err.contains("extra"), "{err}");
    let err = bad("{ replicas = -2, strategy = \"majority\" }");
    assert!(err.contains("`replicas` must be 2 to 16, not -2"), "{err}");
    let err = bad("{ replicas = 3, strategy = \"judge\", judge = \"nobody\", pools = [\"p\", \"ghost\"] }");
    assert!(err.contains("wf.toml:7:13: consensus: there is no pool \"ghost\" (the pools are p)"), "{err}");
    assert!(err.contains("there is no pool \"nobody\""), "{err}");
}

#[test]
fn planner_limits_are_read_with_their_ranges_and_words() {
    let pool = "[[pool]]\nname = \"p\"\ncommand = [\"x\"]\n";
    let wf = check(&format!("[planner]\nmax_depth = 3\nmax_children = 5\nmax_tasks = 50\napprove = \"never\"\n{pool}"))
        .expect("valid planner");
    let planner = wf.planner;
    assert_eq!((planner.max_depth, planner.max_children, planner.max_tasks), (3, 5, 50));
    assert_eq!(planner.approve, crate::core::workflow::Approve::Never);
    assert!(check(pool).expect("valid").planner.is_default());
    let err = parse(
        &format!("[planner]\nmax_children = 0\nmax_depth = 101\napprove = \"sometimes\"\ncolour = 1\n{pool}"),
        "w.toml",
        Path::new("/base"),
    )
    .expect_err("bad planner");
    let text = err.to_string();
    assert!(text.contains("w.toml:5:1: unknown key `colour` in [planner]"), "{text}");
    let err = parse(
        &format!("[planner]\nmax_children = 0\nmax_depth = 101\napprove = \"sometimes\"\n{pool}"),
        "w.toml",
        Path::new("/base"),
    )
    .expect_err("bad planner");
    let text = err.to_string();
    assert!(text.contains("w.toml:2:16: planner.max_children must be at least 1, got 0"), "{text}");
    assert!(text.contains("w.toml:3:13: planner.max_depth must be at most 100, got 101"), "{text}");
    assert!(text.contains("w.toml:4:11: planner.approve: unknown value \"sometimes\""), "{text}");
}

/// A submitted file's gate paths mean "next to that file"; a planner's spawned tasks'
/// mean "next to the run's workflow file", as the workflow's own tasks' do.
#[test]
fn gate_paths_of_submitted_and_spawned_tasks_resolve_next_to_their_file() {
    let dir = std::env::temp_dir().join(format!("pitboss-gate-paths-{}", std::process::id()));
    let (wf_dir, sub_dir) = (dir.join("wf"), dir.join("sub"));
    for d in [&wf_dir, &sub_dir] {
        std::fs::create_dir_all(d.join("schemas")).unwrap();
        std::fs::write(d.join("schemas/s.json"), r#"{"type":"object"}"#).unwrap();
    }
    let wf = parse(&format!("{POOL}[[task]]\nid = \"a\"\n"), "wf.toml", &wf_dir).unwrap();
    assert_eq!(wf.folder.as_deref(), Some(wf_dir.as_path()), "the workflow records its folder");
    let gates = "gates = [{ command = [\"./check.sh\"] }, { schema = \"schemas/s.json\" }]\n";
    let program = |t: &crate::core::workflow::TaskSpec| match &t.gates()[0] {
        crate::core::workflow::Gate::Command { command, .. } => command[0].clone(),
        other => panic!("{other:?}"),
    };
    let schema = |t: &crate::core::workflow::TaskSpec| match &t.gates()[1] {
        crate::core::workflow::Gate::Schema { path, .. } => path.clone(),
        other => panic!("{other:?}"),
    };
    let file = sub_dir.join("more.toml");
    let submitted =
        tasks_from_toml(&format!("[[task]]\nid = \"b\"\npool = \"p\"\n{gates}"), &file.display().to_string(), &wf)
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(program(&submitted[0]), sub_dir.join("./check.sh").display().to_string());
    assert_eq!(schema(&submitted[0]), sub_dir.join("schemas/s.json"));
    let spawned = serde_json::json!([{"id": "c", "pool": "p", "gates": [{"command": ["./check.sh"]}, {"schema": "schemas/s.json"}]}]);
    let spawned = tasks_from_json(&spawned, &wf).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(program(&spawned[0]), wf_dir.join("./check.sh").display().to_string());
    assert_eq!(schema(&spawned[0]), wf_dir.join("schemas/s.json"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A log written before the workflow recorded its folder still reads (no `folder`).
#[test]
fn a_workflow_without_a_recorded_folder_still_reads() {
    let wf = check(&format!("{POOL}[[task]]\nid = \"a\"\n")).unwrap();
    let mut value = serde_json::to_value(&wf).unwrap();
    value.as_object_mut().unwrap().remove("folder");
    let old: Workflow = serde_json::from_value(value).unwrap();
    assert_eq!(old.folder, None);
}

#[test]
fn a_broker_is_read_with_its_lease_and_password_file() {
    let text = "[run]\nbroker = \"rediss://ops@cache.example:6380/1\"\nbroker_lease = \"45s\"\nbroker_password_file = \"secrets/pw\"\n\
                [[pool]]\nname = \"p\"\ncapabilities = [\"gpu\"]\n[[task]]\nid = \"a\"\n";
    let wf = check(text).unwrap();
    let broker = wf.broker.as_ref().expect("a broker");
    assert_eq!(broker.url, "rediss://ops@cache.example:6380/1");
    assert_eq!((broker.lease_ms, broker.ttl_ms), (45_000, crate::core::workflow::DEFAULT_TTL_MS));
    assert_eq!(broker.password, PasswordSource::File(PathBuf::from("/base/secrets/pw")));
    // The worker's own CMD runs: a broker pool needs no `command`.
    assert!(wf.pools[0].command.is_empty());
    // Without a file, the password is the environment variable's, if set.
    let wf = check("[run]\nbroker = \"redis://127.0.0.1\"\n[[pool]]\nname = \"p\"\n").unwrap();
    let broker = wf.broker.expect("a broker");
    assert_eq!(broker.password, PasswordSource::Env("PITBOSS_BROKER_PASSWORD".into()));
    assert_eq!((broker.url.as_str(), broker.lease_ms), ("redis://127.0.0.1:6379", 30_000));
    assert_eq!(check(&format!("{POOL}[[task]]\nid = \"a\"\n")).unwrap().broker, None);
}

#[test]
fn a_password_in_the_broker_url_is_refused_at_its_place_and_never_repeated() {
    for url in ["redis://ops:hunter2@h", "amqp://:hunter2@h/v", "redis://h?password=hunter2"] {
        let text = format!("[run]\nbroker = \"{url}\"\n[[pool]]\nname = \"p\"\n");
        let err = check(&text).unwrap_err().to_string();
        assert!(err.starts_with("wf.toml:2:10: run.broker: the broker URL holds a password"), "{err}");
        assert!(err.contains("PITBOSS_BROKER_PASSWORD") && err.contains("broker_password_file"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}

#[test]
fn broker_problems_are_placed() {
    let cases: &[(&str, &str, &str)] = &[
        ("broker_bad.toml", include_str!("testdata/broker_bad.toml"), include_str!("testdata/broker_bad.expected")),
        (
            "broker_missing.toml",
            include_str!("testdata/broker_missing.toml"),
            include_str!("testdata/broker_missing.expected"),
        ),
    ];
    for (file, text, expected) in cases {
        let err = parse(text, file, Path::new("/base")).expect_err(file);
        assert_eq!(format!("{err}\n"), *expected, "{file}");
        assert!(!err.to_string().contains("hunter2"));
    }
}

#[test]
fn a_broker_on_the_command_line_makes_the_file_a_broker_run() {
    let flag = BrokerUrl::parse("redis://10.0.0.5").unwrap();
    let with = |text: &str| parse_with_broker(text, "wf.toml", Path::new("/base"), Some(&flag));
    // Pools without `command`: refused alone (saying why), accepted with --broker,
    // both when the file is read in sections (valid) and whole (a task-less file).
    for text in ["[[pool]]\nname = \"p\"\n[[task]]\nid = \"a\"\n", "[[pool]]\nname = \"p\"\n"] {
        let err = check(text).unwrap_err().to_string();
        assert!(err.contains("has no `command` (only a broker run may leave it out"), "{err}");
        let wf = with(text).unwrap_or_else(|e| panic!("{e}"));
        let broker = wf.broker.expect("the flag's broker");
        assert_eq!((broker.url.as_str(), broker.lease_ms), ("redis://10.0.0.5:6379", 30_000));
        assert_eq!(broker.password, PasswordSource::Env("PITBOSS_BROKER_PASSWORD".into()));
    }
    // The flag's URL replaces the file's; the file's lease and password file stay.
    let text = "[run]\nbroker = \"redis://old\"\nbroker_lease = \"45s\"\nbroker_password_file = \"pw\"\n\
                [[pool]]\nname = \"p\"\n[[task]]\nid = \"a\"\n";
    let broker = with(text).unwrap().broker.unwrap();
    assert_eq!((broker.url.as_str(), broker.lease_ms), ("redis://10.0.0.5:6379", 45_000));
    assert_eq!(broker.password, PasswordSource::File(PathBuf::from("/base/pw")));
    // Every other problem is still reported (an empty command, a password in the file).
    let err = with("[[pool]]\nname = \"p\"\ncommand = [\"\"]\n").unwrap_err().to_string();
    assert!(err.contains("pool \"p\" has an empty command"), "{err}");
    let err = with("[run]\nbroker = \"redis://u:hunter2@h\"\n[[pool]]\nname = \"p\"\n").unwrap_err().to_string();
    assert!(err.contains("holds a password") && !err.contains("hunter2"), "{err}");
}

#[test]
fn a_broker_pool_without_concurrency_takes_every_slot_its_workers_offer() {
    let flag = BrokerUrl::parse("redis://10.0.0.5").unwrap();
    let text = "[[pool]]\nname = \"open\"\n[[pool]]\nname = \"capped\"\nconcurrency = 3\n[[task]]\nid = \"a\"\npool = \"open\"\n";
    let concurrency = |wf: Workflow| wf.pools.iter().map(|p| p.concurrency).collect::<Vec<_>>();
    // Broker run (flag or file): the workers' slots decide, unless the pool caps them.
    let wf = parse_with_broker(text, "wf.toml", Path::new("/base"), Some(&flag)).unwrap();
    assert_eq!(concurrency(wf), [10_000, 3]);
    let in_file = format!("[run]\nbroker = \"redis://10.0.0.5\"\n{text}");
    assert_eq!(concurrency(check(&in_file).unwrap()), [10_000, 3]);
    // A local run keeps the default of one at a time.
    let local = text.replace("name = \"open\"\n", "name = \"open\"\ncommand = [\"true\"]\n");
    let local = local.replace("name = \"capped\"\n", "name = \"capped\"\ncommand = [\"true\"]\n");
    assert_eq!(concurrency(check(&local).unwrap()), [1, 3]);
}
