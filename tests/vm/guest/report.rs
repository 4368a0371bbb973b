//! The results a check produces and the console lines the host parses.
//!
//! Every line the host reads starts with `NUMAVM: `:
//! `PASS name: detail`, `FAIL name: detail`, `SKIP name: reason`,
//! `INFO name: text` and, once every check has run, `DONE ...`.

use std::io::Write;

/// Marker that starts every line meant for the host.
pub const MARKER: &str = "NUMAVM:";

/// Marker a check's child process puts before its result line.
pub const CHILD_RESULT: &str = "numavm-result:";

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The property holds; the text says what was seen.
    Pass(String),
    /// The property does not hold; the text says what differs.
    Fail(String),
    /// The check does not apply to this machine; the text says why.
    Skip(String),
}

impl Outcome {
    /// The word the host parses.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Pass(_) => "PASS",
            Outcome::Fail(_) => "FAIL",
            Outcome::Skip(_) => "SKIP",
        }
    }

    /// The explanation.
    pub fn detail(&self) -> &str {
        match self {
            Outcome::Pass(s) | Outcome::Fail(s) | Outcome::Skip(s) => s,
        }
    }

    /// Encodes the outcome as the child's result line.
    pub fn to_child_line(&self) -> String {
        format!("{CHILD_RESULT} {} {}", self.word(), one_line(self.detail()))
    }

    /// Decodes a child's result line.
    pub fn from_child_line(line: &str) -> Option<Outcome> {
        let rest = line.strip_prefix(CHILD_RESULT)?.trim_start();
        let (word, detail) = rest.split_once(' ').unwrap_or((rest, ""));
        let detail = detail.to_string();
        match word {
            "PASS" => Some(Outcome::Pass(detail)),
            "FAIL" => Some(Outcome::Fail(detail)),
            "SKIP" => Some(Outcome::Skip(detail)),
            _ => None,
        }
    }
}

/// Prints one marker line for check `name` and flushes it to the console.
pub fn emit(word: &str, name: &str, detail: &str) {
    let line = if detail.is_empty() {
        format!("{MARKER} {word} {name}")
    } else {
        format!("{MARKER} {word} {name}: {}", one_line(detail))
    };
    let mut out = std::io::stdout().lock();
    // The console is the only channel; if it fails there is no one to tell.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// `text` with line breaks turned into ` | `, so one result is one line.
pub fn one_line(text: &str) -> String {
    text.trim_end()
        .replace("\r\n", " | ")
        .replace(['\n', '\r'], " | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_line_round_trips() {
        for o in [
            Outcome::Pass("4 CPUs".into()),
            Outcome::Fail("node 1: got 0".into()),
            Outcome::Skip(String::new()),
        ] {
            assert_eq!(Outcome::from_child_line(&o.to_child_line()), Some(o));
        }
    }

    #[test]
    fn multi_line_detail_becomes_one_line() {
        let o = Outcome::Fail("a\nb\r\nc\n".into());
        assert_eq!(o.to_child_line(), "numavm-result: FAIL a | b | c");
    }

    #[test]
    fn other_lines_are_not_results() {
        assert_eq!(Outcome::from_child_line("hello"), None);
        assert_eq!(Outcome::from_child_line("numavm-result: MAYBE x"), None);
    }
}
