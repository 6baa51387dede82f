//! The article's `NeuralNetwork`: layers applied in order, with the backward pass done right.
//!
//! One forward pass caches every layer's input, z and a (erratum 1); backward computes every
//! gradient from the weights of that forward pass (erratum 3) and only then updates; the seed
//! of the chain rule is the true derivative of the reported mean loss (erratum 7).

use std::cell::Cell;

use rayon::prelude::*;

use crate::activation::Activation;
use crate::error::{value_error, Error, Result};
use crate::float::{first_non_finite, Real};
use crate::kernels::{self, Threads};
use crate::layer::{Layer, LayerGradient};
use crate::loss::{Loss, Targets};
use crate::matrix::{try_resize, MatRef, Matrix};
use crate::rng::SplitMix64;
use crate::sgd_block::{SgdBlock, BLOCK_MIN_WEIGHTS, TRAIN_BLOCK};

/// Inputs, targets and optional per-sample weights, checked against one network: shapes,
/// finiteness, ranges. Building one is the only validation of the data.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a, T = f64> {
    pub(crate) x: MatRef<'a, T>,
    pub(crate) t: Targets<'a, T>,
    pub(crate) weights: Option<&'a [T]>,
    checked_for: Signature, // the network it was checked against
    /// The inputs' finite check is left to the user of each part (`epoch_batch`).
    pub(crate) x_unchecked: bool,
}

/// What a `Batch` was checked against: methods refuse a batch checked for another shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Signature {
    n_inputs: usize,
    n_outputs: usize,
    loss: Loss,
}

impl<'a, T: Real> Batch<'a, T> {
    pub fn len(&self) -> usize {
        self.x.rows()
    }

    pub fn is_empty(&self) -> bool {
        self.x.rows() == 0
    }

    pub fn inputs(&self) -> MatRef<'a, T> {
        self.x
    }

    pub fn targets(&self) -> Targets<'a, T> {
        self.t
    }

    /// The same checks, over other data (rows gathered from this batch).
    pub(crate) fn with_parts<'b>(
        &self,
        x: MatRef<'b, T>,
        t: Targets<'b, T>,
        weights: Option<&'b [T]>,
    ) -> Batch<'b, T> {
        Batch {
            x,
            t,
            weights,
            checked_for: self.checked_for,
            x_unchecked: self.x_unchecked,
        }
    }

    /// Samples `start..end`, still checked.
    pub fn rows_range(&self, start: usize, end: usize) -> Batch<'a, T> {
        Batch {
            x: self.x.rows_range(start, end),
            t: self.t.rows_range(start, end),
            weights: self.weights.map(|w| &w[start..end]),
            checked_for: self.checked_for,
            x_unchecked: self.x_unchecked,
        }
    }
}

/// Buffers for `predict_with`: pre-activations, activations and the layer input of one block
/// of rows, and the output of all rows.
#[derive(Debug)]
pub struct PredictScratch<T = f64> {
    z: Matrix<T>,
    a: Matrix<T>,
    input: Matrix<T>,
    out: Matrix<T>,
}

impl<T> Default for PredictScratch<T> {
    fn default() -> Self {
        PredictScratch {
            z: Matrix::default(),
            a: Matrix::default(),
            input: Matrix::default(),
            out: Matrix::default(),
        }
    }
}

/// `predict` runs a large batch through every layer this many rows at a time, so that a
/// block's pre-activations and activations (256 x 128 doubles = 256 kB for an MNIST hidden
/// layer) stay in cache between the matrix product, the bias and the activation, instead of
/// going out to memory and back once per pass.
pub const PREDICT_BLOCK: usize = 256;

/// How a per-sample SGD step (`sgd_sample`) takes the first layer's part of the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstLayer<'c> {
    /// Forward pass and update now: the checked replay of a diverged run.
    Now,
    /// The update is left in the cell, for the next step's forward pass to make
    /// (`Layer::sgd_then_forward`).
    Deferred(&'c Cell<Option<usize>>),
    /// Within the open block of `work.block` (sgd_block.rs).
    Blocked,
}

/// Buffers reused across calls so the training loops allocate nothing per step.
#[derive(Debug)]
pub(crate) struct Workspace<T> {
    pub z: Vec<Matrix<T>>, // per layer (n, n_out): pre-activations of the last forward pass
    pub a: Vec<Matrix<T>>, // per layer (n, n_out): activations f(z)
    pub out: Vec<Matrix<T>>, // per layer: a after dropout (used only where dropout is on)
    pub mask: Vec<Vec<T>>, // per layer: dropout factors, 0 or 1/(1-p)
    pub delta: Vec<Matrix<T>>, // per layer (n, n_out): dL/dz
    pub grads: Vec<LayerGradient<T>>,
    pub block: SgdBlock<T>, // `train`'s open block of first-layer steps (sgd_block.rs)
}

impl<T: Real> Workspace<T> {
    fn for_layers(n_layers: usize) -> Self {
        let fresh = || (0..n_layers).map(|_| Matrix::default()).collect::<Vec<_>>();
        Workspace {
            z: fresh(),
            a: fresh(),
            out: fresh(),
            mask: vec![Vec::new(); n_layers],
            delta: fresh(),
            grads: (0..n_layers).map(|_| LayerGradient::default()).collect(),
            block: SgdBlock::default(),
        }
    }
}

/// Dropout for one forward pass: a drop probability per layer (the output layer's is 0) and
/// the generator the masks are drawn from.
pub(crate) struct Dropout<'r> {
    pub rates: &'r [f64],
    pub rng: &'r mut SplitMix64,
}

#[derive(Debug)]
pub struct NeuralNetwork<T = f64> {
    pub(crate) layers: Vec<Layer<T>>,
    loss: Loss,
    threads: Threads,
    pub(crate) work: Workspace<T>,
    /// One workspace per thread for batches split across threads (empty until needed).
    shares: Vec<Workspace<T>>,
}

impl<T: Real> Clone for NeuralNetwork<T> {
    fn clone(&self) -> Self {
        NeuralNetwork {
            layers: self.layers.clone(),
            loss: self.loss,
            threads: self.threads,
            work: Workspace::for_layers(self.layers.len()),
            shares: Vec::new(),
        }
    }
}

/// Where `train_steps` is within its epochs: the next sample, the running sum of this epoch's
/// losses, and the mean loss of every completed epoch.
#[derive(Debug, Clone, Default)]
pub struct TrainProgress {
    pub next_sample: usize,
    pub epoch_total: f64,
    pub epoch_losses: Vec<f64>,
}

