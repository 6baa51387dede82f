//! `ferrinet._core.NeuralNetwork`: converts arguments, calls the core, converts results.
//! No maths here; shapes are interpreted (sample vs batch, class indices vs rows) and checked.

use std::time::Instant;

use ferrinet_core::{
    check_learning_rate, Activation, Loss, MatRef, Matrix, NeuralNetwork, Targets, TrainProgress,
};
use numpy::{PyArray1, PyArray2};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyString, PyTuple};

use crate::convert::{
    matrix_to_py, rows_to_py, shape_str, to_class_indices, to_f64, to_f64_array,
    to_i128_saturating, type_name, vec_to_py, F64Array,
};
use crate::errors::IntoPyResult;
use crate::gil::{check_signals, Chunker, Shared};

/// [(W or dW (n_out, n_in), b or db (n_out,)) per layer], as returned to Python.
type LayerArrays<'py> = Vec<(Bound<'py, PyArray2<f64>>, Bound<'py, PyArray1<f64>>)>;

/// Calls smaller than this many multiply-adds keep the GIL: releasing it costs more than they do.
const RELEASE_GIL_ABOVE: usize = 200_000;

#[pyclass(name = "NeuralNetwork", module = "ferrinet._core", subclass, frozen)]
pub struct PyNeuralNetwork {
    net: Shared<NeuralNetwork>,
    // Facts that never change after construction, readable without the lock.
    sizes: Vec<usize>,
    activations: Vec<Activation>,
    loss: Loss,
    seed: u64,
    n_parameters: usize,
}

/// Inputs as the core wants them: an owned (rows, cols) buffer, and whether the caller gave a
/// single 1-D sample (so results go back 1-D).
struct Inputs {
    data: Vec<f64>,
    rows: usize,
    cols: usize,
    single: bool,
}

impl Inputs {
    fn view(&self) -> MatRef<'_> {
        MatRef::new(&self.data, self.rows, self.cols).expect("shape checked on conversion")
    }
}

enum OwnedTargets {
    Dense {
        data: Vec<f64>,
        rows: usize,
        cols: usize,
    },
    Classes(Vec<usize>),
}

impl OwnedTargets {
    fn view(&self) -> Targets<'_> {
        match self {
            OwnedTargets::Dense { data, rows, cols } => Targets::Dense(
                MatRef::new(data, *rows, *cols).expect("shape checked on conversion"),
            ),
            OwnedTargets::Classes(c) => Targets::Classes(c),
        }
    }
}

