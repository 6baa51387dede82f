//! Releasing the GIL and stopping on Ctrl-C, in one place.
//!
//! Rule that keeps this deadlock-free: nobody *waits* for a network's mutex while holding the
//! GIL. `Shared::with` takes the lock at once if it is free and otherwise waits detached; long
//! work holds the lock only in chunks and re-attaches between chunks to check for signals.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};
use pyo3::prelude::*;

/// A value shared between Python threads. The `Mutex` gives the "works or waits" answer to
/// concurrent use: a call from another thread waits (without the GIL) until the current chunk
/// of work finishes, and never sees a half-updated network.
pub struct Shared<T> {
    inner: Mutex<T>,
}

impl<T: Send> Shared<T> {
    pub fn new(value: T) -> Self {
        Shared {
            inner: Mutex::new(value),
        }
    }

    /// Runs `f` on the value: with the GIL held when the call is small and the lock is free;
    /// detached when the work is large (`release_gil`) or another thread holds the lock.
    pub fn with<R: Send>(
        &self,
        py: Python<'_>,
        release_gil: bool,
        f: impl FnOnce(&mut T) -> R + Send,
    ) -> R {
        if !release_gil {
            if let Some(mut guard) = self.inner.try_lock() {
                return f(&mut guard);
            }
        }
        py.detach(|| f(&mut self.lock()))
    }

    /// Blocking lock; call only while detached.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.inner.lock()
    }

    /// Runs `f` under the lock, then unlocks fairly: a thread waiting for the lock gets it
    /// before this thread can take it again. Training calls this once per chunk so that a
    /// `predict` from another thread waits for one chunk, not for the whole training.
    pub fn with_fair<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut guard = self.inner.lock();
        let result = f(&mut guard);
        MutexGuard::unlock_fair(guard);
        result
    }
}

/// How long a chunk of work runs between two checks for Ctrl-C.
pub const CHECK_EVERY: Duration = Duration::from_millis(20);

/// How many times long calls have looked for signals in this process (`_signal_polls`): lets
/// a test see that a call looks while it runs, without timing it.
static POLLS: AtomicU64 = AtomicU64::new(0);

/// Re-attaches briefly to let Python run signal handlers; Err(KeyboardInterrupt) on Ctrl-C.
pub fn check_signals() -> PyResult<()> {
    POLLS.fetch_add(1, Ordering::Relaxed);
    Python::attach(|py| py.check_signals())
}

/// `ferrinet._core._signal_polls()`: the count of `check_signals` calls so far.
#[pyfunction]
pub fn _signal_polls() -> u64 {
    POLLS.load(Ordering::Relaxed)
}

/// The stop callback of a core loop (`train_epoch_until`, `train_steps_until`): asks Python for
/// pending signals at most every half `CHECK_EVERY` (a look costs about a microsecond; the
/// other half is left for the step in progress and for other processes on the cores), and
/// keeps a signal's exception to raise once the core has stopped at a consistent point.
pub struct SignalWatch {
    last_check: Instant,
    every: Duration,
    pending: Option<PyErr>,
}

impl SignalWatch {
    pub fn new() -> Self {
        SignalWatch {
            last_check: Instant::now(),
            every: CHECK_EVERY / 2,
            pending: None,
        }
    }

    /// A watch that looks at every call of `stop`: for loops whose steps are already sized
    /// to a few ms (the chunks of a file's data), so a test can count the looks.
    pub fn each_call() -> Self {
        SignalWatch {
            every: Duration::ZERO,
            ..SignalWatch::new()
        }
    }

    /// True once a signal is pending (its exception is then kept for `take`).
    pub fn stop(&mut self) -> bool {
        if self.last_check.elapsed() < self.every {
            return false;
        }
        self.last_check = Instant::now();
        match check_signals() {
            Ok(()) => false,
            Err(e) => {
                self.pending = Some(e);
                true
            }
        }
    }

    /// The exception of the signal that stopped the core, if one did.
    pub fn take(&mut self) -> Option<PyErr> {
        self.pending.take()
    }
}

/// Sizes chunks of repeated work so that each takes a quarter to a half of `CHECK_EVERY`:
/// starts with one granule, doubles while chunks finish in under a quarter, and halves (down
/// to one granule) when one takes over a half. Tiny steps are not slowed by clock reads, huge
/// ones still stop promptly, and when other processes take the cores (a chunk sized on an idle
/// core then takes several times as long) the chunks shrink back.
pub struct Chunker {
    size: usize,
    granule: usize,
}

impl Chunker {
    /// Chunks of a multiple of `granule` units (the last one excepted), so that where the work
    /// is cut, which depends on timing, never changes the result (`train_granule`).
    pub fn with_granule(granule: usize) -> Self {
        let granule = granule.max(1);
        Chunker {
            size: granule,
            granule,
        }
    }

    pub fn next_len(&self, remaining: usize) -> usize {
        self.size.min(remaining)
    }

    pub fn record(&mut self, started: Instant) {
        let took = started.elapsed();
        if took < CHECK_EVERY / 4 && self.size < (1 << 20) {
            self.size *= 2;
        } else if took > CHECK_EVERY / 2 && self.size > self.granule {
            // size is granule * 2^k with k >= 1: half of it is a whole number of granules
            self.size /= 2;
        }
    }
}

/// Runs `work(start, end)` over `0..total` in chunks of whole `granule`s (the last excepted)
/// sized by a `Chunker`, and `between()` after each chunk (a Ctrl-C check). Where the chunks
/// fall depends on timing; whole granules keep the result independent of it.
pub fn for_each_chunk(
    total: usize,
    granule: usize,
    mut work: impl FnMut(usize, usize) -> PyResult<()>,
    mut between: impl FnMut() -> PyResult<()>,
) -> PyResult<()> {
    let mut chunker = Chunker::with_granule(granule);
    let mut start = 0;
    while start < total {
        let end = start + chunker.next_len(total - start);
        let started = Instant::now();
        work(start, end)?;
        chunker.record(started);
        start = end;
        between()?;
    }
    Ok(())
}