impl<T: Real> NeuralNetwork<T> {
    /// `sizes` = [n_inputs, hidden..., n_outputs]; one activation per hidden layer; the output
    /// activation defaults to the loss's (identity / sigmoid / softmax). Weights come from a
    /// SplitMix64 seeded with `seed`, layer by layer, so one seed gives one network everywhere.
    pub fn new(
        sizes: &[usize],
        hidden_activations: &[Activation],
        output_activation: Option<Activation>,
        loss: Loss,
        seed: u64,
    ) -> Result<Self> {
        if sizes.len() < 2 {
            return value_error!(
                "sizes must list at least the input and output sizes, e.g. [2, 8, 1], got {sizes:?}"
            );
        }
        if let Some(i) = sizes.iter().position(|&s| s == 0) {
            return value_error!("every size must be at least 1, got {sizes:?} (size {i} is 0)");
        }
        if hidden_activations.len() != sizes.len() - 2 {
            return value_error!(
                "expected one activation per hidden layer ({}), got {}",
                sizes.len() - 2,
                hidden_activations.len()
            );
        }
        if hidden_activations.contains(&Activation::Softmax) {
            return value_error!(
                "softmax is only for the output layer (with loss 'cross_entropy'); hidden \
                 activations were {:?}",
                hidden_activations
                    .iter()
                    .map(|a| a.name())
                    .collect::<Vec<_>>()
            );
        }
        let output = output_activation.unwrap_or(loss.default_output_activation());
        loss.check_output_activation(output)?;
        check_parameter_count(sizes, std::mem::size_of::<T>())?;

        let mut rng = SplitMix64::new(seed);
        let mut layers = Vec::with_capacity(sizes.len() - 1);
        for (l, pair) in sizes.windows(2).enumerate() {
            let activation = hidden_activations.get(l).copied().unwrap_or(output);
            layers.push(Layer::new(pair[0], pair[1], activation, &mut rng)?);
        }
        Self::from_layers(layers, loss)
    }

    /// A network from ready layers; checks that they chain and that the loss fits the output.
    pub fn from_layers(layers: Vec<Layer<T>>, loss: Loss) -> Result<Self> {
        let Some(last) = layers.last() else {
            return value_error!("a network needs at least one layer");
        };
        loss.check_output_activation(last.activation())?;
        for (l, pair) in layers.windows(2).enumerate() {
            if pair[0].n_outputs() != pair[1].n_inputs() {
                return value_error!(
                    "layer {l} has {} outputs but layer {} takes {} inputs",
                    pair[0].n_outputs(),
                    l + 1,
                    pair[1].n_inputs()
                );
            }
            if pair[0].activation() == Activation::Softmax {
                return value_error!("softmax is only for the output layer; layer {l} uses it");
            }
        }
        let work = Workspace::for_layers(layers.len());
        Ok(NeuralNetwork {
            layers,
            loss,
            threads: Threads(1),
            work,
            shares: Vec::new(),
        })
    }

    pub fn layers(&self) -> &[Layer<T>] {
        &self.layers
    }

    pub fn loss(&self) -> Loss {
        self.loss
    }

    /// Threads used for large batch products (1 by default). For a fixed count, results are
    /// deterministic: the work is split over output blocks, never over a sum.
    pub fn n_threads(&self) -> usize {
        self.threads.0
    }

    pub fn set_n_threads(&mut self, n_threads: usize) -> Result<()> {
        if n_threads == 0 {
            return value_error!("n_threads must be at least 1, got 0");
        }
        self.threads = Threads(n_threads);
        Ok(())
    }

    /// [n_inputs, hidden..., n_outputs]
    pub fn sizes(&self) -> Vec<usize> {
        let mut sizes = vec![self.n_inputs()];
        sizes.extend(self.layers.iter().map(Layer::n_outputs));
        sizes
    }

    pub fn n_inputs(&self) -> usize {
        self.layers[0].n_inputs()
    }

    pub fn n_outputs(&self) -> usize {
        self.layers[self.layers.len() - 1].n_outputs()
    }

