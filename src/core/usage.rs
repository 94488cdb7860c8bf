//! What agents cost (DESIGN §4, §13): the `{"pitboss":"usage",…}` control line read
//! into a checked [`Usage`], money as exact [`Usd`], and the [`Spend`] sums the fold
//! keeps per attempt, task, pool and run ([`SpendBook`]).
//!
//! Money is held as whole micro-dollars, never as a float sum: a fold of the log must
//! equal the live state exactly (the property the tests check), and float sums depend
//! on their order. A worker's number is range-checked before it becomes money: a
//! negative, non-finite or huge cost is refused with a reason, never wrapped.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Micro-dollars in a dollar.
const MICROS: f64 = 1_000_000.0;

/// The most one usage line may cost, in dollars: above it the line is refused as
/// nonsense (no agent call costs a million dollars), which also keeps every sum far
/// from overflowing.
pub const MAX_LINE_USD: f64 = 1_000_000.0;

/// The most tokens one usage line may count, per kind.
pub const MAX_LINE_TOKENS: u64 = 1_000_000_000_000;

/// The most a budget may be, in dollars (a workflow's or an operator's number).
pub const MAX_BUDGET_USD: f64 = 1_000_000_000.0;

/// An amount of US dollars, exact to the micro-dollar. Written as a JSON number of
/// dollars (`1.25`), read back rounded to the micro-dollar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usd(pub u64);

impl Usd {
    /// Zero dollars.
    pub const ZERO: Usd = Usd(0);

    /// Dollars as a float, if finite, not negative and at most `max`; else why not.
    pub fn from_dollars(dollars: f64, max: f64) -> Result<Usd, String> {
        if !dollars.is_finite() {
            return Err(format!("{} is not a number of dollars", amount(dollars)));
        }
        if dollars < 0.0 {
            return Err(format!("{} is negative", amount(dollars)));
        }
        if dollars > max {
            return Err(format!("{} is over the limit of {}", amount(dollars), amount(max)));
        }
        Ok(Usd((dollars * MICROS).round() as u64))
    }

    /// Dollars as a float (for JSON and display).
    pub fn dollars(self) -> f64 {
        self.0 as f64 / MICROS
    }

    /// The sum, saturating.
    pub fn plus(self, other: Usd) -> Usd {
        Usd(self.0.saturating_add(other.0))
    }
}

/// A worker's or operator's number as it reads best: `2.5`, or `1e300` for a huge one
/// (never three hundred digits).
fn amount(dollars: f64) -> String {
    if dollars.abs() >= 1e7 {
        format!("{dollars:e}")
    } else {
        format!("{dollars}")
    }
}

impl fmt::Display for Usd {
    /// `$1.23`; a spend under a cent keeps four decimals (`$0.0042`), so that a cheap
    /// run does not read `$0.00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 > 0 && self.0 < 10_000 {
            write!(f, "${:.4}", self.dollars())
        } else {
            write!(f, "${:.2}", self.dollars())
        }
    }
}

impl Serialize for Usd {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.dollars())
    }
}

impl<'de> Deserialize<'de> for Usd {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Usd, D::Error> {
        let dollars = f64::deserialize(d)?;
        Usd::from_dollars(dollars, f64::MAX).map_err(serde::de::Error::custom)
    }
}

/// One usage line's numbers, checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// What the call cost.
    pub cost: Usd,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Prompt tokens read from a cache (optional in the line).
    pub cache_read_tokens: u64,
    /// Prompt tokens written to a cache (optional in the line).
    pub cache_creation_tokens: u64,
}

