//! `ferrinet._core.NeuralNetwork`: converts arguments, calls the core, converts results.
//! No maths here; shapes are interpreted (sample vs batch, class indices vs rows) and checked.
//!
//! The class holds a float32 or float64 network (`dtype=`); every method is written once,
//! generic over the float type (`Model<T>`), and dispatched by `with_model!`.

use std::time::Instant;

use ferrinet_core::{
    check_learning_rate, model_file, read_model, read_model_until, Accuracy, Activation,
    EpochMetrics, EpochOptions, EvalSums, LoadedModel, Loss, MatRef, Matrix, ModelFile,
    NeuralNetwork, Optimizer, OptimizerConfig, PredictScratch, Targets, TrainProgress,
    TrainingState, GRAD_BLOCK, PREDICT_BLOCK,
};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyTuple, PyType};

use crate::args::{
    name_str, parse_count, parse_hidden_activations, parse_sizes, random_seed, refuse_unordered,
    Seed,
};
use crate::convert::{
    borrow_array, class_index_in_range, int_class_indices, matrix_to_py, rows_to_py, shape_str,
    to_array, to_class_indices, to_f64, to_f64_array, type_name, vec_to_py, vector_in_place, Array,
    Float,
};
use crate::errors::IntoPyResult;
use crate::gil::{check_signals, for_each_chunk, Chunker, Shared, SignalWatch};
use crate::saving::{optimizer_config_dict, LoadedCapsule};
use crate::sparse::CsrArgs;

/// Calls smaller than this many multiply-adds keep the GIL: releasing it costs more than they do.
const RELEASE_GIL_ABOVE: usize = 200_000;

/// A network and the training state that lives with it (optimizer moments, rng, counters).
pub struct Model<T> {
    pub(crate) net: NeuralNetwork<T>,
    pub(crate) training: Option<TrainingState<T>>,
    /// The training state `_stash_training` kept, for `_unstash_training` to put back.
    pub(crate) stashed: Option<Option<TrainingState<T>>>,
}

impl<T> Model<T> {
    /// A model around `net` with no training state.
    fn fresh(net: NeuralNetwork<T>) -> Self {
        Model {
            net,
            training: None,
            stashed: None,
        }
    }
}

pub(crate) enum Inner {
    F32(Shared<Model<f32>>),
    F64(Shared<Model<f64>>),
}

/// `with_model!(self, m => expr)`: runs `expr` with `m: &Shared<Model<T>>` for the network's T.
macro_rules! with_model {
    ($self:ident, $m:ident => $e:expr) => {
        match &$self.inner {
            Inner::F32($m) => $e,
            Inner::F64($m) => $e,
        }
    };
}

#[pyclass(name = "NeuralNetwork", module = "ferrinet._core", subclass, frozen)]
pub struct PyNeuralNetwork {
    pub(crate) inner: Inner,
    // Facts that never change after construction, readable without the lock.
    sizes: Vec<usize>,
    activations: Vec<Activation>,
    loss: Loss,
    seed: u64,
    n_parameters: usize,
}

/// Inputs as the core wants them: an owned (rows, cols) buffer, and whether the caller gave a
/// single 1-D sample (so results go back 1-D).
pub(crate) struct Inputs<'py, T> {
    owned: Vec<T>,
    borrowed: Option<&'py [T]>, // a large C-contiguous array of T, read in place
    _keep: Option<Bound<'py, PyAny>>, // keeps the borrowed array alive
    pub(crate) rows: usize,
    cols: usize,
    pub(crate) single: bool,
}

impl<T: Float> Inputs<'_, T> {
    /// The data as a matrix view: Send, so it can go into code that runs without the GIL.
    pub(crate) fn view(&self) -> MatRef<'_, T> {
        let data = self.borrowed.unwrap_or(&self.owned);
        MatRef::new(data, self.rows, self.cols).expect("shape checked on conversion")
    }
}

pub(crate) enum OwnedTargets<T> {
    Dense {
        data: Vec<T>,
        rows: usize,
        cols: usize,
    },
    Classes(Vec<usize>),
}

impl<T: Float> OwnedTargets<T> {
    pub(crate) fn view(&self) -> Targets<'_, T> {
        match self {
            OwnedTargets::Dense { data, rows, cols } => Targets::Dense(
                MatRef::new(data, *rows, *cols).expect("shape checked on conversion"),
            ),
            OwnedTargets::Classes(c) => Targets::Classes(c),
        }
    }
}

/// One sample's targets read in place or from a scalar, without a copy or an allocation
/// (`PyNeuralNetwork::sample_in_place`).
enum SampleTargets<'py, T> {
    /// A 1-D array of the network's float type, one value per output.
    Row(&'py [T]),
    /// A Python float, for a network with one output and a loss other than cross-entropy.
    Value([T; 1]),
    /// A class index, for cross-entropy.
    Class([usize; 1]),
}

impl<T: Float> SampleTargets<'_, T> {
    fn view(&self) -> Targets<'_, T> {
        match self {
            SampleTargets::Row(t) => Targets::Dense(MatRef::new(t, 1, t.len()).expect("one row")),
            SampleTargets::Value(t) => Targets::Dense(MatRef::new(t, 1, 1).expect("one value")),
            SampleTargets::Class(k) => Targets::Classes(k),
        }
    }
}

/// Whether an epoch counts a classifier's running accuracy. `Count(None)` counts every sample
/// once (unweighted), which is not `Skip`.
#[derive(Clone, Copy)]
enum Measure<'a, 'py> {
    Skip,
    /// Count it, weighted by these sample weights when given.
    Count(Option<&'a Bound<'py, PyAny>>),
}

/// x, y and the sample weights of a dense epoch, as Python gave them.
type DenseData<'a, 'py> = (
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    Option<&'a Bound<'py, PyAny>>,
);

/// indptr, indices, data and shape of a CSR matrix, as Python gave them.
type CsrParts<'a, 'py> = (
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    (usize, usize),
);

/// A layer's W for `set_weights`: converted while parsing, or a large C-contiguous array of
/// the network's dtype read in place (`parse_weights` returns the references that keep such
/// arrays alive) and copied by `take`.
enum Weights<'py, T> {
    Owned(Vec<T>, Vec<usize>),
    Borrowed(&'py [T], Vec<usize>),
}

impl<T: Float> Weights<'_, T> {
    fn shape(&self) -> &[usize] {
        match self {
            Weights::Owned(_, shape) | Weights::Borrowed(_, shape) => shape,
        }
    }

    /// The values as a vector of their own: a borrowed array is copied in chunks with a call
    /// of `stop` before each (`Error::Interrupted` when it answers true).
    fn take(self, stop: &mut dyn FnMut() -> bool) -> ferrinet_core::Result<Vec<T>> {
        match self {
            Weights::Owned(data, _) => Ok(data),
            Weights::Borrowed(data, _) => ferrinet_core::copy_until(data, stop),
        }
    }
}

/// `parse_weights`' result: the (W, b) pairs, and the arrays borrowed by them, kept alive
/// (and dropped with the GIL) by the caller.
type ParsedWeights<'py, T> = (Vec<(Weights<'py, T>, Vec<T>)>, Vec<Bound<'py, PyAny>>);

/// What `_train_epoch` needs besides the data, already checked by the Python layer's types.
struct EpochArgs<T> {
    options: EpochOptions,
    weights: Option<Vec<T>>,
    /// Count the accuracy as the epoch runs (`Some`), weighted by these weights when given.
    accuracy: Option<Option<Vec<T>>>,
}

/// What the constructor parsed, before the weights are drawn.
struct Architecture<'a> {
    sizes: &'a [usize],
    hidden: &'a [Activation],
    output: Option<Activation>,
    loss: Loss,
    seed: u64,
    /// None: the process's default (`ferrinet_core::default_threads`).
    n_threads: Option<usize>,
}

