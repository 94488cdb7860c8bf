//! Windows program resolution and `cmd /c` quoting, as pure functions (tested on
//! every platform; used on Windows by `platform::windows`).
//!
//! Windows finds `name` on `PATH` by trying each extension of `PATHEXT`. An `.exe`
//! runs as itself; a `.cmd` or `.bat` is a script for `cmd.exe`, which parses its
//! command line with its own rules: `&|<>^` end or redirect the command outside
//! quotes, `%` (and `!` under delayed expansion) expand variables even inside them,
//! and a `"` inside an argument cannot be escaped reliably. So each argument is put in
//! double quotes, and one that holds `"`, `%`, `!` or a line break is refused with a
//! plain error rather than risk running something else.

use std::path::{Path, PathBuf};

/// Extensions tried when `PATHEXT` is not set.
pub const DEFAULT_PATHEXT: &str = ".COM;.EXE;.BAT;.CMD";

/// True for a program `cmd.exe` must run (`.cmd`, `.bat`, any case).
pub fn is_script(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("cmd") || e.eq_ignore_ascii_case("bat"))
}

/// The file Windows would run for `program`: a path is taken as it is (trying the
/// `PATHEXT` extensions when it has none), a bare name is looked for in `cwd` and then
/// each folder of `path_dirs`. `exists` says whether a file is there (injected so this
/// stays pure).
pub fn resolve(
    program: &str,
    cwd: Option<&Path>,
    path_dirs: &[PathBuf],
    pathext: &str,
    exists: &dyn Fn(&Path) -> bool,
) -> Option<PathBuf> {
    let extensions: Vec<&str> = pathext.split(';').map(str::trim).filter(|e| !e.is_empty()).collect();
    let candidates = |base: PathBuf| -> Option<PathBuf> {
        if base.extension().is_some() && exists(&base) {
            return Some(base);
        }
        extensions.iter().map(|ext| PathBuf::from(format!("{}{ext}", base.display()))).find(|p| exists(p))
    };
    let named = Path::new(program);
    if program.contains(['/', '\\']) || named.is_absolute() {
        let base = match cwd {
            Some(dir) if named.is_relative() => dir.join(named),
            _ => named.to_path_buf(),
        };
        return candidates(base);
    }
    cwd.into_iter().map(Path::to_path_buf).chain(path_dirs.iter().cloned()).find_map(|dir| candidates(dir.join(named)))
}

/// Why an argument cannot be given to a `.cmd`/`.bat` safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("argument {index} ({arg:?}) cannot be passed safely to the batch file {script}: it holds {what}, which cmd.exe would interpret; pass it in an environment variable or a file instead")]
pub struct UnsafeArgument {
    /// The script.
    pub script: String,
    /// Position among the arguments (1 is the first after the program).
    pub index: usize,
    /// The argument.
    pub arg: String,
    /// The character, in words.
    pub what: &'static str,
}

/// One argument in double quotes for `cmd.exe` (and the script's own parsing of its
/// `%1`…), or why it cannot be. Backslashes before the closing quote are doubled so
/// they do not escape it.
pub fn quote_for_cmd(arg: &str) -> Result<String, &'static str> {
    for (c, what) in [
        ('"', "a double quote"),
        ('%', "a % (variable expansion)"),
        ('!', "a ! (delayed variable expansion)"),
        ('\n', "a line break"),
        ('\r', "a carriage return"),
        ('\0', "a NUL byte"),
    ] {
        if arg.contains(c) {
            return Err(what);
        }
    }
    let trailing = arg.len() - arg.trim_end_matches('\\').len();
    Ok(format!("\"{arg}{}\"", "\\".repeat(trailing)))
}

/// The command line after `cmd.exe` for running `script` with `args`:
/// `/d /s /c ""SCRIPT" "ARG"…"` (`/d`: no AutoRun commands; `/s`: only the outer
/// quotes are stripped, so everything inside is taken as written).
pub fn cmd_line(script: &Path, args: &[String]) -> Result<String, UnsafeArgument> {
    let script_text = plain_form(&script.display().to_string());
    let unsafe_arg =
        |index, arg: &str, what| UnsafeArgument { script: script_text.clone(), index, arg: arg.to_string(), what };
    let mut line = String::from("/d /s /c \"");
    line += &quote_for_cmd(&script_text).map_err(|what| unsafe_arg(0, &script_text, what))?;
    for (i, arg) in args.iter().enumerate() {
        line.push(' ');
        line += &quote_for_cmd(arg).map_err(|what| unsafe_arg(i + 1, arg, what))?;
    }
    line.push('"');
    Ok(line)
}

