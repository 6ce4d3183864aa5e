//! The exit codes as README.md documents them, written down here rather than
//! taken from the binary, so that a changed code fails the tests.

/// Success (for `diff`: identical).
pub const OK: i32 = 0;
/// Different (`diff`, `verify`), or unverified (`check`).
pub const DIFFERENT: i32 = 1;
/// Bad command line or another error (every `diff` error).
pub const USAGE: i32 = 2;
/// Bad input.
pub const INPUT: i32 = 3;
/// The output could not be written.
pub const OUTPUT: i32 = 4;
/// Bytes did not match the expected sha256.
pub const HASH_MISMATCH: i32 = 5;
/// Every source of a fetch failed.
pub const FETCH: i32 = 6;
/// An archive was refused as unsafe to extract.
pub const UNSAFE: i32 = 7;
/// `gate --require-verified`: not verified.
pub const UNVERIFIED: i32 = 8;
/// A missing, malformed, untrusted or bad signature, or an unusable key.
pub const SIGNATURE: i32 = 9;
