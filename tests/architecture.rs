//! The layering of DESIGN §1 checked on the source, file by file:
//! `core ← {config, io} ← engine ← launch ← {cli, tui, ctl} ← main`. Every path into
//! the crate (`use crate::…` with its nested groups, `super::…` chains, and `crate::…`
//! paths in bodies) is resolved to the top-level module it names, and that module's
//! layer must be one the file's layer may depend on. Siblings (config and io; cli, tui
//! and ctl) never import each other. Also: the core stays pure (no I/O, no clock, no
//! runtime, no terminal), so it can be folded, replayed and tested as data.

use std::fs;
use std::path::{Path, PathBuf};

/// Each layer (a top-level module of `src/`) and the layers it may import besides
/// itself. The crate roots are not checked: `main.rs` wires everything together and may
/// import anything; `lib.rs` only declares the modules.
const LAYERS: &[(&str, &[&str])] = &[
    ("core", &[]),
    ("config", &["core"]),
    ("io", &["core"]),
    ("engine", &["core", "config", "io"]),
    ("notify", &["core", "config", "io", "engine"]),
    ("launch", &["core", "config", "io", "engine", "notify"]),
    ("cli", &["core", "config", "io", "engine", "launch"]),
    ("tui", &["core", "config", "io", "engine", "launch"]),
    ("ctl", &["core", "config", "io", "engine", "launch"]),
    // `pitboss mcp`: a client of the control socket, so above it.
    ("mcp", &["core", "config", "io", "engine", "launch", "ctl"]),
];

const FORBIDDEN_IN_CORE: &[&str] = &[
    "tokio",
    "std::fs",
    "std::process",
    "std::net",
    "std::time",
    "std::thread",
    "SystemTime",
    "Instant",
    "ratatui",
    "crossterm",
    "toml::",
    "crate::io",
    "crate::engine",
    "crate::cli",
    "crate::config",
    "rand::",
    "println!",
    "eprintln!",
];

#[test]
fn core_imports_no_io_clock_or_terminal() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = rust_files(&src.join("core"));
    let mut offences = Vec::new();
    for path in &files {
        let text = read(path);
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN_IN_CORE {
                if code.contains(word) {
                    offences.push(format!("{}:{}: uses {word}", path.display(), n + 1));
                }
            }
        }
    }
    assert!(files.len() >= 5, "src/core has only {} files: was it moved?", files.len());
    assert!(offences.is_empty(), "the core must stay pure:\n{}", offences.join("\n"));
}

#[test]
fn every_import_follows_the_layer_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = rust_files(&root.join("src"));
    assert!(files.len() >= 20, "src has only {} files: is this the crate?", files.len());
    let mut offences = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(root).unwrap_or(path).display().to_string();
        offences.extend(layer_offences(&rel, &read(path)).iter().map(|o| o.to_string()));
    }
    assert!(offences.is_empty(), "imports against the layer table (DESIGN §1):\n{}", offences.join("\n"));
}

/// The checker itself, on a file written to break every rule in every way a path can
/// be spelled, and on one that breaks none.
#[test]
fn the_checker_sees_every_form_of_path() {
    let text = r##"
        //! use crate::cli::in_a_doc_comment;
        use crate::core::event::Event;
        use crate::{engine::Engine, io::{journal, self}};
        pub(crate) use crate::tui as screen;
        use super::super::cli::human_ms;
        /* crate::tui::in_a_comment */
        const S: &str = "crate::tui::in_a_string";
        const R: &str = r#"crate::tui::in_a_raw_string"#;
        fn f<'a>(c: char) -> &'a str {
            let _ = '{';
            let _ = crate::ctl::serve(c);
            macro_rules! m { () => { $crate::core::x() } }
            pub(super) fn g() {}
            S
        }
        mod tests {
            use super::*;
            use super::super::process::Spec;
            fn t() { super::super::super::launch::start(); }
        }
    "##;
    let found: Vec<String> = layer_offences("src/io/x.rs", text).iter().map(ToString::to_string).collect();
    assert_eq!(
        found,
        [
            "src/io/x.rs:4: layer io may not import engine (crate::engine::Engine)",
            "src/io/x.rs:5: layer io may not import tui (crate::tui)",
            "src/io/x.rs:6: layer io may not import cli (super::super::cli::human_ms)",
            "src/io/x.rs:12: layer io may not import ctl (crate::ctl::serve)",
            "src/io/x.rs:20: layer io may not import launch (super::super::super::launch::start)",
        ]
    );
    let clean = "use crate::core::{self, event::Event};\nuse super::journal;\nfn f() { crate::io::rundir::x(); }\n";
    assert!(layer_offences("src/io/x.rs", clean).is_empty());
    assert!(layer_offences("src/main.rs", "use crate::tui::run;").is_empty(), "main may import anything");
    let unknown: Vec<String> =
        layer_offences("src/cli/x.rs", "use crate::gizmo::X;").iter().map(|o| o.to_string()).collect();
    assert_eq!(unknown, ["src/cli/x.rs:1: layer cli may not import gizmo (crate::gizmo::X)"]);
    let new: Vec<String> = layer_offences("src/gizmo.rs", "").iter().map(|o| o.to_string()).collect();
    assert_eq!(new, ["src/gizmo.rs:1: layer gizmo may not import anything (a new top-level module: add it to LAYERS)"]);
}

