//! The audit trail: every decision and lifecycle event becomes a record, handed off without
//! blocking on I/O to a writer thread that numbers and hash-chains it and feeds the sinks (a
//! ring buffer, a JSONL file, a callback).
//!
//! Each record carries `seq`, the previous record's hash (`prev`) and its own `hash`: the
//! lowercase hex SHA-256 of the UTF-8 bytes of `prev` followed by the canonical JSON of the
//! record without its `hash` member. The canonical JSON is RFC 8785 (JCS): members sorted by
//! key as UTF-16 code units, no whitespace, minimal string escapes, except that integers are
//! always written as exact decimals (see `docs/audit.md`). [`verify`] recomputes the chain
//! across files and names the first bad sequence number; a chain must start at its genesis
//! record unless an anchor says where an archived part ended.

use crate::decision::Decision;
use crate::error::{Error, IoError, Result};
use serde_json::Value;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod chain;
mod file;
mod record;
mod verify;

pub use chain::GENESIS;
pub(crate) use chain::{hash_of, hex, record_hash};
pub(crate) use file::FileSink;
pub use file::{segments, Durability, FileOptions};
pub(crate) use record::decision_event;
pub use record::{AuditEvent, AuditRecord};
pub use verify::{verify, verify_opts, verify_with, Anchor, VerifyOptions, VerifyReport};
/// The largest audit queue or ring buffer, in records: 16,777,216.
pub const MAX_CAPACITY: usize = 1 << 24;
/// The largest [`AuditBuilder::max_record_bytes`]: 1 GiB.
pub const MAX_RECORD_BYTES_LIMIT: u64 = 1 << 30;

/// Default of [`AuditBuilder::max_record_bytes`]: 1 MiB.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;

/// Where records go. Sinks are called from the writer thread only, in order.
pub trait AuditSink: Send {
    /// Takes one record.
    ///
    /// # Errors
    /// `AMBIT_AUDIT` when the record cannot be kept.
    fn write(&mut self, record: &AuditRecord) -> Result<()>;
    /// Makes everything written so far durable.
    ///
    /// # Errors
    /// `AMBIT_AUDIT` when it cannot.
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

/// What to do when the queue to the writer thread is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    /// Wait for room: never lose a record (default).
    #[default]
    Block,
    /// Drop the record and count it; the count is exposed and itself audited.
    Drop,
}

impl std::str::FromStr for Overflow {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "block" => Ok(Self::Block),
            "drop" => Ok(Self::Drop),
            other => Err(Error::config(format!(
                "unknown audit overflow policy `{}`: expected `block` or `drop`",
                crate::error::user_text(other)
            ))),
        }
    }
}

/// Configures an [`Audit`] trail.
pub struct AuditBuilder {
    capacity: usize,
    overflow: Overflow,
    include_context: bool,
    memory: usize,
    file: Option<(PathBuf, FileOptions)>,
    sinks: Vec<Box<dyn AuditSink>>,
    max_record_bytes: usize,
}

impl std::fmt::Debug for AuditBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditBuilder")
            .field("capacity", &self.capacity)
            .field("overflow", &self.overflow)
            .finish_non_exhaustive()
    }
}

