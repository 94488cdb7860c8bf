//! Bounded capture of one output stream of an attempt. Output stays in memory until it
//! passes [`SMALL_OUTPUT`] bytes; only then is the attempt's file created (most
//! attempts of a busy fleet print a line or two, and a file per attempt would cost
//! more than the attempt). The file is capped at [`FILE_CAP`]; the in-memory tail at
//! its own cap, so a worker that prints gigabytes costs the manager at most the tail.
//! With [`Capture::redacting`], secret values are replaced as the output is read, so
//! neither the tail, the file nor the live panes ever hold them (DESIGN §14).
//! A file that cannot be created or written (a full disk, an unwritable folder) is
//! not silent: the first error is kept for the runner to report
//! ([`Capture::take_failure`]), and writing stops.

use std::borrow::Cow;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use super::control_lines::{ControlReaders, ControlSink};
use crate::core::event::SMALL_OUTPUT;
use crate::core::redact::{RedactStream, Redactor};
use crate::io::fsutil::private_file;

/// Bytes of each stream written to the attempt's file in the run folder.
pub const FILE_CAP: u64 = 16 << 20;

/// A bounded capture of one stream (see the module's notes).
pub struct Capture {
    tail: Vec<u8>,
    tail_cap: usize,
    path: PathBuf,
    file: Option<File>,
    spilled: bool,
    total: u64,
    written: u64,
    dropped: u64,
    /// Replaces secrets before anything is kept (see [`Capture::redacting`]).
    redact: Option<RedactStream>,
    /// The first error creating or writing the file.
    failure: Option<String>,
    /// True once `failure` was handed out.
    reported: bool,
    /// A preset's reader of its agent's output (stdout only).
    agent: Option<super::agent_lines::AgentLines>,
    /// Control lines (spawn, usage, session, flag) read as the output arrives
    /// (stdout only), by one splitter.
    control: ControlReaders,
}

impl Capture {
    /// A capture writing to `path` once it spills, keeping `tail_cap` bytes in memory.
    pub fn new(path: PathBuf, tail_cap: usize) -> Capture {
        Capture {
            tail: Vec::new(),
            tail_cap,
            path,
            file: None,
            spilled: false,
            total: 0,
            written: 0,
            dropped: 0,
            redact: None,
            failure: None,
            reported: false,
            agent: None,
            control: ControlReaders::default(),
        }
    }

    /// This capture, reading a preset's agent output and keeping the protocol lines
    /// it means (see `agent_lines`: an agent printing events has its raw lines in
    /// this capture's file name plus `.raw`, not in the stream).
    pub fn reading_agent(mut self, preset: crate::core::agents::Preset) -> Capture {
        let mut raw = self.path.clone().into_os_string();
        raw.push(".raw");
        self.agent = Some(super::agent_lines::AgentLines::for_preset(preset, raw.into()));
        self
    }

    /// This capture, telling `sink` the `session` and `flag` lines it keeps as they
    /// arrive.
    pub fn telling(mut self, sink: ControlSink) -> Capture {
        self.control.sink = Some(sink);
        self
    }

    /// The agent exited: the rest of its output and its reader's last lines (the
    /// envelope) are kept. Nothing without a preset.
    pub fn end_agent(&mut self, exit_code: Option<i32>) {
        let Some(mut agent) = self.agent.take() else { return };
        if let Some(mut stream) = self.redact.take() {
            let rest = stream.finish();
            let kept = agent.push(&rest);
            self.push(&kept);
        }
        let last = agent.end(exit_code);
        self.push(&last);
    }

    /// This capture, also reading `{"pitboss":"spawn"}` lines (a worker's stdout).
    pub fn reading_spawn_lines(mut self) -> Capture {
        self.control.with_spawn_and_usage();
        self
    }

    /// The usage lines read since the last call (with the stream's last line once
    /// `finished` is true).
    pub fn take_usage(&mut self, finished: bool) -> Vec<super::usage_lines::UsageLine> {
        if finished {
            self.control.finish();
        }
        self.control.usage.as_mut().map(|u| u.take()).unwrap_or_default()
    }

    /// The spawn lines' tasks, once finished: `None` when none was printed.
    pub fn take_spawn(&mut self) -> Option<super::spawn_lines::SpawnTasks> {
        self.control.spawn.as_mut().and_then(|s| s.finish())
    }

    /// This capture, replacing `redactor`'s secrets in what it keeps.
    pub fn redacting(mut self, redactor: &Arc<Redactor>) -> Capture {
        if !redactor.is_empty() {
            self.redact = Some(redactor.stream());
        }
        self
    }

