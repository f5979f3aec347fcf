//! Verifying audit logs: every record's hash and sequence, across rotated segments, from the
//! genesis or from an anchor.

use super::{hash_of, AuditEvent, AuditRecord, DEFAULT_MAX_RECORD_BYTES, GENESIS};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Whether the whole chain verified.
    pub ok: bool,
    /// Records that verified.
    pub records: u64,
    /// The first sequence number that does not verify.
    pub first_bad_seq: Option<u64>,
    /// What is wrong there, with file and line.
    pub problem: Option<String>,
    /// Sequence number of the last good record (anchor it externally).
    pub last_seq: u64,
    /// Hash of the last good record.
    pub last_hash: String,
    /// Whether the last record is a `closed` record: the trail was shut down cleanly and
    /// nothing was handed off after it. `false` for a log still being written, or cut short.
    #[serde(default)]
    pub closed: bool,
}

/// A point of a chain known from outside the log: a record's `seq` and `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// The record's sequence number.
    pub seq: u64,
    /// The record's hash.
    pub hash: String,
}

impl std::str::FromStr for Anchor {
    type Err = Error;
    /// `<seq>:<hash>`, as `ambit audit verify` prints it.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid_request(format!(
                "malformed anchor `{}`: expected `<seq>:<hash>`",
                crate::error::user_text(s)
            ))
        };
        let (seq, hash) = s.split_once(':').ok_or_else(bad)?;
        let seq = seq.parse::<u64>().map_err(|_| bad())?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Self { seq, hash: hash.to_ascii_lowercase() })
    }
}

/// What [`verify_opts`] checks beyond the chain itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Longest line accepted (default [`DEFAULT_MAX_RECORD_BYTES`]).
    pub max_record_bytes: usize,
    /// Where the files start: the last record of the archived part before them. Without it
    /// the first record must be the chain's genesis (`seq` 1, `prev` [`GENESIS`]), so a log
    /// whose head was deleted does not verify.
    pub after: Option<Anchor>,
    /// A record known to exist (a checkpoint taken earlier): the log must contain it, so a log
    /// cut short before it does not verify.
    pub checkpoint: Option<Anchor>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self { max_record_bytes: DEFAULT_MAX_RECORD_BYTES, after: None, checkpoint: None }
    }
}

impl VerifyOptions {
    /// Sets [`VerifyOptions::max_record_bytes`].
    #[must_use]
    pub fn max_record_bytes(mut self, bytes: usize) -> Self {
        self.max_record_bytes = bytes;
        self
    }
    /// Sets [`VerifyOptions::after`].
    #[must_use]
    pub fn after(mut self, anchor: Anchor) -> Self {
        self.after = Some(anchor);
        self
    }
    /// Sets [`VerifyOptions::checkpoint`].
    #[must_use]
    pub fn checkpoint(mut self, anchor: Anchor) -> Self {
        self.checkpoint = Some(anchor);
        self
    }
}

/// Verifies a hash chain across `files`, in order (rotated segments first), from its genesis
/// record. Lines longer than [`DEFAULT_MAX_RECORD_BYTES`] fail verification. For a log whose
/// older segments were archived, or to check against a checkpoint, see [`verify_opts`].
///
/// # Errors
/// `AMBIT_IO` when a file cannot be read.
pub fn verify(files: &[PathBuf]) -> Result<VerifyReport> {
    verify_with(files, DEFAULT_MAX_RECORD_BYTES)
}

/// [`verify`] for a log written with a larger [`AuditBuilder::max_record_bytes`]. Reads one
/// line at a time, never more than `max_record_bytes` of it, whatever the file holds.
///
/// # Errors
/// `AMBIT_IO` when a file cannot be read.
pub fn verify_with(files: &[PathBuf], max_record_bytes: usize) -> Result<VerifyReport> {
    verify_opts(files, &VerifyOptions::default().max_record_bytes(max_record_bytes))
}

