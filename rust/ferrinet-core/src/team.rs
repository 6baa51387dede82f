//! A team of threads that stays awake for one training call.
//!
//! A step of a batch-256 epoch on 2 threads has three or four short parallel sections (the
//! gather, the first layer's forward and weight products, the optimizer's update) with serial
//! work between them. Handing a section to rayon's pool from the caller's thread costs a
//! wake-up: measured on the 2-core CI machine, a section of 2 x 50 us took 66 us after no
//! gap, and 114 us after 100 us of serial work (the pool's threads had gone to sleep). That
//! was 10-20% of a float32 step. While `with_team` runs, the caller's thread and `n - 1` helper
//! threads, which poll for work instead of sleeping, claim the parts of each section one at a
//! time: a hand-off is then a store and a few loads, and a part is never left waiting for a
//! helper that is napping or on a busy core (the caller takes it).
//!
//! The helpers exist only inside `with_team` (scoped threads). They poll with a CPU pause,
//! then yield their core, then nap (`YIELD_AFTER`, `SLEEP_AFTER`), so a long serial stretch
//! does not keep a core busy, and they cost nothing outside a training call.
//! Code that runs outside a team (predict, the row-split batches of small networks) uses
//! ferrinet's own rayon pool (`pool`), never rayon's global one, which panics when it cannot
//! spawn a thread. Which thread runs a part never changes the result.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Polls before a waiting helper starts yielding its core to other threads (about 0.1-0.3 ms
/// of pauses), and yields before it sleeps `NAP` between polls (a long wait: the caller is
/// blocked elsewhere, e.g. on Python's lock).
const YIELD_AFTER: u32 = 1 << 14;
const SLEEP_AFTER: u32 = YIELD_AFTER + 1000;
const NAP: std::time::Duration = std::time::Duration::from_micros(200);

/// The most threads any network may use: at most `THREADS_CAP`, and at most 4 per CPU this
/// process may run on (`available_parallelism` follows the affinity mask and cgroup quotas).
/// Every helper of a team must run once per parallel section, so threads far beyond the cores
/// only queue for them (4,096 threads on 2 cores made a 12-row epoch take 44 s).
pub fn max_threads() -> usize {
    THREADS_CAP.min(4 * usable_cpus())
}

/// The CPUs this process may run on, read once: `available_parallelism` follows the affinity
/// mask (`sched_getaffinity`, what `os.sched_getaffinity` reports) and cgroup CPU quotas, not
/// the machine's count.
pub fn usable_cpus() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The environment variable that sets the default thread count (`default_threads`).
pub const THREADS_ENV: &str = "FERRINET_NUM_THREADS";

/// The thread count of a network whose count was never set, read once per process, at the
/// first network built or loaded (as PyTorch and OpenBLAS read theirs), in this order:
///
/// 1. `FERRINET_NUM_THREADS`: a positive integer, at most `max_threads()` (more is capped);
///    anything else (`"four"`, `"0"`, `"-2"`) is refused with `Error::Value` naming it, from
///    every call that needs the default, so a typo is never silently ignored. Empty = unset.
/// 2. `OMP_NUM_THREADS`, the variable OpenMP libraries read and that joblib's loky backend
///    sets in its workers (cores / n_jobs) so parallel searches do not oversubscribe: its
///    first entry (`"4,2"` is OpenMP's nested form), capped at `max_threads()`. A value that
///    is not a positive integer is ignored, as PyTorch and libgomp ignore it.
/// 3. `usable_cpus()`: the CPUs this process may run on.
pub fn default_threads() -> crate::Result<usize> {
    static DEFAULT: std::sync::OnceLock<Result<usize, String>> = std::sync::OnceLock::new();
    let env = |name| std::env::var(name).ok();
    DEFAULT
        .get_or_init(|| threads_from(env(THREADS_ENV), env("OMP_NUM_THREADS")))
        .clone()
        .map_err(crate::Error::Value)
}

