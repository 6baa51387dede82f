//! Constructor arguments: sizes, activation names, seeds and counts, with messages that say
//! what was expected and what was given.

use std::time::Instant;

use ferrinet_core::Activation;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyFrozenSet, PySet, PyString};

use crate::convert::{to_i128_saturating, type_name};
use crate::errors::IntoPyResult;

pub fn name_str(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    obj.cast::<PyString>().map(|s| s.to_string()).map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be a name (str), got {}",
            type_name(obj)
        ))
    })
}

/// Layer sizes: a sequence of positive Python ints (numpy integers too); floats and bools are
/// refused rather than rounded.
/// TypeError for a dict, a set or a str where a sequence is expected: they iterate (over keys,
/// in no order, or over characters), so without this they would fail later with a message
/// about their items instead of about themselves.
pub fn refuse_unordered(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<()> {
    if obj.is_instance_of::<PyDict>()
        || obj.is_instance_of::<PySet>()
        || obj.is_instance_of::<PyFrozenSet>()
        || obj.is_instance_of::<PyString>()
    {
        return Err(PyTypeError::new_err(format!(
            "{what}, got {}",
            type_name(obj)
        )));
    }
    Ok(())
}

pub fn parse_sizes(obj: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
    if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "sizes must be a list of layer sizes like [2, 8, 1], got a str",
        ));
    }
    refuse_unordered(obj, "sizes must be a list of layer sizes like [2, 8, 1]")?;
    let items = obj.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "sizes must be a list of layer sizes like [2, 8, 1], got {}",
            type_name(obj)
        ))
    })?;
    let mut sizes = Vec::new();
    for (i, item) in items.enumerate() {
        let item = item?;
        if item.is_instance_of::<PyBool>() || item.is_instance_of::<PyFloat>() {
            return Err(PyTypeError::new_err(format!(
                "sizes must be integers, got {} ({}) at position {i}",
                item.repr()?,
                type_name(&item)
            )));
        }
        let size = to_i128_saturating(&item).ok_or_else(|| {
            PyTypeError::new_err(format!(
                "sizes must be integers, got {} at position {i}",
                type_name(&item)
            ))
        })?;
        if size < 1 {
            return Err(PyValueError::new_err(format!(
                "sizes must be positive integers, got {size} at position {i}"
            )));
        }
        let size = usize::try_from(size).map_err(|_| {
            pyo3::exceptions::PyMemoryError::new_err(format!(
                "layer size {} at position {i} cannot be allocated",
                repr(&item)
            ))
        })?;
        sizes.push(size);
    }
    Ok(sizes)
}

/// One name for every hidden layer, or a list with one name per hidden layer; default relu.
pub fn parse_hidden_activations(
    obj: Option<&Bound<'_, PyAny>>,
    n_hidden: usize,
) -> PyResult<Vec<Activation>> {
    let Some(obj) = obj else {
        return Ok(vec![Activation::Relu; n_hidden]);
    };
    if obj.is_instance_of::<PyString>() {
        let act = Activation::from_name(&name_str(obj, "activation")?).py()?;
        return Ok(vec![act; n_hidden]);
    }
    let names: Vec<Bound<'_, PyAny>> = obj
        .try_iter()
        .map_err(|_| {
            PyTypeError::new_err(format!(
                "activation must be a name or a list of names (one per hidden layer), got {}",
                type_name(obj)
            ))
        })?
        .collect::<PyResult<_>>()?;
    if names.len() != n_hidden {
        return Err(PyValueError::new_err(format!(
            "activation lists one name per hidden layer: expected {n_hidden}, got {}",
            names.len()
        )));
    }
    names
        .iter()
        .map(|n| Activation::from_name(&name_str(n, "activation")?).py())
        .collect()
}

/// `seed=`: an int in [0, 2**64), or None for a random one (then readable as `net.seed`).
pub enum Seed {
    Fixed(u64),
    Random,
}

impl<'a, 'py> FromPyObject<'a, 'py> for Seed {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if obj.is_none() {
            return Ok(Seed::Random);
        }
        if obj.is_instance_of::<PyBool>() || obj.is_instance_of::<PyFloat>() {
            return Err(PyTypeError::new_err(format!(
                "seed must be an int or None, got {}",
                type_name(&obj)
            )));
        }
        let seed = to_i128_saturating(&obj).ok_or_else(|| {
            PyTypeError::new_err(format!(
                "seed must be an int or None, got {}",
                type_name(&obj)
            ))
        })?;
        u64::try_from(seed).map(Seed::Fixed).map_err(|_| {
            PyValueError::new_err(format!("seed must be in [0, 2**64), got {}", repr(&obj)))
        })
    }
}

/// A non-negative count (epochs); bools and floats refused.
pub fn parse_count(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<usize> {
    if obj.is_instance_of::<PyBool>() || obj.is_instance_of::<PyFloat>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be an int, got {}",
            type_name(obj)
        )));
    }
    let n = to_i128_saturating(obj).ok_or_else(|| {
        PyTypeError::new_err(format!("{what} must be an int, got {}", type_name(obj)))
    })?;
    if n < 0 {
        return Err(PyValueError::new_err(format!(
            "{what} must be >= 0, got {}",
            repr(obj)
        )));
    }
    usize::try_from(n).map_err(|_| {
        PyValueError::new_err(format!("{what} must be in [0, 2**64), got {}", repr(obj)))
    })
}

pub fn repr(obj: &Bound<'_, PyAny>) -> String {
    obj.repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| type_name(obj))
}

/// A seed for `seed=None`: std's per-process random hash keys, which the OS seeds.
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}
