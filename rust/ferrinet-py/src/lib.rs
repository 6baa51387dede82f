//! The Python binding of ferrinet-core, built by maturin as `ferrinet._core`.
//! Thin glue only: argument conversion (`convert`), error mapping (`errors`), GIL release and
//! Ctrl-C (`gil`), the `NeuralNetwork` class (`network`) and its files (`saving`).

mod args;
mod convert;
mod errors;
mod gil;
mod network;
mod saving;
mod trace;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<network::PyNeuralNetwork>()?;
    m.add_function(wrap_pyfunction!(trace::_trace, m)?)?;
    m.add(
        "DivergenceError",
        m.py().get_type::<errors::DivergenceError>(),
    )?;
    m.add(
        "ModelFormatError",
        m.py().get_type::<errors::ModelFormatError>(),
    )?;
    m.add(
        "ACTIVATIONS",
        [
            "identity",
            "linear",
            "relu",
            "leaky_relu",
            "sigmoid",
            "tanh",
            "softmax",
        ],
    )?;
    m.add("LOSSES", ["mse", "binary_cross_entropy", "cross_entropy"])?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // Which per-sample kernels this CPU runs ("avx2+fma" or "baseline"), for benchmarks.
    m.add("KERNELS", ferrinet_core::cpu_kernels())?;
    Ok(())
}
