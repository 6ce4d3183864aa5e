//! A process killed with SIGKILL at any moment leaves nothing behind:
//! the final path is absent or complete (the bytes of a clean run), and
//! after the next run of the same command no temp file or staging
//! directory is left. Kill points are spread (by a fixed-seed RNG) over the
//! whole run of each command, so they land in reading, compressing, table
//! writing, downloading, uploading and commit alike. Checked with std::fs
//! and sha2 only; S3 objects on the server's disk, where `s3s-fs` keeps
//! them as plain files.
//!
//! Also: the `.NAME.XXXXXX.tmp` temps that killed runs of earlier versions
//! left are swept by the next write of the same name, when surely dead
//! (docs/CONTRACT.md §6).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::support::bin::{ok, repropack};
use crate::support::hash::{sha256_file, sha256_hex};
use crate::support::http_server::{Reply, Server};
use crate::support::rng::Rng;
use crate::support::s3_server::{S3, SECRET};
use crate::support::tree::Tree;

/// A tree that takes a noticeable fraction of a second to pack.
fn source_tree(root: &Path) {
    let mut rng = Rng::new(0x6b11_5afe);
    for d in 0..6 {
        let dir = root.join(format!("d{d}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..12 {
            // Half incompressible, half text: both compressor paths run.
            let data = if f % 2 == 0 {
                rng.bytes(96 * 1024)
            } else {
                rng.text(160 * 1024)
            };
            fs::write(dir.join(format!("f{f}")), data).unwrap();
        }
    }
}

/// [`source_tree`] in `dir/src`, packed to `dir/NAME`.
fn packed_source(dir: &Path, name: &str) -> PathBuf {
    let src = dir.join("src");
    source_tree(&src);
    let artifact = dir.join(name);
    let mut pack = repropack();
    pack.arg("pack").arg(&src).arg("-o").arg(&artifact);
    ok(&pack.output().unwrap());
    artifact
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Runs `cmd` to completion and returns how long it took.
fn timed(mut cmd: Command) -> Duration {
    let start = Instant::now();
    ok(&cmd.output().unwrap());
    start.elapsed()
}

/// Starts `cmd`, kills it with SIGKILL after `after`, and reaps it.
fn kill_after(mut cmd: Command, after: Duration) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let _ = child.kill();
    let _ = child.wait();
}

/// A kill delay in `[0, 1.2 × clean)`: most kills land mid-run, some after
/// the end (then the run completed).
fn delay(rng: &mut Rng, clean: Duration) -> Duration {
    let span = (clean.as_micros() as u64 * 12 / 10).max(1);
    Duration::from_micros(rng.below(span))
}

/// `kills` killed runs of `command` (which writes `out`), each followed by
/// the check that `out` is absent or has the clean run's bytes; then one
/// clean run, after which the directory holds exactly `out`.
fn kill_pack_like(what: &str, kills: usize, seed: u64, command: impl Fn() -> Command, out: &Path) {
    let clean = timed(command());
    let want = sha256_file(out);
    let dir = out.parent().unwrap();
    let final_name = out.file_name().unwrap().to_string_lossy().into_owned();
    let mut rng = Rng::new(seed);
    let mut complete = 0;
    for i in 0..kills {
        fs::remove_file(out).ok();
        kill_after(command(), delay(&mut rng, clean));
        if out.exists() {
            assert_eq!(
                sha256_file(out),
                want,
                "{what}: kill {i} left a partial {final_name}"
            );
            complete += 1;
        }
    }
    // The next run sweeps what killed runs may have left.
    fs::remove_file(out).ok();
    timed(command());
    assert_eq!(
        names(dir),
        vec![final_name],
        "{what}: litter after the next run"
    );
    assert_eq!(sha256_file(out), want);
    eprintln!("{what}: {kills} kills, {complete} found the output complete");
}

#[test]
fn pack_killed_anywhere_leaves_the_output_absent_or_complete_and_no_litter() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    source_tree(&src);
    for (format, kills, seed) in [("tar.gz", 30, 1), ("squashfs", 30, 2)] {
        let out_dir = tmp.path().join(format!("out-{format}"));
        fs::create_dir(&out_dir).unwrap();
        let out = out_dir.join(format!("a.{format}"));
        let command = || {
            let mut c = repropack();
            c.arg("pack").arg(&src).arg("-o").arg(&out);
            c.args(["--jobs", "2"]);
            c
        };
        kill_pack_like(&format!("pack {format}"), kills, seed, command, &out);
    }
}

