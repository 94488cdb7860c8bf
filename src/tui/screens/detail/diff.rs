//! A task's workspace in its detail (DESIGN §13): a line in the task's box (where
//! it is, and the latest diff's summary), and, with the history cursor on a
//! `diff_recorded` step, that diff (stat, then the patch) in the output pane, where
//! up/down scroll it and `/` searches it. Every line is escaped: a patch is what an
//! agent wrote.

use crate::core::escape::escape_line;
use crate::core::event::DiffRecorded;
use crate::core::Event;
use crate::tui::model::Step;

use super::PaneLine;

/// The box's workspace line, from the steps up to the cursor; None without one.
pub fn summary(steps: &[Step]) -> Option<String> {
    let path = steps.iter().rev().find_map(|s| match &s.event {
        Event::WorkspaceCreated(w) => Some(w.path.clone()),
        _ => None,
    });
    let diff = steps.iter().rev().find_map(|s| match &s.event {
        Event::DiffRecorded(d) => Some(d),
        _ => None,
    });
    if path.is_none() && diff.is_none() {
        return None;
    }
    let mut text = format!("workspace: {}", path.as_deref().unwrap_or("-"));
    if let Some(d) = diff {
        let last = d.stat.lines().rev().find(|l| !l.trim().is_empty()).map_or("no change", str::trim);
        text.push_str(&format!("  · diff after attempt {}: {last} (←/→ to its step: the patch)", d.attempt));
    }
    Some(escape_line(&text).into_owned())
}

/// The pane's title and lines for a `diff_recorded` step.
pub fn pane(step: &Step) -> Option<(String, Vec<PaneLine>)> {
    let Event::DiffRecorded(d) = &step.event else { return None };
    Some((format!(" Diff · attempt {} (workspace) ", d.attempt), lines(d)))
}

fn lines(d: &DiffRecorded) -> Vec<PaneLine> {
    let mut out: Vec<PaneLine> = d.stat.lines().map(|l| PaneLine::Text(escape_line(l).into_owned())).collect();
    if !d.patch.is_empty() {
        out.push(PaneLine::Text(String::new()));
        out.extend(d.patch.lines().map(|l| PaneLine::Text(escape_line(l).into_owned())));
    }
    if d.cut_bytes > 0 {
        out.push(PaneLine::Text(format!("… {} bytes cut", d.cut_bytes)));
    }
    out
}