    pub fn n_parameters(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.weights().len() + l.biases().len())
            .sum()
    }

    /// Checks a batch of inputs: at least one sample, n_inputs columns, all finite.
    pub fn check_inputs(&self, x: MatRef<T>) -> Result<()> {
        self.check_shape(x)?;
        self.check_rows(x, 0, x.rows())
    }

    /// At least one sample, n_inputs columns.
    fn check_shape(&self, x: MatRef<T>) -> Result<()> {
        if x.rows() == 0 {
            return value_error!(
                "got 0 samples: expected at least one row of {} inputs",
                self.n_inputs()
            );
        }
        if x.cols() != self.n_inputs() {
            return value_error!(
                "the network takes {} inputs per sample, got {}",
                self.n_inputs(),
                x.cols()
            );
        }
        Ok(())
    }

    /// Checks inputs and targets together; the result is accepted by the training methods.
    pub fn batch<'a>(&self, x: MatRef<'a, T>, t: Targets<'a, T>) -> Result<Batch<'a, T>> {
        self.check_inputs(x)?;
        let mut batch = self.unchecked_x_batch(x, t)?;
        batch.x_unchecked = false;
        Ok(batch)
    }

    /// A batch for `train_epoch` with every check of `batch` / `weighted_batch` but the
    /// inputs' finite check, which the epoch makes on each mini-batch as it gathers it (the
    /// rows are then in cache; a separate pass over all of x costs 3-4% of an epoch). A bad
    /// value stops the epoch with the error `batch` would give, and the network and training
    /// state are put back as they were before the epoch. Other methods check it as `batch`.
    pub fn epoch_batch<'a>(
        &self,
        x: MatRef<'a, T>,
        t: Targets<'a, T>,
        weights: Option<&'a [T]>,
    ) -> Result<Batch<'a, T>> {
        let mut batch = self.unchecked_x_batch(x, t)?;
        if let Some(w) = weights {
            batch = self.with_weights(batch, w)?;
        }
        Ok(batch)
    }

    fn unchecked_x_batch<'a>(&self, x: MatRef<'a, T>, t: Targets<'a, T>) -> Result<Batch<'a, T>> {
        self.check_shape(x)?;
        self.loss.check_targets(&t, x.rows(), self.n_outputs())?;
        Ok(Batch {
            x,
            t,
            weights: None,
            checked_for: self.signature(),
            x_unchecked: true,
        })
    }

    /// `batch` with a weight per sample (finite, >= 0, not all 0).
    pub fn weighted_batch<'a>(
        &self,
        x: MatRef<'a, T>,
        t: Targets<'a, T>,
        weights: &'a [T],
    ) -> Result<Batch<'a, T>> {
        let batch = self.batch(x, t)?;
        self.with_weights(batch, weights)
    }

    fn with_weights<'a>(&self, mut batch: Batch<'a, T>, weights: &'a [T]) -> Result<Batch<'a, T>> {
        let x = batch.x;
        if weights.len() != x.rows() {
            return value_error!(
                "sample_weight has {} values for {} samples",
                weights.len(),
                x.rows()
            );
        }
        if let Some((k, w)) = weights
            .iter()
            .enumerate()
            .find(|(_, w)| !(w.is_finite() && **w >= T::ZERO))
        {
            return value_error!("sample weights must be finite and >= 0, got {w} at {k}");
        }
        if weights.iter().all(|&w| w == T::ZERO) {
            return value_error!("sample weights are all 0: nothing to learn from");
        }
        if !weights.iter().fold(T::ZERO, |s, &w| s + w).is_finite() {
            return value_error!("sample weights are too large: their sum is not finite");
        }
        batch.weights = Some(weights);
        Ok(batch)
    }

    fn signature(&self) -> Signature {
        Signature {
            n_inputs: self.n_inputs(),
            n_outputs: self.n_outputs(),
            loss: self.loss,
        }
    }

    /// A batch is only valid for networks of the shape and loss it was checked against.
    pub(crate) fn check_batch(&self, batch: &Batch<T>) -> Result<()> {
        self.check_signature(batch)?;
        if batch.x_unchecked {
            self.check_rows(batch.x, 0, batch.len())?;
        }
        Ok(())
    }

    /// `check_batch` without the inputs' finite check of an `epoch_batch`.
    pub(crate) fn check_signature(&self, batch: &Batch<T>) -> Result<()> {
        if batch.checked_for != self.signature() {
            return value_error!(
                "this batch was checked for a network with {:?}, not {:?}",
                batch.checked_for,
                self.signature()
            );
        }
        Ok(())
    }

    /// The network's output for a batch (n, n_inputs) -> (n, n_outputs).
    pub fn predict(&self, x: MatRef<T>) -> Result<Matrix<T>> {
        let mut scratch = PredictScratch::default();
        self.predict_with(x, &mut scratch)?;
        Ok(std::mem::take(&mut scratch.out))
    }

    /// `predict` into reusable buffers: callers that predict chunk by chunk (the binding, to
    /// stay interruptible) allocate once instead of once per chunk. The output is borrowed
    /// from `scratch` until the next call.
    pub fn predict_with<'s>(
        &self,
        x: MatRef<T>,
        scratch: &'s mut PredictScratch<T>,
    ) -> Result<&'s Matrix<T>> {
        self.predict_rows_with(x, 0, x.rows(), scratch)
    }

    /// The outputs of rows `start..end` of `x`. `start` must be a multiple of `PREDICT_BLOCK`;
    /// when `end` is one too, or is `x.rows()`, the rows go through the same blocks, and give
    /// the same bits, as in a whole-`x` call (a shorter block may take another gemm kernel).
    ///
    /// The inputs are checked block by block, just before the block is used: the check then
    /// brings the block into cache for the matrix product instead of costing a separate pass
    /// over all of `x` in memory (measured: 29 ms of 190 for 60,000 x 784 in f32). A bad value
    /// gives the same error, with its row in `x`, as `check_inputs(x)`.
    pub fn predict_rows_with<'s>(
        &self,
        x: MatRef<T>,
        start: usize,
        end: usize,
        scratch: &'s mut PredictScratch<T>,
    ) -> Result<&'s Matrix<T>> {
        if x.rows() == 0 || x.cols() != self.n_inputs() {
            return self.check_inputs(x).map(|_| &scratch.out);
        }
        if start % PREDICT_BLOCK != 0 || start >= end || end > x.rows() {
            return value_error!(
                "rows {start}..{end} of {}: expected a non-empty range starting at a multiple \
                 of {PREDICT_BLOCK}",
                x.rows()
            );
        }
        let (n, n_out) = (end - start, self.n_outputs());
        scratch.out.resize(n, n_out)?;
        let n_blocks = n.div_ceil(PREDICT_BLOCK);
        let k = self.threads.0.min(n_blocks);
        let result = if k <= 1 {
            let PredictScratch { z, a, input, out } = scratch;
            self.predict_blocks(x, start, end, (z, a, input), out.as_mut_slice())
        } else {
            // Threads take contiguous runs of whole blocks, so every row goes through the same
            // block, and the same products, as with one thread: the same bits for any count.
            let per_thread = n_blocks.div_ceil(k) * PREDICT_BLOCK;
            scratch
                .out
                .as_mut_slice()
                .par_chunks_mut(per_thread * n_out)
                .enumerate()
                .try_for_each(|(i, out)| {
                    let from = start + i * per_thread;
                    let to = (from + per_thread).min(end);
                    let mut bufs = (Matrix::default(), Matrix::default(), Matrix::default());
                    let (z, a, input) = (&mut bufs.0, &mut bufs.1, &mut bufs.2);
                    self.predict_blocks(x, from, to, (z, a, input), out)
                })
        };
        match result {
            Ok(()) => Ok(&scratch.out),
            // Threads may stop at a later bad block first: report the first bad value in the
            // rows, as one thread does.
            Err(e) => {
                self.check_rows(x, start, end)?;
                Err(e)
            }
        }
    }

    /// The finite check of `check_inputs` on rows `start..end` of `x`, positions given in `x`.
    pub(crate) fn check_rows(&self, x: MatRef<T>, start: usize, end: usize) -> Result<()> {
        check_finite_rows(x.rows_range(start, end), |k| start + k)
    }

    /// Rows start..end of x through every layer, PREDICT_BLOCK rows at a time (blocks counted
    /// from row 0 of x; `start` is a multiple of PREDICT_BLOCK), into `out` (their outputs).
    /// Each block's inputs are checked finite before it is used.
    fn predict_blocks(
        &self,
        x: MatRef<T>,
        start: usize,
        end: usize,
        (z, a, input): (&mut Matrix<T>, &mut Matrix<T>, &mut Matrix<T>),
        out: &mut [T],
    ) -> Result<()> {
        let n_out = self.n_outputs();
        let mut row = start;
        while row < end {
            let stop = (row + PREDICT_BLOCK).min(end);
            self.check_rows(x, row, stop)?;
            for (l, layer) in self.layers.iter().enumerate() {
                if l > 0 {
                    // The activation becomes the next input; the old input buffer becomes a.
                    std::mem::swap(input, a);
                }
                let layer_x = if l == 0 {
                    x.rows_range(row, stop)
                } else {
                    input.view()
                };
                layer.forward(layer_x, z, a, Threads(1))?;
            }
            let offset = (row - start) * n_out;
            out[offset..offset + (stop - row) * n_out].copy_from_slice(a.as_slice());
            row = stop;
        }
        Ok(())
    }

    /// The mean loss of a batch (no state changes).
    pub fn compute_loss(&self, batch: &Batch<T>) -> Result<f64> {
        self.regularized_loss(batch, 0.0)
    }

    /// The mean loss of a batch plus the L2 penalty (l2 / 2) * sum of squared weights.
    pub fn regularized_loss(&self, batch: &Batch<T>, l2: f64) -> Result<f64> {
        check_l2(l2)?;
        self.check_batch(batch)?;
        let mut work = Workspace::for_layers(self.layers.len());
        forward_cached(&self.layers, batch.x, &mut work, self.threads, None)?;
        let last = self.layers.len() - 1;
        let data = self.loss.value(
            work.z[last].view(),
            work.a[last].view(),
            &batch.t,
            batch.weights,
        );
        Ok(data.to_f64() + self.l2_penalty(l2))
    }

    /// (loss, [dW, db per layer]) of the mean loss over the batch; weights unchanged.
    pub fn gradients(&mut self, batch: &Batch<T>) -> Result<(f64, Vec<LayerGradient<T>>)> {
        self.regularized_gradients(batch, 0.0)
    }

    /// `gradients` of the loss plus the L2 penalty: dW gains l2 * W.
    pub fn regularized_gradients(
        &mut self,
        batch: &Batch<T>,
        l2: f64,
    ) -> Result<(f64, Vec<LayerGradient<T>>)> {
        check_l2(l2)?;
        let loss = self.backprop(batch, l2, None)?;
        Ok((loss, self.work.grads.clone()))
    }

    /// One SGD step on the batch's mean loss; returns the loss of the forward pass it did
    /// before the step (erratum 8: no second forward pass is needed to report it).
    /// A step that would make the loss or a weight non-finite is refused with
    /// `Error::NonFinite` and the weights stay as they were.
    pub fn backward(&mut self, batch: &Batch<T>, learning_rate: f64) -> Result<f64> {
        check_learning_rate(learning_rate)?;
        let loss = self.backprop(batch, 0.0, None)?;
        if !loss.is_finite() {
            return Err(Error::NonFinite(format!(
                "the loss is {loss}; the step was not applied"
            )));
        }
        // A read-only pass first, so that a refused step leaves no weight changed.
        let lr = T::from_f64(learning_rate);
        let stays_finite = |p: &[T], g: &[T]| {
            p.iter()
                .zip(g)
                .fold(true, |ok, (&w, &g)| ok & (w - lr * g).is_finite())
        };
        let finite = self
            .layers
            .iter()
            .zip(&self.work.grads)
            .all(|(layer, grad)| {
                stays_finite(layer.weights(), &grad.weights)
                    && stays_finite(layer.biases(), &grad.biases)
            });
        if !finite {
            return Err(Error::NonFinite(format!(
                "the update would make a weight non-finite (loss {loss}); the step was not applied"
            )));
        }
        for (layer, grad) in self.layers.iter_mut().zip(&self.work.grads) {
            layer.apply_gradient(grad, lr);
        }
        Ok(loss)
    }

    /// The article's loop: per-sample SGD in order, `epochs` times; the mean loss per epoch.
    pub fn train(
        &mut self,
        batch: &Batch<T>,
        epochs: usize,
        learning_rate: f64,
    ) -> Result<Vec<f64>> {
        let mut progress = TrainProgress::default();
        let steps = epochs.saturating_mul(batch.len());
        self.train_steps(batch, &mut progress, steps, learning_rate)?;
        Ok(progress.epoch_losses)
    }

    /// `steps` more per-sample SGD steps of `train`, continuing from `progress` (epochs wrap
    /// around the batch). Callers that must pause between chunks, to check for Ctrl-C say, call
    /// it repeatedly and get the same result as one `train`, bit for bit, when every call but
    /// the last takes a multiple of `train_granule()` steps.
    ///
    /// Each step is the fused kernel (`Layer::sgd_sample`); a first layer too large for the
    /// fastest caches takes its steps in blocks of `TRAIN_BLOCK` samples (sgd_block.rs: the
    /// same steps, W read and written once per block). Divergence is caught without
    /// slowing the steps down: a step stops on a non-finite loss before it changes anything,
    /// and the weights are checked once at the end; if they are not all finite, the chunk is
    /// replayed from a snapshot one checked step at a time, so the network ends with the
    /// weights of the last step that left them finite, and `Error::NonFinite` is returned.
    pub fn train_steps(
        &mut self,
        batch: &Batch<T>,
        progress: &mut TrainProgress,
        steps: usize,
        learning_rate: f64,
    ) -> Result<()> {
        self.train_steps_until(batch, progress, steps, learning_rate, &mut || false)
    }

    /// `train_steps` that asks `stop` before every step after the first; when it answers true
    /// the call ends there with `Error::Interrupted`, the network holding every step taken
    /// (an open block is applied as far as it went) and `progress` counting them. For a
    /// binding to check for Ctrl-C inside a call whose steps are slow, not only between calls.
    pub fn train_steps_until(
        &mut self,
        batch: &Batch<T>,
        progress: &mut TrainProgress,
        steps: usize,
        learning_rate: f64,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<()> {
        check_learning_rate(learning_rate)?;
        self.check_batch(batch)?;
        if batch.weights.is_some() {
            return value_error!(
                "train is the article's unweighted per-sample loop; use train_epoch with \
                 batch_size 1 for weighted samples"
            );
        }
        let n = batch.len();
        if progress.next_sample >= n && progress.next_sample != 0 {
            return value_error!(
                "progress is at sample {} of a batch of {n}: it belongs to another batch",
                progress.next_sample
            );
        }
        let lr = T::from_f64(learning_rate);
        // The sample whose first-layer update is still to be made (fused into the next
        // sample's forward pass, see `sgd_sample`); shared by the step and the flush.
        let pending = Cell::new(None);
        let blocked = self.blocks_first_layer();
        self.guarded_deferred(
            progress,
            steps,
            |net, progress, i, checked| {
                if i > 0 && !checked && stop() {
                    return Err(Error::Interrupted);
                }
                let k = progress.next_sample;
                let left = steps - i;
                let first = if checked {
                    FirstLayer::Now
                } else if blocked && (net.work.block.is_open() || left >= 2) {
                    if !net.work.block.is_open() {
                        let rows = (0..left.min(TRAIN_BLOCK)).map(|j| (k + j) % n);
                        net.work.block.open(&net.layers[0], batch.x, rows)?;
                    }
                    FirstLayer::Blocked
                } else {
                    FirstLayer::Deferred(&pending)
                };
                let loss = net.sgd_sample(batch, k, lr, first).map_err(|e| match e {
                    Error::NonFinite(msg) => Error::NonFinite(format!(
                        "training diverged at epoch {}, sample {k}: {msg}; the weights are \
                         those of the last step that kept them finite (try a smaller \
                         learning_rate)",
                        progress.epoch_losses.len()
                    )),
                    other => other,
                })?;
                progress.epoch_total += loss;
                progress.next_sample += 1;
                if progress.next_sample == n {
                    progress.epoch_losses.push(progress.epoch_total / n as f64);
                    progress.next_sample = 0;
                    progress.epoch_total = 0.0;
                }
                Ok(())
            },
            |net, _| {
                if let Some(prev) = pending.take() {
                    let delta = net.work.delta[0].row(0);
                    net.layers[0].sgd_sample(batch.x.row(prev), delta, lr, None);
                }
                net.work.block.flush(&mut net.layers[0]);
            },
        )
    }

    /// Whether `train` takes its first layer's steps in blocks (sgd_block.rs): where that
    /// layer's weights no longer fit the fastest caches, and it has enough outputs for the
    /// Gram matrix (TRAIN_BLOCK dot products of length n_inputs per step) to cost little
    /// beside the layer's own 2 n_inputs n_outputs (784-32 measured 5 -> 7 us per step
    /// blocked; 784-128 27 -> 15, 128-128 5.4 -> 4.6, 64-256 7.4 -> 4.7).
    fn blocks_first_layer(&self) -> bool {
        let first = &self.layers[0];
        first.n_inputs() * first.n_outputs() >= BLOCK_MIN_WEIGHTS
            && first.n_outputs() >= 2 * TRAIN_BLOCK
    }

    /// The step counts `train_steps` calls should be multiples of (except the last) for a run
    /// split into calls to give the bits of one call: `TRAIN_BLOCK` where the first layer is
    /// taken in blocks, else 1.
    pub fn train_granule(&self) -> usize {
        if self.blocks_first_layer() {
            TRAIN_BLOCK
        } else {
            1
        }
    }

    /// `guarded_deferred` for steps that leave nothing to finish.
    pub(crate) fn guarded<S: Clone>(
        &mut self,
        state: &mut S,
        steps: usize,
        mut step: impl FnMut(&mut Self, &mut S, usize) -> Result<()>,
    ) -> Result<()> {
        self.guarded_deferred(state, steps, |net, s, i, _| step(net, s, i), |_, _| {})
    }

    /// Runs `steps` calls of `step`, which must not change anything when it fails with a
    /// non-finite loss. If the run ends with a non-finite weight, it is replayed from a snapshot
    /// with a check after every step and stopped before the step that broke it.
    ///
    /// `step(net, state, i, checked)` may leave work undone when `checked` is false (the fast
    /// run); `finish` completes it after the fast run, before the weights are checked.
    pub(crate) fn guarded_deferred<S: Clone>(
        &mut self,
        state: &mut S,
        steps: usize,
        mut step: impl FnMut(&mut Self, &mut S, usize, bool) -> Result<()>,
        mut finish: impl FnMut(&mut Self, &mut S),
    ) -> Result<()> {
        let snapshot = (self.layers.clone(), state.clone());
        let fast = (0..steps).try_for_each(|i| step(self, state, i, false));
        finish(self, state);
        let finite = self.all_finite();
        match fast {
            Ok(()) if finite => return Ok(()),
            Err(Error::NonFinite(msg)) if finite => return Err(Error::NonFinite(msg)),
            Err(e @ Error::Interrupted) => return Err(e),
            // A refused input (`epoch_batch` checks rows as it goes) or a failed allocation:
            // the call fails as a whole, so it leaves everything as it was.
            Err(e @ (Error::Value(_) | Error::Memory(_))) => {
                self.layers = snapshot.0;
                *state = snapshot.1;
                return Err(e);
            }
            _ => {}
        }
        self.layers = snapshot.0;
        *state = snapshot.1;
        for i in 0..steps {
            let before = (self.layers.clone(), state.clone());
            let result = step(self, state, i, true);
            if result.is_err() || !self.all_finite() {
                self.layers = before.0;
                *state = before.1;
                return Err(match result {
                    Err(e) => e,
                    Ok(()) => Error::NonFinite(format!(
                        "training diverged at step {i} of this call: a weight became \
                         non-finite; the weights are those before that step (try a smaller \
                         learning_rate)"
                    )),
                });
            }
        }
        Ok(())
    }

    pub(crate) fn all_finite(&self) -> bool {
        self.layers.iter().all(Layer::all_finite)
    }

    /// One fused per-sample SGD step on sample k of the batch; Err(NonFinite) on a non-finite
    /// loss, before any change of its own.
    ///
    /// `first` says how the first layer takes its part. `Deferred`: its update is not made at
    /// the end of the step; the sample's index is left in the cell, and the next step makes
    /// the update inside its own forward pass through the first layer
    /// (`Layer::sgd_then_forward`: one pass over the largest weight matrix per sample instead
    /// of two). The arithmetic is that of `Now`; the caller flushes the last pending update.
    /// `Blocked`: the step is one of the open block's (sgd_block.rs), which the caller opened
    /// and flushes if the run stops inside it.
    fn sgd_sample(&mut self, batch: &Batch<T>, k: usize, lr: T, first: FirstLayer) -> Result<f64> {
        let sample = batch.rows_range(k, k + 1);
        let (layers, work) = (&mut self.layers, &mut self.work);
        // The first layer's forward pass where this step takes it its own way; then the rest.
        let first_done = match first {
            FirstLayer::Blocked => {
                let (z, a) = (&mut work.z[0], &mut work.a[0]);
                work.block.forward_next(&layers[0], z, a)?;
                true
            }
            FirstLayer::Deferred(pending) => match pending.take() {
                Some(prev) => {
                    let (delta, z, a) = (&work.delta[0], &mut work.z[0], &mut work.a[0]);
                    let x = sample.x.row(0);
                    if let Err(e) =
                        layers[0].sgd_then_forward(batch.x.row(prev), delta.row(0), lr, x, z, a)
                    {
                        pending.set(Some(prev));
                        return Err(e);
                    }
                    true
                }
                None => false,
            },
            FirstLayer::Now => false,
        };
        if first_done {
            for l in 1..layers.len() {
                let (a_below, a_here) = work.a.split_at_mut(l);
                let input = a_below[l - 1].view();
                layers[l].forward(input, &mut work.z[l], &mut a_here[0], self.threads)?;
            }
        } else {
            forward_cached(layers, sample.x, work, self.threads, None)?;
        }
        let last = layers.len() - 1;
        let (z_out, a_out) = (work.z[last].view(), work.a[last].view());
        let loss = self.loss.value(z_out, a_out, &sample.t, None);
        if !loss.is_finite() {
            return Err(Error::NonFinite(format!("the loss is {loss}")));
        }
        work.delta[last].resize(1, layers[last].n_outputs())?;
        let out_act = layers[last].activation();
        self.loss.seed(
            z_out,
            a_out,
            &sample.t,
            None,
            out_act,
            &mut work.delta[last],
        );
        for l in (0..layers.len()).rev() {
            let (below, here) = work.delta.split_at_mut(l);
            if l == 0 {
                match first {
                    FirstLayer::Deferred(pending) => pending.set(Some(k)),
                    FirstLayer::Blocked => work.block.record(&mut layers[0], here[0].row(0), lr),
                    FirstLayer::Now => {
                        layers[0].sgd_sample(sample.x.row(0), here[0].row(0), lr, None)
                    }
                }
                break;
            }
            let dx = &mut below[l - 1];
            dx.resize(1, layers[l].n_inputs())?;
            dx.as_mut_slice().fill(T::ZERO);
            layers[l].sgd_sample(
                work.a[l - 1].row(0),
                here[0].row(0),
                lr,
                Some(dx.as_mut_slice()),
            );
            let below_act = layers[l - 1].activation();
            let (z, a) = (work.z[l - 1].row(0), work.a[l - 1].row(0));
            for ((d, &zv), &av) in dx.as_mut_slice().iter_mut().zip(z).zip(a) {
                *d *= below_act.derivative(zv, av);
            }
        }
        Ok(loss.to_f64())
    }

    /// Copies of (W, b) per layer.
    pub fn parameters(&self) -> Vec<(Vec<T>, Vec<T>)> {
        self.layers
            .iter()
            .map(|l| (l.weights().to_vec(), l.biases().to_vec()))
            .collect()
    }

    /// Replaces every layer's (W, b); all are checked before any is changed.
    pub fn set_parameters(&mut self, params: Vec<(Vec<T>, Vec<T>)>) -> Result<()> {
        if params.len() != self.layers.len() {
            return value_error!(
                "expected {} (weights, biases) pairs, one per layer, got {}",
                self.layers.len(),
                params.len()
            );
        }
        let mut checked = self.layers.clone();
        for (l, (layer, (w, b))) in checked.iter_mut().zip(params).enumerate() {
            layer
                .set_parameters(w, b)
                .map_err(|e| Error::Value(format!("layer {l}: {e}")))?;
        }
        self.layers = checked;
        Ok(())
    }

    /// (l2 / 2) * sum of squared weights (biases excluded).
    fn l2_penalty(&self, l2: f64) -> f64 {
        if l2 == 0.0 {
            return 0.0;
        }
        let mut s = T::ZERO;
        for layer in &self.layers {
            for &w in layer.weights() {
                s += w * w;
            }
        }
        (T::from_f64(0.5 * l2) * s).to_f64()
    }

    /// Forward with caching (and dropout when given), loss (+ L2), then every layer's gradient
    /// into the workspace (dW += l2 W).
    pub(crate) fn backprop(
        &mut self,
        batch: &Batch<T>,
        l2: f64,
        dropout: Option<Dropout>,
    ) -> Result<f64> {
        self.check_batch(batch)?;
        let penalty = self.l2_penalty(l2);
        let n = batch.len();
        let k = self.threads.0;
        let loss = if self.splits(n, dropout.is_some()) {
            self.backprop_split(batch, k)?
        } else {
            let (layers, work, threads) = (&self.layers, &mut self.work, self.threads);
            let norm = Normalizer::of(batch);
            let rates = dropout.as_ref().map(|d| d.rates);
            forward_cached(layers, batch.x, work, threads, dropout)?;
            let last = layers.len() - 1;
            let (z_out, a_out) = (work.z[last].view(), work.a[last].view());
            let loss = self.loss.value(z_out, a_out, &batch.t, batch.weights);
            backward_cached(layers, self.loss, batch, norm, work, rates, threads)?;
            loss
        };
        if l2 != 0.0 {
            let l2 = T::from_f64(l2);
            for (layer, grad) in self.layers.iter().zip(self.work.grads.iter_mut()) {
                for (g, &w) in grad.weights.iter_mut().zip(layer.weights()) {
                    *g += l2 * w;
                }
            }
        }
        Ok(loss.to_f64() + penalty)
    }

    /// Whether `backprop` splits a batch of n rows across the threads. Not when a layer's
    /// products are large enough for the kernels to cut them between the threads by neurons
    /// (`kernels::splits_product`): that needs no adding up of the shares' gradients, and
    /// each thread reads and writes only its neurons' rows of W.
    pub(crate) fn splits(&self, n: usize, dropout: bool) -> bool {
        let k = self.threads.0;
        k > 1
            && !dropout
            && n >= k * ROWS_PER_THREAD
            && !self.layers.iter().any(|layer| {
                let (n_in, n_out) = (layer.n_inputs(), layer.n_outputs());
                kernels::splits_product(n, n_in, n_out, self.threads)
            })
    }

    /// One mini-batch step of plain SGD (no momentum, weight decay, L2 or clipping): the
    /// forward pass and loss of `backprop`, then each layer's `Layer::sgd_backward`, top down,
    /// which makes a large layer's update inside its weight-gradient product. Nothing is
    /// updated when the loss is not finite; the loss is returned either way. Only where the
    /// batch's rows are not split (`splits` false): a split batch sums its shares' gradients
    /// first.
    pub(crate) fn sgd_batch(
        &mut self,
        batch: &Batch<T>,
        dropout: Option<Dropout>,
        learning_rate: f64,
    ) -> Result<f64> {
        self.check_batch(batch)?;
        debug_assert!(!self.splits(batch.len(), dropout.is_some()));
        let (layers, work, threads) = (&mut self.layers, &mut self.work, self.threads);
        let norm = Normalizer::of(batch);
        let rates = dropout.as_ref().map(|d| d.rates);
        forward_cached(layers, batch.x, work, threads, dropout)?;
        let last = layers.len() - 1;
        let (z_out, a_out) = (work.z[last].view(), work.a[last].view());
        let loss = self.loss.value(z_out, a_out, &batch.t, batch.weights);
        if !loss.is_finite() {
            return Ok(loss.to_f64());
        }
        seed_output_delta(layers, self.loss, batch, norm, work)?;
        let lr = T::from_f64(learning_rate);
        for l in (0..layers.len()).rev() {
            let input = layer_input(batch.x, &work.a, &work.out, l, rates);
            let (below, here) = work.delta.split_at_mut(l);
            let dx = below.last_mut(); // None for the first layer: its dx is not needed
            let has_dx = dx.is_some();
            let grad = &mut work.grads[l];
            layers[l].sgd_backward(input, here[0].view(), grad, dx, lr, threads)?;
            if has_dx {
                delta_below(layers, work, l, rates);
            }
        }
        Ok(loss.to_f64())
    }

    /// `backprop` with the batch's rows split into k contiguous shares, one per thread: each
    /// share runs forward and backward on its own workspace (its delta normalised by the
    /// whole batch's n or sum of weights, so each row's delta is the single-thread one), then
    /// the shares' gradients are added in share order. The sums over samples (dW, db) are
    /// split in k, so results depend on k but never on timing: for a given k they are the
    /// same bits on every run. The loss is summed over the shares in one running sum, as one
    /// thread would.
    fn backprop_split(&mut self, batch: &Batch<T>, k: usize) -> Result<T> {
        let n = batch.len();
        let norm = Normalizer::of(batch);
        if self.shares.len() != k {
            self.shares = (0..k)
                .map(|_| Workspace::for_layers(self.layers.len()))
                .collect();
        }
        let bounds: Vec<(usize, usize)> = (0..k).map(|i| (i * n / k, (i + 1) * n / k)).collect();
        let (layers, loss) = (&self.layers, self.loss);
        self.shares
            .par_iter_mut()
            .zip(bounds.par_iter())
            .try_for_each(|(work, &(start, end))| {
                let share = batch.rows_range(start, end);
                forward_cached(layers, share.x, work, Threads(1), None)?;
                backward_cached(layers, loss, &share, norm, work, None, Threads(1))
            })?;
        let last = layers.len() - 1;
        let parts = self
            .shares
            .iter()
            .zip(&bounds)
            .map(|(work, &(start, end))| {
                let t = batch.t.rows_range(start, end);
                (work.z[last].view(), work.a[last].view(), t)
            });
        let value = loss.value_of_parts(parts, batch.weights);
        // The shares' gradients are added in share order, element by element; the threads
        // take ranges of elements, so the sums are the same bits as one thread's.
        let shares = &self.shares;
        for (l, grad) in self.work.grads.iter_mut().enumerate() {
            let first = &shares[0].grads[l];
            try_resize(&mut grad.weights, first.weights.len())?;
            try_resize(&mut grad.biases, first.biases.len())?;
            let sum_range = |g: &mut [T], start: usize, pick: fn(&LayerGradient<T>) -> &[T]| {
                let end = start + g.len();
                g.copy_from_slice(&pick(&shares[0].grads[l])[start..end]);
                for share in &shares[1..] {
                    kernels::add_assign(g, &pick(&share.grads[l])[start..end]);
                }
            };
            let chunk = grad.weights.len().div_ceil(k).max(1);
            grad.weights
                .par_chunks_mut(chunk)
                .enumerate()
                .for_each(|(i, g)| sum_range(g, i * chunk, |lg| &lg.weights));
            sum_range(&mut grad.biases, 0, |lg| &lg.biases);
        }
        Ok(value)
    }
}

