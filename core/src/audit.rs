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

use crate::decision::{Decision, DenyCause, Hop};
use crate::error::{Error, IoError, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `prev` of the very first record of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditEvent {
    /// A decision.
    Decision {
        /// The decision id.
        decision_id: String,
        /// Whether it allowed.
        allowed: bool,
        /// Why it denied.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deny_cause: Option<DenyCause>,
        /// The acting principal.
        principal: String,
        /// Root first.
        chain: Vec<String>,
        /// The action uid.
        action: String,
        /// The resource uid.
        resource: String,
        /// Determining policies.
        reasons: Vec<String>,
        /// Per-hop outcomes (determining policies and errors).
        hops: Vec<Hop>,
        /// The policy version that decided.
        policy_version: String,
        /// SHA-256 of the canonical context JSON.
        context_digest: String,
        /// The context itself, only when the application opted in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<Value>,
    },
    /// An agent was minted.
    AgentMinted {
        /// The new agent.
        uid: String,
        /// Who minted it.
        parent: String,
        /// Its task.
        task: String,
        /// Its scopes.
        scopes: Vec<String>,
        /// Its expiry (epoch seconds).
        expires_at: u64,
    },
    /// An identity was revoked.
    Revoked {
        /// The revoked identity.
        uid: String,
        /// Identities cut off, the identity included.
        count: usize,
    },
    /// A template was linked at run time.
    Linked {
        /// The new policy's id.
        link_id: String,
        /// The template.
        template_id: String,
        /// The slot values.
        args: std::collections::BTreeMap<String, String>,
        /// The policy version it made.
        version: String,
    },
    /// A run-time link was removed.
    Unlinked {
        /// The removed policy's id.
        link_id: String,
        /// The policy version it made.
        version: String,
    },
    /// A person or service was reinstated.
    Reinstated {
        /// The reinstated identity.
        uid: String,
    },
    /// A reload succeeded.
    ReloadSucceeded {
        /// The new version.
        version: String,
        /// The new generation.
        generation: u64,
    },
    /// A reload failed; the last good policies kept serving.
    ReloadFailed {
        /// The error code.
        code: String,
        /// The error.
        error: String,
    },
    /// A request could not be decided (malformed, over a limit): what hostile callers send.
    RequestFailed {
        /// The error code.
        code: String,
        /// The error.
        error: String,
        /// The principal as given (cut to 256 bytes).
        principal: String,
        /// The action as given (cut to 256 bytes).
        action: String,
        /// The resource as given (cut to 256 bytes).
        resource: String,
    },
    /// The trail was closed cleanly (`close`, or the authorizer dropped): nothing was handed off
    /// after this record. A log whose last record is not this one was cut short or is still
    /// being written.
    Closed {
        /// Records dropped over the trail's life (overflow policy `drop`).
        dropped: u64,
    },
    /// Records were dropped because the queue was full (overflow policy `drop`).
    RecordsDropped {
        /// Total dropped so far.
        total: u64,
    },
    /// A torn (incomplete) last line was found in the log on open and cut off.
    TornTailDiscarded {
        /// Bytes discarded.
        bytes: u64,
    },
    /// A record larger than the record size limit ([`AuditBuilder::max_record_bytes`]), kept in
    /// short form: what it was, its size and the digest of its full canonical JSON, and for a
    /// decision its id and outcome. Nothing is lost silently and no record grows without bound.
    Oversize {
        /// The `kind` of the full record.
        original_kind: String,
        /// Bytes of the full record.
        bytes: u64,
        /// The limit it exceeded.
        limit: u64,
        /// `sha256:` of the full record's canonical JSON (without `seq`, `ts`, `prev`, `hash`).
        digest: String,
        /// The decision id, for a decision.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decision_id: Option<String>,
        /// Whether it allowed, for a decision.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        allowed: Option<bool>,
        /// Why it denied, for a denied decision.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deny_cause: Option<DenyCause>,
    },
}

impl AuditEvent {
    /// The `kind` tag this event has in a record.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Decision { .. } => "decision",
            Self::AgentMinted { .. } => "agent_minted",
            Self::Revoked { .. } => "revoked",
            Self::Reinstated { .. } => "reinstated",
            Self::Linked { .. } => "linked",
            Self::Unlinked { .. } => "unlinked",
            Self::ReloadSucceeded { .. } => "reload_succeeded",
            Self::ReloadFailed { .. } => "reload_failed",
            Self::RequestFailed { .. } => "request_failed",
            Self::Closed { .. } => "closed",
            Self::RecordsDropped { .. } => "records_dropped",
            Self::TornTailDiscarded { .. } => "torn_tail_discarded",
            Self::Oversize { .. } => "oversize",
        }
    }

    /// The short form of an event whose record is `bytes` long, over `limit`.
    fn oversize(&self, bytes: usize, limit: usize) -> Self {
        let full = serde_json::to_value(self).unwrap_or(Value::Null);
        let digest = format!("sha256:{}", hex(&Sha256::digest(canonical(&full).as_bytes())));
        let (decision_id, allowed, deny_cause) = match self {
            Self::Decision { decision_id, allowed, deny_cause, .. } => {
                (Some(decision_id.clone()), Some(*allowed), *deny_cause)
            }
            _ => (None, None, None),
        };
        Self::Oversize {
            original_kind: self.kind().to_owned(),
            bytes: bytes as u64,
            limit: limit as u64,
            digest,
            decision_id,
            allowed,
            deny_cause,
        }
    }
}

