//! Exit codes of the `repropack` binary, documented in README.md.

/// Success (for `diff`: byte-identical).
pub const OK: i32 = 0;
/// `diff`/`verify`: the artifacts or entries differ (for `verify` also: the
/// manifest's source revision is not the expected one). `check`: the
/// perturbed rebuild differs (the artifact is unverified).
pub const DIFFERENT: i32 = 1;
/// Bad command line or another error not listed below.
pub const USAGE: i32 = 2;
/// Bad input: a missing, unreadable or unstable source, a refused special
/// file, a colliding archive path, a malformed ref or archive.
pub const INPUT: i32 = 3;
/// The output could not be written (missing directory, full disk, …).
pub const OUTPUT: i32 = 4;
/// Bytes did not match the expected sha256.
pub const HASH_MISMATCH: i32 = 5;
/// Every source of a fetch failed (network, 404, timeout); a registry
/// refused a push as unauthorized.
pub const FETCH: i32 = 6;
/// An archive was rejected as unsafe to extract.
pub const UNSAFE: i32 = 7;
/// `gate --require-verified`: the artifact is not verified.
pub const UNVERIFIED: i32 = 8;
/// A key or signature problem: a missing, malformed, untrusted or bad
/// signature, a secret key that cannot be read or decrypted.
pub const SIGNATURE: i32 = 9;
