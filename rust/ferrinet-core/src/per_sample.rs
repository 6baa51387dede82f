//! Per-sample training, the article's loop (`train`, `train_steps*`): one fused SGD step per
//! sample (`sgd_sample`), whose first layer takes its update in one of three ways
//! (`FirstLayer`): now, deferred into the next sample's forward pass, or within a block of
//! samples (`sgd_block`, for a first layer too large for the fastest caches).

pub(crate) mod sgd_block;

use std::cell::Cell;

use crate::batch::{check_learning_rate, Batch};
use crate::error::{value_error, Error, Result};
use crate::float::Real;
use crate::network::{forward_cached, NeuralNetwork};
use sgd_block::{BLOCK_MIN_WEIGHTS, TRAIN_BLOCK};

/// Where `train_steps` is within its epochs: the next sample, the running sum of this epoch's
/// losses, and the mean loss of every completed epoch.
#[derive(Debug, Clone, Default)]
pub struct TrainProgress {
    pub next_sample: usize,
    pub epoch_total: f64,
    pub epoch_losses: Vec<f64>,
}

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

impl<T: Real> NeuralNetwork<T> {
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
        // sample k: its row of x, and its targets read at k (no `Batch::rows_range`, whose
        // targets and weights cost more than a narrow step's arithmetic)
        let x_k = batch.x.rows_range(k, k + 1);
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
                    let x = x_k.row(0);
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
            forward_cached(layers, x_k, work, self.threads, None)?;
        }
        let last = layers.len() - 1;
        let (z_out, a_out) = (work.z[last].view(), work.a[last].view());
        let (z_out, a_out) = (z_out.row(0), a_out.row(0));
        let loss = self.loss.value_sample(z_out, a_out, &batch.t, k);
        if !loss.is_finite() {
            return Err(Error::NonFinite(format!("the loss is {loss}")));
        }
        work.delta[last].resize(1, layers[last].n_outputs())?;
        let out_act = layers[last].activation();
        let d_out = work.delta[last].row_mut(0);
        self.loss
            .seed_sample(z_out, a_out, &batch.t, k, out_act, d_out);
        for l in (0..layers.len()).rev() {
            let (below, here) = work.delta.split_at_mut(l);
            if l == 0 {
                match first {
                    FirstLayer::Deferred(pending) => pending.set(Some(k)),
                    FirstLayer::Blocked => work.block.record(&mut layers[0], here[0].row(0), lr),
                    FirstLayer::Now => layers[0].sgd_sample(x_k.row(0), here[0].row(0), lr, None),
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
            below_act.scale_by_derivative(dx.as_mut_slice(), z, a);
        }
        Ok(loss.to_f64())
    }
}