/// [`verify`] with anchors at either end (see [`VerifyOptions`]).
///
/// # Errors
/// `AMBIT_IO` when a file cannot be read.
pub fn verify_opts(files: &[PathBuf], options: &VerifyOptions) -> Result<VerifyReport> {
    let mut report = verify_chain(files, options)?;
    if let (true, Some(c)) = (report.ok, &options.checkpoint) {
        if report.last_seq < c.seq {
            report.ok = false;
            report.first_bad_seq = Some(report.last_seq.saturating_add(1));
            report.problem = Some(format!(
                "the log ends at record {} before the checkpoint at record {}: it was cut short",
                report.last_seq, c.seq
            ));
        }
    }
    Ok(report)
}

pub(crate) fn verify_chain(files: &[PathBuf], options: &VerifyOptions) -> Result<VerifyReport> {
    let max_record_bytes = options.max_record_bytes;
    let mut report = VerifyReport {
        ok: true,
        records: 0,
        first_bad_seq: None,
        problem: None,
        last_seq: 0,
        last_hash: String::new(),
        closed: false,
    };
    let mut expected: Option<(u64, String)> = match &options.after {
        Some(a) => Some((a.seq, a.hash.clone())),
        None => Some((0, GENESIS.to_owned())),
    };
    let mut line = Vec::new();
    for path in files {
        let file = File::open(path).map_err(|e| Error::io(path, &e))?;
        let mut reader = BufReader::new(file);
        for number in 1.. {
            let next_seq = expected.as_ref().map_or(1, |(s, _)| s.saturating_add(1));
            let fail = |report: &mut VerifyReport, why: String| {
                report.ok = false;
                report.first_bad_seq = Some(next_seq);
                report.problem = Some(format!("{}:{number}: {why}", path.display()));
            };
            line.clear();
            let limit = (max_record_bytes as u64).saturating_add(1);
            let n = (&mut reader).take(limit).read_until(b'\n', &mut line).map_err(|e| Error::io(path, &e))?;
            if n == 0 {
                break;
            }
            if line.last() != Some(&b'\n') {
                if n as u64 == limit {
                    fail(&mut report, format!("record longer than the limit of {max_record_bytes} bytes"));
                } else {
                    fail(&mut report, format!("torn last record ({n} bytes without a newline)"));
                }
                return Ok(report);
            }
            line.pop();
            if line.is_empty() {
                continue;
            }
            let Ok(value) = serde_json::from_slice::<Value>(&line) else {
                fail(&mut report, "not a json record".into());
                return Ok(report);
            };
            let Ok(record) = serde_json::from_value::<AuditRecord>(value.clone()) else {
                fail(&mut report, "not an audit record".into());
                return Ok(report);
            };
            if let Some((seq, hash)) = &expected {
                if seq.checked_add(1) != Some(record.seq) {
                    fail(&mut report, format!("sequence {} where {next_seq} was expected", record.seq));
                    return Ok(report);
                }
                if &record.prev != hash {
                    fail(&mut report, "does not chain to the previous record".into());
                    return Ok(report);
                }
            }
            let mut without = value;
            if let Value::Object(map) = &mut without {
                map.remove("hash");
            }
            if hash_of(&record.prev, &without) != record.hash {
                report.ok = false;
                report.first_bad_seq = Some(record.seq);
                report.problem = Some(format!("{}:{number}: record {} was altered", path.display(), record.seq));
                return Ok(report);
            }
            if let Some(c) = &options.checkpoint {
                if record.seq == c.seq && record.hash != c.hash {
                    report.ok = false;
                    report.first_bad_seq = Some(record.seq);
                    report.problem =
                        Some(format!("{}:{number}: record {} is not the checkpointed one", path.display(), record.seq));
                    return Ok(report);
                }
            }
            report.records += 1;
            report.last_seq = record.seq;
            report.last_hash.clone_from(&record.hash);
            report.closed = matches!(record.event, AuditEvent::Closed { .. });
            expected = Some((record.seq, record.hash));
        }
    }
    Ok(report)
}
