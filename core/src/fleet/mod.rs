//! One registry across a fleet of processes: every lifecycle event (mint, revoke, reinstate, purge,
//! credential revocation) is appended to a shared, ordered feed and applied, in order, by every
//! process that follows it, into the registry its decisions read. See `docs/fleet.md`.
//!
//! - **Order and idempotence.** The feed assigns each event a contiguous sequence number; a
//!   follower applies `applied + 1`, `applied + 2`, ... and skips what it has applied. Applying is
//!   a pure function of the events (a mint is checked at its own creation time, a revocation
//!   counted at its own time), so every process that applied the same prefix holds the same
//!   agents.
//! - **Writes go through the feed.** A writer checks its write locally, appends it, and returns
//!   once its own follower applied it: it observes its own write, and a failed append changes
//!   nothing.
//! - **A stated bound.** A follower records when it last proved itself caught up (a read that
//!   returned everything up to the feed's head, timed from when the read was sent). Past the
//!   staleness bound, decisions about agents (and by default all decisions) deny with
//!   `stale_state` until the feed is back.
//! - **Checkpoints and resync.** Every `checkpoint_every` events, the process that wrote the
//!   event saves its registry as a checkpoint and trims the feed up to it. A follower that finds
//!   a gap (the feed trimmed past it) restores the checkpoint and goes on from there; a feed
//!   behind the follower (Redis lost acknowledged events) or an event it cannot read stops it,
//!   denying, rather than guessing.

mod redis;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod test_server;

pub use self::redis::RedisBackend;

use crate::credential::Verifier;
use crate::error::{Error, Result};
use crate::registry::{Minted, Registry, RegistryState};
use crate::snapshot::Snapshot;
use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The version of the events and checkpoints this ambit writes and reads.
pub const EVENT_VERSION: u32 = 1;
/// Default staleness bound.
pub const DEFAULT_STALENESS_MS: u64 = 5_000;
/// Default checkpoint interval, in events.
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 1_000;

/// What an ordered, shared feed must do for ambit to follow it. Sequence numbers start at 1
/// and are contiguous; an entry is readable once its number is the head. Redis Streams is the
/// first backend ([`RedisBackend`]); any store with an atomic counter-and-append, a blocking
/// (or polled) read and a small key-value slot can be another.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// A one-line description for status output (never a password).
    fn describe(&self) -> String;
    /// Appends one event; its sequence number.
    ///
    /// # Errors
    /// `AMBIT_FLEET` when the backend cannot be reached or refuses the write.
    fn append(&self, event: &str) -> Result<u64>;
    /// The head (the last sequence number assigned, read first), then the entries after
    /// `after`, oldest first, waiting up to `wait` when there are none.
    ///
    /// # Errors
    /// `AMBIT_FLEET` when the backend cannot be reached or answers nonsense.
    fn read(&self, after: u64, wait: Duration) -> Result<Read>;
    /// The last sequence number assigned (0: none).
    ///
    /// # Errors
    /// `AMBIT_FLEET` when the backend cannot be reached.
    fn head(&self) -> Result<u64>;
    /// Saves a checkpoint of the state after `seq`, unless a newer one is there; whether saved.
    ///
    /// # Errors
    /// `AMBIT_FLEET` when the backend cannot be reached.
    fn save_checkpoint(&self, seq: u64, state: &str) -> Result<bool>;
    /// The newest checkpoint, if any.
    ///
    /// # Errors
    /// `AMBIT_FLEET` when the backend cannot be reached.
    fn load_checkpoint(&self) -> Result<Option<(u64, String)>>;
    /// Drops the entries up to and including `seq` (a checkpoint covers them).
    ///
    /// # Errors
    /// `AMBIT_FLEET` when the backend cannot be reached.
    fn trim_through(&self, seq: u64) -> Result<()>;
    /// Marks `key` as used for `ttl_seconds`, atomically across the fleet: whether it was
    /// unused (the fleet's shared DPoP replay memory).
    ///
    /// # Errors
    /// `AMBIT_FLEET` when the backend cannot be reached.
    fn claim_once(&self, key: &str, ttl_seconds: u64) -> Result<bool>;
}

/// One read of the feed.
#[derive(Debug, Clone, Default)]
pub struct Read {
    /// The head when the read began.
    pub head: u64,
    /// Entries after the position asked for: (sequence number, event text).
    pub entries: Vec<(u64, String)>,
}

