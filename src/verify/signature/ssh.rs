//! OpenSSH signatures (`ssh-keygen -Y sign`): the `sshsig` format of
//! OpenSSH's `PROTOCOL.sshsig`, in the namespace [`NAMESPACE`], trusted
//! through an `allowed_signers` file as `ssh-keygen -Y verify` reads it
//! (`ssh-keygen(1)`, section ALLOWED SIGNERS).
//!
//! Keys, signature encoding and the Ed25519 arithmetic are RustCrypto's
//! `ssh-key`; this module hashes the file (SHA-512, in one streaming pass,
//! whatever its size), builds the blob `PROTOCOL.sshsig` signs over that
//! hash, and reads `allowed_signers`. Signatures live next to the file as
//! `FILE.sig`, armored as `ssh-keygen` writes them, so
//! `ssh-keygen -Y verify -n repropack` accepts ours and we accept its.
//! Only unencrypted `ssh-ed25519` private keys sign here.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let key = dir.path().join("id_ed25519");
//! # let file = dir.path().join("a.tar");
//! # std::fs::write(&file, b"bytes")?;
//! # let made = std::process::Command::new("ssh-keygen")
//! #     .args(["-q", "-t", "ed25519", "-N", "", "-C", "ci", "-f"]).arg(&key).status();
//! # if !made.is_ok_and(|s| s.success()) { return Ok(()); }
//! use repropack::verify::signature::ssh::{AllowedSigners, SshSigningKey, verify_file};
//! let signer = SshSigningKey::load(&key)?;
//! let sig = signer.sign(&file)?;
//! assert!(sig.ends_with("a.tar.sig"));
//! let public = std::fs::read_to_string(key.with_extension("pub"))?;
//! let allowed = dir.path().join("allowed_signers");
//! std::fs::write(&allowed, format!("ci@example.org {public}"))?;
//! let allowed = [AllowedSigners::read(&allowed)?];
//! let ok = verify_file(&file, None, &allowed, Some("ci@example.org"))?;
//! assert_eq!(ok.fingerprint, signer.fingerprint());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256, Sha512};
use signature::{Signer, Verifier};
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

use super::{MAX_SIGNATURE_FILE, SignatureError, next_to, read_err, read_small, write_signature};

/// The `sshsig` namespace of repropack's signatures (`ssh-keygen -n`): a
/// signature made for another purpose (`git`, `file`) is never accepted.
pub const NAMESPACE: &str = "repropack";

/// Largest `allowed_signers` file read, in bytes.
pub const MAX_ALLOWED_SIGNERS_FILE: u64 = 1 << 20;

/// The first line of an armored SSH signature.
pub const PEM_BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";

/// The last line of an armored SSH signature.
const PEM_END: &str = "-----END SSH SIGNATURE-----";

/// `FILE.sig`.
pub fn signature_path(file: &Path) -> PathBuf {
    next_to(file, ".sig")
}

/// An OpenSSH private key, read, ready to sign files: load it before
/// making what it will sign, so a bad key fails before anything is
/// published.
pub struct SshSigningKey {
    path: PathBuf,
    key: PrivateKey,
}

impl SshSigningKey {
    /// Reads the OpenSSH private key at `path` (`-----BEGIN OPENSSH PRIVATE
    /// KEY-----`). It must be an unencrypted `ssh-ed25519` key.
    pub fn load(path: &Path) -> Result<SshSigningKey, SignatureError> {
        let text = read_small(path, MAX_SIGNATURE_FILE)?;
        let key = PrivateKey::from_openssh(&text).map_err(|e| SignatureError::Malformed {
            path: path.to_path_buf(),
            what: "an OpenSSH private key",
            reason: explained(e),
        })?;
        let refuse = |reason: String| SignatureError::Key {
            path: path.to_path_buf(),
            reason,
        };
        if key.is_encrypted() {
            return Err(refuse(
                "the key is encrypted (has a passphrase), which is not supported: \
                 use an unencrypted ed25519 key (ssh-keygen -t ed25519 -N '')"
                    .into(),
            ));
        }
        if key.algorithm() != Algorithm::Ed25519 {
            return Err(refuse(format!(
                "{} keys are not supported, only ssh-ed25519",
                key.algorithm()
            )));
        }
        Ok(SshSigningKey {
            path: path.to_path_buf(),
            key,
        })
    }

