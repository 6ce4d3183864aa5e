#![no_main]

#[path = "../entry.rs"]
mod entry;

libfuzzer_sys::fuzz_target!(
    // The reader decompresses multi-block files on rayon's global pool.
    // Start the pool before the first input, so that its threads (which
    // live as long as the process) are not reported as a leak of the input
    // that happened to start them.
    init: rayon::join(|| (), || ()),
    |data: &[u8]| entry::squashfs_read(data)
);
