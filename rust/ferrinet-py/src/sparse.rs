//! CSR inputs: a sparse matrix arrives as its three arrays (int64 `indptr`, int32 `indices`,
//! `data` in the network's dtype) and its shape, read in place (no copy), and goes to the
//! core's sparse paths (`CsrRef`, which checks it). `ferrinet.network` turns scipy.sparse
//! matrices and arrays into these parts.

use ferrinet_core::{Accuracy, CsrRef, EpochMetrics, EpochOptions, Matrix};
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;

use crate::convert::{type_name, Float};
use crate::errors::IntoPyResult;
use crate::gil::{Shared, SignalWatch};
use crate::network::{Model, OwnedTargets};

/// The three arrays of a CSR matrix, borrowed read-only for the call, and its shape.
pub(crate) struct CsrArgs<'py, T: Float> {
    indptr: PyReadonlyArray1<'py, i64>,
    indices: PyReadonlyArray1<'py, i32>,
    data: PyReadonlyArray1<'py, T>,
    shape: (usize, usize),
}

/// A 1-D contiguous array of exactly E, or a TypeError naming what was given.
fn array_of<'py, E: numpy::Element>(
    obj: &Bound<'py, PyAny>,
    what: &str,
    want: &str,
) -> PyResult<PyReadonlyArray1<'py, E>> {
    let arr = obj.cast::<PyArray1<E>>().map_err(|_| {
        let dtype = obj
            .getattr("dtype")
            .map(|d| d.to_string())
            .unwrap_or_else(|_| type_name(obj));
        PyTypeError::new_err(format!(
            "sparse {what} must be a 1-D {want} array, got {dtype}"
        ))
    })?;
    if !arr.is_contiguous() {
        return Err(PyTypeError::new_err(format!(
            "sparse {what} must be a contiguous array"
        )));
    }
    Ok(arr.readonly())
}

impl<'py, T: Float> CsrArgs<'py, T> {
    pub(crate) fn new(
        indptr: &Bound<'py, PyAny>,
        indices: &Bound<'py, PyAny>,
        data: &Bound<'py, PyAny>,
        shape: (usize, usize),
    ) -> PyResult<Self> {
        Ok(CsrArgs {
            indptr: array_of(indptr, "indptr", "int64")?,
            indices: array_of(indices, "indices", "int32")?,
            data: array_of(data, "data", T::NAME)?,
            shape,
        })
    }

    /// The parts as slices (Send: they go into code that runs without the GIL).
    fn parts(&self) -> ((usize, usize), &[i64], &[i32], &[T]) {
        let slice = "contiguous arrays (checked on conversion)";
        (
            self.shape,
            self.indptr.as_slice().expect(slice),
            self.indices.as_slice().expect(slice),
            self.data.as_slice().expect(slice),
        )
    }
}

pub(crate) fn predict<T: Float>(
    py: Python<'_>,
    m: &Shared<Model<T>>,
    x: &CsrArgs<'_, T>,
) -> PyResult<Matrix<T>> {
    let (shape, indptr, indices, data) = x.parts();
    m.with(py, data.len() > 1 << 12, |m| {
        let x = CsrRef::new(shape, indptr, indices, data)?;
        m.net.predict_sparse(x)
    })
    .py()
}

pub(crate) fn loss<T: Float>(
    py: Python<'_>,
    m: &Shared<Model<T>>,
    x: &CsrArgs<'_, T>,
    t: &OwnedTargets<T>,
    weights: Option<&[T]>,
    l2: f64,
) -> PyResult<f64> {
    let (shape, indptr, indices, data) = x.parts();
    m.with(py, data.len() > 1 << 12, |m| {
        let x = CsrRef::new(shape, indptr, indices, data)?;
        let batch = m.net.sparse_batch(x, t.view(), weights)?;
        m.net.regularized_loss_sparse(&batch, l2)
    })
    .py()
}

/// One epoch on sparse inputs, detached, stoppable by Ctrl-C between batches (as `run_epoch`);
/// with `accuracy` (Some, optionally weighted) it counts a classifier's running accuracy.
pub(crate) fn train_epoch<T: Float>(
    py: Python<'_>,
    m: &Shared<Model<T>>,
    x: &CsrArgs<'_, T>,
    (t, weights): (&OwnedTargets<T>, Option<&[T]>),
    options: &EpochOptions,
    accuracy: Option<Option<&[T]>>,
) -> PyResult<EpochMetrics> {
    let (shape, indptr, indices, data) = x.parts();
    py.detach(|| {
        let mut guard = m.lock();
        let model = &mut *guard;
        let Some(state) = model.training.as_mut() else {
            return Err(PyRuntimeError::new_err(
                "no training state: call _start_training first",
            ));
        };
        let x = CsrRef::new(shape, indptr, indices, data).py()?;
        let batch = model.net.sparse_batch(x, t.view(), weights).py()?;
        let accuracy = accuracy.map_or(Accuracy::Skip, Accuracy::Count);
        let mut watch = SignalWatch::new();
        let stop = &mut || watch.stop();
        let result = model
            .net
            .train_epoch_sparse_measured(&batch, options, state, accuracy, stop);
        if let Some(e) = watch.take() {
            return Err(e);
        }
        result.py()
    })
}

/// What `fit` checks of sparse data before it starts (`check_sparse_targets`); with `finite`,
/// the matrix's arrays too (`CsrRef::new`: structure and values).
pub(crate) fn check_data<T: Float>(
    py: Python<'_>,
    m: &Shared<Model<T>>,
    x: &CsrArgs<'_, T>,
    (t, weights): (&OwnedTargets<T>, Option<&[T]>),
    finite: bool,
) -> PyResult<()> {
    let (shape, indptr, indices, data) = x.parts();
    m.with(py, finite && data.len() > 1 << 12, |m| {
        m.net.check_sparse_targets(shape, t.view(), weights)?;
        if finite {
            CsrRef::new(shape, indptr, indices, data)?;
        }
        Ok(())
    })
    .py()
}