    /// The key's `SHA256:` fingerprint, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(HashAlg::Sha256).to_string()
    }

    /// Signs `file` (read once, streaming) and writes `FILE.sig`
    /// atomically.
    pub fn sign(&self, file: &Path) -> Result<PathBuf, SignatureError> {
        let hash = hash_file(file, HashAlg::Sha512)?;
        let blob = signed_data(NAMESPACE, &[], HashAlg::Sha512, &hash);
        let key_err = |reason: String| SignatureError::Key {
            path: self.path.clone(),
            reason,
        };
        let signature = self
            .key
            .key_data()
            .try_sign(&blob)
            .map_err(|e| key_err(e.to_string()))?;
        let pem = SshSig::new(
            self.key.public_key().key_data().clone(),
            NAMESPACE,
            HashAlg::Sha512,
            signature,
        )
        .and_then(|sig| sig.to_pem(LineEnding::LF))
        .map_err(|e| key_err(e.to_string()))?;
        let path = signature_path(file);
        write_signature(&path, pem.as_bytes())?;
        Ok(path)
    }
}

/// Signs `file` with the OpenSSH private key at `key` and writes
/// `FILE.sig` atomically.
pub fn sign_file(file: &Path, key: &Path) -> Result<PathBuf, SignatureError> {
    SshSigningKey::load(key)?.sign(file)
}

/// What a good SSH signature says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshVerified {
    /// The signing key's `SHA256:` fingerprint.
    pub fingerprint: String,
    /// The principals of the `allowed_signers` line that allowed the key,
    /// as written there.
    pub principals: String,
    /// The `allowed_signers` file and line (from 1) that allowed the key.
    pub allowed_by: (PathBuf, usize),
    /// The signature file.
    pub signature: PathBuf,
}

/// Checks `file` against its SSH signature (`signature`, else `FILE.sig`):
/// the namespace must be [`NAMESPACE`], the key must be on a line of one
/// of the `allowed` files that allows this namespace and, with `identity`,
/// lists a principal matching it.
pub fn verify_file(
    file: &Path,
    signature: Option<&Path>,
    allowed: &[AllowedSigners],
    identity: Option<&str>,
) -> Result<SshVerified, SignatureError> {
    verify_with(file, signature, allowed, identity, |alg| {
        hash_file(file, alg)
    })
}

/// [`verify_file`] for `bytes`, read from `file`: a caller that goes on to
/// use the bytes judges exactly the ones it uses, whatever `file` holds
/// later.
pub fn verify_bytes(
    file: &Path,
    bytes: &[u8],
    signature: Option<&Path>,
    allowed: &[AllowedSigners],
    identity: Option<&str>,
) -> Result<SshVerified, SignatureError> {
    verify_with(file, signature, allowed, identity, |alg| {
        hash_reader(file, bytes, alg)
    })
}

fn verify_with(
    file: &Path,
    signature: Option<&Path>,
    allowed: &[AllowedSigners],
    identity: Option<&str>,
    hash: impl FnOnce(HashAlg) -> Result<Vec<u8>, SignatureError>,
) -> Result<SshVerified, SignatureError> {
    let sig_path = signature.map_or_else(|| signature_path(file), Path::to_path_buf);
    if !sig_path.exists() {
        return Err(SignatureError::Missing {
            file: file.to_path_buf(),
            signature: sig_path,
        });
    }
    let sig = read_signature(&sig_path)?;
    let bad = |reason: String| SignatureError::Bad {
        file: file.to_path_buf(),
        reason,
    };
    if sig.namespace() != NAMESPACE {
        return Err(bad(format!(
            "{} was made for namespace {:?}, not {NAMESPACE:?}",
            sig_path.display(),
            sig.namespace()
        )));
    }
    let fingerprint = sig.public_key().fingerprint(HashAlg::Sha256).to_string();
    let key = PublicKey::from(sig.public_key().clone())
        .to_bytes()
        .map_err(|e| bad(e.to_string()))?;
    let line = find_signer(allowed, &key, identity, unix_now()).map_err(|reason| {
        SignatureError::NotAllowed {
            file: file.to_path_buf(),
            fingerprint: fingerprint.clone(),
            reason,
        }
    })?;
    if !sig.public_key().is_ed25519() {
        return Err(bad(format!(
            "{} keys are not supported, only ssh-ed25519",
            sig.public_key().algorithm()
        )));
    }
    let hash = hash(sig.hash_alg())?;
    let blob = signed_data(sig.namespace(), sig.reserved(), sig.hash_alg(), &hash);
    sig.public_key()
        .verify(&blob, sig.signature())
        .map_err(|_| {
            bad(format!(
                "{} does not match the file's bytes (changed since signing, or signed another file)",
                sig_path.display()
            ))
        })?;
    Ok(SshVerified {
        fingerprint,
        principals: line.1.principals.clone(),
        allowed_by: (line.0.path.clone(), line.1.line),
        signature: sig_path,
    })
}

