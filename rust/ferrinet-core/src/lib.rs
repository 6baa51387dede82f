//! ferrinet-core: the article's `Neuron` / `Layer` / `NeuralNetwork`, with a correct backward
//! pass. Pure Rust: nothing here knows about Python (the binding lives in `ferrinet-py`).
//!
//! Glossary (docs/maths.md has the full contract, operation by operation):
//! ```text
//! n              samples in a batch;  m  outputs of the network
//! x              a layer's input              (n, n_inputs)   row k = sample k
//! W              a layer's weights            (n_outputs, n_inputs), row i = neuron i
//! b              a layer's biases             (n_outputs,)
//! z              pre-activation  x W^T + b    (n, n_outputs)
//! a              activation f(z)              (n, n_outputs)  = the next layer's x
//! t              targets                      (n, m), or one class index per sample
//! delta          dL/dz of a layer             (n, n_outputs)
//! dW, db, dx     gradients of the mean loss L w.r.t. W, b, x
//! ```
//!
//! Comments that cite "erratum N" mean point N of `docs/article-errata.md`: what the blog post
//! this crate starts from (`docs/article.md`) got wrong, and where this code fixes it.

// The modules, and which part of `NeuralNetwork` each holds (every `impl NeuralNetwork` block
// sits in the module of its concern):
//
//   neuron.rs layer.rs network.rs   the article's vocabulary; network.rs: the struct, `new`,
//                                   `predict`, the cached forward and backward, `backprop`,
//                                   `backward` (one SGD step), and `sgd_batch` (fused step)
//   activation.rs loss.rs           each function beside its derivative
//   batch.rs                        `Batch` and the input checks (`batch`, `check_inputs`, ...)
//   flat.rs                         every parameter as one vector (scikit-learn's packing); the
//                                   full-batch loss and its gradient in it, blocked, threaded
//   predict.rs                      `predict_with` / `predict_rows_with` / `evaluate_rows`: blocks
//                                   of rows, threads; loss and accuracy reduced per block
//   per_sample.rs (+ sgd_block.rs)  `train`, `train_steps*`: the article's per-sample loop
//   training.rs optimizer.rs        `train_epoch*`: mini-batch epochs with an optimizer
//   guard.rs                        divergence guards of the training loops (snapshot, replay)
//   row_split.rs team.rs            threads: a batch split by rows; a team kept awake per call
//   top_rows.rs                     threads: the layers above a large first layer, by rows
//   kernels.rs matrix.rs float.rs   the loops under `Layer`, row-major buffers, f32 / f64
//   panels.rs                       an epoch's first layer in panels of neurons, and the
//                                   AVX2+FMA kernel of its two products (both float types)
//   memory.rs                       the machine's memory, to refuse a network that cannot fit
//   sparse.rs                       CSR inputs: the first layer over the nonzeros only
//   io.rs trace.rs                  `save` / `load` (safetensors); `trace` (one sample, every value)
//   rng.rs error.rs                 SplitMix64 (seeded initialisation), the one error type
//
// Modules are private: the public API is the `pub use` list below. The kernels and the panels
// are public only with the `internals` feature, for the examples that time them
// (examples/per_sample.rs, examples/panel_products.rs).

mod activation;
mod batch;
mod chunks;
mod error;
mod flat;
mod float;
mod guard;
mod io;
#[cfg(feature = "internals")]
pub mod kernels;
#[cfg(not(feature = "internals"))]
mod kernels;
mod layer;
mod loss;
mod matrix;
mod memory;
mod network;
mod neuron;
mod optimizer;
#[cfg(feature = "internals")]
pub mod panels;
#[cfg(not(feature = "internals"))]
mod panels;
mod per_sample;
mod predict;
mod rng;
mod row_split;
mod sparse;
mod step_bound;
mod team;
mod top_rows;
mod trace;
mod training;

pub use activation::Activation;
pub use batch::{check_learning_rate, Batch};
pub use chunks::{copy_until, STOP_EVERY};
pub use error::{Error, Result};
pub use flat::{GradientSums, GRAD_BLOCK};
pub use float::{first_non_finite, Real};
pub use io::{
    model_file, read_model, read_model_until, sync_directory, tensor_names, write_model,
    write_model_until, FileWriter, LoadedModel, ModelFile, FORMAT_NAME, FORMAT_VERSION,
    MAX_HEADER_BYTES, MAX_LAYERS, MAX_PYTHON_BYTES, MAX_THREADS,
};
pub use kernels::{cpu_kernels, Threads};
pub use layer::{Layer, LayerGradient};
pub use loss::{Loss, Targets};
pub use matrix::{MatRef, Matrix};
pub use network::NeuralNetwork;
pub use neuron::Neuron;
pub use optimizer::{EpsPlacement, Optimizer, OptimizerConfig, TensorState};
pub use per_sample::sgd_block::TRAIN_BLOCK;
pub use per_sample::TrainProgress;
pub use predict::{EvalSums, Evaluation, PredictScratch, PREDICT_BLOCK};
pub use rng::SplitMix64;
pub use sparse::{CsrRef, SparseBatch};
pub use team::{
    check_n_threads, default_threads, max_threads, usable_cpus, THREADS_CAP, THREADS_ENV,
};
pub use trace::{LayerTrace, Trace};
pub use training::{shuffle, Accuracy, EpochMetrics, EpochOptions, TrainingState};
