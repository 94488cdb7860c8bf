//! The codex, gemini, aider and llm presets over their real CLIs' recorded output
//! (`tests/fixtures/agents/NAME/*.out`, captured against a local API stand-in; see
//! that folder's README): the envelope, usage, session id and progress lines each
//! reader derives, the argv each preset builds, and readers fed garbage or a cut-off
//! stream (never a panic, at most one envelope).

use std::path::PathBuf;

use pitboss::core::agents::carried::Carried;
use pitboss::core::agents::{Call, Preset};
use pitboss::core::usage::{parse_usage, Usage};
use proptest::prelude::*;
use serde_json::{json, Value};

/// What a reader said over one recorded attempt.
struct Read {
    /// Every protocol line, in order (the envelope last, if any).
    lines: Vec<Value>,
}

impl Read {
    fn of(preset: Preset, name: &str) -> Read {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agents").join(preset.name());
        let out = std::fs::read_to_string(dir.join(format!("{name}.out"))).expect("fixture stdout");
        let exit = std::fs::read_to_string(dir.join(format!("{name}.exit"))).expect("fixture exit code");
        let exit: i32 = exit.trim().parse().expect("exit code is a number");
        Read::over(preset, &out, Some(exit))
    }

    fn over(preset: Preset, out: &str, exit: Option<i32>) -> Read {
        let mut reader = preset.reader();
        let mut lines: Vec<Value> = out.lines().flat_map(|l| reader.line(l)).collect();
        lines.extend(reader.end(exit));
        Read { lines }
    }

    fn control(&self, kind: &str) -> Vec<&Value> {
        self.lines.iter().filter(|l| l["pitboss"] == kind).collect()
    }

    fn progress(&self) -> Vec<&str> {
        self.control("progress").iter().filter_map(|l| l["msg"].as_str()).collect()
    }

    fn sessions(&self) -> Vec<&str> {
        self.control("session").iter().filter_map(|l| l["id"].as_str()).collect()
    }

    /// (input, output) tokens summed over the usage lines, and the cost if any said one.
    fn usage(&self) -> (u64, u64, Option<f64>) {
        let lines = self.control("usage");
        let sum = |k: &str| lines.iter().map(|l| l[k].as_u64().expect("token counts are numbers")).sum();
        let cost = lines.iter().filter_map(|l| l.get("cost_usd")).map(|c| c.as_f64().unwrap()).reduce(|a, b| a + b);
        (sum("input_tokens"), sum("output_tokens"), cost)
    }

    /// The one envelope, which must be the last line.
    fn envelope(&self) -> &Value {
        let envelopes: Vec<_> = self.lines.iter().filter(|l| l.get("status").is_some()).collect();
        assert_eq!(envelopes.len(), 1, "one envelope expected: {:#?}", self.lines);
        assert!(self.lines.last().unwrap().get("status").is_some(), "the envelope comes last: {:#?}", self.lines);
        envelopes[0]
    }

    fn completed(&self) -> &str {
        let env = self.envelope();
        assert_eq!(env["status"], "completed", "{env}");
        env["result"].as_str().expect("the result is text")
    }

    fn failed(&self) -> &str {
        let env = self.envelope();
        assert_eq!(env["status"], "failed", "{env}");
        env["error"].as_str().expect("the error is text")
    }
}

fn call<'a>(prompt: &'a str, model: Option<&'a str>, args: &'a [String], resume: Option<&'a str>) -> Call<'a> {
    Call { prompt, model, args, resume }
}

fn strings(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

// ---- codex -----------------------------------------------------------------------

#[test]
fn codex_success_gives_the_last_agent_message_tokens_and_the_thread() {
    let r = Read::of(Preset::Codex, "success");
    assert_eq!(r.completed(), "STANDIN-OK items=4");
    assert_eq!(r.sessions(), ["01a22288-e7bf-7951-8c33-91c187ceb4c6"]);
    assert_eq!(r.usage(), (100, 20, None), "codex gives no dollar figure, so none is invented");
    // The non-fatal "Model metadata … not found" item is a warning, not the failure.
    assert!(r.progress().iter().any(|p| p.starts_with("codex warning: Model metadata")), "{:?}", r.progress());
}

#[test]
fn codex_api_error_fails_with_the_apis_own_message() {
    let r = Read::of(Preset::Codex, "api-error");
    assert_eq!(r.failed(), "stand-in refuses");
    assert_eq!(r.sessions().len(), 1);
    assert!(r.control("usage").is_empty(), "a failed turn reports no usage");
}

#[test]
fn codex_turn_failed_decides_even_when_the_exit_code_says_success() {
    let out = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agents/codex/api-error.out"),
    )
    .unwrap();
    assert_eq!(Read::over(Preset::Codex, &out, Some(0)).failed(), "stand-in refuses");
}

