//! Tests of the journal's reading side and its texts: decoding, scanning, torn tails
//! (the writer's own are in `write/tests.rs`).

use super::*;

fn ev(task: &str) -> Event {
    Event::TaskReady { task: task.into() }
}

#[test]
fn encode_decode_round_trip() {
    let mut buf = Vec::new();
    encode(7, 123, &ev("a"), &mut buf);
    assert_eq!(buf.last(), Some(&b'\n'));
    let rec = decode(&buf[..buf.len() - 1]).unwrap();
    assert_eq!(rec, Record { seq: 7, ts: 123, event: ev("a") });
}

#[test]
fn flipped_byte_fails_checksum() {
    let mut buf = Vec::new();
    encode(1, 1, &ev("abc"), &mut buf);
    let i = buf.iter().position(|&b| b == b'b').unwrap();
    buf[i] = b'x';
    let err = decode(&buf[..buf.len() - 1]).unwrap_err();
    assert_eq!(err, DecodeError::ChecksumMismatch);
    assert_eq!(err.to_string(), "checksum mismatch", "the wording is recorded in log_repaired events");
}

#[test]
fn damage_texts_are_stable() {
    // These texts land in log_repaired events: changing one changes the log format.
    let partial = Damage::PartialLine(Box::new(Damage::Record(DecodeError::Truncated)));
    assert_eq!(partial.to_string(), "truncated, partial last line");
    assert_eq!(Damage::OutOfOrder { found: 5, expected: 4 }.to_string(), "seq 5 where 4 was expected");
    assert_eq!(Damage::from(DecodeError::Nul).to_string(), "NUL bytes");
    assert_eq!(DecodeError::Unreadable("x".into()).to_string(), "unreadable record: x");
}

/// `body` (a record without its checksum part) sealed with a matching checksum.
fn seal(body: &str) -> Vec<u8> {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(body.as_bytes());
    hasher.update(b"}");
    format!("{body},\"crc\":{}}}", hasher.finalize()).into_bytes()
}

#[test]
fn the_known_event_types_are_the_event_enums_own() {
    let known = known_event_types();
    for event in [ev("a"), Event::RunInterrupted { reason: "x".into() }] {
        assert!(known.contains(&event.kind()), "{} missing from {known:?}", event.kind());
    }
    assert!(known.contains(&"run_started") && known.contains(&"run_finished"), "{known:?}");
    assert!(!known.contains(&"some_future_event"));
}

#[test]
fn a_sealed_record_this_build_cannot_read_says_why_and_is_never_damage() {
    let unknown = seal(r#"{"seq":1,"ts":1,"v":1,"event":{"type":"some_future_event","task":"a"}"#);
    assert_eq!(decode(&unknown), Err(DecodeError::UnknownType("some_future_event".into())));
    let newer = seal(r#"{"seq":1,"ts":1,"v":2,"event":{"type":"some_future_event"}"#);
    assert_eq!(decode(&newer), Err(DecodeError::Newer(2)));
    let odd = seal(r#"{"seq":1,"ts":1,"v":1,"event":{"type":"task_ready","task":7}"#);
    assert!(matches!(decode(&odd), Err(DecodeError::Unreadable(_))));
    for e in [decode(&unknown), decode(&newer), decode(&odd)] {
        assert!(e.unwrap_err().is_sealed());
    }
    assert!(!DecodeError::ChecksumMismatch.is_sealed());
}

#[test]
fn a_log_without_a_valid_record_is_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(LOG_FILE);
    std::fs::write(&path, b"").unwrap();
    assert!(matches!(replay(&path), Err(JournalError::Empty(_))));
    std::fs::write(&path, b"garbage\r\nmore\n").unwrap();
    let err = replay(&path).unwrap_err();
    assert!(matches!(err, JournalError::NoRecord { line: 1, .. }), "{err}");
    assert!(err.to_string().contains(":1: the event log holds no valid record (no checksum)"), "{err}");
}

#[test]
fn torn_tail_is_reported_and_middle_damage_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(LOG_FILE);
    let mut buf = Vec::new();
    for seq in 1..=3 {
        encode(seq, 0, &ev("a"), &mut buf);
    }
    let whole = buf.len();
    buf.extend_from_slice(b"{\"seq\":4,\"ts\"");
    std::fs::write(&path, &buf).unwrap();
    let scan = scan(&path, |_, _| Ok(())).unwrap();
    assert_eq!(scan.records, 3);
    assert_eq!(scan.valid_len, whole as u64);
    assert_eq!(scan.torn.as_ref().map(|t| t.line), Some(4));
    let partial = Damage::PartialLine(Box::new(Damage::Record(DecodeError::NoChecksum)));
    assert_eq!(scan.torn.as_ref().map(|t| &t.reason), Some(&partial));

    // Damage the second record: the third is valid, so this is not a tail.
    let mut bad = buf[..whole].to_vec();
    let second = bad.iter().position(|&b| b == b'\n').unwrap() + 5;
    bad[second] ^= 0x20;
    std::fs::write(&path, &bad).unwrap();
    let err = super::scan(&path, |_, _| Ok(())).unwrap_err();
    assert!(
        matches!(
            err,
            JournalError::Corrupt { line: 2, cut_seq: 2, reason: Damage::Record(DecodeError::ChecksumMismatch), .. }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(":2: record seq 2 is corrupt (checksum mismatch)"), "{err}");
}