/// Whether decisions about static principals (people, services) also deny while the feed is
/// stale. A revocation of a person travels on the feed too, so `deny` is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaleStatic {
    /// Every decision denies `stale_state` while stale (default).
    #[default]
    Deny,
    /// Only decisions whose chain holds a minted agent deny; static principals are decided
    /// with what this process knows.
    Decide,
}

/// The fleet options (`fleet = {...}` in every language, snake_case names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FleetOptions {
    /// `redis://host:port/db` (or `redis+unix:///path`).
    pub redis_url: String,
    /// The stream's name (default `ambit`); processes sharing it share one registry.
    #[serde(default)]
    pub stream: Option<String>,
    /// How long without proof of being caught up before decisions deny `stale_state`
    /// (default 5000).
    #[serde(default)]
    pub staleness_ms: Option<u64>,
    /// `deny` (default) or `decide`: see [`StaleStatic`].
    #[serde(default)]
    pub stale_static: Option<StaleStatic>,
    /// Events between checkpoints (default 1000).
    #[serde(default)]
    pub checkpoint_every: Option<u64>,
    /// Connection timeout (default 2000).
    #[serde(default)]
    pub connect_timeout_ms: Option<u64>,
}

impl FleetOptions {
    /// Options for the Redis at `redis_url`, every other setting at its default.
    pub fn redis(redis_url: impl Into<String>) -> Self {
        Self {
            redis_url: redis_url.into(),
            stream: None,
            staleness_ms: None,
            stale_static: None,
            checkpoint_every: None,
            connect_timeout_ms: None,
        }
    }

    /// The backend and settings these options describe.
    ///
    /// # Errors
    /// `AMBIT_CONFIG` for a malformed URL, an empty stream name, or a zero bound or interval.
    pub fn open(&self) -> Result<(Arc<dyn Backend>, FleetSettings)> {
        let settings = FleetSettings {
            staleness: Duration::from_millis(self.staleness_ms.unwrap_or(DEFAULT_STALENESS_MS)),
            stale_static: self.stale_static.unwrap_or_default(),
            checkpoint_every: self.checkpoint_every.unwrap_or(DEFAULT_CHECKPOINT_EVERY),
        };
        settings.check()?;
        let timeout = Duration::from_millis(self.connect_timeout_ms.unwrap_or(2_000).max(1));
        let backend = RedisBackend::new(&self.redis_url, self.stream.as_deref().unwrap_or("ambit"), timeout)?;
        Ok((Arc::new(backend), settings))
    }
}

/// How a process follows its feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetSettings {
    /// The staleness bound.
    pub staleness: Duration,
    /// Whether static principals deny while stale.
    pub stale_static: StaleStatic,
    /// Events between checkpoints.
    pub checkpoint_every: u64,
}

impl Default for FleetSettings {
    fn default() -> Self {
        Self {
            staleness: Duration::from_millis(DEFAULT_STALENESS_MS),
            stale_static: StaleStatic::Deny,
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
        }
    }
}

impl FleetSettings {
    fn check(&self) -> Result<()> {
        if self.staleness < Duration::from_millis(10) || self.staleness > Duration::from_secs(86_400) {
            return Err(Error::config("fleet `staleness_ms` must be between 10 and 86400000"));
        }
        if self.checkpoint_every == 0 {
            return Err(Error::config("fleet `checkpoint_every` must be at least 1"));
        }
        Ok(())
    }

    /// How long one read waits for news: short enough that a caught-up process proves it well
    /// within the bound.
    fn wait(&self) -> Duration {
        (self.staleness / 4).clamp(Duration::from_millis(5), Duration::from_secs(1))
    }
}

/// What a process knows of its feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FleetStatus {
    /// The backend, described.
    pub backend: String,
    /// The last event applied here.
    pub applied: u64,
    /// Whether decisions deny `stale_state` now.
    pub stale: bool,
    /// Milliseconds since this process last proved itself caught up; `None`: never.
    pub heard_ms_ago: Option<u64>,
    /// The staleness bound.
    pub staleness_ms: u64,
    /// Events applied since start (a checkpoint restore counts as none).
    pub events_applied: u64,
    /// Checkpoints restored since start.
    pub resyncs: u64,
    /// Events whose change was refused here (the writer got the error).
    pub events_refused: u64,
    /// Why this process stopped following, when it did (it denies until restarted).
    pub halted: Option<String>,
    /// The last error talking to the backend, if any since the last success.
    pub last_error: Option<String>,
}