impl Default for AuditBuilder {
    fn default() -> Self {
        Self {
            capacity: 65_536,
            overflow: Overflow::Block,
            include_context: false,
            memory: 1024,
            file: None,
            sinks: Vec::new(),
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

impl AuditBuilder {
    /// Queue length between the decision path and the writer thread (default 65,536).
    #[must_use]
    /// At most [`MAX_CAPACITY`]; a larger queue is refused by [`AuditBuilder::build`].
    pub fn capacity(mut self, records: usize) -> Self {
        self.capacity = records.max(1);
        self
    }
    /// What to do when the queue is full (default [`Overflow::Block`]).
    #[must_use]
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }
    /// Keep the request context in decision records (default: only its digest, because
    /// contexts can hold personal data).
    #[must_use]
    pub fn include_context(mut self, yes: bool) -> Self {
        self.include_context = yes;
        self
    }
    /// Largest record kept whole, in bytes of its JSON line (default
    /// [`DEFAULT_MAX_RECORD_BYTES`], at least 1 KiB). A larger record (a decision with a huge
    /// opted-in context, say) is kept as an [`AuditEvent::Oversize`] record instead.
    #[must_use]
    pub fn max_record_bytes(mut self, bytes: usize) -> Self {
        self.max_record_bytes = bytes.max(1024);
        self
    }
    /// Size of the in-memory ring buffer behind [`Audit::recent`] (default 1,024; 0 turns it off).
    #[must_use]
    pub fn memory(mut self, records: usize) -> Self {
        self.memory = records;
        self
    }
    /// Writes the hash-chained JSONL log at `path`, continuing the chain if it exists.
    #[must_use]
    pub fn file(mut self, path: impl AsRef<Path>, options: FileOptions) -> Self {
        self.file = Some((path.as_ref().to_path_buf(), options));
        self
    }
    /// Calls `f` with every record, from the writer thread.
    #[must_use]
    pub fn callback(self, f: impl FnMut(&AuditRecord) + Send + 'static) -> Self {
        self.sink(CallbackSink(Box::new(f)))
    }
    /// Adds any sink.
    #[must_use]
    pub fn sink(mut self, sink: impl AuditSink + 'static) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// Opens the file (if any) and starts the writer thread.
    ///
    /// # Errors
    /// `AMBIT_IO` when the log cannot be opened, `AMBIT_AUDIT` when an existing log's last
    /// complete record cannot be read.
    pub fn build(self) -> Result<Audit> {
        if self.capacity > MAX_CAPACITY {
            return Err(Error::audit(format!(
                "an audit queue of {} records is more than the limit of {MAX_CAPACITY}",
                self.capacity
            )));
        }
        if self.memory > MAX_CAPACITY {
            return Err(Error::audit(format!(
                "an audit ring buffer of {} records is more than the limit of {MAX_CAPACITY}",
                self.memory
            )));
        }
        if u64::try_from(self.max_record_bytes).map_or(true, |b| b > MAX_RECORD_BYTES_LIMIT) {
            return Err(Error::audit(format!(
                "an audit record limit of {} bytes is more than the limit of {MAX_RECORD_BYTES_LIMIT}",
                self.max_record_bytes
            )));
        }
        let memory = Arc::new(Mutex::new(VecDeque::with_capacity(self.memory.min(4096))));
        let mut sinks = self.sinks;
        let (mut seq, mut prev) = (0, GENESIS.to_owned());
        let mut first = Vec::new();
        if let Some((path, options)) = self.file {
            let (sink, tail) = FileSink::open(path, options, self.max_record_bytes)?;
            if let Some((s, h)) = tail.last {
                seq = s;
                prev = h;
            }
            if tail.torn_bytes > 0 {
                first.push(AuditEvent::TornTailDiscarded { bytes: tail.torn_bytes });
            }
            sinks.insert(0, Box::new(sink));
        }
        let (tx, rx) = sync_channel::<Message>(self.capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let mut writer = Writer {
            seq,
            prev,
            sinks,
            memory: Arc::clone(&memory),
            memory_cap: self.memory,
            include_context: self.include_context,
            dropped: Arc::clone(&dropped),
            dropped_reported: 0,
            closed: false,
            errors: Arc::new(AtomicU64::new(0)),
            max_record_bytes: self.max_record_bytes,
        };
        let errors = Arc::clone(&writer.errors);
        for event in first {
            writer.append(event, crate::clock::system_millis());
        }
        let thread = std::thread::Builder::new()
            .name("ambit-audit".into())
            .spawn(move || writer.run(&rx))
            .map_err(|e| Error::from(IoError::new(Path::new("ambit-audit"), &e)))?;
        let writer = thread.thread().id();
        Ok(Audit {
            tx: Some(tx),
            thread: Some(thread),
            writer,
            closed: std::sync::atomic::AtomicBool::new(false),
            epoch: crate::fork::fork_epoch(),
            overflow: self.overflow,
            dropped,
            errors,
            memory,
        })
    }
}

enum Message {
    Close,
    Event(Box<AuditEvent>, u64),
    Decision(Box<Decision>, Value, u64),
    Flush(SyncSender<()>),
}

/// A running audit trail. Dropping it flushes and stops the writer.
pub struct Audit {
    tx: Option<SyncSender<Message>>,
    thread: Option<JoinHandle<()>>,
    /// The writer thread: a sink (a callback) that re-enters never waits on itself.
    writer: std::thread::ThreadId,
    closed: std::sync::atomic::AtomicBool,
    /// The fork epoch it was built under (see [`crate::after_fork`]): in a fork's child the
    /// writer thread does not exist, so the trail is closed there, never waited on.
    epoch: u64,
    overflow: Overflow,
    dropped: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
    memory: Arc<Mutex<VecDeque<AuditRecord>>>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("overflow", &self.overflow)
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl Audit {
    /// Starts a builder.
    pub fn builder() -> AuditBuilder {
        AuditBuilder::default()
    }

    fn on_writer(&self) -> bool {
        std::thread::current().id() == self.writer
    }

    /// Whether this is a fork's child of the process that built it: its writer thread did not
    /// survive the fork.
    pub(crate) fn forked(&self) -> bool {
        self.epoch != crate::fork::fork_epoch()
    }

    fn send(&self, message: Message) {
        if self.is_closed() {
            self.dropped.fetch_add(1, Ordering::SeqCst);
            return;
        }
        self.send_always(message);
    }

    fn send_always(&self, message: Message) {
        let Some(tx) = self.tx.as_ref().filter(|_| !self.forked()) else { return };
        // a sink on the writer thread that decides again must not wait for room the writer
        // itself would have to make
        if self.overflow == Overflow::Drop || self.on_writer() {
            if let Err(TrySendError::Full(_)) = tx.try_send(message) {
                self.dropped.fetch_add(1, Ordering::SeqCst);
            }
        } else {
            let _ = tx.send(message);
        }
    }

    /// Whether [`Audit::close`] was called, or this is a fork's child of the process that
    /// built it (no writer thread there): an authorizer whose trail is closed refuses to decide.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst) || self.forked()
    }

    /// Why an authorizer with this trail refuses to decide once [`Audit::is_closed`].
    pub(crate) fn closed_error(&self) -> Error {
        Error::audit(if self.forked() {
            "this authorizer was built before a fork and its audit writer is not in this process: \
             build the authorizer in the process that decides"
        } else {
            "the audit trail is closed: no decision can be recorded"
        })
    }

    /// Writes a final `closed` record and flushes every sink; records handed off later are
    /// refused and counted as dropped. Idempotent. Called on drop, and by the bindings when
    /// the interpreter or process exits.
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::SeqCst) {
            self.send_always(Message::Close);
            self.flush();
        }
    }

    pub(crate) fn decision(&self, decision: &Decision, context: &Value) {
        self.send(Message::Decision(Box::new(decision.clone()), context.clone(), crate::clock::system_millis()));
    }

    pub(crate) fn request_failed(&self, request: &crate::Request, error: &Error) {
        let cut = |s: &str| {
            let mut end = s.len().min(256);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s[..end].to_owned()
        };
        self.event(AuditEvent::RequestFailed {
            code: error.code().to_owned(),
            error: cut(&error.to_string()),
            principal: cut(request.principal()),
            action: cut(request.action()),
            resource: cut(request.resource()),
        });
    }

    pub(crate) fn event(&self, event: AuditEvent) {
        self.send(Message::Event(Box::new(event), crate::clock::system_millis()));
    }

    /// Waits until every record handed off so far is written and flushed by every sink.
    pub fn flush(&self) {
        let Some(tx) = self.tx.as_ref().filter(|_| !self.forked()) else { return };
        if self.on_writer() {
            // called from a sink: everything before this record is already written
            return;
        }
        let (done_tx, done_rx) = sync_channel(1);
        if tx.send(Message::Flush(done_tx)).is_ok() {
            let _ = done_rx.recv();
        }
    }

    /// Records dropped because the queue was full (overflow policy `drop`).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::SeqCst)
    }

    /// Sink write failures so far.
    pub fn sink_errors(&self) -> u64 {
        self.errors.load(Ordering::SeqCst)
    }

    /// The last `n` records from the in-memory ring buffer, oldest first. Call
    /// [`Audit::flush`] first to include everything handed off so far.
    pub fn recent(&self, n: usize) -> Vec<AuditRecord> {
        let Ok(buf) = self.memory.lock() else { return Vec::new() };
        buf.iter().skip(buf.len().saturating_sub(n)).cloned().collect()
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        self.close();
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            // dropped from a sink (the last reference held by a callback): the writer ends on
            // its own once the queue is closed; it cannot wait for itself. In a fork's child
            // the writer does not exist: joining it would wait forever
            if !self.on_writer() && !self.forked() {
                let _ = t.join();
            }
        }
    }
}

