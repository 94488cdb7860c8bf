//! Formatting shared by every front end (headless reporter, inspect, events, TUI):
//! durations and clock times for people, and one line per event. Pure: time arrives
//! as a timestamp, so the same event always reads the same.

use super::event::{AfterFailure, BrokerDown, BrokerUp, Event, ResultDuplicate, WorkerLost};
use crate::core::workflow::gate_label;

/// "1.5s", "250ms", "3m12s": short durations for people.
pub fn human_ms(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        let s = ms as f64 / 1000.0;
        if s < 10.0 {
            format!("{s:.1}s")
        } else {
            format!("{}s", ms / 1000)
        }
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

/// UTC civil time of a ms timestamp as (year, month, day, hour, minute, second, ms).
pub fn civil(ts_ms: u64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let secs = (ts_ms / 1000) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, (rem / 60) % 60, rem % 60, (ts_ms % 1000) as u32)
}

/// "14:03:07.120" (UTC) for log lines.
pub fn clock(ts_ms: u64) -> String {
    let (_, _, _, h, m, s, ms) = civil(ts_ms);
    format!("{h:02}:{m:02}:{s:02}.{ms:03}")
}

/// "2026-11-24T14:03:07Z".
pub fn iso(ts_ms: u64) -> String {
    let (y, mo, d, h, m, s, _) = civil(ts_ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

/// One line for an event, or None for events that are not transitions (what the
/// headless reporter, `events`, history and the TUI's log all print).
pub fn describe(e: &Event) -> Option<String> {
    let what = match e {
        Event::RunStarted { run_id, workflow } => {
            format!("run {:?} started ({} tasks, run id {run_id})", workflow.name, workflow.tasks.len())
        }
        Event::ManagerStarted { pid, resumed: true, .. } => format!("manager pid {pid} resumed the run"),
        Event::ManagerStarted { pid, .. } => format!("manager pid {pid} started"),
        Event::TaskReady { task } => format!("{task}: queued"),
        Event::AttemptStarted { task, attempt, pool } => format!("{task}: running attempt {attempt} on pool {pool}"),
        Event::AttemptSpawned { task, attempt, resumes: Some(session), .. } => {
            format!("{task}: attempt {attempt} continues agent session {session}")
        }
        Event::AttemptSpawned { .. } => return None,
        Event::WorkspaceCreated(ws) => {
            let branch = ws.branch.as_deref().map(|b| format!(" on branch {b}")).unwrap_or_default();
            format!("{}: {} workspace {}{branch}", ws.task, ws.kind, ws.path)
        }
        Event::DiffRecorded(d) => {
            let summary = d.stat.lines().rev().find(|l| !l.trim().is_empty()).map_or("no change", str::trim);
            format!("{}: attempt {}'s workspace diff recorded ({summary})", d.task, d.attempt)
        }
        Event::SessionRecorded(s) => format!("{}: attempt {} has agent session {}", s.task, s.attempt, s.id),
        Event::AttemptFlagged(f) => {
            let detail = if f.detail.is_empty() { f.tools.join(", ") } else { f.detail.clone() };
            format!("{}: attempt {} flagged {}: {detail}", f.task, f.attempt, f.flag)
        }
        Event::WorkerRegistered(w) => {
            format!("pool {}: worker {} registered ({} pid {}, {} at once)", w.pool, w.worker, w.host, w.pid, w.concurrency)
        }
        Event::WorkerLost(WorkerLost { pool, worker, task: Some(task), attempt: Some(attempt), reason, .. }) => {
            format!("{task}: attempt {attempt}'s worker {worker} (pool {pool}) lost: {reason}")
        }
        Event::WorkerLost(WorkerLost { pool, worker, reason, .. }) => {
            format!("pool {pool}: worker {worker} lost: {reason}")
        }
        Event::BrokerDown(BrokerDown { broker, reason }) => {
            format!("broker {broker} down ({reason}); dispatch paused")
        }
        Event::BrokerUp(BrokerUp { broker, down_ms, republished }) => format!(
            "broker {broker} up again after {}; {republished} attempts published again",
            human_ms(*down_ms)
        ),
        Event::ResultDuplicate(ResultDuplicate { task, attempt, worker, reason }) => {
            format!("{task}: ignored a {reason} result of attempt {attempt} from worker {worker}")
        }
        Event::UsageRecorded(u) => {
            let (input, output) = (crate::core::usage::tokens(u.input_tokens), crate::core::usage::tokens(u.output_tokens));
            format!("{}: attempt {} spent {} ({input} in / {output} out)", u.task, u.attempt, u.cost_usd)
        }
        Event::BudgetExhausted(b) => format!(
            "budget spent: {} of {}; no new attempt starts until an operator raises it (ctl budget --max-cost-usd N)",
            b.spent_usd, b.max_cost_usd
        ),
        Event::BudgetRaised(r) => {
            let max = r.max_cost_usd.map(|m| format!(" max_cost_usd {m}")).unwrap_or_default();
            let task = r.task_cost_usd.map(|t| format!(" task_cost_usd {t}")).unwrap_or_default();
            format!("budget raised by {}:{max}{task}; dispatch resumes", r.source)
        }
        Event::AttemptSucceeded { task, attempt, duration_ms, .. } => {
            // "Succeeded", not "completed": with gates the task goes on to validating.
            format!("{task}: attempt {attempt} succeeded ({})", human_ms(*duration_ms))
        }
        Event::AttemptFailed { task, attempt, error, then, .. } => match then {
            AfterFailure::Retry { delay_ms, .. } => {
                format!("{task}: attempt {attempt} failed: {error}; retry in {}", human_ms(*delay_ms))
            }
            AfterFailure::Defer { delay_ms, .. } => {
                format!("{task}: could not start attempt {attempt}: {error}; trying again in {}", human_ms(*delay_ms))
            }
            AfterFailure::DeadLetter { reason } => format!("{task}: dead-lettered: {reason}"),
            AfterFailure::Fallback { reason } => {
                format!("{task}: attempt {attempt} failed: {error}; fallback used ({reason})")
            }
        },
        Event::GatePassed { task, attempt, index, kind, reason, duration_ms, .. } => {
            let gate = gate_label(*index, *kind);
            format!("{task}: {gate} passed attempt {attempt} ({reason}, {})", human_ms(*duration_ms))
        }
        Event::GateFailed { task, error: reason, then, .. } | Event::GateError { task, error: reason, then, .. } => {
            match then {
                AfterFailure::Retry { delay_ms, .. } | AfterFailure::Defer { delay_ms, .. } => {
                    format!("{task}: {reason}; retry in {}", human_ms(*delay_ms))
                }
                AfterFailure::DeadLetter { reason } => format!("{task}: dead-lettered: {reason}"),
                AfterFailure::Fallback { reason: why } => format!("{task}: {reason}; fallback used ({why})"),
            }
        }
        Event::FallbackUsed { task, reason } => format!("{task}: fallback used ({reason})"),
        Event::PayloadEdited { task, .. } => format!("{task}: payload edited by an operator"),
        Event::AttemptStalled { task, attempt, quiet_ms } => {
            format!("{task}: attempt {attempt} stalled? no output for {}", human_ms(*quiet_ms))
        }
        Event::AttemptActive { task, attempt } => format!("{task}: attempt {attempt} is printing again"),
        Event::OutputCaptureFailed { task, attempt, stream, error } => format!(
            "{task}: warning: attempt {attempt}'s {} is not being saved ({error}); output past what the log keeps is lost",
            stream.as_str()
        ),
        Event::BreakerOpened { pool, until_ms: Some(until), reason } => {
            format!("pool {pool}: breaker open ({reason}); probes from {}", clock(*until))
        }
        Event::BreakerOpened { pool, until_ms: None, reason } => {
            format!("pool {pool}: breaker open ({reason}) until reset")
        }
        Event::BreakerHalfOpened { pool } => format!("pool {pool}: breaker half-open, probing"),
        Event::PoolPaused { pool } => format!("pool {pool}: paused by an operator"),
        Event::PoolResumed { pool } => format!("pool {pool}: resumed by an operator"),
        Event::ConcurrencyChanged { pool, concurrency } => format!("pool {pool}: concurrency set to {concurrency}"),
        Event::BreakerClosed { pool, reason } => format!("pool {pool}: breaker closed ({reason})"),
        Event::AttemptInterrupted { task, attempt, reason } => {
            format!("{task}: attempt {attempt} stopped ({reason}); queued again")
        }
        Event::VoteCast { task, attempt, replica, worker, digest: Some(digest), .. } => {
            format!("{task}: attempt {attempt}, replica {replica} on {worker} voted for answer {digest}")
        }
        Event::VoteCast { task, attempt, replica, worker, error, .. } => format!(
            "{task}: attempt {attempt}, replica {replica} on {worker} abstained ({})",
            error.as_deref().unwrap_or("nothing at the compared key")
        ),
        Event::ConsensusReached { task, attempt, winner, digest, votes, dissenters, abstained, judge } => {
            let decision = crate::core::consensus::Decision::Reached {
                winner_replica: *winner,
                digest: digest.clone(),
                votes: votes.clone(),
                dissenters: dissenters.clone(),
                abstained: abstained.clone(),
            };
            match judge {
                Some(reason) => format!("{task}: attempt {attempt}: {}; picked by the judge: {reason}", decision.describe()),
                None => format!("{task}: attempt {attempt}: {}", decision.describe()),
            }
        }
        Event::ConsensusFailed { task, attempt, reason } => format!("{task}: attempt {attempt}: {reason}"),
        Event::RetryDue { task, continue_session: false } => format!("{task}: queued (retry)"),
        Event::RetryDue { task, continue_session: true } => {
            format!("{task}: queued (retry); an operator asked it to continue its agent session")
        }
        Event::TaskCancelled { task, reason } => format!("{task}: cancelled ({reason})"),
        Event::TaskSkipped { task, because } => {
            format!("{task}: skipped (dependency {because} did not complete)")
        }
        Event::TaskRequeued { task, reason, continue_session: false } => format!("{task}: requeued by {reason}"),
        Event::TaskRequeued { task, reason, continue_session: true } => {
            format!("{task}: requeued by {reason}, continuing its agent session")
        }
        Event::TaskRevived { task, because } => {
            format!("{task}: back to blocked ({because} was requeued)")
        }
        Event::TaskHeld { task, finding } => format!(
            "{task}: held for approval: input guard found {}; approve or reject it",
            crate::core::hold::finding_text(finding)
        ),
        Event::TaskApproved { task } => format!("{task}: approved by an operator; queued"),
        Event::TasksSpawned { task, attempt, tasks, held } => {
            let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
            let waiting = match held.len() {
                0 => String::new(),
                n => format!("; {n} held for approval ({})", held[0].finding.rule),
            };
            format!("{task}: attempt {attempt} spawned {} task(s): {}{waiting}", tasks.len(), ids.join(", "))
        }
        Event::SpawnRefused { task, attempt, reason } => {
            format!("{task}: attempt {attempt}: spawn refused: {reason}")
        }
        Event::TasksSubmitted { source, tasks } => {
            let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
            format!("{} task(s) submitted by {source}: {}", tasks.len(), ids.join(", "))
        }
        Event::TaskRejected { task, reason, .. } => format!("{task}: cancelled ({reason})"),
        Event::RunInterrupted { reason } => {
            format!("run interrupted ({reason}); stopping running attempts")
        }
        Event::LogRepaired { cut_bytes, line, reason } => {
            format!("log repaired: cut {cut_bytes} bytes from line {line} ({reason})")
        }
        Event::ForkedFrom { run_id, seq, new_run_id } => format!("forked from run {run_id} at record {seq} (this run is {new_run_id})"),
        Event::RunFinished { success: true } => "run finished: every task completed".to_string(),
        Event::RunFinished { success: false } => "run finished with failures".to_string(),
    };
    Some(what)
}

/// A failure's cause with the parts that vary between occurrences (counts, pids,
/// durations, numbers in a quoted line) masked, so that "exit code 3 after 1.2s" and
/// "exit code 3 after 0.9s" group together (the TUI's dead letters, `dlq --json`'s
/// `group`). An exit code is the cause itself, not a detail: it is kept, so exit 64
/// (a usage error) and exit 1 never share a group. A gate's failure is grouped by the
/// gate (`gate 1 (schema) failed`), whatever it found: the details differ for every
/// result. Made when read, never recorded: logs of any age group the same way.
pub fn fingerprint(reason: &str) -> String {
    if let Some(gate) = gate_cause(reason) {
        return gate.to_string();
    }
    let mut out = String::with_capacity(reason.len());
    // Inside a number: masked (pushed as one `#`) or kept digit by digit.
    let mut in_number: Option<bool> = None;
    for c in reason.chars() {
        match in_number {
            Some(keep) if c.is_ascii_digit() => {
                if keep {
                    out.push(c);
                }
            }
            // A decimal point inside a masked number stays part of it.
            Some(false) if c == '.' => {}
            _ if c.is_ascii_digit() => {
                let keep = KEPT_NUMBERS.iter().any(|before| out.ends_with(before));
                out.push(if keep { c } else { '#' });
                in_number = Some(keep);
            }
            _ => {
                out.push(c);
                in_number = None;
            }
        }
    }
    out
}

/// Words after which a number names the kind of failure rather than one occurrence.
const KEPT_NUMBERS: [&str; 2] = ["exit code ", "signal "];

/// Dead letters sharing one cause (one [`fingerprint`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetterGroup {
    /// The cause with what varies masked.
    pub fingerprint: String,
    /// One member's full reason, as an example (the first member's).
    pub reason: String,
    /// The members, by task index, in the order given.
    pub tasks: Vec<usize>,
    /// Attempts spent over the group.
    pub attempts: u32,
}

/// The dead letters of `state` grouped by cause, biggest group first (then by
/// fingerprint), each with its members: what `dlq`, ctl and the TUI's dead letters
/// show, so a group can be opened to list its tasks.
pub fn dead_letter_groups(state: &crate::core::RunState) -> Vec<DeadLetterGroup> {
    group_dead_letters(state.tasks.iter().enumerate().filter_map(|(i, task)| match &task.state {
        crate::core::TaskState::DeadLettered { reason } => Some((i, reason.as_str(), task.attempts)),
        _ => None,
    }))
}

/// Groups (task index, reason, attempts) of dead letters by cause (see
/// [`dead_letter_groups`]); for a front end that keeps its own set of dead letters.
pub fn group_dead_letters<'a>(letters: impl IntoIterator<Item = (usize, &'a str, u32)>) -> Vec<DeadLetterGroup> {
    let mut groups: Vec<DeadLetterGroup> = Vec::new();
    // Through an index: a cause shared by thousands costs one lookup each.
    let mut group_of: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (task, reason, attempts) in letters {
        let print = fingerprint(reason);
        match group_of.get(&print) {
            Some(&g) => {
                groups[g].tasks.push(task);
                groups[g].attempts += attempts;
            }
            None => {
                group_of.insert(print.clone(), groups.len());
                groups.push(DeadLetterGroup {
                    fingerprint: print,
                    reason: reason.to_string(),
                    tasks: vec![task],
                    attempts,
                });
            }
        }
    }
    groups.sort_by(|a, b| b.tasks.len().cmp(&a.tasks.len()).then_with(|| a.fingerprint.cmp(&b.fingerprint)));
    groups
}

