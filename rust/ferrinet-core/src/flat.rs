//! Every parameter as one flat vector, and the full-batch loss with its gradient in that
//! layout: what a general-purpose optimizer (scipy's L-BFGS-B, ferrinet.sklearn's lbfgs)
//! drives a network through.
//!
//! The layout is scikit-learn's (`sklearn.neural_network._multilayer_perceptron._pack`):
//! every layer's `coefs_[l]` of shape (n_in, n_out), raveled in C order, layer after layer,
//! then every layer's intercepts. ferrinet keeps W as (n_out, n_in), so a layer's coefs part is
//! W transposed: theta[off_l + i * n_out + j] = W_l[j, i].
//!
//! The gradient is computed `GRAD_BLOCK` rows at a time: each block runs forward and backward
//! on one thread (its delta normalised by the whole batch's n or sum of weights, so each row's
//! delta is the one a whole-batch pass gives it), and the blocks' gradients are added into the
//! total in block order, a left fold. With k threads, k consecutive blocks are computed at
//! once, then folded in order: the result is the same bits for any thread count and for any
//! cut of the rows into calls at multiples of `GRAD_BLOCK`, and memory stays at k + 1
//! gradients plus one block's activations per thread, whatever the number of rows. The loss
//! is reduced block by block exactly as `evaluate` does (the same blocks), so it is
//! `regularized_loss`'s value bit for bit.

use crate::batch::{check_l2, Batch};
use crate::chunks::STOP_EVERY;
use crate::error::{value_error, Error, Result};
use crate::float::{first_non_finite, Real};
use crate::kernels::{self, Threads};
use crate::layer::LayerGradient;
use crate::matrix::try_resize;
use crate::network::{backward_cached, forward_cached, NeuralNetwork, Normalizer, Workspace};
use crate::predict::PREDICT_BLOCK;
use crate::team::map_parts;

/// Rows per block of the flat gradient: `predict`'s blocks, so that the loss reduced block by
/// block is `evaluate`'s, and a block's activations stay in cache between its passes.
pub const GRAD_BLOCK: usize = PREDICT_BLOCK;

/// Values per chunk of the transposing copies between W and the flat layout: a quarter of
/// `STOP_EVERY`, as their scattered writes take several times longer per value than a copy.
const TRANSPOSE_EVERY: usize = STOP_EVERY / 4;

/// The running state of a flat gradient over consecutive ranges of rows
/// (`NeuralNetwork::gradient_rows`): the gradient of the blocks seen so far, in the network's
/// (n_out, n_in) layout, their loss sums, and the per-thread workspaces reused between calls.
#[derive(Debug)]
pub struct GradientSums<T = f64> {
    total: Vec<LayerGradient<T>>,
    started: bool,
    loss: (T, T),
    rows: usize,
    works: Vec<Workspace<T>>,
}

impl<T: Real> Default for GradientSums<T> {
    fn default() -> Self {
        GradientSums {
            total: Vec::new(),
            started: false,
            loss: (T::ZERO, T::ZERO),
            rows: 0,
            works: Vec::new(),
        }
    }
}

impl<T: Real> NeuralNetwork<T> {
    /// Every parameter in scikit-learn's packing (module doc): all layers' W transposed and
    /// raveled, then all biases. Its length is `n_parameters()`.
    pub fn flat_parameters(&self) -> Vec<T> {
        self.flat_parameters_until(&mut crate::chunks::never)
            .expect("a pass that is never stopped, into memory the network's size")
    }

    /// `flat_parameters`, packed about `TRANSPOSE_EVERY` values at a time (whole rows of W) with a
    /// call of `stop` before each chunk (`Error::Interrupted` when it answers true).
    pub fn flat_parameters_until(&self, stop: &mut dyn FnMut() -> bool) -> Result<Vec<T>> {
        let mut theta = vec![T::ZERO; self.n_parameters()];
        let mut at = 0;
        for layer in &self.layers {
            let (n_in, n_out) = (layer.n_inputs(), layer.n_outputs());
            let dst = &mut theta[at..at + n_in * n_out];
            // W's rows r0..r1 are columns r0..r1 of theta's (n_in, n_out) part
            let rows_per = (TRANSPOSE_EVERY / n_in.max(1)).max(1);
            let mut r0 = 0;
            while r0 < n_out {
                if stop() {
                    return Err(Error::Interrupted);
                }
                let r1 = (r0 + rows_per).min(n_out);
                let src = &layer.weights()[r0 * n_in..r1 * n_in];
                for (r, src_row) in src.chunks_exact(n_in.max(1)).enumerate() {
                    for (c, &v) in src_row.iter().enumerate() {
                        dst[c * n_out + r0 + r] = v;
                    }
                }
                r0 = r1;
            }
            at += n_in * n_out;
        }
        for layer in &self.layers {
            theta[at..at + layer.n_outputs()].copy_from_slice(layer.biases());
            at += layer.n_outputs();
        }
        Ok(theta)
    }