/// Below this many rows per thread, a batch is not split (the hand-off would cost more).
const ROWS_PER_THREAD: usize = 16;

/// The denominator of a batch's mean loss, for the loss's seed: the batch's size and, with
/// sample weights, their sum (accumulated left to right over the whole batch).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Normalizer<T> {
    pub n: usize,
    pub total_weight: Option<T>,
}

impl<T: Real> Normalizer<T> {
    pub(crate) fn of(batch: &Batch<T>) -> Self {
        Normalizer {
            n: batch.len(),
            total_weight: batch.weights.map(|w| w.iter().fold(T::ZERO, |s, &v| s + v)),
        }
    }
}

/// The backward pass after `forward_cached`: the loss's delta of the output layer (normalised
/// by `norm`), then every layer's gradient into `work.grads`, top down.
fn backward_cached<T: Real>(
    layers: &[Layer<T>],
    loss: Loss,
    batch: &Batch<T>,
    norm: Normalizer<T>,
    work: &mut Workspace<T>,
    rates: Option<&[f64]>,
    threads: Threads,
) -> Result<()> {
    seed_output_delta(layers, loss, batch, norm, work)?;
    for l in (0..layers.len()).rev() {
        let input = layer_input(batch.x, &work.a, &work.out, l, rates);
        let (below, here) = work.delta.split_at_mut(l);
        let dx = below.last_mut(); // None for the first layer: its dx is not needed
        let has_dx = dx.is_some();
        layers[l].backward(input, here[0].view(), &mut work.grads[l], dx, threads)?;
        if has_dx {
            delta_below(layers, work, l, rates);
        }
    }
    Ok(())
}

