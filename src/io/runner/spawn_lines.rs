//! The planner's control lines (DESIGN §4, §11): `{"pitboss":"spawn","tasks":[…]}` on
//! a worker's stdout, read as the output arrives (the in-memory tail is bounded and
//! would lose early lines). Several lines in one attempt add up, in order. The lines
//! are split by [`super::control_lines`] (which keeps at most [`SPAWN_CAP`] bytes of
//! one line); at most [`SPAWN_CAP`] bytes of spawn JSON are taken per attempt: past it
//! the spawn is refused with a reason, never kept in memory.

use serde_json::Value;

use super::control_lines::Found;

/// Bytes of spawn lines one attempt may print.
pub const SPAWN_CAP: usize = 1 << 20;

/// What a spawn line's reading came to: the tasks of every spawn line in order, or
/// why they cannot be taken.
pub type SpawnTasks = Result<Vec<Value>, String>;

/// Takes the spawn lines among one stream's control lines (split by
/// [`super::control_lines`]), in order.
#[derive(Debug, Default)]
pub struct SpawnLines {
    used: usize,
    seen: bool,
    tasks: Vec<Value>,
    error: Option<String>,
}

impl SpawnLines {
    /// Reads one control line.
    pub fn line(&mut self, found: &Found) {
        if self.error.is_some() {
            return;
        }
        let too_much = || {
            format!(
                "the attempt printed more than {} KiB of spawn lines; spawn fewer or smaller tasks",
                SPAWN_CAP / 1024
            )
        };
        match found {
            // Whatever kind it was, a line past the cap is more than a spawn line may be.
            Found::Overlong => self.refuse(too_much()),
            Found::Torn(_) if found.torn_names("spawn") => self.refuse("a spawn line is not valid JSON".into()),
            Found::Torn(_) => {}
            Found::Line { kind, value, bytes } => {
                if *kind != "spawn" {
                    return;
                }
                self.seen = true;
                self.used += bytes.len();
                if self.used > SPAWN_CAP {
                    self.refuse(too_much());
                    return;
                }
                match value.get("tasks") {
                    Some(Value::Array(tasks)) => self.tasks.extend(tasks.iter().cloned()),
                    _ => self.refuse("a spawn line's \"tasks\" must be a list of tasks".to_string()),
                }
            }
        }
    }

    fn refuse(&mut self, why: String) {
        self.seen = true;
        self.tasks = Vec::new();
        self.error = Some(why);
    }

    /// The end of the stream: `None` when no spawn line was printed.
    pub fn finish(&mut self) -> Option<SpawnTasks> {
        if !self.seen {
            return None;
        }
        Some(match self.error.take() {
            Some(e) => Err(e),
            None => Ok(std::mem::take(&mut self.tasks)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::runner::control_lines::Splitter;
    use serde_json::json;

    fn read(chunks: &[&[u8]]) -> Option<SpawnTasks> {
        let mut split = Splitter::new(SPAWN_CAP);
        let mut s = SpawnLines::default();
        for c in chunks {
            split.push(c, &mut |f| s.line(&f));
        }
        split.finish(&mut |f| s.line(&f));
        s.finish()
    }

    #[test]
    fn spawn_lines_add_up_in_order_across_reads() {
        let got = read(&[
            b"log\n{\"pitboss\":\"spa",
            b"wn\",\"tasks\":[{\"id\":\"a\"}]}\n{\"pitboss\":\"progress\"}\n",
            b"{\"pitboss\":\"spawn\",\"tasks\":[{\"id\":\"b\"}]}",
        ]);
        assert_eq!(got, Some(Ok(vec![json!({"id": "a"}), json!({"id": "b"})])));
    }

    #[test]
    fn no_spawn_line_is_none_and_progress_is_not_a_spawn() {
        assert_eq!(read(&[b"{\"pitboss\":\"progress\",\"pct\":5}\n{\"x\":1}\n"]), None);
    }

    #[test]
    fn bad_spawn_lines_are_refused_with_a_reason() {
        let bad = read(&[b"{\"pitboss\":\"spawn\",\"tasks\":{}}\n"]).unwrap().unwrap_err();
        assert!(bad.contains("must be a list"), "{bad}");
        let torn = read(&[b"{\"pitboss\":\"spawn\",\"tasks\":[\n"]).unwrap().unwrap_err();
        assert!(torn.contains("not valid JSON"), "{torn}");
    }

    #[test]
    fn more_than_the_cap_is_refused_without_keeping_it() {
        let mut split = Splitter::new(SPAWN_CAP);
        let mut s = SpawnLines::default();
        split.push(b"{\"pitboss\":\"spawn\",\"tasks\":[", &mut |f| s.line(&f));
        let filler = vec![b' '; 64 * 1024];
        for _ in 0..40 {
            split.push(&filler, &mut |f| s.line(&f));
            assert!(split.kept() <= SPAWN_CAP);
        }
        split.finish(&mut |f| s.line(&f));
        let err = s.finish().unwrap().unwrap_err();
        assert!(err.contains("more than 1024 KiB"), "{err}");
    }
}