/// Reads an armored SSH signature file strictly: one PEM block of the
/// `SSH SIGNATURE` label (blank space after it aside), version 1,
/// nothing after its encoded fields.
pub fn read_signature(path: &Path) -> Result<SshSig, SignatureError> {
    let text = read_small(path, MAX_SIGNATURE_FILE)?;
    let malformed = |reason: String| SignatureError::Malformed {
        path: path.to_path_buf(),
        what: "an SSH signature",
        reason,
    };
    if !text.starts_with(PEM_BEGIN) {
        return Err(malformed(format!("does not start with {PEM_BEGIN}")));
    }
    let armored = text.trim_end_matches([' ', '\t', '\r', '\n']);
    if !armored.ends_with(PEM_END) {
        return Err(malformed(format!("does not end with {PEM_END}")));
    }
    let sig = SshSig::from_pem(armored.as_bytes()).map_err(|e| malformed(explained(e)))?;
    if sig.version() != SshSig::VERSION {
        return Err(malformed(format!(
            "version {}, not {}",
            sig.version(),
            SshSig::VERSION
        )));
    }
    Ok(sig)
}

/// Now, in seconds since the epoch: `valid-after` and `valid-before` are
/// checked against it, as `ssh-keygen -Y verify` does.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `ssh-key`'s error, saying what is supported where it is about the key
/// type (this build decodes ECDSA keys not at all, and signs only with
/// ed25519).
fn explained(e: ssh_key::Error) -> String {
    match e {
        ssh_key::Error::AlgorithmUnknown | ssh_key::Error::AlgorithmUnsupported { .. } => {
            format!("{e} (only ssh-ed25519 keys are supported)")
        }
        e => e.to_string(),
    }
}

/// The `allowed_signers` line (and its file) that lets `key` sign in
/// [`NAMESPACE`] for `identity` at `now` (seconds since the epoch), or why
/// none does.
fn find_signer<'a>(
    allowed: &'a [AllowedSigners],
    key: &[u8],
    identity: Option<&str>,
    now: i64,
) -> Result<(&'a AllowedSigners, &'a AllowedSigner), String> {
    let mut near: Option<String> = None;
    for file in allowed {
        for s in file.signers.iter().filter(|s| s.key == key) {
            let at = format!("{}:{}", file.path.display(), s.line);
            if let Some(id) = identity
                && match_pattern_list(id, &s.principals) != Some(true)
            {
                near.get_or_insert(format!(
                    "which is not allowed for identity {id:?} ({at} lists {})",
                    s.principals
                ));
                continue;
            }
            if let Some(ns) = &s.options.namespaces
                && match_pattern_list(NAMESPACE, ns) != Some(true)
            {
                near.get_or_insert(format!(
                    "which is not allowed to sign namespace {NAMESPACE:?} ({at} has namespaces=\"{ns}\")"
                ));
                continue;
            }
            if let Some((t, raw)) = &s.options.valid_after
                && now < *t
            {
                near.get_or_insert(format!(
                    "which is not valid yet ({at} has valid-after=\"{raw}\")"
                ));
                continue;
            }
            if let Some((t, raw)) = &s.options.valid_before
                && now > *t
            {
                near.get_or_insert(format!(
                    "which has expired ({at} has valid-before=\"{raw}\")"
                ));
                continue;
            }
            return Ok((file, s));
        }
    }
    Err(near.unwrap_or_else(|| {
        let files: Vec<String> = allowed
            .iter()
            .map(|f| f.path.display().to_string())
            .collect();
        format!("which is not in the allowed signers ({})", files.join(", "))
    }))
}

/// An OpenSSH `allowed_signers` file, parsed: one signer a line,
/// `principals [options] keytype base64-key [comment]`, `#` comments and
/// blank lines ignored. Of the options, `namespaces="..."`,
/// `valid-after="..."` and `valid-before="..."` are applied (times in UTC
/// only, `YYYYMMDD[HHMM[SS]]Z`: a local time is refused rather than read in
/// whatever time zone the machine has); `cert-authority` is refused as
/// unsupported rather than ignored.
#[derive(Debug, Clone)]
pub struct AllowedSigners {
    path: PathBuf,
    signers: Vec<AllowedSigner>,
}

