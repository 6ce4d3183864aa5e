//! Command handlers of the `repropack` binary. Each submodule turns parsed
//! arguments into library calls and prints the result; errors become a
//! [`Failure`] carrying the exit code from [`exit`](crate::cli::exit).

pub mod check;
pub mod diff;
pub mod digest;
pub mod docs;
pub mod exit;
pub mod extract;
pub mod fetch;
pub mod flags;
pub mod gate;
pub mod hash;
pub mod pack;
pub mod progress;
pub mod push;
pub mod resolve;
pub mod side;
pub mod sign;
pub mod verify;

use repropack::pack::PackError;
use repropack::stage::StageError;

/// An error on its way to stderr, with the exit code it maps to.
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(code: i32, message: impl std::fmt::Display) -> Failure {
        Failure {
            code,
            message: message.to_string(),
        }
    }
}

impl From<StageError> for Failure {
    fn from(e: StageError) -> Failure {
        Failure::from_stage(&e)
    }
}

/// The exit code of a key or signature failure: [`exit::SIGNATURE`], except
/// that keys that cannot be written are output errors.
pub fn signature_failure(e: repropack::verify::signature::SignatureError) -> Failure {
    use repropack::verify::signature::SignatureError;
    let code = match &e {
        SignatureError::Output(_) => exit::OUTPUT,
        _ => exit::SIGNATURE,
    };
    Failure::new(code, e)
}

/// Prints each warning to stderr.
pub fn warn<S: std::fmt::Display>(warnings: impl IntoIterator<Item = S>) {
    for w in warnings {
        eprintln!("repropack: warning: {w}");
    }
}

impl Failure {
    fn from_stage(e: &StageError) -> Failure {
        let code = match e {
            StageError::Option { .. }
            | StageError::Glob { .. }
            | StageError::PackFile { .. }
            | StageError::XattrFile { .. } => exit::USAGE,
            _ => exit::INPUT,
        };
        Failure::new(code, e)
    }
}

impl From<PackError> for Failure {
    fn from(e: PackError) -> Failure {
        let code = match &e {
            PackError::Output(_) => exit::OUTPUT,
            PackError::Tar(t) if t.source.kind() == std::io::ErrorKind::InvalidData => exit::INPUT,
            PackError::Tar(t) if is_output_side(&t.source) => exit::OUTPUT,
            PackError::Tar(_) => exit::INPUT,
            PackError::Option(_) | PackError::Unsupported { .. } => exit::USAGE,
            PackError::Squashfs(s) if s.is_input() => exit::INPUT,
            PackError::Squashfs(repropack::format::squashfs::SquashfsError::Option(_)) => {
                exit::USAGE
            }
            PackError::Squashfs(_) => exit::OUTPUT,
            PackError::Stage(s) => return Failure::from_stage(s),
            PackError::Input { .. } | PackError::Tree(_) => exit::INPUT,
            PackError::Manifest(_) | PackError::Provenance(_) | PackError::Ref { .. } => {
                exit::OUTPUT
            }
        };
        Failure::new(code, e)
    }
}

fn is_output_side(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        StorageFull | QuotaExceeded | WriteZero | BrokenPipe
    )
}
