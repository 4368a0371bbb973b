//! Why a blocking job could not be accepted.

use std::{fmt, io};

/// The error [`BlockingPool::spawn`](super::BlockingPool::spawn) returns.
///
/// The job is dropped without running in both cases.
#[derive(Debug)]
pub(crate) enum SpawnError {
    /// The pool is shutting down and accepts no more jobs.
    ShuttingDown,
    /// The OS refused to start a thread (for example `EAGAIN` under a
    /// thread limit) and the pool has no thread that could run the job.
    NoThreads(io::Error),
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::ShuttingDown => {
                f.write_str("the blocking pool is shutting down and accepts no new jobs")
            }
            SpawnError::NoThreads(e) => write!(
                f,
                "the OS refused to start a blocking-pool thread and none is running: {e}"
            ),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpawnError::ShuttingDown => None,
            SpawnError::NoThreads(e) => Some(e),
        }
    }
}

impl From<SpawnError> for io::Error {
    fn from(err: SpawnError) -> io::Error {
        let kind = match &err {
            SpawnError::ShuttingDown => io::ErrorKind::Other,
            SpawnError::NoThreads(e) => e.kind(),
        };
        io::Error::new(kind, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_cause() {
        let err = SpawnError::NoThreads(io::Error::from_raw_os_error(libc::EAGAIN));
        let text = err.to_string();
        assert!(text.contains("refused to start"), "{text}");
        let io: io::Error = err.into();
        assert_eq!(io.kind(), io::ErrorKind::WouldBlock);
        assert!(SpawnError::ShuttingDown
            .to_string()
            .contains("shutting down"));
    }
}
