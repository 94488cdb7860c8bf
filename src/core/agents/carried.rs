//! Usage a resumed agent session had already counted (DESIGN §13). Some agents report
//! the **session's** running total, not the attempt's: codex's `turn.completed` usage
//! is the thread's, so an attempt that continues a thread (`codex exec resume`) first
//! reports every earlier turn again. The attempt's own usage is what exceeds what the
//! session's earlier attempts recorded: [`Carried`] takes that out of its first lines.

use crate::core::usage::{Usage, Usd};

/// What the session's earlier attempts recorded and no usage line of this attempt has
/// absorbed yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Carried {
    left: Usage,
}

impl Carried {
    /// The earlier attempts' usage, to be taken out of this attempt's first lines.
    pub fn new(earlier: Usage) -> Carried {
        Carried { left: earlier }
    }

    /// The new part of a usage line: each figure less what is still carried of it
    /// (down to zero), the carried figure shrinking by as much. A total smaller than
    /// what was carried (the agent started a new session after all) leaves the rest
    /// carried, so nothing is ever counted twice.
    pub fn take(&mut self, reported: &Usage) -> Usage {
        let part = |now: u64, left: &mut u64| {
            let absorbed = now.min(*left);
            *left -= absorbed;
            now - absorbed
        };
        let l = &mut self.left;
        Usage {
            cost: Usd(part(reported.cost.0, &mut l.cost.0)),
            input_tokens: part(reported.input_tokens, &mut l.input_tokens),
            output_tokens: part(reported.output_tokens, &mut l.output_tokens),
            cache_read_tokens: part(reported.cache_read_tokens, &mut l.cache_read_tokens),
            cache_creation_tokens: part(reported.cache_creation_tokens, &mut l.cache_creation_tokens),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(input: u64, output: u64) -> Usage {
        Usage { input_tokens: input, output_tokens: output, ..Usage::default() }
    }

    #[test]
    fn the_first_lines_give_back_what_the_session_counted_before() {
        // Earlier attempts recorded 100 in / 20 out; the resumed thread reports 200 / 40.
        let mut carried = Carried::new(tokens(100, 20));
        assert_eq!(carried.take(&tokens(200, 40)), tokens(100, 20));
        // Carried is spent: a later line of the attempt counts whole.
        assert_eq!(carried.take(&tokens(50, 5)), tokens(50, 5));
    }

    #[test]
    fn a_line_smaller_than_the_carried_total_counts_nothing_and_keeps_the_rest() {
        let mut carried = Carried::new(Usage { cost: Usd(300), ..tokens(100, 20) });
        assert_eq!(carried.take(&Usage { cost: Usd(100), ..tokens(60, 20) }), tokens(0, 0));
        assert_eq!(carried.take(&Usage { cost: Usd(250), ..tokens(70, 1) }), Usage { cost: Usd(50), ..tokens(30, 1) });
        assert_eq!(Carried::default().take(&tokens(7, 3)), tokens(7, 3), "nothing carried: the line as it is");
    }
}
