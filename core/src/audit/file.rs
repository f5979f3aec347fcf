//! The rotating, hash-chained JSONL file sink: appends, rotation, and finding where a log ends
//! (also after a crash mid-write).

use super::{AuditRecord, AuditSink};
use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// When the JSONL file is flushed to the operating system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// After every record.
    EveryRecord,
    /// At most this long after a record.
    Interval(Duration),
}

/// Options for the hash-chained JSONL file.
#[derive(Debug, Clone)]
pub struct FileOptions {
    /// When to flush.
    pub durability: Durability,
    /// Rotate when the active file grows past this many bytes (`None`: never).
    pub rotate_bytes: Option<u64>,
}

impl Default for FileOptions {
    fn default() -> Self {
        Self { durability: Durability::EveryRecord, rotate_bytes: None }
    }
}

pub(crate) struct Tail {
    pub(crate) last: Option<(u64, String)>,
    pub(crate) torn_bytes: u64,
}

/// The hash-chained JSONL file, rotating by size: the active file keeps its name, full
/// segments become `<name>.<n>` (n = 1, 2, ...), and the chain continues across them.
pub(crate) struct FileSink {
    path: PathBuf,
    out: BufWriter<File>,
    size: u64,
    options: FileOptions,
    last_flush: Instant,
}

impl FileSink {
    pub(crate) fn open(path: PathBuf, options: FileOptions, max_record_bytes: usize) -> Result<(Self, Tail)> {
        let mut tail = Tail { last: None, torn_bytes: 0 };
        let mut size = 0;
        if path.exists() {
            let end = LogEnd::read(&path, max_record_bytes)?;
            tail.torn_bytes = end.len - end.complete;
            tail.last = match end.last {
                Some(last) => Some(last),
                None => last_of_rotated(&path, max_record_bytes)?,
            };
            if tail.torn_bytes > 0 {
                let f = OpenOptions::new().write(true).open(&path).map_err(|e| Error::io(&path, &e))?;
                f.set_len(end.complete).map_err(|e| Error::io(&path, &e))?;
            }
            size = end.complete;
        }
        let mut file = OpenOptions::new().create(true).append(true).open(&path).map_err(|e| Error::io(&path, &e))?;
        file.seek(SeekFrom::End(0)).map_err(|e| Error::io(&path, &e))?;
        Ok((Self { path, out: BufWriter::new(file), size, options, last_flush: Instant::now() }, tail))
    }

    fn rotate(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::io(&self.path, &e))?;
        let mut n = 1;
        while segment(&self.path, n).exists() {
            n += 1;
        }
        std::fs::rename(&self.path, segment(&self.path, n)).map_err(|e| Error::io(&self.path, &e))?;
        let file =
            OpenOptions::new().create(true).append(true).open(&self.path).map_err(|e| Error::io(&self.path, &e))?;
        self.out = BufWriter::new(file);
        self.size = 0;
        Ok(())
    }
}

pub(crate) fn segment(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Every segment of a rotated log, oldest first, then the active file.
pub fn segments(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut n = 1;
    while segment(path, n).exists() {
        out.push(segment(path, n));
        n += 1;
    }
    if path.exists() {
        out.push(path.to_path_buf());
    }
    out
}

pub(crate) fn last_of_rotated(path: &Path, max_record_bytes: usize) -> Result<Option<(u64, String)>> {
    let segs = segments(path);
    let Some(last) = segs.iter().rev().find(|p| p.as_path() != path) else { return Ok(None) };
    Ok(LogEnd::read(last, max_record_bytes)?.last)
}

/// The end of a log file, read backwards: only the last record is parsed, and no more than
/// one record's worth of bytes is held, however long the file.
pub(crate) struct LogEnd {
    /// File length.
    len: u64,
    /// Length up to and including the last newline.
    complete: u64,
    /// `seq` and `hash` of the last complete record.
    last: Option<(u64, String)>,
}

impl LogEnd {
    fn read(path: &Path, max_record_bytes: usize) -> Result<Self> {
        let mut file = File::open(path).map_err(|e| Error::io(path, &e))?;
        let len = file.metadata().map_err(|e| Error::io(path, &e))?.len();
        let io = |e: std::io::Error| Error::io(path, &e);
        let complete = newline_before(&mut file, len, None).map_err(io)?.map_or(0, |i| i + 1);
        let mut end = complete.saturating_sub(1);
        let limit = (max_record_bytes as u64).saturating_add(1);
        while end > 0 {
            let start = newline_before(&mut file, end, Some(limit)).map_err(io)?.map_or(0, |i| i + 1);
            if end - start > limit {
                return Err(Error::audit(format!(
                    "cannot continue `{}`: its last record is longer than the limit of {max_record_bytes} bytes",
                    path.display()
                )));
            }
            if start == end {
                end = start.saturating_sub(1);
                continue;
            }
            let mut line = vec![0; usize::try_from(end - start).unwrap_or(0)];
            file.seek(SeekFrom::Start(start)).map_err(io)?;
            file.read_exact(&mut line).map_err(io)?;
            let record: AuditRecord = serde_json::from_slice(&line).map_err(|e| {
                Error::audit(format!("cannot continue `{}`: last record is unreadable: {e}", path.display()))
            })?;
            return Ok(Self { len, complete, last: Some((record.seq, record.hash)) });
        }
        Ok(Self { len, complete, last: None })
    }
}

/// Offset of the last `\n` before `end`, scanning back at most `max_scan + 1` bytes: `None`
/// when there is none (with `max_scan`, the caller sees a line longer than the limit).
pub(crate) fn newline_before(file: &mut File, end: u64, max_scan: Option<u64>) -> std::io::Result<Option<u64>> {
    let mut buf = [0u8; 8192];
    let mut pos = end;
    let floor = max_scan.map_or(0, |m| end.saturating_sub(m.saturating_add(1)));
    while pos > floor {
        let n = (pos - floor).min(buf.len() as u64);
        pos -= n;
        let chunk = &mut buf[..usize::try_from(n).unwrap_or(0)];
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|b| *b == b'\n') {
            return Ok(Some(pos + i as u64));
        }
    }
    Ok(None)
}

impl AuditSink for FileSink {
    fn write(&mut self, record: &AuditRecord) -> Result<()> {
        let mut line = serde_json::to_string(record).map_err(|e| Error::audit(e.to_string()))?;
        line.push('\n');
        if let Some(limit) = self.options.rotate_bytes {
            if self.size > 0 && self.size + line.len() as u64 > limit {
                self.rotate()?;
            }
        }
        self.out.write_all(line.as_bytes()).map_err(|e| Error::io(&self.path, &e))?;
        self.size += line.len() as u64;
        match self.options.durability {
            Durability::EveryRecord => self.flush(),
            Durability::Interval(d) if self.last_flush.elapsed() >= d => self.flush(),
            Durability::Interval(_) => Ok(()),
        }
    }

    fn flush(&mut self) -> Result<()> {
        self.last_flush = Instant::now();
        self.out.flush().map_err(|e| Error::io(&self.path, &e))
    }
}
