//! `ferrinet._core._trace(net, x, y)`: one sample's forward and backward pass with every
//! intermediate kept (`NeuralNetwork::trace` in the core), as NumPy arrays for
//! `ferrinet.inspect.trace`. Inputs and targets are read by the same parsers as `gradients`.

use ferrinet_core::Trace;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::convert::{rows_to_py, vec_to_py, Float};
use crate::errors::IntoPyResult;
use crate::gil::Shared;
use crate::network::{Inner, Model, PyNeuralNetwork};

/// {"loss": float, "target": (m,), "layers": [{"activation", "weights" (n_out, n_in),
/// "biases", "input", "z", "a", "delta", "grad_weights" (n_out, n_in), "grad_biases",
/// "grad_input"}, ...]} for one sample x (n_inputs,) and its target y (a class index or a row
/// for cross_entropy; a row of m values, or a number when m = 1, otherwise). Arrays are new,
/// of the network's dtype. The network is not changed.
#[pyfunction]
pub fn _trace<'py>(
    py: Python<'py>,
    net: &Bound<'py, PyNeuralNetwork>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let net = net.get();
    match &net.inner {
        Inner::F32(m) => trace_model(py, net, m, x, y),
        Inner::F64(m) => trace_model(py, net, m, x, y),
    }
}

fn trace_model<'py, T: Float>(
    py: Python<'py>,
    net: &PyNeuralNetwork,
    m: &Shared<Model<T>>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let (inputs, targets) = net.inputs_and_targets::<T>(x, y)?;
    if !inputs.single && inputs.rows != 1 {
        return Err(PyValueError::new_err(format!(
            "trace follows one sample: x must have shape (n_inputs,) or (1, n_inputs), got a \
             batch of {} samples",
            inputs.rows
        )));
    }
    let xv = inputs.view();
    let trace = m
        .with(py, false, |m| m.net.trace(xv.as_slice(), targets.view()))
        .py()?;
    to_dict(py, trace)
}

fn to_dict<'py, T: Float>(py: Python<'py>, trace: Trace<T>) -> PyResult<Bound<'py, PyDict>> {
    let layers = PyList::empty(py);
    for lt in trace.layers {
        let (n_in, n_out) = (lt.n_inputs, lt.n_outputs);
        let d = PyDict::new(py);
        d.set_item("activation", lt.activation.name())?;
        d.set_item("weights", rows_to_py(py, lt.weights, n_out, n_in))?;
        d.set_item("biases", vec_to_py(py, lt.biases))?;
        d.set_item("input", vec_to_py(py, lt.input))?;
        d.set_item("z", vec_to_py(py, lt.z))?;
        d.set_item("a", vec_to_py(py, lt.a))?;
        d.set_item("delta", vec_to_py(py, lt.delta))?;
        d.set_item("grad_weights", rows_to_py(py, lt.grad_weights, n_out, n_in))?;
        d.set_item("grad_biases", vec_to_py(py, lt.grad_biases))?;
        d.set_item("grad_input", vec_to_py(py, lt.grad_input))?;
        layers.append(d)?;
    }
    let out = PyDict::new(py);
    out.set_item("loss", trace.loss)?;
    out.set_item("target", vec_to_py(py, trace.target))?;
    out.set_item("layers", layers)?;
    Ok(out)
}