/// One line of an `allowed_signers` file.
#[derive(Debug, Clone)]
struct AllowedSigner {
    /// Its line number, from 1.
    line: usize,
    /// Comma-separated principal patterns (`*`, `?`, `!` negation).
    principals: String,
    /// What its options allow.
    options: Options,
    /// The public key blob (the base64 field, decoded).
    key: Vec<u8>,
}

impl AllowedSigners {
    /// Reads and parses the `allowed_signers` file at `path` (at most
    /// [`MAX_ALLOWED_SIGNERS_FILE`] bytes).
    pub fn read(path: &Path) -> Result<AllowedSigners, SignatureError> {
        let text = read_small(path, MAX_ALLOWED_SIGNERS_FILE)?;
        AllowedSigners::parse(path, &text)
    }

    /// Parses `text` as the `allowed_signers` file `path`; an error names
    /// the line.
    pub fn parse(path: &Path, text: &str) -> Result<AllowedSigners, SignatureError> {
        let mut signers = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let err = |reason: String| SignatureError::AllowedSigners {
                path: path.to_path_buf(),
                line: i + 1,
                reason,
            };
            if let Some(s) = parse_line(raw).map_err(err)? {
                signers.push(AllowedSigner { line: i + 1, ..s });
            }
        }
        Ok(AllowedSigners {
            path: path.to_path_buf(),
            signers,
        })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many signers (non-comment lines) it lists.
    pub fn len(&self) -> usize {
        self.signers.len()
    }

    /// Whether it lists no signer.
    pub fn is_empty(&self) -> bool {
        self.signers.is_empty()
    }
}

/// One `allowed_signers` line; `None` for a comment or a blank line.
fn parse_line(raw: &str) -> Result<Option<AllowedSigner>, String> {
    let mut rest = raw.trim_matches([' ', '\t', '\r']);
    if rest.is_empty() || rest.starts_with('#') {
        return Ok(None);
    }
    let principals = next_field(&mut rest)?;
    if principals.is_empty() {
        return Err("empty principals".into());
    }
    let mut field = next_field(&mut rest)?;
    let mut options = Options::default();
    // Key types all start so; anything else in this place is the options.
    if !["ssh-", "ecdsa-", "sk-"]
        .iter()
        .any(|p| field.starts_with(p))
    {
        options = parse_options(&field)?;
        field = next_field(&mut rest)?;
    }
    let key_type = field;
    if key_type.is_empty() {
        return Err("no public key after the principals".into());
    }
    let b64 = next_field(&mut rest)?;
    if b64.is_empty() {
        return Err(format!("no key data after the key type {key_type}"));
    }
    let key = base64::engine::general_purpose::STANDARD
        .decode(&b64)
        .map_err(|e| format!("the {key_type} key is not valid base64: {e}"))?;
    match PublicKey::from_bytes(&key) {
        Ok(k) if k.algorithm().as_str() == key_type => {}
        Ok(k) => {
            return Err(format!(
                "the key type says {key_type} but the key is {}",
                k.algorithm()
            ));
        }
        // Other key types (ECDSA, certificates) are kept as bytes: they
        // can never match a signature this build can check.
        Err(e) if key_type == "ssh-ed25519" => {
            return Err(format!("invalid ssh-ed25519 key: {e}"));
        }
        Err(_) => {}
    }
    Ok(Some(AllowedSigner {
        line: 0,
        principals,
        options,
        key,
    }))
}

/// The next whitespace-separated field of `rest`, either `"quoted"`
/// (without the quotes) or a run of non-blanks in which quoted parts may
/// hold blanks (as in `namespaces="a b"`); empty at the end of the line.
fn next_field(rest: &mut &str) -> Result<String, String> {
    let s = rest.trim_start_matches([' ', '\t']);
    if let Some(quoted) = s.strip_prefix('"') {
        let end = quoted
            .find('"')
            .ok_or_else(|| "unterminated quote".to_string())?;
        *rest = &quoted[end + 1..];
        if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
            return Err("text right after a closing quote".into());
        }
        return Ok(quoted[..end].to_string());
    }
    let mut in_quote = false;
    let mut end = s.len();
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_quote = !in_quote,
            ' ' | '\t' if !in_quote => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    if in_quote {
        return Err("unterminated quote".into());
    }
    *rest = &s[end..];
    Ok(s[..end].to_string())
}