/// True for an output line that tells a person nothing about a failure: blank, a
/// `{"pitboss":…}` control line, or a line without a single letter (progress bars,
/// rulers, spinners, "45%", "3/5").
pub fn is_noise_line(line: &str) -> bool {
    let line = line.trim();
    line.is_empty() || line.starts_with("{\"pitboss\"") || !line.chars().any(char::is_alphabetic)
}

/// The last line of `text` that says something (see [`is_noise_line`]), trimmed. A
/// line is taken whole, bare carriage returns included (a front end shows them
/// escaped): what came before a CR is part of what the worker printed.
pub fn last_meaningful_line(text: &str) -> Option<&str> {
    text.lines().rev().find(|line| !is_noise_line(line)).map(str::trim)
}

/// `gate N (kind) failed` or `gate N (kind) could not run`, when the reason is a gate's.
fn gate_cause(reason: &str) -> Option<&str> {
    let start = reason.find("gate ")?;
    let rest = &reason[start..];
    let close = rest.find(") ")?;
    let label = &rest[..close + 1];
    let digits = label.strip_prefix("gate ")?.split(' ').next()?;
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let after = &rest[close + 2..];
    let verdict = ["failed", "could not run"].into_iter().find(|v| after.starts_with(v))?;
    Some(&rest[..close + 2 + verdict.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_events_read_as_one_line_each() {
        use crate::core::event::WorkerRegistered;
        let lost = |task: Option<&str>| {
            Event::WorkerLost(WorkerLost {
                pool: "gpu".into(),
                worker: "n1:4:ab".into(),
                task: task.map(str::to_string),
                attempt: task.map(|_| 2),
                started: true,
                reason: "lease expired".into(),
            })
        };
        let seen = Event::WorkerRegistered(WorkerRegistered {
            pool: "gpu".into(),
            worker: "n1:4:ab".into(),
            host: "n1".into(),
            pid: 4,
            capabilities: Vec::new(),
            version: "0.1.0".into(),
            concurrency: 2,
        });
        let lines: Vec<String> = [
            seen,
            lost(Some("a")),
            lost(None),
            Event::BrokerDown(BrokerDown { broker: "redis://h:6379".into(), reason: "connection refused".into() }),
            Event::BrokerUp(BrokerUp { broker: "redis://h:6379".into(), down_ms: 12_000, republished: 3 }),
            Event::ResultDuplicate(ResultDuplicate {
                task: "a".into(),
                attempt: 2,
                worker: "n1:4:ab".into(),
                reason: "late".into(),
            }),
        ]
        .iter()
        .filter_map(describe)
        .collect();
        assert_eq!(
            lines,
            [
                "pool gpu: worker n1:4:ab registered (n1 pid 4, 2 at once)",
                "a: attempt 2's worker n1:4:ab (pool gpu) lost: lease expired",
                "pool gpu: worker n1:4:ab lost: lease expired",
                "broker redis://h:6379 down (connection refused); dispatch paused",
                "broker redis://h:6379 up again after 12s; 3 attempts published again",
                "a: ignored a late result of attempt 2 from worker n1:4:ab",
            ]
        );
    }

    #[test]
    fn gate_failures_group_by_gate() {
        let a = fingerprint("attempts spent (3/3): gate 1 (schema) failed: /title: 5 is not of type \"string\"");
        let b = fingerprint("attempts spent (2/2): gate 1 (schema) failed: /: \"body\" is a required property");
        assert_eq!(a, "gate 1 (schema) failed");
        assert_eq!(a, b);
        assert_ne!(a, fingerprint("attempts spent (3/3): gate 2 (review) failed: score 3 below 7"));
        assert_eq!(
            fingerprint("attempts spent (1/1): gate 2 (command) could not run: x"),
            "gate 2 (command) could not run"
        );
    }

    #[test]
    fn exit_codes_and_classes_stay_apart() {
        assert_ne!(fingerprint("attempts spent (3/3): exit code 64"), fingerprint("attempts spent (3/3): exit code 1"));
        assert_eq!(
            fingerprint("attempts spent (3/3): exit code 64: usage: agent --model M after 1.5s"),
            "attempts spent (#/#): exit code 64: usage: agent --model M after #s"
        );
        assert_eq!(fingerprint("attempts spent (2/2): exit code 1"), fingerprint("attempts spent (5/5): exit code 1"));
        assert_eq!(
            fingerprint("task failed (exit code 64 is never retried)"),
            "task failed (exit code 64 is never retried)"
        );
        assert_eq!(fingerprint("killed by signal 9 after 3.25s"), "killed by signal 9 after #s");
        assert_ne!(
            fingerprint("attempts spent (3/3): timed out after 5s; process group ended"),
            fingerprint("attempts spent (3/3): exit code 1")
        );
    }

    #[test]
    fn groups_list_their_members() {
        let letters = [
            (0, "attempts spent (3/3): exit code 1: boom", 3),
            (1, "attempts spent (3/3): exit code 64: usage", 3),
            (4, "attempts spent (2/2): exit code 1: boom", 2),
        ];
        let groups = group_dead_letters(letters);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].fingerprint, "attempts spent (#/#): exit code 1: boom");
        assert_eq!(groups[0].tasks, vec![0, 4]);
        assert_eq!(groups[0].attempts, 5);
        assert_eq!(groups[0].reason, "attempts spent (3/3): exit code 1: boom");
        assert_eq!(groups[1].tasks, vec![1]);
    }

    #[test]
    fn the_last_line_that_says_something() {
        let stderr = "INFO loading model\nWARN slow disk\nError: no credits left\n[#####.....] 50%\n====\n\n";
        assert_eq!(last_meaningful_line(stderr), Some("Error: no credits left"));
        assert_eq!(
            last_meaningful_line(
                "{\"pitboss\":\"progress\",\"pct\":5}\nfatal: x\n{\"pitboss\":\"progress\",\"pct\":9}\n"
            ),
            Some("fatal: x")
        );
        assert_eq!(last_meaningful_line("failed: disk full\r\n"), Some("failed: disk full"));
        assert_eq!(last_meaningful_line("  \n... 45%\n-----\n"), None);
        assert!(is_noise_line("3/5"));
        assert!(!is_noise_line("E"));
    }

    #[test]
    fn civil_dates() {
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(1_795_000_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(clock(1_795_000_000_123), "11:06:40.123");
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_ms(250), "250ms");
        assert_eq!(human_ms(1_500), "1.5s");
        assert_eq!(human_ms(192_000), "3m12s");
    }

    #[test]
    fn votes_and_their_outcome_read_as_sentences() {
        let vote = |digest: Option<&str>, error: Option<&str>| Event::VoteCast {
            task: "q".into(),
            attempt: 2,
            replica: 1,
            worker: "w".into(),
            result: None,
            digest: digest.map(String::from),
            error: error.map(String::from),
            class: None,
        };
        assert_eq!(describe(&vote(Some("abc"), None)).unwrap(), "q: attempt 2, replica 1 on w voted for answer abc");
        assert_eq!(
            describe(&vote(None, Some("exit code 1"))).unwrap(),
            "q: attempt 2, replica 1 on w abstained (exit code 1)"
        );
        assert_eq!(
            describe(&vote(None, None)).unwrap(),
            "q: attempt 2, replica 1 on w abstained (nothing at the compared key)"
        );
        let reached = Event::ConsensusReached {
            task: "q".into(),
            attempt: 2,
            winner: 0,
            digest: "abc".into(),
            votes: vec![0, 2],
            dissenters: vec![1],
            abstained: vec![],
            judge: Some("cites sources".into()),
        };
        assert_eq!(
            describe(&reached).unwrap(),
            "q: attempt 2: consensus reached: answer abc from replicas 0, 2 (result of replica 0); dissent: replica 1; picked by the judge: cites sources"
        );
        let failed = Event::ConsensusFailed { task: "q".into(), attempt: 2, reason: "no consensus (x)".into() };
        assert_eq!(describe(&failed).unwrap(), "q: attempt 2: no consensus (x)");
    }
}
