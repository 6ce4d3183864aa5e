//! SHA-256 digests and a writer that hashes what passes through it, and
//! the other algorithms artifacts can be named by ([`DigestAlgorithm`],
//! [`ContentDigest`]) with the ways they are written down: lowercase hex,
//! `ALG:HEX` and Subresource Integrity (`sha384-BASE64`).
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

/// Why a hex string is not a digest of the expected algorithm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// Not as many characters as the algorithm's digest has hex digits.
    #[error("expected {expected} hex digits, got {got} characters")]
    Length {
        /// Hex digits the algorithm's digest has (64 for sha256).
        expected: usize,
        /// Characters found.
        got: usize,
    },
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
        let mut out = [0u8; 32];
        decode_hex(s, &mut out)?;
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

/// Fills `out` from exactly `2 * out.len()` lowercase hex digits.
fn decode_hex(s: &str, out: &mut [u8]) -> Result<(), HexError> {
    let got = s.chars().count();
    if got != out.len() * 2 {
        return Err(HexError::Length {
            expected: out.len() * 2,
            got,
        });
    }
    for (index, ch) in s.chars().enumerate() {
        let v = match ch {
            '0'..='9' => ch as u8 - b'0',
            'a'..='f' => ch as u8 - b'a' + 10,
            _ => return Err(HexError::Char { index, ch }),
        };
        out[index / 2] |= if index % 2 == 0 { v << 4 } else { v };
    }
    Ok(())
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

/// A digest algorithm a file can be named by: sha256 (the one repropack
/// names its own artifacts by) and the others package indexes, lock files
/// and Subresource Integrity use.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DigestAlgorithm {
    /// SHA-256 (FIPS 180-4).
    Sha256,
    /// SHA-384 (FIPS 180-4).
    Sha384,
    /// SHA-512 (FIPS 180-4).
    Sha512,
    /// SHA3-224 (FIPS 202).
    Sha3_224,
    /// SHA3-256 (FIPS 202).
    Sha3_256,
    /// SHA3-384 (FIPS 202).
    Sha3_384,
    /// SHA3-512 (FIPS 202).
    Sha3_512,
}

/// The most bytes a digest of any [`DigestAlgorithm`] has.
const MAX_DIGEST_BYTES: usize = 64;

impl DigestAlgorithm {
    /// Every algorithm, in the order help texts list them.
    pub const ALL: [DigestAlgorithm; 7] = [
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Sha384,
        DigestAlgorithm::Sha512,
        DigestAlgorithm::Sha3_224,
        DigestAlgorithm::Sha3_256,
        DigestAlgorithm::Sha3_384,
        DigestAlgorithm::Sha3_512,
    ];

    /// The algorithm called `name` (as [`name`](DigestAlgorithm::name)
    /// spells it).
    pub fn parse(name: &str) -> Option<DigestAlgorithm> {
        DigestAlgorithm::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Its name on the command line and in the cache's directory names:
    /// `sha256`, `sha384`, `sha512`, `sha3-224`, `sha3-256`, `sha3-384`,
    /// `sha3-512`.
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha384 => "sha384",
            DigestAlgorithm::Sha512 => "sha512",
            DigestAlgorithm::Sha3_224 => "sha3-224",
            DigestAlgorithm::Sha3_256 => "sha3-256",
            DigestAlgorithm::Sha3_384 => "sha3-384",
            DigestAlgorithm::Sha3_512 => "sha3-512",
        }
    }

    /// Its name in a URL fragment `#NAME=HEX`: Python's `hashlib` name,
    /// which pip and PEP 503 indexes use (`sha3_256` for SHA3-256).
    pub fn fragment(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha3_224 => "sha3_224",
            DigestAlgorithm::Sha3_256 => "sha3_256",
            DigestAlgorithm::Sha3_384 => "sha3_384",
            DigestAlgorithm::Sha3_512 => "sha3_512",
            other => other.name(),
        }
    }

    /// Bytes in one of its digests (twice as many hex digits).
    pub fn digest_bytes(self) -> usize {
        match self {
            DigestAlgorithm::Sha3_224 => 28,
            DigestAlgorithm::Sha256 | DigestAlgorithm::Sha3_256 => 32,
            DigestAlgorithm::Sha384 | DigestAlgorithm::Sha3_384 => 48,
            DigestAlgorithm::Sha512 | DigestAlgorithm::Sha3_512 => 64,
        }
    }

    /// Lowercase hex digest and size of everything `reader` yields.
    pub fn hash_reader(self, reader: impl Read) -> io::Result<(String, u64)> {
        let mut hasher = DigestHasher::new(self);
        for_each_chunk(reader, &mut vec![0u8; 256 * 1024], |chunk| {
            hasher.update(chunk);
            Ok(())
        })?;
        let (digest, size) = hasher.finish();
        Ok((digest.to_hex(), size))
    }

    /// [`hash_reader`](DigestAlgorithm::hash_reader) of a file.
    pub fn hash_file(self, path: &Path) -> io::Result<(String, u64)> {
        self.hash_reader(std::fs::File::open(path)?)
    }
}