    /// Replaces every parameter from a vector in `flat_parameters`' layout: `n_parameters()`
    /// finite values. Everything is checked before anything changes.
    pub fn set_flat_parameters(&mut self, theta: &[T]) -> Result<()> {
        self.set_flat_parameters_until(theta, &mut crate::chunks::never)
    }

    /// `set_flat_parameters`, checking `STOP_EVERY` and unpacking `TRANSPOSE_EVERY` values at a time with
    /// a call of `stop` before each chunk (`Error::Interrupted` when it answers true, the
    /// network unchanged).
    pub fn set_flat_parameters_until(
        &mut self,
        theta: &[T],
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<()> {
        if theta.len() != self.n_parameters() {
            return value_error!(
                "expected {} values (n_parameters, scikit-learn's packing of coefs_ then \
                 intercepts_), got {}",
                self.n_parameters(),
                theta.len()
            );
        }
        for (c, chunk) in theta.chunks(STOP_EVERY).enumerate() {
            if stop() {
                return Err(Error::Interrupted);
            }
            if let Some(i) = first_non_finite(chunk) {
                let i = c * STOP_EVERY + i;
                return value_error!("parameters must be finite, got {} at index {i}", theta[i]);
            }
        }
        let n_coefs: usize = self.layers.iter().map(|l| l.weights().len()).sum();
        let (mut at, mut bias_at) = (0, n_coefs);
        let mut params = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let (n_in, n_out) = (layer.n_inputs(), layer.n_outputs());
            let mut w = Vec::new();
            try_resize(&mut w, n_in * n_out)?;
            // theta's part is (n_in, n_out) row-major, W its transpose: theta's rows i0..i1
            // are W's columns i0..i1
            let part = &theta[at..at + n_in * n_out];
            let rows_per = (TRANSPOSE_EVERY / n_out.max(1)).max(1);
            let mut i0 = 0;
            while i0 < n_in {
                if stop() {
                    return Err(Error::Interrupted);
                }
                let i1 = (i0 + rows_per).min(n_in);
                for (i, row) in part[i0 * n_out..i1 * n_out].chunks_exact(n_out).enumerate() {
                    for (j, &v) in row.iter().enumerate() {
                        w[j * n_in + i0 + i] = v;
                    }
                }
                i0 = i1;
            }
            params.push((w, theta[bias_at..bias_at + n_out].to_vec()));
            at += n_in * n_out;
            bias_at += n_out;
        }
        self.set_parameters_until(params, stop)
    }

    /// The mean loss of the batch plus (l2 / 2) * sum of squared weights, and its gradient
    /// with respect to every parameter written into `grad` in `flat_parameters`' layout:
    /// `gradient_rows` over all rows, then `finish_flat_gradient`. No state changes.
    pub fn loss_and_flat_gradient(&self, batch: &Batch<T>, l2: f64, grad: &mut [T]) -> Result<f64> {
        check_l2(l2)?;
        self.check_flat_len(grad.len(), "grad")?;
        let mut sums = GradientSums::default();
        self.gradient_rows(batch, 0, batch.len(), &mut sums, None)?;
        self.finish_flat_gradient(&mut sums, batch, l2, grad)
    }