struct Writer {
    seq: u64,
    prev: String,
    sinks: Vec<Box<dyn AuditSink>>,
    memory: Arc<Mutex<VecDeque<AuditRecord>>>,
    memory_cap: usize,
    include_context: bool,
    dropped: Arc<AtomicU64>,
    dropped_reported: u64,
    /// The `closed` record is written: nothing follows it (later drops are only counted).
    closed: bool,
    errors: Arc<AtomicU64>,
    max_record_bytes: usize,
}

impl Writer {
    fn run(&mut self, rx: &Receiver<Message>) {
        let tick = Duration::from_millis(200);
        let mut last_flush = Instant::now();
        loop {
            match rx.recv_timeout(tick) {
                Ok(Message::Event(event, ts)) => self.append(*event, ts),
                Ok(Message::Close) => {
                    self.report_drops();
                    let dropped = self.dropped.load(Ordering::SeqCst);
                    self.append(AuditEvent::Closed { dropped }, crate::clock::system_millis());
                    self.closed = true;
                }
                Ok(Message::Decision(d, context, ts)) => {
                    let event = decision_event(&d, context, self.include_context);
                    self.append(event, ts);
                }
                Ok(Message::Flush(done)) => {
                    self.report_drops();
                    self.flush();
                    let _ = done.send(());
                    last_flush = Instant::now();
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.report_drops();
                    self.flush();
                    return;
                }
            }
            self.report_drops();
            if last_flush.elapsed() >= tick {
                self.flush();
                last_flush = Instant::now();
            }
        }
    }

