//! Saving and loading glue: the core reads and writes the files (`ferrinet_core::io`); this
//! hands a loaded network to `NeuralNetwork.__new__` and describes optimizers to Python.

use ferrinet_core::Optimizer;
use parking_lot::Mutex;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::network::PyNeuralNetwork;

/// A network read from a file, on its way into `NeuralNetwork.__new__(cls, capsule)`: the
/// constructor takes it out instead of drawing weights, so subclasses are built as themselves.
/// Not exported; one capsule makes one network.
#[pyclass(module = "ferrinet._core", name = "_LoadedModel", frozen)]
pub struct LoadedCapsule {
    model: Mutex<Option<PyNeuralNetwork>>,
}

impl LoadedCapsule {
    pub fn new(net: PyNeuralNetwork) -> Self {
        LoadedCapsule {
            model: Mutex::new(Some(net)),
        }
    }

    pub fn take(&self) -> PyResult<PyNeuralNetwork> {
        self.model
            .lock()
            .take()
            .ok_or_else(|| PyValueError::new_err("this loaded model was already used"))
    }
}

/// The optimizer as the flat dict of `ferrinet.optim` objects' `to_dict()`: the serde form
/// of the core's record (`OptimizerConfig`), as saved files hold it.
pub fn optimizer_config_dict<'py>(
    py: Python<'py>,
    optimizer: &Optimizer,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(pythonize::pythonize(py, &optimizer.config())?)
}

/// `ferrinet._core._fsync_directory(path)`: opens the directory, fsyncs it and closes it
/// without the GIL, in one call, so the descriptor never reaches Python: a KeyboardInterrupt
/// raised as `os.open` returned (before Python stored the descriptor) leaked it. OSError if
/// the directory cannot be opened or synced.
#[pyfunction]
pub fn _fsync_directory(py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
    py.detach(|| ferrinet_core::sync_directory(&path))
        .map_err(PyErr::from)
}