/// ValueError naming the first non-finite value of `x` by its position in the caller's array:
/// row `row_of(k)` for row k of `x` (a block of rows, or a gathered mini-batch).
pub(crate) fn check_finite_rows<T: Real>(
    x: MatRef<T>,
    row_of: impl Fn(usize) -> usize,
) -> Result<()> {
    match first_non_finite(x.as_slice()) {
        Some(pos) => non_finite_at(x, pos, row_of),
        None => Ok(()),
    }
}

/// The ValueError of `check_finite_rows` for the value at flat position `pos` of `x`.
pub(crate) fn non_finite_at<T: Real>(
    x: MatRef<T>,
    pos: usize,
    row_of: impl Fn(usize) -> usize,
) -> Result<()> {
    value_error!(
        "inputs must be finite, got {} at [{}, {}]",
        x.as_slice()[pos],
        row_of(pos / x.cols()),
        pos % x.cols()
    )
}

/// The output layer's delta = dL/dz of the batch's mean loss (normalised by `norm`), from the
/// last forward pass, into `work.delta[last]`: where the chain rule starts.
fn seed_output_delta<T: Real>(
    layers: &[Layer<T>],
    loss: Loss,
    batch: &Batch<T>,
    norm: Normalizer<T>,
    work: &mut Workspace<T>,
) -> Result<()> {
    let last = layers.len() - 1;
    work.delta[last].resize(batch.len(), layers[last].n_outputs())?;
    loss.seed_normalized(
        work.z[last].view(),
        work.a[last].view(),
        &batch.t,
        batch.weights,
        norm.n,
        norm.total_weight,
        layers[last].activation(),
        &mut work.delta[last],
    );
    Ok(())
}

