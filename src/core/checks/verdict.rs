//! What the `security` and `perf` gates conclude from what they found or measured
//! (DESIGN §9), as plain words: pure, so that the wording and the limits are tested
//! without processes.
//!
//! A perf verdict's reason ends with the measurement in a fixed form,
//! `(measured: median_ms=N peak_rss_kb=N)`. The reason is recorded in the verdict
//! event and folded into the task's state, so the best earlier passing measurement of
//! the same gate is read back from the state ([`measured_median`]), after a resume
//! too, without a new event field.

use std::fmt::Write as _;

use super::Finding;

/// Findings named in a security verdict's reason; the rest are counted.
pub const REASON_FINDINGS: usize = 20;
/// `max_regression` when the gate gives none (DESIGN §9).
pub const DEFAULT_REGRESSION: f64 = 1.2;
/// A median within this many ms of its reference is never a regression: timer and
/// scheduling noise of a few ms would otherwise fail every fast command.
pub const REGRESSION_SLACK_MS: u64 = 10;

const MEASURED: &str = "(measured: median_ms=";

/// The reason and the critique of a security gate that found `findings` (not empty):
/// the reason names each rule and location (the first [`REASON_FINDINGS`]), the
/// critique adds each finding's excerpt, one a line, for the agent's feedback.
pub fn security_failure(findings: &[Finding]) -> (String, String) {
    let n = findings.len();
    let mut reason = format!("{n} finding{}: ", if n == 1 { "" } else { "s" });
    let named: Vec<String> =
        findings.iter().take(REASON_FINDINGS).map(|f| format!("{} at {}", f.rule, f.location)).collect();
    reason.push_str(&named.join(", "));
    if n > REASON_FINDINGS {
        let _ = write!(reason, " and {} more", n - REASON_FINDINGS);
    }
    let critique: Vec<String> =
        findings.iter().map(|f| format!("{} at {}: {}", f.rule, f.location, f.excerpt)).collect();
    (reason, critique.join("\n"))
}

/// What a perf measurement is compared with, besides the absolute limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reference {
    /// The median of the baseline file the gate names.
    Baseline(u64),
    /// The best median of an earlier passing run of the same gate.
    Earlier(u64),
}

/// A perf gate's limits, every default resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerfLimits {
    /// `max_time`.
    pub max_time_ms: Option<u64>,
    /// `max_rss_mb`.
    pub max_rss_mb: Option<u64>,
    /// `max_regression` (or [`DEFAULT_REGRESSION`]).
    pub max_regression: f64,
    /// The reference of the regression check, when there is one.
    pub reference: Option<Reference>,
}

/// One measurement: median wall time, peak resident memory, runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    /// Median wall time (ms).
    pub median_ms: u64,
    /// Peak resident set (KiB); `None` when the system gave none to read (a
    /// `max_rss_mb` then fails: it cannot be held).
    pub peak_rss_kb: Option<u64>,
    /// Runs measured.
    pub runs: u32,
}

/// The verdict of a perf measurement: `Ok(reason)` when it passes every limit,
/// `Err(reason)` naming each limit it is over. Both end with the measurement.
pub fn judge_perf(m: Measured, limits: &PerfLimits) -> Result<String, String> {
    let runs = format!("{} run{}", m.runs, if m.runs == 1 { "" } else { "s" });
    let median = format!("median {} over {runs}", duration(m.median_ms));
    let rss = match m.peak_rss_kb {
        Some(kb) => format!("peak RSS {}", mib(kb)),
        None => "peak memory not measured".to_string(),
    };
    let mut over = Vec::new();
    let mut within = Vec::new();
    if let Some(max) = limits.max_time_ms {
        let (list, op) = if m.median_ms > max { (&mut over, ">") } else { (&mut within, "≤") };
        list.push(format!("{median} {op} max_time {}", duration(max)));
    }
    match (limits.max_rss_mb, m.peak_rss_kb) {
        (Some(max), Some(kb)) => {
            let (list, op) = if kb > max.saturating_mul(1024) { (&mut over, ">") } else { (&mut within, "≤") };
            list.push(format!("{rss} {op} max_rss_mb {max}"));
        }
        // Never a silent pass: a limit that cannot be checked fails, saying why.
        (Some(max), None) => {
            over.push(format!("max_rss_mb {max} cannot be checked: this system gave no peak memory of the command"))
        }
        (None, _) => {}
    }
    if let Some(reference) = limits.reference {
        let (base, what) = match reference {
            Reference::Baseline(ms) => (ms, "the baseline"),
            Reference::Earlier(ms) => (ms, "the best earlier passing run"),
        };
        let allowed = ((base as f64 * limits.max_regression).round() as u64).max(base + REGRESSION_SLACK_MS);
        let (list, op) = if m.median_ms > allowed { (&mut over, ">") } else { (&mut within, "≤") };
        list.push(format!("{median} {op} {} × {what} {}", factor(limits.max_regression), duration(base)));
    }
    let peak = m.peak_rss_kb.map_or_else(|| "none".to_string(), |kb| kb.to_string());
    let tail = format!("{MEASURED}{} peak_rss_kb={peak})", m.median_ms);
    if over.is_empty() {
        let words = if within.is_empty() { format!("{median}, {rss}") } else { within.join("; ") };
        Ok(format!("{words} {tail}"))
    } else {
        Err(format!("{} {tail}", over.join("; ")))
    }
}

