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
use std::sync::OnceLock;

use regex::{Captures, Regex};
use serde_json::Value;

use super::{excerpt, mask, plain_segment, walk, Finding, Masked, Place};
use crate::core::redact::MIN_SECRET_LEN;

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

/// A value that stands for a secret instead of being one: `${DB_PASSWORD}`,
/// `<your-password>`, `changeme`, `********`.
fn is_placeholder(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    let first = value.chars().next().unwrap_or(' ');
    "${<%*[(".contains(first)
        || value.chars().all(|c| c == first)
        || [
            "example",
            "placeholder",
            "changeme",
            "change_me",
            "change-me",
            "your",
            "xxxx",
            "redacted",
            "dummy",
            "sample",
        ]
        .iter()
        .any(|w| lower.contains(w))
}

/// One pattern rule: a regex, and a check of each match that returns the byte range
/// to report (or `None` when the match is the safe form of the shape).
struct Rule {
    name: &'static str,
    regex: Regex,
    /// For a secret rule: whether the reported range is the secret's value (masked in
    /// excerpts) rather than a harmless marker such as a PEM header.
    masked: bool,
    accept: fn(&Captures<'_>, &Rules, &str) -> Option<Range<usize>>,
}

struct Rules {
    secret: Vec<Rule>,
    code: Vec<Rule>,
    /// SQL statement shapes, looked for inside string literals of code.
    sql: Regex,
    /// An interpolation placeholder inside a format string.
    placeholder: Regex,
    /// A right-hand side or argument that is one plain literal and nothing else.
    literal_only: Regex,
    /// Member names that hold secrets.
    secret_key: Regex,
    /// The mark redaction leaves where a secret value was.
    redacted: Regex,
}

/// The rule table, compiled once: the patterns are constants, so this is a cache of a
/// pure function, not state.
fn rules() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    RULES.get_or_init(build_rules)
}

fn re(pattern: &str) -> Regex {
    // The patterns are literals of this file and `every_pattern_compiles` builds them
    // all; nothing a worker sends reaches this.
    Regex::new(pattern).unwrap_or_else(|e| panic!("built-in security pattern {pattern:?}: {e}"))
}

fn rule(name: &'static str, pattern: &str, accept: fn(&Captures<'_>, &Rules, &str) -> Option<Range<usize>>) -> Rule {
    Rule { name, regex: re(pattern), masked: true, accept }
}

fn whole(caps: &Captures<'_>, _: &Rules, _: &str) -> Option<Range<usize>> {
    caps.get(0).map(|m| m.range())
}

/// The first capture group that took part in the match.
fn first_group<'h>(caps: &Captures<'h>) -> Option<regex::Match<'h>> {
    caps.iter().skip(1).flatten().next()
}