    /// Redacts what one read returned, keeps it, and returns it as kept (for the live
    /// panes). The end of a chunk may be held back until the next one, in case it
    /// starts a secret.
    pub fn push_redacted<'a>(&mut self, chunk: &'a [u8]) -> Cow<'a, [u8]> {
        let clean = match &mut self.redact {
            Some(stream) => stream.push(chunk),
            None => Cow::Borrowed(chunk),
        };
        // An agent's reader sees redacted lines, so its protocol lines hold no secret.
        let clean = match &mut self.agent {
            Some(agent) => {
                let kept = agent.push(&clean);
                if let Some(error) = agent.take_failure() {
                    self.fail(error);
                }
                Cow::Owned(kept)
            }
            None => clean,
        };
        self.push(&clean);
        clean
    }

    /// Adds what one read returned.
    pub fn push(&mut self, chunk: &[u8]) {
        self.control.push(chunk);
        self.total += chunk.len() as u64;
        self.tail.extend_from_slice(chunk);
        if !self.spilled && self.total > SMALL_OUTPUT as u64 {
            // Everything so far is still in the tail: it starts the file.
            self.spilled = true;
            self.file = match private_file().create(true).append(true).open(&self.path) {
                Ok(file) => Some(file),
                Err(e) => {
                    self.fail(format!("cannot create {}: {e}", self.path.display()));
                    None
                }
            };
            let head = std::mem::take(&mut self.tail);
            self.write_file(&head);
            self.tail = head;
        } else if self.spilled {
            self.write_file(chunk);
        }
        if self.tail.len() > 2 * self.tail_cap {
            // Amortised: trim only when twice over, so each byte moves at most once.
            let cut = self.tail.len() - self.tail_cap;
            self.tail.drain(..cut);
        }
    }

    fn write_file(&mut self, bytes: &[u8]) {
        let room = FILE_CAP.saturating_sub(self.written);
        let keep = (bytes.len() as u64).min(room) as usize;
        self.dropped += (bytes.len() - keep) as u64;
        if keep == 0 {
            return;
        }
        if let Some(f) = &mut self.file {
            if let Err(e) = f.write_all(&bytes[..keep]) {
                self.file = None;
                self.fail(format!("cannot write {}: {e}", self.path.display()));
            }
        }
        self.written += keep as u64;
    }

    fn fail(&mut self, error: String) {
        self.failure.get_or_insert(error);
    }

    /// The error that stopped the file, once: a later call gives `None` (the stream
    /// is reported once, however many writes it loses).
    pub fn take_failure(&mut self) -> Option<String> {
        if self.reported {
            return None;
        }
        self.reported = self.failure.is_some();
        self.failure.clone()
    }

    /// Ends the capture: returns the tail, and the whole output if it stayed small.
    pub fn finish(&mut self) -> (Vec<u8>, Option<String>) {
        if let Some(mut stream) = self.redact.take() {
            let rest = stream.finish();
            self.push(&rest);
        }
        self.control.finish();
        if self.dropped > 0 {
            if let Some(f) = &mut self.file {
                let _ =
                    writeln!(f, "\n[pitboss: output capped at {FILE_CAP} bytes; {} more bytes dropped]", self.dropped);
            }
        }
        self.file = None;
        if self.tail.len() > self.tail_cap {
            let cut = self.tail.len() - self.tail_cap;
            self.tail.drain(..cut);
        }
        let tail = std::mem::take(&mut self.tail);
        let small = (!self.spilled && !tail.is_empty()).then(|| String::from_utf8_lossy(&tail).into_owned());
        (tail, small)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_cannot_be_created_is_reported_once_and_the_tail_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-folder").join("t.1.stdout");
        let mut capture = Capture::new(path, 1 << 20);
        capture.push(&[b'x'; 100]);
        assert_eq!(capture.take_failure(), None, "nothing to write yet: the output is small");
        capture.push(&vec![b'y'; SMALL_OUTPUT]);
        let failure = capture.take_failure().expect("the spill failed");
        assert!(failure.contains("cannot create") && failure.contains("t.1.stdout"), "{failure}");
        capture.push(b"more");
        assert_eq!(capture.take_failure(), None, "reported once");
        let (tail, small) = capture.finish();
        assert_eq!(tail.len(), 100 + SMALL_OUTPUT + 4);
        assert_eq!(small, None);
    }
}
