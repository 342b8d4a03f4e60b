//! The breached-password index: building from both Pwned Passwords formats, lookups, range
//! queries, and refusal of malformed input and damaged index files.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use proptest::prelude::*;
use wikiguard_accounts::breach::{
    build_index, build_index_from_iter, build_index_with, hash_to_hex, parse_line, sample_records, write_list,
    write_range_dir, write_sample_list, BreachError, BreachIndex, BuildOptions, IndexBuilder, LineError, Prefix,
};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("wikiguard-breach-{}-{name}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Names in the directory, to check that a build leaves nothing behind.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Deterministic hashes that are (with overwhelming probability) not in `sample_records`.
fn absent_hashes(n: usize) -> Vec<[u8; 20]> {
    sample_records(n, 0x00AB_5E17)
        .into_iter()
        .map(|(mut h, _)| {
            h[19] ^= 0x5A;
            h
        })
        .collect()
}

fn naive_range(records: &[([u8; 20], u32)], prefix: &str) -> Vec<(String, u32)> {
    records
        .iter()
        .map(|(h, c)| (hash_to_hex(h), *c))
        .filter(|(hex, _)| hex[..5].eq_ignore_ascii_case(prefix))
        .map(|(hex, c)| (hex[5..].to_string(), c))
        .collect()
}

/// Every range at once, grouped in one pass (a filter per prefix is too slow over 1M records).
fn naive_ranges(records: &[([u8; 20], u32)]) -> BTreeMap<String, Vec<(String, u32)>> {
    let mut ranges: BTreeMap<String, Vec<(String, u32)>> = BTreeMap::new();
    for (hash, count) in records {
        let hex = hash_to_hex(hash);
        ranges
            .entry(hex[..5].to_string())
            .or_default()
            .push((hex[5..].to_string(), *count));
    }
    ranges
}

fn small(run_records: usize, fanout_bits: Option<u32>) -> BuildOptions {
    BuildOptions {
        run_records,
        fanout_bits,
    }
}

/// The size: a generated list of one million hashes, every one found with its count.
#[test]
fn one_million_hashes_from_a_sorted_text_file() {
    let dir = TempDir::new("million");
    let list = dir.join("pwned.txt");
    let index_path = dir.join("pwned.idx");
    let records = write_sample_list(&list, 1_000_000, 1).unwrap();
    assert_eq!(records.len(), 1_000_000);

    let mut calls = Vec::new();
    let stats = build_index(&list, &index_path, |n| calls.push(n)).unwrap();
    assert_eq!(stats.records, 1_000_000);
    assert!(stats.presorted, "a sorted list streams without an external sort");
    assert_eq!(stats.duplicates, 0);
    assert_eq!(calls.last(), Some(&1_000_000));
    assert_eq!(stats.bytes, fs::metadata(&index_path).unwrap().len());
    assert_eq!(dir.names(), ["pwned.idx", "pwned.txt"], "no temporary files left");

    let index = BreachIndex::open(&index_path).unwrap();
    assert_eq!(index.len(), 1_000_000);
    index.verify().unwrap();
    for (hash, count) in &records {
        assert_eq!(index.lookup(hash).unwrap(), Some(*count), "{}", hash_to_hex(hash));
    }
    for hash in absent_hashes(20_000) {
        if records.binary_search_by(|(h, _)| h.cmp(&hash)).is_err() {
            assert_eq!(index.lookup(&hash).unwrap(), None);
        }
    }
    let (hash, count) = records[12_345];
    assert_eq!(
        index.lookup_hex(&hash_to_hex(&hash).to_lowercase()).unwrap(),
        Some(count)
    );

    // Range queries equal a naive filter: the ends, and prefixes spread over the space.
    let mut prefixes = vec!["00000".to_string(), "FFFFF".to_string(), "fffff".to_string()];
    prefixes.extend((0..300u32).map(|i| format!("{:05X}", (i * 3_497) % 0x10_0000)));
    prefixes.extend(
        records
            .iter()
            .step_by(10_007)
            .map(|(h, _)| hash_to_hex(h)[..5].to_string()),
    );
    let naive = naive_ranges(&records);
    for prefix in &prefixes {
        let expected = naive.get(&prefix.to_uppercase()).cloned().unwrap_or_default();
        assert_eq!(index.range(prefix).unwrap(), expected, "prefix {prefix}");
    }
}

#[test]
fn unsorted_input_with_duplicates_is_sorted_externally() {
    let dir = TempDir::new("unsorted");
    let records = sample_records(30_000, 2);
    // Shuffle deterministically, repeat some hashes with other counts, mix the case.
    let mut shuffled: Vec<([u8; 20], u32)> = records.clone();
    let len = shuffled.len();
    for i in 0..len {
        shuffled.swap(i, (i * 7_919 + 13) % len);
    }
    let mut expected: BTreeMap<[u8; 20], u32> = records.iter().copied().collect();
    for (i, (hash, count)) in records.iter().enumerate().step_by(7) {
        let other = if i % 2 == 0 { count + 5 } else { 1 };
        shuffled.insert((i * 31) % shuffled.len(), (*hash, other));
        let e = expected.get_mut(hash).unwrap();
        *e = (*e).max(other);
    }
    let mut text = String::new();
    for (i, (hash, count)) in shuffled.iter().enumerate() {
        let hex = if i % 3 == 0 {
            hash_to_hex(hash).to_lowercase()
        } else {
            hash_to_hex(hash)
        };
        text.push_str(&format!("{hex}:{count}{}", if i % 2 == 0 { "\r\n" } else { "\n" }));
        if i % 1000 == 0 {
            text.push_str("\r\n\n");
        }
    }
    let list = dir.join("list.txt");
    fs::write(&list, text).unwrap();
    let index_path = dir.join("list.idx");
    // Runs of 4096 records force several spilled runs and a real k-way merge.
    let stats = build_index_with(&list, &index_path, &small(4096, None), |_| {}).unwrap();
    assert!(!stats.presorted);
    assert_eq!(stats.records, expected.len() as u64);
    assert_eq!(stats.input_records, shuffled.len() as u64);
    assert_eq!(stats.duplicates, (shuffled.len() - expected.len()) as u64);
    assert_eq!(dir.names(), ["list.idx", "list.txt"], "runs removed after the merge");
    let index = BreachIndex::open(&index_path).unwrap();
    index.verify().unwrap();
    for (hash, count) in &expected {
        assert_eq!(index.lookup(hash).unwrap(), Some(*count));
    }
}

#[test]
fn sorted_then_unsorted_input_keeps_the_streamed_prefix() {
    let dir = TempDir::new("partly");
    let records = sample_records(10_000, 3);
    // The second half first, then the first half: the builder streams 5000 records, then
    // must fall back to sorting with the streamed ones as the first run.
    let mut order: Vec<([u8; 20], u32)> = records[5_000..].to_vec();
    order.extend_from_slice(&records[..5_000]);
    order.push(records[7_000]); // a duplicate of a streamed record, same count
    let list = dir.join("list.txt");
    write_list(&list, &order).unwrap();
    let index_path = dir.join("list.idx");
    let stats = build_index_with(&list, &index_path, &small(1_000, None), |_| {}).unwrap();
    assert!(!stats.presorted);
    assert_eq!(stats.records, 10_000);
    assert_eq!(stats.duplicates, 1);
    let index = BreachIndex::open(&index_path).unwrap();
    index.verify().unwrap();
    for (hash, count) in &records {
        assert_eq!(index.lookup(hash).unwrap(), Some(*count));
    }
}

#[test]
fn duplicates_in_sorted_input_keep_the_largest_count() {
    let dir = TempDir::new("dups");
    let hash = [0x11u8; 20];
    let hex = hash_to_hex(&hash);
    let list = dir.join("list.txt");
    fs::write(&list, format!("{hex}:5\n{hex}:9\n{}:3\n{hex}\n", hex.to_lowercase())).unwrap();
    let stats = build_index(&list, &dir.join("i"), |_| {}).unwrap();
    assert!(stats.presorted);
    assert_eq!((stats.records, stats.duplicates), (1, 3));
    assert_eq!(
        BreachIndex::open(&dir.join("i")).unwrap().lookup(&hash).unwrap(),
        Some(9)
    );
}

/// Records clustered on a few prefixes, so that range files hold many lines each.
fn clustered_records(n: usize, seed: u64) -> Vec<([u8; 20], u32)> {
    let mut records: Vec<([u8; 20], u32)> = sample_records(n, seed)
        .into_iter()
        .map(|(mut h, c)| {
            let cluster = h[0] % 40;
            h[0] = cluster.wrapping_mul(6);
            h[1] = 0xA0 | (h[1] & 0x01);
            h[2] &= 0x0F;
            (h, c)
        })
        .collect();
    records.sort_unstable();
    records.dedup_by(|a, b| a.0 == b.0);
    records
}

#[test]
fn range_directory_builds_the_same_index_as_the_single_file() {
    let dir = TempDir::new("rangedir");
    let records = clustered_records(20_000, 4);
    let range_dir = dir.join("range");
    write_range_dir(&range_dir, &records).unwrap();
    // The downloader's names are upper case with .txt; accept bare and lower-case names too.
    fs::rename(range_dir.join("06A10.txt"), range_dir.join("06a10")).unwrap();
    fs::write(range_dir.join(".DS_Store"), b"ignored").unwrap();
    let list = dir.join("single.txt");
    write_list(&list, &records).unwrap();

    let from_dir = dir.join("dir.idx");
    let from_file = dir.join("file.idx");
    let stats = build_index(&range_dir, &from_dir, |_| {}).unwrap();
    assert!(stats.presorted, "range files in prefix order stream directly");
    assert_eq!(stats.records, records.len() as u64);
    build_index(&list, &from_file, |_| {}).unwrap();
    assert_eq!(
        fs::read(&from_dir).unwrap(),
        fs::read(&from_file).unwrap(),
        "byte-identical indexes"
    );

    let index = BreachIndex::open(&from_dir).unwrap();
    for (hash, count) in &records {
        assert_eq!(index.lookup(hash).unwrap(), Some(*count));
    }
    for prefix in ["06A00", "06A10", "06a10", "00000", "EAA00", "FFFFF", "12345"] {
        assert_eq!(index.range(prefix).unwrap(), naive_range(&records, prefix));
    }
    assert!(index.range("06A00").unwrap().len() > 100);
}

#[test]
fn range_files_skip_padding_and_accept_a_bom_and_blank_lines() {
    let dir = TempDir::new("padding");
    let range_dir = dir.join("range");
    fs::create_dir_all(&range_dir).unwrap();
    let suffix = "0018A45C4D1DEF81644B54AB7F969B88D65";
    fs::write(
        range_dir.join("21BD1.txt"),
        format!("\u{FEFF}{suffix}:3\r\n\r\n00D4F6E8FA6EECAD2A3AA415EEC418D38EC:0\r\n  011053FD0102E94D6AE2F8B83D76FAF94F6 : 7 \r\n"),
    )
    .unwrap();
    let out = dir.join("i");
    let stats = build_index(&range_dir, &out, |_| {}).unwrap();
    assert_eq!(stats.records, 2);
    let index = BreachIndex::open(&out).unwrap();
    // SHA-1("P@ssw0rd") is 21BD10018A45C4D1DEF81644B54AB7F969B88D65.
    assert_eq!(
        index.lookup_hex("21BD10018A45C4D1DEF81644B54AB7F969B88D65").unwrap(),
        Some(3)
    );
    assert_eq!(
        index.lookup_hex("21bd100d4f6e8fa6eecad2a3aa415eec418d38ec").unwrap(),
        None,
        "padding skipped"
    );
    assert_eq!(
        index.range("21bd1").unwrap(),
        vec![
            (suffix.to_string(), 3),
            ("011053FD0102E94D6AE2F8B83D76FAF94F6".to_string(), 7)
        ]
    );
}

#[test]
fn padded_ranges() {
    let dir = TempDir::new("padded");
    let records = clustered_records(5_000, 5);
    let list = dir.join("l.txt");
    write_list(&list, &records).unwrap();
    build_index(&list, &dir.join("i"), |_| {}).unwrap();
    let index = BreachIndex::open(&dir.join("i")).unwrap();
    for prefix in ["06A00", "ABCDE"] {
        let real = index.range(prefix).unwrap();
        let padded = index.range_padded(prefix, 800).unwrap();
        assert_eq!(padded.len(), real.len().max(800));
        assert!(padded.windows(2).all(|w| w[0].0 < w[1].0), "sorted, no repeated suffix");
        for entry in &real {
            assert!(padded.contains(entry));
        }
        let fakes: Vec<_> = padded.iter().filter(|(_, c)| *c == 0).collect();
        assert_eq!(fakes.len(), padded.len() - real.len());
        for (suffix, _) in fakes {
            assert_eq!(suffix.len(), 35);
            assert!(suffix.bytes().all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c)));
        }
        assert_eq!(index.range_padded(prefix, 800).unwrap(), padded, "stable between calls");
        assert_eq!(index.range_padded(prefix, 0).unwrap(), real);
    }
    assert_eq!(index.range_padded("ABCDE", 1_000_000).unwrap().len(), 10_000, "capped");
}