/// `default_threads` for the given values of `FERRINET_NUM_THREADS` and `OMP_NUM_THREADS`.
fn threads_from(ferrinet: Option<String>, omp: Option<String>) -> Result<usize, String> {
    let positive = |s: &str| s.trim().parse::<usize>().ok().filter(|&n| n > 0);
    if let Some(value) = ferrinet.filter(|v| !v.trim().is_empty()) {
        return match positive(&value) {
            Some(n) => Ok(n.min(max_threads())),
            None => Err(format!(
                "{THREADS_ENV} must be a positive integer (a thread count, at most {} here), \
                 got {:?}; unset it for the default (the CPUs this process may use)",
                max_threads(),
                value.chars().take(40).collect::<String>()
            )),
        };
    }
    let omp = omp.and_then(|v| v.split(',').next().and_then(positive));
    Ok(omp.unwrap_or_else(usable_cpus).min(max_threads()))
}

/// Ok for a thread count in [1, `max_threads()`]; a ValueError naming the limit otherwise.
pub fn check_n_threads(n_threads: usize) -> crate::Result<()> {
    let max = max_threads();
    if n_threads == 0 {
        return Err(crate::Error::Value(
            "n_threads must be at least 1, got 0".to_string(),
        ));
    }
    if n_threads > max {
        return Err(crate::Error::Value(format!(
            "n_threads must be at most {max} on this machine (ferrinet.max_threads(): 4 per \
             available CPU, at most {THREADS_CAP}), got {n_threads}"
        )));
    }
    Ok(())
}

/// The largest thread count on any machine, and the largest a file may record.
pub const THREADS_CAP: usize = 256;

/// A section's work: part i of `parts`.
type Job<'a> = &'a (dyn Fn(usize) + Sync);

struct Team {
    /// Helpers that were spawned (fewer than asked when the system refuses a thread).
    helpers: AtomicUsize,
    /// The number of the last section opened (never 0).
    generation: AtomicUsize,
    /// The section open for helpers to join: its number, 0 while none is.
    open: AtomicUsize,
    /// Helpers that joined the open section and may still use its job.
    active: AtomicUsize,
    /// The next part of the current section to be claimed (by the caller or a helper).
    next: AtomicUsize,
    /// The current section: its job (lifetime erased, see `run`) and its number of parts.
    job: Mutex<Option<(Job<'static>, usize)>>,
    /// Set when a helper's part panicked; the caller panics in turn.
    panicked: AtomicBool,
    stop: AtomicBool,
}

thread_local! {
    /// The team this thread leads, while `with_team` runs on it.
    static LEADING: Cell<Option<&'static Team>> = const { Cell::new(None) };
}

/// Runs `f` with `threads - 1` helpers awake for `for_each_part` (no helpers for 0 or 1).
/// A helper the system cannot spawn (out of memory or of threads) is done without: the team
/// works with those it has, down to the caller alone, with the same results.
pub(crate) fn with_team<R>(threads: usize, f: impl FnOnce() -> R) -> R {
    let threads = threads.min(max_threads());
    if threads < 2 || LEADING.with(Cell::get).is_some() {
        return f();
    }
    let team = Team {
        helpers: AtomicUsize::new(0),
        generation: AtomicUsize::new(0),
        open: AtomicUsize::new(0),
        active: AtomicUsize::new(0),
        next: AtomicUsize::new(0),
        job: Mutex::new(None),
        panicked: AtomicBool::new(false),
        stop: AtomicBool::new(false),
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            let team = &team;
            // `Builder::spawn_scoped` returns the error where `scope.spawn` would panic.
            let spawned = std::thread::Builder::new().spawn_scoped(scope, move || team.serve());
            if spawned.is_err() {
                break;
            }
            team.helpers.fetch_add(1, Ordering::AcqRel);
        }
        // Helpers stop when this leaves, by return or by unwinding.
        struct Stop<'t>(&'t Team);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                LEADING.with(|l| l.set(None));
                self.0.stop.store(true, Ordering::Release);
            }
        }
        let _stop = Stop(&team);
        // SAFETY: the reference is cleared (by `Stop`) before `team` goes out of scope.
        let leading: &'static Team = unsafe { &*(&team as *const Team) };
        LEADING.with(|l| l.set(Some(leading)));
        f()
    })
}

