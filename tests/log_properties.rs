//! Property tests of the event-log reader (`journal::scan` and `journal::replay`, what
//! `resume`, `inspect`, `events` and `dlq` open a log with): arbitrary bytes, and the
//! golden logs damaged the ways files get damaged (bits flipped, cut short, lines
//! duplicated, swapped, deleted or given CR LF endings, seq numbers changed, bytes
//! inserted, records reordered and re-sealed with valid checksums). The reader never
//! panics, and always gives either the state with any torn tail located exactly, or
//! an error naming the line. Exact expectations are checked where the damage decides
//! them: a log cut short, a flipped bit before the last two lines, CR LF endings.
//!
//! In-process and on small inputs, so the whole file takes a few seconds in CI.

mod common;

use std::path::{Path, PathBuf};

use pitboss::io::journal::{self, Damage, DecodeError, JournalError};
use proptest::prelude::*;

const GOLDEN: [&str; 3] = ["v1-finished", "v1-crashed", "v1-dead-letters"];

fn golden(k: usize) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(GOLDEN[k]).join("events.jsonl");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The log's lines, each with its newline.
fn lines(log: &[u8]) -> Vec<Vec<u8>> {
    log.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

/// `body` (a record without its checksum part) sealed with a matching checksum.
fn seal(body: &[u8]) -> Vec<u8> {
    let mut line = common::seal(body);
    line.push(b'\n');
    line
}

/// A record line with its seq set to `seq` and its checksum made valid again.
fn reseal(line: &[u8], seq: u64) -> Vec<u8> {
    let text = String::from_utf8_lossy(line);
    let body = &text[..text.rfind(",\"crc\":").expect("a record")];
    let rest = &body[body.find(',').expect("a seq field")..];
    seal(format!("{{\"seq\":{seq}{rest}").as_bytes())
}

/// One way a log gets damaged. Positions are fractions of the log (or of its lines),
/// so that one strategy fits logs of every length.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit {
        at: f64,
        bit: u8,
    },
    Truncate {
        at: f64,
    },
    DuplicateLine {
        at: f64,
    },
    DeleteLine {
        at: f64,
    },
    SwapLines {
        a: f64,
        b: f64,
    },
    Crlf {
        at: f64,
    },
    CrlfEverywhere,
    ChangeSeq {
        at: f64,
        seq: u64,
    },
    ResealedSeq {
        at: f64,
        seq: u64,
    },
    InsertBytes {
        at: f64,
        bytes: Vec<u8>,
    },
    /// Records moved and every seq renumbered and re-sealed: checksums all valid, so
    /// only the fold can notice the order makes no sense.
    ResealedReorder {
        a: f64,
        b: f64,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = 0.0..1.0f64;
    prop_oneof![
        (at.clone(), 0..8u8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        at.clone().prop_map(|at| Mutation::Truncate { at }),
        at.clone().prop_map(|at| Mutation::DuplicateLine { at }),
        at.clone().prop_map(|at| Mutation::DeleteLine { at }),
        (at.clone(), at.clone()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
        at.clone().prop_map(|at| Mutation::Crlf { at }),
        Just(Mutation::CrlfEverywhere),
        (at.clone(), 0..400u64).prop_map(|(at, seq)| Mutation::ChangeSeq { at, seq }),
        (at.clone(), 0..400u64).prop_map(|(at, seq)| Mutation::ResealedSeq { at, seq }),
        (at.clone(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::InsertBytes { at, bytes }),
        (at.clone(), at).prop_map(|(a, b)| Mutation::ResealedReorder { a, b }),
    ]
}

fn index(at: f64, len: usize) -> usize {
    ((at * len as f64) as usize).min(len.saturating_sub(1))
}

fn apply(log: &[u8], m: &Mutation) -> Vec<u8> {
    let mut lines = lines(log);
    if lines.is_empty() {
        return log.to_vec();
    }
    let n = lines.len();
    match m {
        Mutation::FlipBit { at, bit } => {
            let mut out = log.to_vec();
            let i = index(*at, out.len());
            out[i] ^= 1 << bit;
            return out;
        }
        Mutation::Truncate { at } => return log[..index(*at, log.len())].to_vec(),
        Mutation::InsertBytes { at, bytes } => {
            let mut out = log.to_vec();
            let i = index(*at, out.len());
            out.splice(i..i, bytes.iter().copied());
            return out;
        }
        Mutation::DuplicateLine { at } => {
            let i = index(*at, n);
            lines.insert(i, lines[i].clone());
        }
        Mutation::DeleteLine { at } => {
            lines.remove(index(*at, n));
        }
        Mutation::SwapLines { a, b } => lines.swap(index(*a, n), index(*b, n)),
        Mutation::Crlf { at } => crlf(&mut lines[index(*at, n)]),
        Mutation::CrlfEverywhere => lines.iter_mut().for_each(crlf),
        Mutation::ChangeSeq { at, seq } => {
            let i = index(*at, n);
            let text = String::from_utf8_lossy(&lines[i]).into_owned();
            if let Some(end) = text.find(',') {
                lines[i] = format!("{{\"seq\":{seq}{}", &text[end..]).into_bytes();
            }
        }
        Mutation::ResealedSeq { at, seq } => {
            let i = index(*at, n);
            if is_record(&lines[i]) {
                lines[i] = reseal(&lines[i], *seq);
            }
        }
        Mutation::ResealedReorder { a, b } => {
            let line = lines.remove(index(*a, n));
            lines.insert(index(*b, n), line);
            for (k, line) in lines.iter_mut().enumerate() {
                if is_record(line) {
                    *line = reseal(line, k as u64 + 1);
                }
            }
        }
    }
    lines.concat()
}

fn is_record(line: &[u8]) -> bool {
    line.ends_with(b"}\n") && line.windows(7).any(|w| w == b",\"crc\":")
}

fn crlf(line: &mut Vec<u8>) {
    if line.last() == Some(&b'\n') {
        line.insert(line.len() - 1, b'\r');
    }
}

/// A log written to a fresh file, read back the way the commands read it.
struct Opened {
    len: u64,
    result: Result<journal::Scan, JournalError>,
}

fn open(dir: &Path, log: &[u8]) -> Opened {
    let path: PathBuf = dir.join("events.jsonl");
    std::fs::write(&path, log).expect("write the log");
    let result = journal::replay(&path).map(|(_, scan)| scan);
    Opened { len: log.len() as u64, result }
}

/// The reader's contract on any input: the state with its torn tail located exactly,
/// or an error that names a line (an empty file: says it is empty).
fn check_contract(opened: &Opened) -> Result<(), TestCaseError> {
    match &opened.result {
        Ok(scan) => {
            prop_assert!(scan.records >= 1, "a state from no record");
            match &scan.torn {
                Some(torn) => {
                    prop_assert_eq!(torn.line as u64, scan.records + 1, "the torn tail starts after the valid records");
                    prop_assert_eq!(torn.offset, scan.valid_len);
                    prop_assert_eq!(torn.offset + torn.len, opened.len, "the tail runs to the end of the file");
                    prop_assert!(torn.len > 0);
                }
                None => prop_assert_eq!(scan.valid_len, opened.len, "no tail, so every byte is valid"),
            }
        }
        Err(err) => {
            let line = match err {
                JournalError::Corrupt { line, .. }
                | JournalError::Replay { line, .. }
                | JournalError::Newer { line, .. }
                | JournalError::Unreadable { line, .. }
                | JournalError::NoRecord { line, .. } => *line,
                JournalError::Empty(_) => {
                    prop_assert_eq!(opened.len, 0, "only an empty file is reported empty");
                    return Ok(());
                }
                other => return Err(TestCaseError::fail(format!("an error without a line: {other}"))),
            };
            prop_assert!(line >= 1);
            let text = err.to_string();
            prop_assert!(text.contains(&format!("events.jsonl:{line}:")), "the message names the line: {}", text);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_time: 10_000, ..ProptestConfig::default() })]

    /// Anything at all in the file: no panic, and a located answer.
    #[test]
    fn arbitrary_bytes_give_a_located_answer(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let dir = tempfile::tempdir().expect("temp dir");
        for line in bytes.split(|&b| b == b'\n') {
            let _ = journal::decode(line);
        }
        check_contract(&open(dir.path(), &bytes))?;
    }

    /// Lines shaped like records (a checksum part, braces, NULs, CRs) but random.
    #[test]
    fn record_shaped_noise_gives_a_located_answer(
        parts in proptest::collection::vec(
            prop_oneof![
                Just(b"{\"seq\":1,\"ts\":0,\"v\":1,\"event\":{\"type\":\"task_ready\",\"task\":\"a\"}".to_vec()),
                Just(b",\"crc\":".to_vec()),
                Just(b"}\n".to_vec()),
                Just(b"\r\n".to_vec()),
                Just(vec![0u8; 3]),
                "[0-9]{1,10}".prop_map(String::into_bytes),
                proptest::collection::vec(any::<u8>(), 0..8),
            ],
            0..40,
        )
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        check_contract(&open(dir.path(), &parts.concat()))?;
    }
}

proptest! {
    // Each case replays a golden log of up to 35 KB: fewer cases keep the file quick.
    #![proptest_config(ProptestConfig { cases: 96, max_shrink_time: 10_000, ..ProptestConfig::default() })]

    /// A golden log damaged one to three times, any way: no panic, a located answer.
    #[test]
    fn damaged_golden_logs_give_a_located_answer(
        k in 0..GOLDEN.len(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut log = golden(k);
        for m in &mutations {
            log = apply(&log, m);
        }
        check_contract(&open(dir.path(), &log))?;
    }

    /// A log cut short anywhere is what a crash leaves: every whole record is kept,
    /// the rest is a torn tail; only a cut inside the first record leaves no run.
    #[test]
    fn a_log_cut_short_keeps_its_whole_records(k in 0..GOLDEN.len(), at in 0.0..1.0f64) {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = golden(k);
        let cut = index(at, log.len());
        let opened = open(dir.path(), &log[..cut]);
        check_contract(&opened)?;
        // A record is whole once all but its newline is there.
        let whole = log[..cut].iter().filter(|&&b| b == b'\n').count()
            + usize::from(cut < log.len() && log[cut] == b'\n');
        match &opened.result {
            Ok(scan) => {
                prop_assert_eq!(scan.records as usize, whole);
                let partial = cut > 0 && log[cut - 1] != b'\n' && log[cut] != b'\n';
                prop_assert_eq!(scan.torn.is_some(), partial);
            }
            Err(JournalError::Empty(_)) => prop_assert_eq!(cut, 0),
            Err(JournalError::NoRecord { line, .. }) => prop_assert!(whole == 0 && *line == 1),
            Err(other) => return Err(TestCaseError::fail(format!("cut at {cut}: {other}"))),
        }
    }

    /// One flipped bit with at least two lines after it is damage in the middle:
    /// refused, naming its line and the seq to cut at.
    #[test]
    fn a_flipped_bit_before_the_last_two_lines_is_refused_naming_its_line(
        k in 0..GOLDEN.len(),
        at in 0.0..1.0f64,
        bit in 0..8u8,
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = golden(k);
        let starts: Vec<usize> =
            std::iter::once(0).chain(log.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i + 1)).collect();
        let n = starts.len() - 1;
        let pos = index(at, starts[n - 2]);
        let line = starts.iter().filter(|&&s| s <= pos).count();
        let mut damaged = log.clone();
        damaged[pos] ^= 1 << bit;
        match open(dir.path(), &damaged).result {
            Err(JournalError::Corrupt { line: found, cut_seq, .. }) => {
                prop_assert_eq!(found, line);
                prop_assert_eq!(cut_seq, line as u64);
            }
            Err(other) => return Err(TestCaseError::fail(format!("line {line}: {other}"))),
            Ok(_) => return Err(TestCaseError::fail(format!("line {line}: a flipped bit went unnoticed"))),
        }
    }
}

#[test]
fn crlf_line_endings_are_named_where_they_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = golden(0);
    let everywhere = apply(&log, &Mutation::CrlfEverywhere);
    match open(dir.path(), &everywhere).result {
        Err(err @ JournalError::NoRecord { line: 1, reason: Damage::Record(DecodeError::Crlf), .. }) => {
            assert!(err.to_string().contains("CR LF"), "{err}");
        }
        other => panic!("{:?}", other),
    }
    // One CR LF line in the middle: refused there.
    let mut lines = lines(&log);
    crlf(&mut lines[4]);
    match open(dir.path(), &lines.concat()).result {
        Err(JournalError::Corrupt { line: 5, reason: Damage::Record(DecodeError::Crlf), .. }) => {}
        other => panic!("{:?}", other),
    }
}
