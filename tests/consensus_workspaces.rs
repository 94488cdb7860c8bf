//! A consensus task's gates run in the winning replica's workspace (issue 17, DESIGN
//! §13), live and after a resume: the winner is read from the log
//! (`consensus_reached`), not from what the resumed manager saw, so a run killed while
//! validating does not run its gates in replica 0's folder, which holds other work.

mod common;

use std::time::Duration;

use common::{kill_pid, task, toml_string, wait_for, wait_within, KillOnPanic, OutputWithin, Scratch};
use serde_json::Value;

#[test]
fn a_resumed_validating_consensus_task_runs_its_gate_in_the_winners_workspace() {
    let s = Scratch::new();
    let d = s.path().display();
    // Replica 0 fails (it abstains), replica 1 answers: replica 1 wins.
    let worker = r#"cat >/dev/null; if [ "$PITBOSS_REPLICA" = 0 ]; then exit 1; fi; echo '{"a": 1}'"#;
    // The gate notes its cwd; its first run then hangs until the manager is killed.
    let gate = format!(
        "pwd >> {d}/gate_cwds; if [ -e {d}/gate.pid ]; then exit 0; fi; \
         echo $$ > {d}/gate.pid.tmp && mv {d}/gate.pid.tmp {d}/gate.pid; exec sleep 1000"
    );
    let wf = format!(
        "[defaults]\nretry = {{ max_attempts = 1 }}\n\
         [[pool]]\nname = \"w\"\ncommand = [\"sh\", \"-c\", {}]\nconcurrency = 2\nworkspace = \"temp\"\n\
         [[task]]\nid = \"q\"\nconsensus = {{ replicas = 2, strategy = \"unanimous\", quorum = 1 }}\n\
         gates = [{{ command = [\"sh\", \"-c\", {}] }}]\n",
        toml_string(worker),
        toml_string(&gate)
    );
    let file = s.write("workflow.toml", &wf);
    let mut manager = s.spawn_run(&file);
    let _guard = KillOnPanic::new(&[manager.id()]);
    let pid_file = s.path().join("gate.pid");
    let gating = wait_for(Duration::from_secs(60), || pid_file.exists());
    kill_pid(manager.id() as i32);
    wait_within(&mut manager, "a SIGKILLed manager");
    let gate_pid: Option<i32> = std::fs::read_to_string(&pid_file).ok().and_then(|p| p.trim().parse().ok());
    if let Some(pid) = gate_pid {
        kill_pid(pid);
    }
    assert!(gating, "the gate did not start");

    let out = s.pitboss().args(["resume", "--headless", "--json"]).arg(s.run_dir()).output_within("pitboss resume");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(out.status.code(), Some(0), "{doc}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(task(&doc, "q")["state"], "completed", "{doc}");
    let winner = s.events().into_iter().find(|e| e["type"] == "consensus_reached").expect("consensus_reached");
    assert_eq!(winner["winner"], 1, "{winner}");
    let cwds = std::fs::read_to_string(s.path().join("gate_cwds")).unwrap_or_default();
    let cwds: Vec<&str> = cwds.lines().collect();
    assert_eq!(cwds.len(), 2, "the gate ran before the kill and after the resume: {cwds:?}");
    for cwd in cwds {
        assert!(cwd.ends_with("workspaces/q+r1"), "a gate ran in {cwd}, not the winning replica's workspace");
    }
}