/// Turns the dx of layer l, left in `work.delta[l - 1]`, into the delta of the layer below:
/// dx (through its dropout mask) * f'(z).
fn delta_below<T: Real>(
    layers: &[Layer<T>],
    work: &mut Workspace<T>,
    l: usize,
    rates: Option<&[f64]>,
) {
    let below_act = layers[l - 1].activation();
    let (z, a, d) = (&work.z[l - 1], &work.a[l - 1], &mut work.delta[l - 1]);
    let dropped = rates.is_some_and(|r| r[l - 1] > 0.0);
    let mask = &work.mask[l - 1];
    for (idx, ((dv, &zv), &av)) in d
        .as_mut_slice()
        .iter_mut()
        .zip(z.as_slice())
        .zip(a.as_slice())
        .enumerate()
    {
        if dropped {
            *dv = if mask[idx] != T::ZERO {
                *dv * mask[idx]
            } else {
                T::ZERO
            };
        }
        *dv *= below_act.derivative(zv, av);
    }
}

/// The input of layer l in the last forward pass: x, the activation below, or the activation
/// below after its dropout.
fn layer_input<'w, T: Real>(
    x: MatRef<'w, T>,
    a: &'w [Matrix<T>],
    out: &'w [Matrix<T>],
    l: usize,
    rates: Option<&[f64]>,
) -> MatRef<'w, T> {
    if l == 0 {
        x
    } else if rates.is_some_and(|r| r[l - 1] > 0.0) {
        out[l - 1].view()
    } else {
        a[l - 1].view()
    }
}