/// A digest of any [`DigestAlgorithm`]: the algorithm and its bytes.
/// What a ref, `fetch --digest` or `fetch --integrity` pins an artifact
/// to, and what the cache keys entries by.
///
/// ```
/// use repropack::digest::{ContentDigest, DigestAlgorithm};
/// let d: ContentDigest = "sha3:3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"
///     .parse()?;
/// assert_eq!(d.algorithm(), DigestAlgorithm::Sha3_256);
/// assert_eq!(d, ContentDigest::of(DigestAlgorithm::Sha3_256, b"abc"));
/// assert!(d.sha256().is_none());
/// let sri = ContentDigest::from_sri(
///     "sha384-ywB1P0WjXou1oD1pmsZQBycsMqsO3tFjGotgWkP/W+2AhgcroefMI1i67KE0yCWn",
/// )?;
/// assert_eq!(sri, ContentDigest::of(DigestAlgorithm::Sha384, b"abc"));
/// # Ok::<(), repropack::digest::DigestFormError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentDigest {
    algorithm: DigestAlgorithm,
    /// The digest in the first `algorithm.digest_bytes()` bytes; the rest
    /// is zero.
    bytes: [u8; MAX_DIGEST_BYTES],
}

/// Why a written-down digest (`ALG:HEX`, SRI, or hex of a given algorithm)
/// is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestFormError {
    /// `ALG:HEX` whose `ALG` is not `sha256`, `sha384`, `sha512` or `sha3`
    /// (carried: what came before `:`, or the whole text without one).
    #[error("{0:?} is not `sha256:`, `sha384:`, `sha512:` or `sha3:` followed by lowercase hex")]
    Prefix(String),
    /// `sha3:HEX` whose hex has a length no SHA-3 digest has (carried).
    #[error("a sha3 digest has 56, 64, 96 or 128 hex digits (SHA3-224/256/384/512), got {0}")]
    Sha3Length(usize),
    /// The hex digits are not the algorithm's.
    #[error("bad {algorithm} hex: {source}")]
    Hex {
        /// The algorithm's name.
        algorithm: &'static str,
        /// What is wrong with the hex.
        #[source]
        source: HexError,
    },
    /// SRI whose algorithm is not `sha256`, `sha384` or `sha512` (carried:
    /// what came before `-`, or the whole text without one).
    #[error(
        "{0:?} is not one Subresource Integrity hash `sha256-`, `sha384-` or `sha512-` followed by base64"
    )]
    SriPrefix(String),
    /// The SRI hash is not canonical standard base64.
    #[error("bad {algorithm} base64: {reason}")]
    Base64 {
        /// The algorithm's name.
        algorithm: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The SRI hash decodes to a length the algorithm's digests do not have.
    #[error("a {algorithm} digest has {expected} bytes, the base64 holds {got}")]
    Length {
        /// The algorithm's name.
        algorithm: &'static str,
        /// Bytes in its digests.
        expected: usize,
        /// Bytes decoded.
        got: usize,
    },
}