impl Architecture<'_> {
    /// Draws the network in dtype T (without the GIL: a large network takes a while) and wraps
    /// it as `Inner` with `wrap`; also returns its activations and parameter count.
    fn build<T: Float>(
        &self,
        py: Python<'_>,
        wrap: fn(Shared<Model<T>>) -> Inner,
    ) -> PyResult<(Inner, Vec<Activation>, usize)> {
        // A large network's weights are drawn without the GIL, in chunks with a look for
        // Ctrl-C before each (a network of hundreds of MB takes a while to draw).
        let mut watch = SignalWatch::each_call();
        let drawn = py.detach(|| {
            let (sizes, hidden, output) = (self.sizes, self.hidden, self.output);
            let stop = &mut || watch.stop();
            NeuralNetwork::<T>::new_until(sizes, hidden, output, self.loss, self.seed, stop)
        });
        if let Some(e) = watch.take() {
            return Err(e);
        }
        let mut net = drawn.py()?;
        if let Some(n) = self.n_threads {
            net.set_n_threads(n).py()?;
        }
        let activations = net.layers().iter().map(|l| l.activation()).collect();
        let n_parameters = net.n_parameters();
        Ok((
            wrap(Shared::new(Model {
                net,
                training: None,
                stashed: None,
            })),
            activations,
            n_parameters,
        ))
    }
}