/// The median a perf verdict's reason records (see the module notes).
pub fn measured_median(reason: &str) -> Option<u64> {
    let start = reason.rfind(MEASURED)? + MEASURED.len();
    let digits: String = reason[start..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The median of a baseline file: JSON `{"median_ms": N}`.
pub fn read_baseline(text: &str) -> Result<u64, String> {
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("it is not JSON ({e})"))?;
    doc.get("median_ms")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| "it has no \"median_ms\" (a whole number of milliseconds), as in {\"median_ms\": 120}".into())
}

/// `120 ms`, `2 s`, `2.31 s`.
fn duration(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms} ms");
    }
    let text = format!("{:.2}", ms as f64 / 1000.0);
    format!("{} s", text.trim_end_matches('0').trim_end_matches('.'))
}

/// `3.4 MiB`.
fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

/// `1.2`, `2`.
fn factor(f: f64) -> String {
    let text = format!("{f:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(n: usize) -> Finding {
        Finding { rule: "code/eval".into(), location: format!("/code:{n}:1"), excerpt: "eval(x)".into() }
    }

    fn limits(max_time_ms: Option<u64>, reference: Option<Reference>) -> PerfLimits {
        PerfLimits { max_time_ms, max_rss_mb: None, max_regression: DEFAULT_REGRESSION, reference }
    }

    #[test]
    fn a_security_reason_names_the_first_findings_and_counts_the_rest() {
        let (reason, critique) = security_failure(&[finding(1)]);
        assert_eq!(reason, "1 finding: code/eval at /code:1:1");
        assert_eq!(critique, "code/eval at /code:1:1: eval(x)");
        let many: Vec<Finding> = (1..=23).map(finding).collect();
        let (reason, critique) = security_failure(&many);
        assert!(reason.starts_with("23 findings: code/eval at /code:1:1, "), "{reason}");
        assert!(reason.ends_with("code/eval at /code:20:1 and 3 more"), "{reason}");
        assert_eq!(critique.lines().count(), 23);
    }

    #[test]
    fn perf_limits_are_named_with_their_numbers() {
        let m = Measured { median_ms: 2310, peak_rss_kb: Some(3 * 1024), runs: 3 };
        let over = judge_perf(m, &limits(Some(2000), None)).unwrap_err();
        assert_eq!(over, "median 2.31 s over 3 runs > max_time 2 s (measured: median_ms=2310 peak_rss_kb=3072)");
        let ok = judge_perf(m, &limits(Some(3000), None)).unwrap();
        assert!(ok.starts_with("median 2.31 s over 3 runs ≤ max_time 3 s "), "{ok}");
        let rss = PerfLimits { max_rss_mb: Some(2), ..limits(None, None) };
        assert!(judge_perf(m, &rss).unwrap_err().starts_with("peak RSS 3.0 MiB > max_rss_mb 2 "));
        let none = judge_perf(m, &limits(None, None)).unwrap();
        assert!(none.starts_with("median 2.31 s over 3 runs, peak RSS 3.0 MiB "), "{none}");
    }

    #[test]
    fn a_memory_limit_with_no_peak_to_read_fails_and_says_why() {
        let m = Measured { median_ms: 40, peak_rss_kb: None, runs: 1 };
        let rss = PerfLimits { max_rss_mb: Some(64), ..limits(Some(1000), None) };
        let over = judge_perf(m, &rss).unwrap_err();
        assert_eq!(
            over,
            "max_rss_mb 64 cannot be checked: this system gave no peak memory of the command \
             (measured: median_ms=40 peak_rss_kb=none)"
        );
        let ok = judge_perf(m, &limits(None, None)).unwrap();
        assert!(ok.starts_with("median 40 ms over 1 run, peak memory not measured "), "{ok}");
        assert_eq!(measured_median(&ok), Some(40));
    }

    #[test]
    fn a_regression_is_over_the_factor_and_the_slack() {
        let m = |median_ms| Measured { median_ms, peak_rss_kb: Some(0), runs: 1 };
        let earlier = limits(None, Some(Reference::Earlier(100)));
        assert!(judge_perf(m(120), &earlier).is_ok());
        let over = judge_perf(m(121), &earlier).unwrap_err();
        assert!(over.starts_with("median 121 ms over 1 run > 1.2 × the best earlier passing run 100 ms"), "{over}");
        // A few ms over a fast reference is noise.
        let fast = limits(None, Some(Reference::Baseline(2)));
        assert!(judge_perf(m(12), &fast).is_ok());
        assert!(judge_perf(m(13), &fast).unwrap_err().contains("> 1.2 × the baseline 2 ms"));
    }

    #[test]
    fn the_measurement_is_read_back_from_a_reason() {
        let m = Measured { median_ms: 57, peak_rss_kb: Some(900), runs: 2 };
        let reason = judge_perf(m, &limits(Some(1000), None)).unwrap();
        assert_eq!(measured_median(&reason), Some(57));
        assert_eq!(measured_median("score 7, at least 5"), None);
    }

    #[test]
    fn a_baseline_file_holds_a_median() {
        assert_eq!(read_baseline(r#"{"median_ms": 120}"#), Ok(120));
        assert!(read_baseline("{}").unwrap_err().contains("median_ms"));
        assert!(read_baseline("12 ms").unwrap_err().starts_with("it is not JSON"));
    }
}
