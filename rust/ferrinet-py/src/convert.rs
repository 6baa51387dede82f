//! Python values -> owned Rust buffers, and back. Every dtype and memory layout goes through
//! `to_f64_array`, so there is one place that decides what is accepted.

use ferrinet_core::Matrix;
use numpy::ndarray::Array2;
use numpy::npyffi::NPY_TYPES;
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods,
    PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PySet, PySlice, PyString, PyType};

/// An owned float array in C order, with its shape.
pub struct Array<T> {
    pub data: Vec<T>,
    pub shape: Vec<usize>,
}

pub type F64Array = Array<f64>;

/// The float types a network computes in, as both the core and NumPy know them.
pub trait Float: ferrinet_core::Real + numpy::Element {
    /// NumPy's type number of the dtype (`np.dtype(T).num`), for `vector_in_place`.
    const TYPE_NUM: NPY_TYPES;
}
impl Float for f32 {
    const TYPE_NUM: NPY_TYPES = NPY_TYPES::NPY_FLOAT;
}
impl Float for f64 {
    const TYPE_NUM: NPY_TYPES = NPY_TYPES::NPY_DOUBLE;
}

static AS_ARRAY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static NP_INTEGER: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// A class index given as a Python int or a NumPy integer scalar, when it lies in [0, n):
/// the per-call fast path (`vector_in_place`'s companion). None for anything else (bools,
/// floats, arrays, out of range), which the general path reads or refuses with its message.
pub fn class_index_in_range(obj: &Bound<'_, PyAny>, n: usize) -> Option<usize> {
    let integer = obj.is_exact_instance_of::<PyInt>() || {
        let np_integer = NP_INTEGER.import(obj.py(), "numpy", "integer").ok()?;
        obj.is_instance(np_integer).unwrap_or(false)
    };
    if !integer {
        return None;
    }
    let k = obj.extract::<i64>().ok()?;
    usize::try_from(k).ok().filter(|&k| k < n)
}

