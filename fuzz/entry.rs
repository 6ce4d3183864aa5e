//! The body of every fuzz target, one function per target.
//!
//! The cargo-fuzz targets in `fuzz_targets/` and the corpus replay test
//! (`tests/fuzz_corpus.rs`) both include this file with `#[path]`, so a
//! corpus file replayed under plain `cargo test` runs exactly the code the
//! fuzzer ran. Each function takes the raw input, must never panic, never
//! allocate without bound and never hang; errors are expected and dropped.
//!
//! Inputs that the library only reads from files go through a temp file
//! (in `/dev/shm` where it exists) that is removed when the call ends.

// Not every includer calls every entry point (each fuzz target uses one).
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use repropack::digest::ContentDigest;
use repropack::format::{self, ArchiveError};
use repropack::remote::oci::manifest::ImageManifest;
use repropack::remote::oci::{OciRef, auth};
use repropack::remote::refs::ArtifactRef;
use repropack::remote::uri;
use repropack::stage::{StageOptions, stage_tar};
use repropack::verify::manifest::Manifest;
use repropack::verify::signature;

/// Most content bytes read from one entry. Sparse files and SquashFS
/// holes legitimately expand a tiny input into gigabytes of zeros; reading
/// a bounded prefix still runs every decoder while keeping one input fast.
/// The rest is skipped by the reader, which is what a caller that stops
/// early gets too.
const MAX_ENTRY_READ: u64 = 1 << 20;

/// Most content bytes read from one input in total, for the same reason.
const MAX_TOTAL_READ: u64 = 16 << 20;

/// Where input files go: `/dev/shm` where it exists, so the fuzzer does
/// not wear a disk, else the usual temp directory.
fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        }
    })
}

/// A temp file holding `data`, removed when dropped (also on a panic that
/// unwinds, as under `cargo test`; libFuzzer aborts on a crash and keeps
/// the input in `artifacts/` anyway).
fn temp_file(data: &[u8], suffix: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .prefix("repropack-fuzz-")
        .suffix(suffix)
        .tempfile_in(scratch_dir())
        .expect("a temp file for the fuzz input");
    file.write_all(data).expect("writing the fuzz input");
    file.flush().expect("writing the fuzz input");
    file
}

/// Opens `path` as an archive and reads every entry, at most
/// [`MAX_ENTRY_READ`] content bytes each, checking what the reader
/// promises about each entry.
fn read_archive(path: &Path) {
    let Ok(archive) = format::open(path) else {
        return;
    };
    let _ = archive.info();
    let mut total = 0u64;
    let mut last_index = None;
    let _ = archive.for_each_entry(|entry, content| {
        // Entries come in archive order, numbered from 0 without gaps.
        let expected = last_index.map_or(0, |i: u64| i + 1);
        assert_eq!(entry.index(), expected, "entry index out of order");
        last_index = Some(entry.index());
        let _ = entry.display_path();
        let _ = format::normalize_path(entry.path());
        // Attributes come sorted by name, each name once.
        let names: Vec<&[u8]> = entry.xattrs().iter().map(|(n, _)| n).collect();
        assert!(
            names.windows(2).all(|w| w[0] < w[1]),
            "xattrs not sorted or repeated"
        );
        let budget = MAX_ENTRY_READ.min(MAX_TOTAL_READ - total);
        let read = io::copy(&mut content.take(budget), &mut io::sink())
            .map_err(|e| ArchiveError::content(entry, e))?;
        // A reader never yields more than the entry's declared size.
        assert!(read <= entry.size(), "content longer than the entry size");
        total += read;
        Ok::<(), ArchiveError>(())
    });
}

/// `squashfs_read`: the input as an archive file, every entry read.
pub fn squashfs_read(data: &[u8]) {
    let file = temp_file(data, ".squashfs");
    read_archive(file.path());
}

/// `tar_read`: the input as an archive file, every entry read. Most inputs
/// are detected as tar; anything else is refused by detection.
pub fn tar_read(data: &[u8]) {
    let file = temp_file(data, ".tar");
    read_archive(file.path());
}