#[test]
fn push_to_a_directory_killed_anywhere_leaves_no_partial_object() {
    let tmp = tempfile::tempdir().unwrap();
    let artifact = packed_source(tmp.path(), "a.tar");
    let store = tmp.path().join("store");
    fs::create_dir(&store).unwrap();
    let command = || {
        let mut c = repropack();
        c.arg("push").arg(&artifact).arg(&store);
        c
    };
    let hex = sha256_file(&artifact);
    let object: PathBuf = store.join("sha256").join(format!("{hex}.tar"));
    // The object's directory exists once the first push made it.
    timed(command());
    kill_pack_like("push dir", 20, 3, command, &object);
}

#[test]
fn extract_killed_anywhere_leaves_dir_absent_or_complete_and_the_next_run_sweeps() {
    let tmp = tempfile::tempdir().unwrap();
    let artifact = packed_source(tmp.path(), "a.squashfs");
    let parent = tmp.path().join("x");
    fs::create_dir(&parent).unwrap();
    let command = |dir: &Path| {
        let mut c = repropack();
        c.arg("extract").arg(&artifact).arg(dir);
        c
    };
    let reference = parent.join("clean");
    let clean = timed(command(&reference));
    let want = Tree::of(&reference).without_times();
    let mut rng = Rng::new(4);
    let kills = 25;
    let mut complete = 0;
    for i in 0..kills {
        let dir = parent.join(format!("t{i}"));
        kill_after(command(&dir), delay(&mut rng, clean));
        if dir.exists() {
            let got = Tree::of(&dir).without_times();
            crate::support::tree::assert_same(&format!("extract kill {i}"), &want, &got);
            complete += 1;
        }
    }
    // The next extraction into the same parent sweeps the staging
    // directories the killed ones left.
    timed(command(&parent.join("last")));
    let left: Vec<String> = names(&parent)
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "staging left behind: {left:?}");
    eprintln!("extract: {kills} kills, {complete} found the directory complete");
}

#[test]
fn fetch_from_a_path_killed_anywhere_serves_only_verified_bytes_and_the_next_run_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let artifact = packed_source(tmp.path(), "a.tar");
    let reference = format!("{}#sha256={}", artifact.display(), sha256_file(&artifact));
    let hex = sha256_file(&artifact);
    let cache = tmp.path().join("cache");
    let command = || {
        let mut c = repropack();
        c.arg("fetch").arg(&reference).arg("--cache").arg(&cache);
        c
    };
    let clean = timed(command());
    let mut rng = Rng::new(5);
    let kills = 15;
    let shard = cache.join("sha256").join(&hex[..2]);
    let stored = shard.join(&hex);
    for i in 0..kills {
        // Drop the entry (not what killed runs left) so each run downloads.
        fs::remove_file(&stored).ok();
        fs::remove_file(shard.join(format!("{hex}.record"))).ok();
        kill_after(command(), delay(&mut rng, clean));
        if stored.exists() {
            assert_eq!(
                sha256_file(&stored),
                hex,
                "fetch kill {i} stored other bytes"
            );
        }
    }
    fs::remove_file(&stored).ok();
    let out = ok(&command().output().unwrap());
    assert!(out.trim().ends_with(&hex), "{out}");
    let left: Vec<String> = names(&shard)
        .into_iter()
        .filter(|n| !n.starts_with(&hex))
        .collect();
    assert!(left.is_empty(), "litter in the cache shard: {left:?}");
}