/// The options of an `allowed_signers` line that repropack applies.
#[derive(Debug, Clone, Default)]
struct Options {
    /// `namespaces="..."`: the namespace patterns the key may sign.
    namespaces: Option<String>,
    /// `valid-after="..."`: seconds since the epoch, and as written.
    valid_after: Option<(i64, String)>,
    /// `valid-before="..."`: seconds since the epoch, and as written.
    valid_before: Option<(i64, String)>,
}

/// The options field: comma-separated `namespaces="..."`,
/// `valid-after="..."`, `valid-before="..."`; anything else is refused.
fn parse_options(field: &str) -> Result<Options, String> {
    let mut o = Options::default();
    let mut rest = field;
    while !rest.is_empty() {
        let (name, value, after) = match rest.find([',', '=']) {
            Some(i) if rest.as_bytes()[i] == b'=' => {
                let v = rest[i + 1..]
                    .strip_prefix('"')
                    .ok_or_else(|| format!("option {}: its value must be quoted", &rest[..i]))?;
                let end = v
                    .find('"')
                    .ok_or_else(|| format!("option {}: unterminated quote", &rest[..i]))?;
                let after = &v[end + 1..];
                let after = match after.strip_prefix(',') {
                    Some(a) if !a.is_empty() => a,
                    None if after.is_empty() => after,
                    _ => return Err(format!("option {}: bad text after its value", &rest[..i])),
                };
                (&rest[..i], Some(&v[..end]), after)
            }
            Some(i) if i + 1 < rest.len() => (&rest[..i], None, &rest[i + 1..]),
            Some(_) => return Err("an option list ending in a comma".into()),
            None => (rest, None, ""),
        };
        match (name.to_ascii_lowercase().as_str(), value) {
            ("namespaces", Some(v)) if o.namespaces.is_none() => o.namespaces = Some(v.to_string()),
            ("valid-after", Some(v)) if o.valid_after.is_none() => {
                o.valid_after = Some((parse_time("valid-after", v)?, v.to_string()));
            }
            ("valid-before", Some(v)) if o.valid_before.is_none() => {
                o.valid_before = Some((parse_time("valid-before", v)?, v.to_string()));
            }
            (n @ ("namespaces" | "valid-after" | "valid-before"), Some(_)) => {
                return Err(format!("{n} given twice"));
            }
            ("cert-authority", None) => {
                return Err(
                    "cert-authority (keys that sign certificates) is not supported: \
                     list the signing keys themselves"
                        .into(),
                );
            }
            (n, _) => return Err(format!("unknown option {n:?}")),
        }
        rest = after;
    }
    Ok(o)
}

/// A `valid-after`/`valid-before` time as ssh-keygen(1) writes it,
/// `YYYYMMDD[HHMM[SS]]`, here only with the `Z` (UTC) suffix, in seconds
/// since the epoch.
fn parse_time(option: &str, v: &str) -> Result<i64, String> {
    let bad = |why: &str| format!("{option}=\"{v}\": {why}");
    let digits = v.strip_suffix(['Z', 'z']).ok_or_else(|| {
        bad("only UTC times (ending in Z) are supported, the local time zone is not read")
    })?;
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("not YYYYMMDD[HHMM[SS]]Z"));
    }
    let num = |from: usize, to: usize| -> i64 {
        digits
            .as_bytes()
            .get(from..to)
            .unwrap_or_default()
            .iter()
            .fold(0, |n, b| n * 10 + i64::from(b - b'0'))
    };
    let (year, month, day) = (num(0, 4), num(4, 6), num(6, 8));
    let (hour, minute, second) = (num(8, 10), num(10, 12), num(12, 14));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=12).contains(&month)
        || !(1..=month_days).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(bad("no such date or time"));
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar
/// (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// OpenSSH's `match_pattern_list`: `Some(true)` if `s` matches one of the
/// comma-separated patterns, `Some(false)` if it matches a `!`-negated one
/// (which wins), `None` if none.
fn match_pattern_list(s: &str, list: &str) -> Option<bool> {
    let mut found = None;
    for pat in list.split(',') {
        let (negated, pat) = match pat.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pat),
        };
        if match_pattern(s.as_bytes(), pat.as_bytes()) {
            if negated {
                return Some(false);
            }
            found = Some(true);
        }
    }
    found
}

