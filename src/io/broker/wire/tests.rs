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