    /// Adds rows `start..end` of the batch (`start` a multiple of `GRAD_BLOCK`) to a running
    /// flat gradient (module doc: blocks of rows, k at a time across the threads, folded in
    /// block order). With `outputs`, each row's network output is written there as well
    /// ((end - start) x n_outputs, row-major): the same values `predict` gives. The inputs of
    /// an `epoch_batch` are checked block by block, as `evaluate` does.
    pub fn gradient_rows(
        &self,
        batch: &Batch<T>,
        start: usize,
        end: usize,
        sums: &mut GradientSums<T>,
        mut outputs: Option<&mut [T]>,
    ) -> Result<()> {
        self.check_signature(batch)?;
        let x = batch.x;
        if start % GRAD_BLOCK != 0 || start >= end || end > x.rows() {
            return value_error!(
                "rows {start}..{end} of {}: expected a non-empty range starting at a multiple \
                 of {GRAD_BLOCK}",
                x.rows()
            );
        }
        let m = self.n_outputs();
        if let Some(out) = outputs.as_deref() {
            if out.len() != (end - start) * m {
                return value_error!(
                    "outputs has {} values for {} rows of {m} outputs",
                    out.len(),
                    end - start
                );
            }
        }
        let n_blocks = (end - start).div_ceil(GRAD_BLOCK);
        let k = self.threads.0.min(n_blocks).max(1);
        if sums.works.len() < k {
            sums.works
                .resize_with(k, || Workspace::for_layers(self.layers.len()));
        }
        let norm = Normalizer::of(batch);
        let bounds = |b: usize| {
            let row = start + b * GRAD_BLOCK;
            (row, (row + GRAD_BLOCK).min(end))
        };
        let mut first = 0;
        while first < n_blocks {
            let wave = k.min(n_blocks - first);
            let mut parts = vec![(T::ZERO, T::ZERO); wave];
            let works = &mut sums.works[..wave];
            let result = if wave == 1 {
                self.block_gradient(batch, bounds(first), norm, &mut works[0])
                    .map(|p| parts[0] = p)
            } else {
                let items = works.iter_mut().zip(parts.iter_mut()).enumerate().collect();
                map_parts(items, |(i, (work, part))| {
                    *part = self.block_gradient(batch, bounds(first + i), norm, work)?;
                    Ok(())
                })
                .into_iter()
                .collect()
            };
            if let Err(e) = result {
                // Threads may stop at a later bad block first: report the first bad value.
                if batch.x_unchecked {
                    self.check_rows(x, start, end)?;
                }
                return Err(e);
            }
            let rows = (bounds(first).0, bounds(first + wave - 1).1);
            let out = outputs
                .as_deref_mut()
                .map(|o| &mut o[(rows.0 - start) * m..(rows.1 - start) * m]);
            self.fold_wave(sums, &parts, out);
            first += wave;
        }
        sums.rows += end - start;
        Ok(())
    }

    /// Folds the gradients and loss sums of a wave of consecutive blocks (in `sums.works`, in
    /// block order) into the running total, and copies their outputs into `out` (the wave's
    /// rows) when given.
    fn fold_wave(&self, sums: &mut GradientSums<T>, parts: &[(T, T)], mut out: Option<&mut [T]>) {
        let last = self.layers.len() - 1;
        let mut at = 0;
        for (work, part) in sums.works[..parts.len()].iter_mut().zip(parts) {
            sums.loss.0 += part.0;
            sums.loss.1 += part.1;
            if let Some(out) = out.as_deref_mut() {
                let a = work.a[last].as_slice();
                out[at..at + a.len()].copy_from_slice(a);
                at += a.len();
            }
            if !sums.started {
                // The first block's gradient becomes the total (its buffers are swapped in,
                // not copied; the workspace gets empty ones, one per layer).
                sums.total.clear();
                sums.total
                    .resize_with(work.grads.len(), LayerGradient::default);
                std::mem::swap(&mut sums.total, &mut work.grads);
                sums.started = true;
            } else {
                add_gradients(&mut sums.total, &work.grads, self.threads);
            }
        }
    }

    /// The loss (plus the L2 penalty) from the running sums of every row of `batch`, and the
    /// gradient (plus l2 W) packed into `grad` in `flat_parameters`' layout.
    pub fn finish_flat_gradient(
        &self,
        sums: &mut GradientSums<T>,
        batch: &Batch<T>,
        l2: f64,
        grad: &mut [T],
    ) -> Result<f64> {
        self.check_flat_len(grad.len(), "grad")?;
        let loss = self.finish_sums(sums, batch, l2)?;
        let mut at = 0;
        for (layer, g) in self.layers.iter().zip(sums.total.iter_mut()) {
            let (n_in, n_out) = (layer.n_inputs(), layer.n_outputs());
            pack_transposed(&g.weights, n_out, n_in, &mut grad[at..at + n_in * n_out]);
            at += n_in * n_out;
        }
        for g in &sums.total {
            grad[at..at + g.biases.len()].copy_from_slice(&g.biases);
            at += g.biases.len();
        }
        Ok(loss)
    }