    fn report_drops(&mut self) {
        let total = self.dropped.load(Ordering::SeqCst);
        if total > self.dropped_reported && !self.closed {
            self.dropped_reported = total;
            self.append(AuditEvent::RecordsDropped { total }, crate::clock::system_millis());
        }
    }

    fn flush(&mut self) {
        for sink in &mut self.sinks {
            if sink.flush().is_err() {
                self.errors.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    fn append(&mut self, event: AuditEvent, ts: u64) {
        self.seq += 1;
        let mut record =
            AuditRecord { seq: self.seq, ts, event, prev: std::mem::take(&mut self.prev), hash: String::new() };
        let (hash, len) = record_hash(&record);
        record.hash = hash;
        if len > self.max_record_bytes {
            record.event = record.event.oversize(len, self.max_record_bytes);
            record.hash = record_hash(&record).0;
        }
        self.prev.clone_from(&record.hash);
        for sink in &mut self.sinks {
            if sink.write(&record).is_err() {
                self.errors.fetch_add(1, Ordering::SeqCst);
            }
        }
        if self.memory_cap > 0 {
            if let Ok(mut buf) = self.memory.lock() {
                if buf.len() == self.memory_cap {
                    buf.pop_front();
                }
                buf.push_back(record);
            }
        }
    }
}

/// A sink that calls a closure.
pub struct CallbackSink(Box<dyn FnMut(&AuditRecord) + Send>);

impl CallbackSink {
    /// Wraps `f`.
    pub fn new(f: impl FnMut(&AuditRecord) + Send + 'static) -> Self {
        Self(Box::new(f))
    }
}

impl AuditSink for CallbackSink {
    fn write(&mut self, record: &AuditRecord) -> Result<()> {
        (self.0)(record);
        Ok(())
    }
}