/// `targz_read`: an input starting with the gzip magic is read as is (so
/// member headers, multi-member streams and CRCs are fuzzed); any other
/// input is gzipped first, so the tar reader behind gzip gets the same
/// coverage as `tar_read` without the fuzzer having to produce deflate.
pub fn targz_read(data: &[u8]) {
    let file = if data.starts_with(&[0x1f, 0x8b]) {
        temp_file(data, ".tar.gz")
    } else {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        // Writing to a Vec cannot fail.
        let _ = gz.write_all(data);
        let bytes = gz.finish().unwrap_or_default();
        temp_file(&bytes, ".tar.gz")
    };
    read_archive(file.path());
}

/// `detect`: format detection and the container facts (gzip header, first
/// tar header) that `open` reports, without reading entries. Inputs with
/// the SquashFS magic are skipped: detection only compares the magic, and
/// `open` then reads every SquashFS table, which `squashfs_read` fuzzes.
pub fn detect(data: &[u8]) {
    if data.starts_with(b"hsqs") {
        return;
    }
    let file = temp_file(data, "");
    if let Ok(archive) = format::open(file.path()) {
        let _ = format!("{:?} {}", archive.info(), archive.format().name());
    }
}

/// `ref_parse`: an `URI#sha256=HEX` ref (or `#sha384=`, `#sha512=`), the
/// URI classifier, and the digest forms of `fetch --digest` (`ALG:HEX`)
/// and `--integrity` (SRI). A ref (and an `oci://` reference) that parses
/// prints back to a string that parses to the same ref; an `ALG:HEX` that
/// parses has the hex it was given.
pub fn ref_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = uri::scheme(text);
    let _ = uri::classify(text);
    if let Ok(oci) = text.parse::<OciRef>() {
        let printed = oci.to_string();
        let again: OciRef = printed
            .parse()
            .unwrap_or_else(|e| panic!("{printed:?} was printed from an OCI ref but fails: {e}"));
        assert_eq!(again, oci, "OCI ref does not round-trip");
        let _ = oci.base_url();
    }
    if let Ok(d) = text.parse::<ContentDigest>() {
        assert!(
            text.ends_with(&format!(":{}", d.to_hex())),
            "{text:?} parsed to {d}"
        );
    }
    let _ = ContentDigest::from_sri(text);
    if let Ok(parsed) = text.parse::<ArtifactRef>() {
        let _ = parsed.scheme();
        let _ = uri::classify(parsed.uri());
        let printed = parsed.to_string();
        let again: ArtifactRef = printed
            .parse()
            .unwrap_or_else(|e| panic!("{printed:?} was printed from a ref but fails: {e}"));
        assert_eq!(again, parsed, "ref does not round-trip");
    }
}

/// `manifest_parse`: a manifest file, its entries as a tree and that
/// tree's digest (what `verify --manifest` computes). One that reads
/// writes back to JSON that reads again.
pub fn manifest_parse(data: &[u8]) {
    let file = temp_file(data, ".json");
    let Ok(manifest) = Manifest::read(file.path()) else {
        return;
    };
    if let Ok(tree) = manifest.tree(file.path()) {
        let _ = tree.digest();
    }
    let json = manifest.to_json();
    let again = temp_file(&json, ".json");
    if let Err(e) = Manifest::read(again.path()) {
        panic!("a manifest read back from its own JSON fails: {e}");
    }
}

/// `from_tar_stage`: the input as `pack --from-tar` stdin with default
/// options, then every staged file's content read from the spool.
pub fn from_tar_stage(data: &[u8]) {
    let opts = StageOptions {
        // One thread: the plan never depends on it, and the fuzzer runs
        // many inputs a second.
        jobs: 1,
        ..StageOptions::default()
    };
    let Ok(plan) = stage_tar(data, "fuzz.tar", &opts) else {
        return;
    };
    let mut total = 0u64;
    for entry in plan.entries() {
        let Some(content) = entry.content() else {
            continue;
        };
        let Ok(reader) = content.reader(entry.name()) else {
            continue;
        };
        let budget = MAX_ENTRY_READ.min(MAX_TOTAL_READ - total);
        if let Ok(n) = io::copy(&mut reader.take(budget), &mut io::sink()) {
            assert!(n <= content.size(), "spool content longer than its size");
            total += n;
        }
    }
}