/// One event on the feed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub(crate) v: u32,
    /// The writing process (an id it chose at start).
    pub(crate) origin: String,
    #[serde(flatten)]
    pub(crate) op: Op,
}

/// A lifecycle change.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Op {
    Mint {
        agent: Minted,
    },
    Revoke {
        uid: String,
        at: u64,
    },
    Reinstate {
        uid: String,
    },
    RevokeCredential {
        jti: String,
    },
    /// Agents expired or revoked more than `grace` seconds before `now` are removed.
    Purge {
        now: u64,
        grace: u64,
    },
}

/// What a checkpoint holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Checkpoint {
    v: u32,
    registry: RegistryState,
    revoked_credentials: Vec<String>,
}

/// What events change: the registry and credential revocations decisions read.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) snapshot: Arc<ArcSwap<Snapshot>>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) credentials: Arc<Verifier>,
    pub(crate) max_depth: u32,
}

impl Target {
    fn apply(&self, op: &Op) -> Result<serde_json::Value> {
        let snap = self.snapshot.load();
        match op {
            Op::Mint { agent } => agent
                .enter(&self.registry, &snap, self.max_depth, false)
                .and_then(|a| serde_json::to_value(a).map_err(|e| Error::internal(e.to_string()))),
            Op::Revoke { uid, at } => {
                let uid = crate::uid::parse_uid(uid, "revoked")?;
                self.registry.revoke(&uid, &snap, *at).map(serde_json::Value::from)
            }
            Op::Reinstate { uid } => {
                let uid = crate::uid::parse_uid(uid, "reinstated")?;
                self.registry.reinstate(&uid, &snap).map(serde_json::Value::Bool)
            }
            Op::RevokeCredential { jti } => {
                self.credentials.revoke(jti);
                Ok(serde_json::Value::Null)
            }
            Op::Purge { now, grace } => Ok(self.registry.purge(*now, *grace).into()),
        }
    }

    fn export(&self) -> Checkpoint {
        Checkpoint {
            v: EVENT_VERSION,
            registry: self.registry.export(),
            revoked_credentials: self.credentials.revoked_ids(),
        }
    }

    fn restore(&self, checkpoint: &Checkpoint) -> Result<usize> {
        for jti in &checkpoint.revoked_credentials {
            self.credentials.revoke(jti);
        }
        // agents entered from credentials are gone with the registry: verify them again
        self.credentials.forget_verified();
        self.registry.restore(&checkpoint.registry, &self.snapshot.load(), self.max_depth)
    }
}

#[derive(Debug, Default)]
struct Progress {
    applied: u64,
    /// Outcomes of this process's own events, until their writer takes them.
    results: HashMap<u64, Result<serde_json::Value>>,
}

#[derive(Debug, Default)]
struct Stats {
    events_applied: u64,
    events_refused: u64,
    resyncs: u64,
    halted: Option<String>,
    last_error: Option<String>,
}

/// A process's link to its feed: the follower's progress and the staleness clock.
#[derive(Debug)]
pub(crate) struct Link {
    backend: Arc<dyn Backend>,
    settings: FleetSettings,
    origin: String,
    start: Instant,
    /// 1 + milliseconds since `start` at which this process last proved itself caught up; 0:
    /// never.
    heard: AtomicU64,
    /// Restoring a checkpoint, or halted: stale whatever `heard` says.
    blocked: AtomicBool,
    halted: AtomicBool,
    stop: AtomicBool,
    progress: Mutex<Progress>,
    applied_cond: Condvar,
    /// Held while events are applied or a checkpoint is taken.
    apply_lock: Mutex<()>,
    stats: Mutex<Stats>,
    /// The fork epoch it was built under (see [`crate::after_fork`]): in a fork's child the
    /// follower thread does not exist and the backend's connection is the parent's, so the
    /// child is stale for good and writes nothing.
    epoch: u64,
}

/// Why a fork's child of the process that built a fleet link refuses to use it.
const FORKED: &str = "this authorizer was built before a fork: its fleet follower and connection \
                      belong to the parent process; build the authorizer in the process that uses it";

impl Link {
    /// Whether this is a fork's child of the process that built the link.
    pub(crate) fn forked(&self) -> bool {
        self.epoch != crate::fork::fork_epoch()
    }

