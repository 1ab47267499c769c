//! Printing for people (aligned tables) and for scripts (JSON).
//!
//! Everything the CLI prints goes through here, for two reasons:
//! - A closed pipe (`wharf model show x | head -1`) ends output quietly: stdout closed by the
//!   reader ends the process with status 0 (the reader asked for no more), and a closed stderr
//!   is ignored so that a run keeps going. Rust's `outln!` would panic instead.
//! - Text for people never carries terminal control sequences: a column named `"e\x1b[2Jx"` or
//!   a value holding `\r` is shown escaped (`e\u{1b}[2Jx`), so what a user reads is what is
//!   stored. JSON output escapes them by its own rules.

use serde::Serialize;
use std::io::Write as _;

/// Prints a line on stdout, escaping terminal controls (see the module doc).
macro_rules! outln {
    () => { $crate::output::stdout_line("") };
    ($($arg:tt)*) => { $crate::output::stdout_line(&format!($($arg)*)) };
}

/// Prints a line on stderr, escaping terminal controls; a closed stderr is ignored.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::output::stderr_line(&format!($($arg)*)) };
}

/// Writes `text` and a line end on stdout. Called by [`outln!`].
pub fn stdout_line(text: &str) {
    write_stdout(&terminal_safe(text, Keep::LineBreaks));
}

/// Writes `text` and a line end on stderr. Called by [`errln!`].
pub fn stderr_line(text: &str) {
    let mut err = std::io::stderr().lock();
    // Nothing useful can be done when stderr itself is gone: the work goes on.
    let _ = writeln!(err, "{}", terminal_safe(text, Keep::LineBreaks));
}

fn write_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        stdout_failed(&e);
    }
}

/// What to do when stdout cannot be written: a reader that went away (`| head`) is a normal
/// end; anything else (a full disk behind a redirect) is reported and fails the command.
fn stdout_failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    stderr_line(&format!("error: cannot write to standard output: {e}"));
    std::process::exit(1);
}

/// Which characters [`terminal_safe`] leaves as they are.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// `\n` and `\t` pass (free text such as SQL); every other control is escaped.
    LineBreaks,
    /// Every control is escaped (a table cell stays on its line).
    Nothing,
}

/// `text` with control characters (C0, DEL, C1) and bidirectional overrides escaped as Rust
/// writes them (`\u{1b}`), so they cannot move the cursor, clear the screen or reorder text.
pub fn terminal_safe(text: &str, keep: Keep) -> String {
    let unsafe_char = |c: char| {
        let kept = keep == Keep::LineBreaks && (c == '\n' || c == '\t');
        (c.is_control() && !kept)
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(unsafe_char) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Prints one JSON document on stdout.
pub fn json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => write_stdout(&text),
        Err(e) => errln!("error: cannot print JSON: {e}"),
    }
}

/// Prints rows under headers, columns padded to their widest cell. Every cell is escaped
/// ([`Keep::Nothing`]), headers included: they are often column names from a model.
pub fn table<S: AsRef<str>>(headers: &[S], rows: &[Vec<String>]) {
    let headers: Vec<String> = headers
        .iter()
        .map(|h| terminal_safe(h.as_ref(), Keep::Nothing))
        .collect();
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|c| terminal_safe(c, Keep::Nothing))
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        write_stdout(padded.join("  ").trim_end());
    };
    line(&headers);
    for row in &rows {
        line(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_names_and_values_are_escaped() {
        assert_eq!(
            terminal_safe("e\u{1b}[2Jx", Keep::LineBreaks),
            "e\\u{1b}[2Jx"
        );
        assert_eq!(
            terminal_safe("a\rb\u{9b}c", Keep::LineBreaks),
            "a\\rb\\u{9b}c"
        );
        assert_eq!(
            terminal_safe("evil\u{202e}txt", Keep::Nothing),
            "evil\\u{202e}txt"
        );
        assert_eq!(
            terminal_safe("SELECT 1\n\tFROM t", Keep::LineBreaks),
            "SELECT 1\n\tFROM t"
        );
        assert_eq!(terminal_safe("a\nb", Keep::Nothing), "a\\nb");
        assert_eq!(terminal_safe("Zoë 日本語", Keep::Nothing), "Zoë 日本語");
    }
}