#[pymethods]
impl PyNeuralNetwork {
    #[new]
    #[pyo3(signature = (sizes, activation=None, output_activation=None, loss=None, seed=Seed::Fixed(0), dtype=None, n_threads=None))]
    #[pyo3(
        text_signature = "(sizes, activation='relu', output_activation=None, loss='mse', seed=0, dtype='float64', n_threads=None)"
    )]
    // One argument per keyword of the Python constructor.
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        sizes: &Bound<'_, PyAny>,
        activation: Option<&Bound<'_, PyAny>>,
        output_activation: Option<&Bound<'_, PyAny>>,
        loss: Option<&Bound<'_, PyAny>>,
        seed: Seed,
        dtype: Option<&Bound<'_, PyAny>>,
        n_threads: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        // `_from_safetensors` builds a loaded network through `cls.__new__(cls, capsule)`, so
        // that a subclass gets an instance of itself.
        if let Ok(capsule) = sizes.cast::<LoadedCapsule>() {
            return capsule.get().take();
        }
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
        let dtype = parse_dtype(py, dtype)?;
        let n_threads = match n_threads {
            Some(n) if !n.is_none() => Some(parse_count(n, "n_threads")?),
            _ => None,
        };
        match n_threads {
            Some(n) => ferrinet_core::check_n_threads(n).py()?,
            None => _ = ferrinet_core::default_threads().py()?,
        }
        let arch = Architecture {
            sizes: &sizes,
            hidden: &hidden,
            output,
            loss,
            seed,
            n_threads,
        };
        let facts = if dtype == "float32" {
            arch.build::<f32>(py, Inner::F32)?
        } else {
            arch.build::<f64>(py, Inner::F64)?
        };
        let (inner, activations, n_parameters) = facts;
        Ok(PyNeuralNetwork {
            inner,
            sizes,
            activations,
            loss,
            seed,
            n_parameters,
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

    /// "float64" or "float32": what the network computes in and returns.
    #[getter]
    fn dtype(&self) -> &'static str {
        match self.inner {
            Inner::F32(_) => "float32",
            Inner::F64(_) => "float64",
        }
    }

    /// Threads for large batch products: the count set, else the default (the CPUs this process
    /// may use, or FERRINET_NUM_THREADS / OMP_NUM_THREADS). Results are deterministic for a
    /// given count. None sets the default back.
    #[getter]
    fn n_threads(&self, py: Python<'_>) -> usize {
        with_model!(self, m => m.with(py, false, |m| m.net.n_threads()))
    }

    #[setter]
    fn set_n_threads(&self, py: Python<'_>, n_threads: &Bound<'_, PyAny>) -> PyResult<()> {
        let n = match n_threads.is_none() {
            true => None,
            false => Some(parse_count(n_threads, "n_threads")?),
        };
        with_model!(self, m => m.with(py, false, |m| match n {
            Some(n) => m.net.set_n_threads(n),
            None => m.net.use_default_threads(),
        }))
        .py()
    }

    /// The count set on the network, None while it follows the default (what `save` records).
    #[getter]
    fn _n_threads_setting(&self, py: Python<'_>) -> Option<usize> {
        with_model!(self, m => m.with(py, false, |m| m.net.n_threads_setting()))
    }

    /// 1-D sample (n_inputs,) -> 1-D output (n_outputs,); 2-D batch (n, n_inputs) -> (n, n_outputs).
    fn forward<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        with_model!(self, m => {
            let x = self.inputs(x, "x")?;
            let out = self.run_predict(py, m, &x)?;
            Ok(if x.single {
                vec_to_py(py, out.into_vec()).into_any()
            } else {
                matrix_to_py(py, out).into_any()
            })
        })
    }

    /// Batch forward: (n, n_inputs) -> (n, n_outputs). A 1-D sample is taken as a batch of one.
    fn predict<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        with_model!(self, m => {
            let x = self.inputs(x, "X")?;
            Ok(matrix_to_py(py, self.run_predict(py, m, &x)?).into_any())
        })
    }

    /// The mean loss over the samples (no state changes); with `l2`, plus (l2 / 2) * sum W^2;
    /// with `sample_weight`, the weighted mean.
    #[pyo3(signature = (x, y, l2=0.0, sample_weight=None))]
    fn compute_loss(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        l2: f64,
        sample_weight: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<f64> {
        check_l2(l2)?;
        with_model!(self, m => {
            let (x, t) = self.inputs_and_targets(x, y)?;
            let w = self.sample_weights(sample_weight, x.rows)?;
            Ok(self.run_evaluate(py, m, (&x, &t, w.as_deref()), l2, EvalSums::loss_only())?.0)
        })
    }

    /// [(dW (n_out, n_in), db (n_out,)) per layer] of the mean loss over the samples (with the
    /// L2 penalty and sample weights when given). The model is unchanged. A batch of more than
    /// one block (`GRAD_BLOCK` rows) is summed block by block as `loss_and_gradient` sums it
    /// (the same bits, for any thread count), detached, looking for Ctrl-C between blocks.
    #[pyo3(signature = (x, y, l2=0.0, sample_weight=None))]
    fn gradients<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        l2: f64,
        sample_weight: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
        check_l2(l2)?;
        with_model!(self, m => {
            let (_, grads) = self.with_sample_or_batch(x, y, |xv, tv| {
                let w = self.sample_weights(sample_weight, xv.rows())?;
                if xv.rows() > GRAD_BLOCK {
                    // Summed block by block, detached, with looks for Ctrl-C between blocks.
                    return py.detach(|| {
                        let net = &m.lock().net;
                        let batch = net.epoch_batch(xv, tv, w.as_deref()).py()?;
                        crate::flat::blocked_gradients(net, &batch, l2)
                    });
                }
                m.with(py, self.is_big(xv.rows()), |m| {
                    let batch = match &w {
                        Some(w) => m.net.weighted_batch(xv, tv, w)?,
                        None => m.net.batch(xv, tv)?,
                    };
                    m.net.regularized_gradients(&batch, l2)
                })
                .py()
            })?;
            Ok(grads
                .into_iter()
                .zip(self.sizes.windows(2))
                .map(|(g, s)| {
                    (rows_to_py(py, g.weights, s[1], s[0]).into_any(), vec_to_py(py, g.biases).into_any())
                })
                .collect())
        })
    }

    /// (loss, gradient) of the full batch for a general-purpose optimizer: the mean loss
    /// (weighted by `sample_weight`) plus (l2 / 2) * sum W**2, and its gradient with respect to
    /// every parameter as one flat array in `get_flat_parameters`' layout (scikit-learn's
    /// packing). One blocked, threaded forward and backward pass (the core's flat.rs), GIL
    /// released on large batches; the model is unchanged.
    #[pyo3(signature = (x, y, l2=0.0, sample_weight=None))]
    fn loss_and_gradient<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        l2: f64,
        sample_weight: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(f64, Bound<'py, PyAny>)> {
        let (loss, grad, _) = self._loss_gradient_outputs(py, x, y, l2, sample_weight, false)?;
        Ok((loss, grad))
    }

    /// `loss_and_gradient`, and with `outputs` every row's network output (n, n_outputs) from
    /// the same forward pass (else None): ferrinet.sklearn's lbfgs computes scikit-learn's
    /// clipped log-loss from them.
    #[pyo3(signature = (x, y, l2=0.0, sample_weight=None, outputs=true))]
    fn _loss_gradient_outputs<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        l2: f64,
        sample_weight: Option<&Bound<'py, PyAny>>,
        outputs: bool,
    ) -> PyResult<(f64, Bound<'py, PyAny>, Option<Bound<'py, PyAny>>)> {
        check_l2(l2)?;
        let m_out = self.n_outputs();
        with_model!(self, m => {
            let (x, t) = self.inputs_and_targets(x, y)?;
            let w = self.sample_weights(sample_weight, x.rows)?;
            let big = self.is_big(x.rows);
            let data = (&x, &t, w.as_deref());
            let (loss, grad, out) = crate::flat::loss_and_gradient(py, m, data, l2, outputs, big)?;
            let out = out.map(|o| rows_to_py(py, o, x.rows, m_out).into_any());
            Ok((loss, vec_to_py(py, grad).into_any(), out))
        })
    }

    /// Every parameter as one 1-D array (n_parameters,) in scikit-learn's packing: each
    /// layer's W transposed to (n_in, n_out) and raveled (C order), layer after layer, then
    /// every layer's b. A copy.
    fn get_flat_parameters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        with_model!(self, m => {
            let theta = self.copied(py, m, |net, stop| net.flat_parameters_until(stop))?;
            Ok(vec_to_py(py, theta).into_any())
        })
    }

    /// A copy of the network (architecture, weights, seed, dtype, thread setting; no training
    /// state) as a new instance of `cls`, built without calling its `__init__`; a large
    /// network's weights are copied without the GIL, looking for Ctrl-C between chunks.
    /// `NeuralNetwork.copy` is the public form.
    fn _copy<'py>(slf: &Bound<'py, Self>, cls: &Bound<'py, PyType>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let this = slf.get();
        let inner = match &this.inner {
            Inner::F32(m) => Inner::F32(Shared::new(Model::fresh(this.copied(
                py,
                m,
                |net, stop| net.copy_until(stop),
            )?))),
            Inner::F64(m) => Inner::F64(Shared::new(Model::fresh(this.copied(
                py,
                m,
                |net, stop| net.copy_until(stop),
            )?))),
        };
        let copy = PyNeuralNetwork {
            inner,
            sizes: this.sizes.clone(),
            activations: this.activations.clone(),
            loss: this.loss,
            seed: this.seed,
            n_parameters: this.n_parameters,
        };
        let capsule = Bound::new(py, LoadedCapsule::new(copy))?;
        cls.call_method1("__new__", (cls, capsule))
    }

    /// Replaces every parameter from a 1-D array in `get_flat_parameters`' layout
    /// (n_parameters finite values). On any error nothing is changed; the training state
    /// (optimizer moments) is kept, as with `set_weights`.
    fn set_flat_parameters(&self, py: Python<'_>, theta: &Bound<'_, PyAny>) -> PyResult<()> {
        with_model!(self, m => {
            // A large array of the network's dtype is read in place (no copy with the GIL).
            let borrowed = borrow_array(theta);
            let converted;
            let (theta, shape) = match borrowed {
                Some((data, shape)) => (data, shape),
                None => {
                    converted = to_array(theta, "theta")?;
                    (&converted.data[..], converted.shape.clone())
                }
            };
            if shape.len() != 1 {
                return Err(PyValueError::new_err(format!(
                    "theta must be a 1-D array of n_parameters = {} values, got shape {}",
                    self.n_parameters,
                    shape_str(&shape)
                )));
            }
            let big = self.n_parameters > RELEASE_GIL_ABOVE;
            let mut watch = SignalWatch::each_call();
            let result = m.with(py, big, |m| {
                let stop = &mut || big && watch.stop();
                m.net.set_flat_parameters_until(theta, stop)
            });
            if let Some(e) = watch.take() {
                return Err(e);
            }
            result.py()
        })
    }

    /// One SGD step on a sample (1-D x) or on the mean loss of a batch (2-D x). Returns the
    /// loss of the forward pass done before the step. A batch of more than one block takes
    /// the step of `gradients`' blocked sum, interruptible until the step is taken.
    fn backward(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        learning_rate: &Bound<'_, PyAny>,
    ) -> PyResult<f64> {
        let learning_rate = to_f64(learning_rate, "learning_rate")?;
        with_model!(self, m => self.with_sample_or_batch(x, y, |xv, tv| {
            if xv.rows() > GRAD_BLOCK {
                // The gradient summed block by block (as `gradients`), detached, with looks for
                // Ctrl-C between blocks; the step is taken only once it is complete, so an
                // interrupt leaves the weights as they were.
                check_learning_rate(learning_rate).py()?;
                return py.detach(|| {
                    let mut guard = m.lock();
                    let net = &mut guard.net;
                    let (loss, grads) = {
                        let batch = net.epoch_batch(xv, tv, None).py()?;
                        crate::flat::blocked_gradients(net, &batch, 0.0)?
                    };
                    net.apply_step(&grads, loss, learning_rate).py()?;
                    Ok(loss)
                });
            }
            m.with(py, self.is_big(xv.rows()), |m| {
                let batch = m.net.batch(xv, tv)?;
                m.net.backward(&batch, learning_rate)
            })
            .py()
        }))
    }

    /// The article's loop, run entirely in Rust with the GIL released: per-sample SGD over the
    /// samples in order, `epochs` times. Returns the mean loss of each epoch. Ctrl-C stops it
    /// within a few tens of milliseconds (KeyboardInterrupt), with the weights of the last
    /// completed step. A first layer of 16,384+ weights and 64+ outputs takes its steps 32 at
    /// a time (docs/maths.md): the same steps, rounded a few ulps apart, deterministic.
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
        with_model!(self, m => {
            let (x, t) = self.inputs_and_targets(x, y)?;
            let xv = x.view();
            py.detach(|| {
                let (batch, granule) = {
                    let guard = m.lock();
                    (guard.net.batch(xv, t.view()).py()?, guard.net.train_granule())
                };
                let mut progress = TrainProgress::default();
                let mut remaining = epochs.saturating_mul(batch.len());
                let mut chunker = Chunker::with_granule(granule);
                let mut watch = SignalWatch::new();
                // Chunks end between whole blocks (`granule`), so where they end never changes
                // the result; a chunk of blocks (steps of a large first layer, a few us each at
                // least) also looks for Ctrl-C inside, every CHECK_EVERY / 2. Unblocked steps can be
                // 0.2 us: their chunks end often enough, and a clock read per step would cost
                // them 10%.
                let look_inside = granule > 1;
                while remaining > 0 {
                    let steps = chunker.next_len(remaining);
                    let started = Instant::now();
                    let result = m.with_fair(|m| {
                        let stop = &mut || look_inside && watch.stop();
                        m.net.train_steps_until(&batch, &mut progress, steps, learning_rate, stop)
                    });
                    if let Some(e) = watch.take() {
                        return Err(e);
                    }
                    result.py()?;
                    chunker.record(started);
                    remaining -= steps;
                    check_signals()?;
                }
                Ok(progress.epoch_losses)
            })
        })
    }

    /// Whether `coef` holds exactly layer `index`'s weights transposed (its shape (n_in,
    /// n_out)) and `intercept` its biases: NumPy arrays of float32 or float64 in any layout,
    /// compared value by value in place (as `np.array_equal`, in float64), with no copy of
    /// either side. False for anything else (another shape or dtype, a list, NaN). Lets
    /// `ferrinet.sklearn` see whether `coefs_` were edited without keeping a copy of them.
    fn _layer_equals(
        &self,
        py: Python<'_>,
        index: usize,
        coef: &Bound<'_, PyAny>,
        intercept: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        self.check_layer_index(index)?;
        let (Some(w), Some(b)) = (RealArray::of(coef), RealArray::of(intercept)) else {
            return Ok(false);
        };
        let (w, b) = (w.view2(), b.view1());
        let (Some(w), Some(b)) = (w, b) else {
            return Ok(false);
        };
        Ok(with_model!(self, m => m.with(py, false, |m| {
            let layer = &m.net.layers()[index];
            w.equals_transposed(layer.weights(), layer.n_inputs(), layer.n_outputs())
                && b.equals_transposed(layer.biases(), 1, layer.n_outputs())
        })))
    }

    /// Writes layer `index`'s weights transposed into `coef` (a writeable (n_in, n_out) NumPy
    /// array of the network's dtype, any layout) and its biases into `intercept` ((n_out,)):
    /// `coefs_` refreshed with no intermediate copy.
    fn _copy_layer_into(
        &self,
        py: Python<'_>,
        index: usize,
        coef: &Bound<'_, PyAny>,
        intercept: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        self.check_layer_index(index)?;
        let shape = (self.sizes[index], self.sizes[index + 1]);
        with_model!(self, m => copy_layer_into(m, py, (index, shape), coef, intercept))
    }

    /// Copies of [(W (n_out, n_in), b (n_out,)) per layer].
    fn get_weights<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
        with_model!(self, m => {
            // A large network is copied without the GIL, looking for Ctrl-C between chunks.
            let params = self.copied(py, m, |net, stop| net.parameters_until(stop))?;
            Ok(params
                .into_iter()
                .zip(self.sizes.windows(2))
                .map(|((w, b), s)| (rows_to_py(py, w, s[1], s[0]).into_any(), vec_to_py(py, b).into_any()))
                .collect())
        })
    }

    /// Replaces every layer's (W, b); shapes must match exactly and values be finite. On any
    /// error no layer is changed. Training state (optimizer moments) is kept.
    fn set_weights(&self, py: Python<'_>, weights: &Bound<'_, PyAny>) -> PyResult<()> {
        with_model!(self, m => {
            let (params, _keep) = self.parse_weights(weights)?;
            // A large network's weights are copied in and checked without the GIL, in chunks
            // with a look for Ctrl-C before each (an interrupt changes nothing).
            let big = self.n_parameters > RELEASE_GIL_ABOVE;
            let mut watch = SignalWatch::each_call();
            let result = m.with(py, big, |m| {
                let stop = &mut || big && watch.stop();
                let params = params
                    .into_iter()
                    .map(|(w, b)| Ok((w.take(stop)?, b)))
                    .collect::<ferrinet_core::Result<Vec<_>>>()?;
                m.net.set_parameters_until(params, stop)
            });
            if let Some(e) = watch.take() {
                return Err(e);
            }
            result.py()
        })
    }

    /// Starts training state: the optimizer (a dict as `ferrinet.optim` objects' `to_dict()`
    /// gives) and the seed of the generator for shuffles and dropout. Replaces any previous
    /// state.
    fn _start_training(
        &self,
        py: Python<'_>,
        optimizer: &Bound<'_, PyDict>,
        seed: Seed,
    ) -> PyResult<()> {
        let optimizer = parse_optimizer(optimizer)?;
        let seed = match seed {
            Seed::Random => random_seed(),
            Seed::Fixed(s) => s,
        };
        let n_layers = self.sizes.len() - 1;
        with_model!(self, m => {
            let state = TrainingState::new(optimizer, seed, n_layers).py()?;
            m.with(py, false, |m| m.training = Some(state));
            Ok(())
        })
    }

    /// Drops the training state (optimizer moments, step counter, rng).
    fn reset_training(&self, py: Python<'_>) {
        with_model!(self, m => m.with(py, false, |m| m.training = None))
    }

    /// {"optimizer", "learning_rate", "steps", "epochs", "seed"} of the training state, or None.
    fn _training_info<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let info = with_model!(self, m => m.with(py, false, |m| m.training.as_ref().map(|s| {
            (*s.optimizer(), s.learning_rate(), s.steps(), s.epochs(), s.seed())
        })));
        let Some((optimizer, lr, steps, epochs, seed)) = info else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        d.set_item("optimizer", optimizer.name())?;
        d.set_item("learning_rate", lr)?;
        d.set_item("steps", steps)?;
        d.set_item("epochs", epochs)?;
        d.set_item("seed", seed)?;
        d.set_item("optimizer_config", optimizer_config_dict(py, &optimizer)?)?;
        Ok(Some(d))
    }

    /// The network as a ferrinet safetensors file (bytes): architecture, seed, weights and,
    /// with `training`, the training run; `python` is a JSON object stored as the "python"
    /// metadata. Deterministic. `ferrinet.NeuralNetwork.to_bytes` is the public form.
    #[pyo3(signature = (training=true, python=None))]
    fn _to_safetensors<'py>(
        &self,
        py: Python<'py>,
        training: bool,
        python: Option<String>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let seed = self.seed;
        let big = self.n_parameters > RELEASE_GIL_ABOVE;
        // The file is written straight into the bytes object returned, a large network's
        // data without the GIL and in chunks, looking for Ctrl-C before each; an interrupt
        // drops the half-written object (the network is only read).
        let mut watch = SignalWatch::each_call();
        let written = with_model!(self, m => m.with(py, big, |m| -> PyResult<Py<PyBytes>> {
            let state = if training { m.training.as_ref() } else { None };
            let file = model_file(&m.net, Some(seed), state, python.as_deref()).py()?;
            Python::attach(|py| {
                let (object, mut contents) = new_bytes(py, file.size())?;
                let stop = &mut || big && watch.stop();
                let mut write = || match contents.zeroed(stop) {
                    Some(buffer) => file.write_into(buffer, stop),
                    None => Err(ferrinet_core::Error::Interrupted),
                };
                let result = if big { py.detach(write) } else { write() };
                result.py()?;
                Ok(object.unbind())
            })
        }));
        if let Some(e) = watch.take() {
            return Err(e);
        }
        Ok(written?.into_bound(py))
    }

    /// Reads a ferrinet safetensors file (bytes) -> (an instance of `cls`, the "python"
    /// metadata or None). Everything is checked first: ModelFormatError says what is wrong.
    #[classmethod]
    fn _from_safetensors<'py>(
        cls: &Bound<'py, PyType>,
        data: &[u8],
    ) -> PyResult<(Bound<'py, PyAny>, Option<String>)> {
        let py = cls.py();
        // A large file is checked and decoded in chunks, with a look for Ctrl-C every
        // CHECK_EVERY; an interrupt builds nothing.
        let mut watch = SignalWatch::each_call();
        let read = if data.len() > 1 << 20 {
            py.detach(|| read_model_until(data, &mut || watch.stop()))
        } else {
            read_model(data)
        };
        if let Some(e) = watch.take() {
            return Err(e);
        }
        let mut loaded = read.py()?;
        let python = match &mut loaded {
            LoadedModel::F32(f) => f.python.take(),
            LoadedModel::F64(f) => f.python.take(),
        };
        let net = match loaded {
            LoadedModel::F32(f) => PyNeuralNetwork::from_file(f, Inner::F32),
            LoadedModel::F64(f) => PyNeuralNetwork::from_file(f, Inner::F64),
        };
        let capsule = Bound::new(py, LoadedCapsule::new(net))?;
        let obj = cls.call_method1("__new__", (cls, capsule))?;
        Ok((obj, python))
    }

    /// Sets the learning rate of the next training steps (schedules call this between epochs).
    fn set_learning_rate(&self, py: Python<'_>, learning_rate: &Bound<'_, PyAny>) -> PyResult<()> {
        let lr = to_f64(learning_rate, "learning_rate")?;
        with_model!(self, m => m.with(py, false, |m| match m.training.as_mut() {
            Some(state) => state.set_learning_rate(lr).py(),
            None => Err(PyRuntimeError::new_err(
                "no training state: train_epoch or fit starts one before the learning rate can be set",
            )),
        }))
    }

    /// (loss, accuracy or None) of (x, y): one blocked forward pass (GIL released, Ctrl-C
    /// looked for between chunks of blocks) that reduces the loss, and a classifier's
    /// accuracy, block by block. `evaluate` is the public form.
    #[pyo3(signature = (x, y, sample_weight=None))]
    fn _evaluate(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        sample_weight: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(f64, Option<f64>)> {
        with_model!(self, m => {
            let (x, t) = self.inputs_and_targets(x, y)?;
            let w = self.sample_weights(sample_weight, x.rows)?;
            self.run_evaluate(py, m, (&x, &t, w.as_deref()), 0.0, EvalSums::default())
        })
    }

    /// Checks data as the training methods would (shapes, targets, sample weights) without
    /// using them; with `finite`, also that every input is finite (in chunks, looking for
    /// Ctrl-C between them). `fit` checks its data this way before it changes anything.
    #[pyo3(signature = (x, y, sample_weight=None, finite=true))]
    fn _check_data(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        sample_weight: Option<&Bound<'_, PyAny>>,
        finite: bool,
    ) -> PyResult<()> {
        with_model!(self, m => {
            let (x, t) = self.inputs_and_targets(x, y)?;
            let w = self.sample_weights(sample_weight, x.rows)?;
            let xv = x.view();
            let big = self.is_big(x.rows);
            m.with(py, big, |m| -> PyResult<()> {
                m.net.epoch_batch(xv, t.view(), w.as_deref()).py()?;
                if finite {
                    // About a million values per chunk (~1 ms), then a look for Ctrl-C.
                    let rows_per = ((1usize << 20) / xv.cols().max(1)).max(1);
                    let mut start = 0;
                    while start < xv.rows() {
                        let end = (start + rows_per).min(xv.rows());
                        m.net.check_rows(xv, start, end).py()?;
                        start = end;
                        if big {
                            check_signals()?;
                        }
                    }
                }
                Ok(())
            })
        })
    }

    /// Keeps a copy of the training state, for `_unstash_training`: `fit` stashes it before it
    /// starts or continues a run, so that a call refused by its data leaves it as it was.
    fn _stash_training(&self, py: Python<'_>) {
        with_model!(self, m => m.with(py, false, |m| m.stashed = Some(m.training.clone())))
    }

    /// Drops the stashed training state; with `restore`, puts it back first.
    fn _unstash_training(&self, py: Python<'_>, restore: bool) {
        with_model!(self, m => m.with(py, false, |m| {
            if let Some(saved) = m.stashed.take() {
                if restore {
                    m.training = saved;
                }
            }
        }))
    }

    /// `_train_epoch` that also counts a classifier's accuracy from each batch's outputs as
    /// the epoch runs (weighted by `accuracy_weight` when given) -> (loss, accuracy or None).
    #[pyo3(signature = (x, y, batch_size, shuffle, l2, dropout, clip_norm, sample_weight, accuracy_weight=None))]
    #[allow(clippy::too_many_arguments)]
    fn _train_epoch_measured(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        batch_size: usize,
        shuffle: bool,
        l2: f64,
        dropout: Vec<f64>,
        clip_norm: Option<f64>,
        sample_weight: Option<&Bound<'_, PyAny>>,
        accuracy_weight: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(f64, Option<f64>)> {
        let options = self.epoch_options(batch_size, shuffle, l2, dropout, clip_norm)?;
        let measure = Measure::Count(accuracy_weight);
        let metrics = self.dense_epoch(py, (x, y, sample_weight), options, measure)?;
        Ok((metrics.loss, metrics.accuracy))
    }

    /// One epoch of mini-batch training with the stored training state (`_start_training`),
    /// in Rust with the GIL released; Ctrl-C stops it between two batches (KeyboardInterrupt,
    /// weights of the last completed batch). Returns the epoch loss.
    #[pyo3(signature = (x, y, batch_size, shuffle, l2, dropout, clip_norm, sample_weight))]
    #[allow(clippy::too_many_arguments)]
    fn _train_epoch(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        batch_size: usize,
        shuffle: bool,
        l2: f64,
        dropout: Vec<f64>,
        clip_norm: Option<f64>,
        sample_weight: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<f64> {
        let options = self.epoch_options(batch_size, shuffle, l2, dropout, clip_norm)?;
        let data = (x, y, sample_weight);
        Ok(self.dense_epoch(py, data, options, Measure::Skip)?.loss)
    }

    /// `predict` of a CSR matrix given as its parts (`ferrinet.network` prepares them:
    /// int64 indptr, int32 indices, data in the network's dtype, canonical rows).
    fn _predict_csr<'py>(
        &self,
        py: Python<'py>,
        indptr: &Bound<'py, PyAny>,
        indices: &Bound<'py, PyAny>,
        data: &Bound<'py, PyAny>,
        shape: (usize, usize),
    ) -> PyResult<Bound<'py, PyAny>> {
        with_model!(self, m => {
            let out = crate::sparse::predict(py, m, &CsrArgs::new(indptr, indices, data, shape)?)?;
            Ok(matrix_to_py(py, out).into_any())
        })
    }

    /// `compute_loss` of a CSR matrix given as its parts.
    #[pyo3(signature = (indptr, indices, data, shape, y, l2=0.0, sample_weight=None))]
    #[allow(clippy::too_many_arguments)]
    fn _compute_loss_csr(
        &self,
        py: Python<'_>,
        indptr: &Bound<'_, PyAny>,
        indices: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
        shape: (usize, usize),
        y: &Bound<'_, PyAny>,
        l2: f64,
        sample_weight: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<f64> {
        check_l2(l2)?;
        with_model!(self, m => {
            let x = CsrArgs::new(indptr, indices, data, shape)?;
            let t = self.targets(y, false)?;
            let w = self.sample_weights(sample_weight, shape.0)?;
            crate::sparse::loss(py, m, &x, &t, w.as_deref(), l2)
        })
    }

    /// `_train_epoch` of a CSR matrix given as its parts.
    #[pyo3(signature = (indptr, indices, data, shape, y, batch_size, shuffle, l2, dropout, clip_norm, sample_weight))]
    #[allow(clippy::too_many_arguments)]
    fn _train_epoch_csr(
        &self,
        py: Python<'_>,
        indptr: &Bound<'_, PyAny>,
        indices: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
        shape: (usize, usize),
        y: &Bound<'_, PyAny>,
        batch_size: usize,
        shuffle: bool,
        l2: f64,
        dropout: Vec<f64>,
        clip_norm: Option<f64>,
        sample_weight: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<f64> {
        let options = self.epoch_options(batch_size, shuffle, l2, dropout, clip_norm)?;
        let parts = (indptr, indices, data, shape);
        let metrics = self.csr_epoch(py, parts, (y, sample_weight), options, Measure::Skip)?;
        Ok(metrics.loss)
    }

    /// `_train_epoch_measured` of a CSR matrix given as its parts -> (loss, accuracy or None).
    #[pyo3(signature = (indptr, indices, data, shape, y, batch_size, shuffle, l2, dropout, clip_norm, sample_weight, accuracy_weight=None))]
    #[allow(clippy::too_many_arguments)]
    fn _train_epoch_csr_measured(
        &self,
        py: Python<'_>,
        indptr: &Bound<'_, PyAny>,
        indices: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
        shape: (usize, usize),
        y: &Bound<'_, PyAny>,
        batch_size: usize,
        shuffle: bool,
        l2: f64,
        dropout: Vec<f64>,
        clip_norm: Option<f64>,
        sample_weight: Option<&Bound<'_, PyAny>>,
        accuracy_weight: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(f64, Option<f64>)> {
        let options = self.epoch_options(batch_size, shuffle, l2, dropout, clip_norm)?;
        let parts = (indptr, indices, data, shape);
        let measure = Measure::Count(accuracy_weight);
        let metrics = self.csr_epoch(py, parts, (y, sample_weight), options, measure)?;
        Ok((metrics.loss, metrics.accuracy))
    }

    /// `_check_data` of a CSR matrix given as its parts: shapes, targets and sample weights;
    /// with `finite` the matrix's structure and values as well.
    #[pyo3(signature = (indptr, indices, data, shape, y, sample_weight=None, finite=true))]
    #[allow(clippy::too_many_arguments)]
    fn _check_data_csr(
        &self,
        py: Python<'_>,
        indptr: &Bound<'_, PyAny>,
        indices: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
        shape: (usize, usize),
        y: &Bound<'_, PyAny>,
        sample_weight: Option<&Bound<'_, PyAny>>,
        finite: bool,
    ) -> PyResult<()> {
        with_model!(self, m => {
            let x = CsrArgs::new(indptr, indices, data, shape)?;
            let t = self.targets(y, false)?;
            let w = self.sample_weights(sample_weight, shape.0)?;
            crate::sparse::check_data(py, m, &x, (&t, w.as_deref()), finite)
        })
    }
}

impl PyNeuralNetwork {
    /// An IndexError unless `index` names a layer.
    fn check_layer_index(&self, index: usize) -> PyResult<()> {
        let n = self.sizes.len() - 1;
        if index >= n {
            return Err(pyo3::exceptions::PyIndexError::new_err(format!(
                "layer index {index} is out of range for a network of {n} layers"
            )));
        }
        Ok(())
    }

    /// The class around a network read from a file.
    fn from_file<T: Float>(file: ModelFile<T>, wrap: fn(Shared<Model<T>>) -> Inner) -> Self {
        let ModelFile {
            network,
            seed,
            training,
            ..
        } = file;
        PyNeuralNetwork {
            sizes: network.sizes(),
            activations: network.layers().iter().map(|l| l.activation()).collect(),
            loss: network.loss(),
            seed: seed.unwrap_or(0),
            n_parameters: network.n_parameters(),
            inner: wrap(Shared::new(Model {
                net: network,
                training,
                stashed: None,
            })),
        }
    }

    /// The accuracy an epoch counts, as `run_epoch` takes it: None for `Measure::Skip` and for
    /// a regression loss (no classes to count), else the accuracy's sample weights (None
    /// inside: every sample counts 1).
    fn accuracy_choice<T: Float>(
        &self,
        measure: Measure<'_, '_>,
        n: usize,
    ) -> PyResult<Option<Option<Vec<T>>>> {
        match measure {
            Measure::Count(weights) if self.loss != Loss::Mse => {
                Ok(Some(self.sample_weights(weights, n)?))
            }
            _ => Ok(None),
        }
    }

    /// The dense `_train_epoch` and `_train_epoch_measured`: the same epoch, the accuracy
    /// counted or not as `measure` says.
    fn dense_epoch(
        &self,
        py: Python<'_>,
        (x, y, sample_weight): DenseData<'_, '_>,
        options: EpochOptions,
        measure: Measure<'_, '_>,
    ) -> PyResult<EpochMetrics> {
        with_model!(self, m => {
            let (x, t) = self.inputs_and_targets(x, y)?;
            let weights = self.sample_weights(sample_weight, x.rows)?;
            let accuracy = self.accuracy_choice(measure, x.rows)?;
            let args = EpochArgs { options, weights, accuracy };
            self.run_epoch(py, m, &x, &t, &args)
        })
    }

    /// The CSR `_train_epoch_csr` and `_train_epoch_csr_measured`, as `dense_epoch`.
    fn csr_epoch(
        &self,
        py: Python<'_>,
        (indptr, indices, data, shape): CsrParts<'_, '_>,
        (y, sample_weight): (&Bound<'_, PyAny>, Option<&Bound<'_, PyAny>>),
        options: EpochOptions,
        measure: Measure<'_, '_>,
    ) -> PyResult<EpochMetrics> {
        with_model!(self, m => {
            let x = CsrArgs::new(indptr, indices, data, shape)?;
            let t = self.targets(y, false)?;
            let w = self.sample_weights(sample_weight, shape.0)?;
            let accuracy = self.accuracy_choice(measure, shape.0)?;
            let accuracy = accuracy.as_ref().map(|a| a.as_deref());
            crate::sparse::train_epoch(py, m, &x, (&t, w.as_deref()), &options, accuracy)
        })
    }

    /// `copy(net, stop)` on the network: a pass that copies its parameters out in chunks,
    /// asking `stop` before each. A large network is copied without the GIL, with a look for
    /// Ctrl-C before each chunk (KeyboardInterrupt, the copy dropped, the network only read);
    /// a small one in one go with the GIL.
    fn copied<T: Float, R: Send>(
        &self,
        py: Python<'_>,
        m: &Shared<Model<T>>,
        copy: impl FnOnce(&NeuralNetwork<T>, &mut dyn FnMut() -> bool) -> ferrinet_core::Result<R>
            + Send,
    ) -> PyResult<R> {
        let big = self.n_parameters > RELEASE_GIL_ABOVE;
        let mut watch = SignalWatch::each_call();
        let result = m.with(py, big, |m| {
            let stop = &mut || big && watch.stop();
            copy(&m.net, stop)
        });
        if let Some(e) = watch.take() {
            return Err(e);
        }
        result.py()
    }

    /// The options of one epoch, checked against this network (every `_train_epoch*`).
    fn epoch_options(
        &self,
        batch_size: usize,
        shuffle: bool,
        l2: f64,
        dropout: Vec<f64>,
        clip_norm: Option<f64>,
    ) -> PyResult<EpochOptions> {
        let options = EpochOptions {
            batch_size,
            shuffle,
            l2,
            dropout,
            clip_norm,
        };
        options.check(self.sizes.len() - 1).py()?;
        Ok(options)
    }

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
    fn inputs<'py, T: Float>(
        &self,
        obj: &Bound<'py, PyAny>,
        what: &str,
    ) -> PyResult<Inputs<'py, T>> {
        let (owned, borrowed, shape) = match borrow_array::<T>(obj) {
            Some((data, shape)) => (Vec::new(), Some(data), shape),
            None => {
                let Array { data, shape } = to_array::<T>(obj, what)?;
                (data, None, shape)
            }
        };
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
            owned,
            borrowed,
            _keep: borrowed.map(|_| obj.clone()),
            rows,
            cols,
            single,
        })
    }

    /// `f` on x and y as the core reads them: one sample read in place when it comes in the
    /// common form (`sample_in_place`), otherwise through `inputs_and_targets`.
    fn with_sample_or_batch<'py, T: Float, R>(
        &self,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        f: impl FnOnce(MatRef<'_, T>, Targets<'_, T>) -> PyResult<R>,
    ) -> PyResult<R> {
        if let Some((x, t)) = self.sample_in_place::<T>(x, y) {
            return f(MatRef::new(x, 1, x.len()).expect("one row"), t.view());
        }
        let (x, t) = self.inputs_and_targets::<T>(x, y)?;
        f(x.view(), t.view())
    }

    /// One sample in the form a per-sample loop passes it, read without a copy: x a 1-D array
    /// of the network's float type with n_inputs values (C-contiguous, aligned, native byte
    /// order), y a 1-D array of that type with n_outputs values, a class index (int or NumPy
    /// integer, in range) for cross-entropy, or a Python float for one output. None for
    /// anything else, including every form that is an error: the general path then reads it
    /// or gives the message. Per call this saves about as much as the step of a small network
    /// costs (the general path converts through NumPy's API and allocates).
    fn sample_in_place<'py, T: Float>(
        &self,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
    ) -> Option<(&'py [T], SampleTargets<'py, T>)> {
        let x = vector_in_place::<T>(x).filter(|x| x.len() == self.n_inputs())?;
        let m = self.n_outputs();
        let t = if let Some(row) = vector_in_place::<T>(y).filter(|t| t.len() == m) {
            SampleTargets::Row(row)
        } else if self.loss == Loss::CrossEntropy {
            SampleTargets::Class([class_index_in_range(y, m)?])
        } else if m == 1 && y.is_exact_instance_of::<PyFloat>() {
            SampleTargets::Value([T::from_f64(y.cast::<PyFloat>().ok()?.value())])
        } else {
            return None;
        };
        Some((x, t))
    }

    pub(crate) fn inputs_and_targets<'py, T: Float>(
        &self,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
    ) -> PyResult<(Inputs<'py, T>, OwnedTargets<T>)> {
        let x = self.inputs::<T>(x, "x")?;
        let t = self.targets::<T>(y, x.single)?;
        Ok((x, t))
    }

    /// Reads targets in the shapes a user would write them:
    /// - cross_entropy: class indices (an int for a sample, a 1-D array for a batch) or rows of
    ///   probabilities (a 1-D row for a sample, (n, m) for a batch);
    /// - mse / binary_cross_entropy: (m,) for a sample, (n, m) for a batch; with one output a
    ///   scalar for a sample and (n,) for a batch are accepted too.
    pub(crate) fn targets<T: Float>(
        &self,
        obj: &Bound<'_, PyAny>,
        single: bool,
    ) -> PyResult<OwnedTargets<T>> {
        let m = self.n_outputs();
        let classes = self.loss == Loss::CrossEntropy;
        let ndim = match obj.cast::<numpy::PyUntypedArray>() {
            Ok(arr) => Some(numpy::PyUntypedArrayMethods::ndim(arr)),
            Err(_) => None,
        };
        // Class indices are read as float64 (exact for any index), everything else in T.
        let as_indices = classes && ((single && ndim == Some(0)) || (!single && ndim == Some(1)));
        if as_indices && !single {
            // int64 / int32 labels are read as they are (no float64 copy to check)
            if let Some(indices) = int_class_indices(obj, m) {
                return Ok(OwnedTargets::Classes(indices?));
            }
        }
        if as_indices || (classes && ndim.is_none()) {
            let Array { data, shape } = to_f64_array(obj, "y")?;
            match (single, &shape[..]) {
                (true, []) | (false, [_]) => {
                    return Ok(OwnedTargets::Classes(to_class_indices(&data, m)?))
                }
                _ => {}
            }
        }
        let Array { data, shape } = to_array::<T>(obj, "y")?;
        let dense = |rows: usize| OwnedTargets::Dense {
            data: data.clone(),
            rows,
            cols: m,
        };
        Ok(match (single, &shape[..]) {
            (true, []) if m == 1 && !classes => dense(1),
            (true, [len]) if *len == m => dense(1),
            (false, [n]) if m == 1 && !classes => dense(*n),
            (false, [n, cols]) if *cols == m => dense(*n),
            _ => {
                let expected = match (single, classes) {
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

    /// Optional per-sample weights: a 1-D array of n finite values >= 0 (checked by the core).
    pub(crate) fn sample_weights<T: Float>(
        &self,
        obj: Option<&Bound<'_, PyAny>>,
        n: usize,
    ) -> PyResult<Option<Vec<T>>> {
        let Some(obj) = obj.filter(|o| !o.is_none()) else {
            return Ok(None);
        };
        let Array { data, shape } = to_array::<T>(obj, "sample_weight")?;
        if shape != [n] {
            return Err(PyValueError::new_err(format!(
                "sample_weight must have shape ({n},), one weight per sample, got {}",
                shape_str(&shape)
            )));
        }
        Ok(Some(data))
    }

    /// The (W, b) pairs of `set_weights`, shapes checked. A large W that is a C-contiguous
    /// array of the network's dtype is borrowed (`Weights::Borrowed`), to be copied without
    /// the GIL and in chunks by `Weights::take`; any other form is converted here.
    fn parse_weights<'py, T: Float>(
        &self,
        weights: &Bound<'py, PyAny>,
    ) -> PyResult<ParsedWeights<'py, T>> {
        refuse_unordered(weights, "weights must be a list of (W, b) pairs")?;
        let pairs: Vec<Bound<'py, PyAny>> = weights
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
        let mut keep = Vec::new();
        for (l, (pair, s)) in pairs.iter().zip(self.sizes.windows(2)).enumerate() {
            let (n_in, n_out) = (s[0], s[1]);
            refuse_unordered(pair, &format!("layer {l}: expected a (W, b) pair"))?;
            let tuple = pair.cast::<PyTuple>().ok().filter(|t| t.len() == 2);
            let items: Vec<Bound<'py, PyAny>> = match tuple {
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
            let w = match borrow_array::<T>(&items[0]) {
                Some((data, shape)) => {
                    keep.push(items[0].clone());
                    Weights::Borrowed(data, shape)
                }
                None => {
                    let Array { data, shape } = to_array::<T>(&items[0], "W")?;
                    Weights::Owned(data, shape)
                }
            };
            let b = to_array::<T>(&items[1], "b")?;
            if w.shape() != [n_out, n_in] {
                return Err(PyValueError::new_err(format!(
                    "layer {l}: W must have shape ({n_out}, {n_in}), got {}",
                    shape_str(w.shape())
                )));
            }
            if b.shape != [n_out] {
                return Err(PyValueError::new_err(format!(
                    "layer {l}: b must have shape ({n_out},), got {}",
                    shape_str(&b.shape)
                )));
            }
            params.push((w, b.data));
        }
        Ok((params, keep))
    }

    /// Batch forward; large batches run detached, in chunks of rows with Ctrl-C checks between
    /// them, all under one lock so every row sees the same weights.
    fn run_predict<T: Float>(
        &self,
        py: Python<'_>,
        m: &Shared<Model<T>>,
        x: &Inputs<'_, T>,
    ) -> PyResult<Matrix<T>> {
        let xv = x.view();
        if !self.is_big(x.rows) {
            return m.with(py, false, |m| m.net.predict(xv)).py();
        }
        let rows = x.rows;
        py.detach(|| {
            let guard = m.lock();
            let net = &guard.net;
            // No separate check pass over x: each block is checked as it is predicted
            // (`predict_rows_with`), and an error leaves nothing behind but this buffer.
            let mut out = Vec::with_capacity(rows * self.n_outputs());
            let mut scratch = PredictScratch::default();
            // Whole blocks of PREDICT_BLOCK rows, so that each row goes through the same
            // products (and gives the same bits) however the chunks fall.
            let work = |start: usize, end: usize| {
                let part = net.predict_rows_with(xv, start, end, &mut scratch).py()?;
                out.extend_from_slice(part.as_slice());
                Ok(())
            };
            for_each_chunk(rows, PREDICT_BLOCK, work, check_signals)?;
            Matrix::from_vec(out, rows, self.n_outputs()).py()
        })
    }

    /// (loss + the L2 penalty, accuracy) of a batch by `evaluate_rows`: large batches run
    /// detached, in chunks of whole blocks with Ctrl-C checks between them, all under one lock
    /// (the same bits however the chunks fall). The inputs are checked block by block.
    fn run_evaluate<T: Float>(
        &self,
        py: Python<'_>,
        m: &Shared<Model<T>>,
        (x, t, weights): (&Inputs<'_, T>, &OwnedTargets<T>, Option<&[T]>),
        l2: f64,
        sums: EvalSums<T>,
    ) -> PyResult<(f64, Option<f64>)> {
        let xv = x.view();
        let rows = x.rows;
        let big = self.is_big(rows);
        let work = |net: &NeuralNetwork<T>| -> PyResult<(f64, Option<f64>)> {
            let batch = net.epoch_batch(xv, t.view(), weights).py()?;
            let mut sums = sums;
            let work =
                |start: usize, end: usize| net.evaluate_rows(&batch, start, end, &mut sums).py();
            let between = || if big { check_signals() } else { Ok(()) };
            for_each_chunk(rows, PREDICT_BLOCK, work, between)?;
            let result = net.finish_evaluation(&sums, &batch);
            Ok((result.loss + net.l2_penalty(l2), result.accuracy))
        };
        if !big {
            return m.with(py, false, |m| work(&m.net));
        }
        py.detach(|| work(&m.lock().net))
    }

    /// One epoch, detached. The core checks a stop flag between batches; the flag is raised
    /// when Python has a pending signal (checked every `CHECK_EVERY` / 2), and the signal's
    /// exception is raised after the core has stopped at a batch boundary.
    fn run_epoch<T: Float>(
        &self,
        py: Python<'_>,
        m: &Shared<Model<T>>,
        x: &Inputs<'_, T>,
        t: &OwnedTargets<T>,
        args: &EpochArgs<T>,
    ) -> PyResult<EpochMetrics> {
        let xv = x.view();
        py.detach(|| {
            let mut guard = m.lock();
            let model = &mut *guard;
            let Some(state) = model.training.as_mut() else {
                return Err(PyRuntimeError::new_err(
                    "no training state: call _start_training first",
                ));
            };
            // The inputs' finite check is made batch by batch inside the epoch (epoch_batch).
            let batch = model
                .net
                .epoch_batch(xv, t.view(), args.weights.as_deref())
                .py()?;
            let mut watch = SignalWatch::new();
            let accuracy = match &args.accuracy {
                None => Accuracy::Skip,
                Some(weights) => Accuracy::Count(weights.as_deref()),
            };
            let stop = &mut || watch.stop();
            let result =
                model
                    .net
                    .train_epoch_measured(&batch, &args.options, state, accuracy, stop);
            if let Some(e) = watch.take() {
                return Err(e);
            }
            result.py()
        })
    }
}

/// A new `bytes` object of `len` bytes made without zeroing its contents while Python waits
/// (a large file would pay for that with the GIL held), and its contents, which
/// `Contents::zeroed` zeroes (it can run without the GIL) before they are written. Nothing
/// else refers to the object until the caller hands it out, and the caller keeps it alive
/// while it uses the contents.
pub(crate) fn new_bytes(py: Python<'_>, len: usize) -> PyResult<(Bound<'_, PyBytes>, Contents)> {
    let size = pyo3::ffi::Py_ssize_t::try_from(len)
        .map_err(|_| PyValueError::new_err(format!("{len} bytes are too many")))?;
    // SAFETY: a null pointer asks for an object of `size` bytes whose contents are not set;
    // a null result is the MemoryError that `from_owned_ptr_or_err` takes.
    let object = unsafe {
        let ptr = pyo3::ffi::PyBytes_FromStringAndSize(std::ptr::null(), size);
        Bound::from_owned_ptr_or_err(py, ptr)?.cast_into::<PyBytes>()?
    };
    // SAFETY: the contents of a bytes object, `len` bytes long.
    let start = unsafe { pyo3::ffi::PyBytes_AsString(object.as_ptr()).cast::<u8>() };
    Ok((object, Contents { start, len }))
}

/// The contents of a `bytes` object just made by `new_bytes`, to be written once (from code
/// that may run without the GIL).
pub(crate) struct Contents {
    start: *mut u8,
    len: usize,
}

// SAFETY: the object is reachable only by its maker until it is handed out, and the contents
// are written through `&mut Contents`, by one thread at a time.
unsafe impl Send for Contents {}

impl Contents {
    /// The contents, zeroed 4 MiB at a time with a call of `stop` before each (None when it
    /// returns true): from then on they are ordinary initialised bytes to write.
    pub(crate) fn zeroed(&mut self, stop: &mut dyn FnMut() -> bool) -> Option<&mut [u8]> {
        const STEP: usize = 1 << 22;
        let mut at = 0;
        while at < self.len {
            if stop() {
                return None;
            }
            let n = STEP.min(self.len - at);
            // SAFETY: inside the contents; raw writes need no initialised memory.
            unsafe { std::ptr::write_bytes(self.start.add(at), 0, n) };
            at += n;
        }
        // SAFETY: `len` initialised bytes, borrowed mutably through `self`.
        Some(unsafe { std::slice::from_raw_parts_mut(self.start, self.len) })
    }
}

fn check_l2(l2: f64) -> PyResult<()> {
    if !(l2.is_finite() && l2 >= 0.0) {
        return Err(PyValueError::new_err(format!(
            "l2 must be a finite number >= 0, got {l2}"
        )));
    }
    Ok(())
}

/// "float64" (default) or "float32", as a string or a NumPy dtype/type.
fn parse_dtype(py: Python<'_>, dtype: Option<&Bound<'_, PyAny>>) -> PyResult<&'static str> {
    let Some(dtype) = dtype.filter(|d| !d.is_none()) else {
        return Ok("float64");
    };
    let name: String = match dtype.extract::<String>() {
        Ok(s) => s,
        Err(_) => {
            let np_dtype = py.import("numpy")?.getattr("dtype")?;
            np_dtype
                .call1((dtype,))
                .and_then(|d| d.getattr("name"))
                .and_then(|n| n.extract())
                .map_err(|_| {
                    PyTypeError::new_err(format!(
                        "dtype must be 'float32' or 'float64', got {}",
                        type_name(dtype)
                    ))
                })?
        }
    };
    match name.as_str() {
        "float64" | "f8" | "double" => Ok("float64"),
        "float32" | "f4" | "single" => Ok("float32"),
        _ => Err(PyValueError::new_err(format!(
            "dtype must be 'float32' or 'float64', got {name:?}"
        ))),
    }
}

/// The flat dict of `ferrinet.optim` objects' `to_dict()` -> the core's optimizer: serde
/// reads it into the core's record (`OptimizerConfig`), whose `to_optimizer` checks it.
fn parse_optimizer(d: &Bound<'_, PyDict>) -> PyResult<Optimizer> {
    let config: OptimizerConfig = pythonize::depythonize(d.as_any()).map_err(|e| {
        PyValueError::new_err(format!(
            "the optimizer dict is not an optimizer record (ferrinet.optim's to_dict()): {e}"
        ))
    })?;
    config.to_optimizer().py()
}

/// A NumPy array of float32 or float64, read in place (`_layer_equals`).
enum RealArray<'py> {
    F32(numpy::PyReadonlyArrayDyn<'py, f32>),
    F64(numpy::PyReadonlyArrayDyn<'py, f64>),
}

/// A 2-D view of either float type; a 1-D array is seen as one row.
enum RealView<'a> {
    F32(numpy::ndarray::ArrayView2<'a, f32>),
    F64(numpy::ndarray::ArrayView2<'a, f64>),
}

impl<'py> RealArray<'py> {
    /// None unless `obj` is a float32 or float64 NumPy array that nothing writes to now.
    fn of(obj: &Bound<'py, PyAny>) -> Option<Self> {
        use numpy::{PyArrayDyn, PyArrayMethods};
        if let Ok(a) = obj.cast::<PyArrayDyn<f64>>() {
            return a.try_readonly().ok().map(RealArray::F64);
        }
        let a = obj.cast::<PyArrayDyn<f32>>().ok()?;
        a.try_readonly().ok().map(RealArray::F32)
    }

    fn view(&self, two_d: bool) -> Option<RealView<'_>> {
        use numpy::ndarray::{Axis, Ix1, Ix2};
        fn shaped<A>(
            v: numpy::ndarray::ArrayViewD<'_, A>,
            two_d: bool,
        ) -> Option<numpy::ndarray::ArrayView2<'_, A>> {
            if two_d {
                v.into_dimensionality::<Ix2>().ok()
            } else {
                Some(v.into_dimensionality::<Ix1>().ok()?.insert_axis(Axis(0)))
            }
        }
        Some(match self {
            RealArray::F32(a) => RealView::F32(shaped(a.as_array(), two_d)?),
            RealArray::F64(a) => RealView::F64(shaped(a.as_array(), two_d)?),
        })
    }

    fn view2(&self) -> Option<RealView<'_>> {
        self.view(true)
    }

    fn view1(&self) -> Option<RealView<'_>> {
        self.view(false)
    }
}

