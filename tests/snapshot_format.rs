//! The snapshot format (issue 14, memory): a task's fields still at their start value
//! are left out of a snapshot (format 2); format 3 splits it in two lines and leaves
//! out the specs' usual fields and the graph tables; formats 1 and 2 still open to the
//! same state; a format this build does not know is skipped, never misread.

mod common;

use common::{OutputWithin, Scratch};
use pitboss::io::snapshot;
use serde_json::Value;

const WORKFLOW: &str =
    "[[pool]]\nname = \"p\"\ncommand = [\"sh\", \"-c\", \"cat >/dev/null; echo '{\\\"ok\\\":true}'\"]\n\
    [[task]]\nid = \"a\"\npayload = { n = 1 }\n[[task]]\nid = \"b\"\ndepends_on = [\"a\"]\n";

/// Every field a format-1 snapshot wrote for a task, at its start value.
const V1_DEFAULTS: &str = r#"{"attempts":0,"budget_start":0,"crashes":0,"deferrals":0,"result":null,
    "last_error":null,"pool":null,"degraded":false,"payload":null,"pool_override":null,
    "capture_failures":[],"verdicts":[],"finding":null,"approved":false,"parent":null,"children":[],
    "queue_ticket":null}"#;

/// `doc` sealed as the snapshot writer seals one.
fn sealed(doc: &Value) -> Vec<u8> {
    let mut text = doc.to_string();
    text.pop();
    common::seal(text.as_bytes())
}

/// The two lines of a format-3 snapshot, as JSON (the second without its seal).
fn parts(bytes: &[u8]) -> (Value, Value) {
    let text = std::str::from_utf8(bytes).expect("utf-8");
    let (head, body) = text.split_once('\n').expect("a format-3 snapshot has two lines");
    (serde_json::from_str(head).expect("the head is JSON"), serde_json::from_str(body).expect("the body is JSON"))
}

/// A one-line document (formats 1 and 2) with its seal taken off.
fn unsealed(bytes: &[u8]) -> Value {
    let mut doc: Value = serde_json::from_slice(bytes).expect("one JSON document");
    doc.as_object_mut().unwrap().remove("crc");
    doc
}

