//! Where a workflow file's `[[task]]` sections are, found without parsing it, so that
//! the file can be read one task at a time (issue 14: a TOML tree of 100,000 tasks
//! is ~50 bytes of heap per byte of file, and the whole tree is never needed).
//!
//! A small scanner walks the text knowing just enough TOML to find the table headers
//! that start a line outside any string, comment or multi-line value: strings (basic,
//! literal, multi-line), comments, and the brackets and braces of arrays and inline
//! tables. A `[[task]]` header starts a task section, which runs to the next header
//! that is not one of its sub-tables (`[task.retry]`, `[[task.gates]]`). Everything
//! else (what precedes the first task, and any other table after tasks, such as a
//! `[[notify]]` at the end) is "the rest", joined in file order.
//!
//! The split only needs to be right for valid files: whatever it cannot place with
//! certainty (a header it cannot read, `[task]`, a `task.*` sub-table that does not
//! follow a task, an unterminated string or bracket) makes it give up, and the caller
//! reads the whole document as before. Reading each part alone cannot make an invalid
//! file valid: the parts touch disjoint keys (the rest may hold no `task` key, which
//! the reader checks), and a part whose bytes the scanner misread fails to parse.

use std::ops::Range;

/// A file cut into its task sections and the rest.
pub(super) struct Sections {
    /// Everything outside the task sections, in file order (spans in it are not the
    /// file's: it is only read when it has no problem to report).
    pub(super) rest: String,
    /// Each `[[task]]` section's bytes in the file, in file order.
    pub(super) tasks: Vec<Range<usize>>,
}

/// What a table header opens, as far as the split cares.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Header {
    /// `[[task]]`: a new task.
    Task,
    /// `[task.x]`, `[[task.x.y]]`: part of the task above it.
    TaskPart,
    /// Any other table.
    Other,
}

/// The task sections of `text` and the rest, or `None` when the file has no
/// `[[task]]` header or cannot be split with certainty (see the module's comment).
pub(super) fn split(text: &str) -> Option<Sections> {
    let headers = headers(text)?;
    let mut rest = String::new();
    let mut tasks = Vec::new();
    // The open part: where it starts, and whether it is a task section.
    let (mut start, mut in_task) = (0, false);
    for (at, header) in headers {
        match header {
            Header::TaskPart if in_task => continue,
            // A sub-table of the last task written after some other table: the
            // whole document knows which task it belongs to; a section would not.
            Header::TaskPart => return None,
            Header::Task | Header::Other => {}
        }
        close(text, start..at, in_task, &mut rest, &mut tasks);
        (start, in_task) = (at, header == Header::Task);
    }
    close(text, start..text.len(), in_task, &mut rest, &mut tasks);
    if tasks.is_empty() {
        return None;
    }
    Some(Sections { rest, tasks })
}

fn close(text: &str, part: Range<usize>, in_task: bool, rest: &mut String, tasks: &mut Vec<Range<usize>>) {
    if in_task {
        tasks.push(part);
    } else {
        rest.push_str(&text[part]);
    }
}

/// Every table header of `text`, at the start of its line, with what it opens; `None`
/// when the scanner cannot be sure of the file's structure.
fn headers(text: &str) -> Option<Vec<(usize, Header)>> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    // Open brackets and braces of values (arrays, inline tables).
    let mut depth = 0usize;
    // Only blanks since the start of the line: a `[` here at depth 0 is a header.
    let mut line_start = true;
    let mut line_begins = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                i += 1;
                line_start = true;
                line_begins = i;
                continue;
            }
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                i = bytes[i..].iter().position(|b| *b == b'\n').map_or(bytes.len(), |n| i + n);
                continue;
            }
            b'"' | b'\'' => i = string_end(bytes, i)?,
            b'[' if line_start && depth == 0 => {
                let (end, header) = header(text, i)?;
                found.push((line_begins, header));
                i = end;
            }
            b'[' | b'{' => {
                depth += 1;
                i += 1;
            }
            b']' | b'}' => {
                depth = depth.checked_sub(1)?;
                i += 1;
            }
            _ => i += 1,
        }
        line_start = false;
    }
    (depth == 0).then_some(found)
}

/// Where the string that opens at `at` ends (the byte after its closing quote).
fn string_end(bytes: &[u8], at: usize) -> Option<usize> {
    let quote = bytes[at];
    let escapes = quote == b'"';
    let triple = bytes.get(at..at + 3) == Some(&[quote; 3][..]);
    let mut i = at + if triple { 3 } else { 1 };
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if escapes => i += 2,
            b'\n' if !triple => return None,
            b if b == quote && !triple => return Some(i + 1),
            b if b == quote && bytes.get(i..i + 3) == Some(&[quote; 3][..]) => {
                // Up to two quotes may stand just before the closing three.
                let run = bytes[i..].iter().take_while(|b| **b == quote).count();
                return (run <= 5).then_some(i + run);
            }
            _ => i += 1,
        }
    }
    None
}