#[test]
fn codex_commands_are_named_as_progress() {
    let r = Read::of(Preset::Codex, "tool-call");
    assert!(r.progress().contains(&"command: /bin/bash -lc 'touch standin-file'"), "{:?}", r.progress());
    assert_eq!(r.completed(), "STANDIN-OK items=6");
    assert_eq!(r.usage(), (200, 40, None));
    // A failed or declined command (a sandbox denial) gets a line of its own.
    let failed = r#"{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"/bin/bash -lc 'touch f'","aggregated_output":"touch: cannot touch 'f': Read-only file system\n","exit_code":1,"status":"failed"}}"#;
    let r = Read::over(Preset::Codex, failed, Some(0));
    assert_eq!(r.progress(), ["command failed, exit 1: /bin/bash -lc 'touch f'"]);
}

#[test]
fn codex_sandboxed_tool_call_still_completes() {
    // Read-only sandbox: codex 0.171 showed no command item at all and answered.
    let r = Read::of(Preset::Codex, "tool-denied");
    assert_eq!(r.completed(), "STANDIN-OK items=6");
}

#[test]
fn codex_resume_reports_the_same_thread_and_only_the_growth_of_its_running_total() {
    let r = Read::of(Preset::Codex, "resume");
    assert_eq!(r.sessions(), ["01a22288-e7bf-7951-8c33-91c187ceb4c6"], "the thread resumed is the one started");
    assert_eq!(r.completed(), "STANDIN-OK items=6", "the stand-in saw the earlier turn's items");
    // Totals within one attempt: each line says what grew since the last.
    let two = "{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":200,\"output_tokens\":40}}\n\
               {\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":300,\"output_tokens\":60}}";
    assert_eq!(Read::over(Preset::Codex, two, Some(0)).usage(), (300, 60, None));
}

#[test]
fn codex_resumed_attempt_counts_only_what_grew_over_the_earlier_attempts() {
    // `resume` continued `success`'s thread: its 200/40 is the thread's total, 100/20
    // of which the first attempt recorded already.
    let (first, resumed) = (Read::of(Preset::Codex, "success"), Read::of(Preset::Codex, "resume"));
    let (input, output, _) = first.usage();
    let mut carried = Carried::new(Usage { input_tokens: input, output_tokens: output, ..Usage::default() });
    let new: Vec<Usage> = resumed.control("usage").iter().map(|l| carried.take(&parse_usage(l).unwrap())).collect();
    let sum = |f: fn(&Usage) -> u64| new.iter().map(f).sum::<u64>();
    assert_eq!((sum(|u| u.input_tokens), sum(|u| u.output_tokens)), (100, 20), "{new:?}");
    assert!(Preset::Codex.usage_is_session_total());
    // gemini's resumed run reports its own usage only (fixture README): nothing to take out.
    assert!(!Preset::Gemini.usage_is_session_total() && !Preset::Claude.usage_is_session_total());
}

#[test]
fn codex_killed_without_a_turn_says_nothing_or_its_last_error() {
    let out = "{\"type\":\"thread.started\",\"thread_id\":\"t1\"}\n{\"type\":\"turn.started\"}";
    let r = Read::over(Preset::Codex, out, None);
    assert_eq!(r.sessions(), ["t1"]);
    assert!(r.lines.iter().all(|l| l.get("status").is_none()), "left to the runner's rule: {:?}", r.lines);
    let out = format!("{out}\n{{\"type\":\"error\",\"message\":\"Reconnecting... 5/5\"}}");
    assert_eq!(Read::over(Preset::Codex, &out, Some(1)).failed(), "Reconnecting... 5/5");
}

