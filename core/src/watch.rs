//! Following the policy files on disk: debounced reloads, observable outcomes.

use crate::authorizer::{Authorizer, ReloadOutcome};
use crate::error::{EmptySourceError, Error, IoError, Result};
use notify::{RecursiveMode, Watcher as _};
use std::path::PathBuf;
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How long the watcher waits for a burst of file events to settle before it reloads.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(150);

/// Called after every reload attempt the watcher makes.
pub type ReloadCallback = Box<dyn Fn(&Result<ReloadOutcome>) + Send + Sync>;

/// The outcome of the watcher's reload attempts so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WatchStatus {
    /// Successful reloads.
    pub reloads: u64,
    /// Failed reloads (the last good policies kept serving).
    pub failures: u64,
    /// The version serving after the last successful reload.
    pub last_version: Option<String>,
    /// Code and message of the last failed attempt, cleared by the next success.
    pub last_error: Option<(String, String)>,
}

/// Follows an authorizer's source files and reloads on change; stops when dropped.
pub struct Watcher {
    status: Arc<Mutex<WatchStatus>>,
    _watcher: notify::RecommendedWatcher,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").field("status", &self.status()).finish_non_exhaustive()
    }
}

impl Watcher {
    /// What the watcher has done so far.
    pub fn status(&self) -> WatchStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Authorizer {
    /// Follows the files and directories this authorizer was built from, and reloads (after
    /// [`DEFAULT_DEBOUNCE`] of quiet) whenever they change. A failed reload keeps the last
    /// good policies; [`Watcher::status`] and the optional callback report each attempt.
    ///
    /// # Errors
    /// `AMBIT_EMPTY_SOURCE` when the authorizer was built from inline text only;
    /// `AMBIT_IO` when the operating system refuses to watch.
    pub fn watch(self: &Arc<Self>, on_reload: Option<ReloadCallback>) -> Result<Watcher> {
        self.watch_with(DEFAULT_DEBOUNCE, on_reload)
    }

    /// [`Authorizer::watch`] with a chosen debounce.
    ///
    /// # Errors
    /// As [`Authorizer::watch`].
    pub fn watch_with(self: &Arc<Self>, debounce: Duration, on_reload: Option<ReloadCallback>) -> Result<Watcher> {
        let paths = self.source_paths();
        if paths.is_empty() {
            return Err(
                EmptySourceError::new("nothing to watch: the authorizer was built from inline text only").into()
            );
        }
        let (tx, rx) = channel::<notify::Result<notify::Event>>();
        let mut watcher = notify::recommended_watcher(tx).map_err(|e| watch_error(&PathBuf::from("."), &e))?;
        for path in &paths {
            // editors replace files by renaming over them: watch the directory that holds a file
            let target =
                if path.is_dir() { path.clone() } else { path.parent().map(PathBuf::from).unwrap_or_default() };
            watcher.watch(&target, RecursiveMode::NonRecursive).map_err(|e| watch_error(&target, &e))?;
        }
        let status = Arc::new(Mutex::new(WatchStatus::default()));
        let weak: Weak<Authorizer> = Arc::downgrade(self);
        let thread_status = Arc::clone(&status);
        std::thread::Builder::new()
            .name("ambit-watch".into())
            .spawn(move || {
                // ends when the Watcher (and so the sender) is dropped
                while let Ok(first) = rx.recv() {
                    if !is_change(&first) {
                        continue;
                    }
                    loop {
                        match rx.recv_timeout(debounce) {
                            Ok(_) => {}
                            Err(RecvTimeoutError::Timeout) => break,
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                    let Some(authz) = weak.upgrade() else { return };
                    let outcome = authz.reload();
                    if let Ok(mut s) = thread_status.lock() {
                        match &outcome {
                            Ok(o) => {
                                s.reloads += 1;
                                s.last_version = Some(o.version.clone());
                                s.last_error = None;
                            }
                            Err(e) => {
                                s.failures += 1;
                                s.last_error = Some((e.code().to_owned(), e.to_string()));
                            }
                        }
                    }
                    if let Some(cb) = &on_reload {
                        cb(&outcome);
                    }
                }
            })
            .map_err(|e| Error::from(IoError::new(&PathBuf::from("ambit-watch"), &e)))?;
        Ok(Watcher { status, _watcher: watcher })
    }
}

fn is_change(event: &notify::Result<notify::Event>) -> bool {
    match event {
        Ok(e) => !matches!(e.kind, notify::EventKind::Access(_)),
        Err(_) => true,
    }
}

fn watch_error(path: &std::path::Path, e: &notify::Error) -> Error {
    let io = std::io::Error::other(e.to_string());
    IoError::new(path, &io).into()
}
