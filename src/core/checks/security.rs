//! The built-in rules of the `security` gate (DESIGN §9): a scan of every string in a
//! task's result, object keys included, for secrets and for injection-prone code.
//!
//! Secrets (`secret/…`): AWS access key ids and secret keys, GitHub, Slack, OpenAI and
//! Anthropic tokens, private key PEM blocks, JWTs, passwords assigned in code or held
//! in a `password`-like member, and the run's own secret values (or the
//! `[REDACTED:NAME]` mark left where a worker printed one). Code (`code/…`): SQL built
//! by concatenation or interpolation, `eval`/`exec` of something other than a
//! literal, unescaped HTML sinks, `curl … | sh`, and shell commands built from input.
//!
//! The rules are shapes, not proofs: each one is tuned to stay quiet on ordinary prose
//! and on the safe form of the same code (a parameterised query, a literal assigned to
//! `innerHTML`, a `shell=True` with a fixed string), and the tests hold both sides.
//! A finding's excerpt never shows a secret's value (see [`super::mask`]).

use std::ops::Range;

use serde_json::Value;

use super::{excerpt, mask, plain_segment, walk, Finding, Masked, Place};
use crate::core::redact::MIN_SECRET_LEN;
use rules::{is_placeholder, rules, Rules};

/// At most this many findings are reported for one result (the verdict must stay a
/// readable event; the first ones are enough to act on).
pub const MAX_FINDINGS: usize = 100;

/// Every built-in finding in `result`; `secrets` are the run's own secret values as
/// `(NAME, value)`, looked for verbatim (values shorter than [`MIN_SECRET_LEN`] are
/// not, as for redaction). Findings come in document order, at most [`MAX_FINDINGS`].
pub fn scan(result: &Value, secrets: &[(String, String)]) -> Vec<Finding> {
    let rules = rules();
    let secrets: Vec<&(String, String)> = secrets.iter().filter(|(_, v)| v.len() >= MIN_SECRET_LEN).collect();
    let segment = |key: &str| masked_segment(rules, &secrets, key);
    let mut findings = Vec::new();
    let mut last_key: Option<(String, String)> = None;
    walk(result, "", &segment, &mut |place, text| {
        let member = if place.is_key {
            last_key = Some((place.pointer.to_string(), text.to_string()));
            None
        } else {
            last_key.take().filter(|(p, _)| p == place.pointer).map(|(_, key)| key)
        };
        scan_string(rules, &secrets, place, text, member.as_deref(), &mut findings);
        findings.len() < MAX_FINDINGS
    });
    findings.truncate(MAX_FINDINGS);
    findings
}

/// One hit inside a string, before it becomes a [`Finding`].
struct Hit {
    rule: &'static str,
    span: Range<usize>,
    /// What replaces the span in every excerpt, for a secret.
    mask: Option<String>,
}

fn scan_string(
    rules: &Rules,
    secrets: &[&(String, String)],
    place: &Place<'_>,
    text: &str,
    member_key: Option<&str>,
    out: &mut Vec<Finding>,
) {
    let mut hits = secret_hits(rules, secrets, text);
    if let Some(key) = member_key {
        if let Some(rule) = member_secret(rules, key, text) {
            if !hits.iter().any(|h| h.span.start == 0 && h.mask.is_some()) {
                hits.push(Hit { rule, span: 0..text.len(), mask: Some(mask(text)) });
            }
        }
    }
    for rule in &rules.code {
        for caps in rule.regex.captures_iter(text) {
            if let Some(span) = (rule.accept)(&caps, rules, text) {
                hits.push(Hit { rule: rule.name, span, mask: None });
            }
        }
    }
    if hits.is_empty() {
        return;
    }
    hits.sort_by_key(|h| (h.span.start, h.rule));
    hits.dedup_by(|a, b| a.rule == b.rule && a.span.start == b.span.start);
    let masks: Vec<Masked> = hits
        .iter()
        .filter_map(|h| h.mask.clone().map(|shown| Masked { start: h.span.start, end: h.span.end, shown }))
        .collect();
    for hit in hits {
        out.push(Finding {
            rule: hit.rule.to_string(),
            location: place.at(text, hit.span.start),
            excerpt: excerpt(text, hit.span.start, hit.span.end, &masks),
        });
    }
}

/// The secrets in `text`: pattern rules, the run's own values and redaction marks.
fn secret_hits(rules: &Rules, secrets: &[&(String, String)], text: &str) -> Vec<Hit> {
    let mut hits = Vec::new();
    for rule in &rules.secret {
        for caps in rule.regex.captures_iter(text) {
            if let Some(span) = (rule.accept)(&caps, rules, text) {
                let mask = rule.masked.then(|| mask(&text[span.clone()]));
                hits.push(Hit { rule: rule.name, span, mask });
            }
        }
    }
    for (name, value) in secrets {
        for (start, _) in text.match_indices(value.as_str()) {
            let shown = format!("[secret {name}, {} chars]", value.chars().count());
            hits.push(Hit { rule: RUN_SECRET, span: start..start + value.len(), mask: Some(shown) });
        }
    }
    for m in rules.redacted.find_iter(text) {
        hits.push(Hit { rule: RUN_SECRET, span: m.range(), mask: None });
    }
    hits
}

/// A key as a pointer segment, with any secret in it masked (a location must not
/// leak what the excerpt hides).
fn masked_segment(rules: &Rules, secrets: &[&(String, String)], key: &str) -> String {
    let hits = secret_hits(rules, secrets, key);
    if hits.iter().all(|h| h.mask.is_none()) {
        return plain_segment(key);
    }
    let mut shown = String::new();
    let mut at = 0;
    let mut masked: Vec<&Hit> = hits.iter().filter(|h| h.mask.is_some()).collect();
    masked.sort_by_key(|h| h.span.start);
    for h in masked {
        if h.span.start < at {
            continue;
        }
        shown.push_str(&plain_segment(&key[at..h.span.start]));
        shown.push_str(h.mask.as_deref().unwrap_or_default());
        at = h.span.end;
    }
    shown.push_str(&plain_segment(&key[at..]));
    shown
}

/// The rule a `key: value` member breaks when its key names a secret and its value
/// looks like one (not a placeholder, no spaces).
fn member_secret(rules: &Rules, key: &str, value: &str) -> Option<&'static str> {
    if !rules.secret_key.is_match(key) || value.chars().count() < 5 || value.contains(char::is_whitespace) {
        return None;
    }
    if is_placeholder(value) || rules.redacted.is_match(value) {
        return None;
    }
    let aws = key.to_ascii_lowercase().contains("aws");
    Some(if aws && value.len() == 40 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'+') {
        "secret/aws-secret-key"
    } else {
        "secret/password-assignment"
    })
}

const RUN_SECRET: &str = "secret/run-secret";

mod rules;

#[cfg(test)]
mod tests;