impl ContentDigest {
    /// The digest of `algorithm` with these bytes; `None` unless there are
    /// exactly [`digest_bytes`](DigestAlgorithm::digest_bytes) of them.
    pub fn from_slice(algorithm: DigestAlgorithm, bytes: &[u8]) -> Option<ContentDigest> {
        if bytes.len() != algorithm.digest_bytes() {
            return None;
        }
        let mut out = [0u8; MAX_DIGEST_BYTES];
        out[..bytes.len()].copy_from_slice(bytes);
        Some(ContentDigest {
            algorithm,
            bytes: out,
        })
    }

    /// Parses the digest of `algorithm` from exactly its number of
    /// lowercase hex digits.
    pub fn from_hex(algorithm: DigestAlgorithm, s: &str) -> Result<ContentDigest, HexError> {
        let mut bytes = [0u8; MAX_DIGEST_BYTES];
        decode_hex(s, &mut bytes[..algorithm.digest_bytes()])?;
        Ok(ContentDigest { algorithm, bytes })
    }

    /// Parses one Subresource Integrity hash as Bazel and npm write it:
    /// `sha256-`, `sha384-` or `sha512-` followed by the digest in
    /// standard, padded base64 (W3C SRI §3.1; no options, no second hash).
    pub fn from_sri(s: &str) -> Result<ContentDigest, DigestFormError> {
        use base64::Engine as _;
        let (name, b64) = s
            .split_once('-')
            .ok_or_else(|| DigestFormError::SriPrefix(s.to_string()))?;
        let algorithm = match name {
            "sha256" => DigestAlgorithm::Sha256,
            "sha384" => DigestAlgorithm::Sha384,
            "sha512" => DigestAlgorithm::Sha512,
            _ => return Err(DigestFormError::SriPrefix(name.to_string())),
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| DigestFormError::Base64 {
                algorithm: algorithm.name(),
                reason: e.to_string(),
            })?;
        ContentDigest::from_slice(algorithm, &bytes).ok_or(DigestFormError::Length {
            algorithm: algorithm.name(),
            expected: algorithm.digest_bytes(),
            got: bytes.len(),
        })
    }

    /// The digest of `bytes` by `algorithm`.
    pub fn of(algorithm: DigestAlgorithm, bytes: &[u8]) -> ContentDigest {
        let mut h = DigestHasher::new(algorithm);
        h.update(bytes);
        h.finish().0
    }

    /// The algorithm.
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The digest's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.algorithm.digest_bytes()]
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        to_hex(self.as_bytes())
    }

    /// The SHA-256 digest, if this is one.
    pub fn sha256(&self) -> Option<Sha256Digest> {
        match self.algorithm {
            DigestAlgorithm::Sha256 => {
                let mut out = [0u8; 32];
                out.copy_from_slice(self.as_bytes());
                Some(Sha256Digest(out))
            }
            _ => None,
        }
    }
}

impl From<Sha256Digest> for ContentDigest {
    fn from(d: Sha256Digest) -> ContentDigest {
        let mut bytes = [0u8; MAX_DIGEST_BYTES];
        bytes[..32].copy_from_slice(&d.0);
        ContentDigest {
            algorithm: DigestAlgorithm::Sha256,
            bytes,
        }
    }
}

