//! Benchmark of the breached-password index: build time and size for N generated hashes
//! (default 100 million), then lookups per second (present and absent hashes, 1 and 2
//! threads) and range queries per second; optionally the text-file paths (a sorted list
//! streamed, and a shuffled one sorted externally). Run it through bench/passwords/run.sh,
//! which checks the free disk space and removes the files afterwards.
//!
//! ```text
//! cargo run --release -p wikiguard-accounts --example breach_bench -- \
//!     --dir /tmp/x [--records 100000000] [--lookups 2000000] [--text-records 10000000]
//! ```

use std::error::Error;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use wikiguard_accounts::breach::{build_index, build_index_from_iter, hash_to_hex, BreachIndex, BuildOptions};

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Record `i` of `n`: hashes spread uniformly, strictly increasing in `i` (the top 64 bits
/// are `i * step + jitter` with jitter < step), so the list is generated sorted without
/// holding it in memory, and a hash's record can be regenerated from `i` alone.
fn record(i: u64, n: u64) -> ([u8; 20], u32) {
    let step = u64::MAX / n.max(1);
    let (r1, r2) = (splitmix(i), splitmix(i ^ 0xA5A5_A5A5_A5A5_A5A5));
    let r3 = splitmix(r2);
    let mut hash = [0u8; 20];
    hash[..8].copy_from_slice(&(i * step + r1 % step).to_be_bytes());
    hash[8..16].copy_from_slice(&r2.to_be_bytes());
    hash[16..].copy_from_slice(&r3.to_be_bytes()[..4]);
    // Heavy-tailed counts, as in the real list.
    let count = 1 + (r3 >> 40) as u32 % (1 << ((r3 >> 32) % 16));
    (hash, count)
}

/// A hash certainly absent: record i's top 64 bits are unique to it, so changing its tail
/// gives a hash no record has.
fn absent(i: u64, n: u64) -> [u8; 20] {
    let mut hash = record(i, n).0;
    hash[19] ^= 0xFF;
    hash
}

struct Args {
    dir: PathBuf,
    records: u64,
    lookups: u64,
    text_records: u64,
    keep: bool,
}

fn parse_args() -> Result<Args, Box<dyn Error>> {
    let mut args = Args {
        dir: std::env::temp_dir().join(format!("wikiguard-breach-bench-{}", std::process::id())),
        records: 100_000_000,
        lookups: 2_000_000,
        text_records: 0,
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--dir" => args.dir = PathBuf::from(value()?),
            "--records" => args.records = value()?.replace('_', "").parse()?,
            "--lookups" => args.lookups = value()?.replace('_', "").parse()?,
            "--text-records" => args.text_records = value()?.replace('_', "").parse()?,
            "--keep" => args.keep = true,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(args)
}

/// Queries per second over `queries`, split between `threads` threads; checks every answer.
fn lookups_per_second(index: &BreachIndex, queries: &[[u8; 20]], present: bool, threads: usize) -> f64 {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for chunk in queries.chunks(queries.len().div_ceil(threads).max(1)) {
            scope.spawn(move || {
                for hash in chunk {
                    let found = index.lookup(hash).map(|c| c.is_some());
                    assert_eq!(found.ok(), Some(present), "wrong answer for {}", hash_to_hex(hash));
                }
            });
        }
    });
    queries.len() as f64 / started.elapsed().as_secs_f64()
}

fn ranges_per_second(index: &BreachIndex, count: u64) -> Result<(f64, f64), Box<dyn Error>> {
    let started = Instant::now();
    let mut entries = 0usize;
    for i in 0..count {
        let prefix = format!("{:05X}", splitmix(i) % 0x10_0000);
        entries += index.range(&prefix)?.len();
    }
    Ok((
        count as f64 / started.elapsed().as_secs_f64(),
        entries as f64 / count as f64,
    ))
}