/// Runs `f(0)`, ..., `f(parts - 1)`, in parallel where possible: on this thread's team when it
/// leads one, else on ferrinet's rayon pool (`pool`), else (no thread could be spawned for
/// it) one after the other on this thread, with the same results.
pub(crate) fn for_each_part(parts: usize, f: impl Fn(usize) + Sync + Send) {
    if parts <= 1 {
        return (0..parts).for_each(f);
    }
    match (LEADING.with(Cell::get), pool()) {
        (Some(team), _) => team.run(parts, &f),
        (None, Some(pool)) => pool.install(|| {
            use rayon::prelude::*;
            (0..parts).into_par_iter().for_each(f)
        }),
        (None, None) => (0..parts).for_each(f),
    }
}

/// The rayon pool for parallel work outside a team (predict, evaluate, a small network's
/// batch split by rows), built at its first use with one thread per usable CPU, or fewer
/// when the system refuses threads (half as many at each refusal); None when not even two
/// could be spawned. rayon's global pool panics when a thread of it cannot be spawned, and
/// stays unusable after: ferrinet never uses it. Which thread runs a part never changes
/// the result, so a smaller pool, or none, gives the same bits.
fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let mut threads = usable_cpus();
        while threads >= 2 {
            let built = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("ferrinet-{i}"))
                .build();
            if let Ok(pool) = built {
                return Some(pool);
            }
            threads /= 2;
        }
        None
    })
    .as_ref()
}

/// `f` on each of `items`, each item moved to the part that runs it (disjoint `&mut` blocks
/// of a buffer, say), in parallel as `for_each_part`; the results in the items' order.
pub(crate) fn map_parts<B: Send, R: Send>(
    items: Vec<B>,
    f: impl Fn(B) -> R + Sync + Send,
) -> Vec<R> {
    // One slot per part, locked only by that part (never contended).
    let slots: Vec<Mutex<(Option<B>, Option<R>)>> = items
        .into_iter()
        .map(|item| Mutex::new((Some(item), None)))
        .collect();
    for_each_part(slots.len(), |i| {
        let mut slot = slots[i].lock().unwrap_or_else(|e| e.into_inner());
        if let Some(item) = slot.0.take() {
            slot.1 = Some(f(item));
        }
    });
    slots
        .into_iter()
        .map(|slot| {
            let (_, result) = slot.into_inner().unwrap_or_else(|e| e.into_inner());
            result.expect("every part ran")
        })
        .collect()
}

