//! The layering of `src/lib.rs` checked on the source: the core stays pure (no I/O,
//! no clock, no runtime, no terminal), so it can be folded, replayed and tested as data.

use std::fs;
use std::path::Path;

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
    "crate::io",
    "crate::engine",
    "crate::cli",
    "rand::",
    "println!",
    "eprintln!",
];

#[test]
fn core_imports_no_io_clock_or_terminal() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
    let mut checked = 0;
    let mut offences = Vec::new();
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        checked += 1;
        let text = fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN_IN_CORE {
                if code.contains(word) {
                    offences.push(format!("{}:{}: uses {word}", path.display(), n + 1));
                }
            }
        }
    }
    assert!(checked >= 5, "src/core has only {checked} files: was it moved?");
    assert!(offences.is_empty(), "the core must stay pure:\n{}", offences.join("\n"));
}