/// Forward through every layer, keeping z and a of each (and, with dropout, the masks and the
/// dropped activations that the next layer reads). Masks are drawn layer by layer, row-major.
pub(crate) fn forward_cached<T: Real>(
    layers: &[Layer<T>],
    x: MatRef<T>,
    work: &mut Workspace<T>,
    threads: Threads,
    mut dropout: Option<Dropout>,
) -> Result<()> {
    let rates = dropout.as_ref().map(|d| d.rates);
    for (l, layer) in layers.iter().enumerate() {
        let (a_below, a_here) = work.a.split_at_mut(l);
        let input = layer_input(x, a_below, &work.out, l, rates);
        layer.forward(input, &mut work.z[l], &mut a_here[0], threads)?;
        let p = rates.map_or(0.0, |r| r[l]);
        if p > 0.0 {
            let d = dropout.as_mut().expect("rates come from dropout");
            let scale = T::from_f64(1.0 / (1.0 - p));
            let (rows, cols) = (work.a[l].rows(), work.a[l].cols());
            work.out[l].resize(rows, cols)?;
            let mask = &mut work.mask[l];
            mask.clear();
            for (o, &av) in work.out[l]
                .as_mut_slice()
                .iter_mut()
                .zip(work.a[l].as_slice())
            {
                let keep = d.rng.uniform() >= p;
                mask.push(if keep { scale } else { T::ZERO });
                *o = if keep { av * scale } else { T::ZERO };
            }
        }
    }
    Ok(())
}

