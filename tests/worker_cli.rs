//! `pitboss worker` as a real binary against a real Redis (issue 16, plan §7): the
//! test plays the manager through the `Transport` trait, on a fresh run and pool, and
//! checks what arrives: the command's result with its output, a timeout that ends the
//! command's whole process group, secrets redacted, SIGTERM drains (finished or
//! handed back, exit 0), a wrong password refused with exit 2, and a SIGKILLed
//! worker's command ended by its guardian. No process is left behind.

mod broker_common;
mod worker_common;

use std::process::Command;
use std::time::{Duration, Instant};

use broker_common::{run_id, wait_until, OwnRedis};
use pitboss::io::broker::redis::keys;
use pitboss::io::broker::wire::{HandbackWhy, OutcomeStatus, OutputStream, WorkerMsg};
use pitboss::io::broker::{StopWhy, Transport};
use worker_common::*;

#[tokio::test]
async fn a_job_runs_the_local_command_and_its_result_arrives_with_its_output() {
    if !broker_common::redis() {
        return;
    }
    let url = shared_url();
    let m = Manager::start(&url, "wk-run").await;
    let script = r#"read -r line; echo "task says $line" >&2; for i in 1 2 3; do echo "tick $i"; done; printf '{"status":"completed","result":{"id":"%s"}}\n' "$1""#;
    let mut worker = Worker::start(&url, &m.pool, &[], &[], &["sh", "-c", script, "_", "{id}"]);
    m.transport.publish(vec![m.attempt("t1", 30_000)]).await.unwrap();

    m.collect(has_result("t1.1")).await;
    // Output goes on the live stream, the result on the durable one: the worker writes
    // the output first, but one read of each can see the result and not yet the output
    // (1 in ~10 under load), so what is already written is read to the end.
    let msgs = m.read_rest().await;
    let result = outcome(&msgs, "t1.1").unwrap_or_else(|| panic!("no result; stderr:\n{}", worker.stderr_text()));
    assert_eq!(result.status, OutcomeStatus::Success, "{result:?}");
    assert_eq!(result.result, Some(serde_json::json!({"id": "t1"})), "placeholder filled from the job");
    let stderr = result.stderr.as_deref().unwrap_or_default();
    assert!(stderr.contains("task says") && stderr.contains(r#""id":"t1""#), "task JSON on stdin: {stderr:?}");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    assert!(
        msgs.iter().any(|m| matches!(m, WorkerMsg::Started { pid, host: h, .. } if *pid > 0 && *h == host)),
        "a started message with the command's pid and this host: {msgs:?}"
    );
    let streamed: String = msgs
        .iter()
        .filter_map(|m| match m {
            WorkerMsg::Output { stream: OutputStream::Stdout, text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(streamed.contains("tick 1") && streamed.contains("tick 3"), "output streamed live: {streamed:?}");
    // Acked after the result was written.
    assert!(wait_until(LIMIT, || m.pending() == 0), "the job is still pending after its result");

    worker.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(worker.exit_code(), Some(0), "stderr:\n{}", worker.stderr_text());
}

#[tokio::test]
async fn a_timeout_ends_the_commands_whole_process_group() {
    if !broker_common::redis() {
        return;
    }
    let url = shared_url();
    let m = Manager::start(&url, "wk-timeout").await;
    let pid_file = PidFile::new();
    // A grandchild in the background and the shell itself, both named in the file.
    let script = r#"sleep 300 & echo $! >> "$1"; echo $$ >> "$1"; wait"#;
    let mut worker = Worker::start(&url, &m.pool, &[], &[], &pid_file.sh(script));
    m.transport.publish(vec![m.attempt("slow", 800)]).await.unwrap();

    let pids = pid_file.wait(2);
    let _leftovers = Leftovers(pids.clone());
    let msgs = m.collect(has_result("slow.1")).await;
    let result = outcome(&msgs, "slow.1").unwrap_or_else(|| panic!("no result; stderr:\n{}", worker.stderr_text()));
    assert_eq!(result.status, OutcomeStatus::Failure);
    assert_eq!(result.class.as_deref(), Some("timeout"), "{result:?}");
    for pid in pids {
        assert!(wait_until(LIMIT, || !alive(pid)), "process {pid} of the timed-out group still runs");
    }
    worker.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(worker.exit_code(), Some(0));
}

#[tokio::test]
async fn secrets_are_redacted_and_secret_looking_variables_are_not_passed() {
    if !broker_common::redis() {
        return;
    }
    let url = shared_url();
    let m = Manager::start(&url, "wk-secret").await;
    let secret = "s3cr3t-value-for-worker-test";
    let script =
        r#"echo "secret=$PB_WORKER_SECRET other=${OTHER_API_TOKEN:-absent}"; echo "err $PB_WORKER_SECRET" >&2; exit 3"#;
    let env = [("PB_WORKER_SECRET", secret), ("OTHER_API_TOKEN", "tok-must-not-pass")];
    let mut worker = Worker::start(&url, &m.pool, &["--secret-env", "PB_WORKER_SECRET"], &env, &["sh", "-c", script]);
    m.transport.publish(vec![m.attempt("s", 30_000)]).await.unwrap();

    let msgs = m.collect(has_result("s.1")).await;
    let result = outcome(&msgs, "s.1").unwrap_or_else(|| panic!("no result; stderr:\n{}", worker.stderr_text()));
    assert_eq!(result.status, OutcomeStatus::Failure);
    assert_eq!(result.exit_code, Some(3));
    let everything = serde_json::to_string(&msgs).unwrap();
    assert!(!everything.contains(secret), "the secret reached the manager: {everything}");
    assert!(!everything.contains("tok-must-not-pass"), "a secret-looking variable was passed: {everything}");
    let stdout = result.stdout.as_deref().unwrap_or_default();
    assert!(stdout.contains("other=absent") && !stdout.contains("secret=\n"), "{stdout:?}");
    worker.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(worker.exit_code(), Some(0));
}

#[tokio::test]
async fn sigterm_lets_a_running_job_finish_then_exits_0_and_unregisters() {
    if !broker_common::redis() {
        return;
    }
    let url = shared_url();
    let m = Manager::start(&url, "wk-drain").await;
    let mut worker = Worker::start(&url, &m.pool, &[], &[], &["sh", "-c", "sleep 1; echo finished"]);
    m.transport.publish(vec![m.attempt("d", 30_000)]).await.unwrap();
    let first = m.collect(started).await;
    let wid = first
        .iter()
        .find_map(|m| match m {
            WorkerMsg::Started { worker, .. } => Some(worker.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("never started; stderr:\n{}", worker.stderr_text()));
    worker.signal(nix::sys::signal::Signal::SIGTERM);

    let msgs = m.collect(has_result("d.1")).await;
    let result = outcome(&msgs, "d.1").unwrap_or_else(|| panic!("no result; stderr:\n{}", worker.stderr_text()));
    assert_eq!(result.status, OutcomeStatus::Success, "{result:?}");
    assert_eq!(worker.exit_code(), Some(0), "stderr:\n{}", worker.stderr_text());
    assert!(!m.exists(&keys::worker(&wid)), "the registration outlived a clean exit");
}

#[tokio::test]
async fn sigterm_past_the_drain_timeout_hands_the_job_back_and_ends_its_command() {
    if !broker_common::redis() {
        return;
    }
    let url = shared_url();
    let m = Manager::start(&url, "wk-handback").await;
    let pid_file = PidFile::new();
    let mut worker =
        Worker::start(&url, &m.pool, &["--drain-timeout", "300ms"], &[], &pid_file.sh(r#"echo $$ >> "$1"; sleep 300"#));
    m.transport.publish(vec![m.attempt("h", 60_000)]).await.unwrap();
    let pids = pid_file.wait(1);
    let _leftovers = Leftovers(pids.clone());
    worker.signal(nix::sys::signal::Signal::SIGTERM);

    let handed_back =
        |msgs: &[WorkerMsg]| msgs.iter().any(|m| matches!(m, WorkerMsg::Handback { reason: HandbackWhy::Drain, .. }));
    let msgs = m.collect(handed_back).await;
    assert!(handed_back(&msgs), "no handback; got {msgs:?}; stderr:\n{}", worker.stderr_text());
    assert!(outcome(&msgs, "h.1").is_none(), "a handed-back job has no result");
    assert_eq!(worker.exit_code(), Some(0), "stderr:\n{}", worker.stderr_text());
    assert!(wait_until(LIMIT, || !alive(pids[0])), "the drained command still runs");
    assert_eq!(m.pending(), 0, "the handed-back job was not acked");
}

#[tokio::test]
async fn a_sigkilled_workers_command_dies_with_it() {
    if !broker_common::redis() {
        return;
    }
    let url = shared_url();
    let m = Manager::start(&url, "wk-kill9").await;
    let pid_file = PidFile::new();
    // The command leaves its process group, as agents that daemonise do.
    let script = r#"setsid sleep 300 & echo $! >> "$1"; echo $$ >> "$1"; wait"#;
    let mut worker = Worker::start(&url, &m.pool, &[], &[], &pid_file.sh(script));
    m.transport.publish(vec![m.attempt("k", 60_000)]).await.unwrap();
    let pids = pid_file.wait(2);
    let _leftovers = Leftovers(pids.clone());
    worker.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = worker.exit_code();
    for pid in pids {
        assert!(wait_until(LIMIT, || !alive(pid)), "process {pid} outlived its SIGKILLed worker");
    }
}

#[tokio::test]
async fn a_wrong_password_exits_2_with_the_brokers_words() {
    if !broker_common::redis_server() {
        return;
    }
    let own = OwnRedis::start_with(&["--requirepass", "the-right-one"]);
    let mut worker = Worker::start(&own.url(None), "p", &[], &[("PITBOSS_BROKER_PASSWORD", "a-wrong-one")], &["cat"]);
    assert_eq!(worker.exit_code(), Some(2), "stderr:\n{}", worker.stderr_text());
    let stderr = worker.stderr_text();
    assert!(stderr.contains("refused") && stderr.contains("WRONGPASS"), "{stderr}");
    assert!(!stderr.contains("a-wrong-one"), "the password was shown: {stderr}");
}

#[test]
fn a_password_in_the_url_or_a_shell_placeholder_is_refused_before_connecting() {
    let run = |url: &str, cmd: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_pitboss"))
            .args(["worker", "--broker", url, "--pool", "p", "--"])
            .args(cmd)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, stderr) = run("redis://u:hunter22@127.0.0.1:1", &["cat"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("PITBOSS_BROKER_PASSWORD") && !stderr.contains("hunter22"), "{stderr}");
    let (code, stderr) = run("redis://127.0.0.1:1", &["sh", "-c", "echo {payload.x}"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("inside shell code"), "{stderr}");
}

#[tokio::test]
async fn a_stop_from_the_manager_ends_the_command_and_says_stopped() {
    if !broker_common::redis() {
        return;
    }
    let url = shared_url();
    let m = Manager::start(&url, "wk-stop").await;
    let pid_file = PidFile::new();
    // A short TTL makes heartbeats (which bring stops) come every second.
    // It spends before it is stopped: the spend comes back with the stop (issue 17).
    let script = r#"echo '{"pitboss":"usage","cost_usd":0.75}'; echo $$ >> "$1"; sleep 300"#;
    let mut worker = Worker::start(&url, &m.pool, &["--ttl", "3s"], &[], &pid_file.sh(script));
    m.transport.publish(vec![m.attempt("c", 60_000)]).await.unwrap();
    let pids = pid_file.wait(1);
    let _leftovers = Leftovers(pids.clone());
    m.transport.stop("c.1".into(), StopWhy::Cancel).await.unwrap();

    let stopped = |msgs: &[WorkerMsg]| {
        msgs.iter().any(|m| matches!(m, WorkerMsg::Stopped { key, stop: StopWhy::Cancel, .. } if key == "c.1"))
    };
    let msgs = m.collect(stopped).await;
    assert!(stopped(&msgs), "no stopped message: {msgs:?}; stderr:\n{}", worker.stderr_text());
    let spent = msgs.iter().find_map(|m| match m {
        WorkerMsg::Stopped { remains, .. } => {
            remains.controls.first().map(|u| (u["pitboss"].clone(), u["cost_usd"].clone()))
        }
        _ => None,
    });
    assert_eq!(spent, Some((serde_json::json!("usage"), serde_json::json!(0.75))), "{msgs:?}");
    assert!(wait_until(LIMIT, || !alive(pids[0])), "the stopped command still runs");
    worker.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(worker.exit_code(), Some(0));
}

#[tokio::test]
async fn a_result_written_while_the_broker_is_down_is_held_and_delivered_when_it_returns() {
    if !broker_common::redis_server() {
        return;
    }
    let mut own = OwnRedis::start();
    let url = own.url(None);
    let m = Manager::start(&url, "wk-outage").await;
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("go");
    let gate_arg = gate.display().to_string();
    // The command waits for the test's go, so the broker is down when it ends.
    let script = r#"while [ ! -e "$1" ]; do sleep 0.05; done; echo "after the outage""#;
    let mut worker = Worker::start(&url, &m.pool, &[], &[], &["sh", "-c", script, "_", &gate_arg]);
    m.transport.publish(vec![m.attempt("o", 60_000)]).await.unwrap();
    m.collect(started).await;

    own.kill();
    std::fs::write(&gate, b"").unwrap();
    assert!(
        wait_until(LIMIT, || worker.stderr_text().contains("holding results")),
        "the worker did not say it holds its result; stderr:\n{}",
        worker.stderr_text()
    );
    own.restart();
    let deadline = Instant::now() + LIMIT;
    while m.transport.connect().await.is_err() {
        assert!(Instant::now() < deadline, "the manager cannot reconnect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let msgs = m.collect(has_result("o.1")).await;
    let result = outcome(&msgs, "o.1").unwrap_or_else(|| panic!("result lost; stderr:\n{}", worker.stderr_text()));
    assert_eq!(result.result, Some(serde_json::json!("after the outage")));
    worker.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(worker.exit_code(), Some(0), "stderr:\n{}", worker.stderr_text());
}

/// The ACL line documented for workers (as in tests/redis_transport.rs).
const WORKER_ACL: &str = "resetkeys ~pitboss:* resetchannels &pitboss:* -@all +@connection \
    +xreadgroup +xadd +xack +xclaim +xinfo|groups +set +del +zadd +zrem +zrangebyscore +pexpire +mget +ping";

/// Makes user `name` with password `password` and the worker ACL, minus `without`.
fn acl_user(own: &OwnRedis, name: &str, password: &str, without: &[&str]) {
    let mut conn = redis::Client::open(own.url(None)).unwrap().get_connection().unwrap();
    let mut acl = redis::cmd("ACL");
    acl.arg("SETUSER").arg(name).arg("on").arg(format!(">{password}"));
    for word in WORKER_ACL.split_whitespace().filter(|w| !without.contains(w)) {
        acl.arg(word);
    }
    acl.query::<()>(&mut conn).unwrap();
}

#[tokio::test]
async fn an_acl_limited_user_is_enough_and_the_password_never_reaches_the_command() {
    if !broker_common::redis_server() {
        return;
    }
    let own = OwnRedis::start();
    acl_user(&own, "pw", "worker-secret-pw", &[]);
    let m = Manager::start(&own.url(None), "wk-acl").await;
    let script = r#"echo "password=${PITBOSS_BROKER_PASSWORD:-none}""#;
    let mut worker = Worker::start(
        &own.url(Some("pw")),
        &m.pool,
        &[],
        &[("PITBOSS_BROKER_PASSWORD", "worker-secret-pw")],
        &["sh", "-c", script],
    );
    m.transport.publish(vec![m.attempt("a", 30_000)]).await.unwrap();
    let msgs = m.collect(has_result("a.1")).await;
    let result = outcome(&msgs, "a.1").unwrap_or_else(|| panic!("no result; stderr:\n{}", worker.stderr_text()));
    assert_eq!(result.result, Some(serde_json::json!("password=none")), "{result:?}");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", worker.pid())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains("worker-secret-pw"));
    worker.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(worker.exit_code(), Some(0), "stderr:\n{}", worker.stderr_text());
}

#[tokio::test]
async fn an_acl_refusal_exits_2_with_the_brokers_words() {
    if !broker_common::redis_server() {
        return;
    }
    let own = OwnRedis::start();
    acl_user(&own, "weak", "weak-secret-pw", &["+set"]);
    let mut worker =
        Worker::start(&own.url(Some("weak")), "p", &[], &[("PITBOSS_BROKER_PASSWORD", "weak-secret-pw")], &["cat"]);
    assert_eq!(worker.exit_code(), Some(2), "stderr:\n{}", worker.stderr_text());
    let stderr = worker.stderr_text();
    assert!(stderr.contains("refused user weak") && stderr.contains("no permissions"), "{stderr}");
}

#[tokio::test]
async fn concurrency_runs_jobs_side_by_side_and_a_missing_capability_hands_back() {
    if !broker_common::redis() {
        return;
    }
    let url = shared_url();
    let m = Manager::start(&url, "wk-conc").await;
    let dir = tempfile::tempdir().unwrap();
    let (mark, mark_arg) = (dir.path().join("marks"), dir.path().join("marks").display().to_string());
    // Each job notes itself, then waits until two have (only possible side by side).
    let script = r#"echo "$2" >> "$1"; while [ "$(wc -l < "$1")" -lt 2 ]; do sleep 0.05; done; echo ok"#;
    let mut worker = Worker::start(
        &url,
        &m.pool,
        &["--concurrency", "2", "--capability", "gpu"],
        &[],
        &["sh", "-c", script, "_", &mark_arg, "{id}"],
    );
    let mut needs_more = m.attempt("x", 30_000);
    needs_more.capabilities = vec!["gpu".into(), "fpga".into()];
    m.transport.publish(vec![m.attempt("a", 30_000), m.attempt("b", 30_000), needs_more]).await.unwrap();
    let all = |msgs: &[WorkerMsg]| {
        outcome(msgs, "a.1").is_some()
            && outcome(msgs, "b.1").is_some()
            && msgs.iter().any(|m| matches!(m, WorkerMsg::Handback { key, .. } if key == "x.1"))
    };
    let msgs = m.collect(all).await;
    assert!(all(&msgs), "got {msgs:?}; stderr:\n{}", worker.stderr_text());
    assert!(msgs
        .iter()
        .any(|m| matches!(m, WorkerMsg::Handback { key, reason: HandbackWhy::LacksCapability, .. } if key == "x.1")));
    for key in ["a.1", "b.1"] {
        assert_eq!(outcome(&msgs, key).unwrap().status, OutcomeStatus::Success);
    }
    let _ = std::fs::read_to_string(&mark).unwrap();
    worker.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(worker.exit_code(), Some(0));
}

#[tokio::test]
async fn a_planners_spawn_lines_travel_in_its_result() {
    if !broker_common::redis() {
        return;
    }
    let url = shared_url();
    let m = Manager::start(&url, "wk-plan").await;
    let script = r#"echo '{"pitboss":"spawn","tasks":[{"id":"child","pool":"w"}]}'; echo planned"#;
    let mut worker = Worker::start(&url, &m.pool, &[], &[], &["sh", "-c", script]);
    m.transport.publish(vec![m.attempt("p", 30_000)]).await.unwrap();
    let msgs = m.collect(has_result("p.1")).await;
    let result = outcome(&msgs, "p.1").unwrap_or_else(|| panic!("no result; stderr:\n{}", worker.stderr_text()));
    assert_eq!(result.status, OutcomeStatus::Success);
    assert_eq!(
        result.spawn,
        Some(pitboss::io::broker::wire::SpawnLines::Tasks(vec![serde_json::json!({"id": "child", "pool": "w"})])),
        "{result:?}"
    );
    worker.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(worker.exit_code(), Some(0));
}

#[tokio::test]
async fn a_run_that_ends_while_its_queue_is_read_does_not_end_the_worker() {
    if !broker_common::redis_server() {
        return;
    }
    // A private server: the test waits until the worker's read is the one blocked client.
    let own = OwnRedis::start();
    let url = own.url(None);
    let first = Manager::start(&url, "wk-end1").await;
    let mut worker = Worker::start(&url, &first.pool, &[], &[], &["echo", "ok"]);
    first.transport.publish(vec![first.attempt("a", 30_000)]).await.unwrap();
    assert!(outcome(&first.collect(has_result("a.1")).await, "a.1").is_some(), "{}", worker.stderr_text());
    let mut admin = redis::Client::open(url.as_str()).unwrap().get_connection().unwrap();
    let blocked_read = |admin: &mut redis::Connection| {
        let clients: String = redis::cmd("CLIENT").arg("LIST").query(admin).unwrap();
        clients.lines().any(|c| c.contains("cmd=xreadgroup") && c.contains("flags=b"))
    };
    assert!(wait_until(LIMIT, || blocked_read(&mut admin)), "the worker never blocked on the queue");
    // Its keys go while the worker's read waits on them.
    first.transport.finish(true).await.unwrap();
    let second = Manager::start_on(&url, run_id("wk-end2"), first.pool.clone()).await;
    second.transport.publish(vec![second.attempt("b", 30_000)]).await.unwrap();
    let msgs = second.collect(has_result("b.1")).await;
    assert!(outcome(&msgs, "b.1").is_some(), "the worker stopped serving; stderr:\n{}", worker.stderr_text());
    worker.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(worker.exit_code(), Some(0), "stderr:\n{}", worker.stderr_text());
    // A run that ended is the normal case: nothing on the worker's terminal looks
    // like a broker failure.
    let stderr = worker.stderr_text();
    assert!(!stderr.contains("UNBLOCKED") && !stderr.contains("unexpected answer"), "{stderr}");
}