#[test]
fn codex_argv_has_model_args_and_the_prompt_after_a_double_dash() {
    let args = strings(&["-s", "workspace-write"]);
    let argv = Preset::Codex.argv(&call("-fix it", Some("gpt-5"), &args, None));
    assert_eq!(
        argv,
        strings(&[
            "codex",
            "exec",
            "--json",
            "--skip-git-repo-check",
            "-m",
            "gpt-5",
            "-s",
            "workspace-write",
            "--",
            "-fix it"
        ])
    );
    let argv = Preset::Codex.argv(&call("continue", None, &[], Some("01a2")));
    assert_eq!(
        argv,
        strings(&["codex", "exec", "resume", "--json", "--skip-git-repo-check", "--", "01a2", "continue"])
    );
    assert!(Preset::Codex.resumes_sessions());
}

// ---- gemini ----------------------------------------------------------------------

#[test]
fn gemini_success_gives_the_answer_tokens_and_the_session() {
    let r = Read::of(Preset::Gemini, "success");
    assert_eq!(r.completed(), "STANDIN-OK contents=1");
    assert_eq!(r.sessions(), ["226a8121-dbd3-4387-80c9-9fdaa44814aa"]);
    assert_eq!(r.usage(), (100, 20, None));
}

#[test]
fn gemini_api_error_fails_with_the_apis_message_whatever_the_exit_code() {
    let r = Read::of(Preset::Gemini, "api-error");
    assert_eq!(r.failed(), "API Error 400: stand-in refuses");
    let out = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agents/gemini/api-error.out"),
    )
    .unwrap();
    assert_eq!(Read::over(Preset::Gemini, &out, Some(0)).failed(), "API Error 400: stand-in refuses");
}

#[test]
fn gemini_tool_calls_are_named_and_unoffered_tools_said() {
    let r = Read::of(Preset::Gemini, "tool-call");
    assert_eq!(r.progress(), ["tool run_shell_command: touch standin-file"]);
    assert_eq!(r.completed(), "STANDIN-OK contents=3");
    assert_eq!(r.usage(), (200, 40, None));
    let r = Read::of(Preset::Gemini, "tool-not-registered");
    let p = r.progress();
    assert_eq!(p[0], "tool run_shell_command: touch standin-file");
    assert!(p[1].starts_with("tool run_shell_command failed: Tool \"run_shell_command\" not found"), "{p:?}");
    assert_eq!(r.completed(), "STANDIN-OK contents=3");
}

#[test]
fn gemini_resume_keeps_the_session_and_deltas_concatenate() {
    let r = Read::of(Preset::Gemini, "resume");
    assert_eq!(r.sessions(), ["226a8121-dbd3-4387-80c9-9fdaa44814aa"]);
    assert_eq!(r.completed(), "STANDIN-OK contents=3");
    let deltas = r#"{"type":"message","role":"assistant","content":"  Hello, ","delta":true}
{"type":"message","role":"user","content":"not me"}
{"type":"message","role":"assistant","content":"world  ","delta":true}"#;
    assert_eq!(Read::over(Preset::Gemini, deltas, Some(0)).completed(), "Hello, world");
}

#[test]
fn gemini_without_a_result_record_leaves_a_failing_exit_to_the_runner() {
    let init = r#"{"type":"init","session_id":"s1","model":"m"}"#;
    let r = Read::over(Preset::Gemini, init, Some(41));
    assert!(r.lines.iter().all(|l| l.get("status").is_none()), "{:?}", r.lines);
}

#[test]
fn gemini_argv_has_model_resume_args_and_one_prompt_argument() {
    let args = strings(&["--approval-mode", "yolo"]);
    let argv = Preset::Gemini.argv(&call("-v is text", Some("gemini-2.5-flash"), &args, Some("226a")));
    assert_eq!(
        argv,
        strings(&[
            "gemini",
            "--output-format",
            "stream-json",
            "--skip-trust",
            "-m",
            "gemini-2.5-flash",
            "--resume",
            "226a",
            "--approval-mode",
            "yolo",
            "--prompt=-v is text",
        ])
    );
    assert!(Preset::Gemini.resumes_sessions());
}

// ---- aider -----------------------------------------------------------------------

