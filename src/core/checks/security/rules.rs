//! The security gate's rule table: each rule a regex and a check of its matches that
//! keeps the safe form of a shape quiet, compiled once.

use std::ops::Range;
use std::sync::OnceLock;

use regex::{Captures, Regex};

/// A value that stands for a secret instead of being one: `${DB_PASSWORD}`,
/// `<your-password>`, `changeme`, `********`.
pub(super) fn is_placeholder(value: &str) -> bool {
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
pub(super) struct Rule {
    pub(super) name: &'static str,
    pub(super) regex: Regex,
    /// For a secret rule: whether the reported range is the secret's value (masked in
    /// excerpts) rather than a harmless marker such as a PEM header.
    pub(super) masked: bool,
    pub(super) accept: fn(&Captures<'_>, &Rules, &str) -> Option<Range<usize>>,
}

pub(super) struct Rules {
    pub(super) secret: Vec<Rule>,
    pub(super) code: Vec<Rule>,
    /// SQL statement shapes, looked for inside string literals of code.
    pub(super) sql: Regex,
    /// An interpolation placeholder inside a format string.
    pub(super) placeholder: Regex,
    /// A right-hand side or argument that is one plain literal and nothing else.
    pub(super) literal_only: Regex,
    /// Member names that hold secrets.
    pub(super) secret_key: Regex,
    /// The mark redaction leaves where a secret value was.
    pub(super) redacted: Regex,
}

/// The rule table, compiled once: the patterns are constants, so this is a cache of a
/// pure function, not state.
pub(super) fn rules() -> &'static Rules {
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
    Rules {
        secret: secret_rules(),
        code: code_rules(),
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

/// Secrets: tokens and keys by their shapes, private keys, passwords in code.
fn secret_rules() -> Vec<Rule> {
    vec![
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
    ]
}

/// Injection-prone code: SQL built from input, eval/exec, HTML sinks, piped installers, shells.
fn code_rules() -> Vec<Rule> {
    vec![
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
    ]
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
