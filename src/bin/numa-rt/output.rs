//! Writing results: stdout, or a file named on the command line.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use crate::error::CliError;

/// Writes `text` to stdout. A closed pipe (`numa-rt topo | head -1`) is not
/// an error: the reader has what it wanted.
pub fn stdout(text: &str) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::failed(format!("cannot write to stdout: {e}"))),
    }
}

/// Writes `text` to the file at `path`, or to stdout when `path` is `-`.
pub fn file_or_stdout(path: &Path, text: &str) -> Result<(), CliError> {
    if path == Path::new("-") {
        return stdout(text);
    }
    fs::write(path, text)
        .map_err(|e| CliError::failed(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_errors_name_the_file() {
        let err = file_or_stdout(Path::new("/nonexistent-dir/x.svg"), "<svg/>").unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert!(err.to_string().contains("/nonexistent-dir/x.svg"), "{err}");
    }

    #[test]
    fn writes_files() {
        let path = std::env::temp_dir().join(format!("numa-rt-output-{}.txt", std::process::id()));
        file_or_stdout(&path, "hello").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "hello");
        fs::remove_file(&path).unwrap();
    }
}
