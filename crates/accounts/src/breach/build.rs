//! Building an index: parsing the input list, streaming or externally sorting the records,
//! writing the file and renaming it into place.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::{
    bucket_of, encode_record, header_checksum, parse_line, BreachError, LineError, Prefix, HEADER_LEN, MAGIC,
    RECORD_LEN, VERSION,
};

/// The fan-out resolution the builder counts at; the file's k is at most this.
const HIST_BITS: u32 = 22;
/// Average records per bucket the automatic fan-out aims at.
const TARGET_BUCKET: u64 = 128;
/// No valid line is this long; a longer one means the input is not a hash list.
const MAX_LINE: usize = 1024;
/// How often (in input records) `progress` is called.
const PROGRESS_EVERY: u64 = 1 << 20;

/// Tuning for [`build_index_with`] and [`IndexBuilder::with_options`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOptions {
    /// Records sorted in memory per run when the input is not sorted (24 bytes each); bounds
    /// the builder's memory. Default 8 Mi (192 MiB).
    pub run_records: usize,
    /// Fan-out bits, 0..=22; `None` chooses about 128 records per bucket.
    pub fanout_bits: Option<u32>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            run_records: 8 << 20,
            fanout_bits: None,
        }
    }
}

/// What a build produced.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexStats {
    /// Distinct hashes in the index.
    pub records: u64,
    /// The index file's size in bytes.
    pub bytes: u64,
    /// Wall-clock time of the build.
    pub seconds: f64,
    /// Records accepted from the input (before merging duplicates; padding lines excluded).
    pub input_records: u64,
    /// Input records merged into another with the same hash.
    pub duplicates: u64,
    /// Whether the input arrived sorted and was streamed without an external sort.
    pub presorted: bool,
    /// The index's fan-out bits.
    pub fanout_bits: u32,
}

/// Builds an index at `output` from a Pwned Passwords list at `input` (one file, or a range
/// directory; see the [module documentation](super)), with default options. `progress` is
/// called with the number of input records read so far, every 2^20 records and at the end.
pub fn build_index(input: &Path, output: &Path, progress: impl FnMut(u64)) -> Result<IndexStats, BreachError> {
    build_index_with(input, output, &BuildOptions::default(), progress)
}

/// [`build_index`] with explicit [`BuildOptions`].
pub fn build_index_with(
    input: &Path,
    output: &Path,
    options: &BuildOptions,
    mut progress: impl FnMut(u64),
) -> Result<IndexStats, BreachError> {
    let meta = fs::metadata(input).map_err(|source| io_error("reading", input, source))?;
    let mut builder = IndexBuilder::with_options(output, options.clone())?;
    if meta.is_dir() {
        for (prefix, path) in range_files(input)? {
            read_list(&path, Some(prefix), &mut builder, &mut progress)?;
        }
    } else if meta.is_file() {
        read_list(input, None, &mut builder, &mut progress)?;
    } else {
        return Err(BreachError::Input {
            path: input.to_path_buf(),
            message: "neither a file nor a directory; give the downloaded list file or range directory".into(),
        });
    }
    progress(builder.input_records);
    builder.finish()
}

/// Builds an index from records given in any order (duplicates keep the largest count,
/// count-0 records are skipped), e.g. generated ones for a benchmark.
pub fn build_index_from_iter(
    records: impl IntoIterator<Item = ([u8; 20], u32)>,
    output: &Path,
    options: &BuildOptions,
) -> Result<IndexStats, BreachError> {
    let mut builder = IndexBuilder::with_options(output, options.clone())?;
    for (hash, count) in records {
        builder.push(&hash, count)?;
    }
    builder.finish()
}

