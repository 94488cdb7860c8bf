//! The wire checks: what is refused, in which words, and what reads back.

use super::*;

pub(crate) fn attempt() -> AttemptMsg {
    AttemptMsg {
        run: "r1".into(),
        pool: "p".into(),
        key: "t.1".into(),
        task: "t".into(),
        attempt: 1,
        replica: None,
        dispatch: "d1".into(),
        job: serde_json::json!({"id": "t"}),
        timeout_ms: 1000,
        stall_after_ms: None,
        stall_kill_after_ms: None,
        kill_grace_ms: 100,
        lease_ms: 30_000,
        sent_ms: 1,
        deadline_ms: 2,
        capabilities: vec![],
    }
}

#[test]
fn round_trips_with_version() {
    let text = encode(&attempt()).unwrap();
    assert!(text.starts_with("{\"v\":1,"), "{text}");
    assert_eq!(decode::<AttemptMsg>(text.as_bytes()).unwrap(), attempt());
    let msg = WorkerMsg::Output {
        key: "t.1".into(),
        worker: "h:1:ab".into(),
        stream: OutputStream::Stderr,
        text: "hi".into(),
    };
    let text = encode(&msg).unwrap();
    assert!(text.contains("\"t\":\"output\""), "{text}");
    assert_eq!(decode::<WorkerMsg>(text.as_bytes()).unwrap(), msg);
}

#[test]
fn garbage_gives_clear_errors() {
    assert!(matches!(decode::<WorkerMsg>(b"\xff\x00"), Err(WireError::Malformed(_))));
    assert!(matches!(decode::<WorkerMsg>(b"[1,2]"), Err(WireError::Malformed(_))));
    let err = decode::<WorkerMsg>(br#"{"v":2,"t":"heartbeat"}"#).unwrap_err();
    assert_eq!(err.to_string(), "message version 2 is not the 1 this pitboss speaks");
    let err = decode::<WorkerMsg>(br#"{"t":"heartbeat"}"#).unwrap_err();
    assert!(matches!(err, WireError::Version { .. }), "{err}");
    let err = decode::<WorkerMsg>(br#"{"v":1,"t":"launch_missiles"}"#).unwrap_err();
    assert!(err.to_string().contains("launch_missiles"), "{err}");
    let err = decode::<WorkerMsg>(
        br#"{"v":1,"t":"started","key":"k","dispatch":"d","worker":"w","host":"h","pid":-1,"started_ms":0}"#,
    )
    .unwrap_err();
    assert!(matches!(err, WireError::Malformed(_)), "{err}");
}

#[test]
fn numbers_and_sizes_are_checked() {
    let mut a = attempt();
    a.timeout_ms = u64::MAX;
    assert!(matches!(encode(&a), Err(WireError::Invalid { field: "timeout_ms", .. })));
    let mut a = attempt();
    a.attempt = 0;
    let text = serde_json::to_string(&a).unwrap().replacen('{', "{\"v\":1,", 1);
    assert!(matches!(decode::<AttemptMsg>(text.as_bytes()), Err(WireError::Invalid { field: "attempt", .. })));
    let big = WorkerMsg::Output {
        key: "k".into(),
        worker: "w".into(),
        stream: OutputStream::Stdout,
        text: "x".repeat(MAX_OUTPUT_TEXT + 1),
    };
    assert!(matches!(encode(&big), Err(WireError::Invalid { field: "text", .. })));
    let huge = vec![b' '; MAX_MESSAGE + 1];
    assert!(matches!(decode::<WorkerMsg>(&huge), Err(WireError::TooLarge { .. })));
    let mut a = attempt();
    a.key = "t\u{1b}[2J".into();
    assert!(matches!(encode(&a), Err(WireError::Invalid { field: "key", .. })));
}

#[test]
fn stop_words_round_trip() {
    for w in [StopWhy::Cancel, StopWhy::Interrupt, StopWhy::Timeout, StopWhy::Stalled, StopWhy::Superseded] {
        assert_eq!(StopWhy::parse(w.as_str()), Some(w));
    }
    assert_eq!(StopWhy::parse("nope"), None);
}

/// A result as a worker before issue 17's control lines wrote it: no `controls`.
const OLD_RESULT: &[u8] = br#"{"v":1,"t":"result","key":"t.1","dispatch":"d1","worker":"h:1:ab",
    "outcome":{"status":"success","result":{"ok":true},"exit_code":0,"duration_ms":5,"stdout":"hi"}}"#;

#[test]
fn an_older_workers_result_and_stop_without_control_lines_still_decode() {
    let msg = decode::<WorkerMsg>(OLD_RESULT).unwrap();
    let WorkerMsg::Result { outcome, .. } = msg else { panic!("{msg:?}") };
    assert_eq!(outcome.result, Some(serde_json::json!({"ok": true})));
    assert!(outcome.controls.is_empty());
    let stopped = br#"{"v":1,"t":"stopped","key":"t.1","dispatch":"d1","worker":"w","stop":"cancel",
        "remains":{"duration_ms":3}}"#;
    let Ok(WorkerMsg::Stopped { remains, .. }) = decode::<WorkerMsg>(stopped) else { panic!("no stop") };
    assert!(remains.controls.is_empty());
    // And a result without control lines is written as before (an older manager reads it).
    let WorkerMsg::Result { key, dispatch, worker, outcome } = decode::<WorkerMsg>(OLD_RESULT).unwrap() else {
        unreachable!()
    };
    let text = encode(&WorkerMsg::Result { key, dispatch, worker, outcome }).unwrap();
    assert!(!text.contains("controls"), "{text}");
}

#[test]
fn control_lines_round_trip_in_order_and_are_checked() {
    let Ok(WorkerMsg::Result { key, dispatch, worker, mut outcome }) = decode::<WorkerMsg>(OLD_RESULT) else {
        panic!("the old result decodes")
    };
    outcome.controls = vec![
        serde_json::json!({"pitboss": "session", "id": "S1"}),
        serde_json::json!({"pitboss": "usage", "cost_usd": 0.5}),
        serde_json::json!({"pitboss": "flag", "flag": "looping"}),
    ];
    let msg = WorkerMsg::Result { key, dispatch, worker, outcome };
    let text = encode(&msg).unwrap();
    assert_eq!(decode::<WorkerMsg>(text.as_bytes()).unwrap(), msg);
    let WorkerMsg::Result { mut outcome, key, dispatch, worker } = msg else { unreachable!() };
    outcome.controls.push(serde_json::json!({"pitboss": "spawn"}));
    let bad = WorkerMsg::Result { key: key.clone(), dispatch: dispatch.clone(), worker: worker.clone(), outcome };
    let err = encode(&bad).unwrap_err();
    assert_eq!(err.to_string(), "field `controls` line 4 is not a usage, session or flag line");
    let WorkerMsg::Result { mut outcome, .. } = bad else { unreachable!() };
    outcome.controls = vec![serde_json::json!({"pitboss": "usage", "cost_usd": 0.01}); controls::MAX_CONTROLS + 1];
    let err = encode(&WorkerMsg::Result { key, dispatch, worker, outcome }).unwrap_err();
    assert!(matches!(err, WireError::Invalid { field: "controls", .. }), "{err}");
}