#[pymethods]
impl PyNeuralNetwork {
    #[new]
    #[pyo3(signature = (sizes, activation=None, output_activation=None, loss=None, seed=Seed::Fixed(0)))]
    #[pyo3(
        text_signature = "(sizes, activation='relu', output_activation=None, loss='mse', seed=0)"
    )]
    fn new(
        py: Python<'_>,
        sizes: &Bound<'_, PyAny>,
        activation: Option<&Bound<'_, PyAny>>,
        output_activation: Option<&Bound<'_, PyAny>>,
        loss: Option<&Bound<'_, PyAny>>,
        seed: Seed,
    ) -> PyResult<Self> {
        let sizes = parse_sizes(sizes)?;
        let n_hidden = sizes.len().saturating_sub(2);
        let hidden = parse_hidden_activations(activation, n_hidden)?;
        let output = match output_activation {
            None => None,
            Some(name) => Some(Activation::from_name(&name_str(name, "output_activation")?).py()?),
        };
        let loss = match loss {
            None => Loss::Mse,
            Some(name) => Loss::from_name(&name_str(name, "loss")?).py()?,
        };
        let seed = match seed {
            Seed::Random => random_seed(),
            Seed::Fixed(s) => s,
        };
        // Drawing the weights of a large network takes a while: do it without the GIL.
        let net = py
            .detach(|| NeuralNetwork::new(&sizes, &hidden, output, loss, seed))
            .py()?;
        Ok(PyNeuralNetwork {
            sizes: net.sizes(),
            activations: net.layers().iter().map(|l| l.activation()).collect(),
            loss,
            seed,
            n_parameters: net.n_parameters(),
            net: Shared::new(net),
        })
    }

    /// [n_inputs, hidden..., n_outputs]
    #[getter]
    fn sizes(&self) -> Vec<usize> {
        self.sizes.clone()
    }

    /// The activation of every layer, the output layer's last ("linear" is reported as "identity").
    #[getter]
    fn activations(&self) -> Vec<&'static str> {
        self.activations.iter().map(|a| a.name()).collect()
    }

    #[getter]
    fn loss(&self) -> &'static str {
        self.loss.name()
    }

    /// The seed the weights were drawn with (the random one when seed=None was given).
    #[getter]
    fn seed(&self) -> u64 {
        self.seed
    }

    #[getter]
    fn n_parameters(&self) -> usize {
        self.n_parameters
    }

    /// 1-D sample (n_inputs,) -> 1-D output (n_outputs,); 2-D batch (n, n_inputs) -> (n, n_outputs).
    fn forward<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let x = self.inputs(x, "x")?;
        let out = self.run_predict(py, &x)?;
        Ok(if x.single {
            vec_to_py(py, out.into_vec()).into_any()
        } else {
            matrix_to_py(py, out).into_any()
        })
    }

    /// Batch forward: (n, n_inputs) -> (n, n_outputs). A 1-D sample is taken as a batch of one.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let x = self.inputs(x, "X")?;
        Ok(matrix_to_py(py, self.run_predict(py, &x)?))
    }

    /// The mean loss over the samples (no state changes).
    fn compute_loss(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
    ) -> PyResult<f64> {
        let (x, t) = self.inputs_and_targets(x, y)?;
        self.net
            .with(py, self.is_big(x.rows), |net| {
                net.compute_loss(&net.batch(x.view(), t.view())?)
            })
            .py()
    }

    /// [(dW (n_out, n_in), db (n_out,)) per layer] of the mean loss over the samples. The model
    /// is unchanged.
    fn gradients<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
    ) -> PyResult<LayerArrays<'py>> {
        let (x, t) = self.inputs_and_targets(x, y)?;
        let (_, grads) = self
            .net
            .with(py, self.is_big(x.rows), |net| {
                let batch = net.batch(x.view(), t.view())?;
                net.gradients(&batch)
            })
            .py()?;
        Ok(grads
            .into_iter()
            .zip(self.sizes.windows(2))
            .map(|(g, s)| {
                (
                    rows_to_py(py, g.weights, s[1], s[0]),
                    vec_to_py(py, g.biases),
                )
            })
            .collect())
    }

    /// One SGD step on a sample (1-D x) or on the mean loss of a batch (2-D x). Returns the
    /// loss of the forward pass done before the step.
    fn backward(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        learning_rate: &Bound<'_, PyAny>,
    ) -> PyResult<f64> {
        let learning_rate = to_f64(learning_rate, "learning_rate")?;
        let (x, t) = self.inputs_and_targets(x, y)?;
        self.net
            .with(py, self.is_big(x.rows), |net| {
                let batch = net.batch(x.view(), t.view())?;
                net.backward(&batch, learning_rate)
            })
            .py()
    }

    /// The article's loop, run entirely in Rust with the GIL released: per-sample SGD over the
    /// samples in order, `epochs` times. Returns the mean loss of each epoch. Ctrl-C stops it
    /// within a few tens of milliseconds (KeyboardInterrupt), with the weights of the last
    /// completed step.
    fn train(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        epochs: &Bound<'_, PyAny>,
        learning_rate: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<f64>> {
        let epochs = parse_count(epochs, "epochs")?;
        let learning_rate = to_f64(learning_rate, "learning_rate")?;
        check_learning_rate(learning_rate).py()?;
        let (x, t) = self.inputs_and_targets(x, y)?;
        py.detach(|| {
            let batch = self.net.lock().batch(x.view(), t.view()).py()?;
            let mut progress = TrainProgress::default();
            let mut remaining = epochs.saturating_mul(batch.len());
            let mut chunker = Chunker::new();
            while remaining > 0 {
                let steps = chunker.next_len(remaining);
                let started = Instant::now();
                self.net
                    .with_fair(|net| net.train_steps(&batch, &mut progress, steps, learning_rate))
                    .py()?;
                chunker.record(started);
                remaining -= steps;
                check_signals()?;
            }
            Ok(progress.epoch_losses)
        })
    }

    /// Copies of [(W (n_out, n_in), b (n_out,)) per layer].
    fn get_weights<'py>(&self, py: Python<'py>) -> LayerArrays<'py> {
        let params = self.net.with(py, false, |net| net.parameters());
        params
            .into_iter()
            .zip(self.sizes.windows(2))
            .map(|((w, b), s)| (rows_to_py(py, w, s[1], s[0]), vec_to_py(py, b)))
            .collect()
    }

    /// Replaces every layer's (W, b); shapes must match exactly and values be finite. On any
    /// error no layer is changed.
    fn set_weights(&self, py: Python<'_>, weights: &Bound<'_, PyAny>) -> PyResult<()> {
        let pairs: Vec<Bound<'_, PyAny>> = weights
            .try_iter()
            .map_err(|_| {
                PyTypeError::new_err(format!(
                    "weights must be a list of (W, b) pairs, got {}",
                    type_name(weights)
                ))
            })?
            .collect::<PyResult<_>>()?;
        if pairs.len() != self.sizes.len() - 1 {
            return Err(PyValueError::new_err(format!(
                "expected {} (W, b) pairs, one per layer, got {}",
                self.sizes.len() - 1,
                pairs.len()
            )));
        }
        let mut params = Vec::with_capacity(pairs.len());
        for (l, (pair, s)) in pairs.iter().zip(self.sizes.windows(2)).enumerate() {
            let (n_in, n_out) = (s[0], s[1]);
            let tuple = pair.cast::<PyTuple>().ok().filter(|t| t.len() == 2);
            let items: Vec<Bound<'_, PyAny>> = match tuple {
                Some(t) => t.iter().collect(),
                None => pair
                    .try_iter()
                    .and_then(|it| it.collect::<PyResult<Vec<_>>>())
                    .map_err(|_| {
                        PyTypeError::new_err(format!(
                            "layer {l}: expected a (W, b) pair, got {}",
                            type_name(pair)
                        ))
                    })?,
            };
            if items.len() != 2 {
                return Err(PyValueError::new_err(format!(
                    "layer {l}: expected a (W, b) pair, got {} items",
                    items.len()
                )));
            }
            let w = to_f64_array(&items[0], "W")?;
            let b = to_f64_array(&items[1], "b")?;
            if w.shape != [n_out, n_in] {
                return Err(PyValueError::new_err(format!(
                    "layer {l}: W must have shape ({n_out}, {n_in}), got {}",
                    shape_str(&w.shape)
                )));
            }
            if b.shape != [n_out] {
                return Err(PyValueError::new_err(format!(
                    "layer {l}: b must have shape ({n_out},), got {:?}",
                    b.shape
                )));
            }
            params.push((w.data, b.data));
        }
        self.net
            .with(py, false, |net| net.set_parameters(params))
            .py()
    }
}