fn io_error(action: &'static str, path: &Path, source: io::Error) -> BreachError {
    BreachError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The files of a range directory in prefix order. Hidden files are ignored; any other file
/// not named by a 5-hex-character prefix is an error, so that a half-extracted download or
/// a wrong directory is noticed.
fn range_files(dir: &Path) -> Result<Vec<(Prefix, PathBuf)>, BreachError> {
    let mut files = Vec::new();
    let entries = fs::read_dir(dir).map_err(|source| io_error("listing", dir, source))?;
    for entry in entries {
        let entry = entry.map_err(|source| io_error("listing", dir, source))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let stem = name.strip_suffix(".txt").unwrap_or(&name);
        match Prefix::parse(stem) {
            Ok(prefix) => files.push((prefix, entry.path())),
            Err(_) => {
                return Err(BreachError::Input {
                    path: entry.path(),
                    message: "unexpected file in a range directory: every file must be named by its \
                              5-hex-character prefix, like 0A1B2 or 0A1B2.txt"
                        .into(),
                })
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Parses one list file into the builder.
fn read_list(
    path: &Path,
    prefix: Option<Prefix>,
    builder: &mut IndexBuilder,
    progress: &mut impl FnMut(u64),
) -> Result<(), BreachError> {
    let file = File::open(path).map_err(|source| io_error("reading", path, source))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::with_capacity(128);
    let mut number = 0u64;
    loop {
        line.clear();
        let read = reader
            .by_ref()
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|source| io_error("reading", path, source))?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        let line_error = |error| BreachError::Line {
            path: path.to_path_buf(),
            line: number,
            error,
        };
        if line.len() > MAX_LINE {
            return Err(line_error(LineError::TooLong { max: MAX_LINE }));
        }
        let mut text = &line[..];
        if number == 1 {
            text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
        }
        if let Some((hash, count)) = parse_line(text, prefix).map_err(line_error)? {
            builder.push(&hash, count)?;
            if builder.input_records & (PROGRESS_EVERY - 1) == 0 {
                progress(builder.input_records);
            }
        }
    }
}

/// A temporary file that is removed when dropped, unless kept.
struct TempPath {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// One hash and its count.
#[derive(Debug, Clone, Copy)]
struct Rec {
    hash: [u8; 20],
    count: u32,
}

/// Writes records in order into an index file, counting them per bucket.
struct RecordSink {
    writer: BufWriter<File>,
    temp: TempPath,
    sha256: Sha256,
    hist: Vec<u32>,
    records: u64,
    last: Option<[u8; 20]>,
}

impl RecordSink {
    fn create(temp: TempPath) -> Result<RecordSink, BreachError> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp.path)
            .map_err(|source| io_error("creating", &temp.path, source))?;
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        writer
            .write_all(&[0u8; HEADER_LEN])
            .map_err(|source| io_error("writing", &temp.path, source))?;
        Ok(RecordSink {
            writer,
            temp,
            sha256: Sha256::new(),
            hist: vec![0u32; 1 << HIST_BITS],
            records: 0,
            last: None,
        })
    }

    fn write(&mut self, rec: &Rec) -> Result<(), BreachError> {
        debug_assert!(self.last.is_none_or(|last| last < rec.hash));
        let bytes = encode_record(&rec.hash, rec.count);
        self.writer
            .write_all(&bytes)
            .map_err(|source| io_error("writing", &self.temp.path, source))?;
        self.sha256.update(bytes);
        let slot = &mut self.hist[bucket_of(&rec.hash, HIST_BITS)];
        *slot = slot.checked_add(1).ok_or_else(|| BreachError::Input {
            path: self.temp.path.clone(),
            message: "more than 4 billion hashes share one 22-bit prefix; this is not a hash list".into(),
        })?;
        self.records += 1;
        self.last = Some(rec.hash);
        Ok(())
    }

    /// Flushes the records so far and hands the file over as a sorted run.
    fn into_run(self) -> Result<Run, BreachError> {
        let RecordSink {
            writer, temp, records, ..
        } = self;
        writer
            .into_inner()
            .map_err(|e| io_error("writing", &temp.path, e.into_error()))?;
        Ok(Run {
            temp,
            offset: HEADER_LEN as u64,
            records,
        })
    }

    /// Appends the fan-out table, writes the header, syncs, and renames over `output`.
    fn finish(self, bits: Option<u32>, output: &Path) -> Result<(u64, u32), BreachError> {
        let RecordSink {
            writer,
            mut temp,
            sha256,
            hist,
            records,
            ..
        } = self;
        let path = temp.path.clone();
        let werr = |source| io_error("writing", &path, source);
        let bits = bits.unwrap_or_else(|| auto_bits(records)).min(HIST_BITS);
        let per_bucket = 1usize << (HIST_BITS - bits);
        let mut table = Vec::with_capacity(((1usize << bits) + 1) * 8);
        let mut start = 0u64;
        table.extend_from_slice(&start.to_le_bytes());
        for group in hist.chunks_exact(per_bucket) {
            start += group.iter().map(|&c| u64::from(c)).sum::<u64>();
            table.extend_from_slice(&start.to_le_bytes());
        }
        let mut writer = writer;
        writer.write_all(&table).map_err(werr)?;
        let file = writer.into_inner().map_err(|e| werr(e.into_error()))?;
        let fanout_offset = HEADER_LEN as u64 + records * RECORD_LEN as u64;
        let size = fanout_offset + table.len() as u64;
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&VERSION.to_le_bytes());
        header[12..16].copy_from_slice(&(RECORD_LEN as u32).to_le_bytes());
        header[16..20].copy_from_slice(&bits.to_le_bytes());
        header[24..32].copy_from_slice(&records.to_le_bytes());
        header[32..40].copy_from_slice(&(HEADER_LEN as u64).to_le_bytes());
        header[40..48].copy_from_slice(&fanout_offset.to_le_bytes());
        header[48..56].copy_from_slice(&size.to_le_bytes());
        let records_sha256: [u8; 32] = sha256.finalize().into();
        header[56..88].copy_from_slice(&records_sha256);
        let checksum = header_checksum(&header, &table);
        header[88..120].copy_from_slice(&checksum);
        file.write_all_at(&header, 0).map_err(werr)?;
        file.sync_all().map_err(werr)?;
        drop(file);
        fs::rename(&path, output).map_err(|source| io_error("renaming the new index onto", output, source))?;
        temp.keep = true;
        if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Makes the rename durable; a failure here leaves a complete index, so it is not fatal.
            if let Ok(dir) = File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        Ok((size, bits))
    }
}

fn auto_bits(records: u64) -> u32 {
    let buckets = records.div_ceil(TARGET_BUCKET).max(1);
    let bits = 64 - (buckets - 1).leading_zeros();
    bits.min(HIST_BITS)
}

/// A sorted, duplicate-free run of records in a temporary file.
struct Run {
    temp: TempPath,
    offset: u64,
    records: u64,
}

enum Stage {
    /// Input sorted so far: records go straight into the index file.
    Direct {
        sink: Box<RecordSink>,
        pending: Option<Rec>,
    },
    /// Input out of order: records are sorted in memory and spilled as runs.
    Sorting { runs: Vec<Run>, buf: Vec<Rec> },
    /// An earlier error left the builder unusable.
    Failed,
}

/// Builds an index from records pushed one by one, in any order. Dropping it without
/// [`IndexBuilder::finish`] removes its temporary files and leaves `output` untouched.
pub struct IndexBuilder {
    output: PathBuf,
    dir: PathBuf,
    options: BuildOptions,
    started: Instant,
    stage: Stage,
    input_records: u64,
    presorted: bool,
}

impl std::fmt::Debug for IndexBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexBuilder")
            .field("output", &self.output)
            .field("input_records", &self.input_records)
            .finish_non_exhaustive()
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl IndexBuilder {
    /// Starts a build of `output` with default options.
    pub fn new(output: &Path) -> Result<IndexBuilder, BreachError> {
        IndexBuilder::with_options(output, BuildOptions::default())
    }

    /// Starts a build of `output`. Creates its temporary file beside `output` at once, so that
    /// an unwritable directory is reported before any input is read.
    pub fn with_options(output: &Path, options: BuildOptions) -> Result<IndexBuilder, BreachError> {
        if options.fanout_bits.is_some_and(|b| b > HIST_BITS) || options.run_records == 0 {
            return Err(BreachError::Input {
                path: output.to_path_buf(),
                message: format!("build options out of range: fan-out bits at most {HIST_BITS}, run size above 0"),
            });
        }
        let dir = match output.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut builder = IndexBuilder {
            output: output.to_path_buf(),
            dir,
            options,
            started: Instant::now(),
            stage: Stage::Failed,
            input_records: 0,
            presorted: true,
        };
        let sink = RecordSink::create(builder.temp_path("tmp"))?;
        builder.stage = Stage::Direct {
            sink: Box::new(sink),
            pending: None,
        };
        Ok(builder)
    }

    fn temp_path(&self, kind: &str) -> TempPath {
        let name = self
            .output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!(".{name}.{}.{n}.{kind}", std::process::id()));
        TempPath { path, keep: false }
    }

    /// Records accepted so far.
    pub fn input_records(&self) -> u64 {
        self.input_records
    }

    /// Adds one hash; a count of 0 (range-API padding) is ignored.
    pub fn push(&mut self, hash: &[u8; 20], count: u32) -> Result<(), BreachError> {
        if count == 0 {
            return Ok(());
        }
        self.input_records += 1;
        let rec = Rec { hash: *hash, count };
        match &mut self.stage {
            Stage::Direct { sink, pending } => match pending {
                None => *pending = Some(rec),
                Some(p) if p.hash == rec.hash => p.count = p.count.max(rec.count),
                Some(p) if p.hash < rec.hash => {
                    let previous = *p;
                    *p = rec;
                    sink.write(&previous)?;
                }
                Some(_) => return self.start_sorting(rec),
            },
            Stage::Sorting { buf, .. } => {
                if buf.len() == buf.capacity() {
                    // Grow by doubling but never past the run size, which bounds the memory.
                    let more = buf.len().max(1).min(self.options.run_records - buf.len());
                    buf.reserve_exact(more);
                }
                buf.push(rec);
                if buf.len() >= self.options.run_records {
                    self.spill()?;
                }
            }
            Stage::Failed => return Err(self.failed()),
        }
        Ok(())
    }

    fn failed(&self) -> BreachError {
        BreachError::Input {
            path: self.output.clone(),
            message: "the index build failed earlier".into(),
        }
    }

    /// The first out-of-order record: what was streamed so far becomes the first run.
    fn start_sorting(&mut self, rec: Rec) -> Result<(), BreachError> {
        self.presorted = false;
        let Stage::Direct { mut sink, pending } = std::mem::replace(&mut self.stage, Stage::Failed) else {
            return Err(self.failed());
        };
        if let Some(p) = pending {
            sink.write(&p)?;
        }
        let run = sink.into_run()?;
        let mut buf = Vec::with_capacity(self.options.run_records.min(1 << 20));
        buf.push(rec);
        self.stage = Stage::Sorting { runs: vec![run], buf };
        Ok(())
    }

    /// Sorts the in-memory records and writes them as a run.
    fn spill(&mut self) -> Result<(), BreachError> {
        let temp = self.temp_path("run");
        let Stage::Sorting { runs, buf } = &mut self.stage else {
            return Err(self.failed());
        };
        buf.sort_unstable_by_key(|a| a.hash);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp.path)
            .map_err(|source| io_error("creating", &temp.path, source))?;
        let werr = |source| io_error("writing", &temp.path, source);
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        let mut records = 0u64;
        let mut i = 0;
        while i < buf.len() {
            let mut rec = buf[i];
            i += 1;
            while i < buf.len() && buf[i].hash == rec.hash {
                rec.count = rec.count.max(buf[i].count);
                i += 1;
            }
            writer.write_all(&encode_record(&rec.hash, rec.count)).map_err(werr)?;
            records += 1;
        }
        writer.into_inner().map_err(|e| werr(e.into_error()))?;
        buf.clear();
        runs.push(Run {
            temp,
            offset: 0,
            records,
        });
        Ok(())
    }

    /// Completes the index and renames it over the output.
    pub fn finish(mut self) -> Result<IndexStats, BreachError> {
        if matches!(self.stage, Stage::Sorting { .. }) {
            self.spill()?;
        }
        let sink = match std::mem::replace(&mut self.stage, Stage::Failed) {
            Stage::Direct { mut sink, pending } => {
                if let Some(p) = pending {
                    sink.write(&p)?;
                }
                *sink
            }
            Stage::Sorting { runs, .. } => {
                let mut sink = RecordSink::create(self.temp_path("tmp"))?;
                merge(runs, &mut sink)?;
                sink
            }
            Stage::Failed => return Err(self.failed()),
        };
        let records = sink.records;
        let (bytes, fanout_bits) = sink.finish(self.options.fanout_bits, &self.output)?;
        Ok(IndexStats {
            records,
            bytes,
            seconds: self.started.elapsed().as_secs_f64(),
            input_records: self.input_records,
            duplicates: self.input_records - records,
            presorted: self.presorted,
            fanout_bits,
        })
    }
}