impl Team {
    /// A helper: takes parts of every section it joins until the team stops.
    ///
    /// A helper joins a section (`active` + 1) and only then checks that it is still open;
    /// the caller closes it (`open` = 0) and only then waits for `active` to reach 0. With
    /// both orders sequentially consistent, either the caller sees the helper in `active`
    /// and waits for it, or the helper sees the section closed and leaves without touching
    /// its job. So the caller never waits for a helper that is asleep, or descheduled on a
    /// busy machine, unless that helper holds one of the section's parts (before, every
    /// helper had to check in to every section: on a loaded 2-core machine a batch-16 Adam
    /// epoch on 2 threads took 27x one thread's time, each section waiting a time slice).
    fn serve(&self) {
        let mut seen = 0;
        loop {
            let mut polls = 0u32;
            let open = loop {
                let g = self.open.load(Ordering::Acquire);
                if g != 0 && g != seen && !held() {
                    break g;
                }
                if self.stop.load(Ordering::Acquire) {
                    return;
                }
                polls = polls.saturating_add(1);
                if polls < YIELD_AFTER {
                    std::hint::spin_loop();
                } else if polls < SLEEP_AFTER {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(NAP);
                }
            };
            self.active.fetch_add(1, Ordering::SeqCst);
            if self.open.load(Ordering::SeqCst) == open {
                seen = open;
                let job = *self.job.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((f, parts)) = job {
                    if catch_unwind(AssertUnwindSafe(|| self.claim_parts(parts, f))).is_err() {
                        self.panicked.store(true, Ordering::Release);
                    }
                }
            }
            self.active.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Runs parts of the current section, claimed one at a time, until none is left: a thread
    /// that runs slower (a busy core) takes fewer parts, and which thread runs a part never
    /// changes what it computes.
    fn claim_parts(&self, parts: usize, f: &(dyn Fn(usize) + Sync)) {
        loop {
            let i = self.next.fetch_add(1, Ordering::AcqRel);
            if i >= parts {
                return;
            }
            f(i);
        }
    }

    /// One section: its parts claimed by this thread and the helpers that join it; returns
    /// when all are done.
    fn run(&self, parts: usize, f: &(dyn Fn(usize) + Sync)) {
        // SAFETY: helpers use `f` only after joining the open section and until they leave
        // (`active`), and this function does not return (nor unwind, see `Wait`) before the
        // section is closed and `active` is back to zero, so the erased lifetime never
        // outlives the borrow.
        let job: Job<'static> = unsafe { std::mem::transmute::<Job<'_>, Job<'static>>(f) };
        *self.job.lock().unwrap_or_else(|e| e.into_inner()) = Some((job, parts));
        self.next.store(0, Ordering::Relaxed);
        // only this thread opens sections: the number is never 0 (2^64 sections never come)
        let number = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        self.open.store(number, Ordering::SeqCst);
        struct Wait<'t>(&'t Team);
        impl Drop for Wait<'_> {
            fn drop(&mut self) {
                self.0.open.store(0, Ordering::SeqCst);
                let mut polls = 0u32;
                while self.0.active.load(Ordering::SeqCst) != 0 {
                    // a helper that joined holds a part, or is leaving; let it have the core
                    polls = polls.saturating_add(1);
                    if polls < 1 << 10 {
                        std::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                }
                *self.0.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
            }
        }
        let wait = Wait(self);
        self.claim_parts(parts, f);
        drop(wait);
        if self.panicked.swap(false, Ordering::AcqRel) {
            panic!("a training thread panicked");
        }
    }
}

/// Tests hold the helpers back (they poll but join no section), as a descheduled helper would
/// be held on a busy machine.
#[cfg(test)]
static HOLD_HELPERS: AtomicBool = AtomicBool::new(false);

fn held() -> bool {
    #[cfg(test)]
    if HOLD_HELPERS.load(Ordering::Acquire) {
        return true;
    }
    false
}

/// A mutable buffer whose elements the parts of a section write, each part its own (blocks of
/// rows or of columns of a product).
#[derive(Clone, Copy)]
pub(crate) struct Disjoint<T>(*mut T);
// SAFETY: the parts of one section write disjoint elements, while the caller's borrow lives.
unsafe impl<T> Send for Disjoint<T> {}
unsafe impl<T> Sync for Disjoint<T> {}

impl<T> Disjoint<T> {
    pub(crate) fn new(buffer: &mut [T]) -> Self {
        Disjoint(buffer.as_mut_ptr())
    }

    /// The same buffer as one of U, which must be T (the callers assert it).
    pub(crate) fn cast<U>(self) -> Disjoint<U> {
        Disjoint(self.0.cast())
    }

