//! The breached-password index: a local, indexed copy of a Pwned-Passwords-format list,
//! answering "how often was the password with this SHA-1 seen in breaches?" with one or two
//! small positioned reads, and serving the k-anonymity range query (`GET /range/{5 hex}`).
//!
//! # Input (what the operator downloads)
//!
//! [`build_index`] reads either
//!
//! - **one text file** of `SHA1HEX:COUNT` lines (40 hex characters, a colon, a decimal count;
//!   CRLF or LF), as the Pwned Passwords downloader writes with `--single`; it is usually
//!   sorted already, which the builder detects and then streams straight into the index; or
//! - **a range directory**: files named by a 5-hex-character prefix (`0A1B2` or `0A1B2.txt`),
//!   each holding `SUFFIX35:COUNT` lines, exactly as the public range API returns them.
//!
//! Lower-case hex, blank lines, surrounding spaces and a UTF-8 byte-order mark are accepted; a
//! line without `:COUNT` counts once; lines with count 0 are the padding the range API adds
//! (`Add-Padding: true`) and are skipped. A hash listed twice keeps its largest count. Any
//! other malformed line stops the build with the file, the line number and what is wrong
//! ([`BreachError::Line`]), and leaves no file behind.
//!
//! # Index file format, version 1 (all integers little-endian)
//!
//! ```text
//! offset  size  field
//! 0       8     magic "WGPWIDX1"
//! 8       4     u32 format version = 1
//! 12      4     u32 record size = 24
//! 16      4     u32 fan-out bits k (0..=24)
//! 20      4     u32 flags = 0 (reserved)
//! 24      8     u64 record count n
//! 32      8     u64 records offset = 128
//! 40      8     u64 fan-out offset = 128 + 24 n
//! 48      8     u64 file size = fan-out offset + 8 (2^k + 1)
//! 56      32    SHA-256 of the records region (checked by BreachIndex::verify)
//! 88      32    SHA-256 of header bytes 0..88 followed by the fan-out table (checked at open)
//! 120     8     reserved, zero
//! 128     24 n  records, sorted by hash, no duplicates: 20-byte SHA-1, then u32 count (> 0)
//! ..      8 (2^k + 1)  fan-out table: entry b (u64) is the index of the first record whose
//!               hash's top k bits are >= b; entry 2^k is n
//! ```
//!
//! The fan-out table comes after the records so that a sorted input streams into the final
//! file in one pass without knowing its length beforehand (k depends on n); the header is
//! written last, into the space reserved for it. Records keep the full 20-byte hash: the 12%
//! that dropping the fan-out bits would save is not worth the bit-shifting, and a record is
//! then self-describing, which [`BreachIndex::verify`] uses.
//!
//! k is chosen so that a bucket holds about 128 records (3 KiB) on average, at most 22 bits
//! (32 MiB of fan-out table in memory, for a billion hashes). A lookup reads the two fan-out
//! entries from memory, then its bucket in one positioned read when it holds at most 256
//! records, else binary-searches it with 24-byte positioned reads down to such a window:
//! O(log n), with no memory map (the workspace forbids `unsafe`), so [`BreachIndex`] is `Sync`
//! and serves concurrent lookups through `&self`.
//!
//! # Building with bounded memory
//!
//! Records stream into the index as long as they arrive in order. At the first record out of
//! order, what was written so far becomes the first sorted run; later records are sorted in
//! memory in runs of [`BuildOptions::run_records`] (8 Mi records, 192 MiB, by default),
//! spilled to temporary files beside the index, and k-way merged into a new file at the end.
//! The index is written to a temporary file in the output's directory and renamed over the
//! output only when complete.

mod build;
mod sample;

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::keys::hex_digit;

pub use build::{build_index, build_index_from_iter, build_index_with, BuildOptions, IndexBuilder, IndexStats};
pub use sample::{sample_records, write_list, write_range_dir, write_sample_list};