/// `ALG:HEX` as `fetch --digest` takes it: `sha256:`, `sha384:`,
/// `sha512:`, or `sha3:` with SHA3-224/256/384/512 told apart by the
/// number of hex digits; lowercase hex only.
impl std::str::FromStr for ContentDigest {
    type Err = DigestFormError;
    fn from_str(s: &str) -> Result<ContentDigest, DigestFormError> {
        let (name, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestFormError::Prefix(s.to_string()))?;
        let algorithm = match (name, hex.len()) {
            ("sha256", _) => DigestAlgorithm::Sha256,
            ("sha384", _) => DigestAlgorithm::Sha384,
            ("sha512", _) => DigestAlgorithm::Sha512,
            ("sha3", 56) => DigestAlgorithm::Sha3_224,
            ("sha3", 64) => DigestAlgorithm::Sha3_256,
            ("sha3", 96) => DigestAlgorithm::Sha3_384,
            ("sha3", 128) => DigestAlgorithm::Sha3_512,
            ("sha3", _) => return Err(DigestFormError::Sha3Length(hex.chars().count())),
            _ => return Err(DigestFormError::Prefix(name.to_string())),
        };
        ContentDigest::from_hex(algorithm, hex).map_err(|source| DigestFormError::Hex {
            algorithm: algorithm.name(),
            source,
        })
    }
}

/// `ALG:HEX` with the algorithm's [`name`](DigestAlgorithm::name).
impl fmt::Display for ContentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.to_hex())
    }
}

impl fmt::Debug for ContentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentDigest({self})")
    }
}

/// An incremental hasher of any [`DigestAlgorithm`] that also counts bytes.
#[derive(Clone)]
pub struct DigestHasher {
    inner: AnyHasher,
    size: u64,
}

