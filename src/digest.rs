//! SHA-256 digests and a writer that hashes what passes through it, and
//! the other algorithms `repropack hash --algorithm` prints
//! ([`DigestAlgorithm`]).
//!
//! Knows nothing of formats: it sees bytes only.
//!
//! ```
//! use std::io::Write;
//! use repropack::digest::HashingWriter;
//! let mut w = HashingWriter::new(Vec::new());
//! w.write_all(b"abc").unwrap();
//! let (bytes, digest, size) = w.finish();
//! assert_eq!(bytes, b"abc");
//! assert_eq!(size, 3);
//! assert_eq!(digest.to_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
//! ```

use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest([u8; 32]);

/// Why a hex string is not a SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// Not 64 characters long; holds the length.
    #[error("expected 64 hex digits, got {0} characters")]
    Length(usize),
    /// A character that is not `0-9a-f`.
    #[error("character {index} ({ch:?}) is not a lowercase hex digit")]
    Char {
        /// Its position (0-based).
        index: usize,
        /// The character.
        ch: char,
    },
}

impl Sha256Digest {
    /// The digest with these 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Sha256Digest {
        Sha256Digest(bytes)
    }
    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }
    /// Parses exactly 64 lowercase hex digits.
    pub fn from_hex(s: &str) -> Result<Sha256Digest, HexError> {
        if s.chars().count() != 64 {
            return Err(HexError::Length(s.chars().count()));
        }
        let mut out = [0u8; 32];
        for (index, ch) in s.chars().enumerate() {
            let v = match ch {
                '0'..='9' => ch as u8 - b'0',
                'a'..='f' => ch as u8 - b'a' + 10,
                _ => return Err(HexError::Char { index, ch }),
            };
            out[index / 2] |= if index % 2 == 0 { v << 4 } else { v };
        }
        Ok(Sha256Digest(out))
    }
    /// Digest of a byte slice.
    pub fn of(bytes: &[u8]) -> Sha256Digest {
        Sha256Digest(Sha256::digest(bytes).into())
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({})", self.to_hex())
    }
}

/// Incremental hasher that also counts bytes.
#[derive(Clone, Default)]
pub struct Hasher {
    inner: Sha256,
    size: u64,
}

impl Hasher {
    /// A hasher that has seen no bytes.
    pub fn new() -> Hasher {
        Hasher::default()
    }
    /// Hashes `bytes` next.
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.size += bytes.len() as u64;
    }
    /// Bytes hashed so far.
    pub fn size(&self) -> u64 {
        self.size
    }
    /// The digest and the number of bytes hashed.
    pub fn finish(self) -> (Sha256Digest, u64) {
        (Sha256Digest(self.inner.finalize().into()), self.size)
    }
}