/// Reads a `{"pitboss":"usage",…}` line's object: `cost_usd` (dollars), and token
/// counts `input_tokens`, `output_tokens`, `cache_read_tokens`,
/// `cache_creation_tokens`, each optional but at least one present. A number out of
/// range or of the wrong kind refuses the whole line, with the reason.
pub fn parse_usage(line: &Value) -> Result<Usage, String> {
    let Some(object) = line.as_object() else {
        return Err("a usage line must be a JSON object".into());
    };
    let mut usage = Usage::default();
    let mut any = false;
    if let Some(cost) = object.get("cost_usd").filter(|v| !v.is_null()) {
        let dollars = cost.as_f64().ok_or_else(|| format!("cost_usd must be a number, got {cost}"))?;
        usage.cost = Usd::from_dollars(dollars, MAX_LINE_USD).map_err(|e| format!("cost_usd {e}"))?;
        any = true;
    }
    let counts = [
        ("input_tokens", &mut usage.input_tokens),
        ("output_tokens", &mut usage.output_tokens),
        ("cache_read_tokens", &mut usage.cache_read_tokens),
        ("cache_creation_tokens", &mut usage.cache_creation_tokens),
    ];
    for (key, slot) in counts {
        let Some(value) = object.get(key).filter(|v| !v.is_null()) else { continue };
        let n =
            value.as_u64().ok_or_else(|| format!("{key} must be a whole number of tokens, at least 0, got {value}"))?;
        if n > MAX_LINE_TOKENS {
            return Err(format!("{key} {n} is over the limit of {MAX_LINE_TOKENS}"));
        }
        *slot = n;
        any = true;
    }
    if !any {
        return Err("a usage line gives none of cost_usd, input_tokens, output_tokens".into());
    }
    Ok(usage)
}

/// The usage line that says `usage`: what [`parse_usage`] reads back to the same
/// numbers (a remote worker sends the lines it read this way, and the manager checks
/// them again like a local line: the broker is not trusted).
pub fn usage_line(usage: &Usage) -> Value {
    serde_json::json!({
        "pitboss": "usage",
        "cost_usd": usage.cost,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_creation_tokens": usage.cache_creation_tokens,
    })
}

/// What some attempts spent, summed (saturating).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    /// Dollars.
    #[serde(default)]
    pub cost_usd: Usd,
    /// Prompt tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Completion tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Cached prompt tokens read.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_read_tokens: u64,
    /// Cached prompt tokens written.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_creation_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Spend {
    /// Adds one usage line.
    pub fn add(&mut self, usage: &Usage) {
        self.cost_usd = self.cost_usd.plus(usage.cost);
        self.input_tokens = self.input_tokens.saturating_add(usage.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(usage.output_tokens);
        self.cache_read_tokens = self.cache_read_tokens.saturating_add(usage.cache_read_tokens);
        self.cache_creation_tokens = self.cache_creation_tokens.saturating_add(usage.cache_creation_tokens);
    }

    /// `$1.23 · 12.3k in / 4.5k out`, for the TUI and the CLI.
    pub fn describe(&self) -> String {
        format!("{} · {} in / {} out", self.cost_usd, tokens(self.input_tokens), tokens(self.output_tokens))
    }
}

/// A token count in few characters: `950`, `12.3k`, `4.5M`.
pub fn tokens(n: u64) -> String {
    match n {
        0..=999 => n.to_string(),
        1_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

/// One task's spend: in all and per attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpend {
    /// Every attempt together.
    pub total: Spend,
    /// By attempt number (a consensus attempt's replicas share theirs).
    pub attempts: BTreeMap<u32, Spend>,
}

/// The run's spend and budget state, folded from `usage_recorded`, `budget_exhausted`
/// and `budget_raised` (DESIGN §13). Empty, and then not written in a snapshot, for a
/// run where no worker reported usage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendBook {
    /// The whole run.
    #[serde(default)]
    pub run: Spend,
    /// By task index (only tasks that reported usage).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tasks: BTreeMap<usize, TaskSpend>,
    /// By pool name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pools: BTreeMap<String, Spend>,
    /// An operator's `max_cost_usd` (`budget_raised`), over the workflow's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<Usd>,
    /// An operator's `task_cost_usd` (`budget_raised`), over the workflow's and the
    /// pools'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_cost_usd: Option<Usd>,
    /// True from `budget_exhausted` to the next `budget_raised`: no attempt starts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exhausted: bool,
    /// True once any usage was recorded (the front ends show spend only then).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reported: bool,
}

impl SpendBook {
    /// True when nothing was recorded (not written in a snapshot).
    pub fn is_empty(&self) -> bool {
        *self == SpendBook::default()
    }

    /// Adds one `usage_recorded`.
    pub fn record(&mut self, task: usize, attempt: u32, pool: &str, usage: &Usage) {
        self.reported = true;
        self.run.add(usage);
        let spend = self.tasks.entry(task).or_default();
        spend.total.add(usage);
        spend.attempts.entry(attempt).or_default().add(usage);
        match self.pools.get_mut(pool) {
            Some(spend) => spend.add(usage),
            None => {
                self.pools.entry(pool.to_string()).or_default().add(usage);
            }
        }
    }

