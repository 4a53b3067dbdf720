//! Exit codes, standard output that survives a closed pipe, and error
//! messages that say each cause once.

use std::error::Error;
use std::fmt;
use std::io::{self, Write};
use std::process::ExitCode;

/// Exit code: the operation ran and its answer was "no".
pub const EXIT_REJECTED: u8 = 1;
/// Exit code: the command line is wrong (clap's own usage errors too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the operation could not be carried out.
pub const EXIT_FAILED: u8 = 3;
/// Exit code: standard output was closed before everything was written (a
/// reader such as `head` went away): what a shell shows for a program
/// stopped by SIGPIPE, 128 + 13.
pub const EXIT_STDOUT_CLOSED: u8 = 141;

/// Any failure of a command.
pub type BoxError = Box<dyn Error>;

/// What a command returns: its exit code, or why it failed.
pub type Outcome = Result<ExitCode, BoxError>;

/// A command-line mistake found after parsing (exit code 2, like clap's own).
#[derive(Debug)]
pub struct Usage(pub String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for Usage {}

/// A [`Usage`] error.
pub fn usage(text: impl Into<String>) -> BoxError {
    Box::new(Usage(text.into()))
}

/// Standard output was closed: the program ends quietly with
/// [`EXIT_STDOUT_CLOSED`].
#[derive(Debug)]
pub struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl Error for StdoutClosed {}

/// Writes one line to standard output. A closed pipe becomes
/// [`StdoutClosed`] (never a panic, as `println!` would); any other write
/// error is a failure naming standard output.
pub fn line(text: impl fmt::Display) -> Result<(), BoxError> {
    let mut out = io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| -> BoxError {
            if e.kind() == io::ErrorKind::BrokenPipe {
                Box::new(StdoutClosed)
            } else {
                format!("writing to standard output: {e}").into()
            }
        })
}

/// One line for an error and its causes, each said once: a cause whose text
/// the message already holds (many errors repeat their source's) is left out.
pub fn describe(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !said.is_empty() && !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// The exit code for a command's outcome, printing the failure (if any) on
/// standard error as `wasender: …`.
pub fn finish(outcome: Outcome) -> ExitCode {
    match outcome {
        Ok(code) => code,
        Err(e) if e.is::<StdoutClosed>() => ExitCode::from(EXIT_STDOUT_CLOSED),
        Err(e) => {
            let code = if e.is::<Usage>() {
                EXIT_USAGE
            } else {
                EXIT_FAILED
            };
            // Standard error may be closed too: nothing more to say then.
            let _ = writeln!(io::stderr().lock(), "wasender: {}", describe(e.as_ref()));
            ExitCode::from(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(io::Error, bool);

    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            if self.1 {
                write!(f, "binding 0.0.0.0:3000: {}", self.0)
            } else {
                f.write_str("binding 0.0.0.0:3000")
            }
        }
    }

    impl Error for Wrapper {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_is_said_once() {
        let in_use = || io::Error::new(io::ErrorKind::AddrInUse, "Address already in use");
        assert_eq!(
            describe(&Wrapper(in_use(), true)),
            "binding 0.0.0.0:3000: Address already in use"
        );
        assert_eq!(
            describe(&Wrapper(in_use(), false)),
            "binding 0.0.0.0:3000: Address already in use"
        );
    }
}