/// `pack_file_parse`: the input as a pack file (`pack --pack-file`):
/// every line parsed into its directive, or the first bad line refused.
pub fn pack_file_parse(data: &[u8]) {
    use repropack::stage::pack_file::{self, Directive};
    let Ok(lines) = pack_file::parse(data) else {
        return;
    };
    for line in &lines {
        assert!(line.number >= 1, "line numbers start at 1");
        assert!(!line.path.starts_with(b"/") && !line.path.ends_with(b"/"));
        if let Directive::Device { major, minor, .. } = line.directive {
            assert!(
                major <= 0xfff && minor <= 0xf_ffff,
                "device number out of range"
            );
        }
    }
}

/// `xattr_file_parse`: the input as an xattr file (`pack --xattr-file`,
/// `getfattr --dump` format).
pub fn xattr_file_parse(data: &[u8]) {
    use repropack::stage::{MAX_XATTR_NAME, MAX_XATTR_VALUE, xattr_file};
    let Ok(blocks) = xattr_file::parse(data) else {
        return;
    };
    for block in &blocks {
        for (_, name, value) in &block.attrs {
            assert!(!name.is_empty() && name.len() <= MAX_XATTR_NAME);
            assert!(value.len() <= MAX_XATTR_VALUE);
        }
    }
}

/// A public key made with `repropack keygen` for the fuzz corpus; the
/// corpus holds signatures made with it over [`SIGNED_FILE`], so the
/// fuzzer starts from signatures that verify.
const REPROPACK_KEY: &str = include_str!("keys/repropack.pub");

/// A public key made with `minisign -G` (whose signatures carry any
/// trusted comment), for the same reason.
const MINISIGN_KEY: &str = include_str!("keys/minisign.pub");

/// The bytes the corpus signatures sign.
pub const SIGNED_FILE: &[u8] = b"repropack fuzz signed file\n";

/// An OpenSSH `allowed_signers` file listing the ed25519 key (made with
/// `ssh-keygen -t ed25519`) that signed the corpus's SSH signatures of
/// [`SIGNED_FILE`], for the same reason.
const ALLOWED_SIGNERS: &str = include_str!("keys/allowed_signers");

/// `signature_parse`: the input as a minisign public key file, as an
/// OpenSSH `allowed_signers` file, as the minisign signature of
/// [`SIGNED_FILE`] checked against two fixed trusted keys, and as its SSH
/// signature checked against a fixed `allowed_signers`.
pub fn signature_parse(data: &[u8]) {
    let as_key = temp_file(data, ".pub");
    let _ = signature::minisign::read_public_key(as_key.path());
    let _ = signature::ssh::AllowedSigners::read(as_key.path());
    let keys = [
        temp_file(REPROPACK_KEY.as_bytes(), ".pub"),
        temp_file(MINISIGN_KEY.as_bytes(), ".pub"),
    ];
    let trusted: Vec<PathBuf> = keys.iter().map(|k| k.path().to_path_buf()).collect();
    let signed = temp_file(SIGNED_FILE, ".txt");
    let _ = signature::minisign::verify_file(signed.path(), Some(as_key.path()), &trusted);
    let allowed_file = temp_file(ALLOWED_SIGNERS.as_bytes(), "");
    let allowed = signature::ssh::AllowedSigners::read(allowed_file.path())
        .unwrap_or_else(|e| panic!("the fixed allowed_signers does not parse: {e}"));
    let _ = signature::ssh::read_signature(as_key.path());
    for identity in [None, Some("fuzz@repropack")] {
        let _ = signature::ssh::verify_file(
            signed.path(),
            Some(as_key.path()),
            std::slice::from_ref(&allowed),
            identity,
        );
    }
}

/// `oci_parse`: what a registry (or its token endpoint) sends us, by the
/// first byte: 0 an image manifest (which must survive being written and
/// read again), 1 a `WWW-Authenticate` value, 2 a token endpoint answer.
pub fn oci_parse(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => {
            if let Ok(m) = ImageManifest::parse(rest) {
                let _ = m.artifact_layer();
                let again = ImageManifest::parse(&m.to_bytes())
                    .unwrap_or_else(|e| panic!("a written manifest does not read back: {e}"));
                assert_eq!(again, m, "manifest does not round-trip");
            }
        }
        1 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                let _ = auth::parse_challenges(text);
            }
        }
        _ => {
            let _ = auth::parse_token(rest);
        }
    }
}