#[test]
fn aider_success_gives_the_reply_between_header_and_tokens_with_its_cost() {
    let r = Read::of(Preset::Aider, "success");
    assert_eq!(r.completed(), "STANDIN-OK messages=8");
    assert_eq!(r.usage(), (100, 20, Some(0.0006)));
    assert!(r.sessions().is_empty());
}

#[test]
fn aider_api_error_fails_although_it_exits_zero() {
    let r = Read::of(Preset::Aider, "api-error");
    assert_eq!(r.failed(), "litellm.BadRequestError: OpenAIException - stand-in refuses");
    assert!(r.control("usage").is_empty());
}

#[test]
fn aider_edits_and_commits_are_progress_and_not_the_result() {
    let r = Read::of(Preset::Aider, "edit");
    assert_eq!(r.progress(), ["edit: hello.txt"]);
    assert!(r.completed().starts_with("I will create the file."), "{}", r.completed());
    let r = Read::of(Preset::Aider, "edit-git");
    assert_eq!(r.progress(), ["edit: hello.txt", "commit fafa1ac I will create the file."]);
    let result = r.completed();
    assert!(result.starts_with("I will create the file.") && !result.contains("Repo-map"), "{result}");
    assert!(!result.contains("Added .aider"), "notices before the header are not the reply: {result}");
}

#[test]
fn aider_token_counts_in_thousands_and_an_error_then_an_answer() {
    let out =
        "Aider v0.86.2\n\nok\n\nTokens: 1.2k sent, 3.4k cache write, 12k received. Cost: $0.12 message, $0.50 session.";
    assert_eq!(Read::over(Preset::Aider, out, Some(0)).usage(), (1200, 12000, Some(0.12)));
    // aider retried after an error and then answered: the answer stands.
    let out = "Aider v0.86.2\n\nlitellm.RateLimitError: slow down\nRetrying in 0.2 seconds...\nok\n\nTokens: 5 sent, 1 received.";
    let r = Read::over(Preset::Aider, out, Some(0));
    assert_eq!(r.usage(), (5, 1, None));
    assert!(r.completed().ends_with("ok"), "{}", r.completed());
}

#[test]
fn aider_silent_exit_zero_is_a_failure_naming_its_last_line() {
    let r = Read::over(Preset::Aider, "Aider v0.86.2\nModel: x\n", Some(0));
    assert_eq!(r.failed(), "aider gave no reply: Model: x");
}

#[test]
fn aider_argv_says_yes_always_model_args_and_one_message_argument() {
    let args = strings(&["--no-git"]);
    let argv = Preset::Aider.argv(&call("-fix", Some("openai/x"), &args, None));
    assert!(argv.contains(&"--yes-always".to_string()) && !argv.contains(&"--yes".to_string()), "{argv:?}");
    let tail = &argv[argv.len() - 4..];
    assert_eq!(tail, strings(&["--model", "openai/x", "--no-git", "--message=-fix"]));
    assert!(!Preset::Aider.resumes_sessions());
}

// ---- llm -------------------------------------------------------------------------

#[test]
fn llm_stdout_is_the_reply() {
    for name in ["success", "usage", "dash-prompt"] {
        assert_eq!(Read::of(Preset::Llm, name).completed(), "STANDIN-OK messages=1", "{name}");
    }
    // Tool calls and usage go to stderr: stdout is still just the reply.
    let r = Read::of(Preset::Llm, "tool-call");
    assert_eq!(r.completed(), "STANDIN-OK messages=3");
    assert_eq!(r.lines.len(), 1);
}

#[test]
fn llm_api_error_is_left_to_the_runner_which_quotes_stderr() {
    let r = Read::of(Preset::Llm, "api-error");
    assert!(r.lines.is_empty(), "{:?}", r.lines);
}

#[test]
fn llm_keeps_the_tail_of_a_runaway_reply() {
    let out: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    let result = Read::over(Preset::Llm, &out, Some(0)).completed().to_string();
    assert!(result.ends_with("line 19999"), "{}", &result[result.len() - 40..]);
    assert!(result.len() <= pitboss::core::protocol::TEXT_RESULT_CAP + 4, "{}", result.len());
}

