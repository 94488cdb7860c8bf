//! Finding shell code in a pool's command. A placeholder fills one argv element
//! whatever it holds, which is safe for a program, but not when that element is a
//! script a shell runs (`sh -c "echo {payload.x}"`): the task's text would become shell
//! commands, and a payload holding `$(rm -rf ~)` or `"; curl … | sh` would run them.
//! The check (`check.rs`) refuses placeholders in the arguments found here; the safe
//! form passes the value as an argument the script reads as `"$1"`.

/// Shells that run their `-c` argument as code.
const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "fish"];

/// Indices of the command's arguments that a shell runs as code: the script after
/// `-c` (in any option cluster, `-ec`, `-lc`), fish's `--command`, and everything after
/// `cmd /c`. The program may be a path (`/bin/sh`) and may follow `env` with its
/// options and `NAME=VALUE` assignments (`env -i sh -c …`).
pub(super) fn script_args(command: &[String]) -> Vec<usize> {
    let mut i = 0;
    if command.first().is_some_and(|p| program_name(p) == "env") {
        i = skip_env_options(command);
    }
    let Some(program) = command.get(i) else { return Vec::new() };
    let name = program_name(program);
    if name == "cmd" {
        return match command[i + 1..].iter().position(|a| a.eq_ignore_ascii_case("/c") || a.eq_ignore_ascii_case("/k"))
        {
            Some(switch) => (i + 2 + switch..command.len()).collect(),
            None => Vec::new(),
        };
    }
    if !SHELLS.contains(&name.as_str()) {
        return Vec::new();
    }
    let mut runs_code = false;
    let mut j = i + 1;
    while let Some(arg) = command.get(j) {
        if arg.starts_with("--command=") {
            // fish's long form carries the script in the same argument.
            return vec![j];
        }
        if arg == "--" || !(arg.starts_with('-') || arg.starts_with('+')) || arg.len() < 2 {
            let script = if arg == "--" { j + 1 } else { j };
            // The first operand: the script when -c was given, else a script file
            // whose arguments are positional parameters (safe).
            return if runs_code && script < command.len() { vec![script] } else { Vec::new() };
        }
        if arg == "--command" {
            runs_code = true;
        } else if !arg.starts_with("--") {
            let letters = &arg[1..];
            runs_code |= letters.contains('c');
            // `-o pipefail`: the option's value is not an operand.
            if letters.ends_with('o') {
                j += 1;
            }
        }
        j += 1;
    }
    Vec::new()
}

/// The program's name without its folder or `.exe`, lowercased: `/bin/sh` → `sh`.
fn program_name(program: &str) -> String {
    let base = program.rsplit(['/', '\\']).next().unwrap_or(program).to_ascii_lowercase();
    base.strip_suffix(".exe").map(str::to_string).unwrap_or(base)
}

/// The index of the program `env` runs: past its options (`-i`, `-u NAME`, `-C DIR`)
/// and its `NAME=VALUE` assignments.
fn skip_env_options(command: &[String]) -> usize {
    let mut i = 1;
    while let Some(arg) = command.get(i) {
        if matches!(arg.as_str(), "-u" | "--unset" | "-C" | "--chdir") {
            i += 2;
        } else if arg.starts_with('-') || (arg.contains('=') && !arg.starts_with('=')) {
            i += 1;
        } else {
            break;
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(command: &[&str]) -> Vec<usize> {
        script_args(&command.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn the_script_of_a_shell_is_found_however_the_shell_is_named() {
        assert_eq!(found(&["sh", "-c", "echo hi"]), [2]);
        assert_eq!(found(&["/bin/bash", "-euc", "x", "_", "{payload.x}"]), [2]);
        assert_eq!(found(&["bash", "-o", "pipefail", "-c", "x"]), [4]);
        assert_eq!(found(&["sh", "-e", "-c", "--", "x"]), [4]);
        assert_eq!(found(&["env", "-i", "A=1", "-u", "B", "zsh", "-c", "x"]), [7]);
        assert_eq!(found(&["/usr/bin/env", "dash", "-c", "x"]), [3]);
        assert_eq!(found(&["fish", "--command", "x"]), [2]);
        assert_eq!(found(&["fish", "--command=x"]), [1]);
        assert_eq!(found(&["cmd.exe", "/C", "echo", "x"]), [2, 3]);
    }

    #[test]
    fn programs_and_script_files_are_not_shell_code() {
        assert_eq!(found(&["echo", "-c", "x"]), Vec::<usize>::new());
        assert_eq!(found(&["sh", "agent.sh", "{payload.x}"]), Vec::<usize>::new());
        assert_eq!(found(&["bash", "-e"]), Vec::<usize>::new());
        assert_eq!(found(&["sh", "-c"]), Vec::<usize>::new());
        assert_eq!(found(&["env"]), Vec::<usize>::new());
        assert_eq!(found(&["shell", "-c", "x"]), Vec::<usize>::new());
    }
}