/// One import against the table.
struct Offence {
    file: String,
    line: usize,
    layer: String,
    imported: String,
    /// The path as written (groups expanded), e.g. `crate::cli::human_ms`.
    path: String,
}

impl std::fmt::Display for Offence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: layer {} may not import {} ({})", self.file, self.line, self.layer, self.imported, self.path)
    }
}

/// Every path in `text` (the file `rel`, relative to the crate) that leaves its layer
/// for one it may not depend on.
fn layer_offences(rel: &str, text: &str) -> Vec<Offence> {
    let module = module_path(rel);
    let Some(layer) = module.first().cloned() else { return Vec::new() };
    if layer == "lib" || layer == "main" {
        return Vec::new();
    }
    let Some(&(_, allowed)) = LAYERS.iter().find(|(l, _)| *l == layer) else {
        let path = "a new top-level module: add it to LAYERS".to_string();
        return vec![Offence { file: rel.to_string(), line: 1, layer, imported: "anything".to_string(), path }];
    };
    let mut offences = Vec::new();
    for path in crate_paths(&tokens(&blank_comments_and_literals(text)), &module) {
        let Some(imported) = path.resolved.first() else { continue };
        if *imported != layer && !allowed.contains(&imported.as_str()) {
            offences.push(Offence {
                file: rel.to_string(),
                line: path.line,
                layer: layer.clone(),
                imported: imported.clone(),
                path: path.written.join("::"),
            });
        }
    }
    offences
}

