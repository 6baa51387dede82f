//! The one place where core errors become Python exceptions.

use ferrinet_core::Error;
use pyo3::exceptions::{PyMemoryError, PyValueError};
use pyo3::PyErr;

pub fn to_py(err: Error) -> PyErr {
    match err {
        Error::Value(msg) => PyValueError::new_err(msg),
        Error::Memory(msg) => PyMemoryError::new_err(msg),
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