impl PyNeuralNetwork {
    fn n_inputs(&self) -> usize {
        self.sizes[0]
    }

    fn n_outputs(&self) -> usize {
        self.sizes[self.sizes.len() - 1]
    }

    fn is_big(&self, rows: usize) -> bool {
        rows.saturating_mul(self.n_parameters) > RELEASE_GIL_ABOVE
    }

    /// A 1-D sample or a 2-D batch; other ranks are refused. Column counts are checked by the core.
    fn inputs(&self, obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Inputs> {
        let F64Array { data, shape } = to_f64_array(obj, what)?;
        let (rows, cols, single) = match shape[..] {
            [cols] => (1, cols, true),
            [rows, cols] => (rows, cols, false),
            _ => {
                return Err(PyValueError::new_err(format!(
                    "{what} must be a 1-D sample ({},) or a 2-D batch (n, {}), got shape {}",
                    self.n_inputs(),
                    self.n_inputs(),
                    shape_str(&shape)
                )))
            }
        };
        Ok(Inputs {
            data,
            rows,
            cols,
            single,
        })
    }

    fn inputs_and_targets(
        &self,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
    ) -> PyResult<(Inputs, OwnedTargets)> {
        let x = self.inputs(x, "x")?;
        let t = self.targets(y, &x)?;
        Ok((x, t))
    }

    /// Reads targets in the shapes a user would write them:
    /// - cross_entropy: class indices (an int for a sample, a 1-D array for a batch) or rows of
    ///   probabilities (a 1-D row for a sample, (n, m) for a batch);
    /// - mse / binary_cross_entropy: (m,) for a sample, (n, m) for a batch; with one output a
    ///   scalar for a sample and (n,) for a batch are accepted too.
    fn targets(&self, obj: &Bound<'_, PyAny>, x: &Inputs) -> PyResult<OwnedTargets> {
        let m = self.n_outputs();
        let F64Array { data, shape } = to_f64_array(obj, "y")?;
        let dense = |rows: usize| OwnedTargets::Dense {
            data: data.clone(),
            rows,
            cols: m,
        };
        let classes = self.loss == Loss::CrossEntropy;
        Ok(match (x.single, &shape[..]) {
            (true, []) if classes => OwnedTargets::Classes(to_class_indices(&data, m)?),
            (false, [_]) if classes => OwnedTargets::Classes(to_class_indices(&data, m)?),
            (true, []) if m == 1 => dense(1),
            (true, [len]) if *len == m => dense(1),
            (false, [n]) if m == 1 => dense(*n),
            (false, [n, cols]) if *cols == m => dense(*n),
            _ => {
                let expected = match (x.single, classes) {
                    (true, true) => format!("a class index or a row of {m} probabilities"),
                    (false, true) => {
                        format!("class indices (n,) or rows of probabilities (n, {m})")
                    }
                    (true, false) if m == 1 => "a number or shape (1,)".to_string(),
                    (true, false) => format!("shape ({m},)"),
                    (false, false) if m == 1 => "shape (n,) or (n, 1)".to_string(),
                    (false, false) => format!("shape (n, {m})"),
                };
                return Err(PyValueError::new_err(format!(
                    "y for a network with {m} output(s) and loss {:?} must be {expected}, got shape {}",
                    self.loss.name(),
                    shape_str(&shape)
                )));
            }
        })
    }

    /// Batch forward; large batches run detached, in chunks of rows with Ctrl-C checks between
    /// them, all under one lock so every row sees the same weights.
    fn run_predict(&self, py: Python<'_>, x: &Inputs) -> PyResult<Matrix> {
        if !self.is_big(x.rows) {
            return self.net.with(py, false, |net| net.predict(x.view())).py();
        }
        py.detach(|| {
            let net = self.net.lock();
            net.check_inputs(x.view()).py()?;
            let mut out = Vec::with_capacity(x.rows * self.n_outputs());
            let mut chunker = Chunker::new();
            let mut start = 0;
            while start < x.rows {
                let len = chunker.next_len(x.rows - start);
                let started = Instant::now();
                let part = net.predict(x.view().rows_range(start, start + len)).py()?;
                out.extend_from_slice(part.as_slice());
                chunker.record(started);
                start += len;
                check_signals()?;
            }
            Matrix::from_vec(out, x.rows, self.n_outputs()).py()
        })
    }
}

fn name_str(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    obj.cast::<PyString>().map(|s| s.to_string()).map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be a name (str), got {}",
            type_name(obj)
        ))
    })
}

/// Layer sizes: a sequence of positive Python ints (numpy integers too); floats and bools are
/// refused rather than rounded.
fn parse_sizes(obj: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
    if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "sizes must be a list of layer sizes like [2, 8, 1], got a str",
        ));
    }
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
fn parse_hidden_activations(
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
fn parse_count(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<usize> {
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

fn repr(obj: &Bound<'_, PyAny>) -> String {
    obj.repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| type_name(obj))
}

/// A seed for `seed=None`: std's per-process random hash keys, which the OS seeds.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}