/// The module a file is (`src/io/process.rs` → `io::process`, `src/io/mod.rs` → `io`),
/// with `main` and `lib` for the crate roots.
fn module_path(rel: &str) -> Vec<String> {
    let rel = rel.strip_prefix("src/").unwrap_or(rel);
    let mut parts: Vec<String> = rel.split('/').map(|p| p.trim_end_matches(".rs").to_string()).collect();
    if parts.len() > 1 && parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap_or_else(|e| panic!("{}: {e}", dir.display())).path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text with comments, strings and char literals replaced by spaces (newlines
/// kept, so lines still count), so that only code is searched for paths.
fn blank_comments_and_literals(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let end = literal_end(&chars, i);
        if end == i {
            out.push(chars[i]);
            i += 1;
        } else {
            out.extend(chars[i..end].iter().map(|&c| if c == '\n' { '\n' } else { ' ' }));
            i = end;
        }
    }
    out
}

/// Where the comment or literal starting at `i` ends, or `i` if none starts there.
fn literal_end(chars: &[char], i: usize) -> usize {
    let at = |k: usize| chars.get(k).copied().unwrap_or('\0');
    let after = |from: usize, c: char| (from..chars.len()).find(|&k| chars[k] == c).map_or(chars.len(), |k| k + 1);
    let ident_before = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
    match (at(i), at(i + 1)) {
        // The newline stays: lines must still count.
        ('/', '/') => (i..chars.len()).find(|&k| chars[k] == '\n').unwrap_or(chars.len()),
        ('/', '*') => block_comment_end(chars, i),
        ('"', _) => string_end(chars, i + 1),
        ('b', '"') if !ident_before => string_end(chars, i + 2),
        ('r', '#' | '"') | ('b', 'r') if !ident_before => raw_string_end(chars, i),
        // Skip the escaped character, which may be a quote: '\''.
        ('\'', '\\') => after(i + 3, '\''),
        ('\'', c) if c != '\0' && at(i + 2) == '\'' => i + 3,
        _ => i,
    }
}

fn block_comment_end(chars: &[char], mut i: usize) -> usize {
    let mut depth = 0;
    while i < chars.len() {
        match (chars[i], chars.get(i + 1).copied()) {
            ('/', Some('*')) => {
                depth += 1;
                i += 2;
            }
            ('*', Some('/')) => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    i
}

/// End of a `"…"` string whose body starts at `i`.
fn string_end(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// End of `r"…"`, `r#"…"#`, `br##"…"##` starting at `i`; `i` when it is not one
/// (`r#ident` is a raw identifier).
fn raw_string_end(chars: &[char], i: usize) -> usize {
    let mut j = i + 1;
    if chars.get(i) == Some(&'b') {
        if chars.get(j) != Some(&'r') {
            return i;
        }
        j += 1;
    }
    let hashes = chars[j..].iter().take_while(|&&c| c == '#').count();
    j += hashes;
    if chars.get(j) != Some(&'"') {
        return i;
    }
    let close: Vec<char> = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
    (j + 1..chars.len()).find(|&k| chars[k..].starts_with(&close)).map_or(chars.len(), |k| k + close.len())
}

/// A token of code: an identifier, `::`, or one punctuation character.
struct Token {
    text: String,
    line: usize,
}

fn tokens(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c == '\n' {
            line += 1;
            i += 1;
            continue;
        } else if c.is_whitespace() {
            i += 1;
            continue;
        } else if c.is_alphanumeric() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            i += 2;
        } else {
            i += 1;
        }
        out.push(Token { text: chars[start..i].iter().collect(), line });
    }
    out
}

/// A path into the crate found in code.
struct CratePath {
    /// As written, `use` groups expanded.
    written: Vec<String>,
    /// From the crate root (`crate`, `super` and inline modules resolved).
    resolved: Vec<String>,
    /// Line of its last segment.
    line: usize,
}

/// Every path that starts with `crate` or `super`, in `use` trees and in bodies.
/// `module` is the file's module; inline `mod name { … }` blocks extend it.
fn crate_paths(tokens: &[Token], module: &[String]) -> Vec<CratePath> {
    let text = |k: usize| tokens.get(k).map_or("", |t| t.text.as_str());
    let mut paths = Vec::new();
    // Inline modules open at this brace depth.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < tokens.len() {
        let here: Vec<String> = module.iter().cloned().chain(inline.iter().map(|(m, _)| m.clone())).collect();
        match text(i) {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                inline.retain(|(_, d)| *d <= depth);
            }
            "mod" if text(i + 2) == "{" => inline.push((text(i + 1).to_string(), depth + 1)),
            "use" => {
                let mut leaves = Vec::new();
                i = use_tree(tokens, i + 1, Vec::new(), &mut leaves);
                paths.extend(leaves.into_iter().filter_map(|(written, line)| resolve(written, line, &here)));
                while !matches!(text(i), ";" | "") {
                    i += 1;
                }
            }
            "crate" | "super" if text(i + 1) == "::" && !matches!(text(i.wrapping_sub(1)), "$" | "::") => {
                let mut written = vec![text(i).to_string()];
                let mut k = i + 1;
                while text(k) == "::" && text(k + 1).starts_with(|c: char| c.is_alphanumeric() || c == '_') {
                    written.push(text(k + 1).to_string());
                    k += 2;
                }
                paths.extend(resolve(written, tokens[k - 1].line, &here));
                i = k;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    paths
}

/// Parses a `use` tree from token `i` with the path so far `prefix`, adding each leaf
/// (with the line of its last token); returns the index after the tree.
fn use_tree(tokens: &[Token], mut i: usize, mut prefix: Vec<String>, leaves: &mut Vec<(Vec<String>, usize)>) -> usize {
    let text = |k: usize| tokens.get(k).map_or("", |t| t.text.as_str());
    loop {
        match text(i) {
            "{" => {
                i += 1;
                while !matches!(text(i), "}" | "") {
                    i = use_tree(tokens, i, prefix.clone(), leaves);
                    if text(i) == "," {
                        i += 1;
                    }
                }
                i += 1;
                break;
            }
            "::" => i += 1,
            "" => return i,
            word => {
                // `self` in a group names the group's own path.
                if word != "self" {
                    prefix.push(word.to_string());
                }
                i += 1;
                if text(i) != "::" {
                    leaves.push((prefix.clone(), tokens[i - 1].line));
                    if text(i) == "as" {
                        i += 2;
                    }
                    break;
                }
            }
        }
    }
    i
}

/// A path from the crate root, or `None` for paths outside the crate (other crates,
/// names relative to the current module, which stay in its layer).
fn resolve(written: Vec<String>, line: usize, here: &[String]) -> Option<CratePath> {
    let resolved = match written.first().map(String::as_str) {
        Some("crate") => written[1..].to_vec(),
        Some("super") => {
            let ups = written.iter().take_while(|s| *s == "super").count();
            let base = &here[..here.len().saturating_sub(ups)];
            base.iter().chain(&written[ups..]).cloned().collect()
        }
        _ => return None,
    };
    Some(CratePath { written, resolved, line })
}
