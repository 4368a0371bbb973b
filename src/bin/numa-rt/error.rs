//! The command's error: a one-line message and the exit status it maps to.

use std::fmt;

/// Why the command failed.
#[derive(Debug)]
pub struct CliError {
    kind: Kind,
    message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The command line was wrong (exit status 2).
    Usage,
    /// The command line was fine but the work failed (exit status 1).
    Failed,
}

impl CliError {
    /// A mistake in the command line.
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError::new(Kind::Usage, message.into())
    }

    /// A failure to read input or write output.
    pub fn failed(message: impl Into<String>) -> CliError {
        CliError::new(Kind::Failed, message.into())
    }

    fn new(kind: Kind, message: String) -> CliError {
        // The message is printed as one line on stderr, whatever the
        // underlying error's text looks like.
        let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
        CliError { kind, message }
    }

    /// The process exit status: 2 for usage errors, 1 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            Kind::Usage => 2,
            Kind::Failed => 1,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_single_line() {
        let usage = CliError::usage("bad\nflag");
        assert_eq!(usage.exit_code(), 2);
        assert_eq!(usage.to_string(), "bad flag");
        assert_eq!(CliError::failed("no such dir").exit_code(), 1);
    }
}