/// A verbatim path (`\\?\C:\…`, `\\?\UNC\host\…`: what `canonicalize` gives on
/// Windows) in its plain form, which cmd.exe needs to run a script; as it is when the
/// plain form could not name the same file (too long for the classic 260-character
/// limit, or no drive letter or share).
fn plain_form(path: &str) -> String {
    const MAX_PATH: usize = 260;
    let plain = if let Some(share) = path.strip_prefix(r"\\?\UNC\") {
        format!(r"\\{share}")
    } else if let Some(rest) = path.strip_prefix(r"\\?\") {
        let drive = rest.as_bytes();
        if drive.len() < 3 || !drive[0].is_ascii_alphabetic() || drive[1] != b':' || drive[2] != b'\\' {
            return path.to_string();
        }
        rest.to_string()
    } else {
        return path.to_string();
    };
    if plain.len() < MAX_PATH {
        plain
    } else {
        path.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metacharacters_are_quoted_and_expansions_refused() {
        assert_eq!(quote_for_cmd("a b").unwrap(), "\"a b\"");
        assert_eq!(quote_for_cmd("x & del y | z > w < v ^").unwrap(), "\"x & del y | z > w < v ^\"");
        assert_eq!(quote_for_cmd(r"C:\dir\").unwrap(), r#""C:\dir\\""#);
        assert_eq!(quote_for_cmd("").unwrap(), "\"\"");
        for bad in ["say \"hi\"", "%PATH%", "wow!", "a\nb", "a\rb", "a\0b"] {
            assert!(quote_for_cmd(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_batch_line_names_the_refused_argument() {
        let script = Path::new(r"C:\tools\agent.cmd");
        let line = cmd_line(script, &["task one".into(), "a&b".into()]).unwrap();
        assert_eq!(line, r#"/d /s /c ""C:\tools\agent.cmd" "task one" "a&b"""#);
        let err = cmd_line(script, &["fine".into(), "100%".into()]).unwrap_err();
        assert_eq!(err.index, 2);
        assert!(err.to_string().contains("agent.cmd") && err.to_string().contains("100%"), "{err}");
    }

    #[test]
    fn a_verbatim_script_path_is_given_to_cmd_in_its_plain_form() {
        // cmd.exe cannot run a script named `\\?\C:\…` (the form canonicalize gives):
        // the attempt would fail at once with "Can't recognize".
        let line = |script: &str| cmd_line(Path::new(script), &[]).unwrap();
        assert_eq!(line(r"\\?\C:\tools\agent.cmd"), r#"/d /s /c ""C:\tools\agent.cmd"""#);
        assert_eq!(line(r"\\?\UNC\host\share\agent.cmd"), r#"/d /s /c ""\\host\share\agent.cmd"""#);
        // Kept when the plain form could not name it: too long, or not a drive path.
        let long = format!(r"\\?\C:\{}\agent.cmd", "d".repeat(260));
        assert_eq!(line(&long), format!(r#"/d /s /c ""{long}"""#));
        assert_eq!(line(r"\\?\Volume{x}\agent.cmd"), r#"/d /s /c ""\\?\Volume{x}\agent.cmd"""#);
    }

    #[test]
    fn resolution_tries_pathext_in_order_and_cwd_first() {
        // Unix-style folders so that `join` reads the same here and on Windows.
        let files = ["/c/bin/tool.cmd", "/c/bin/tool.exe", "/c/other/tool.bat", "/c/work/run.bat"];
        // Case-insensitive, as Windows file names are (PATHEXT says `.EXE`).
        let exists = |p: &Path| files.iter().any(|f| f.eq_ignore_ascii_case(&p.to_string_lossy()));
        let dirs = [PathBuf::from("/c/bin"), PathBuf::from("/c/other")];
        let found = |program, cwd: Option<&str>| resolve(program, cwd.map(Path::new), &dirs, DEFAULT_PATHEXT, &exists);
        // .EXE comes before .CMD in PATHEXT.
        assert_eq!(found("tool", None), Some(PathBuf::from("/c/bin/tool.EXE")));
        assert_eq!(found("tool.cmd", None), Some(PathBuf::from("/c/bin/tool.cmd")));
        assert_eq!(found("run", Some("/c/work")), Some(PathBuf::from("/c/work/run.BAT")));
        assert_eq!(found("missing", None), None);
        assert!(is_script(Path::new("x.CMD")) && is_script(Path::new("y.bat")) && !is_script(Path::new("z.exe")));
    }
}