fn write_text(path: &Path, n: u64, order: impl Iterator<Item = u64>) -> Result<(), Box<dyn Error>> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    for i in order {
        let (hash, count) = record(i, n);
        write!(out, "{}:{count}\r\n", hash_to_hex(&hash))?;
    }
    out.flush()?;
    Ok(())
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1 << 20) as f64)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = parse_args()?;
    fs::create_dir_all(&args.dir)?;
    let n = args.records;
    let index_path = args.dir.join("pwned.idx");
    println!("breach index benchmark: {n} records in {}", args.dir.display());

    let stats = build_index_from_iter((0..n).map(|i| record(i, n)), &index_path, &BuildOptions::default())?;
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| records | {} |", stats.records);
    println!(
        "| build (generated, sorted, streamed) | {:.1} s ({:.1} M records/s) |",
        stats.seconds,
        n as f64 / stats.seconds / 1e6
    );
    println!(
        "| index size | {} ({} bytes, {:.2} bytes/record) |",
        mib(stats.bytes),
        stats.bytes,
        stats.bytes as f64 / n.max(1) as f64
    );
    let started = Instant::now();
    let index = BreachIndex::open(&index_path)?;
    println!(
        "| open (header, fan-out table of 2^{} entries) | {:.1} ms |",
        index.fanout_bits(),
        started.elapsed().as_secs_f64() * 1e3
    );

    let m = args.lookups;
    let present: Vec<[u8; 20]> = (0..m).map(|j| record(splitmix(j ^ 0x77) % n.max(1), n).0).collect();
    let missing: Vec<[u8; 20]> = (0..m).map(|j| absent(splitmix(j ^ 0x99) % n.max(1), n)).collect();
    // One warm-up pass so that every run reads from the page cache alike.
    lookups_per_second(&index, &present, true, 2);
    for threads in [1, 2] {
        let p = lookups_per_second(&index, &present, true, threads);
        let a = lookups_per_second(&index, &missing, false, threads);
        println!("| lookups/s, {threads} thread(s), present | {:.0} |", p);
        println!("| lookups/s, {threads} thread(s), absent | {:.0} |", a);
    }
    let (rps, per) = ranges_per_second(&index, (m / 10).max(1))?;
    println!("| range queries/s, 1 thread | {rps:.0} ({per:.0} entries each) |");
    let started = Instant::now();
    index.verify()?;
    println!(
        "| verify (full scan + SHA-256) | {:.1} s |",
        started.elapsed().as_secs_f64()
    );
    drop(index);
    fs::remove_file(&index_path)?;

    if args.text_records > 0 {
        let t = args.text_records;
        let text = args.dir.join("pwned.txt");
        let out = args.dir.join("text.idx");
        write_text(&text, t, 0..t)?;
        let size = fs::metadata(&text)?.len();
        let stats = build_index(&text, &out, |_| {})?;
        assert!(stats.presorted && stats.records == t);
        println!(
            "| text list, {t} sorted lines ({}), streamed | {:.1} s ({:.1} M lines/s) |",
            mib(size),
            stats.seconds,
            t as f64 / stats.seconds / 1e6
        );
        // A permutation of 0..t (multiplying by a number coprime to t), so that runs spill.
        let mult = (1..)
            .map(|k| 2_654_435_761u64 + 2 * k)
            .find(|&a| gcd(a, t) == 1)
            .unwrap_or(1);
        write_text(
            &text,
            t,
            (0..t).map(|i| ((i as u128 * mult as u128) % t as u128) as u64),
        )?;
        let stats = build_index(&text, &out, |_| {})?;
        assert!(!stats.presorted && stats.records == t);
        println!(
            "| text list, {t} shuffled lines, external sort (runs of 8 Mi) | {:.1} s ({:.1} M lines/s) |",
            stats.seconds,
            t as f64 / stats.seconds / 1e6
        );
        BreachIndex::open(&out)?.verify()?;
        fs::remove_file(&text)?;
        fs::remove_file(&out)?;
    }
    if !args.keep {
        fs::remove_dir_all(&args.dir)?;
    }
    Ok(())
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}
