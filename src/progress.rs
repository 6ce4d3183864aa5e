//! Counters that a long `pack` or `extract` updates as it goes, so a caller
//! can show progress (the command line draws a bar on a terminal).
//!
//! Updating costs one relaxed atomic add per directory while staging and
//! per entry while writing or extracting; nothing here ever changes what
//! is written. Readers take a [`Snapshot`] whenever they like, from any
//! thread.
//!
//! ```
//! use repropack::progress::Counters;
//! let p = Counters::default();
//! p.found(3);
//! p.start_writing(3, 1000);
//! p.wrote(1, 400);
//! let s = p.snapshot();
//! assert_eq!((s.found, s.entries, s.bytes, s.total_bytes), (3, 1, 400, Some(1000)));
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Progress counters, shared between the worker and whoever displays them.
#[derive(Debug, Default)]
pub struct Counters {
    found: AtomicU64,
    total_entries: AtomicU64,
    total_bytes: AtomicU64,
    totals_known: AtomicBool,
    entries: AtomicU64,
    bytes: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Entries found so far while staging.
    pub found: u64,
    /// Entries written (or extracted) so far.
    pub entries: u64,
    /// Bytes of file content written (or extracted) so far.
    pub bytes: u64,
    /// Entries to write, once known.
    pub total_entries: Option<u64>,
    /// Bytes of file content to write, once known.
    pub total_bytes: Option<u64>,
}

impl Counters {
    /// Staging found `n` more entries.
    pub fn found(&self, n: u64) {
        self.found.fetch_add(n, Relaxed);
    }

    /// Writing starts: `entries` entries with `bytes` bytes of content.
    pub fn start_writing(&self, entries: u64, bytes: u64) {
        self.total_entries.store(entries, Relaxed);
        self.total_bytes.store(bytes, Relaxed);
        self.totals_known.store(true, Relaxed);
    }

    /// `entries` more entries with `bytes` bytes of content are done.
    pub fn wrote(&self, entries: u64, bytes: u64) {
        self.entries.fetch_add(entries, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let known = self.totals_known.load(Relaxed);
        Snapshot {
            found: self.found.load(Relaxed),
            entries: self.entries.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            total_entries: known.then(|| self.total_entries.load(Relaxed)),
            total_bytes: known.then(|| self.total_bytes.load(Relaxed)),
        }
    }
}
