//! `[[notify]]` entries (DESIGN §12) → checked [`NotifySpec`]s. Their keys and the
//! kinds of their values are checked with the rest of the file (`shape.rs`); here,
//! at each value's line and column: names in `on` that are neither an event type nor a
//! task state, an empty `on` or `command`, a bad `timeout`, a `concurrency` out of
//! range. A relative program path (`./hook.sh`) is made absolute against the
//! workflow's folder, as pools' commands are.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::check::Checker;
use crate::core::workflow::{
    event_names, state_names, NotifySpec, DEFAULT_NOTIFY_CONCURRENCY, DEFAULT_NOTIFY_TIMEOUT_MS, MAX_NOTIFY_CONCURRENCY,
};

/// One `[[notify]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    on: Spanned<Vec<Spanned<String>>>,
    command: Spanned<Vec<Spanned<String>>>,
    timeout: Option<Spanned<String>>,
    concurrency: Option<Spanned<i128>>,
}

impl Checker<'_> {
    /// The checked entries; those with a problem are reported and left out.
    pub(super) fn notify(&mut self, raw: &[RawNotify]) -> Vec<NotifySpec> {
        if raw.is_empty() {
            return Vec::new();
        }
        let events = event_names();
        let states = state_names();
        raw.iter().filter_map(|entry| self.notify_entry(entry, &events, &states)).collect()
    }

    fn notify_entry(&mut self, raw: &RawNotify, events: &[String], states: &[&str]) -> Option<NotifySpec> {
        let mut ok = true;
        if raw.on.get_ref().is_empty() {
            self.report(raw.on.span(), "notify: `on` names nothing, so the hook would never run; name an event type or a task state, such as on = [\"dead_lettered\"]");
            ok = false;
        }
        for name in raw.on.get_ref() {
            let n = name.get_ref().as_str();
            if !events.iter().any(|e| e == n) && !states.contains(&n) {
                let message = format!(
                    "notify: unknown name {n:?} in `on`: name a task state ({}) or an event type ({})",
                    states.join(", "),
                    events.join(", ")
                );
                self.report(name.span(), message);
                ok = false;
            }
        }
        let command: Vec<String> = raw.command.get_ref().iter().map(|a| a.get_ref().clone()).collect();
        if command.first().is_none_or(|program| program.trim().is_empty()) {
            self.report(
                raw.command.span(),
                "notify: `command` is empty; give the program to run, such as command = [\"./hook.sh\"]",
            );
            ok = false;
        }
        let timeout_ms = match &raw.timeout {
            None => Some(DEFAULT_NOTIFY_TIMEOUT_MS),
            Some(t) => match self.duration(t, "notify timeout") {
                Some(0) => {
                    self.report(t.span(), "notify timeout must be more than 0s");
                    None
                }
                other => other,
            },
        };
        let concurrency = match &raw.concurrency {
            None => Some(DEFAULT_NOTIFY_CONCURRENCY),
            Some(c) => {
                let n = *c.get_ref();
                let fits = usize::try_from(n).ok().filter(|n| (1..=MAX_NOTIFY_CONCURRENCY).contains(n));
                if fits.is_none() {
                    let message = format!("notify concurrency must be 1 to {MAX_NOTIFY_CONCURRENCY}, got {n}");
                    self.report(c.span(), message);
                }
                fits
            }
        };
        let (Some(timeout_ms), Some(concurrency), true) = (timeout_ms, concurrency, ok) else { return None };
        let on = raw.on.get_ref().iter().map(|n| n.get_ref().clone()).collect();
        Some(NotifySpec { on, command: resolve_program(command, self.base), timeout_ms, concurrency })
    }
}

/// `./hook.sh` means next to the workflow, not wherever pitboss was started; a bare
/// name (`notify-send`) is looked up on PATH when it runs.
fn resolve_program(mut command: Vec<String>, base: &Path) -> Vec<String> {
    if let Some(program) = command.first_mut() {
        if program.contains('/') && Path::new(program.as_str()).is_relative() {
            let relative = program.strip_prefix("./").unwrap_or(program);
            *program = base.join(relative).display().to_string();
        }
    }
    command
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::parse;

    const POOL: &str = "[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\n[[task]]\nid = \"a\"\n";

    fn problems(notify: &str) -> String {
        match parse(&format!("{POOL}{notify}"), "wf.toml", Path::new("/base")) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_valid_entry_gets_defaults_and_an_absolute_program() {
        let text =
            format!("{POOL}[[notify]]\non = [\"dead_lettered\", \"run_finished\"]\ncommand = [\"./hook.sh\", \"x\"]\n");
        let workflow = parse(&text, "wf.toml", Path::new("/base")).expect("valid");
        let spec = &workflow.notify[0];
        assert_eq!(spec.command, ["/base/hook.sh", "x"]);
        assert_eq!((spec.timeout_ms, spec.concurrency), (10_000, 4));
        assert_eq!(spec.on, ["dead_lettered", "run_finished"]);
    }

    #[test]
    fn bad_values_are_placed_at_their_line_and_column() {
        let said = problems(
            "[[notify]]\non = [\"completed\", \"finished\"]\ncommand = []\ntimeout = \"0s\"\nconcurrency = 0\n",
        );
        assert!(said.contains("wf.toml:7:20: notify: unknown name \"finished\" in `on`"), "{said}");
        assert!(said.contains("dead_lettered") && said.contains("breaker_opened"), "{said}");
        assert!(said.contains("wf.toml:8:11: notify: `command` is empty"), "{said}");
        assert!(said.contains("wf.toml:9:11: notify timeout must be more than 0s"), "{said}");
        assert!(said.contains("wf.toml:10:15: notify concurrency must be 1 to 64, got 0"), "{said}");
        let said = problems("[[notify]]\non = []\ncommand = [\"x\"]\n");
        assert!(said.contains("wf.toml:7:6: notify: `on` names nothing"), "{said}");
    }

    #[test]
    fn unknown_and_missing_keys_are_shape_errors() {
        let said = problems("[[notify]]\non = [\"completed\"]\ncommand = [\"x\"]\nretry = 3\n");
        assert!(said.contains("wf.toml:9:1: unknown key `retry` in [[notify]]"), "{said}");
        let said = problems("[[notify]]\non = [\"completed\"]\n");
        assert!(said.contains("wf.toml:6:1: this [[notify]] has no command"), "{said}");
    }
}
