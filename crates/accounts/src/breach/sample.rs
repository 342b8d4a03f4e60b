//! Generated breach lists for tests and benchmarks: deterministic, no real passwords.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use super::{hash_to_hex, BreachError, Prefix};

/// SplitMix64: a small, well-mixed deterministic generator (no RNG crate needed).
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `n` distinct pseudo-random hashes with counts from 1 (most) to 2^19 (few), sorted
/// by hash; the same `seed` always gives the same list.
pub fn sample_records(n: usize, seed: u64) -> Vec<([u8; 20], u32)> {
    let mut state = seed ^ 0x5EED_0FB4_EAC4_ED00;
    let mut records = Vec::with_capacity(n);
    while records.len() < n {
        while records.len() < n {
            let mut hash = [0u8; 20];
            hash[..8].copy_from_slice(&splitmix(&mut state).to_be_bytes());
            hash[8..16].copy_from_slice(&splitmix(&mut state).to_be_bytes());
            let tail = splitmix(&mut state);
            hash[16..].copy_from_slice(&tail.to_be_bytes()[..4]);
            // Breach counts are heavy-tailed: most hashes were seen once or a few times.
            let r = splitmix(&mut state);
            let shift = (r >> 40) % 20;
            let count = 1 + (r as u32 & ((1u32 << shift) - 1));
            records.push((hash, count));
        }
        records.sort_unstable_by_key(|a| a.0);
        records.dedup_by(|a, b| a.0 == b.0);
    }
    records
}

fn write_err(path: &Path) -> impl Fn(std::io::Error) -> BreachError + '_ {
    move |source| BreachError::Io {
        action: "writing",
        path: path.to_path_buf(),
        source,
    }
}

/// Writes records as a single-file list (`HEX:COUNT`, upper case, CRLF), in the given order.
pub fn write_list(path: &Path, records: &[([u8; 20], u32)]) -> Result<(), BreachError> {
    let file = File::create(path).map_err(write_err(path))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    for (hash, count) in records {
        write!(out, "{}:{}\r\n", hash_to_hex(hash), count).map_err(write_err(path))?;
    }
    out.into_inner().map_err(|e| write_err(path)(e.into_error()))?;
    Ok(())
}

/// Writes [`sample_records`] as a sorted single-file list and returns them.
pub fn write_sample_list(path: &Path, n: usize, seed: u64) -> Result<Vec<([u8; 20], u32)>, BreachError> {
    let records = sample_records(n, seed);
    write_list(path, &records)?;
    Ok(records)
}

/// Writes records as a range directory: one `PREFIX.txt` file per prefix that has records,
/// holding its `SUFFIX:COUNT` lines sorted, CRLF, as the range API serves them.
pub fn write_range_dir(dir: &Path, records: &[([u8; 20], u32)]) -> Result<(), BreachError> {
    fs::create_dir_all(dir).map_err(write_err(dir))?;
    let mut sorted = records.to_vec();
    sorted.sort_unstable_by_key(|a| a.0);
    let mut i = 0;
    while i < sorted.len() {
        let prefix = Prefix::of(&sorted[i].0);
        let path = dir.join(format!("{prefix}.txt"));
        let file = File::create(&path).map_err(write_err(&path))?;
        let mut out = BufWriter::new(file);
        while i < sorted.len() && Prefix::of(&sorted[i].0) == prefix {
            let (hash, count) = &sorted[i];
            write!(out, "{}:{}\r\n", &hash_to_hex(hash)[5..], count).map_err(write_err(&path))?;
            i += 1;
        }
        out.into_inner().map_err(|e| write_err(&path)(e.into_error()))?;
    }
    Ok(())
}
