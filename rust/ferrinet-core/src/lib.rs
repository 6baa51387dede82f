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

pub mod activation;
pub mod error;
pub mod float;
pub mod io;
pub mod kernels;
pub mod layer;
pub mod loss;
pub mod matrix;
pub mod network;
pub mod neuron;
pub mod optimizer;
pub mod rng;
pub mod sgd_block;
mod team;
pub mod trace;
pub mod training;

pub use activation::Activation;
pub use error::{Error, Result};
pub use float::{first_non_finite, Real};
pub use io::{read_model, write_model, LoadedModel, ModelFile};
pub use kernels::{cpu_kernels, Threads};
pub use layer::{Layer, LayerGradient};
pub use loss::{Loss, Targets};
pub use matrix::{MatRef, Matrix};
pub use network::{
    check_learning_rate, Batch, NeuralNetwork, PredictScratch, TrainProgress, PREDICT_BLOCK,
};
pub use neuron::Neuron;
pub use optimizer::{Optimizer, OptimizerConfig, TensorState};
pub use rng::SplitMix64;
pub use sgd_block::TRAIN_BLOCK;
pub use trace::{LayerTrace, Trace};
pub use training::{EpochOptions, TrainingState};
