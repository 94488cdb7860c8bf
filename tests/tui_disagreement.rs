//! The disagreement view (DESIGN §10, issue 12 item 5) rendered to ratatui's
//! `TestBackend`: candidates built by the real tally from fixed votes, side by side
//! with the JSON paths where they differ and who voted for each.

use std::collections::BTreeMap;

use pitboss::core::consensus::{tally, Decision, Strategy, Vote};
use pitboss::tui::screens::disagreement::{self, Disagreement, DisagreementView};
use pitboss::tui::theme::Theme;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use serde_json::{json, Value};

/// Three replicas, three different notes: what a judge would be asked to settle.
fn three_way() -> Disagreement {
    let results = [
        json!({"title": "Fix the parser", "tags": ["bug", "parser"], "risk": 1, "notes": "same"}),
        json!({"title": "Fix the lexer", "tags": ["bug"], "risk": 1.0, "notes": "same"}),
        json!({"title": "Fix the parser", "tags": ["bug", "lexer"], "risk": 3, "notes": "same", "owner": "ana"}),
    ];
    from_votes("draft", 2, &results.map(Some), 2)
}

fn from_votes(task: &str, attempt: u32, results: &[Option<Value>], quorum: u32) -> Disagreement {
    let votes: Vec<Vote> = results
        .iter()
        .enumerate()
        .map(|(r, v)| Vote::new(r as u32, format!("writer-{}", (b'a' + r as u8) as char), v.clone(), None))
        .collect();
    let workers: BTreeMap<u32, String> = votes.iter().map(|v| (v.replica, v.worker.clone())).collect();
    let n = results.len() as u32;
    match tally(&votes, n, quorum, Strategy::Judge) {
        Decision::NeedJudge { candidates, abstained } => {
            Disagreement::new(task, attempt, n, quorum, candidates, abstained, workers)
        }
        other => panic!("expected a disagreement, got {other:?}"),
    }
}

fn render(d: &Disagreement, view: &DisagreementView, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| disagreement::draw(frame, frame.area(), d, view, Theme { color: false })).unwrap();
    format!("{}", terminal.backend())
}

#[test]
fn three_candidates_side_by_side() {
    insta::assert_snapshot!(render(&three_way(), &DisagreementView::default(), 110, 14));
}

#[test]
fn many_candidates_on_a_small_terminal_scroll_both_ways() {
    let results: Vec<Option<Value>> = (0..6)
        // Replica 4 failed; replica 5 agrees with replica 0 (2 votes, short of 4).
        .map(|r| if r == 5 { 0 } else { r })
        .map(|r| if r == 4 { None } else { Some(json!({"answer": r, "why": format!("reason {r}"), "n": [r, r + 1]})) })
        .collect();
    let d = from_votes("pick-one", 1, &results, 4);
    let first = render(&d, &DisagreementView::default(), 72, 12);
    let moved = render(&d, &DisagreementView { scroll: 2, first_candidate: 2 }, 72, 12);
    insta::assert_snapshot!("many_candidates_first", first);
    insta::assert_snapshot!("many_candidates_scrolled", moved);
    assert_ne!(first, moved);
}

#[test]
fn worker_text_is_shown_escaped_never_raw() {
    let results = [Some(json!({"say": "\u{1b}[2Jgone"})), Some(json!({"say": "ok\u{202e}txt"}))];
    let d = from_votes("esc", 1, &results, 2);
    let screen = render(&d, &DisagreementView::default(), 80, 10);
    assert!(!screen.contains('\u{1b}') && !screen.contains('\u{202e}'), "{screen}");
    assert!(screen.contains("/say"), "{screen}");
}

#[test]
fn a_tiny_area_draws_without_panicking() {
    let d = three_way();
    for (w, h) in [(1, 1), (10, 3), (20, 5), (40, 2)] {
        render(&d, &DisagreementView { scroll: 99, first_candidate: 99 }, w, h);
    }
}