/// Reads one run sequentially.
struct RunReader {
    reader: BufReader<File>,
    remaining: u64,
    path: PathBuf,
}

impl RunReader {
    fn open(run: &Run, buffer: usize) -> Result<RunReader, BreachError> {
        let path = run.temp.path.clone();
        let mut file = File::open(&path).map_err(|source| io_error("reading", &path, source))?;
        file.seek(SeekFrom::Start(run.offset))
            .map_err(|source| io_error("reading", &path, source))?;
        Ok(RunReader {
            reader: BufReader::with_capacity(buffer, file),
            remaining: run.records,
            path,
        })
    }

    fn next(&mut self) -> Result<Option<Rec>, BreachError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        self.remaining -= 1;
        let mut bytes = [0u8; RECORD_LEN];
        self.reader
            .read_exact(&mut bytes)
            .map_err(|source| io_error("reading", &self.path, source))?;
        let (hash, count) = super::decode_record(&bytes);
        Ok(Some(Rec { hash, count }))
    }
}

/// K-way merge of sorted runs into the sink, keeping the largest count of equal hashes. The
/// runs' files are removed when `runs` drops at the end.
fn merge(runs: Vec<Run>, sink: &mut RecordSink) -> Result<(), BreachError> {
    // Read buffers shrink with many runs so that the merge's memory stays near 64 MiB.
    let buffer = ((64usize << 20) / runs.len().max(1)).clamp(64 << 10, 4 << 20);
    let mut readers = runs
        .iter()
        .map(|run| RunReader::open(run, buffer))
        .collect::<Result<Vec<_>, _>>()?;
    let mut counts = vec![0u32; readers.len()];
    let mut heap = BinaryHeap::with_capacity(readers.len());
    for (i, reader) in readers.iter_mut().enumerate() {
        if let Some(rec) = reader.next()? {
            counts[i] = rec.count;
            heap.push(Reverse((rec.hash, i)));
        }
    }
    let mut pending: Option<Rec> = None;
    while let Some(Reverse((hash, i))) = heap.pop() {
        let rec = Rec { hash, count: counts[i] };
        if let Some(next) = readers[i].next()? {
            counts[i] = next.count;
            heap.push(Reverse((next.hash, i)));
        }
        match &mut pending {
            Some(p) if p.hash == rec.hash => p.count = p.count.max(rec.count),
            Some(p) => {
                sink.write(p)?;
                *p = rec;
            }
            None => pending = Some(rec),
        }
    }
    if let Some(p) = pending {
        sink.write(&p)?;
    }
    drop(readers);
    drop(runs);
    Ok(())
}