/// The first eight bytes of every index file.
pub const MAGIC: &[u8; 8] = b"WGPWIDX1";
/// The index format version this module writes and reads.
pub const VERSION: u32 = 1;
/// Bytes per record: a 20-byte SHA-1 and a u32 count.
pub const RECORD_LEN: usize = 24;
/// Bytes before the first record.
pub const HEADER_LEN: usize = 128;
/// The largest fan-out the reader accepts (2^24 + 1 entries, 128 MiB).
pub const MAX_FANOUT_BITS: u32 = 24;
/// The most entries [`BreachIndex::range_padded`] pads a response to.
pub const MAX_PADDED_ENTRIES: usize = 10_000;

/// Records read in one positioned read at the bottom of a binary search (6 KiB).
const WINDOW: u64 = 256;

/// What went wrong building, opening or querying a breach-list index.
#[derive(Debug, thiserror::Error)]
pub enum BreachError {
    /// A file could not be read, written or renamed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "reading".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A line of the input list is malformed.
    #[error("{}, line {line}: {error}", path.display())]
    Line {
        /// The input file.
        path: PathBuf,
        /// The line number, from 1.
        line: u64,
        /// What is wrong with the line.
        #[source]
        error: LineError,
    },
    /// The input as a whole is unusable (not a file or directory, stray files in a range
    /// directory, too many records for the index format).
    #[error("{}: {message}", path.display())]
    Input {
        /// The input file or directory.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// The index file is truncated, corrupt, or not an index.
    #[error("{} is not a usable breach-list index: {message}; rebuild it with `wikiguard passwords import`", path.display())]
    Index {
        /// The index file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A lookup was given something other than 40 hex characters.
    #[error("not a SHA-1 hash: expected 40 hex characters, got {0:?}")]
    InvalidHash(String),
    /// A range query was given something other than 5 hex characters.
    #[error("not a range prefix: expected 5 hex characters, got {0:?}")]
    InvalidPrefix(String),
}

/// What is wrong with one line of a Pwned Passwords list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The hash part is not the expected number of hex characters.
    #[error("expected {expected} hex characters before ':', found {found:?}")]
    BadHash {
        /// 40 for a full list, 35 for a range file.
        expected: usize,
        /// The start of the offending text.
        found: String,
    },
    /// A 35-character suffix in a single-file list.
    #[error("found a 35-character range suffix in a single-file list; range files belong in a directory of files named by their 5-hex-character prefix (e.g. 0A1B2.txt)")]
    SuffixInFullList,
    /// The count is not a decimal number.
    #[error("expected a decimal count after ':', found {found:?}")]
    BadCount {
        /// The start of the offending text.
        found: String,
    },
    /// The line is longer than any valid line could be.
    #[error("line longer than {max} bytes; is this a Pwned Passwords SHA-1 list?")]
    TooLong {
        /// The limit.
        max: usize,
    },
}

/// A 5-hex-character range prefix (the first 20 bits of a SHA-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix(u32);

impl Prefix {
    /// Parses 5 hex characters, either case.
    pub fn parse(text: &str) -> Result<Prefix, BreachError> {
        let bytes = text.as_bytes();
        if bytes.len() != 5 {
            return Err(BreachError::InvalidPrefix(snippet(bytes)));
        }
        let mut value = 0u32;
        for &c in bytes {
            let digit = hex_digit(c).ok_or_else(|| BreachError::InvalidPrefix(snippet(bytes)))?;
            value = (value << 4) | u32::from(digit);
        }
        Ok(Prefix(value))
    }

    /// The prefix of a hash.
    pub fn of(hash: &[u8; 20]) -> Prefix {
        Prefix((u32::from(hash[0]) << 12) | (u32::from(hash[1]) << 4) | (u32::from(hash[2]) >> 4))
    }

    /// The prefix as a number below 2^20.
    pub fn value(self) -> u32 {
        self.0
    }