#[test]
fn big_buckets_and_tiny_fanouts_binary_search_correctly() {
    let dir = TempDir::new("fanout");
    let records = sample_records(5_000, 6);
    let absent = absent_hashes(2_000);
    for bits in [0u32, 1, 4, 12, 22] {
        let out = dir.join(&format!("k{bits}"));
        let stats = build_index_from_iter(records.iter().copied(), &out, &small(1 << 20, Some(bits))).unwrap();
        assert_eq!(stats.fanout_bits, bits);
        let index = BreachIndex::open(&out).unwrap();
        assert_eq!(index.fanout_bits(), bits);
        index.verify().unwrap();
        for (hash, count) in &records {
            assert_eq!(index.lookup(hash).unwrap(), Some(*count), "k={bits}");
        }
        for hash in &absent {
            assert_eq!(index.lookup(hash).unwrap(), None, "k={bits}");
        }
        for (hash, _) in records.iter().step_by(97) {
            let prefix = &hash_to_hex(hash)[..5];
            assert_eq!(index.range(prefix).unwrap(), naive_range(&records, prefix), "k={bits}");
        }
    }
}

#[test]
fn empty_input_gives_an_empty_index() {
    let dir = TempDir::new("empty");
    fs::write(dir.join("l.txt"), "\r\n\n").unwrap();
    let stats = build_index(&dir.join("l.txt"), &dir.join("i"), |_| {}).unwrap();
    assert_eq!(stats.records, 0);
    let index = BreachIndex::open(&dir.join("i")).unwrap();
    assert!(index.is_empty());
    index.verify().unwrap();
    assert_eq!(index.lookup(&[0u8; 20]).unwrap(), None);
    assert_eq!(index.range("00000").unwrap(), vec![]);
    assert_eq!(index.range_padded("00000", 3).unwrap().len(), 3);
}

