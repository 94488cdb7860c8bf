//! The `budget` command's words (DESIGN §12, §13), shared by `ctl` and the palette:
//! `budget --max-cost-usd 8`, `budget --task-cost-usd 2`, both, or `budget 8` for the
//! run's. Numbers are dollars; their range is checked against the run by
//! `decide::raise_budget`, so every front end refuses the same things.

use super::command::Command;

const USAGE: &str = "usage: budget [--max-cost-usd] DOLLARS [--task-cost-usd DOLLARS]";

/// The words after `budget`, read.
pub(super) fn parse(words: &[&str]) -> Result<Command, String> {
    let (mut max, mut task) = (None, None);
    let mut rest = words.iter().copied();
    while let Some(word) = rest.next() {
        let (key, value) = match word.split_once('=') {
            Some((key, value)) if key.starts_with("--") => (key, Some(value)),
            _ if word.starts_with("--") => (word, None),
            _ => ("--max-cost-usd", Some(word)),
        };
        let slot = match key {
            "--max-cost-usd" => &mut max,
            "--task-cost-usd" => &mut task,
            _ => return Err(format!("budget: unknown option {key:?}; {USAGE}")),
        };
        let Some(value) = value.or_else(|| rest.next()) else {
            return Err(format!("budget {key}: how many dollars? {USAGE}"));
        };
        let dollars = value.trim_start_matches('$').parse::<f64>().ok().filter(|d| d.is_finite());
        let Some(dollars) = dollars else { return Err(format!("budget {key} {value}: not a number of dollars")) };
        if slot.replace(dollars).is_some() {
            return Err(format!("budget: {key} given twice"));
        }
    }
    if max.is_none() && task.is_none() {
        return Err(USAGE.into());
    }
    Ok(Command::Budget { max_cost_usd: max, task_cost_usd: task })
}

/// The command line for a raise (what an attached TUI sends).
pub(super) fn line(max: Option<f64>, task: Option<f64>) -> String {
    let mut line = "budget".to_string();
    if let Some(max) = max {
        line.push_str(&format!(" --max-cost-usd {max}"));
    }
    if let Some(task) = task {
        line.push_str(&format!(" --task-cost-usd {task}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_words_read_in_every_form_and_bad_ones_say_why() {
        let read = |words: &[&str]| parse(words);
        let both = Command::Budget { max_cost_usd: Some(8.0), task_cost_usd: Some(2.5) };
        assert_eq!(read(&["--max-cost-usd", "8", "--task-cost-usd", "2.5"]), Ok(both.clone()));
        assert_eq!(read(&["--max-cost-usd=8", "--task-cost-usd=$2.5"]), Ok(both));
        assert_eq!(read(&["8"]), Ok(Command::Budget { max_cost_usd: Some(8.0), task_cost_usd: None }));
        assert!(read(&[]).unwrap_err().starts_with("usage"));
        assert!(read(&["--max-cost-usd"]).unwrap_err().contains("how many dollars"));
        assert!(read(&["--max-cost-usd", "lots"]).unwrap_err().contains("not a number"));
        assert!(read(&["--max-cost-usd", "inf"]).unwrap_err().contains("not a number"));
        assert!(read(&["--colour", "1"]).unwrap_err().contains("unknown option"));
        assert!(read(&["1", "2"]).unwrap_err().contains("given twice"));
        assert_eq!(line(Some(8.0), None), "budget --max-cost-usd 8");
    }
}
