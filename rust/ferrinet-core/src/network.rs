//! The article's `NeuralNetwork`: layers applied in order, with the backward pass done right.
//!
//! One forward pass caches every layer's input, z and a (erratum 1); backward computes every
//! gradient from the weights of that forward pass (erratum 3) and only then updates; the seed
//! of the chain rule is the true derivative of the reported mean loss (erratum 7).
//!
//! This file holds the maths. The readable default path, to learn it from:
//! `forward_cached` (each layer's `Layer::forward`), `seed_output_delta` (the loss's dL/dz),
//! `backward_cached` (each layer's `Layer::backward`, top down, with `delta_below`), together
//! `backprop`; `backward` then applies the gradients (`Layer::apply_gradient`).
//!
//! The speed-up paths compute the same maths in another order, and say where they differ:
//! - `sgd_batch` (here): a mini-batch SGD step that makes each layer's update inside its
//!   weight-gradient product (`Layer::sgd_backward`) instead of storing dW first;
//! - `predict.rs`: inference in cache-sized blocks of rows, and across threads;
//! - `per_sample.rs`: the article's per-sample loop as one fused kernel per sample, the first
//!   layer's update deferred into the next forward pass or taken a block of samples at a time;
//! - `row_split.rs`: a small network's batch split by rows across threads;
//! - `top_rows.rs`: a large network's layers above the first split by rows across threads
//!   (forward, output delta and the deltas below; the same bits as one thread);
//! - `kernels.rs`: SIMD loops and the `gemm` crate under `Layer`'s products;
//! - `panels.rs`: the first layer kept in panels of neurons during an epoch, with its own
//!   6 x 8 (float64) or 6 x 16 (float32) AVX2+FMA kernel for the two products that read them.
//!
//! Batch and input checks are in `batch.rs`, the divergence guards of the training loops in
//! `guard.rs`, mini-batch epochs with optimizers in `training.rs`.

use crate::activation::Activation;
use crate::batch::{check_l2, check_learning_rate, Batch};
use crate::error::{value_error, Error, Result};
use crate::float::Real;
use crate::kernels::{self, per_cpu, Threads};
use crate::layer::{Layer, LayerGradient};
use crate::loss::Loss;
use crate::matrix::{MatRef, Matrix};
use crate::memory::check_parameter_count;
use crate::panels;
use crate::per_sample::sgd_block::SgdBlock;
use crate::predict::PredictScratch;
use crate::rng::SplitMix64;
use crate::top_rows::top_rows;

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
    pub step_bounds: Vec<f64>, // per layer: its bound after `backward`'s proven step
    pub first_t: TransposedFirst<T>, // a fused-SGD epoch's first-layer weights: W^T or panels
    pub lse: Vec<T>,        // per output row: its log-sum-exp, when top_rows.rs cuts the batch
}

/// The first layer's weights in the layout its products read, which an epoch updates and
/// reads in place of the layer's W (out, in) from batch to batch (`sgd_batch`,
/// `backprop`):
///
/// - where the CPU has AVX2 and FMA, either float type: panels of 8 (float64) or 16 (float32)
///   neurons (panels.rs), which both products read and write without packing (784-128, batch
///   64, one thread: float64 forward 276 instead of 306 us, update 286 instead of 304 us;
///   float32 134 and 144 us against the crate's 141 from W^T and 150). These round as their
///   own kernel does, not as the gemm crate: a step that may not leave them (the guard's
///   checked replay) takes them all the same and settles after itself, so that a replay gives
///   the fast run's bits. An optimizer with a state (momentum, Adam's moments) steps W in the
///   panels, from a gradient in the panels, with the first layer's state moved into them too
///   (`state_live`; training.rs `transpose_first_state` / `settle_first_state`).
/// - elsewhere, float32 in a fused plain-SGD epoch on one thread: W^T (in, out) row-major.
///   The forward product reads W^T as it is, where from W the gemm crate first copies it into
///   its packed layout, every batch (141 instead of 161 us; the same bits, see
///   `kernels::linear_forward_transposed`).
///
/// While `live`, `wt` holds the first layer's weights and the layer's own are stale: the epoch
/// puts them back (`NeuralNetwork::settle_first_layer`) before anything else reads them: at
/// the end of its fast run, whatever ended it (the guard's `finish`), after a step of the
/// guard's checked replay, and before a step that takes another path.
///
/// The buffer starts on a cache line (`start`): threads that split the layer's neurons own
/// blocks of 16 columns of W^T (`kernels::SPLIT_ALIGN`), 64 bytes in float32, or whole panels
/// (8 float64 or 16 float32 per input, 64 bytes), so that from an aligned start no two threads write the same
/// line (a block of a malloc'd buffer, 16 bytes past a line, would share one per row of W^T,
/// 784 per update on 784-128).
#[derive(Debug, Default)]
pub(crate) struct TransposedFirst<T> {
    buf: Vec<T>,
    start: usize,
    len: usize,
    pub live: bool,
    /// The first layer's optimizer state (of the `TrainingState` the epoch steps) is in the
    /// same panels: an epoch with a stateful optimizer keeps it beside W, and puts both back
    /// (`NeuralNetwork::settle_first_state`).
    pub state_live: bool,
}