    /// The smallest hash with this prefix.
    fn first_hash(self) -> [u8; 20] {
        let mut hash = [0u8; 20];
        hash[0] = (self.0 >> 12) as u8;
        hash[1] = (self.0 >> 4) as u8;
        hash[2] = ((self.0 & 0xF) << 4) as u8;
        hash
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:05X}", self.0)
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Decodes exactly 40 hex characters (either case).
fn decode_hash(text: &[u8]) -> Option<[u8; 20]> {
    if text.len() != 40 {
        return None;
    }
    let mut hash = [0u8; 20];
    for (byte, pair) in hash.iter_mut().zip(text.chunks_exact(2)) {
        *byte = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(hash)
}

/// Parses a SHA-1 given as 40 hex characters, either case.
pub fn parse_hash(text: &str) -> Result<[u8; 20], BreachError> {
    decode_hash(text.as_bytes()).ok_or_else(|| BreachError::InvalidHash(snippet(text.as_bytes())))
}

/// A SHA-1 as 40 upper-case hex characters, as Pwned Passwords writes it.
pub fn hash_to_hex(hash: &[u8; 20]) -> String {
    let mut out = String::with_capacity(40);
    for &b in hash {
        out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
        out.push(char::from(HEX_UPPER[usize::from(b & 0xF)]));
    }
    out
}

/// The start of some untrusted bytes, printable, for an error message.
fn snippet(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(48)];
    let mut text = String::from_utf8_lossy(cut).into_owned();
    if bytes.len() > cut.len() {
        text.push('…');
    }
    text
}

/// Parses one line of a Pwned Passwords list.
///
/// With `prefix` `None` the line is `SHA1HEX[:COUNT]` (40 hex characters); with the prefix of
/// a range file it is `SUFFIX[:COUNT]` (35 hex characters) and the hash is the prefix followed
/// by the suffix. Hex may be either case; spaces, tabs and a trailing `\r` are ignored.
/// Returns `Ok(None)` for a blank line and for a count of 0 (range-API padding); a missing
/// count is 1; a count above `u32::MAX` is capped there.
pub fn parse_line(line: &[u8], prefix: Option<Prefix>) -> Result<Option<([u8; 20], u32)>, LineError> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return Ok(None);
    }
    let (hash_part, count_part) = match line.iter().position(|&c| c == b':') {
        Some(colon) => (line[..colon].trim_ascii(), Some(line[colon + 1..].trim_ascii())),
        None => (line, None),
    };
    let hash = match prefix {
        None => match decode_hash(hash_part) {
            Some(hash) => hash,
            None if hash_part.len() == 35 && hash_part.iter().all(|&c| hex_digit(c).is_some()) => {
                return Err(LineError::SuffixInFullList)
            }
            None => {
                return Err(LineError::BadHash {
                    expected: 40,
                    found: snippet(hash_part),
                })
            }
        },
        Some(prefix) => {
            if hash_part.len() != 35 {
                return Err(LineError::BadHash {
                    expected: 35,
                    found: snippet(hash_part),
                });
            }
            let mut full = [0u8; 40];
            for (i, slot) in full[..5].iter_mut().enumerate() {
                *slot = HEX_UPPER[((prefix.0 >> (16 - 4 * i)) & 0xF) as usize];
            }
            full[5..].copy_from_slice(hash_part);
            decode_hash(&full).ok_or_else(|| LineError::BadHash {
                expected: 35,
                found: snippet(hash_part),
            })?
        }
    };
    let count = match count_part {
        None => 1,
        Some(text) => parse_count(text).ok_or_else(|| LineError::BadCount { found: snippet(text) })?,
    };
    Ok((count > 0).then_some((hash, count)))
}

fn parse_count(text: &[u8]) -> Option<u32> {
    if text.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &c in text {
        if !c.is_ascii_digit() {
            return None;
        }
        value = value.saturating_mul(10).saturating_add(u64::from(c - b'0'));
    }
    Some(u32::try_from(value).unwrap_or(u32::MAX))
}

/// The top `bits` bits of a hash (its fan-out bucket).
fn bucket_of(hash: &[u8; 20], bits: u32) -> usize {
    if bits == 0 {
        return 0;
    }
    let top = u32::from_be_bytes([hash[0], hash[1], hash[2], hash[3]]);
    (top >> (32 - bits)) as usize
}