#[derive(Clone)]
enum AnyHasher {
    Sha256(Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
    Sha3_224(sha3::Sha3_224),
    Sha3_256(sha3::Sha3_256),
    Sha3_384(sha3::Sha3_384),
    Sha3_512(sha3::Sha3_512),
}

impl DigestHasher {
    /// A hasher of `algorithm` that has seen no bytes.
    pub fn new(algorithm: DigestAlgorithm) -> DigestHasher {
        let inner = match algorithm {
            DigestAlgorithm::Sha256 => AnyHasher::Sha256(Sha256::new()),
            DigestAlgorithm::Sha384 => AnyHasher::Sha384(sha2::Sha384::new()),
            DigestAlgorithm::Sha512 => AnyHasher::Sha512(sha2::Sha512::new()),
            DigestAlgorithm::Sha3_224 => AnyHasher::Sha3_224(sha3::Sha3_224::new()),
            DigestAlgorithm::Sha3_256 => AnyHasher::Sha3_256(sha3::Sha3_256::new()),
            DigestAlgorithm::Sha3_384 => AnyHasher::Sha3_384(sha3::Sha3_384::new()),
            DigestAlgorithm::Sha3_512 => AnyHasher::Sha3_512(sha3::Sha3_512::new()),
        };
        DigestHasher { inner, size: 0 }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> DigestAlgorithm {
        match self.inner {
            AnyHasher::Sha256(_) => DigestAlgorithm::Sha256,
            AnyHasher::Sha384(_) => DigestAlgorithm::Sha384,
            AnyHasher::Sha512(_) => DigestAlgorithm::Sha512,
            AnyHasher::Sha3_224(_) => DigestAlgorithm::Sha3_224,
            AnyHasher::Sha3_256(_) => DigestAlgorithm::Sha3_256,
            AnyHasher::Sha3_384(_) => DigestAlgorithm::Sha3_384,
            AnyHasher::Sha3_512(_) => DigestAlgorithm::Sha3_512,
        }
    }

    /// Hashes `bytes` next.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.inner {
            AnyHasher::Sha256(h) => h.update(bytes),
            AnyHasher::Sha384(h) => h.update(bytes),
            AnyHasher::Sha512(h) => h.update(bytes),
            AnyHasher::Sha3_224(h) => h.update(bytes),
            AnyHasher::Sha3_256(h) => h.update(bytes),
            AnyHasher::Sha3_384(h) => h.update(bytes),
            AnyHasher::Sha3_512(h) => h.update(bytes),
        }
        self.size += bytes.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The digest and the number of bytes hashed.
    pub fn finish(self) -> (ContentDigest, u64) {
        let algorithm = self.algorithm();
        let mut bytes = [0u8; MAX_DIGEST_BYTES];
        let out = &mut bytes[..algorithm.digest_bytes()];
        match self.inner {
            AnyHasher::Sha256(h) => out.copy_from_slice(&h.finalize()),
            AnyHasher::Sha384(h) => out.copy_from_slice(&h.finalize()),
            AnyHasher::Sha512(h) => out.copy_from_slice(&h.finalize()),
            AnyHasher::Sha3_224(h) => out.copy_from_slice(&h.finalize()),
            AnyHasher::Sha3_256(h) => out.copy_from_slice(&h.finalize()),
            AnyHasher::Sha3_384(h) => out.copy_from_slice(&h.finalize()),
            AnyHasher::Sha3_512(h) => out.copy_from_slice(&h.finalize()),
        }
        (ContentDigest { algorithm, bytes }, self.size)
    }
}

/// [`DigestHasher`] of everything in a file.
pub fn hash_file_with(algorithm: DigestAlgorithm, path: &Path) -> io::Result<(ContentDigest, u64)> {
    let mut hasher = DigestHasher::new(algorithm);
    for_each_chunk(
        std::fs::File::open(path)?,
        &mut vec![0u8; 256 * 1024],
        |chunk| {
            hasher.update(chunk);
            Ok(())
        },
    )?;
    Ok(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA3_512_ABC: &str = "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0";

    #[test]
    fn sha3_prefix_tells_the_variant_by_length() {
        for alg in [
            DigestAlgorithm::Sha3_224,
            DigestAlgorithm::Sha3_256,
            DigestAlgorithm::Sha3_384,
            DigestAlgorithm::Sha3_512,
        ] {
            let d = ContentDigest::of(alg, b"abc");
            let parsed: ContentDigest = format!("sha3:{}", d.to_hex()).parse().unwrap();
            assert_eq!(parsed, d);
        }
        assert_eq!(
            ContentDigest::of(DigestAlgorithm::Sha3_512, b"abc").to_hex(),
            SHA3_512_ABC
        );
    }

    #[test]
    fn malformed_digest_forms_are_refused() {
        let sha256 = Sha256Digest::of(b"abc").to_hex();
        for bad in [
            sha256.clone(),
            format!("md5:{sha256}"),
            format!("sha256:{}", &sha256[..63]),
            format!("sha256:{}", sha256.to_uppercase()),
            format!("sha384:{sha256}"),
            format!("sha3:{}", &sha256[..62]),
            format!("SHA256:{sha256}"),
            String::new(),
        ] {
            assert!(bad.parse::<ContentDigest>().is_err(), "accepted {bad:?}");
        }
        for bad in [
            "sha384-",
            "sha1-qZk+NkcGgWq6PiVxeFDCbJzQ2J0=",
            "sha384-ywB1P0WjXou1oD1pmsZQBycsMqsO3tFjGotgWkP/W+2AhgcroefMI1i67KE0yCW",
            "sha256-ywB1P0WjXou1oD1pmsZQBycsMqsO3tFjGotgWkP/W+2AhgcroefMI1i67KE0yCWn",
            "sha384-ywB1P0WjXou1oD1pmsZQBycsMqsO3tFjGotgWkP/W+2AhgcroefMI1i67KE0yCWn sha384-x",
            "ywB1P0WjXou1oD1pmsZQBycsMqsO3tFjGotgWkP/W+2AhgcroefMI1i67KE0yCWn",
        ] {
            assert!(ContentDigest::from_sri(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn a_sha256_content_digest_is_the_sha256_digest() {
        let d = Sha256Digest::of(b"abc");
        let c = ContentDigest::from(d);
        assert_eq!(c, ContentDigest::of(DigestAlgorithm::Sha256, b"abc"));
        assert_eq!(c.sha256(), Some(d));
        assert_eq!(c.to_string(), format!("sha256:{d}"));
    }
}
