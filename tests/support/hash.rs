//! sha256 of files, computed without repropack's code.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

/// sha256 (hex) of a file, with the `sha2` crate.
pub fn sha256_file(p: &Path) -> String {
    let mut h = Sha256::new();
    let mut f = BufReader::with_capacity(1 << 20, File::open(p).expect("open"));
    loop {
        let buf = f.fill_buf().expect("read");
        if buf.is_empty() {
            break;
        }
        h.update(buf);
        let n = buf.len();
        f.consume(n);
    }
    hex(&h.finalize())
}

/// sha256 (hex) of a file by coreutils `sha256sum`: a second, external
/// implementation for checks that must not share code with the packer.
pub fn sha256sum(p: &Path) -> String {
    coreutils_sum("sha256sum", p)
}

/// The hex digest coreutils' `tool` (`sha256sum`, `sha384sum`,
/// `sha512sum`, …) prints for a file.
pub fn coreutils_sum(tool: &str, p: &Path) -> String {
    let out = Command::new(tool).arg(p).output().expect("run coreutils");
    assert!(out.status.success(), "{tool} {}", p.display());
    let line = String::from_utf8(out.stdout).unwrap();
    line.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 (hex) of bytes, with the `sha2` crate.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}