/// A record's bytes: the hash, then the count.
fn encode_record(hash: &[u8; 20], count: u32) -> [u8; RECORD_LEN] {
    let mut out = [0u8; RECORD_LEN];
    out[..20].copy_from_slice(hash);
    out[20..].copy_from_slice(&count.to_le_bytes());
    out
}

fn decode_record(bytes: &[u8]) -> ([u8; 20], u32) {
    let mut hash = [0u8; 20];
    hash.copy_from_slice(&bytes[..20]);
    let count = u32::from_le_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    (hash, count)
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// The header and fan-out checksum (header bytes 0..88, then the table).
fn header_checksum(header: &[u8], fanout: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(&header[..88]);
    hasher.update(fanout);
    hasher.finalize().into()
}

/// An open breach-list index: the fan-out table in memory, the records read on demand.
pub struct BreachIndex {
    file: File,
    path: PathBuf,
    records: u64,
    bits: u32,
    fanout: Vec<u64>,
    records_sha256: [u8; 32],
}

impl fmt::Debug for BreachIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreachIndex")
            .field("path", &self.path)
            .field("records", &self.records)
            .field("fanout_bits", &self.bits)
            .finish_non_exhaustive()
    }
}

impl BreachIndex {
    /// Opens an index and checks its header, its size and its fan-out table (not every
    /// record: see [`BreachIndex::verify`]).
    pub fn open(path: &Path) -> Result<BreachIndex, BreachError> {
        let bad = |message: String| BreachError::Index {
            path: path.to_path_buf(),
            message,
        };
        let io_err = |source| BreachError::Io {
            action: "reading",
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        let size = file.metadata().map_err(io_err)?.len();
        if size < HEADER_LEN as u64 {
            return Err(bad(format!(
                "only {size} bytes, shorter than the {HEADER_LEN}-byte header"
            )));
        }
        let mut header = [0u8; HEADER_LEN];
        file.read_exact_at(&mut header, 0).map_err(io_err)?;
        if &header[..8] != MAGIC {
            return Err(bad("wrong magic bytes (not a wikiguard password index)".into()));
        }
        let version = le_u32(&header, 8);
        if version != VERSION {
            return Err(bad(format!(
                "format version {version}, this wikiguard reads version {VERSION}"
            )));
        }
        let record_len = le_u32(&header, 12);
        let bits = le_u32(&header, 16);
        let flags = le_u32(&header, 20);
        let records = le_u64(&header, 24);
        let records_offset = le_u64(&header, 32);
        let fanout_offset = le_u64(&header, 40);
        let file_size = le_u64(&header, 48);
        if record_len as usize != RECORD_LEN || flags != 0 || records_offset != HEADER_LEN as u64 {
            return Err(bad("unexpected record size, flags or layout".into()));
        }
        if bits > MAX_FANOUT_BITS {
            return Err(bad(format!("fan-out of {bits} bits, more than {MAX_FANOUT_BITS}")));
        }
        let entries = (1u64 << bits) + 1;
        let expected_fanout_offset = records
            .checked_mul(RECORD_LEN as u64)
            .and_then(|b| b.checked_add(records_offset));
        let expected_size = expected_fanout_offset.and_then(|o| o.checked_add(entries * 8));
        if expected_fanout_offset != Some(fanout_offset) || expected_size != Some(file_size) {
            return Err(bad("inconsistent offsets in the header".into()));
        }
        if size != file_size {
            return Err(bad(format!(
                "{size} bytes on disk, the header says {file_size} (truncated or damaged?)"
            )));
        }
        let mut table = vec![0u8; (entries * 8) as usize];
        file.read_exact_at(&mut table, fanout_offset).map_err(io_err)?;
        if header_checksum(&header, &table)[..] != header[88..120] {
            return Err(bad("header or fan-out table checksum mismatch (damaged file)".into()));
        }
        let fanout: Vec<u64> = table.chunks_exact(8).map(|c| le_u64(c, 0)).collect();
        let monotone = fanout.windows(2).all(|w| w[0] <= w[1]);
        if fanout.first() != Some(&0) || fanout.last() != Some(&records) || !monotone {
            return Err(bad("fan-out table is not a monotone 0..n sequence".into()));
        }
        let mut records_sha256 = [0u8; 32];
        records_sha256.copy_from_slice(&header[56..88]);
        Ok(BreachIndex {
            file,
            path: path.to_path_buf(),
            records,
            bits,
            fanout,
            records_sha256,
        })
    }

    /// The index file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The number of distinct hashes.
    pub fn len(&self) -> u64 {
        self.records
    }

    /// Whether the index holds no hash.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// The fan-out bits k (the table has 2^k + 1 entries).
    pub fn fanout_bits(&self) -> u32 {
        self.bits
    }

    /// How often the password with this SHA-1 was seen in breaches, or `None` if never.
    pub fn lookup(&self, sha1: &[u8; 20]) -> Result<Option<u32>, BreachError> {
        let (_, count) = self.lower_bound(sha1)?;
        Ok(count)
    }

    /// [`BreachIndex::lookup`] for a hash given as 40 hex characters, either case.
    pub fn lookup_hex(&self, sha1: &str) -> Result<Option<u32>, BreachError> {
        self.lookup(&parse_hash(sha1)?)
    }

    /// The range query: every hash starting with `prefix5` (5 hex characters, either case),
    /// as its upper-case 35-character suffix and count, in order, as the public range API
    /// returns them.
    pub fn range(&self, prefix5: &str) -> Result<Vec<(String, u32)>, BreachError> {
        let prefix = Prefix::parse(prefix5)?;
        let (start, _) = self.lower_bound(&prefix.first_hash())?;
        let end = if prefix.0 == 0xF_FFFF {
            self.records
        } else {
            self.lower_bound(&Prefix(prefix.0 + 1).first_hash())?.0
        };
        let mut out = Vec::with_capacity(end.saturating_sub(start).min(4096) as usize);
        let mut buf = vec![0u8; WINDOW as usize * RECORD_LEN];
        let mut at = start;
        while at < end {
            let take = (end - at).min(WINDOW);
            let bytes = &mut buf[..take as usize * RECORD_LEN];
            self.read_records(at, bytes)?;
            for chunk in bytes.chunks_exact(RECORD_LEN) {
                let (hash, count) = decode_record(chunk);
                let mut hex = hash_to_hex(&hash);
                hex.drain(..5);
                out.push((hex, count));
            }
            at += take;
        }
        Ok(out)
    }

    /// [`BreachIndex::range`], padded with fake `SUFFIX:0` entries to at least `min_entries`
    /// (capped at [`MAX_PADDED_ENTRIES`]) as the public API does for `Add-Padding: true`, so
    /// that the response size says little about the prefix. Entries stay sorted; fake ones
    /// have count 0 and never repeat a real suffix. The fake suffixes are derived from the
    /// prefix, so they are the same on every call; pass a varying `min_entries` (the public API
    /// uses a random 800..=1000) to vary the size.
    pub fn range_padded(&self, prefix5: &str, min_entries: usize) -> Result<Vec<(String, u32)>, BreachError> {
        let mut entries = self.range(prefix5)?;
        let target = min_entries.min(MAX_PADDED_ENTRIES);
        if entries.len() >= target {
            return Ok(entries);
        }
        let prefix = Prefix::parse(prefix5)?;
        let mut taken: std::collections::BTreeSet<String> = entries.iter().map(|(s, _)| s.clone()).collect();
        let mut counter = 0u64;
        while taken.len() < target {
            let mut hasher = Sha256::new();
            hasher.update(b"wikiguard range padding\0");
            hasher.update(prefix.0.to_le_bytes());
            hasher.update(counter.to_le_bytes());
            counter += 1;
            let digest: [u8; 32] = hasher.finalize().into();
            let mut fake = [0u8; 20];
            fake.copy_from_slice(&digest[..20]);
            let mut suffix = hash_to_hex(&fake);
            suffix.truncate(35);
            if taken.insert(suffix.clone()) {
                entries.push((suffix, 0));
            }
        }
        entries.sort_unstable();
        Ok(entries)
    }

    /// Reads every record and checks that they are sorted, unique, in the buckets the
    /// fan-out table puts them in, with non-zero counts, and that they match the checksum the
    /// builder recorded. Reads the whole file: for `wikiguard passwords import`, not per
    /// request.
    pub fn verify(&self) -> Result<(), BreachError> {
        let bad = |message: String| BreachError::Index {
            path: self.path.clone(),
            message,
        };
        let mut hasher = Sha256::new();
        let chunk_records = 1u64 << 14;
        let mut buf = vec![0u8; chunk_records as usize * RECORD_LEN];
        let mut previous: Option<[u8; 20]> = None;
        let mut bucket = 0usize;
        let mut at = 0u64;
        while at < self.records {
            let take = (self.records - at).min(chunk_records);
            let bytes = &mut buf[..take as usize * RECORD_LEN];
            self.read_records(at, bytes)?;
            hasher.update(&*bytes);
            for (i, chunk) in bytes.chunks_exact(RECORD_LEN).enumerate() {
                let index = at + i as u64;
                let (hash, count) = decode_record(chunk);
                if previous.is_some_and(|p| p >= hash) {
                    return Err(bad(format!("record {index} is out of order")));
                }
                if count == 0 {
                    return Err(bad(format!("record {index} has count 0")));
                }
                while self.fanout[bucket + 1] <= index {
                    bucket += 1;
                }
                if bucket_of(&hash, self.bits) != bucket {
                    return Err(bad(format!("record {index} is outside its fan-out bucket")));
                }
                previous = Some(hash);
            }
            at += take;
        }
        let digest: [u8; 32] = hasher.finalize().into();
        if digest != self.records_sha256 {
            return Err(bad("records checksum mismatch (damaged file)".into()));
        }
        Ok(())
    }

    fn read_records(&self, first: u64, buf: &mut [u8]) -> Result<(), BreachError> {
        let offset = HEADER_LEN as u64 + first * RECORD_LEN as u64;
        self.file.read_exact_at(buf, offset).map_err(|source| BreachError::Io {
            action: "reading",
            path: self.path.clone(),
            source,
        })
    }

    /// The index of the first record whose hash is >= `key`, and the key's count if present.
    fn lower_bound(&self, key: &[u8; 20]) -> Result<(u64, Option<u32>), BreachError> {
        let bucket = bucket_of(key, self.bits);
        // Records before `lo` are < key, records from `hi` on are >= key.
        let (mut lo, mut hi) = (self.fanout[bucket], self.fanout[bucket + 1]);
        let mut record = [0u8; RECORD_LEN];
        while hi - lo > WINDOW {
            let mid = lo + (hi - lo) / 2;
            self.read_records(mid, &mut record)?;
            let (hash, count) = decode_record(&record);
            match hash.cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Equal => return Ok((mid, Some(count))),
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        let mut window = [0u8; WINDOW as usize * RECORD_LEN];
        let bytes = &mut window[..(hi - lo) as usize * RECORD_LEN];
        self.read_records(lo, bytes)?;
        let records = bytes.chunks_exact(RECORD_LEN);
        let count = records.len();
        // Binary search over the window in memory.
        let (mut a, mut b) = (0usize, count);
        while a < b {
            let m = a + (b - a) / 2;
            if bytes[m * RECORD_LEN..m * RECORD_LEN + 20] < key[..] {
                a = m + 1;
            } else {
                b = m;
            }
        }
        let found = (a < count && bytes[a * RECORD_LEN..a * RECORD_LEN + 20] == key[..])
            .then(|| decode_record(&bytes[a * RECORD_LEN..(a + 1) * RECORD_LEN]).1);
        Ok((lo + a as u64, found))
    }
}