/// Passes writes through to `W` and hashes exactly the bytes `W` accepted.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> HashingWriter<W> {
    /// Hashes what is written to `inner`.
    pub fn new(inner: W) -> HashingWriter<W> {
        HashingWriter {
            inner,
            hasher: Hasher::new(),
        }
    }
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.hasher.size()
    }
    /// The wrapped writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }
    /// The wrapped writer, mutably (writes through it are not hashed).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
    /// Returns the inner writer, the digest and the number of bytes.
    pub fn finish(self) -> (W, Sha256Digest, u64) {
        let (d, n) = self.hasher.finish();
        (self.inner, d, n)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes everything `reader` yields.
pub fn hash_reader(reader: impl Read) -> io::Result<(Sha256Digest, u64)> {
    hash_reader_with(reader, &mut vec![0u8; 256 * 1024])
}

/// Hashes everything a buffered `reader` yields straight from its own
/// buffers (no copy into a buffer of ours). Returns the digest and the
/// bytes hashed.
pub fn hash_buffered(reader: &mut dyn BufRead) -> io::Result<(Sha256Digest, u64)> {
    let mut hasher = Hasher::new();
    loop {
        let n = match reader.fill_buf() {
            Ok([]) => return Ok(hasher.finish()),
            Ok(chunk) => {
                hasher.update(chunk);
                chunk.len()
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        reader.consume(n);
    }
}

/// Hashes everything `reader` yields, reading through the caller's `buf`
/// (for callers that hash many small inputs and reuse one buffer).
pub fn hash_reader_with(reader: impl Read, buf: &mut [u8]) -> io::Result<(Sha256Digest, u64)> {
    let mut hasher = Hasher::new();
    for_each_chunk(reader, buf, |chunk| {
        hasher.update(chunk);
        Ok(())
    })?;
    Ok(hasher.finish())
}

/// Reads `reader` to its end through `buf`, handing each chunk read to `f`
/// (reads interrupted by a signal are retried). Returns the bytes read.
pub fn for_each_chunk(
    mut reader: impl Read,
    buf: &mut [u8],
    mut f: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        let n = match reader.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        f(&buf[..n])?;
        total += n as u64;
    }
}

/// Hashes a file.
pub fn hash_file(path: &Path) -> io::Result<(Sha256Digest, u64)> {
    hash_reader(std::fs::File::open(path)?)
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// A digest algorithm a file can be named by: sha256 (the one refs carry)
/// and the others package indexes use.
///
/// ```
/// use repropack::digest::DigestAlgorithm;
/// let sha3 = DigestAlgorithm::parse("sha3-256").unwrap();
/// assert_eq!(sha3.fragment(), "sha3_256");
/// let (hex, size) = sha3.hash_reader(&b"abc"[..])?;
/// assert_eq!(size, 3);
/// assert_eq!(hex, "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// SHA-256 (FIPS 180-4).
    Sha256,
    /// SHA-384 (FIPS 180-4).
    Sha384,
    /// SHA-512 (FIPS 180-4).
    Sha512,
    /// SHA3-256 (FIPS 202).
    Sha3_256,
}

impl DigestAlgorithm {
    /// Every algorithm, in the order help texts list them.
    pub const ALL: [DigestAlgorithm; 4] = [
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Sha384,
        DigestAlgorithm::Sha512,
        DigestAlgorithm::Sha3_256,
    ];

    /// The algorithm called `name` (as [`name`](DigestAlgorithm::name)
    /// spells it).
    pub fn parse(name: &str) -> Option<DigestAlgorithm> {
        DigestAlgorithm::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Its name on the command line: `sha256`, `sha384`, `sha512`,
    /// `sha3-256`.
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha384 => "sha384",
            DigestAlgorithm::Sha512 => "sha512",
            DigestAlgorithm::Sha3_256 => "sha3-256",
        }
    }

    /// Its name in a URL fragment `#NAME=HEX`: Python's `hashlib` name,
    /// which pip and PEP 503 indexes use (`sha3_256` for SHA3-256).
    pub fn fragment(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha3_256 => "sha3_256",
            other => other.name(),
        }
    }

    /// Lowercase hex digest and size of everything `reader` yields.
    pub fn hash_reader(self, reader: impl Read) -> io::Result<(String, u64)> {
        fn run<D: Digest>(reader: impl Read) -> io::Result<(String, u64)> {
            let mut hasher = D::new();
            let size = for_each_chunk(reader, &mut vec![0u8; 256 * 1024], |chunk| {
                hasher.update(chunk);
                Ok(())
            })?;
            Ok((to_hex(&hasher.finalize()), size))
        }
        match self {
            DigestAlgorithm::Sha256 => run::<Sha256>(reader),
            DigestAlgorithm::Sha384 => run::<sha2::Sha384>(reader),
            DigestAlgorithm::Sha512 => run::<sha2::Sha512>(reader),
            DigestAlgorithm::Sha3_256 => run::<sha3::Sha3_256>(reader),
        }
    }

    /// [`hash_reader`](DigestAlgorithm::hash_reader) of a file.
    pub fn hash_file(self, path: &Path) -> io::Result<(String, u64)> {
        self.hash_reader(std::fs::File::open(path)?)
    }
}
