//! Throughput of the SquashFS writer through the library API on a generated
//! tree: 3 000 files of mixed sizes (mostly small, some multi-block),
//! compressible text-like data, about 85 MiB in total. Staging happens once,
//! outside the measurement; each iteration writes one image.
//!
//! `cargo bench --bench squashfs_write`. Never asserts a time.

use std::fs;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use repropack::Format;
use repropack::pack::{PackOptions, pack_to_path};
use repropack::stage::{Source, StageOptions, stage};

/// xorshift64* — deterministic data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Writes the tree; returns the bytes of file data.
fn generate(root: &Path) -> u64 {
    const WORDS: &[&str] = &[
        "def ",
        "return ",
        "self",
        ".",
        "(",
        ")",
        ":\n    ",
        "import ",
        "os",
        "path",
        " = ",
        "None",
        "\n",
        "# comment ",
        "value",
        "_",
        "0",
        "1",
        "[",
        "]",
    ];
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut total = 0;
    for i in 0..3000u64 {
        let size = match i % 10 {
            0 => 128 * 1024 + rng.next() % (128 * 1024),
            1 | 2 => 16 * 1024 + rng.next() % (32 * 1024),
            _ => rng.next() % 12_000,
        } as usize;
        let mut data = String::with_capacity(size + 16);
        while data.len() < size {
            data.push_str(WORDS[(rng.next() % WORDS.len() as u64) as usize]);
        }
        data.truncate(size);
        let dir = root.join(format!("pkg{}/mod{}", i % 13, i % 7));
        fs::create_dir_all(&dir).expect("mkdir");
        fs::write(dir.join(format!("file{i}.py")), &data).expect("write");
        total += size as u64;
    }
    total
}

fn squashfs_write(c: &mut Criterion) {
    let src = tempfile::tempdir().expect("tempdir");
    let bytes = generate(src.path());
    let plan = stage(&[Source::parse(src.path())], &StageOptions::default()).expect("stage");
    let out = tempfile::tempdir().expect("tempdir");
    let img = out.path().join("bench.squashfs");

    let mut group = c.benchmark_group("write");
    group.throughput(Throughput::Bytes(bytes));
    group.sample_size(10);
    for jobs in [1, repropack::pack::default_jobs()] {
        // Defaults: gzip level 6, 128 KiB blocks, dedup on.
        let mut opts = PackOptions::new(Format::Squashfs);
        opts.jobs = jobs;
        group.bench_function(format!("squashfs-gzip6/jobs{jobs}"), |b| {
            b.iter(|| pack_to_path(&plan, &opts, &img).expect("pack"))
        });
    }
    group.finish();
}

criterion_group!(benches, squashfs_write);
criterion_main!(benches);
