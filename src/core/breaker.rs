//! Circuit breakers as values: one per pool, folded from events like everything else.
//! The decisions (when to open, half-open, close) are pure functions of the breaker,
//! the pool's policy and the time, so a replayed run has the same breakers it had live.

use std::collections::VecDeque;

use crate::core::workflow::BreakerPolicy;

/// Where a pool's breaker is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Circuit {
    /// Attempts start normally.
    Closed,
    /// No attempt starts until `until_ms` (or until an operator resets it, if none).
    Open {
        /// When it half-opens.
        until_ms: Option<u64>,
    },
    /// A limited number of probe attempts may start.
    HalfOpen {
        /// Probes started since it half-opened.
        probes_started: u32,
    },
}

/// A pool's breaker: its circuit and the failures it is counting.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Breaker {
    /// Current circuit.
    pub circuit: Circuit,
    /// Times of recent failed attempts (within the policy's window), oldest first.
    pub recent_failures: VecDeque<u64>,
}

impl Default for Breaker {
    fn default() -> Breaker {
        Breaker { circuit: Circuit::Closed, recent_failures: VecDeque::new() }
    }
}

impl Breaker {
    /// Counts a failed attempt at `ts_ms`, forgetting failures older than the window.
    pub fn count_failure(&mut self, policy: Option<&BreakerPolicy>, ts_ms: u64) {
        let Some(policy) = policy else { return };
        self.recent_failures.push_back(ts_ms);
        while self.recent_failures.front().is_some_and(|t| t.saturating_add(policy.window_ms) < ts_ms) {
            self.recent_failures.pop_front();
        }
    }

    /// True when the breaker lets `already_planned` more attempts start now.
    pub fn admits(&self, policy: Option<&BreakerPolicy>, already_planned: u32) -> bool {
        match self.circuit {
            Circuit::Closed => true,
            Circuit::Open { .. } => false,
            Circuit::HalfOpen { probes_started } => {
                probes_started.saturating_add(already_planned) < policy.map(|p| p.half_open).unwrap_or(1)
            }
        }
    }

    /// True while no attempt may start at all.
    pub fn is_open(&self) -> bool {
        matches!(self.circuit, Circuit::Open { .. })
    }

    /// After a failed attempt was counted: should the breaker open, and why?
    pub fn should_open(&self, policy: Option<&BreakerPolicy>) -> Option<String> {
        let policy = policy?;
        match self.circuit {
            Circuit::Closed if self.recent_failures.len() as u32 >= policy.failures => {
                Some(format!("{} failed attempts within {}", self.recent_failures.len(), window_text(policy.window_ms)))
            }
            Circuit::HalfOpen { .. } => Some("a probe attempt failed".to_string()),
            _ => None,
        }
    }
}

/// "1m", "30s", "250ms": how a window was written in the workflow.
fn window_text(ms: u64) -> String {
    if ms >= 60_000 && ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms >= 1_000 && ms.is_multiple_of(1_000) {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: BreakerPolicy = BreakerPolicy { failures: 3, window_ms: 1_000, cooldown_ms: 500, half_open: 2 };

    #[test]
    fn opens_after_failures_within_the_window_only() {
        let mut b = Breaker::default();
        b.count_failure(Some(&POLICY), 0);
        b.count_failure(Some(&POLICY), 600);
        b.count_failure(Some(&POLICY), 1_500); // the first is out of the window
        assert_eq!(b.should_open(Some(&POLICY)), None);
        b.count_failure(Some(&POLICY), 1_550);
        assert!(b.should_open(Some(&POLICY)).unwrap().contains("3 failed attempts"));
    }

    #[test]
    fn half_open_admits_exactly_the_probes() {
        let mut b = Breaker { circuit: Circuit::HalfOpen { probes_started: 0 }, ..Breaker::default() };
        assert!(b.admits(Some(&POLICY), 0));
        assert!(b.admits(Some(&POLICY), 1));
        assert!(!b.admits(Some(&POLICY), 2));
        b.circuit = Circuit::HalfOpen { probes_started: 2 };
        assert!(!b.admits(Some(&POLICY), 0));
        assert!(b.should_open(Some(&POLICY)).is_some(), "a failure while half-open reopens");
        b.circuit = Circuit::Open { until_ms: Some(5) };
        assert!(!b.admits(Some(&POLICY), 0));
    }

    #[test]
    fn a_pool_without_policy_never_opens_by_itself() {
        let mut b = Breaker::default();
        for t in 0..100 {
            b.count_failure(None, t);
        }
        assert_eq!(b.should_open(None), None);
        assert!(b.admits(None, 1000));
    }

    #[test]
    fn windows_are_written_as_in_the_workflow() {
        let written: Vec<String> = [60_000, 120_000, 1_000, 30_000, 90_000, 250, 1_500, 0].map(window_text).to_vec();
        assert_eq!(written, ["1m", "2m", "1s", "30s", "90s", "250ms", "1500ms", "0ms"]);
    }

    #[test]
    fn a_window_near_the_largest_number_still_counts_failures() {
        // `t + window` overflowed: a panic in a debug build, a window that forgets every
        // failure (so the breaker never opens) in a release build.
        let policy = BreakerPolicy { failures: 2, window_ms: u64::MAX, cooldown_ms: u64::MAX, half_open: 1 };
        let mut b = Breaker::default();
        b.count_failure(Some(&policy), 5);
        b.count_failure(Some(&policy), u64::MAX - 1);
        assert_eq!(b.recent_failures, [5, u64::MAX - 1]);
        assert!(b.should_open(Some(&policy)).is_some());
    }

    #[test]
    fn a_failure_exactly_one_window_old_still_counts() {
        let mut b = Breaker::default();
        b.count_failure(Some(&POLICY), 0);
        b.count_failure(Some(&POLICY), 1_000);
        assert_eq!(b.recent_failures, [0, 1_000]);
        b.count_failure(Some(&POLICY), 1_001);
        assert_eq!(b.recent_failures, [1_000, 1_001], "0 is now more than a window old");
    }
}