#[test]
fn rebuilding_replaces_the_index_atomically() {
    let dir = TempDir::new("rebuild");
    let out = dir.join("i");
    let first = sample_records(100, 7);
    build_index_from_iter(first.clone(), &out, &BuildOptions::default()).unwrap();
    let old = BreachIndex::open(&out).unwrap();
    let second = sample_records(50, 8);
    build_index_from_iter(second.clone(), &out, &BuildOptions::default()).unwrap();
    // The open index still reads the old file; a new open reads the new one.
    assert_eq!(old.lookup(&first[0].0).unwrap(), Some(first[0].1));
    let new = BreachIndex::open(&out).unwrap();
    assert_eq!(new.len(), 50);
    assert_eq!(new.lookup(&first[0].0).unwrap(), None);
    assert_eq!(dir.names(), ["i"]);
}

fn build_error(content: &str) -> (BreachError, TempDir) {
    let dir = TempDir::new("bad");
    fs::write(dir.join("l.txt"), content).unwrap();
    fs::write(dir.join("i"), b"previous index").unwrap();
    let err = build_index(&dir.join("l.txt"), &dir.join("i"), |_| {}).unwrap_err();
    assert_eq!(dir.names(), ["i", "l.txt"], "no temporary file left");
    assert_eq!(
        fs::read(dir.join("i")).unwrap(),
        b"previous index",
        "the old output untouched"
    );
    (err, dir)
}