#[test]
fn llm_argv_has_model_args_and_the_prompt_after_a_double_dash() {
    let args = strings(&["-o", "temperature", "0"]);
    let argv = Preset::Llm.argv(&call("-v", Some("standin"), &args, None));
    assert_eq!(argv, strings(&["llm", "prompt", "-m", "standin", "-o", "temperature", "0", "--", "-v"]));
    assert_eq!(Preset::Llm.argv(&call("hi", None, &[], None)), strings(&["llm", "prompt", "--", "hi"]));
    assert!(!Preset::Llm.resumes_sessions());
}

// ---- every reader ----------------------------------------------------------------

const MINE: [Preset; 4] = [Preset::Codex, Preset::Gemini, Preset::Aider, Preset::Llm];

#[test]
fn every_fixture_cut_at_every_line_gives_at_most_one_envelope() {
    for preset in MINE {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agents").join(preset.name());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "out") {
                continue;
            }
            let out = std::fs::read_to_string(&path).unwrap();
            let lines: Vec<&str> = out.lines().collect();
            for cut in 0..=lines.len() {
                for exit in [Some(0), Some(1), None] {
                    let r = Read::over(preset, &lines[..cut].join("\n"), exit);
                    let n = r.lines.iter().filter(|l| l.get("status").is_some()).count();
                    assert!(n <= 1, "{}: cut {cut}, exit {exit:?}: {:?}", path.display(), r.lines);
                    assert!(r.lines.iter().all(is_protocol_line), "{}: {:?}", path.display(), r.lines);
                }
            }
        }
    }
}

/// A line the rest of pitboss understands: a control line or an envelope.
fn is_protocol_line(l: &Value) -> bool {
    match (l.get("pitboss").and_then(Value::as_str), l.get("status").and_then(Value::as_str)) {
        (Some("progress"), None) => l["msg"].is_string(),
        (Some("session"), None) => l["id"].as_str().is_some_and(|id| !id.is_empty()),
        (Some("usage"), None) => {
            l["input_tokens"].is_u64()
                && l["output_tokens"].is_u64()
                && l.get("cost_usd").is_none_or(|c| c.as_f64().is_some_and(|c| c >= 0.0))
        }
        (None, Some("completed")) => l["result"].is_string(),
        (None, Some("failed")) => l["error"].as_str().is_some_and(|e| !e.is_empty()),
        _ => false,
    }
}

fn arbitrary_line() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,80}",
        // JSON events with the right keys and wrong shapes.
        (
            prop::sample::select(vec![
                "thread.started",
                "item.started",
                "item.completed",
                "turn.completed",
                "turn.failed",
                "error",
                "init",
                "message",
                "tool_use",
                "tool_result",
                "result",
            ]),
            prop::sample::select(vec![
                json!(null),
                json!(1),
                json!("x"),
                json!([]),
                json!({}),
                json!({"type": "command_execution"}),
                json!({"message": 5}),
                json!({"input_tokens": -1, "output_tokens": 1e300}),
                json!({"type": "agent_message", "text": ["x"]}),
                json!("[API Error: {\"error\":{}}]"),
            ]),
        )
            .prop_map(|(t, v)| {
                json!({"type": t, "item": v, "usage": v, "error": v, "stats": v, "thread_id": v, "session_id": v,
                       "role": "assistant", "content": v, "parameters": v, "status": v, "message": v})
                .to_string()
            }),
        // aider's text lines.
        prop::sample::select(vec![
            "Aider v0.86.2",
            "",
            "Tokens: 1.2k sent, x received.",
            "Tokens: 99999999999999999k sent, 1 received.",
            "Tokens: 1 sent, 2 received. Cost: $-1 message",
            "Tokens: 1 sent, 2 received. Cost: $NaN message",
            "litellm.X Error: y",
            "litellm.APIError:",
            "Applied edit to ",
            "Commit ",
        ])
        .prop_map(String::from),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_lines_never_panic_and_yield_only_protocol_lines(
        lines in prop::collection::vec(arbitrary_line(), 0..30),
        exit in prop::option::of(-1i32..3),
    ) {
        for preset in MINE {
            let r = Read::over(preset, &lines.join("\n"), exit);
            let n = r.lines.iter().filter(|l| l.get("status").is_some()).count();
            prop_assert!(n <= 1, "{:?}: {:?}", preset, r.lines);
            for l in &r.lines {
                prop_assert!(is_protocol_line(l), "{:?}: {}", preset, l);
            }
        }
    }
}
