//! The Python binding of ferrinet-core, built by maturin as `ferrinet._core`.
//! Thin glue only: argument conversion (`convert`), error mapping (`errors`), GIL release and
//! Ctrl-C (`gil`), the `NeuralNetwork` class (`network`) and its files (`saving`).

mod args;
mod convert;
mod errors;
mod flat;
mod gil;
mod network;
mod saving;
mod sparse;
mod trace;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<network::PyNeuralNetwork>()?;
    m.add_function(wrap_pyfunction!(trace::_trace, m)?)?;
    m.add_function(wrap_pyfunction!(max_threads, m)?)?;
    m.add_function(wrap_pyfunction!(gil::_signal_polls, m)?)?;
    m.add_function(wrap_pyfunction!(saving::_fsync_directory, m)?)?;
    #[cfg(unix)]
    m.add_function(wrap_pyfunction!(saving::_read_all, m)?)?;
    m.add(
        "DivergenceError",
        m.py().get_type::<errors::DivergenceError>(),
    )?;
    m.add(
        "ModelFormatError",
        m.py().get_type::<errors::ModelFormatError>(),
    )?;
    // The names the constructor accepts, from the core's own lists (each alias after its name).
    m.add("ACTIVATIONS", ferrinet_core::Activation::names())?;
    m.add("LOSSES", ferrinet_core::Loss::names())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // Which per-sample kernels this CPU runs ("avx2+fma" or "baseline"), for benchmarks.
    m.add("KERNELS", ferrinet_core::cpu_kernels())?;
    Ok(())
}

/// The most threads a network may use on this machine (``n_threads``): 4 per CPU this process
/// may run on (its affinity mask and CPU quota), at most 256. More is refused with ValueError
/// by the constructor, the ``n_threads`` setter and the scikit-learn wrapper; a file asking for
/// more loads with this many.
#[pyfunction]
fn max_threads() -> usize {
    ferrinet_core::max_threads()
}
