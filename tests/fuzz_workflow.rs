//! Fuzzing the workflow parser (issue 11, item 18): arbitrary bytes and mutations of
//! the bundled workflows (bytes flipped, text cut short, numbers swapped for extremes,
//! keys swapped, lines dropped or doubled) never panic, and always give either a valid
//! workflow or errors that each name a line and column inside the file, in plain words.
//!
//! The budget is small on purpose (a few hundred cases per property, a couple of
//! seconds in a debug build), so it runs on every CI build; the mutations are aimed at
//! the places operators get wrong, which finds more per case than uniform noise.

use std::path::Path;

use pitboss::config::{self, ConfigError};
use pitboss::core::workflow::{Workflow, MAX_DURATION_MS};
use proptest::prelude::*;

/// The bundled workflows: real, valid files to mutate.
const SEEDS: &[&str] = &[
    include_str!("../assets/workflows/demo.toml"),
    include_str!("../assets/workflows/examples.toml"),
    include_str!("../assets/workflows/resilience.toml"),
    include_str!("../assets/workflows/consensus.toml"),
];

/// Words of parser internals that must never reach an operator.
const INTERNALS: &[&str] = &["Raw", "$__toml", "i64", "i128", "f64", "struct ", "sequence", "invalid type"];

/// Numbers an operator (or a typo) may write where a small count or duration is meant.
const EXTREMES: &[&str] = &[
    "0",
    "-1",
    "-0",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999",
    "4294967299",
    "1e12",
    "1e308",
    "nan",
    "-inf",
    "0.5",
    "\"18446744073709551615ms\"",
    "\"99999h\"",
];

/// One change to a valid workflow.
#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the byte at (index mod length) with this byte.
    FlipByte(usize, u8),
    /// Cut the text at (index mod length).
    Truncate(usize),
    /// Replace the (index mod count)-th run of digits with an extreme.
    ExtremeNumber(usize, usize),
    /// Swap the keys of two `key = value` lines.
    SwapKeys(usize, usize),
    /// Drop one line.
    DropLine(usize),
    /// Write one line twice.
    DoubleLine(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::FlipByte(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 0..EXTREMES.len()).prop_map(|(i, e)| Mutation::ExtremeNumber(i, e)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapKeys(a, b)),
        any::<usize>().prop_map(Mutation::DropLine),
        any::<usize>().prop_map(Mutation::DoubleLine),
    ]
}

/// Applies a mutation; the result may be any bytes, read as the manager reads a file
/// it was given (invalid UTF-8 is refused before parsing, so it is replaced here).
fn mutate(text: &str, m: &Mutation) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let lines: Vec<&str> = text.lines().collect();
    match m {
        Mutation::FlipByte(i, b) if !bytes.is_empty() => {
            let at = i % bytes.len();
            bytes[at] = *b;
        }
        Mutation::Truncate(i) => bytes.truncate(i % (bytes.len() + 1)),
        Mutation::ExtremeNumber(i, e) => {
            let numbers = digit_runs(text);
            if !numbers.is_empty() {
                let (start, end) = numbers[i % numbers.len()];
                return format!("{}{}{}", &text[..start], EXTREMES[*e], &text[end..]);
            }
        }
        Mutation::SwapKeys(a, b) => {
            let keyed: Vec<usize> = (0..lines.len()).filter(|&k| key_of(lines[k]).is_some()).collect();
            if keyed.len() >= 2 {
                let (x, y) = (keyed[a % keyed.len()], keyed[b % keyed.len()]);
                let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
                let (kx, ky) = (key_of(lines[x]).unwrap_or(""), key_of(lines[y]).unwrap_or(""));
                out[x] = lines[x].replacen(kx, ky, 1);
                out[y] = lines[y].replacen(ky, kx, 1);
                return out.join("\n");
            }
        }
        Mutation::DropLine(i) | Mutation::DoubleLine(i) if !lines.is_empty() => {
            let at = i % lines.len();
            let mut out: Vec<&str> = lines.clone();
            if matches!(m, Mutation::DropLine(_)) {
                out.remove(at);
            } else {
                out.insert(at, lines[at]);
            }
            return out.join("\n");
        }
        _ => {}
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Byte ranges of the runs of ASCII digits in `text`.
fn digit_runs(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            runs.push((start, i));
        } else {
            i += 1;
        }
    }
    runs
}

/// The key of a `key = value` line.
fn key_of(line: &str) -> Option<&str> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some(key)
}

/// The property: a valid workflow that holds to its own rules, or located, plain errors.
fn holds(text: &str) -> Result<(), TestCaseError> {
    match config::parse(text, "fuzz.toml", Path::new("/base")) {
        Ok(workflow) => valid(&workflow),
        Err(error) => located(text, &error),
    }
}

fn valid(workflow: &Workflow) -> Result<(), TestCaseError> {
    prop_assert_eq!(workflow.check(), vec![], "a workflow that passed breaks the core's rules");
    let mut durations = vec![workflow.kill_grace_ms];
    for pool in &workflow.pools {
        durations.extend([pool.stall_after_ms, pool.stall_kill_after_ms].into_iter().flatten());
        if let Some(b) = pool.breaker {
            durations.extend([b.window_ms, b.cooldown_ms]);
        }
    }
    for task in &workflow.tasks {
        durations.extend([task.timeout_ms, task.retry.initial_ms, task.retry.max_ms]);
        prop_assert!(task.never_on().iter().all(|c| (0..=255).contains(c)), "{:?}", task.never_on());
    }
    prop_assert!(durations.iter().all(|d| *d <= MAX_DURATION_MS), "{durations:?}");
    Ok(())
}

fn located(text: &str, error: &ConfigError) -> Result<(), TestCaseError> {
    prop_assert!(!error.problems.is_empty(), "an error without a problem");
    let lines = text.split('\n').count();
    for p in &error.problems {
        prop_assert!(p.line >= 1 && p.line <= lines, "line {} of {lines}: {}", p.line, p.message);
        let width = text.split('\n').nth(p.line - 1).map_or(0, |l| l.chars().count());
        prop_assert!(p.col >= 1 && p.col <= width + 1, "column {} of {width} at line {}: {}", p.col, p.line, p.message);
        prop_assert!(!p.message.trim().is_empty());
        prop_assert!(!p.message.contains('\n'), "{}", p.message);
        for word in INTERNALS {
            prop_assert!(!p.message.contains(word), "{word:?} leaks: {}", p.message);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_time: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_and_errors_are_located(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        holds(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn toml_like_text_never_panics_and_errors_are_located(
        text in "([\\[\\]{}=,\"'.#a-z_0-9 \n-]|pool|task|run|retry|breaker|\\[\\[|\\]\\]){0,120}"
    ) {
        holds(&text)?;
    }

    #[test]
    fn mutated_workflows_never_panic_and_errors_are_located(
        seed in 0..SEEDS.len(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let text = mutations.iter().fold(SEEDS[seed].to_string(), |text, m| mutate(&text, m));
        holds(&text)?;
    }
}

#[test]
fn the_seeds_are_valid_workflows() {
    for seed in SEEDS {
        let workflow = config::parse(seed, "seed.toml", Path::new("/base")).expect("a bundled workflow is valid");
        valid(&workflow).expect("a bundled workflow holds to the rules");
    }
}