/// Every file under `root`, as paths relative to it, sorted.
fn files_under(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_type().is_dir())
        .map(|e| {
            e.path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    out.sort();
    out
}

/// The cache holds nothing but the entry of `hex` (then with exactly those
/// bytes), its record and lock, and — only if `temps_allowed` — download
/// temps of a killed run.
fn assert_cache_clean(cache: &Path, hex: &str, temps_allowed: bool, what: &str) {
    let shard = format!("sha256/{}/", &hex[..2]);
    let entry = format!("{shard}{hex}");
    for f in files_under(cache) {
        let name = f.strip_prefix(&shard).unwrap_or("");
        let temp = name.starts_with(&format!(".{hex}.")) && name.ends_with(".tmp");
        let allowed = f == entry
            || name == format!("{hex}.record")
            || name == format!("{hex}.lock")
            || (temp && temps_allowed);
        assert!(allowed, "{what}: {f:?} in the cache");
        if f == entry {
            assert_eq!(
                sha256_file(&cache.join(&f)),
                hex,
                "{what}: the cache entry holds other bytes"
            );
        }
    }
}

#[test]
fn fetch_over_http_killed_anywhere_caches_only_verified_bytes_and_the_next_run_cleans_up() {
    let body = Rng::new(0xfe7c).bytes(4 << 20);
    let hex = sha256_hex(&body);
    let server = Server::start();
    // Throttled (64 KiB every 4 ms, about 0.3 s for the body), so most
    // kills land mid-download.
    server.route(
        "/a.tar",
        vec![Reply::Slow {
            body,
            chunk: 64 * 1024,
            pause: Duration::from_millis(4),
        }],
    );
    let reference = format!("{}#sha256={hex}", server.url("/a.tar"));
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let command = || {
        let mut c = repropack();
        c.arg("fetch").arg(&reference).arg("--cache").arg(&cache);
        c
    };
    let clean = timed(command());
    let shard = cache.join("sha256").join(&hex[..2]);
    let stored = shard.join(&hex);
    let mut rng = Rng::new(6);
    let kills = 20;
    let mut complete = 0;
    let mut partial_temps = 0;
    for i in 0..kills {
        // Drop the entry (not what killed runs left) so each run downloads.
        fs::remove_file(&stored).ok();
        fs::remove_file(shard.join(format!("{hex}.record"))).ok();
        kill_after(command(), delay(&mut rng, clean));
        assert_cache_clean(&cache, &hex, true, &format!("fetch http kill {i}"));
        complete += usize::from(stored.exists());
        partial_temps += files_under(&cache)
            .iter()
            .filter(|f| f.ends_with(".tmp"))
            .count();
    }
    // The next run sweeps the temps killed runs left.
    fs::remove_file(&stored).ok();
    let out = ok(&command().output().unwrap());
    assert_eq!(out.trim(), stored.to_str().unwrap());
    assert_cache_clean(&cache, &hex, false, "fetch http, next run");
    assert!(stored.exists());
    eprintln!(
        "fetch http: {kills} kills, {complete} found the entry complete, \
         {partial_temps} download temps left for the next run"
    );
}

/// `kills` killed `repropack push FILE s3://BUCKET` of `len` random bytes,
/// each followed by the check that the bucket holds no object but the
/// final one, and that one only with the file's bytes; then a clean run.
fn kill_push_s3(what: &str, len: usize, kills: usize, seed: u64) {
    let s3 = S3::start(&["bkt"]);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a.tar");
    fs::write(&file, Rng::new(seed).bytes(len)).unwrap();
    let hex = sha256_file(&file);
    let key = format!("sha256/{hex}.tar");
    let object = s3.object_file("bkt", &key);
    let command = || {
        let mut c = s3.cmd(SECRET);
        c.arg("push").arg(&file).arg("s3://bkt");
        c
    };
    let clean = timed(command());
    let objects_ok = |when: &str| {
        for f in files_under(&s3.bucket_dir("bkt")) {
            assert_eq!(f, key, "{what}: {when}: a stray object");
            assert_eq!(
                sha256_file(&object),
                hex,
                "{what}: {when}: a partial object at the final key"
            );
        }
    };
    let mut rng = Rng::new(seed);
    let mut complete = 0;
    for i in 0..kills {
        // Drop the object so each run uploads again.
        fs::remove_file(&object).ok();
        kill_after(command(), delay(&mut rng, clean));
        objects_ok(&format!("kill {i}"));
        complete += usize::from(object.exists());
    }
    fs::remove_file(&object).ok();
    timed(command());
    objects_ok("next run");
    assert!(object.exists(), "{what}: the next run stored nothing");
    // Unfinished multipart uploads are no objects (S3 lists none, and
    // s3s-fs keeps their parts outside the bucket); see docs/cli.md#push.
    let unfinished = fs::read_dir(s3.root())
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name();
            let n = n.to_string_lossy();
            n.starts_with(".upload-") && n.ends_with(".json")
        })
        .count();
    eprintln!(
        "{what}: {kills} kills, {complete} found the object complete, \
         {unfinished} multipart uploads left unfinished"
    );
}