    /// The backend for a call from this process: refused in a fork's child, whose copy of the
    /// connection is the parent's.
    pub(crate) fn usable_backend(&self) -> Result<&dyn Backend> {
        if self.forked() {
            return Err(Error::fleet(FORKED));
        }
        Ok(self.backend.as_ref())
    }

    fn new(backend: Arc<dyn Backend>, settings: FleetSettings) -> Self {
        Self {
            backend,
            settings,
            origin: uuid::Uuid::new_v4().to_string(),
            start: Instant::now(),
            heard: AtomicU64::new(0),
            blocked: AtomicBool::new(false),
            halted: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            progress: Mutex::new(Progress::default()),
            applied_cond: Condvar::new(),
            apply_lock: Mutex::new(()),
            stats: Mutex::new(Stats::default()),
            epoch: crate::fork::fork_epoch(),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether decisions must deny `stale_state` now (one atomic load and a clock read).
    pub(crate) fn is_stale(&self) -> bool {
        if self.blocked.load(Ordering::Acquire) || self.halted.load(Ordering::Acquire) || self.forked() {
            return true;
        }
        let heard = self.heard.load(Ordering::Acquire);
        let bound = u64::try_from(self.settings.staleness.as_millis()).unwrap_or(u64::MAX);
        heard == 0 || self.elapsed_ms().saturating_sub(heard - 1) > bound
    }

    /// Whether static principals deny too while stale.
    pub(crate) fn denies_static(&self) -> bool {
        self.settings.stale_static == StaleStatic::Deny
    }

    fn applied(&self) -> u64 {
        self.progress.lock().map_or(0, |p| p.applied)
    }

    fn halt(&self, why: String) -> Error {
        self.halted.store(true, Ordering::Release);
        if let Ok(mut s) = self.stats.lock() {
            s.halted = Some(why.clone());
        }
        Error::fleet(why)
    }

    pub(crate) fn note_error(&self, e: &Error) {
        if let Ok(mut s) = self.stats.lock() {
            s.last_error = Some(e.to_string());
        }
    }

    /// Appends `op` and waits until this process applied it; the outcome of applying it.
    pub(crate) fn write(&self, op: Op) -> Result<serde_json::Value> {
        self.usable_backend()?;
        if self.halted.load(Ordering::Acquire) {
            return Err(Error::fleet(format!(
                "this process stopped following its fleet feed: {}",
                self.status().halted.unwrap_or_default()
            )));
        }
        let event = serde_json::to_string(&Envelope { v: EVENT_VERSION, origin: self.origin.clone(), op })
            .map_err(|e| Error::internal(e.to_string()))?;
        let seq = self.backend.append(&event)?;
        let deadline = Instant::now() + self.settings.staleness.max(Duration::from_secs(2));
        let mut progress = self.progress.lock().map_err(|_| Error::internal("fleet progress lock poisoned"))?;
        loop {
            if progress.applied >= seq {
                return progress.results.remove(&seq).unwrap_or_else(|| {
                    Err(Error::fleet(format!(
                        "event {seq} is in the fleet feed but this process did not apply it itself \
                         (it restored a checkpoint past it, or the feed was replaced)"
                    )))
                });
            }
            if self.halted.load(Ordering::Acquire) {
                // (not `status()`: it takes the progress lock this loop holds)
                let why = self.stats.lock().ok().and_then(|s| s.halted.clone()).unwrap_or_default();
                return Err(Error::fleet(format!(
                    "event {seq} is in the fleet feed, but this process stopped following it: {why}"
                )));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::fleet(format!(
                    "the change is in the fleet feed (event {seq}) but was not applied here in time; \
                     it applies when this process catches up"
                )));
            }
            progress = self
                .applied_cond
                .wait_timeout(progress, left)
                .map_err(|_| Error::internal("fleet progress lock poisoned"))?
                .0;
        }
    }

    /// One read of the feed, applied. `Ok(true)` when this process is caught up.
    fn step(&self, target: &Target, wait: Duration) -> Result<bool> {
        if self.halted.load(Ordering::Acquire) {
            std::thread::sleep(wait);
            return Ok(false);
        }
        let sent = self.elapsed_ms();
        let applied = self.applied();
        let read = self.backend.read(applied, wait)?;
        if read.head < applied {
            return Err(self.halt(format!(
                "the feed's head is event {} but this process applied {applied}: the backend lost \
                 acknowledged events (a Redis restarted without persistence?); restart this process \
                 to follow the feed as it is now",
                read.head
            )));
        }
        let gap = match read.entries.first() {
            Some((first, _)) => *first > applied + 1,
            None => read.head > applied,
        };
        if gap {
            self.resync(target, applied)?;
            return Ok(false);
        }
        let mut now_at = applied;
        {
            let guard = self.apply_lock.lock().map_err(|_| Error::internal("fleet apply lock poisoned"))?;
            for (seq, text) in read.entries {
                if seq <= now_at {
                    continue; // already applied
                }
                if seq != now_at + 1 {
                    drop(guard);
                    self.resync(target, now_at)?;
                    return Ok(false);
                }
                self.apply_one(target, seq, &text)?;
                now_at = seq;
            }
            drop(guard);
        }
        self.blocked.store(false, Ordering::Release);
        if let Ok(mut s) = self.stats.lock() {
            s.last_error = None;
        }
        if now_at >= read.head {
            self.heard.store(sent + 1, Ordering::Release);
            return Ok(true);
        }
        Ok(false)
    }

    fn apply_one(&self, target: &Target, seq: u64, text: &str) -> Result<()> {
        let envelope: Envelope = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) if v.get("v").and_then(serde_json::Value::as_u64).is_some_and(|n| n > u64::from(EVENT_VERSION)) => {
                return Err(self.halt(format!(
                    "event {seq} is of version {}; this ambit reads version {EVENT_VERSION}: upgrade it",
                    v.get("v").and_then(serde_json::Value::as_u64).unwrap_or_default()
                )))
            }
            Ok(v) => serde_json::from_value(v)
                .map_err(|e| self.halt(format!("event {seq} is not an ambit event ({e}): stopped following")))?,
            Err(e) => return Err(self.halt(format!("event {seq} is not JSON ({e}): stopped following"))),
        };
        let outcome = target.apply(&envelope.op);
        let mine = envelope.origin == self.origin;
        let mut progress = self.progress.lock().map_err(|_| Error::internal("fleet progress lock poisoned"))?;
        if let Ok(mut s) = self.stats.lock() {
            s.events_applied += 1;
            s.events_refused += u64::from(outcome.is_err());
        }
        progress.applied = seq;
        if mine {
            progress.results.insert(seq, outcome);
            // a writer that gave up waiting never takes its outcome
            if progress.results.len() > 4096 {
                progress.results.retain(|s, _| *s + 4096 > seq);
            }
        }
        drop(progress);
        self.applied_cond.notify_all();
        if mine && seq.is_multiple_of(self.settings.checkpoint_every) {
            if let Err(e) = self.checkpoint_locked(target, seq) {
                self.note_error(&e);
            }
        }
        Ok(())
    }

    /// Saves the state after `seq` (the caller holds the apply lock) and trims the feed to it.
    fn checkpoint_locked(&self, target: &Target, seq: u64) -> Result<()> {
        let state = serde_json::to_string(&target.export()).map_err(|e| Error::internal(e.to_string()))?;
        if self.backend.save_checkpoint(seq, &state)? {
            self.backend.trim_through(seq)?;
        }
        Ok(())
    }

    /// Checkpoints now; the sequence number it covers.
    pub(crate) fn checkpoint(&self, target: &Target) -> Result<u64> {
        self.usable_backend()?;
        let _apply = self.apply_lock.lock().map_err(|_| Error::internal("fleet apply lock poisoned"))?;
        let seq = self.applied();
        if seq == 0 {
            return Ok(0);
        }
        self.checkpoint_locked(target, seq)?;
        Ok(seq)
    }

    /// The feed was trimmed past `applied`: restore its checkpoint.
    fn resync(&self, target: &Target, applied: u64) -> Result<()> {
        let Some((seq, text)) = self.backend.load_checkpoint()? else {
            self.blocked.store(true, Ordering::Release);
            return Err(Error::fleet(format!(
                "the feed was trimmed past event {applied} and holds no checkpoint: the fleet's state \
                 cannot be rebuilt here"
            )));
        };
        if seq <= applied {
            self.blocked.store(true, Ordering::Release);
            return Err(Error::fleet(format!(
                "the feed was trimmed past event {applied} and its checkpoint covers only {seq}: the \
                 fleet's state cannot be rebuilt here until a newer checkpoint is saved"
            )));
        }
        let checkpoint: Checkpoint = serde_json::from_str(&text)
            .map_err(|e| self.halt(format!("the feed's checkpoint is not an ambit checkpoint: {e}")))?;
        if checkpoint.v > EVENT_VERSION {
            return Err(self.halt(format!(
                "the feed's checkpoint is of version {}; this ambit reads version {EVENT_VERSION}: upgrade it",
                checkpoint.v
            )));
        }
        let _apply = self.apply_lock.lock().map_err(|_| Error::internal("fleet apply lock poisoned"))?;
        self.blocked.store(true, Ordering::Release);
        let restored = target.restore(&checkpoint);
        {
            let mut progress = self.progress.lock().map_err(|_| Error::internal("fleet progress lock poisoned"))?;
            progress.applied = seq;
        }
        self.applied_cond.notify_all();
        if let Ok(mut s) = self.stats.lock() {
            s.resyncs += 1;
        }
        // still blocked: the next read that catches up lifts it
        restored.map(|_| ())
    }

    pub(crate) fn status(&self) -> FleetStatus {
        let heard = self.heard.load(Ordering::Acquire);
        let stats = self.stats.lock();
        let (events_applied, events_refused, resyncs, halted, last_error) = match &stats {
            Ok(s) => (s.events_applied, s.events_refused, s.resyncs, s.halted.clone(), s.last_error.clone()),
            Err(_) => (0, 0, 0, Some("fleet status lock poisoned".to_owned()), None),
        };
        drop(stats);
        FleetStatus {
            backend: self.backend.describe(),
            applied: self.applied(),
            stale: self.is_stale(),
            heard_ms_ago: (heard > 0).then(|| self.elapsed_ms().saturating_sub(heard - 1)),
            staleness_ms: u64::try_from(self.settings.staleness.as_millis()).unwrap_or(u64::MAX),
            events_applied,
            events_refused,
            resyncs,
            halted,
            last_error,
        }
    }
}

