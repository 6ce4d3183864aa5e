//! All integration suites in one test binary: one link instead of one per
//! suite, and one copy of the support kit. Suites run as threads of one
//! process, so none may change process-wide state (environment, current
//! directory, umask); they set such things on the child commands they run.

mod support;

mod architecture;

mod archive_reader_on_others_output;
mod cli;
mod cpu_features;
mod digest_forms;
mod errors;
mod everyday;
mod extract_hostile;
mod extract_owners_xattrs;
mod extract_roundtrip;
mod fetch_http;
mod fetch_https;
mod fetch_manifest;
mod fuzz_corpus;
mod golden;
mod kill_safety;
mod manifest_check;
mod manifest_ci_recipe;
mod manifest_digest;
mod manifest_dir;
mod manifest_record;
mod manifest_verify_diff;
mod oci;
mod pack_file;
mod provenance;
mod push;
mod reproducibility;
mod rootfs;
mod signatures;
mod signed_markers;
mod sparse_input;
mod squashfs_pack;
mod squashfs_read_by_kernel;
mod squashfs_read_by_others;
mod squashfs_reader;
mod ssh_signatures;
mod staging;
mod tar_before_1970;
mod tar_read_by_others;
mod tar_sparse;
mod tar_xattrs;
mod trust_recipe;
