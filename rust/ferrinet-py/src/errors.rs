//! The one place where core errors become Python exceptions.

use ferrinet_core::Error;
use pyo3::create_exception;
use pyo3::exceptions::{PyFloatingPointError, PyMemoryError, PyValueError};
use pyo3::PyErr;

create_exception!(
    ferrinet,
    DivergenceError,
    PyFloatingPointError,
    "Training diverged: a step would have made the loss or a weight NaN or infinite. The step \
     was not applied, so the network keeps the weights of the last finite step."
);

create_exception!(
    ferrinet,
    ModelFormatError,
    PyValueError,
    "A saved model (bytes or a file) cannot be loaded: it is truncated, corrupted, not a \
     ferrinet file, or of an unsupported format version. The message says what is wrong. \
     Loading never executes code from the file."
);

pub fn to_py(err: Error) -> PyErr {
    match err {
        Error::Value(msg) => PyValueError::new_err(msg),
        Error::Memory(msg) => PyMemoryError::new_err(msg),
        Error::NonFinite(msg) => DivergenceError::new_err(msg),
        Error::Format(msg) => ModelFormatError::new_err(msg),
        Error::Interrupted => {
            pyo3::exceptions::PyKeyboardInterrupt::new_err("training was interrupted")
        }
    }
}

/// `core_result.map_err(to_py)` as a method.
pub trait IntoPyResult<T> {
    fn py(self) -> pyo3::PyResult<T>;
}

impl<T> IntoPyResult<T> for ferrinet_core::Result<T> {
    fn py(self) -> pyo3::PyResult<T> {
        self.map_err(to_py)
    }
}