/// Shell-style `*` and `?` matching, in time `len(s) × len(pat)` at worst
/// (one backtrack point: the last `*`).
fn match_pattern(s: &[u8], pat: &[u8]) -> bool {
    let (mut i, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() && (pat[p] == b'?' || pat[p] == s[i]) {
            i += 1;
            p += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some((p, i));
            p += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// `H(message)` of `PROTOCOL.sshsig`: the file hashed in one pass.
fn hash_file(path: &Path, alg: HashAlg) -> Result<Vec<u8>, SignatureError> {
    let f = File::open(path).map_err(|e| read_err(path, e))?;
    hash_reader(path, f, alg)
}

/// `H(message)` of what `reader` yields (read from `path`, for messages).
fn hash_reader(path: &Path, reader: impl Read, alg: HashAlg) -> Result<Vec<u8>, SignatureError> {
    fn stream<D: Digest>(path: &Path, mut reader: impl Read) -> Result<Vec<u8>, SignatureError> {
        let mut hasher = D::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return Ok(hasher.finalize().to_vec()),
                Ok(n) => hasher.update(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_err(path, e)),
            }
        }
    }
    match alg {
        HashAlg::Sha256 => stream::<Sha256>(path, reader),
        _ => stream::<Sha512>(path, reader),
    }
}

/// The blob an `sshsig` signature signs (`PROTOCOL.sshsig`, "Signed
/// Data, of which the signature goes into the blob above"):
///
/// ```text
/// #define MAGIC_PREAMBLE "SSHSIG"
/// byte[6]   MAGIC_PREAMBLE
/// string    namespace
/// string    reserved
/// string    hash_algorithm
/// string    H(message)
/// ```
///
/// where `string` is RFC 4251's: a big-endian `uint32` length, then the
/// bytes.
fn signed_data(namespace: &str, reserved: &[u8], alg: HashAlg, hash: &[u8]) -> Vec<u8> {
    let mut out = b"SSHSIG".to_vec();
    for field in [
        namespace.as_bytes(),
        reserved,
        alg.as_str().as_bytes(),
        hash,
    ] {
        out.extend_from_slice(&(field.len() as u32).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_openssh_does() {
        assert_eq!(
            match_pattern_list("ci@example.org", "*@example.org"),
            Some(true)
        );
        assert_eq!(
            match_pattern_list("ci@example.org", "a,ci@example.?rg"),
            Some(true)
        );
        assert_eq!(match_pattern_list("ci@example.org", "*,!ci@*"), Some(false));
        assert_eq!(match_pattern_list("ci@example.org", "other"), None);
        assert!(match_pattern(b"", b"*"));
        assert!(!match_pattern(b"ab", b"a"));
        assert!(match_pattern(b"aaab", b"*a*b"));
    }

    #[test]
    fn options_and_quotes_parse_and_unsupported_ones_are_refused() {
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f";
        let line = format!("\"a b,c\" namespaces=\"repropack,git\" {key} comment");
        let s = parse_line(&line).unwrap().unwrap();
        assert_eq!(s.principals, "a b,c");
        assert_eq!(s.options.namespaces.as_deref(), Some("repropack,git"));
        let line = format!("a valid-after=\"19700102Z\",valid-before=\"203001011230Z\" {key}");
        let o = parse_line(&line).unwrap().unwrap().options;
        assert_eq!(o.valid_after.unwrap().0, 86_400);
        assert_eq!(o.valid_before.unwrap().0, 1_893_501_000);
        assert!(parse_line("  # comment").unwrap().is_none());
        for (bad, why) in [
            (format!("a cert-authority {key}"), "cert-authority"),
            (format!("a valid-before=\"20300101\" {key}"), "only UTC"),
            (
                format!("a valid-before=\"20230229Z\" {key}"),
                "no such date",
            ),
            (format!("a valid-after=\"2023Z\" {key}"), "not YYYYMMDD"),
            (format!("a nosuch {key}"), "unknown option"),
            ("a".to_string(), "no public key"),
            ("a ssh-ed25519".to_string(), "no key data"),
            ("a ssh-ed25519 !!!".to_string(), "base64"),
            ("a ssh-ed25519 AAAA".to_string(), "invalid ssh-ed25519"),
            ("a namespaces=\"x".to_string(), "unterminated"),
        ] {
            let e = parse_line(&bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