    /// Task `i`'s spend, if it reported any.
    pub fn task(&self, i: usize) -> Option<&TaskSpend> {
        self.tasks.get(&i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_usage_line_is_read_with_its_optional_cache_tokens() {
        let got = parse_usage(&json!({"pitboss":"usage","cost_usd":0.25,"input_tokens":100,"output_tokens":7,
            "cache_read_tokens":3}))
        .unwrap();
        assert_eq!(got.cost, Usd(250_000));
        assert_eq!((got.input_tokens, got.output_tokens, got.cache_read_tokens), (100, 7, 3));
        assert_eq!(parse_usage(&json!({"pitboss":"usage","cost_usd":1})).unwrap().cost, Usd(1_000_000));
    }

    #[test]
    fn a_usage_written_as_a_line_reads_back_the_same() {
        let usage = Usage {
            cost: Usd(1_234_567),
            input_tokens: 10,
            output_tokens: 2,
            cache_read_tokens: 3,
            cache_creation_tokens: 4,
        };
        assert_eq!(parse_usage(&usage_line(&usage)), Ok(usage));
        let tiny = Usage { cost: Usd(1), ..Usage::default() };
        assert_eq!(parse_usage(&usage_line(&tiny)), Ok(tiny));
    }

    #[test]
    fn bad_numbers_refuse_the_line_with_a_reason() {
        let bad = [
            (json!({"pitboss":"usage","cost_usd":-1.0}), "cost_usd -1 is negative"),
            (json!({"pitboss":"usage","cost_usd":"3"}), "cost_usd must be a number"),
            (json!({"pitboss":"usage","cost_usd":1e12}), "over the limit"),
            (json!({"pitboss":"usage","input_tokens":-5}), "input_tokens must be a whole number"),
            (json!({"pitboss":"usage","output_tokens":1.5}), "output_tokens must be a whole number"),
            (json!({"pitboss":"usage","input_tokens":u64::MAX}), "over the limit"),
            (json!({"pitboss":"usage"}), "gives none of"),
        ];
        for (line, want) in bad {
            let got = parse_usage(&line).expect_err("refused");
            assert!(got.contains(want), "{line}: {got}");
        }
        assert!(Usd::from_dollars(f64::NAN, MAX_LINE_USD).is_err());
        assert!(Usd::from_dollars(f64::INFINITY, MAX_LINE_USD).is_err());
    }

    #[test]
    fn sums_are_exact_whatever_their_order() {
        let cents = |c: f64| Usage { cost: Usd::from_dollars(c, MAX_LINE_USD).unwrap(), ..Usage::default() };
        let (mut a, mut b) = (Spend::default(), Spend::default());
        for c in [0.1, 0.2, 0.3] {
            a.add(&cents(c));
        }
        for c in [0.3, 0.2, 0.1] {
            b.add(&cents(c));
        }
        assert_eq!(a, b);
        assert_eq!(a.cost_usd, Usd(600_000));
        assert_eq!(a.cost_usd.to_string(), "$0.60");
        assert_eq!(Usd(4_200).to_string(), "$0.0042");
        let back: Usd = serde_json::from_str(&serde_json::to_string(&Usd(1_234_567)).unwrap()).unwrap();
        assert_eq!(back, Usd(1_234_567));
    }

    #[test]
    fn the_book_adds_per_attempt_task_pool_and_run() {
        let mut book = SpendBook::default();
        let u = Usage { cost: Usd(1_000_000), input_tokens: 10, output_tokens: 2, ..Usage::default() };
        book.record(3, 1, "claude", &u);
        book.record(3, 1, "claude", &u);
        book.record(3, 2, "cheap", &u);
        assert_eq!(book.run.cost_usd, Usd(3_000_000));
        let task = book.task(3).unwrap();
        assert_eq!(task.total.input_tokens, 30);
        assert_eq!(task.attempts[&1].cost_usd, Usd(2_000_000));
        assert_eq!(book.pools["cheap"].cost_usd, Usd(1_000_000));
        assert!(book.reported && !book.is_empty());
    }
}