/// A running follower: the link and its thread, stopped when dropped.
#[derive(Debug)]
pub(crate) struct Fleet {
    pub(crate) link: Arc<Link>,
    pub(crate) target: Target,
}

impl Fleet {
    /// Follows `backend`: restores its checkpoint, catches up (an error if that cannot be done
    /// within a few staleness bounds), then follows on a thread of its own.
    pub(crate) fn start(backend: Arc<dyn Backend>, settings: FleetSettings, target: Target) -> Result<Self> {
        settings.check()?;
        let link = Arc::new(Link::new(backend, settings));
        if let Some((seq, text)) = link.backend.load_checkpoint()? {
            let checkpoint: Checkpoint = serde_json::from_str(&text)
                .map_err(|e| Error::fleet(format!("the feed's checkpoint is not an ambit checkpoint: {e}")))?;
            if checkpoint.v > EVENT_VERSION {
                return Err(Error::fleet(format!(
                    "the feed's checkpoint is of version {}; this ambit reads version {EVENT_VERSION}",
                    checkpoint.v
                )));
            }
            target.restore(&checkpoint)?;
            link.progress.lock().map_err(|_| Error::internal("fleet progress lock poisoned"))?.applied = seq;
        }
        let deadline = Instant::now() + settings.staleness.max(Duration::from_secs(2)) * 2;
        loop {
            match link.step(&target, Duration::from_millis(1)) {
                Ok(true) => break,
                Ok(false) if Instant::now() < deadline && !link.halted.load(Ordering::Acquire) => {}
                Ok(false) => {
                    return Err(Error::fleet(format!(
                        "could not catch up with the feed ({}): {}",
                        link.backend.describe(),
                        link.status().last_error.or(link.status().halted).unwrap_or_else(|| "too slow".into())
                    )))
                }
                Err(e) => return Err(e),
            }
        }
        let (l, t) = (Arc::clone(&link), target.clone());
        std::thread::Builder::new()
            .name("ambit-fleet".into())
            .spawn(move || follow(&l, &t))
            .map_err(|e| Error::internal(format!("cannot start the fleet thread: {e}")))?;
        Ok(Self { link, target })
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.link.stop.store(true, Ordering::Release);
    }
}

fn follow(link: &Link, target: &Target) {
    let mut backoff = Duration::from_millis(20);
    while !link.stop.load(Ordering::Acquire) {
        match link.step(target, link.settings.wait()) {
            Ok(_) => backoff = Duration::from_millis(20),
            Err(e) => {
                link.note_error(&e);
                let until = Instant::now() + backoff;
                while Instant::now() < until && !link.stop.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
        }
    }
}