#[test]
fn push_to_s3_in_one_put_killed_anywhere_leaves_no_partial_or_stray_object() {
    // Below object_store's 10 MiB buffer: one PUT.
    kill_push_s3("push s3 (one PUT)", 6 << 20, 15, 7);
}

#[test]
fn push_to_s3_in_parts_killed_anywhere_leaves_no_partial_or_stray_object() {
    // Above the buffer: a multipart upload of three parts.
    kill_push_s3("push s3 (multipart)", 24 << 20, 20, 8);
}

/// Writes `path` and sets its mtime `age` ago.
fn legacy_temp(path: &Path, age: Duration) {
    fs::write(path, b"partial output of an old release").unwrap();
    let when = filetime::FileTime::from_system_time(SystemTime::now() - age);
    filetime::set_file_mtime(path, when).unwrap();
}

#[test]
fn legacy_temps_of_the_same_output_are_swept_once_old_and_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let artifact = packed_source(tmp.path(), "a.tar");
    let hex = sha256_file(&artifact);
    let out = tmp.path().join("out");
    fs::create_dir(&out).unwrap();
    let two_hours = Duration::from_secs(2 * 3600);
    let dead = out.join(".a.tar.Ab3xY9.tmp");
    let busy = out.join(".a.tar.Zz9q8W.tmp");
    let young = out.join(".a.tar.Qw1Er2.tmp");
    legacy_temp(&dead, two_hours);
    legacy_temp(&busy, two_hours);
    legacy_temp(&young, Duration::from_secs(10 * 60));
    // An old release still writing it: open here, in a live process.
    let writer = fs::OpenOptions::new().append(true).open(&busy).unwrap();
    // Not legacy temps of a.tar: another name, near misses, a symlink.
    let kept = [
        ".b.tar.Ab3xY9.tmp",
        ".a.tar.Ab3xY.tmp",
        ".a.tar.Ab_xY9.tmp",
        ".a.tar.Ab3xY9.tmp.bak",
        "a.tar.Ab3xY9.tmp",
    ];
    for k in kept {
        legacy_temp(&out.join(k), two_hours);
    }
    let target = tmp.path().join("target");
    legacy_temp(&target, two_hours);
    std::os::unix::fs::symlink(&target, out.join(".a.tar.Sy1mLk.tmp")).unwrap();

    let mut pack = repropack();
    pack.arg("pack")
        .arg(tmp.path().join("src"))
        .arg("-o")
        .arg(out.join("a.tar"));
    ok(&pack.output().unwrap());
    assert!(
        !dead.exists(),
        "an old, closed legacy temp of a.tar is swept"
    );
    assert!(
        busy.exists(),
        "a legacy temp open in a live process is kept"
    );
    assert!(
        young.exists(),
        "a legacy temp modified 10 minutes ago is kept"
    );
    for k in kept {
        assert!(out.join(k).exists(), "{k} is not a legacy temp of a.tar");
    }
    assert!(out.join(".a.tar.Sy1mLk.tmp").exists() && target.exists());
    drop(writer);

    // push to a directory and the cache's records sweep them alike.
    let store = tmp.path().join("store");
    fs::create_dir_all(store.join("sha256")).unwrap();
    let pushed_temp = store.join("sha256").join(format!(".{hex}.tar.k9Lm3Q.tmp"));
    legacy_temp(&pushed_temp, two_hours);
    let mut push = repropack();
    push.arg("push").arg(&artifact).arg(&store);
    ok(&push.output().unwrap());
    assert!(
        !pushed_temp.exists(),
        "push sweeps the object's legacy temp"
    );

    let cache = tmp.path().join("cache");
    let shard = cache.join("sha256").join(&hex[..2]);
    fs::create_dir_all(&shard).unwrap();
    let record_temp = shard.join(format!(".{hex}.record.p0Oi9U.tmp"));
    legacy_temp(&record_temp, two_hours);
    let mut fetch = repropack();
    fetch
        .arg("fetch")
        .arg(format!("{}#sha256={hex}", artifact.display()))
        .arg("--cache")
        .arg(&cache);
    ok(&fetch.output().unwrap());
    assert!(
        !record_temp.exists(),
        "fetch sweeps the record's legacy temp"
    );
    assert_cache_clean(&cache, &hex, false, "fetch after legacy temps");
}