impl<T: Real> TransposedFirst<T> {
    /// W^T, `len` values from a cache line.
    pub fn wt(&self) -> &[T] {
        &self.buf[self.start..self.start + self.len]
    }

    pub fn wt_mut(&mut self) -> &mut [T] {
        &mut self.buf[self.start..self.start + self.len]
    }

    /// Room for `len` values from a cache line (kept between epochs).
    fn size(&mut self, len: usize) {
        let line = (64 / std::mem::size_of::<T>()).max(1);
        if self.buf.len() < len + line {
            self.buf = vec![T::ZERO; len + line];
        }
        self.start = self.buf.as_ptr().align_offset(64).min(line);
        self.len = len;
    }
}

impl<T: Real> Workspace<T> {
    pub(crate) fn for_layers(n_layers: usize) -> Self {
        let fresh = || (0..n_layers).map(|_| Matrix::default()).collect::<Vec<_>>();
        Workspace {
            z: fresh(),
            a: fresh(),
            out: fresh(),
            mask: vec![Vec::new(); n_layers],
            delta: fresh(),
            grads: (0..n_layers).map(|_| LayerGradient::default()).collect(),
            block: SgdBlock::default(),
            step_bounds: vec![f64::INFINITY; n_layers],
            first_t: TransposedFirst::default(),
            lse: Vec::new(),
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
    pub(crate) loss: Loss,
    /// The thread count every pass uses: the one set, or `default_threads()`.
    pub(crate) threads: Threads,
    /// Whether `threads` was set (`set_n_threads`) rather than taken from the default.
    pub(crate) threads_set: bool,
    pub(crate) work: Workspace<T>,
    /// One workspace per thread for batches split across threads (empty until needed).
    pub(crate) shares: Vec<Workspace<T>>,
}

impl<T: Real> Clone for NeuralNetwork<T> {
    fn clone(&self) -> Self {
        NeuralNetwork {
            layers: self.layers.clone(),
            loss: self.loss,
            threads: self.threads,
            threads_set: self.threads_set,
            work: Workspace::for_layers(self.layers.len()),
            shares: Vec::new(),
        }
    }
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
        let never = &mut crate::chunks::never;
        Self::new_until(
            sizes,
            hidden_activations,
            output_activation,
            loss,
            seed,
            never,
        )
    }

    /// `new`, with a call of `stop` before each `STOP_EVERY` weights drawn: the same network,
    /// or `Error::Interrupted` when `stop` answers true (a large network takes a while to draw).
    pub fn new_until(
        sizes: &[usize],
        hidden_activations: &[Activation],
        output_activation: Option<Activation>,
        loss: Loss,
        seed: u64,
        stop: &mut dyn FnMut() -> bool,
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
            layers.push(Layer::new_until(
                pair[0], pair[1], activation, &mut rng, stop,
            )?);
        }
        Self::from_layers(layers, loss)
    }

    /// A copy of the network (`clone`: layers, loss, thread setting; fresh workspaces), its
    /// weights copied `STOP_EVERY` values at a time with a call of `stop` before each chunk
    /// (`Error::Interrupted` when it answers true; the network is only read).
    pub fn copy_until(&self, stop: &mut dyn FnMut() -> bool) -> Result<Self> {
        let layers = self
            .layers
            .iter()
            .map(|l| l.copy_until(stop))
            .collect::<Result<Vec<_>>>()?;
        Ok(NeuralNetwork {
            layers,
            loss: self.loss,
            threads: self.threads,
            threads_set: self.threads_set,
            work: Workspace::for_layers(self.layers.len()),
            shares: Vec::new(),
        })
    }