    /// The pointer to element `offset`.
    /// Safety: inside the buffer, and written by one part only.
    pub(crate) unsafe fn at(self, offset: usize) -> *mut T {
        self.0.add(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_runs_once_with_and_without_a_team() {
        for threads in [1, 2, 3] {
            with_team(threads, || {
                for parts in [0, 1, 2, 3] {
                    for _ in 0..200 {
                        let hits: Vec<AtomicUsize> =
                            (0..parts).map(|_| AtomicUsize::new(0)).collect();
                        for_each_part(parts, |i| {
                            hits[i].fetch_add(1, Ordering::Relaxed);
                        });
                        assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
                    }
                }
            });
        }
    }

    #[test]
    fn map_parts_gives_each_part_its_item_and_keeps_the_order() {
        for threads in [1, 2, 3] {
            with_team(threads, || {
                let mut buffer = vec![0usize; 1000];
                let blocks: Vec<&mut [usize]> = buffer.chunks_mut(300).collect();
                let sums = map_parts(blocks, |block| {
                    block.iter_mut().for_each(|v| *v += 1);
                    block.len()
                });
                assert_eq!(sums, vec![300, 300, 300, 100]);
                assert!(buffer.iter().all(|&v| v == 1), "{threads} threads");
            });
        }
    }

    #[test]
    fn the_caller_never_waits_for_a_helper_that_did_not_join() {
        // Helpers that never join (asleep, or descheduled on a busy machine): the caller runs
        // every part itself and each section returns at once. When every helper had to check
        // in to every section, this waited forever.
        HOLD_HELPERS.store(true, Ordering::Release);
        let done = AtomicUsize::new(0);
        with_team(3, || {
            for _ in 0..1000 {
                for_each_part(4, |_| {
                    done.fetch_add(1, Ordering::Relaxed);
                });
            }
        });
        HOLD_HELPERS.store(false, Ordering::Release);
        assert_eq!(done.load(Ordering::Relaxed), 4000);
    }

    #[test]
    fn the_default_follows_the_environment_in_order() {
        let s = |v: &str| Some(v.to_string());
        let max = max_threads();
        assert_eq!(threads_from(None, None), Ok(usable_cpus().min(max)));
        assert_eq!(threads_from(s("1"), s("3")), Ok(1));
        assert_eq!(threads_from(s(" 2 "), None), Ok(2.min(max)));
        assert_eq!(threads_from(s("100000"), None), Ok(max));
        assert_eq!(threads_from(s(""), s("1")), Ok(1));
        assert_eq!(threads_from(None, s("1")), Ok(1));
        assert_eq!(threads_from(None, s("1,4")), Ok(1));
        assert_eq!(threads_from(None, s("100000")), Ok(max));
        for bad_omp in ["0", "x", "-1", ""] {
            assert_eq!(threads_from(None, s(bad_omp)), threads_from(None, None));
        }
        for bad in ["0", "four", "-2", "1.5"] {
            let msg = threads_from(s(bad), s("1")).unwrap_err();
            assert!(msg.contains(THREADS_ENV) && msg.contains(bad), "{msg}");
        }
    }

    #[test]
    fn a_team_has_at_most_max_threads() {
        assert!((1..=THREADS_CAP).contains(&max_threads()));
        assert!(check_n_threads(max_threads()).is_ok());
        assert!(check_n_threads(0).is_err());
        let msg = check_n_threads(max_threads() + 1).unwrap_err().to_string();
        assert!(msg.contains(&format!("at most {}", max_threads())), "{msg}");
        // Asked for far more, the team gets max_threads (the caller and max - 1 helpers).
        let seen = Mutex::new(std::collections::HashSet::new());
        with_team(1 << 20, || {
            for _ in 0..50 {
                for_each_part(64, |_| {
                    seen.lock().unwrap().insert(std::thread::current().id());
                    std::thread::sleep(std::time::Duration::from_micros(50));
                });
            }
        });
        assert!(seen.into_inner().unwrap().len() <= max_threads());
    }

    #[test]
    fn a_panicking_part_reaches_the_caller_and_the_team_still_stops() {
        let result = catch_unwind(|| {
            with_team(2, || {
                for_each_part(2, |i| {
                    if i == 1 {
                        panic!("part 1");
                    }
                })
            })
        });
        assert!(result.is_err());
        // The thread leads no team afterwards; parts still run.
        let hits = AtomicUsize::new(0);
        for_each_part(2, |_| {
            hits.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(hits.load(Ordering::Relaxed), 2);
    }
}