    /// `finish_flat_gradient` in `gradients`' layout: the loss (plus the L2 penalty) and every
    /// layer's (dW + l2 W, db), the buffers of the running sums handed over. The same values
    /// as the flat gradient, bit for bit; for a batch of one block also `gradients`' own on
    /// one thread (a larger batch is summed block by block, which rounds differently from one
    /// product over all its rows).
    pub fn finish_gradients(
        &self,
        sums: &mut GradientSums<T>,
        batch: &Batch<T>,
        l2: f64,
    ) -> Result<(f64, Vec<LayerGradient<T>>)> {
        let loss = self.finish_sums(sums, batch, l2)?;
        sums.started = false;
        Ok((loss, std::mem::take(&mut sums.total)))
    }

    /// Checks that the sums hold every row of `batch`, adds l2 W to their dW (as
    /// `regularized_gradients` does) and returns the loss plus the L2 penalty.
    fn finish_sums(&self, sums: &mut GradientSums<T>, batch: &Batch<T>, l2: f64) -> Result<f64> {
        check_l2(l2)?;
        if !sums.started || sums.rows != batch.len() {
            return value_error!(
                "the running gradient holds {} of the batch's {} rows",
                sums.rows,
                batch.len()
            );
        }
        let value = self.loss.finish_value(
            sums.loss,
            batch.weights.is_some(),
            sums.rows,
            self.n_outputs(),
        );
        if l2 != 0.0 {
            let l2t = T::from_f64(l2);
            for (layer, g) in self.layers.iter().zip(sums.total.iter_mut()) {
                // dW += l2 W, as `regularized_gradients` adds it
                for (gv, &w) in g.weights.iter_mut().zip(layer.weights()) {
                    *gv += l2t * w;
                }
            }
        }
        Ok(value.to_f64() + self.l2_penalty(l2))
    }

    /// One block's forward and backward on one thread, its gradient left in `work.grads` and
    /// its output in `work.a[last]`; returns its loss sums (`Loss::block_sums`).
    fn block_gradient(
        &self,
        batch: &Batch<T>,
        (row, stop): (usize, usize),
        norm: Normalizer<T>,
        work: &mut Workspace<T>,
    ) -> Result<(T, T)> {
        if batch.x_unchecked {
            self.check_rows(batch.x, row, stop)?;
        }
        let part = batch.rows_range(row, stop);
        forward_cached(&self.layers, part.x, work, Threads(1), None)?;
        let last = self.layers.len() - 1;
        let (z, a) = (work.z[last].view(), work.a[last].view());
        let sums = self.loss.block_sums(z, a, &part.t, part.weights);
        backward_cached(&self.layers, self.loss, &part, norm, work, None, Threads(1))?;
        Ok(sums)
    }

    fn check_flat_len(&self, len: usize, what: &str) -> Result<()> {
        if len != self.n_parameters() {
            return value_error!(
                "{what} must hold n_parameters = {} values, got {len}",
                self.n_parameters()
            );
        }
        Ok(())
    }
}

/// `dst` (cols x rows, row-major) = the transpose of `src` (rows x cols, row-major).
fn pack_transposed<T: Copy>(src: &[T], rows: usize, cols: usize, dst: &mut [T]) {
    for (r, src_row) in src.chunks_exact(cols.max(1)).take(rows).enumerate() {
        for (c, &v) in src_row.iter().enumerate() {
            dst[c * rows + r] = v;
        }
    }
}

/// total += part, layer by layer, element by element (the same bits however the elements are
/// shared out: each is one addition); a large layer's weights are cut between the threads.
fn add_gradients<T: Real>(
    total: &mut [LayerGradient<T>],
    part: &[LayerGradient<T>],
    threads: Threads,
) {
    const PER_THREAD: usize = 1 << 15;
    for (t, p) in total.iter_mut().zip(part) {
        let k = threads.0;
        if k > 1 && t.weights.len() >= 2 * PER_THREAD {
            let chunk = t.weights.len().div_ceil(k);
            let pairs = t
                .weights
                .chunks_mut(chunk)
                .zip(p.weights.chunks(chunk))
                .collect();
            map_parts(pairs, |(a, b): (&mut [T], &[T])| kernels::add_assign(a, b));
        } else {
            kernels::add_assign(&mut t.weights, &p.weights);
        }
        kernels::add_assign(&mut t.biases, &p.biases);
    }
}