/// The header that opens at `at` (`[a.b]` or `[[a.b]]`): where it ends, and what it
/// opens. Quoted keys with escapes are not read (`None`), nor anything unexpected.
fn header(text: &str, at: usize) -> Option<(usize, Header)> {
    let bytes = text.as_bytes();
    let list = bytes.get(at + 1) == Some(&b'[');
    let mut i = at + if list { 2 } else { 1 };
    let blanks = |i: &mut usize| {
        while matches!(bytes.get(*i), Some(b' ' | b'\t')) {
            *i += 1;
        }
    };
    let mut keys: Vec<&str> = Vec::new();
    loop {
        blanks(&mut i);
        let key = match bytes.get(i)? {
            q @ (b'"' | b'\'') => {
                let end = i + 1 + bytes[i + 1..].iter().position(|b| b == q || *b == b'\n' || *b == b'\\')?;
                if bytes[end] != *q {
                    return None;
                }
                let key = &text[i + 1..end];
                i = end + 1;
                key
            }
            _ => {
                let len =
                    bytes[i..].iter().take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')).count();
                if len == 0 {
                    return None;
                }
                let key = &text[i..i + len];
                i += len;
                key
            }
        };
        keys.push(key);
        blanks(&mut i);
        match bytes.get(i)? {
            b'.' => i += 1,
            b']' => break,
            _ => return None,
        }
    }
    let close: &[u8] = if list { b"]]" } else { b"]" };
    if bytes.get(i..i + close.len())? != close {
        return None;
    }
    let header = match (keys.as_slice(), list) {
        (["task"], true) => Header::Task,
        // `[task]` is an error the whole document reports in its own words.
        (["task"], false) => return None,
        (["task", ..], _) => Header::TaskPart,
        _ => Header::Other,
    };
    Some((i + close.len(), header))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> Option<(String, Vec<&str>)> {
        let sections = split(text)?;
        Some((sections.rest, sections.tasks.into_iter().map(|r| &text[r]).collect()))
    }

    #[test]
    fn tasks_are_cut_at_their_headers_and_keep_their_sub_tables() {
        let text = "[run]\nname = \"x\"\n[[task]]\nid = \"a\"\n[task.retry]\nmax = \"1s\"\n[[task.gates]]\nschema = \"s\"\n  [[task]] # two\nid = \"b\"\n";
        let (rest, tasks) = parts(text).expect("splits");
        assert_eq!(rest, "[run]\nname = \"x\"\n");
        assert_eq!(
            tasks,
            [
                "[[task]]\nid = \"a\"\n[task.retry]\nmax = \"1s\"\n[[task.gates]]\nschema = \"s\"\n",
                "  [[task]] # two\nid = \"b\"\n"
            ]
        );
    }

    #[test]
    fn other_tables_after_tasks_join_the_rest() {
        let text = "[[pool]]\nname = \"p\"\n[[task]]\nid = \"a\"\n[[notify]]\non = [\"x\"]\n[[task]]\nid = \"b\"\n";
        let (rest, tasks) = parts(text).expect("splits");
        assert_eq!(rest, "[[pool]]\nname = \"p\"\n[[notify]]\non = [\"x\"]\n");
        assert_eq!(tasks, ["[[task]]\nid = \"a\"\n", "[[task]]\nid = \"b\"\n"]);
    }

    #[test]
    fn headers_inside_strings_comments_and_arrays_are_not_headers() {
        let text = concat!(
            "[[task]]\nid = \"a\"\n",
            "payload = { s = \"\"\"\n[[task]]\n\\\"\"\"\n\"\"\", t = '''\n[[task]]\n''' }\n",
            "# [[task]]\n",
            "requires = [\n[\"x\"],\n]\n",
            "depends_on = ['[[task]]', \"[[task]]\"]\n",
            "[[task]]\nid = \"b\"\n",
        );
        let (_, tasks) = parts(text).expect("splits");
        assert_eq!(tasks.len(), 2, "{tasks:?}");
        assert!(tasks[1].starts_with("[[task]]\nid = \"b\""));
    }

    #[test]
    fn quoted_and_spaced_headers_are_read() {
        let (_, tasks) =
            parts("[[ \"task\" ]]\nid = \"a\"\n[ 'task' . retry ]\n[[task]]\nid = \"b\"\n").expect("splits");
        assert_eq!(tasks.len(), 2);
    }

    #[test]
    fn what_cannot_be_split_with_certainty_is_not() {
        // No task header at all; an inline list of tasks; `[task]`.
        assert!(split("[run]\nname = \"x\"\n").is_none());
        assert!(split("task = [{ id = \"a\" }]\n").is_none());
        assert!(split("[[task]]\nid = \"a\"\n[task]\n").is_none());
        // A task's sub-table after another table; an escaped quoted key.
        assert!(split("[[task]]\nid = \"a\"\n[run]\n[task.retry]\n").is_none());
        assert!(split("[[\"t\\u0061sk\"]]\nid = \"a\"\n").is_none());
        // Unterminated strings and brackets.
        assert!(split("[[task]]\nid = \"a\n").is_none());
        assert!(split("[[task]]\nid = \"\"\"a\n").is_none());
        assert!(split("[[task]]\nrequires = [\"a\"\n").is_none());
        assert!(split("[[task]]\nrequires = ]\n").is_none());
    }
}
