//! The retry delay schedule: exponential, capped, with optional jitter.
//!
//! Jitter draws from [delay/2, delay] ("equal jitter"): a failing fleet spreads out,
//! and because each step's upper half starts where the previous step ended, delays
//! never shrink from one attempt to the next while the cap is not reached. The
//! random draw is an argument, and the chosen delay is stored in the event, so a
//! replay never re-rolls it.

use crate::core::workflow::RetryPolicy;

/// Delay before attempt `failed_attempt + 1`, given a uniform draw `unit` in [0, 1).
pub fn delay_ms(policy: &RetryPolicy, failed_attempt: u32, unit: f64) -> u64 {
    let exponent = failed_attempt.saturating_sub(1).min(64) as i32;
    let base = (policy.initial_ms as f64) * policy.multiplier.powi(exponent);
    let capped = base.min(policy.max_ms as f64).max(0.0);
    let delay = if policy.jitter {
        let unit = unit.clamp(0.0, 1.0);
        capped / 2.0 + capped / 2.0 * unit
    } else {
        capped
    };
    delay.round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy(jitter: bool) -> RetryPolicy {
        RetryPolicy { max_attempts: 10, initial_ms: 100, max_ms: 5_000, multiplier: 2.0, jitter }
    }

    #[test]
    fn grows_exponentially_then_caps() {
        let p = policy(false);
        let delays: Vec<u64> = (1..=8).map(|a| delay_ms(&p, a, 0.0)).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }

    proptest! {
        #[test]
        fn jittered_delays_never_shrink_below_the_cap(draws in proptest::collection::vec(0.0f64..1.0, 6)) {
            // 100·2^5 = 3200 < 5000: six steps stay under the cap, where growth is promised.
            let p = policy(true);
            let delays: Vec<u64> = draws.iter().enumerate().map(|(i, u)| delay_ms(&p, i as u32 + 1, *u)).collect();
            for pair in delays.windows(2) {
                prop_assert!(pair[0] <= pair[1], "{delays:?}");
            }
            for (i, d) in delays.iter().enumerate() {
                let full = delay_ms(&policy(false), i as u32 + 1, 0.0);
                prop_assert!(*d >= full / 2 && *d <= full);
            }
        }
    }

    #[test]
    fn jitter_draws_from_the_upper_half_of_the_delay() {
        let p = policy(true);
        let delays: Vec<u64> = [0.0, 0.5, 0.75, 1.0].iter().map(|u| delay_ms(&p, 2, *u)).collect();
        assert_eq!(delays, vec![100, 150, 175, 200]);
    }
}