/// Any real-valued array-like (NumPy array of any real dtype and layout, list, tuple, scalar)
/// -> an owned float64 copy in C order. Complex, object, string and date dtypes are a
/// TypeError; the copy never aliases the caller's memory.
pub fn to_f64_array(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<F64Array> {
    to_array::<f64>(obj, what)
}

/// `to_f64_array` for the network's own float type (float32 networks read float32).
///
/// A NumPy array of more than `CONVERT_CHUNK` values that must be copied (another dtype, a
/// non-C layout) is copied in slices of whole rows, with a look for Ctrl-C before each: one
/// `astype` of 128 M values holds the GIL for about a second, during which Python's signal
/// handler cannot run. An interrupt returns KeyboardInterrupt before anything else happened.
pub fn to_array<T: Float>(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Array<T>> {
    if let Ok(arr) = obj.cast::<PyUntypedArray>() {
        if arr.len() > CONVERT_CHUNK && arr.ndim() >= 1 && arr.shape()[0] > 1 {
            return to_array_in_chunks(arr, what);
        }
    }
    to_array_whole(obj, what)
}

/// Values converted between two looks for Ctrl-C by `to_array` (as in the core's parameter
/// passes, `ferrinet_core::chunks`): a slice converts in about a millisecond.
const CONVERT_CHUNK: usize = 1 << 19;

/// `to_array` of a large array, slice by slice along the first axis. Each slice goes through
/// `to_array_whole`, so a refused dtype fails on the first slice with the usual message.
fn to_array_in_chunks<T: Float>(arr: &Bound<'_, PyUntypedArray>, what: &str) -> PyResult<Array<T>> {
    let shape = arr.shape().to_vec();
    let rows = shape[0];
    let row_len: usize = shape[1..].iter().product();
    let rows_per_chunk = (CONVERT_CHUNK / row_len.max(1)).max(1);
    let mut data = Vec::with_capacity(arr.len());
    let mut start = 0;
    while start < rows {
        crate::gil::check_signals()?;
        let end = (start + rows_per_chunk).min(rows);
        let slice = PySlice::new(arr.py(), start as isize, end as isize, 1);
        let part = to_array_whole::<T>(&arr.get_item(slice)?, what)?;
        data.extend_from_slice(&part.data);
        start = end;
    }
    Ok(Array { data, shape })
}

/// `to_array` in one go.
fn to_array_whole<T: Float>(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Array<T>> {
    let py = obj.py();
    if let Ok(arr) = obj.cast::<PyArrayDyn<T>>() {
        return Ok(copy_array(arr));
    }
    let arr = match obj.cast::<PyUntypedArray>() {
        Ok(arr) => arr.clone(),
        Err(_) => {
            // `numpy.asarray` makes a 0-d object array of these, refused below for its dtype;
            // naming the type says more (a dict as X, say).
            if obj.is_instance_of::<PyDict>()
                || obj.is_instance_of::<PySet>()
                || obj.is_instance_of::<PyFrozenSet>()
                || obj.is_instance_of::<PyString>()
                || obj.is_instance_of::<PyBytes>()
            {
                return Err(PyTypeError::new_err(format!(
                    "{what} must be an array, a list or a tuple of real numbers, got {}",
                    type_name(obj)
                )));
            }
            let asarray = AS_ARRAY.import(py, "numpy", "asarray")?;
            let converted = asarray.call1((obj,)).map_err(|e| {
                PyValueError::new_err(format!(
                    "{what} must be a real-valued array-like; converting {} failed: {e}",
                    type_name(obj)
                ))
            })?;
            converted.cast_into::<PyUntypedArray>()?
        }
    };
    let dtype = arr.dtype();
    match dtype.kind() {
        b'b' | b'i' | b'u' | b'f' => {}
        _ => {
            return Err(PyTypeError::new_err(format!(
                "{what} must hold real numbers (bool, int or float dtype), got dtype {}",
                dtype.str()?
            )))
        }
    }
    let converted = arr.call_method1("astype", (T::NAME,))?;
    Ok(copy_array(converted.cast::<PyArrayDyn<T>>()?))
}

/// Arrays at least this large are read in place (when their layout allows) rather than copied.
const BORROW_FROM: usize = 1 << 14;

/// A C-contiguous, aligned NumPy array of exactly type T with at least `BORROW_FROM` elements:
/// its data in place, and its shape. Large training sets are then never copied.
///
/// The slice lives as long as 'py and the caller keeps the array object alive (it holds the
/// `Bound`); NumPy does not move an array's buffer while references to the array exist. Like
/// NumPy's own functions that release the GIL, this assumes no other thread writes to the array
/// while ferrinet reads it (documented in the README).
pub fn borrow_array<'py, T: Float>(obj: &Bound<'py, PyAny>) -> Option<(&'py [T], Vec<usize>)> {
    let arr = obj.cast::<PyArrayDyn<T>>().ok()?;
    if arr.len() < BORROW_FROM || !arr.is_c_contiguous() {
        return None;
    }
    let ptr = arr.data();
    if ptr.is_null() || (ptr as usize) % std::mem::align_of::<T>() != 0 {
        return None;
    }
    // SAFETY: a C-contiguous array of len elements of T starting at ptr, aligned (checked);
    // kept alive by the caller's reference to it for 'py.
    let data = unsafe { std::slice::from_raw_parts(ptr as *const T, arr.len()) };
    Some((data, arr.shape().to_vec()))
}

/// A 1-D, C-contiguous, aligned NumPy array of exactly T in native byte order: its data in
/// place, whatever its length. The per-call methods (`backward`, `gradients` on one sample)
/// read a sample this way: the general conversion (`to_array`) costs about as much as a whole
/// step of a small network (a dtype comparison through NumPy's API, an ndarray view, a
/// vector). None for anything else; the caller then takes the general path, which also gives
/// the error messages. Lifetime and aliasing as for `borrow_array`.
pub fn vector_in_place<'py, T: Float>(obj: &Bound<'py, PyAny>) -> Option<&'py [T]> {
    let arr = obj.cast::<PyUntypedArray>().ok()?;
    if arr.ndim() != 1 || !arr.is_c_contiguous() || !arr.is_aligned() {
        return None;
    }
    let dtype = arr.dtype();
    if dtype.num() != T::TYPE_NUM as std::ffi::c_int || dtype.is_native_byteorder() == Some(false) {
        return None;
    }
    let len = arr.len();
    // SAFETY: a PyArrayObject (checked by the cast); reading its data pointer.
    let ptr =
        unsafe { (*numpy::npyffi::_PyArray_GET_ITEM_DATA(arr.as_array_ptr())).data } as *const T;
    if len == 0 || ptr.is_null() || (ptr as usize) % std::mem::align_of::<T>() != 0 {
        return None;
    }
    // SAFETY: len contiguous, aligned elements of T (type number and byte order checked) from
    // ptr; kept alive by the caller's reference to the array for 'py.
    Some(unsafe { std::slice::from_raw_parts(ptr, len) })
}