#[test]
fn malformed_lines_are_reported_with_file_and_line() {
    let good = "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:10\r\n";
    let cases: [(&str, u64, &str); 7] = [
        (
            "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD:1\n",
            2,
            "expected 40 hex characters",
        ),
        (
            "ZBAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:1\n",
            2,
            "expected 40 hex characters",
        ),
        (
            "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD9:many\n",
            2,
            "expected a decimal count",
        ),
        (
            "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD9:\n",
            2,
            "expected a decimal count",
        ),
        (
            "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD9:-3\n",
            2,
            "expected a decimal count",
        ),
        (
            "1E4C9B93F3F0682250B6CF8331B7EE68FD8:4\n",
            2,
            "range suffix in a single-file list",
        ),
        ("password123\n", 2, "expected 40 hex characters"),
    ];
    for (bad, line, message) in cases {
        let (err, dir) = build_error(&format!("{good}{bad}{good}"));
        match &err {
            BreachError::Line { path, line: l, .. } => {
                assert_eq!(path, &dir.join("l.txt"));
                assert_eq!(*l, line, "{bad:?}");
            }
            other => panic!("{other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.contains(&format!("l.txt, line {line}: ")) && text.contains(message),
            "{text}"
        );
    }
    let (err, _dir) = build_error(&format!("\n\n{good}{}\n", "A".repeat(5000)));
    assert!(
        matches!(
            err,
            BreachError::Line {
                line: 4,
                error: LineError::TooLong { .. },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_failed_or_abandoned_build_leaves_no_files() {
    let dir = TempDir::new("abandoned");
    let mut records = sample_records(3_000, 12);
    records.reverse();
    let list = dir.join("l.txt");
    write_list(&list, &records).unwrap();
    let mut text = fs::read_to_string(&list).unwrap();
    text.push_str("not a hash\r\n");
    fs::write(&list, text).unwrap();
    // Runs of 100 records: thirty runs are on disk when the bad last line is read.
    let err = build_index_with(&list, &dir.join("i"), &small(100, None), |_| {}).unwrap_err();
    assert!(matches!(err, BreachError::Line { line: 3_001, .. }), "{err}");
    assert_eq!(dir.names(), ["l.txt"]);

    let mut builder = IndexBuilder::with_options(&dir.join("i"), small(100, None)).unwrap();
    for (hash, count) in &records {
        builder.push(hash, *count).unwrap();
    }
    assert_eq!(builder.input_records(), 3_000);
    assert!(dir.names().len() > 2, "runs spilled");
    drop(builder);
    assert_eq!(dir.names(), ["l.txt"]);
}

#[test]
fn malformed_range_directories_are_refused() {
    let dir = TempDir::new("badrange");
    let range = dir.join("range");
    fs::create_dir_all(&range).unwrap();
    fs::write(range.join("00000.txt"), "0005AD76BD555C1D6D771DE417A4B87E4B4:4\r\n").unwrap();
    fs::write(
        range.join("00001.txt"),
        "0005AD76BD555C1D6D771DE417A4B87E4B4:4\r\n00000005AD76BD555C1D6D771DE417A4B87E4B4:1\r\n",
    )
    .unwrap();
    let err = build_index(&range, &dir.join("i"), |_| {}).unwrap_err();
    assert!(
        err.to_string()
            .contains("00001.txt, line 2: expected 35 hex characters"),
        "{err}"
    );

    fs::write(range.join("00001.txt"), "").unwrap();
    fs::write(range.join("README"), "downloaded with the official tool").unwrap();
    let err = build_index(&range, &dir.join("i"), |_| {}).unwrap_err();
    assert!(
        matches!(err, BreachError::Input { .. }) && err.to_string().contains("README"),
        "{err}"
    );
    assert!(!dir.join("i").exists());
    assert_eq!(dir.names(), ["range"]);

    let err = build_index(&dir.join("missing"), &dir.join("i"), |_| {}).unwrap_err();
    assert!(
        matches!(err, BreachError::Io { .. }) && err.to_string().contains("missing"),
        "{err}"
    );
}

#[test]
fn damaged_indexes_are_refused_at_open() {
    let dir = TempDir::new("damaged");
    let records = sample_records(2_000, 9);
    let good = dir.join("good");
    build_index_from_iter(records.clone(), &good, &BuildOptions::default()).unwrap();
    let bytes = fs::read(&good).unwrap();
    let check = |name: &str, content: &[u8], expect: &str| {
        let path = dir.join(name);
        fs::write(&path, content).unwrap();
        let err = BreachIndex::open(&path).unwrap_err();
        assert!(matches!(err, BreachError::Index { .. }), "{name}: {err}");
        assert!(err.to_string().contains(expect), "{name}: {err}");
        assert!(
            err.to_string().contains("wikiguard passwords import"),
            "says what to do: {err}"
        );
    };
    check("empty", b"", "shorter than");
    check("short", &bytes[..100], "shorter than");
    check("truncated", &bytes[..bytes.len() - 1], "truncated");
    check("truncated-records", &bytes[..bytes.len() / 2], "truncated");
    let mut longer = bytes.clone();
    longer.push(0);
    check("longer", &longer, "bytes on disk");
    let mut magic = bytes.clone();
    magic[0] = b'X';
    check("magic", &magic, "magic");
    let mut version = bytes.clone();
    version[8] = 2;
    check("version", &version, "version 2");
    let mut count = bytes.clone();
    count[24] ^= 1;
    check("count", &count, "inconsistent");
    let mut table = bytes.clone();
    let last = table.len() - 12;
    table[last] ^= 0x40;
    check("fanout", &table, "checksum");
    let mut header = bytes.clone();
    header[60] ^= 1;
    check("header", &header, "checksum");

    // A damaged record passes open (only the header and table are checked) but not verify.
    let mut record = bytes.clone();
    record[128 + 24 * 1000 + 21] ^= 0x10;
    let path = dir.join("record");
    fs::write(&path, &record).unwrap();
    let index = BreachIndex::open(&path).unwrap();
    let err = index.verify().unwrap_err();
    assert!(err.to_string().contains("records checksum"), "{err}");
    BreachIndex::open(&good).unwrap().verify().unwrap();

    let err = BreachIndex::open(&dir.join("nonexistent")).unwrap_err();
    assert!(matches!(err, BreachError::Io { .. }));
}

#[test]
fn bad_query_arguments_are_errors() {
    let dir = TempDir::new("args");
    build_index_from_iter(sample_records(10, 10), &dir.join("i"), &BuildOptions::default()).unwrap();
    let index = BreachIndex::open(&dir.join("i")).unwrap();
    for bad in [
        "",
        "abc",
        "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FDZ",
        "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8A",
    ] {
        assert!(
            matches!(index.lookup_hex(bad), Err(BreachError::InvalidHash(_))),
            "{bad}"
        );
    }
    for bad in ["", "0000", "000000", "0000G", "ü0000"] {
        assert!(matches!(index.range(bad), Err(BreachError::InvalidPrefix(_))), "{bad}");
    }
    assert_eq!(Prefix::parse("0a1B2").unwrap().to_string(), "0A1B2");
}

#[test]
fn concurrent_lookups_share_one_index() {
    let dir = TempDir::new("threads");
    let records = Arc::new(sample_records(50_000, 11));
    build_index_from_iter(records.iter().copied(), &dir.join("i"), &BuildOptions::default()).unwrap();
    let index = Arc::new(BreachIndex::open(&dir.join("i")).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (index, records) = (Arc::clone(&index), Arc::clone(&records));
            std::thread::spawn(move || {
                for (hash, count) in records.iter().skip(t).step_by(4) {
                    assert_eq!(index.lookup(hash).unwrap(), Some(*count));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn hash_strategy() -> impl Strategy<Value = [u8; 20]> {
    prop::array::uniform20(any::<u8>())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any hash and count, written the ways real files write them, parses back.
    #[test]
    fn line_parser_round_trips(hash in hash_strategy(), count in 1u32.., lower in any::<bool>(),
                               crlf in any::<bool>(), pad in "[ \t]{0,2}") {
        let hex = if lower { hash_to_hex(&hash).to_lowercase() } else { hash_to_hex(&hash) };
        let eol = if crlf { "\r\n" } else { "\n" };
        let line = format!("{pad}{hex}{pad}:{pad}{count}{pad}{eol}");
        prop_assert_eq!(parse_line(line.as_bytes(), None), Ok(Some((hash, count))));
        let prefix = Prefix::of(&hash);
        let range_line = format!("{}:{count}{eol}", &hex[5..]);
        prop_assert_eq!(parse_line(range_line.as_bytes(), Some(prefix)), Ok(Some((hash, count))));
        prop_assert_eq!(parse_line(format!("{hex}:0").as_bytes(), None), Ok(None));
    }

    /// Arbitrary bytes never panic, and whatever parses is 40 hex digits and a count.
    #[test]
    fn line_parser_never_panics(line in prop::collection::vec(any::<u8>(), 0..80)) {
        if let Ok(Some((hash, count))) = parse_line(&line, None) {
            prop_assert!(count > 0);
            let text = String::from_utf8_lossy(&line).to_uppercase();
            prop_assert!(text.contains(&hash_to_hex(&hash)));
        }
        let _ = parse_line(&line, Some(Prefix::parse("ABCDE").unwrap()));
    }

    /// Counts too large for u32 are capped, not wrapped.
    #[test]
    fn huge_counts_saturate(hash in hash_strategy(), count in (u32::MAX as u64 + 1)..) {
        let line = format!("{}:{count}", hash_to_hex(&hash));
        prop_assert_eq!(parse_line(line.as_bytes(), None), Ok(Some((hash, u32::MAX))));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Lookups and ranges agree with a BTreeMap, whatever the order, duplicates, run size
    /// and fan-out.
    #[test]
    fn index_agrees_with_a_btreemap(
        entries in prop::collection::vec((hash_strategy(), 0u32..5), 0..300),
        run_records in 1usize..64,
        bits in prop::option::of(0u32..=22),
        probes in prop::collection::vec(hash_strategy(), 0..20),
    ) {
        // Cluster hashes on few prefixes so that ranges and duplicates are not all trivial.
        let entries: Vec<([u8; 20], u32)> = entries
            .into_iter()
            .map(|(mut h, c)| { h[0] &= 0x81; h[1] &= 0x0F; h[2] &= 0x1F; h[3] &= 0x3; (h, c) })
            .collect();
        let mut expected: BTreeMap<[u8; 20], u32> = BTreeMap::new();
        for (hash, count) in &entries {
            if *count > 0 {
                let e = expected.entry(*hash).or_insert(0);
                *e = (*e).max(*count);
            }
        }
        let dir = TempDir::new("prop");
        let out = dir.join("i");
        let stats = build_index_from_iter(entries.clone(), &out, &small(run_records, bits)).unwrap();
        prop_assert_eq!(stats.records, expected.len() as u64);
        let index = BreachIndex::open(&out).unwrap();
        index.verify().unwrap();
        for (hash, _) in &entries {
            prop_assert_eq!(index.lookup(hash).unwrap(), expected.get(hash).copied());
        }
        for hash in &probes {
            prop_assert_eq!(index.lookup(hash).unwrap(), expected.get(hash).copied());
        }
        let sorted: Vec<([u8; 20], u32)> = expected.iter().map(|(h, c)| (*h, *c)).collect();
        let prefixes = entries.iter().take(10).map(|(h, _)| h).chain(probes.iter());
        for hash in prefixes {
            let prefix = &hash_to_hex(hash)[..5];
            prop_assert_eq!(index.range(prefix).unwrap(), naive_range(&sorted, prefix));
        }
    }
}
