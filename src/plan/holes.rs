//! A sparse file's holes, found with `lseek(SEEK_DATA)` / `lseek(SEEK_HOLE)`
//! so that [`ContentReader`](super::ContentReader) can hand out their zeros
//! without reading them: the kernel would only fill pages with zeros, which
//! for a mostly empty multi-GiB file is almost all of a pack's time.
//!
//! File systems without hole support answer EINVAL or EOPNOTSUPP (or treat
//! the whole file as data, which is also correct); the caller then reads
//! plainly.

use std::fs::File;
use std::io;
use std::ops::Range;

use rustix::fs::{SeekFrom, seek};
use rustix::io::Errno;

/// Files smaller than this are read plainly: a hole saves less than the two
/// `lseek` calls that find it cost.
pub(super) const MIN_SPARSE_LEN: u64 = 64 * 1024;

/// What follows a file offset.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// Data at `start..end` (`start` at or after the offset asked about):
    /// anything between the offset and `start` is a hole.
    Data(Range<u64>),
    /// Nothing but hole up to the end of the file.
    HoleToEnd,
    /// The file system cannot tell: read everything.
    Unsupported,
}

/// The next data extent of `file` at or after `offset`.
pub(super) fn next_data(file: &File, offset: u64) -> io::Result<Next> {
    let start = match seek(file, SeekFrom::Data(offset)) {
        Ok(start) => start,
        Err(Errno::NXIO) => return Ok(Next::HoleToEnd),
        Err(Errno::INVAL | Errno::OPNOTSUPP) => return Ok(Next::Unsupported),
        Err(e) => return Err(e.into()),
    };
    // A hole always follows: at the latest the virtual one at end of file.
    // ENXIO here means the file shrank in between; reading from `start`
    // then finds that out.
    let end = match seek(file, SeekFrom::Hole(start)) {
        Ok(end) if end > start => end,
        Ok(_) | Err(Errno::NXIO) => u64::MAX,
        Err(e) => return Err(e.into()),
    };
    Ok(Next::Data(start..end))
}

/// Whether a file of `len` bytes using `blocks` 512-byte blocks of disk
/// may hold holes worth looking for.
pub(super) fn worth_looking(len: u64, blocks: u64) -> bool {
    len >= MIN_SPARSE_LEN && blocks.saturating_mul(512) < len
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, Write};

    #[test]
    fn finds_data_after_a_hole_and_the_hole_to_the_end() {
        let mut f = tempfile::tempfile().unwrap();
        f.set_len(1 << 20).unwrap();
        f.seek(io::SeekFrom::Start(512 << 10)).unwrap();
        f.write_all(&[1u8; 4096]).unwrap();
        match next_data(&f, 0).unwrap() {
            Next::Data(r) => {
                assert!(r.start <= 512 << 10 && r.end >= (512 << 10) + 4096, "{r:?}");
                // A file system may call it all data; if not, the rest is hole.
                if r.end < 1 << 20 {
                    assert_eq!(next_data(&f, r.end).unwrap(), Next::HoleToEnd);
                }
            }
            // A file system without holes: nothing more to check.
            Next::Unsupported => {}
            Next::HoleToEnd => panic!("the data was missed"),
        }
    }

    #[test]
    fn small_or_dense_files_are_not_worth_looking_at() {
        assert!(!worth_looking(1000, 0));
        assert!(!worth_looking(1 << 20, 2048));
        assert!(worth_looking(1 << 20, 8));
    }
}
