//! The fork epoch: what was built under an older one was built by a parent process, before a
//! fork, and its threads and connections are not in this one.

/// Bumped by [`after_fork`]: a thread whose seed was drawn under an older epoch draws again.
static FORK_EPOCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Tells ambit this process is a fork's child. A fork copies memory but not threads: decision
/// ids, drawn from per-thread seeds and counters, would repeat the parent's; an authorizer built
/// before the fork has no audit writer or fleet follower here and shares the parent's Redis
/// connection. After this call decision ids draw new seeds, and such an authorizer fails closed
/// (audited: refuses to decide; fleet-linked: stale, writes nothing) instead of hanging on a
/// missing thread. Python's package calls it from `os.register_at_fork`; a Rust program that
/// forks calls it in the child, before anything else of ambit.
pub fn after_fork() {
    FORK_EPOCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// How many times [`after_fork`] was called in this process's line: what was built under an
/// older epoch was built by a parent process, before a fork.
pub(crate) fn fork_epoch() -> u64 {
    FORK_EPOCH.load(std::sync::atomic::Ordering::Relaxed)
}
