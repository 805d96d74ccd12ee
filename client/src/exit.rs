//! notaryctl's exit codes (documented in `--help`, see `cli::EXIT_CODES`):
//! what kind of failure it was, read from the error's type, never its text.

use crate::connect::Unreachable;
use crate::errors::KeydError;
use std::process::ExitCode;

/// Content or a target that no trusted metadata vouches for.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct NotTrusted(pub String);

const FAILED: u8 = 1;
const NOT_TRUSTED: u8 = 3;
const DAEMON_UNREACHABLE: u8 = 4;

pub(crate) fn code_for(error: &anyhow::Error) -> ExitCode {
    ExitCode::from(number(error))
}

fn number(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if cause.is::<NotTrusted>() {
            return NOT_TRUSTED;
        }
        if cause.is::<Unreachable>() {
            return DAEMON_UNREACHABLE;
        }
        if cause
            .downcast_ref::<KeydError>()
            .is_some_and(KeydError::connection_lost)
        {
            return DAEMON_UNREACHABLE;
        }
    }
    FAILED
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn codes_follow_the_error_type_through_context() {
        let plain = anyhow::anyhow!("refused");
        assert_eq!(number(&plain), FAILED);
        let mismatch = Err::<(), _>(NotTrusted("does not match".into()))
            .context("verify")
            .unwrap_err();
        assert_eq!(number(&mismatch), NOT_TRUSTED);
        let gone = Unreachable::new("/x.sock".as_ref(), "Connection refused".into());
        assert_eq!(number(&anyhow::Error::new(gone)), DAEMON_UNREACHABLE);
        // A refusal the daemon sent is not a lost connection.
        let refusal = KeydError::new(tonic::Status::unavailable("token absent"));
        assert_eq!(number(&anyhow::Error::new(refusal)), FAILED);
        let lost = KeydError::new(tonic::Status::from_error(Box::new(std::io::Error::new(
            std::io::ErrorKind::BrokenPipe,
            "broken pipe",
        ))));
        assert_eq!(number(&anyhow::Error::new(lost)), DAEMON_UNREACHABLE);
    }
}