pub(crate) fn check_l2(l2: f64) -> Result<()> {
    if !(l2.is_finite() && l2 >= 0.0) {
        return value_error!("l2 must be a finite number >= 0, got {l2}");
    }
    Ok(())
}

/// Refuses a learning rate that is not finite and positive.
pub fn check_learning_rate(learning_rate: f64) -> Result<()> {
    if !(learning_rate.is_finite() && learning_rate > 0.0) {
        return value_error!("learning_rate must be a finite number > 0, got {learning_rate}");
    }
    Ok(())
}

/// Refuses, before allocating anything, a network whose parameters cannot fit in memory.
fn check_parameter_count(sizes: &[usize], bytes_per_value: usize) -> Result<()> {
    let mut total: u128 = 0;
    for pair in sizes.windows(2) {
        total += pair[0] as u128 * pair[1] as u128 + pair[1] as u128;
    }
    // Weights and their gradients.
    let bytes = total * 2 * bytes_per_value as u128;
    let gib = |b: u128| b as f64 / (1u64 << 30) as f64;
    if bytes > isize::MAX as u128 {
        return Err(Error::Memory(format!(
            "sizes {sizes:?} need {total} parameters, more than the address space"
        )));
    }
    // Refuse before allocating: with overcommit, an allocation larger than the machine may
    // "succeed" and the process be killed later, while the weights are drawn.
    if let Some(ram) = physical_memory_bytes() {
        if bytes > ram as u128 {
            return Err(Error::Memory(format!(
                "sizes {sizes:?} need {total} parameters ({:.1} GiB with their gradients), more \
                 than this machine's {:.1} GiB of memory",
                gib(bytes),
                gib(ram as u128)
            )));
        }
    }
    Ok(())
}

/// Total physical memory, from /proc/meminfo where there is one.
fn physical_memory_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}
