//! `pitboss verify DIR`: checks what opening a run trusts without reading. Opening
//! folds only the records after the newest usable snapshot (DESIGN §6); this reads
//! every record of the log (its checksum, its version, its seq in order) and checks
//! every snapshot (its seal and version, that the log holds the record it follows,
//! and that its state equals the fold of the log up to that record). Each problem is
//! printed at its line; exit 0 when there is none, 1 otherwise.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::run::CmdResult;
use super::{usage, EXIT_FAILED, EXIT_OK};
use crate::core::RunState;
use crate::io::journal::{self, Damage, LOG_FILE};
use crate::io::segments;
use crate::io::snapshot::{self, Snapshot};

/// `pitboss verify DIR`.
pub fn verify(dir: &Path) -> CmdResult {
    let log = dir.join(LOG_FILE);
    if !log.is_file() {
        return Err(usage(journal::JournalError::Missing(dir.to_path_buf())));
    }
    let mut problems: Vec<String> = Vec::new();
    // Snapshots first: those readable wait for the fold to reach their seq.
    let mut pending: BTreeMap<u64, Vec<(PathBuf, Snapshot)>> = BTreeMap::new();
    let listed = snapshot::list(dir);
    for (named, path) in &listed {
        match snapshot::read(path) {
            Ok(snap) if snap.at.seq != *named => problems.push(format!(
                "{}: {}",
                path.display(),
                snapshot::Unusable::Misnamed { named: *named, held: snap.at.seq }
            )),
            Ok(snap) => {
                if segments::find(dir, &snap.at).is_none() {
                    problems.push(format!("{}: {}", path.display(), snapshot::Unusable::NotInLog { seq: snap.at.seq }));
                } else {
                    pending.entry(snap.at.seq).or_default().push((path.clone(), snap));
                }
            }
            Err(why) => problems.push(format!("{}: {why}", path.display())),
        }
    }
    // Every file of the log, archived segments first: one stream of records.
    let live_id = segments::FileId::at(&log).ok();
    let archived = segments::archived(dir, live_id).map_err(usage)?;
    let mut check = Check { pending: &mut pending, problems: &mut problems, expected: 1, state: None, folding: true };
    let mut lines = 0;
    for segment in &archived {
        lines += check.file(&segment.path, true)?;
    }
    lines += check.file(&log, false)?;
    let records = check.expected - 1;
    for (path, snap) in pending.into_values().flatten() {
        problems.push(format!(
            "{}: the log's fold never reached its record {} (see the problems above)",
            path.display(),
            snap.at.seq
        ));
    }
    let files = if archived.is_empty() {
        String::new()
    } else {
        format!(" in {} archived segment(s) and the live log", archived.len())
    };
    if problems.is_empty() {
        println!("{}: ok: {records} records{files}, {} snapshot(s), all good", dir.display(), listed.len());
        return Ok(EXIT_OK);
    }
    for problem in &problems {
        println!("{problem}");
    }
    println!(
        "{}: {} problem(s) in {lines} records{files} and {} snapshot(s)",
        dir.display(),
        problems.len(),
        listed.len()
    );
    Ok(EXIT_FAILED)
}

/// The check going through the log's files in order.
struct Check<'a> {
    pending: &'a mut BTreeMap<u64, Vec<(PathBuf, Snapshot)>>,
    problems: &'a mut Vec<String>,
    /// The seq the next record must carry.
    expected: u64,
    state: Option<RunState>,
    /// The fold stops at the first record it cannot take: later states would be guesses.
    folding: bool,
}

impl Check<'_> {
    /// Reads every line of one file of the log, noting each bad one (in an archived
    /// segment, `sealed`, damage is never a crash tail, and says so), and folds the good
    /// ones in order, comparing each pending snapshot with the fold at its seq. Returns
    /// the number of lines read.
    fn file(&mut self, log: &Path, sealed: bool) -> Result<u64, (u8, String)> {
        let file = std::fs::File::open(log).map_err(|e| usage(format!("{}: {e}", log.display())))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut line = Vec::new();
        let mut line_no = 0u64;
        let kind = if sealed { " (an archived segment: sealed, never a crash tail)" } else { "" };
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(|e| usage(format!("{}: {e}", log.display())))?;
            if n == 0 {
                break;
            }
            line_no += 1;
            let at = format!("{}:{line_no}", log.display());
            let expected = self.expected;
            let terminated = line.last() == Some(&b'\n');
            let body = if terminated { &line[..line.len() - 1] } else { &line[..] };
            let record = match journal::decode(body) {
                Ok(record) => record,
                Err(e) => {
                    let damage = Damage::from(e);
                    let damage = if terminated { damage } else { Damage::PartialLine(Box::new(damage)) };
                    self.problems.push(format!("{at}: record {expected}: {damage}{kind}"));
                    self.folding = false;
                    self.expected += 1;
                    continue;
                }
            };
            if record.seq != expected {
                self.problems.push(format!("{at}: {}{kind}", Damage::OutOfOrder { found: record.seq, expected }));
                self.folding = false;
            }
            self.expected = record.seq + 1;
            if !self.folding {
                continue;
            }
            let folded = match &mut self.state {
                None => RunState::from_first(&record.event).map(|s| self.state = Some(s)),
                Some(s) => s.apply(&record.event, record.ts),
            };
            if let Err(e) = folded {
                self.problems.push(format!("{at}: record {} cannot be replayed: {e}", record.seq));
                self.folding = false;
                continue;
            }
            if let (Some(snaps), Some(state)) = (self.pending.remove(&record.seq), &self.state) {
                let truth = canonical(state);
                for (path, snap) in snaps {
                    if canonical(&snap.state) != truth {
                        self.problems.push(format!(
                            "{}: its state differs from the fold of the log up to record {}",
                            path.display(),
                            record.seq
                        ));
                    }
                }
            }
        }
        Ok(line_no)
    }
}

/// A state as a JSON value: equal values are equal states, whatever the order of
/// maps in memory.
pub fn canonical(state: &RunState) -> Value {
    serde_json::to_value(state).unwrap_or(Value::Null)
}
