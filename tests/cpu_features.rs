//! docs/CONTRACT.md §2: output never depends on the CPU's instruction-set
//! extensions. The compressors detect SIMD features at run time, so the same
//! binary is run natively and under `qemu-x86_64 -cpu qemu64` (an x86-64
//! baseline without SSE4.2, AVX2, AVX-512 or PCLMULQDQ) and the bytes are
//! compared. A child test proves the emulated CPU really hides the features.

use std::path::Path;
use std::process::Command;

use crate::support::bin::bin;
use crate::support::fixtures::{Build, sample_tree};
use crate::support::hash::sha256_file;
use crate::support::tool::have_tool;

const QEMU: &str = "qemu-x86_64";
const CPUS: [&str; 2] = ["qemu64", "Nehalem"];

/// Run only as a child under qemu: prints the features the process sees.
#[test]
fn child_reports_cpu_features() {
    if std::env::var_os("REPROPACK_CPU_CHILD").is_none() {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    println!(
        "FEATURES avx2={} sse4.2={} pclmulqdq={} avx512f={}",
        std::arch::is_x86_feature_detected!("avx2"),
        std::arch::is_x86_feature_detected!("sse4.2"),
        std::arch::is_x86_feature_detected!("pclmulqdq"),
        std::arch::is_x86_feature_detected!("avx512f"),
    );
}

fn features_under(cpu: &str) -> String {
    let me = std::env::current_exe().unwrap();
    // The test's name in the harness: its module path without the crate.
    let child = match module_path!().split_once("::") {
        Some((_, module)) => format!("{module}::child_reports_cpu_features"),
        None => "child_reports_cpu_features".to_string(),
    };
    let out = Command::new(QEMU)
        .args(["-cpu", cpu])
        .arg(me)
        .args(["--exact", &child, "--nocapture", "--test-threads=1"])
        .env("REPROPACK_CPU_CHILD", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.find("FEATURES")
        .map(|i| text[i..].lines().next().unwrap_or("").to_string())
        .unwrap_or_default()
}

fn pack(wrapper: Option<&str>, src: &Path, out: &Path, extra: &[&str]) -> String {
    let mut cmd = match wrapper {
        Some(cpu) => {
            let mut c = Command::new(QEMU);
            c.args(["-cpu", cpu, bin()]);
            c
        }
        None => Command::new(bin()),
    };
    let res = cmd
        .env_remove("SOURCE_DATE_EPOCH")
        .arg("pack")
        .arg(src)
        .arg("-o")
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    sha256_file(out)
}

#[test]
#[cfg(target_arch = "x86_64")]
fn compressed_output_is_the_same_without_simd_extensions() {
    if !have_tool(QEMU) {
        return;
    }
    let baseline = features_under("qemu64");
    assert!(
        baseline.contains("avx2=false") && baseline.contains("sse4.2=false"),
        "{baseline:?}"
    );
    let native_has_simd = std::arch::is_x86_feature_detected!("avx2");
    eprintln!("native avx2={native_has_simd}; qemu64: {baseline}");

    let src = sample_tree(Build::default());
    // Text-like bytes enough for three 1 MiB tar.gz chunks, so the chunk
    // ends (found by inflating each chunk) are made under emulation too.
    let mut x: u32 = 7;
    let text: Vec<u8> = (0..2_500_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            b"abcdefgh \n"[(x >> 28) as usize % 10]
        })
        .collect();
    std::fs::write(src.path().join("chunks.txt"), text).unwrap();
    let out = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("tar.gz", &["--level", "1"]),
        ("tar.gz", &["--level", "6", "--jobs", "2"]),
        ("tar.gz", &["--level", "9"]),
        ("squashfs", &["--comp", "gzip", "--jobs", "2"]),
        ("squashfs", &["--comp", "zstd:19"]),
        ("squashfs", &["--comp", "xz"]),
        ("squashfs", &["--comp", "lz4"]),
    ];
    for (i, (ext, extra)) in cases.iter().enumerate() {
        let native = pack(
            None,
            src.path(),
            &out.path().join(format!("n{i}.{ext}")),
            extra,
        );
        for cpu in CPUS {
            let emulated = pack(
                Some(cpu),
                src.path(),
                &out.path().join(format!("{cpu}{i}.{ext}")),
                extra,
            );
            assert_eq!(native, emulated, "{ext} {extra:?} differs on -cpu {cpu}");
        }
    }
}
