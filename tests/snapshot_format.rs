//! The snapshot format (issue 14, memory): a task's fields still at their start value
//! are left out of a snapshot (format 2), and a format-1 snapshot, which wrote every
//! field out, still opens to the same state; a format this build does not know is
//! skipped, never misread.

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
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(text.as_bytes());
    hasher.update(b"}");
    format!("{text},\"crc\":{}}}", hasher.finalize()).into_bytes()
}

#[test]
fn snapshots_leave_start_values_out_and_format_1_still_opens_to_the_same_state() {
    let s = Scratch::new();
    let (code, _, out) = s.run_json(WORKFLOW);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let (_, path) = snapshot::list(&s.run_dir()).into_iter().next().expect("a clean stop leaves a snapshot");
    let bytes = std::fs::read(&path).unwrap();
    let written = snapshot::decode(&bytes).expect("the snapshot opens");
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(doc["v"], 2);
    let task = &doc["state"]["tasks"][0];
    assert_eq!(task["result"], serde_json::json!({"ok": true}), "{task}");
    for left_out in ["crashes", "last_error", "payload", "verdicts", "children", "queue_ticket", "approved"] {
        assert!(task.get(left_out).is_none(), "{left_out} at its start value is written: {task}");
    }
    // The same state as format 1 wrote it: every field out.
    let mut v1 = doc.clone();
    v1.as_object_mut().unwrap().remove("crc");
    v1["v"] = 1.into();
    let defaults: Value = serde_json::from_str(V1_DEFAULTS).unwrap();
    for task in v1["state"]["tasks"].as_array_mut().unwrap() {
        for (key, value) in defaults.as_object().unwrap() {
            task.as_object_mut().unwrap().entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    let old = snapshot::decode(&sealed(&v1)).expect("a format-1 snapshot opens");
    assert_eq!(old.state.tasks, written.state.tasks);
    assert_eq!(old.at, written.at);
    // A format from a later build is skipped with its number, not misread.
    let mut later = v1.clone();
    later["v"] = 3.into();
    match snapshot::decode(&sealed(&later)) {
        Err(snapshot::Unusable::Version(3)) => {}
        other => panic!("a format-3 snapshot: {:?}", other.map(|s| s.at)),
    }
    // And the folder still opens through the real binary to the same document.
    let inspect = s.pitboss().args(["inspect", "--json"]).arg(s.run_dir()).output_within("pitboss inspect --json");
    assert!(inspect.status.success(), "{}", String::from_utf8_lossy(&inspect.stderr));
}

/// `snapshot::read` streams the file (issue 14, memory): it must accept exactly what
/// `decode` of the same bytes accepts, and refuse a damaged or later one the same way.
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
    assert_eq!(from_file.state.tasks, in_memory.state.tasks);
    let copy = s.run_dir().join("copy.snap");
    let check = |bytes: &[u8]| {
        std::fs::write(&copy, bytes).unwrap();
        snapshot::read(&copy).map(|s| s.at)
    };
    // One byte changed in the middle: the checksum no longer matches.
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] = if flipped[mid] == b'1' { b'2' } else { b'1' };
    assert!(matches!(check(&flipped), Err(snapshot::Unusable::Checksum)), "{:?}", check(&flipped));
    // Cut short, or empty: no seal.
    assert!(matches!(check(&bytes[..bytes.len() - 3]), Err(snapshot::Unusable::Checksum)));
    assert!(matches!(check(b""), Err(snapshot::Unusable::Checksum)));
    // Sealed, but from a later build.
    let mut later: Value = serde_json::from_slice(&bytes).unwrap();
    later.as_object_mut().unwrap().remove("crc");
    later["v"] = 3.into();
    assert!(matches!(check(&sealed(&later)), Err(snapshot::Unusable::Version(3))), "{:?}", check(&sealed(&later)));
}