#[test]
fn snapshots_leave_start_values_out_and_formats_1_and_2_still_open_to_the_same_state() {
    let s = Scratch::new();
    let (code, _, out) = s.run_json(WORKFLOW);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let (_, path) = snapshot::list(&s.run_dir()).into_iter().next().expect("a clean stop leaves a snapshot");
    let bytes = std::fs::read(&path).unwrap();
    let written = snapshot::decode(&bytes).expect("the snapshot opens");
    // This build writes format 4 (binary rows after a JSON head: tests/snapshot_format4.rs);
    // format 3, which older builds wrote, is checked here as they wrote it.
    assert!(bytes.starts_with(b"{\"v\":4,"), "format 4 is written");
    let v3_bytes = snapshot::encode_format3(&written.state, written.at);
    let v3 = snapshot::decode(&v3_bytes).expect("a format-3 snapshot opens");
    assert_eq!(canonical(&v3.state), canonical(&written.state));
    let (head, body) = parts(&v3_bytes);
    assert_eq!(head["v"], 3);
    // Format 3: specs without their usual fields, no graph tables.
    assert_eq!(head["workflow"]["tasks"][0], serde_json::json!({"id": "a", "payload": {"n": 1}}));
    assert_eq!(head["workflow"]["tasks"][1], serde_json::json!({"id": "b", "payload": {}, "depends_on": ["a"]}));
    for derived in ["dependents", "dependencies", "eligible", "edges", "workflow"] {
        assert!(body["state"].get(derived).is_none(), "{derived} is written: {body}");
    }
    let task = &body["state"]["tasks"][0];
    assert_eq!(task["result"], serde_json::json!({"ok": true}), "{task}");
    for left_out in ["crashes", "last_error", "payload", "verdicts", "children", "queue_ticket", "approved"] {
        assert!(task.get(left_out).is_none(), "{left_out} at its start value is written: {task}");
    }
    // The same state as format 2 wrote it (one line, everything out), and format 1
    // (every task field out too).
    let v2_bytes = snapshot::encode_format2(&written.state, written.at);
    let v2 = snapshot::decode(&v2_bytes).expect("a format-2 snapshot opens");
    assert_eq!(canonical(&v2.state), canonical(&written.state));
    assert_eq!(v2.at, written.at);
    let mut v1 = unsealed(&v2_bytes);
    assert_eq!(v1["v"], 2);
    assert!(v1["state"]["workflow"]["tasks"][0].get("retry").is_some(), "format 2 writes specs whole");
    v1["v"] = 1.into();
    let defaults: Value = serde_json::from_str(V1_DEFAULTS).unwrap();
    for task in v1["state"]["tasks"].as_array_mut().unwrap() {
        for (key, value) in defaults.as_object().unwrap() {
            task.as_object_mut().unwrap().entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    let old = snapshot::decode(&sealed(&v1)).expect("a format-1 snapshot opens");
    assert_eq!(canonical(&old.state), canonical(&written.state));
    assert_eq!(old.at, written.at);
    // A format from a later build is skipped with its number, not misread, in one
    // line or in two.
    let mut later = v1.clone();
    later["v"] = 5.into();
    match snapshot::decode(&sealed(&later)) {
        Err(snapshot::Unusable::Version(5)) => {}
        other => panic!("a format-5 snapshot: {:?}", other.map(|s| s.at)),
    }
    match snapshot::decode(&later_in_two_lines(&v3_bytes)) {
        Err(snapshot::Unusable::Version(5)) => {}
        other => panic!("a two-line format-5 snapshot: {:?}", other.map(|s| s.at)),
    }
    // And the folder still opens through the real binary, and verifies.
    let inspect = s.pitboss().args(["inspect", "--json"]).arg(s.run_dir()).output_within("pitboss inspect --json");
    assert!(inspect.status.success(), "{}", String::from_utf8_lossy(&inspect.stderr));
    let verify = s.pitboss().arg("verify").arg(s.run_dir()).output_within("pitboss verify");
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}

/// The format-3 document `bytes` as a later build might write it: version 5, its
/// workflow in a shape this build does not read.
fn later_in_two_lines(bytes: &[u8]) -> Vec<u8> {
    let (mut head, body) = parts(bytes);
    head["v"] = 5.into();
    head["workflow"] = Value::String("elsewhere".into());
    let mut body = body;
    body.as_object_mut().unwrap().remove("crc");
    let mut text = format!("{head}\n{body}");
    text.pop();
    common::seal(text.as_bytes())
}

fn canonical(state: &pitboss::core::RunState) -> Value {
    serde_json::to_value(state).expect("a state serializes")
}

/// `snapshot::read` streams the file (issue 14, memory), a format-3 one on two
/// threads: it must accept exactly what `decode` of the same bytes accepts, and refuse
/// a damaged or later one the same way, whichever part is damaged.
#[test]
fn reading_the_file_as_a_stream_checks_the_seal_and_version_like_decode() {
    let s = Scratch::new();
    let (code, _, out) = s.run_json(WORKFLOW);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let (_, path) = snapshot::list(&s.run_dir()).into_iter().next().expect("a clean stop leaves a snapshot");
    let bytes = std::fs::read(&path).unwrap();
    let from_file = snapshot::read(&path).expect("the snapshot file opens");
    let in_memory = snapshot::decode(&bytes).unwrap();
    assert_eq!(from_file.at, in_memory.at);
    assert_eq!(canonical(&from_file.state), canonical(&in_memory.state));
    let copy = s.run_dir().join("copy.snap");
    let check = |bytes: &[u8]| {
        std::fs::write(&copy, bytes).unwrap();
        snapshot::read(&copy).map(|s| s.at)
    };
    let v2 = snapshot::encode_format2(&in_memory.state, in_memory.at);
    assert_eq!(check(&v2), Ok(in_memory.at), "a format-2 file opens");
    let v3 = snapshot::encode_format3(&in_memory.state, in_memory.at);
    assert_eq!(check(&v3), Ok(in_memory.at), "a format-3 file opens");
    for (what, doc) in [("format 4", &bytes), ("format 3", &v3), ("format 2", &v2)] {
        let newline = doc.iter().position(|&b| b == b'\n').unwrap_or(doc.len() / 2);
        // One byte changed in each part (format 2 has one): the checksum no longer matches.
        for at in [newline / 2, newline + (doc.len() - newline) / 2, doc.len() / 2] {
            let mut flipped = doc.clone();
            let at = at.min(doc.len() - 1);
            flipped[at] = if flipped[at] == b'1' { b'2' } else { b'1' };
            assert!(
                matches!(check(&flipped), Err(snapshot::Unusable::Checksum)),
                "{what} at {at}: {:?}",
                check(&flipped)
            );
        }
        // Cut short: no seal.
        assert!(matches!(check(&doc[..doc.len() - 3]), Err(snapshot::Unusable::Checksum)), "{what}");
    }
    // The first part alone, sealed as a whole document: not a state.
    let newline = bytes.iter().position(|&b| b == b'\n').expect("a head line");
    let first: Value = serde_json::from_slice(&bytes[..newline]).unwrap();
    assert!(matches!(check(&sealed(&first)), Err(snapshot::Unusable::Unreadable(_))), "{:?}", check(&sealed(&first)));
    assert!(matches!(check(b""), Err(snapshot::Unusable::Checksum)));
    // Sealed, but from a later build.
    let mut later = unsealed(&v2);
    later["v"] = 5.into();
    assert!(matches!(check(&sealed(&later)), Err(snapshot::Unusable::Version(5))), "{:?}", check(&sealed(&later)));
    let later = later_in_two_lines(&v3);
    assert!(matches!(check(&later), Err(snapshot::Unusable::Version(5))), "{:?}", check(&later));
}