fn copy_array<T: Float>(arr: &Bound<'_, PyArrayDyn<T>>) -> Array<T> {
    // SAFETY: the view lives only for the copy below, made while this thread holds the GIL and
    // without calling back into Python, so nothing can write to the array meanwhile. (Taking
    // rust-numpy's `readonly()` borrow instead costs a hash-map insert and removal per call,
    // a sixth of a `backward` call on a small network.)
    let array = unsafe { arr.as_array() };
    let shape = array.shape().to_vec();
    // `as_slice` of the NumPy array would also accept a Fortran-ordered array and hand back its
    // memory order, so the fast path is the ndarray view's, which is only `Some` for the
    // standard (C) layout. Everything else (Fortran order, negative or zero strides, slices) is
    // read by the view's iterator, which visits elements in logical (C) order.
    let data = match array.as_slice() {
        Some(slice) => slice.to_vec(),
        None => array.iter().copied().collect(),
    };
    Array { data, shape }
}

/// A shape as Python writes it: (4, 2, 2), (3,), ().
pub fn shape_str(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A Python int of any size as i128, saturating (2**200 -> i128::MAX) so that "too large"
/// is reported as a range error, not as "not an int". None when `obj` is not an integer.
pub fn to_i128_saturating(obj: &Bound<'_, PyAny>) -> Option<i128> {
    if let Ok(v) = obj.extract::<i128>() {
        return Some(v);
    }
    let index = obj.call_method0("__index__").ok()?;
    let negative = index.lt(0).ok()?;
    Some(if negative { i128::MIN } else { i128::MAX })
}

pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".into())
}

/// Class indices read straight from a 1-D NumPy array of int64 or int32 (the usual dtypes of
/// labels), without the float64 copy that `to_class_indices` checks: the same indices, and the
/// same error for one out of range. None for any other object or dtype.
pub fn int_class_indices(obj: &Bound<'_, PyAny>, n_classes: usize) -> Option<PyResult<Vec<usize>>> {
    indices_of::<i64>(obj, n_classes).or_else(|| indices_of::<i32>(obj, n_classes))
}

fn indices_of<E: numpy::Element + Copy + Into<i64>>(
    obj: &Bound<'_, PyAny>,
    n_classes: usize,
) -> Option<PyResult<Vec<usize>>> {
    let arr = obj.cast::<PyArray1<E>>().ok()?;
    // SAFETY: as in `copy_array`: the view lives only for the loop below, run with the GIL
    // held and without calling back into Python.
    let view = unsafe { arr.as_array() };
    let mut out = Vec::with_capacity(view.len());
    for (k, &v) in view.iter().enumerate() {
        let v: i64 = v.into();
        match usize::try_from(v) {
            Ok(c) if c < n_classes => out.push(c),
            _ => return Some(Err(class_out_of_range(v as f64, k, n_classes))),
        }
    }
    Some(Ok(out))
}

fn class_out_of_range(v: f64, k: usize, n_classes: usize) -> PyErr {
    PyValueError::new_err(format!(
        "class index {v} at position {k} is out of range: expected 0 <= class < {n_classes}"
    ))
}

/// Class indices for cross-entropy: integers (or integral floats) in [0, n_classes).
pub fn to_class_indices(values: &[f64], n_classes: usize) -> PyResult<Vec<usize>> {
    values
        .iter()
        .enumerate()
        .map(|(k, &v)| {
            if v.fract() != 0.0 || !v.is_finite() {
                Err(PyValueError::new_err(format!(
                    "class indices must be integers, got {v} at position {k}"
                )))
            } else if v < 0.0 || v >= n_classes as f64 {
                Err(class_out_of_range(v, k, n_classes))
            } else {
                Ok(v as usize)
            }
        })
        .collect()
}

pub fn matrix_to_py<'py, T: Float>(py: Python<'py>, m: Matrix<T>) -> Bound<'py, PyArray2<T>> {
    let (rows, cols) = (m.rows(), m.cols());
    Array2::from_shape_vec((rows, cols), m.into_vec())
        .expect("matrix length is rows * cols")
        .into_pyarray(py)
}

pub fn vec_to_py<'py, T: Float>(py: Python<'py>, v: Vec<T>) -> Bound<'py, PyArray1<T>> {
    PyArray1::from_vec(py, v)
}

pub fn rows_to_py<'py, T: Float>(
    py: Python<'py>,
    v: Vec<T>,
    rows: usize,
    cols: usize,
) -> Bound<'py, PyArray2<T>> {
    Array2::from_shape_vec((rows, cols), v)
        .expect("length is rows * cols")
        .into_pyarray(py)
}

/// A Python float, refusing bools and giving a message that names the argument.
pub fn to_f64(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<f64> {
    if obj.is_instance_of::<pyo3::types::PyBool>() || obj.is_instance_of::<pyo3::types::PyString>()
    {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a number, got {}",
            type_name(obj)
        )));
    }
    obj.extract::<f64>()
        .map_err(|_| {
            PyTypeError::new_err(format!(
                "{what} must be a real number, got {}",
                type_name(obj)
            ))
        })
        .or_else(|e| obj.cast::<PyFloat>().map(|f| f.value()).map_err(|_| e))
}