fn build_rules() -> Rules {
    let secret = vec![
        rule("secret/aws-access-key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", whole),
        rule(
            "secret/aws-secret-key",
            r#"(?i:aws_?secret(?:_?access)?(?:_?key)?)["']?\s*(?::|=|=>|:=)\s*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
            |caps, _, _| caps.get(1).map(|m| m.range()),
        ),
        rule("secret/github-token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})", whole),
        rule("secret/slack-token", r"\bxox[abprs]-[A-Za-z0-9-]{10,}", |caps, _, _| {
            let m = caps.get(0)?;
            m.as_str().bytes().any(|b| b.is_ascii_digit()).then(|| m.range())
        }),
        rule("secret/anthropic-key", r"\bsk-ant-[A-Za-z0-9_-]{20,}", whole),
        rule("secret/openai-key", r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}", |caps, _, _| {
            // A real key has a long random run; `sk-learn-pipeline-2024` does not.
            let m = caps.get(0)?;
            let s = m.as_str();
            let longest_run = s.split(|c: char| !c.is_ascii_alphanumeric()).map(str::len).max().unwrap_or(0);
            let digit = s.bytes().any(|b| b.is_ascii_digit());
            (!s.starts_with("sk-ant-") && longest_run >= 16 && digit).then(|| m.range())
        }),
        Rule {
            masked: false, // the header says what it is; the key's body is never shown
            ..rule("secret/private-key", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----", whole)
        },
        rule(
            "secret/password-assignment",
            r#"(?i:password|passwd|pwd|passphrase|secret|api_?key|access_?token|auth_?token)["']?\s*(?::|=|=>|:=)\s*(?:"([^"\s]{5,})"|'([^'\s]{5,})')"#,
            |caps, _, _| {
                let value = first_group(caps)?;
                (!is_placeholder(value.as_str())).then(|| value.range())
            },
        ),
        rule("secret/jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*", whole),
    ];
    let code = vec![
        // "SELECT … WHERE id = " + id   /   "…" . $id (PHP)
        rule("code/sql-concat", r#"(?:"([^"\n]*)"|'([^'\n]*)')\s*(?:\+|\.\s*\$)\s*[\w$(\[]"#, |caps, rules, _| {
            let literal = first_group(caps)?;
            rules.sql.is_match(literal.as_str()).then(|| caps.get(0).map(|m| m.range())).flatten()
        }),
        // f"SELECT … {x}" (Python, also triple-quoted and raw)
        rule(
            "code/sql-interpolation",
            r#"\b[rR]?[fF][rR]?(?:"""((?s:.)*?)"""|'''((?s:.)*?)'''|"([^"\n]*)"|'([^'\n]*)')"#,
            |caps, rules, _| {
                let literal = first_group(caps)?;
                let s = literal.as_str();
                (rules.sql.is_match(s) && s.contains('{') && s.contains('}')).then(|| literal.range())
            },
        ),
        // `SELECT … ${x}` (JavaScript template literal)
        rule("code/sql-interpolation", r"`([^`]*)`", |caps, rules, _| {
            let literal = caps.get(1)?;
            let s = literal.as_str();
            (rules.sql.is_match(s) && s.contains("${")).then(|| literal.range())
        }),
        // "SELECT … {}".format(x)   /   "SELECT … %s" % x
        rule(
            "code/sql-interpolation",
            r#"(?:"([^"\n]*)"|'([^'\n]*)')\s*(?:\.format\(|%\s*[\w(])"#,
            |caps, rules, _| {
                let literal = first_group(caps)?;
                rules.sql.is_match(literal.as_str()).then(|| literal.range())
            },
        ),
        // format!("SELECT … {}", x), fmt.Sprintf, String.format, sprintf
        rule(
            "code/sql-interpolation",
            r#"\b(?:format!|[Ss]printf|String\.format|fmt\.Sprintf)\s*\(\s*"([^"\n]*)""#,
            |caps, rules, _| {
                let literal = caps.get(1)?;
                let s = literal.as_str();
                (rules.sql.is_match(s) && rules.placeholder.is_match(s)).then(|| literal.range())
            },
        ),
        // eval(x), exec(code): not a method (`re.exec(s)`, `model.eval()`), not a literal
        rule(
            "code/eval",
            r#"(?:^|[^.\w$])((?:eval|exec)\(\s*(?:[^)\s"'`]|(?:"[^"\n]*"|'[^'\n]*')\s*\+))"#,
            |caps, _, _| caps.get(1).map(|m| m.range()),
        ),
        // el.innerHTML = html   (a literal alone, or a sanitizer, is fine)
        rule("code/html-sink", r"\.(?:inner|outer)HTML\s*\+?=\s*([^=\n;][^\n;]*)", unsafe_html_argument),
        rule("code/html-sink", r"\bdocument\.write(?:ln)?\(\s*([^\n;]*)", unsafe_html_argument),
        rule("code/html-sink", r"\.insertAdjacentHTML\(\s*[^,\n]*,\s*([^\n;]*)", unsafe_html_argument),
        rule("code/html-sink", r"\bdangerouslySetInnerHTML\b[^\n]*", |caps, _, _| {
            let m = caps.get(0)?;
            (!mentions_sanitizer(m.as_str())).then(|| m.range())
        }),
        rule("code/html-sink", r#"\bv-html\s*=\s*"[^"\n]*""#, |caps, _, _| {
            let m = caps.get(0)?;
            (!mentions_sanitizer(m.as_str())).then(|| m.range())
        }),
        // curl … | sh, wget … | sudo bash, curl … | tee x | sh
        rule(
            "code/curl-pipe-shell",
            r"\b(?:curl|wget)\b[^|\n]*(?:\|[^|\n]+)*?\|\s*(?:sudo\s+(?:-\S+\s+)*)?(?:env\s+)?(?:/usr)?(?:/bin/)?(?:ba|z|k|da|fi)?sh\b",
            whole,
        ),
        rule("code/curl-pipe-shell", r"\b(?:ba|z|k|da)?sh\s+(?:-s\s+)?<\(\s*(?:curl|wget)\b", whole),
        rule("code/curl-pipe-shell", r#"\b(?:ba|z|k|da)?sh\s+-c\s+["']?\$\(\s*(?:curl|wget)\b"#, whole),
        rule(
            "code/curl-pipe-shell",
            r"(?i)\b(?:iwr|irm|Invoke-WebRequest|Invoke-RestMethod)\b[^|\n]*\|\s*(?:iex|Invoke-Expression)\b",
            whole,
        ),
        // os.system("rm " + path), os.popen(f"…")
        rule(
            "code/shell-injection",
            r#"\bos\.(?:system|popen)\(\s*(?:[rR]?[fF]["']|[^)\n]*?(?:\+|%\s*[\w(]|\.format\())[^\n]*"#,
            |caps, _, _| {
                let m = caps.get(0)?;
                (!m.as_str().contains("quote(")).then(|| m.range())
            },
        ),
        // subprocess.run(cmd, shell=True): anything but one fixed literal
        rule("code/shell-injection", r"\bsubprocess\.\w+\(([^\n]*?)\bshell\s*=\s*True", |caps, rules, _| {
            let args = caps.get(1)?.as_str();
            let first = args.split_once(',').map_or(args, |(a, _)| a);
            (!rules.literal_only.is_match(first)).then(|| caps.get(0).map(|m| m.range())).flatten()
        }),
        // sh -c "$1", bash -c "$cmd", sh -c "tar xf $1"
        rule("code/shell-injection", r#"\b(?:ba|z|da|k)?sh\s+-c\s+"(?:\s*\$|[^"\n]*\$(?:[0-9@*]|\{[0-9@*]))"#, whole),
        // child_process.exec(`ls ${dir}`), execSync("ls " + dir)
        rule(
            "code/shell-injection",
            r#"(?:\bchild_process\.exec(?:Sync)?|(?:^|[^.\w$])execSync)\(\s*(?:`[^`\n]*\$\{|["'][^"'\n]*["']\s*\+)"#,
            whole,
        ),
    ];
    Rules {
        secret,
        code,
        sql: re(
            r"(?s)\bSELECT\b.*?\bFROM\b|\bINSERT\s+INTO\b|\bUPDATE\s+\S+\s+SET\b|\bDELETE\s+FROM\b|(?i:\bselect\s+\*\s+from\b|\bselect\b.*?\bfrom\b.*?\bwhere\b|\binsert\s+into\s+\S+\s*(?:\(|values\b)|\bdelete\s+from\s+\S+\s+where\b|\bupdate\s+\S+\s+set\s+\S+\s*=)",
        ),
        placeholder: re(r"\{[^{}]*\}|%[sdvq]|\$\{"),
        literal_only: re(r#"^\s*(?:"[^"\\\n]*"|'[^'\\\n]*'|`[^`$\n]*`)\s*\)?\s*;?\s*$"#),
        secret_key: re(
            r"(?i)^(?:.*[_-])?(?:password|passwd|pwd|passphrase|secret|api_?key|access_?token|auth_?token|client_?secret|private_?key|secret_?key|aws_?secret(?:_?access)?_?key)$",
        ),
        redacted: re(r"\[REDACTED:[A-Za-z0-9_]+\]"),
    }
}

/// Accepts an HTML sink's argument (group 1) unless it is a plain literal or passes
/// through a sanitizer.
fn unsafe_html_argument(caps: &Captures<'_>, rules: &Rules, _: &str) -> Option<Range<usize>> {
    let arg = caps.get(1)?.as_str();
    if rules.literal_only.is_match(arg) || mentions_sanitizer(arg) {
        return None;
    }
    caps.get(0).map(|m| m.range())
}

fn mentions_sanitizer(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("sanitize") || lower.contains("dompurify") || lower.contains("escapehtml")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules_in(text: &str) -> Vec<String> {
        scan(&json!({ "text": text }), &[]).into_iter().map(|f| f.rule).collect()
    }

    #[track_caller]
    fn hits(rule: &str, text: &str) {
        let found = rules_in(text);
        assert!(found.iter().any(|r| r == rule), "{rule} not found in {text:?}: {found:?}");
    }

    #[track_caller]
    fn quiet(text: &str) {
        let found = scan(&json!({ "text": text }), &[]);
        assert!(found.is_empty(), "expected nothing in {text:?}, found {found:?}");
    }

    #[test]
    fn every_pattern_compiles() {
        let r = rules();
        assert!(r.secret.len() >= 9 && r.code.len() >= 15);
    }

    #[test]
    fn aws_access_key_ids() {
        hits("secret/aws-access-key", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE");
        hits("secret/aws-access-key", "temporary: ASIAY34FZKBOKMUTVV7A");
        quiet("AKIA is the prefix of an AWS key id; AKIASHORT is not one");
        quiet("xAKIAIOSFODNN7EXAMPLEx and akiaiosfodnn7example");
    }

    #[test]
    fn aws_secret_keys() {
        hits("secret/aws-secret-key", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        hits("secret/aws-secret-key", r#"AWS_SECRET_KEY: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY""#);
        quiet("aws_secret_access_key = os.environ['AWS_SECRET_ACCESS_KEY']");
        quiet("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY alone is just forty characters");
    }

    #[test]
    fn github_tokens() {
        hits("secret/github-token", "token ghp_16C7e42F292c6912E7710c838347Ae178B4a here");
        hits("secret/github-token", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ");
        quiet("ghp_short and the github_pat_ prefix, mentioned in docs");
    }

    #[test]
    fn slack_tokens() {
        hits("secret/slack-token", "SLACK=xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx");
        quiet("slack bot tokens start with xoxb- followed by numbers");
        quiet("xoxb-placeholder-token-here");
    }

    #[test]
    fn openai_and_anthropic_keys() {
        hits("secret/openai-key", "OPENAI_API_KEY=sk-proj-Ab3dEf6hIjK9mNoPqR2sTuVwXyZ0123456789abcd");
        hits("secret/openai-key", "sk-4f9d8e7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a");
        hits("secret/anthropic-key", "key: sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789");
        assert!(!rules_in("sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789").contains(&"secret/openai-key".into()));
        quiet("we use sk-learn-pipeline-2024-final for the model, and the risk-assessment-framework-2024");
    }

    #[test]
    fn private_keys() {
        hits("secret/private-key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEow...\n-----END RSA PRIVATE KEY-----");
        hits("secret/private-key", "-----BEGIN OPENSSH PRIVATE KEY-----");
        hits("secret/private-key", "-----BEGIN PGP PRIVATE KEY BLOCK-----");
        quiet("-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n-----BEGIN CERTIFICATE-----");
    }

    #[test]
    fn password_assignments() {
        hits("secret/password-assignment", r#"db_password = "hunter22""#);
        hits("secret/password-assignment", r#"{"password": "s3cr3t!pass"}"#);
        hits("secret/password-assignment", "API_KEY='a8f9b0c1d2e3'");
        quiet(r#"password = "${DB_PASSWORD}"; PASSWORD = '<your-password>'; pwd = "changeme""#);
        quiet("the password must be at least 12 characters; secretary = Alice");
        quiet(r#"password = os.environ["DB_PASSWORD"]"#);
    }

    #[test]
    fn password_members_of_the_result() {
        let found = scan(&json!({"db": {"password": "hunter22", "user": "admin"}}), &[]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].rule, "secret/password-assignment");
        assert_eq!(found[0].location, "/db/password:1:1");
        assert!(!found[0].excerpt.contains("hunter22"), "{found:?}");
        let aws = scan(&json!({"aws_secret_access_key": "q8Fj2LmZ0pR7sT4uV1wX9yA3bC6dE5fG8hI2jK0l"}), &[]);
        assert_eq!(aws[0].rule, "secret/aws-secret-key");
        assert!(
            scan(&json!({"password": "<set me>", "secret": "${VAULT_SECRET}", "password_hint": "x"}), &[]).is_empty()
        );
        assert!(scan(&json!({"secret": "the treasure is under the oak"}), &[]).is_empty());
    }

    #[test]
    fn jwts() {
        hits("secret/jwt", "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U");
        quiet("a JWT starts with eyJ because base64 of {\" is eyJ");
    }

    #[test]
    fn the_runs_own_secret_values() {
        let secrets = vec![("DB_PASS".to_string(), "correct-horse-battery".to_string()), ("PIN".into(), "12".into())];
        let found = scan(&json!({"log": "connecting with correct-horse-battery ok; pin 12"}), &secrets);
        assert_eq!(found.len(), 1, "a value under MIN_SECRET_LEN is not looked for: {found:?}");
        assert_eq!(found[0].rule, "secret/run-secret");
        assert_eq!(found[0].location, "/log:1:17");
        assert!(found[0].excerpt.contains("[secret DB_PASS, 21 chars]"), "{found:?}");
        assert!(!found[0].excerpt.contains("horse"), "{found:?}");
        // Where redaction already replaced it, the mark is the finding.
        let found = scan(&json!({"log": "password is [REDACTED:DB_PASS]"}), &[]);
        assert_eq!(found.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>(), ["secret/run-secret"]);
        assert!(scan(&json!({"log": "connecting"}), &secrets).is_empty());
    }

    #[test]
    fn keys_are_scanned_and_masked_in_locations() {
        let found = scan(&json!({"AKIAIOSFODNN7EXAMPLE": {"note": "AKIAIOSFODNN7EXAMPL2"}}), &[]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].location, "/AKIA…[20 chars] (key):1:1");
        assert_eq!(found[1].location, "/AKIA…[20 chars]/note:1:1");
        for f in &found {
            assert!(!f.location.contains("IOSFODNN") && !f.excerpt.contains("IOSFODNN"), "{f:?}");
        }
    }

    #[test]
    fn sql_built_by_concatenation() {
        hits("code/sql-concat", r#"q = "SELECT * FROM users WHERE id = " + user_id"#);
        hits("code/sql-concat", r#"query = "SELECT name FROM users WHERE name = '" + name + "'""#);
        hits("code/sql-concat", r#"$q = "DELETE FROM posts WHERE id = " . $id;"#);
        hits("code/sql-concat", r#"sql = 'insert into logs (msg) values (' + msg + ')'"#);
        quiet(r#"cursor.execute("SELECT * FROM users WHERE id = %s", (user_id,))"#);
        quiet(r#"label = "Select a file from " + folder"#);
        quiet(r#"db.query("SELECT * FROM users WHERE id = ?", [id]); msg = "SELECT * FROM t" + ";""#);
    }

    #[test]
    fn sql_built_by_interpolation() {
        hits("code/sql-interpolation", r#"cur.execute(f"SELECT * FROM users WHERE name = '{name}'")"#);
        hits(
            "code/sql-interpolation",
            "cur.execute(f\"\"\"\n  SELECT id\n  FROM users\n  WHERE email = '{email}'\n\"\"\")",
        );
        hits("code/sql-interpolation", "db.query(`SELECT * FROM users WHERE id = ${req.params.id}`)");
        hits("code/sql-interpolation", r#"sql = "UPDATE users SET name = '{}' WHERE id = {}".format(n, i)"#);
        hits("code/sql-interpolation", r#"sql = "DELETE FROM t WHERE id = %s" % row_id"#);
        hits("code/sql-interpolation", r#"let q = format!("SELECT * FROM users WHERE id = {}", id);"#);
        hits("code/sql-interpolation", r#"q := fmt.Sprintf("SELECT * FROM users WHERE id = %d", id)"#);
        quiet(r#"print(f"Selected {n} files from the archive")"#);
        quiet("const msg = `Hello ${name}, select a plan`;");
        quiet(r#"conn.execute("SELECT * FROM users WHERE id = $1", &[&id])"#);
    }

    #[test]
    fn eval_and_exec_of_non_literals() {
        hits("code/eval", "result = eval(user_input)");
        hits("code/eval", "exec(open(path).read())");
        hits("code/eval", r#"eval("1 + " + x)"#);
        quiet(r#"x = eval("2 + 2"); m = re.exec(text); model.eval(); evaluate(x); exec()"#);
        quiet("the evaluation (eval) step runs after training");
    }

    #[test]
    fn html_sinks() {
        hits("code/html-sink", "el.innerHTML = userComment;");
        hits("code/html-sink", r#"div.innerHTML += "<li>" + item + "</li>";"#);
        hits("code/html-sink", "node.outerHTML = html");
        hits("code/html-sink", "document.write(location.hash)");
        hits("code/html-sink", "<div dangerouslySetInnerHTML={{ __html: comment }} />");
        hits("code/html-sink", r#"el.insertAdjacentHTML("beforeend", row)"#);
        hits("code/html-sink", r#"<p v-html="message"></p>"#);
        quiet(r#"el.innerHTML = ""; el.innerHTML = "<b>Loading</b>"; if (a.innerHTML === b) {}"#);
        quiet("el.innerHTML = DOMPurify.sanitize(html); el.textContent = userComment;");
        quiet(r#"document.write("<p>static</p>")"#);
    }

    #[test]
    fn curl_piped_to_a_shell() {
        hits("code/curl-pipe-shell", "curl -fsSL https://get.example.com | sh");
        hits("code/curl-pipe-shell", "wget -qO- https://x.io/install | sudo -E bash -s -- --yes");
        hits("code/curl-pipe-shell", "curl -s https://x.io/i.sh | tee log | bash");
        hits("code/curl-pipe-shell", "bash <(curl -s https://x.io/i.sh)");
        hits("code/curl-pipe-shell", r#"sh -c "$(curl -fsSL https://x.io/i.sh)""#);
        hits("code/curl-pipe-shell", "iwr https://x.io/i.ps1 | iex");
        quiet("curl -fsSL https://x.io/i.sh -o i.sh && sha256sum i.sh && sh i.sh");
        quiet("curl -s https://x.io/data.json | jq .name; curl x | shasum; curl x || sh fallback.sh");
    }

    #[test]
    fn shell_built_from_input() {
        hits("code/shell-injection", r#"os.system("rm -rf " + path)"#);
        hits("code/shell-injection", r#"os.system(f"convert {src} out.png")"#);
        hits("code/shell-injection", "subprocess.run(cmd, shell=True)");
        hits("code/shell-injection", r#"subprocess.check_output(f"ls {d}", shell=True)"#);
        hits("code/shell-injection", r#"sh -c "$1""#);
        hits("code/shell-injection", r#"bash -c "tar xf $1 -C /tmp""#);
        hits("code/shell-injection", "child_process.exec(`git log ${branch}`)");
        hits("code/shell-injection", r#"execSync("ls " + dir)"#);
        quiet("os.system(\"clear\")\nsubprocess.run([\"ls\", path])\nsubprocess.run(\"make test\", shell=True)");
        quiet(r#"os.system("rm -- " + shlex.quote(path))"#);
        quiet(r#"sh -c "echo hello""#);
    }

    #[test]
    fn benign_texts_find_nothing() {
        quiet("The quarterly report shows revenue grew 12% while costs fell.");
        quiet("To install, run `pip install pitboss` and then select the tasks from the list.");
        quiet("def add(a, b):\n    return a + b\n\nprint(add(2, 3))");
        quiet("SELECT id, name FROM users WHERE active = true ORDER BY name;");
        quiet("Use a password manager; never commit secrets. Set token via the environment.");
        assert!(scan(&json!({"n": 3, "ok": true, "list": [1, 2, null]}), &[]).is_empty());
    }

    #[test]
    fn findings_name_rule_location_and_a_masked_excerpt() {
        let result = json!({"files": [{"content": "line one\nkey = \"AKIAIOSFODNN7EXAMPLE\"\ncurl https://x | sh"}]});
        let found = scan(&result, &[]);
        assert_eq!(
            found.iter().map(|f| (f.rule.as_str(), f.location.as_str())).collect::<Vec<_>>(),
            [("secret/aws-access-key", "/files/0/content:2:8"), ("code/curl-pipe-shell", "/files/0/content:3:1")]
        );
        assert_eq!(found[0].excerpt, r#"key = "AKIA…[20 chars]""#);
        assert_eq!(found[1].excerpt, "curl https://x | sh");
    }

    #[test]
    fn the_number_of_findings_is_bounded() {
        let text = "AKIAIOSFODNN7EXAMPLE ".repeat(500);
        assert_eq!(scan(&json!([text]), &[]).len(), MAX_FINDINGS);
    }
}