impl RealView<'_> {
    /// Whether this (cols, rows) view holds `values`, a row-major (rows, cols) matrix,
    /// transposed: view[j, i] == values[i * cols + j] for all i, j, compared in float64.
    /// Read along the view's rows: each pass over `values` touches `rows` cache lines that the
    /// next few j reuse, so a large first layer is read once, not once per row.
    fn equals_transposed<T: Float>(&self, values: &[T], cols: usize, rows: usize) -> bool {
        fn eq<T: Float, A: Float>(
            v: &numpy::ndarray::ArrayView2<'_, A>,
            values: &[T],
            cols: usize,
            rows: usize,
        ) -> bool {
            v.dim() == (cols, rows)
                && v.outer_iter().enumerate().all(|(j, line)| {
                    line.iter()
                        .enumerate()
                        .all(|(i, &x)| values[i * cols + j].to_f64() == x.to_f64())
                })
        }
        match self {
            RealView::F32(v) => eq(v, values, cols, rows),
            RealView::F64(v) => eq(v, values, cols, rows),
        }
    }
}

/// `_copy_layer_into` for the network's float type T.
fn copy_layer_into<T: Float>(
    m: &Shared<Model<T>>,
    py: Python<'_>,
    (index, (n_in, n_out)): (usize, (usize, usize)),
    coef: &Bound<'_, PyAny>,
    intercept: &Bound<'_, PyAny>,
) -> PyResult<()> {
    use numpy::{PyArray1, PyArray2, PyArrayMethods};
    let wrong = |what: &str, shape: String| {
        PyTypeError::new_err(format!(
            "{what} must be a writeable {shape} NumPy array of {}, got {}",
            T::NAME,
            crate::convert::type_name(if what == "coef" { coef } else { intercept })
        ))
    };
    let coef_shape = format!("({n_in}, {n_out})");
    let mut w = coef
        .cast::<PyArray2<T>>()
        .ok()
        .and_then(|a| a.try_readwrite().ok())
        .ok_or_else(|| wrong("coef", coef_shape.clone()))?;
    let mut b = intercept
        .cast::<PyArray1<T>>()
        .ok()
        .and_then(|a| a.try_readwrite().ok())
        .ok_or_else(|| wrong("intercept", format!("({n_out},)")))?;
    let (mut w, mut b) = (w.as_array_mut(), b.as_array_mut());
    if w.dim() != (n_in, n_out) || b.len() != n_out {
        return Err(PyValueError::new_err(format!(
            "layer {index} needs coef {coef_shape} and intercept ({n_out},), got {:?} and ({},)",
            w.dim(),
            b.len()
        )));
    }
    m.with(py, false, |m| {
        let layer = &m.net.layers()[index];
        let weights = layer.weights();
        for (j, mut line) in w.outer_iter_mut().enumerate() {
            for (i, x) in line.iter_mut().enumerate() {
                *x = weights[i * n_in + j];
            }
        }
        for (x, &v) in b.iter_mut().zip(layer.biases()) {
            *x = v;
        }
    });
    Ok(())
}
