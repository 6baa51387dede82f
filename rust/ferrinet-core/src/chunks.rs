//! Long passes over a network's parameters (drawing them, copying them out or into a new
//! network) cut into chunks of `STOP_EVERY` values, with a call of a `stop` callback before
//! each chunk: the binding looks for Ctrl-C there, so that such a pass over a network of
//! hundreds of MB ends within a few ms of a signal. A `stop` that answers true ends the pass
//! with `Error::Interrupted`, and what was made so far is dropped (nothing is changed).

use crate::error::{Error, Result};
use crate::float::Real;

/// Values per chunk: 2^19 (4 MiB of float64), a few ms to draw or copy, as the file's data
/// are written and read (io.rs).
pub const STOP_EVERY: usize = 1 << 19;

/// `stop` never answers true: the passes of calls that cannot be interrupted.
pub(crate) fn never() -> bool {
    false
}

/// A copy of `src`, made `STOP_EVERY` values at a time with a call of `stop` before each
/// chunk (none for an empty `src`). The memory is reserved first (an allocation failure is
/// `Error::Memory`) and not zeroed: each value is written once.
pub fn copy_until<T: Real>(src: &[T], stop: &mut dyn FnMut() -> bool) -> Result<Vec<T>> {
    let mut out = reserve(src.len())?;
    for chunk in src.chunks(STOP_EVERY) {
        if stop() {
            return Err(Error::Interrupted);
        }
        out.extend_from_slice(chunk);
    }
    Ok(out)
}

/// An empty vector with room for `len` values, or `Error::Memory`.
pub(crate) fn reserve<T: Real>(len: usize) -> Result<Vec<T>> {
    let mut out = Vec::new();
    out.try_reserve_exact(len).map_err(|_| {
        Error::Memory(format!(
            "cannot allocate {len} {} values ({:.1} GiB)",
            T::NAME,
            (len as f64 * std::mem::size_of::<T>() as f64) / (1u64 << 30) as f64
        ))
    })?;
    Ok(out)
}
