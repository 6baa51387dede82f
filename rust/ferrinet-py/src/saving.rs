//! Saving and loading glue: the core reads and writes the files (`ferrinet_core::io`); this
//! hands a loaded network to `NeuralNetwork.__new__` and describes optimizers to Python.

use ferrinet_core::Optimizer;
use parking_lot::Mutex;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::gil::SignalWatch;
use crate::network::{new_bytes, PyNeuralNetwork};

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

/// `ferrinet._core._read_all(fd)`: the rest of the open file `fd` (from its current position),
/// read without the GIL straight into the `bytes` object returned, 1 MiB at a time with a look
/// for Ctrl-C before each. In Python, one `read` of a large file runs to its end before Ctrl-C
/// lands, and joining chunks read one by one copies the file once more while Python waits.
/// The caller owns the descriptor (an open Python file) and closes it. OSError on a read error.
#[cfg(unix)]
#[pyfunction]
pub fn _read_all(py: Python<'_>, fd: i32) -> PyResult<Bound<'_, PyBytes>> {
    use std::io::{ErrorKind, Read};
    use std::os::fd::FromRawFd;

    const CHUNK: usize = 1 << 20;
    // SAFETY: the caller's open file owns the descriptor and keeps it open during this call;
    // `ManuallyDrop` never closes it.
    let file = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
    let mut file: &std::fs::File = &file;
    let size = usize::try_from(file.metadata()?.len())
        .map_err(|_| PyValueError::new_err("the file is larger than this machine can address"))?;
    let (object, mut contents) = new_bytes(py, size)?;
    let mut watch = SignalWatch::each_call();
    let read = py.detach(|| -> std::io::Result<usize> {
        let stop = &mut || watch.stop();
        let Some(buffer) = contents.zeroed(stop) else {
            return Ok(0);
        };
        let mut at = 0;
        while at < buffer.len() && !stop() {
            let end = (at + CHUNK).min(buffer.len());
            match file.read(&mut buffer[at..end]) {
                Ok(0) => break,
                Ok(n) => at += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(at)
    });
    if let Some(e) = watch.take() {
        return Err(e);
    }
    let read = read?;
    // The file changed size while it was read: what was read, then anything left.
    let mut rest = Vec::new();
    if read == size {
        py.detach(|| file.read_to_end(&mut rest))?;
    }
    if read == size && rest.is_empty() {
        return Ok(object);
    }
    let mut all = object.as_bytes()[..read].to_vec();
    all.extend_from_slice(&rest);
    Ok(PyBytes::new(py, &all))
}