/// The largest audit queue or ring buffer, in records: 16,777,216.
pub const MAX_CAPACITY: usize = 1 << 24;
/// The largest [`AuditBuilder::max_record_bytes`]: 1 GiB.
pub const MAX_RECORD_BYTES_LIMIT: u64 = 1 << 30;

/// Default of [`AuditBuilder::max_record_bytes`]: 1 MiB.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;

/// One record of the trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// Milliseconds since the epoch.
    pub ts: u64,
    /// The event.
    #[serde(flatten)]
    pub event: AuditEvent,
    /// Hash of the previous record ([`GENESIS`] for the first).
    pub prev: String,
    /// This record's hash.
    pub hash: String,
}

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

    fn send(&self, message: Message) {
        if self.closed.load(Ordering::SeqCst) {
            self.dropped.fetch_add(1, Ordering::SeqCst);
            return;
        }
        self.send_always(message);
    }

    fn send_always(&self, message: Message) {
        let Some(tx) = &self.tx else { return };
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

    /// Whether [`Audit::close`] was called: an authorizer whose trail is closed refuses to decide.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
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
        let Some(tx) = &self.tx else { return };
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
            // its own once the queue is closed; it cannot wait for itself
            if !self.on_writer() {
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
        if total > self.dropped_reported {
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

fn decision_event(d: &Decision, context: Value, include: bool) -> AuditEvent {
    let digest = hex(&Sha256::digest(canonical(&context).as_bytes()));
    AuditEvent::Decision {
        decision_id: d.decision_id.clone(),
        allowed: d.allowed,
        deny_cause: d.deny_cause,
        principal: d.chain.last().cloned().unwrap_or_default(),
        chain: d.chain.clone(),
        action: d.action.clone(),
        resource: d.resource.clone(),
        reasons: d.reasons.clone(),
        hops: d.hops.clone(),
        policy_version: d.policy_version.clone(),
        context_digest: format!("sha256:{digest}"),
        context: include.then_some(context),
    }
}

use crate::canonical::canonical;

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The record's hash and the length of its JSON line (the canonical text plus the `hash` field).
fn record_hash(record: &AuditRecord) -> (String, usize) {
    let mut v = serde_json::to_value(record).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.remove("hash");
    }
    let text = canonical(&v);
    (hash_text(&record.prev, &text), text.len() + HASH_FIELD_BYTES)
}

/// `,"hash":"<64 hex>"`
const HASH_FIELD_BYTES: usize = 75;

fn hash_of(prev: &str, without_hash: &Value) -> String {
    hash_text(prev, &canonical(without_hash))
}

fn hash_text(prev: &str, canonical: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(canonical.as_bytes());
    hex(&h.finalize())
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

struct Tail {
    last: Option<(u64, String)>,
    torn_bytes: u64,
}

/// The hash-chained JSONL file, rotating by size: the active file keeps its name, full
/// segments become `<name>.<n>` (n = 1, 2, ...), and the chain continues across them.
struct FileSink {
    path: PathBuf,
    out: BufWriter<File>,
    size: u64,
    options: FileOptions,
    last_flush: Instant,
}

impl FileSink {
    fn open(path: PathBuf, options: FileOptions, max_record_bytes: usize) -> Result<(Self, Tail)> {
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

fn segment(path: &Path, n: u32) -> PathBuf {
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

fn last_of_rotated(path: &Path, max_record_bytes: usize) -> Result<Option<(u64, String)>> {
    let segs = segments(path);
    let Some(last) = segs.iter().rev().find(|p| p.as_path() != path) else { return Ok(None) };
    Ok(LogEnd::read(last, max_record_bytes)?.last)
}

/// The end of a log file, read backwards: only the last record is parsed, and no more than
/// one record's worth of bytes is held, however long the file.
struct LogEnd {
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
fn newline_before(file: &mut File, end: u64, max_scan: Option<u64>) -> std::io::Result<Option<u64>> {
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

fn verify_chain(files: &[PathBuf], options: &VerifyOptions) -> Result<VerifyReport> {
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