    /// `parameters`, copied `STOP_EVERY` values at a time with a call of `stop` before each
    /// chunk (`Error::Interrupted` when it answers true).
    pub fn parameters_until(
        &self,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<Vec<(Vec<T>, Vec<T>)>> {
        self.layers
            .iter()
            .map(|l| {
                Ok((
                    crate::chunks::copy_until(l.weights(), stop)?,
                    l.biases().to_vec(),
                ))
            })
            .collect()
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
            // An invalid FERRINET_NUM_THREADS does not stop a network from being built (one
            // thread until a count is set): the calls that take the default refuse it
            // (`use_default_threads`, the binding's constructor, a file that records none).
            threads: Threads(crate::team::default_threads().unwrap_or(1)),
            threads_set: false,
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

    /// Threads used for large batch products: the count set, else `default_threads()` (the
    /// CPUs this process may use, unless `FERRINET_NUM_THREADS` or `OMP_NUM_THREADS` say
    /// otherwise). For a fixed count, results are deterministic (the same bits on every run);
    /// a small network's batch is split by rows, so its sums, and their rounding, depend on
    /// the count.
    pub fn n_threads(&self) -> usize {
        self.threads.0
    }

    /// The count set with `set_n_threads`; None while the network follows the default.
    pub fn n_threads_setting(&self) -> Option<usize> {
        self.threads_set.then_some(self.threads.0)
    }

    /// At most `max_threads()` (256, and 4 per CPU this process may use); more is refused.
    pub fn set_n_threads(&mut self, n_threads: usize) -> Result<()> {
        crate::team::check_n_threads(n_threads)?;
        self.threads = Threads(n_threads);
        self.threads_set = true;
        Ok(())
    }

    /// Back to the default thread count (`default_threads()`); its error leaves the network
    /// as it was.
    pub fn use_default_threads(&mut self) -> Result<()> {
        self.threads = Threads(crate::team::default_threads()?);
        self.threads_set = false;
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

    /// Copies of (W, b) per layer.
    pub fn parameters(&self) -> Vec<(Vec<T>, Vec<T>)> {
        self.layers
            .iter()
            .map(|l| (l.weights().to_vec(), l.biases().to_vec()))
            .collect()
    }

    /// Replaces every layer's (W, b); all are checked before any is changed.
    pub fn set_parameters(&mut self, params: Vec<(Vec<T>, Vec<T>)>) -> Result<()> {
        self.set_parameters_until(params, &mut crate::chunks::never)
    }

    /// `set_parameters`, whose check that every value is finite reads `STOP_EVERY` values at
    /// a time with a call of `stop` before each chunk (`Error::Interrupted` when it answers
    /// true, the network unchanged). The checked vectors are moved in, not copied.
    pub fn set_parameters_until(
        &mut self,
        params: Vec<(Vec<T>, Vec<T>)>,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<()> {
        if params.len() != self.layers.len() {
            return value_error!(
                "expected {} (weights, biases) pairs, one per layer, got {}",
                self.layers.len(),
                params.len()
            );
        }
        for (l, (layer, (w, b))) in self.layers.iter().zip(&params).enumerate() {
            layer
                .check_parameters_until(w, b, stop)
                .map_err(|e| match e {
                    Error::Interrupted => e,
                    e => Error::Value(format!("layer {l}: {e}")),
                })?;
        }
        for (layer, (w, b)) in self.layers.iter_mut().zip(params) {
            layer.replace_checked(w, b);
        }
        Ok(())
    }

    /// The network's output for a batch (n, n_inputs) -> (n, n_outputs): every layer's
    /// `Layer::forward` in turn, `PREDICT_BLOCK` rows at a time (predict.rs).
    pub fn predict(&self, x: MatRef<T>) -> Result<Matrix<T>> {
        let mut scratch = PredictScratch::default();
        self.predict_with(x, &mut scratch)?;
        Ok(std::mem::take(&mut scratch.out))
    }

    /// The mean loss of a batch (no state changes).
    pub fn compute_loss(&self, batch: &Batch<T>) -> Result<f64> {
        self.regularized_loss(batch, 0.0)
    }

    /// The mean loss of a batch plus the L2 penalty (l2 / 2) * sum of squared weights: the
    /// blocked forward pass of `evaluate` (predict.rs), which keeps no whole output.
    pub fn regularized_loss(&self, batch: &Batch<T>, l2: f64) -> Result<f64> {
        check_l2(l2)?;
        Ok(self.evaluate_loss(batch)? + self.l2_penalty(l2))
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
        // The buffers the gradients were computed into are handed over (the binding turns
        // them into the arrays it returns without a copy); the workspace starts new ones.
        let fresh = (0..self.layers.len()).map(|_| LayerGradient::default());
        let grads = std::mem::replace(&mut self.work.grads, fresh.collect());
        Ok((loss, grads))
    }

    /// One SGD step on the batch's mean loss; returns the loss of the forward pass it did
    /// before the step (erratum 8: no second forward pass is needed to report it).
    /// A step that would make the loss or a weight non-finite is refused with
    /// `Error::NonFinite` and the weights stay as they were.
    ///
    /// One sample takes the fused per-sample step of `train` (the same bits as a one-sample
    /// `train`), in one pass over each layer's weights, when it is sure up front to stay
    /// finite (`Layer::prove_step`, from the size of the step and a bound on the parameters
    /// carried from step to step, with no look at the parameters); otherwise, and for batches,
    /// the gradient is computed, every updated value checked, and only then applied.
    pub fn backward(&mut self, batch: &Batch<T>, learning_rate: f64) -> Result<f64> {
        check_learning_rate(learning_rate)?;
        if batch.len() == 1 {
            self.check_batch(batch)?;
            if let Some(loss) = self.backward_sample(batch, learning_rate, false)? {
                return Ok(loss);
            }
        }
        let loss = self.backprop(batch, 0.0, None)?;
        apply_checked_step(&mut self.layers, &self.work.grads, loss, learning_rate)?;
        Ok(loss)
    }

    /// The SGD step W -= learning_rate * dW (and b) with gradients computed elsewhere (the
    /// binding's blocked gradient of a large batch, `gradient_rows`), checked as `backward`
    /// checks its own: refused with `Error::NonFinite`, nothing changed, when `loss` or an
    /// updated value is not finite. `grads` must have the network's shapes.
    pub fn apply_step(
        &mut self,
        grads: &[LayerGradient<T>],
        loss: f64,
        learning_rate: f64,
    ) -> Result<()> {
        check_learning_rate(learning_rate)?;
        let shapes_match = grads.len() == self.layers.len()
            && self.layers.iter().zip(grads).all(|(layer, g)| {
                g.weights.len() == layer.weights().len() && g.biases.len() == layer.biases().len()
            });
        if !shapes_match {
            return value_error!("the gradients do not have the network's shapes");
        }
        apply_checked_step(&mut self.layers, grads, loss, learning_rate)
    }

    /// `backward` on one sample as `train` steps it (`per_sample.rs`): forward, the loss's
    /// delta, every layer's delta from the weights before any update (the same operations as
    /// the dx of the fused kernel), then, once every layer's step is proven finite, each
    /// layer's fused update. Ok(None), with no parameter changed, when a step cannot be proven
    /// finite (or the loss is not): the caller takes the checked path.
    ///
    /// As `train`'s loop, the step is compiled once for AVX2+FMA and once for the baseline
    /// target, and the CPU picks one here, once per call (`kernels::per_cpu`); `baseline`
    /// takes the baseline copy on any CPU (tests).
    pub(crate) fn backward_sample(
        &mut self,
        batch: &Batch<T>,
        learning_rate: f64,
        baseline: bool,
    ) -> Result<Option<f64>> {
        self.size_sample_rows()?;
        let lr = T::from_f64(learning_rate);
        if !baseline && kernels::avx2_fma() {
            // SAFETY: the CPU has the features the copy was compiled for.
            #[cfg(target_arch = "x86_64")]
            return Ok(unsafe { self.backward_row_avx2(batch, lr) });
        }
        Ok(self.backward_row::<false>(batch, lr))
    }

    /// `backward_row` compiled for AVX2+FMA; callers check that the CPU has them.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn backward_row_avx2(&mut self, batch: &Batch<T>, lr: T) -> Option<f64> {
        self.backward_row::<true>(batch, lr)
    }

    /// `backward_sample`'s step with the kernels of `FMA`, in the rows `size_sample_rows`
    /// sized.
    #[inline(always)]
    fn backward_row<const FMA: bool>(&mut self, batch: &Batch<T>, lr: T) -> Option<f64> {
        let layers = &mut self.layers;
        let Workspace {
            z,
            a,
            delta,
            step_bounds,
            ..
        } = &mut self.work;
        let x = batch.x.row(0);
        forward_sample::<T, FMA>(layers, x, z, a, 0);
        let last = layers.len() - 1;
        let (z_out, a_out) = (z[last].as_slice(), a[last].as_slice());
        let loss = self.loss.value_sample(z_out, a_out, &batch.t, 0);
        if !loss.is_finite() {
            return None;
        }
        let out_act = layers[last].activation();
        let d_out = delta[last].as_mut_slice();
        self.loss
            .seed_sample(z_out, a_out, &batch.t, 0, out_act, d_out);
        for l in (1..layers.len()).rev() {
            let (below, here) = delta.split_at_mut(l);
            let dx = below[l - 1].as_mut_slice();
            dx.fill(T::ZERO);
            per_cpu::gemv_t_accumulate::<T, FMA>(layers[l].weights(), here[0].as_slice(), dx);
            let below_act = layers[l - 1].activation();
            below_act.scale_by_derivative(dx, z[l - 1].as_slice(), a[l - 1].as_slice());
        }
        let input = |l: usize| match l {
            0 => x,
            _ => a[l - 1].as_slice(),
        };
        for (l, layer) in layers.iter_mut().enumerate() {
            step_bounds[l] = layer.prove_step(input(l), delta[l].as_slice(), lr)?;
        }
        for (l, layer) in layers.iter_mut().enumerate() {
            let (d, bound) = (delta[l].as_slice(), step_bounds[l]);
            layer.sgd_sample_proven::<FMA>(input(l), d, lr, bound);
        }
        Some(loss.to_f64())
    }

    /// (l2 / 2) * sum of squared weights (biases excluded).
    pub fn l2_penalty(&self, l2: f64) -> f64 {
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
    ///
    /// With the first layer's weights live in panels (an epoch's, with its optimizer state:
    /// training.rs `transpose_first_state`; no L2, rows not split), its products read them
    /// and its weight gradient is written in the same panels, for the optimizer to step in
    /// place.
    pub(crate) fn backprop(
        &mut self,
        batch: &Batch<T>,
        l2: f64,
        dropout: Option<Dropout>,
    ) -> Result<f64> {
        self.check_batch(batch)?;
        let panels = self.work.first_t.live;
        assert!(
            !panels || (in_panels() && l2 == 0.0),
            "panels: no L2, and not W^T"
        );
        let penalty = self.l2_penalty(l2);
        let n = batch.len();
        let k = self.threads.0;
        let loss = if self.splits(n, dropout.is_some()) {
            assert!(!panels, "a split batch reads the layers' own weights");
            self.backprop_split(batch, k)?
        } else {
            let top = self.top_parts(n, dropout.is_some());
            let (layers, work, threads) = (&self.layers, &mut self.work, self.threads);
            let norm = Normalizer::of(batch);
            let rates = dropout.as_ref().map(|d| d.rates);
            let loss = forward_and_loss(
                layers,
                self.loss,
                batch,
                norm,
                work,
                threads,
                dropout,
                (top, panels),
            )?;
            let seeded = top > 1;
            backward_cached_from(
                layers, self.loss, batch, norm, work, rates, threads, panels, seeded,
            )?;
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

    /// One mini-batch step of plain SGD (no momentum, weight decay, L2 or clipping): the
    /// forward pass and loss of `backprop`, then each layer's `Layer::sgd_backward`, top down,
    /// which makes a large layer's update inside its weight-gradient product. Nothing is
    /// updated when the loss is not finite; the loss is returned either way. Only where the
    /// batch's rows are not split (`splits` false): a split batch sums its shares' gradients
    /// first.
    ///
    /// `deferred`: the step may leave the first layer's weights in their product layout for
    /// the next (`TransposedFirst`), where that pays; the caller then settles them after its
    /// last step. The panels round as their own kernel does, not as the GEMM on W, so a step
    /// that may not leave them (the guard's checked replay) takes them all the same and
    /// settles after itself: it gives the bits of the fast run it replays.
    pub(crate) fn sgd_batch(
        &mut self,
        batch: &Batch<T>,
        dropout: Option<Dropout>,
        learning_rate: f64,
        deferred: bool,
    ) -> Result<f64> {
        let layout = (deferred || in_panels()) && self.transposes_first(batch.len());
        let result = self.sgd_batch_in(batch, dropout, learning_rate, layout);
        if layout && !deferred {
            self.settle_first_layer();
        }
        result
    }

    /// `sgd_batch`, the first layer's products in their layout when `transposed`.
    fn sgd_batch_in(
        &mut self,
        batch: &Batch<T>,
        dropout: Option<Dropout>,
        learning_rate: f64,
        transposed: bool,
    ) -> Result<f64> {
        self.check_batch(batch)?;
        debug_assert!(!self.splits(batch.len(), dropout.is_some()));
        if transposed {
            self.transpose_first_layer();
        } else {
            self.settle_first_layer();
        }
        let top = self.top_parts(batch.len(), dropout.is_some());
        let (layers, work, threads) = (&mut self.layers, &mut self.work, self.threads);
        let norm = Normalizer::of(batch);
        let rates = dropout.as_ref().map(|d| d.rates);
        let loss = forward_and_loss(
            layers,
            self.loss,
            batch,
            norm,
            work,
            threads,
            dropout,
            (top, transposed),
        )?;
        if !loss.is_finite() {
            return Ok(loss.to_f64());
        }
        // Cut by rows (top_rows.rs), every delta is known: only the weights are left to step.
        let seeded = top > 1;
        if !seeded {
            seed_output_delta(layers, self.loss, batch, norm, work)?;
        }
        let lr = T::from_f64(learning_rate);
        for l in (0..layers.len()).rev() {
            let input = layer_input(batch.x, &work.a, &work.out, l, rates);
            let (below, here) = work.delta.split_at_mut(l);
            // None for the first layer (its dx is not needed), and when already made
            let dx = below.last_mut().filter(|_| !seeded);
            let has_dx = dx.is_some();
            let grad = &mut work.grads[l];
            if l == 0 && transposed {
                let wt = work.first_t.wt_mut();
                layers[0].sgd_backward_transposed(wt, input, here[0].view(), grad, lr, threads)?;
                continue; // the first layer: no dx
            }
            layers[l].sgd_backward(input, here[0].view(), grad, dx, lr, threads)?;
            if has_dx {
                delta_below(layers, work, l, rates);
            }
        }
        Ok(loss.to_f64())
    }

    /// Whether a step on n rows keeps the first layer's weights in the layout its products
    /// read (`TransposedFirst`), where its forward and weight products are GEMMs: as panels
    /// where the CPU has AVX2 and FMA (panels.rs), on any number of threads (each takes whole
    /// panels); elsewhere, in float32 and for a fused step only, as W^T on one thread: split
    /// between threads, the transposed products measured slower (784-128-10 float32, batch
    /// 256, 2 threads: 1.38x one thread's speed against ~1.65x with W as it is).
    pub(crate) fn transposes_first(&self, n: usize) -> bool {
        let first = &self.layers[0];
        let (n_in, n_out) = (first.n_inputs(), first.n_outputs());
        let gemm = kernels::forward_is_gemm(n, n_in, n_out)
            && kernels::weight_grad_is_gemm(n, n_in, n_out);
        if in_panels() {
            return gemm;
        }
        std::mem::size_of::<T>() == 4
            && gemm
            && !kernels::splits_product(n, n_in, n_out, self.threads)
    }

    /// Makes the first layer's weights in their product layout (panels, or W^T without AVX2)
    /// the live copy, unless they are.
    pub(crate) fn transpose_first_layer(&mut self) {
        let t = &mut self.work.first_t;
        if !t.live {
            let first = &self.layers[0];
            let (n_in, n_out) = (first.n_inputs(), first.n_outputs());
            if in_panels() {
                t.size(panels::panels_len::<T>(n_out, n_in));
                panels::pack(first.weights(), n_out, n_in, t.wt_mut());
            } else {
                t.size(n_in * n_out);
                let wt = t.wt_mut();
                for (i, row) in first.weights().chunks_exact(n_in).enumerate() {
                    for (j, &w) in row.iter().enumerate() {
                        wt[j * n_out + i] = w;
                    }
                }
            }
            t.live = true;
        }
    }

    /// Puts the first layer's weights back from their product layout when a fused-SGD epoch
    /// left them there (`TransposedFirst`); nothing otherwise.
    pub(crate) fn settle_first_layer(&mut self) {
        let t = &mut self.work.first_t;
        assert!(
            !t.state_live,
            "the first layer's optimizer state is settled with it"
        );
        if t.live {
            let first = &mut self.layers[0];
            let (n_in, n_out) = (first.n_inputs(), first.n_outputs());
            let (w, _) = first.parameters_mut();
            if in_panels() {
                panels::unpack(t.wt(), n_out, n_in, w);
            } else {
                for (i, row) in w.chunks_exact_mut(n_in).enumerate() {
                    for (j, w) in row.iter_mut().enumerate() {
                        *w = t.wt()[j * n_out + i];
                    }
                }
            }
            t.live = false;
        }
    }
}

/// Whether an epoch keeps the first layer's weights in panels (where the CPU has
/// AVX2 and FMA, either float type) rather than as W^T (float32 elsewhere): see
/// `TransposedFirst`.
pub(crate) fn in_panels() -> bool {
    panels::available()
}

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
pub(crate) fn backward_cached<T: Real>(
    layers: &[Layer<T>],
    loss: Loss,
    batch: &Batch<T>,
    norm: Normalizer<T>,
    work: &mut Workspace<T>,
    rates: Option<&[f64]>,
    threads: Threads,
) -> Result<()> {
    backward_cached_from(
        layers, loss, batch, norm, work, rates, threads, false, false,
    )
}

/// `backward_cached`, the first layer's weight gradient into panels when `panels`
/// (`Layer::backward_panels`); when `seeded`, every layer's delta is already made
/// (`top_rows`): only the weight gradients are left.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_cached_from<T: Real>(
    layers: &[Layer<T>],
    loss: Loss,
    batch: &Batch<T>,
    norm: Normalizer<T>,
    work: &mut Workspace<T>,
    rates: Option<&[f64]>,
    threads: Threads,
    panels: bool,
    seeded: bool,
) -> Result<()> {
    if !seeded {
        seed_output_delta(layers, loss, batch, norm, work)?;
    }
    for l in (0..layers.len()).rev() {
        let input = layer_input(batch.x, &work.a, &work.out, l, rates);
        let (below, here) = work.delta.split_at_mut(l);
        if l == 0 && panels {
            layers[0].backward_panels(input, here[0].view(), &mut work.grads[0], threads)?;
            continue; // the first layer: no dx
        }
        // None for the first layer (its dx is not needed), and when already made
        let dx = below.last_mut().filter(|_| !seeded);
        let has_dx = dx.is_some();
        layers[l].backward(input, here[0].view(), &mut work.grads[l], dx, threads)?;
        if has_dx {
            delta_below(layers, work, l, rates);
        }
    }
    Ok(())
}

/// The output layer's delta = dL/dz of the batch's mean loss (normalised by `norm`), from the
/// last forward pass, into `work.delta[last]`: where the chain rule starts.
pub(crate) fn seed_output_delta<T: Real>(
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
pub(crate) fn delta_below<T: Real>(
    layers: &[Layer<T>],
    work: &mut Workspace<T>,
    l: usize,
    rates: Option<&[f64]>,
) {
    let below_act = layers[l - 1].activation();
    let (z, a, d) = (&work.z[l - 1], &work.a[l - 1], &mut work.delta[l - 1]);
    if rates.is_some_and(|r| r[l - 1] > 0.0) {
        let mask = &work.mask[l - 1];
        for (dv, &m) in d.as_mut_slice().iter_mut().zip(mask) {
            *dv = if m != T::ZERO { *dv * m } else { T::ZERO };
        }
    }
    below_act.scale_by_derivative(d.as_mut_slice(), z.as_slice(), a.as_slice());
}

/// The input of layer l in the last forward pass: x, the activation below, or the activation
/// below after its dropout.
pub(crate) fn layer_input<'w, T: Real>(
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

/// One sample's forward pass through layers `from..` into the rows of `z` and `a` (sized by
/// `size_sample_rows`), x the input of layer 0 and each layer's a the next one's: the per-sample
/// steps' pass, with the kernels of `FMA` (`kernels::per_cpu`).
#[inline(always)]
pub(crate) fn forward_sample<T: Real, const FMA: bool>(
    layers: &[Layer<T>],
    x: &[T],
    z: &mut [Matrix<T>],
    a: &mut [Matrix<T>],
    from: usize,
) {
    for l in from..layers.len() {
        let (a_below, a_here) = a.split_at_mut(l);
        let input = match l {
            0 => x,
            _ => a_below[l - 1].as_slice(),
        };
        layers[l].forward_row::<FMA>(input, z[l].as_mut_slice(), a_here[0].as_mut_slice());
    }
}

/// Forward through every layer, keeping z and a of each (and, with dropout, the masks and the
/// dropped activations that the next layer reads). Masks are drawn layer by layer, row-major.
pub(crate) fn forward_cached<T: Real>(
    layers: &[Layer<T>],
    x: MatRef<T>,
    work: &mut Workspace<T>,
    threads: Threads,
    dropout: Option<Dropout>,
) -> Result<()> {
    forward_layers(layers, x, work, threads, dropout, false, layers.len())
}

/// A step's forward pass and the batch's loss (`Loss::value`, the same bits either way): on
/// the whole batch layer by layer, or, with `top` blocks (`NeuralNetwork::top_parts` > 1), the
/// first layer on the whole batch and the layers above it by blocks of rows, the deltas with
/// them (top_rows.rs).
#[allow(clippy::too_many_arguments)]
fn forward_and_loss<T: Real>(
    layers: &[Layer<T>],
    loss: Loss,
    batch: &Batch<T>,
    norm: Normalizer<T>,
    work: &mut Workspace<T>,
    threads: Threads,
    dropout: Option<Dropout>,
    (top, transposed): (usize, bool),
) -> Result<T> {
    let count = if top > 1 { 1 } else { layers.len() };
    forward_layers(layers, batch.x, work, threads, dropout, transposed, count)?;
    if top > 1 {
        return top_rows(layers, loss, batch, norm, work, top);
    }
    let last = layers.len() - 1;
    let (z_out, a_out) = (work.z[last].view(), work.a[last].view());
    Ok(loss.value(z_out, a_out, &batch.t, batch.weights))
}

/// `forward_cached` through the first `count` layers, the first layer's product from its
/// weights in their product layout in `work.first_t` when `transposed` (`TransposedFirst`).
fn forward_layers<T: Real>(
    layers: &[Layer<T>],
    x: MatRef<T>,
    work: &mut Workspace<T>,
    threads: Threads,
    mut dropout: Option<Dropout>,
    transposed: bool,
    count: usize,
) -> Result<()> {
    let rates = dropout.as_ref().map(|d| d.rates);
    for (l, layer) in layers.iter().enumerate().take(count) {
        let (a_below, a_here) = work.a.split_at_mut(l);
        let input = layer_input(x, a_below, &work.out, l, rates);
        if l == 0 && transposed {
            let wt = work.first_t.wt();
            layer.forward_transposed(wt, input, &mut work.z[0], &mut a_here[0], threads)?;
        } else {
            layer.forward(input, &mut work.z[l], &mut a_here[0], threads)?;
        }
        apply_dropout(work, l, rates, dropout.as_mut())?;
    }
    Ok(())
}

/// Dropout of layer l after its forward pass, when its rate p is above 0: a mask drawn from
/// the generator row-major (kept with probability 1 - p, then scaled by 1/(1-p), the inverted
/// dropout of docs/maths.md) and the dropped activations that the layer above reads.
pub(crate) fn apply_dropout<T: Real>(
    work: &mut Workspace<T>,
    l: usize,
    rates: Option<&[f64]>,
    dropout: Option<&mut Dropout>,
) -> Result<()> {
    let p = rates.map_or(0.0, |r| r[l]);
    if p > 0.0 {
        let d = dropout.expect("rates come from dropout");
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
    Ok(())
}

/// `backward`'s update: refused (nothing changed) when the loss or any updated parameter is
/// not finite, which a read-only pass over every layer finds before the first is written.
fn apply_checked_step<T: Real>(
    layers: &mut [Layer<T>],
    grads: &[LayerGradient<T>],
    loss: f64,
    learning_rate: f64,
) -> Result<()> {
    if !loss.is_finite() {
        return Err(Error::NonFinite(format!(
            "the loss is {loss}; the step was not applied"
        )));
    }
    let lr = T::from_f64(learning_rate);
    let stays_finite = |p: &[T], g: &[T]| {
        p.iter()
            .zip(g)
            .fold(true, |ok, (&w, &g)| ok & (w - lr * g).is_finite())
    };
    let finite = layers.iter().zip(grads).all(|(layer, grad)| {
        stays_finite(layer.weights(), &grad.weights) && stays_finite(layer.biases(), &grad.biases)
    });
    if !finite {
        return Err(Error::NonFinite(format!(
            "the update would make a weight non-finite (loss {loss}); the step was not applied"
        )));
    }
    for (layer, grad) in layers.iter_mut().zip(grads) {
        layer.apply_gradient(grad, lr);
    }
    Ok(())
}
