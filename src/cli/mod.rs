//! Command-line front ends over the engine: headless runs, validation, the bundled
//! sim-agent, and the read-only views of a run folder (inspect, events, dlq).

pub mod follow;
pub mod history;
pub mod report;
pub mod run;
pub mod sim_agent;

use std::path::PathBuf;

/// Exit code: every task completed.
pub const EXIT_OK: u8 = 0;
/// Exit code: the run ended with a task dead-lettered, cancelled or skipped.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad usage, invalid workflow, or the run could not be started.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: interrupted; the run is resumable.
pub const EXIT_INTERRUPTED: u8 = 130;

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

/// Base folder for runs: `$PITBOSS_HOME`, else the platform data dir.
pub fn home() -> PathBuf {
    crate::io::dirs::home()
}

/// A failure of bad usage (or a run that cannot start): exit code 2 with `msg`.
pub fn usage(msg: impl std::fmt::Display) -> (u8, String) {
    (EXIT_USAGE, msg.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
