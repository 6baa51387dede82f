//! Sparse inputs: a batch x given in CSR form (compressed sparse rows: `indptr`, `indices`,
//! `data`, as scipy.sparse keeps them), read without ever making it dense.
//!
//! Only the first layer sees x, so only its two products change:
//! ```text
//! forward      z[k, i]  = sum over the nonzeros (j, v) of row k of  W[i, j] v   (then + b[i], f)
//! weight grad  dW[i, j] = sum over rows k of delta[k, i] x[k, j]   (only the nonzeros of x add)
//! ```
//! Both go neuron by neuron: neuron i's weight row (n_inputs values) stays in cache while the
//! batch's nonzeros are read against it. With several threads each takes a contiguous block of
//! neurons (its z columns and dW rows), so each value has one summation order for any thread
//! count: the same bits with 1 or 8 threads. Sums run over a row's nonzeros in column order
//! (forward) and over rows in batch order (weight gradient); the dense path sums the same
//! products in the GEMM's order, so the two agree to rounding (tests/test_sparse.py).
//! Everything above the first layer is the dense code, unchanged.
//!
//! Training with SGD or Adam never holds the first layer's dW whole (n_out x n_in values, often
//! the largest buffer after the weights and the optimizer state): each neuron's row of it is
//! computed into a scratch row and applied by the optimizer at once (`apply_fused_update`,
//! `Optimizer::step_rows`), which are the same operations on the same values as computing dW and
//! then applying it, so the same bits. Gradient clipping needs the norm of all of dW before any
//! update, so with `clip_norm` (and for the snapshot guard's optimizers) dW is held whole.

use crate::activation::Activation;
use crate::batch::Batch;
use crate::error::{value_error, Error, Result};
use crate::float::Real;
use crate::guard::diverged_at;
use crate::kernels::Threads;
use crate::layer::{Layer, LayerGradient};
use crate::loss::Targets;
use crate::matrix::{try_resize, MatRef, Matrix};
use crate::network::{
    apply_dropout, delta_below, layer_input, seed_output_delta, Dropout, NeuralNetwork, Normalizer,
    Workspace,
};
use crate::predict::PREDICT_BLOCK;
use crate::step_bound::{max_abs, Bound};
use crate::team::{for_each_part, map_parts, Disjoint};
use crate::training::{
    Accuracy, EpochFrame, EpochGuard, EpochMetrics, EpochOptions, TrainingState,
};

/// Products smaller than this many multiply-adds stay on one thread.
const PARALLEL_ABOVE: usize = 1 << 19;

/// A read-only CSR view of a (rows, cols) matrix, checked once by `CsrRef::new`: row k's
/// nonzeros are `data[indptr[k]..indptr[k + 1]]` at columns `indices[..]` (same range),
/// strictly increasing in each row. Column indices are i32 (scipy's default, and half the
/// memory of i64); row pointers i64 (more than 2^31 nonzeros fit).
#[derive(Debug, Clone, Copy)]
pub struct CsrRef<'a, T = f64> {
    rows: usize,
    cols: usize,
    indptr: &'a [i64],
    indices: &'a [i32],
    data: &'a [T],
}

impl<'a, T: Real> CsrRef<'a, T> {
    /// Checks everything the kernels rely on, so that they index without bounds surprises:
    /// `indptr` has rows + 1 entries, starts at 0, never decreases and ends at the number of
    /// nonzeros; `indices` and `data` have that many entries; each row's column indices are
    /// in [0, cols) and strictly increasing (sorted, no duplicates: scipy's canonical form);
    /// every value is finite. Errors name the row (and column) at fault.
    pub fn new(
        (rows, cols): (usize, usize),
        indptr: &'a [i64],
        indices: &'a [i32],
        data: &'a [T],
    ) -> Result<Self> {
        if cols > i32::MAX as usize {
            return value_error!(
                "a sparse matrix with {cols} columns: at most {} columns are supported",
                i32::MAX
            );
        }
        if indptr.len() != rows.wrapping_add(1) {
            return value_error!(
                "a sparse matrix of {rows} rows needs indptr of {} entries, got {}",
                rows as u128 + 1,
                indptr.len()
            );
        }
        if indices.len() != data.len() {
            return value_error!(
                "sparse indices and data must have one entry per nonzero: got {} indices and \
                 {} values",
                indices.len(),
                data.len()
            );
        }
        if indptr[0] != 0 {
            return value_error!("sparse indptr must start at 0, got {}", indptr[0]);
        }
        let nnz = data.len();
        if indptr[rows] < 0 || indptr[rows] as u64 != nnz as u64 {
            return value_error!(
                "sparse indptr must end at the number of nonzeros ({nnz}), got {}",
                indptr[rows]
            );
        }
        for k in 0..rows {
            let (start, end) = (indptr[k], indptr[k + 1]);
            if end < start {
                return value_error!(
                    "sparse indptr must not decrease: indptr[{k}] = {start}, indptr[{}] = {end}",
                    k + 1
                );
            }
            if end > nnz as i64 {
                return value_error!(
                    "sparse indptr[{}] = {end} is beyond the {nnz} nonzeros",
                    k + 1
                );
            }
            check_row(
                k,
                &indices[start as usize..end as usize],
                &data[start as usize..end as usize],
                cols,
            )?;
        }
        Ok(CsrRef {
            rows,
            cols,
            indptr,
            indices,
            data,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn nnz(&self) -> usize {
        self.data.len()
    }

    /// Row k's (column indices, values).
    #[inline]
    fn row(&self, k: usize) -> (&'a [i32], &'a [T]) {
        let (start, end) = (self.indptr[k] as usize, self.indptr[k + 1] as usize);
        (&self.indices[start..end], &self.data[start..end])
    }

    /// Rows `start..end` as a view (no copy); its indptr is rebased by the caller's reads.
    fn rows_range(&self, start: usize, end: usize) -> RowsOf<'a, T> {
        RowsOf {
            x: *self,
            start,
            end,
        }
    }
}

/// Row k of a CSR matrix: column indices in [0, cols), strictly increasing; values finite.
fn check_row<T: Real>(k: usize, indices: &[i32], data: &[T], cols: usize) -> Result<()> {
    let mut previous = -1i64;
    for (&j, &v) in indices.iter().zip(data) {
        let j = j as i64;
        if j < 0 || j >= cols as i64 {
            return value_error!(
                "sparse column index {j} in row {k} is out of range for {cols} columns"
            );
        }
        if j <= previous {
            let what = if j == previous {
                "appears twice (duplicate entries must be summed first: X.sum_duplicates())"
            } else {
                "is not in increasing order (sort them first: X.sort_indices())"
            };
            return value_error!("sparse column index {j} in row {k} {what}");
        }
        previous = j;
        if !v.is_finite() {
            return value_error!("inputs must be finite, got {v} at [{k}, {j}]");
        }
    }
    Ok(())
}

/// Rows start..end of a CSR matrix (a block of `predict`, or a whole batch).
#[derive(Clone, Copy)]
struct RowsOf<'a, T> {
    x: CsrRef<'a, T>,
    start: usize,
    end: usize,
}

impl<'a, T: Real> RowsOf<'a, T> {
    fn len(&self) -> usize {
        self.end - self.start
    }

    fn nnz(&self) -> usize {
        (self.x.indptr[self.end] - self.x.indptr[self.start]) as usize
    }

    #[inline]
    fn row(&self, k: usize) -> (&'a [i32], &'a [T]) {
        self.x.row(self.start + k)
    }
}

/// Owned CSR rows gathered from a matrix (a shuffled mini-batch), reused between batches.
#[derive(Debug, Default)]
struct CsrBuffers<T> {
    indptr: Vec<i64>,
    indices: Vec<i32>,
    data: Vec<T>,
}

impl<T: Real> CsrBuffers<T> {
    /// Copies rows `index` of x, in that order.
    fn gather<'b>(&'b mut self, x: &CsrRef<'_, T>, index: &[usize]) -> CsrRef<'b, T> {
        self.indptr.clear();
        self.indices.clear();
        self.data.clear();
        self.indptr.push(0);
        for &k in index {
            let (idx, val) = x.row(k);
            self.indices.extend_from_slice(idx);
            self.data.extend_from_slice(val);
            self.indptr.push(self.data.len() as i64);
        }
        CsrRef {
            rows: index.len(),
            cols: x.cols,
            indptr: &self.indptr,
            indices: &self.indices,
            data: &self.data,
        }
    }
}

/// Contiguous blocks of neurons, one per thread, when the product is worth splitting.
fn neuron_blocks(n_out: usize, nnz: usize, threads: Threads) -> Vec<(usize, usize)> {
    let parts = if threads.0 > 1 && nnz.saturating_mul(n_out) > PARALLEL_ABOVE {
        threads.0.min(n_out)
    } else {
        1
    };
    let per = n_out.div_ceil(parts);
    (0..parts)
        .map(|p| (p * per, ((p + 1) * per).min(n_out)))
        .filter(|(s, e)| s < e)
        .collect()
}

/// sum over p of w[idx[p]] * v[p], in four interleaved partial sums (p mod 4) added as
/// (s0 + s1) + (s2 + s3): the same order for every call.
#[inline]
fn sparse_dot<T: Real>(w: &[T], idx: &[i32], val: &[T]) -> T {
    let mut s = [T::ZERO; 4];
    let quads = idx.len() / 4 * 4;
    for p in (0..quads).step_by(4) {
        for lane in 0..4 {
            s[lane] += w[idx[p + lane] as usize] * val[p + lane];
        }
    }
    for p in quads..idx.len() {
        s[p - quads] += w[idx[p] as usize] * val[p];
    }
    (s[0] + s[1]) + (s[2] + s[3])
}

/// z (n, out) = x W^T + b over the nonzeros of x (then a = f(z)), neuron by neuron.
fn sparse_forward<T: Real>(
    layer: &Layer<T>,
    x: RowsOf<T>,
    z: &mut Matrix<T>,
    a: &mut Matrix<T>,
    threads: Threads,
) -> Result<()> {
    let (n, n_in, n_out) = (x.len(), layer.n_inputs(), layer.n_outputs());
    z.resize(n, n_out)?;
    a.resize(n, n_out)?;
    let (w, b) = (layer.weights(), layer.biases());
    let zd = Disjoint::new(z.as_mut_slice());
    let blocks = neuron_blocks(n_out, x.nnz(), threads);
    for_each_part(blocks.len(), |part| {
        let (i0, i1) = blocks[part];
        for i in i0..i1 {
            let wi = &w[i * n_in..(i + 1) * n_in];
            for k in 0..n {
                let (idx, val) = x.row(k);
                // SAFETY: column i of z belongs to this part only; z outlives the section.
                unsafe { *zd.at(k * n_out + i) = sparse_dot(wi, idx, val) + b[i] };
            }
        }
    });
    let f: Activation = layer.activation();
    f.apply(z.as_slice(), a.as_mut_slice(), n_out);
    Ok(())
}

/// db = column sums of delta (row order); with `weights`, dW (out, in) = delta^T x over the
/// nonzeros of x as well (`first_layer_row` per neuron). Without, dW is left to the update
/// that computes it row by row (`apply_fused_update`), and its buffer is let go.
fn sparse_weight_grad<T: Real>(
    layer: &Layer<T>,
    x: RowsOf<T>,
    delta: MatRef<T>,
    grad: &mut LayerGradient<T>,
    (threads, weights): (Threads, bool),
) -> Result<()> {
    let (n_in, n_out) = (layer.n_inputs(), layer.n_outputs());
    try_resize(&mut grad.biases, n_out)?;
    grad.biases.fill(T::ZERO);
    for row in delta.as_slice().chunks_exact(n_out) {
        for (g, &d) in grad.biases.iter_mut().zip(row) {
            *g += d;
        }
    }
    if !weights {
        grad.weights = Vec::new();
        return Ok(());
    }
    try_resize(&mut grad.weights, n_in * n_out)?;
    let blocks = neuron_blocks(n_out, x.nnz(), threads);
    let per = blocks[0].1 - blocks[0].0;
    let delta = delta.as_slice();
    let parts: Vec<_> = grad.weights.chunks_mut(per * n_in).zip(&blocks).collect();
    map_parts(parts, |(dw, &(i0, i1))| {
        for (i, row) in (i0..i1).zip(dw.chunks_exact_mut(n_in)) {
            first_layer_row(x, delta, n_out, i, row);
        }
    });
    Ok(())
}

/// Row i of the first layer's dW: dW[i, j] = sum over rows k of delta[k, i] x[k, j], the rows
/// in batch order (delta (n, n_out) row-major). The same operations in the same order wherever
/// it is called from, so the buffered and the fused update see the same bits.
#[inline]
fn first_layer_row<T: Real>(x: RowsOf<T>, delta: &[T], n_out: usize, i: usize, row: &mut [T]) {
    row.fill(T::ZERO);
    for k in 0..x.len() {
        let d = delta[k * n_out + i];
        let (idx, val) = x.row(k);
        for (&j, &v) in idx.iter().zip(val) {
            row[j as usize] += d * v;
        }
    }
}

/// A training batch whose inputs are a CSR matrix: the targets and sample weights checked
/// as `Batch` checks them (`targets` holds them, with an (n, 0) stand-in for x that nothing
/// reads), and the CSR matrix checked by `CsrRef::new` and against the network.
#[derive(Debug, Clone, Copy)]
pub struct SparseBatch<'a, T = f64> {
    x: CsrRef<'a, T>,
    targets: Batch<'a, T>,
}

impl<'a, T: Real> SparseBatch<'a, T> {
    pub fn len(&self) -> usize {
        self.x.rows
    }

    pub fn is_empty(&self) -> bool {
        self.x.rows == 0
    }
}

impl<T: Real> NeuralNetwork<T> {
    /// At least one row, n_inputs columns (the rest was checked by `CsrRef::new`).
    pub fn check_sparse_inputs(&self, x: &CsrRef<T>) -> Result<()> {
        if x.rows == 0 {
            return value_error!(
                "got 0 samples: expected at least one row of {} inputs",
                self.n_inputs()
            );
        }
        if x.cols != self.n_inputs() {
            return value_error!(
                "the network takes {} inputs per sample, got a sparse matrix with {} columns",
                self.n_inputs(),
                x.cols
            );
        }
        Ok(())
    }

    /// What `sparse_batch` checks of a CSR matrix of `shape` and its targets and weights,
    /// without the matrix's arrays: at least one row, n_inputs columns, targets and weights
    /// that fit. `fit` checks this before it starts; the arrays (structure and values) are
    /// checked by each epoch's `CsrRef::new`, before it changes anything.
    pub fn check_sparse_targets(
        &self,
        (rows, cols): (usize, usize),
        t: Targets<T>,
        weights: Option<&[T]>,
    ) -> Result<()> {
        let stand_in = CsrRef {
            rows,
            cols,
            indptr: &[],
            indices: &[],
            data: &[],
        };
        self.check_sparse_inputs(&stand_in)?;
        self.inputless_batch(rows, t, weights)?;
        Ok(())
    }

    /// Sparse inputs with targets (and optional per-sample weights), checked as `batch` /
    /// `weighted_batch` check dense ones.
    pub fn sparse_batch<'a>(
        &self,
        x: CsrRef<'a, T>,
        t: Targets<'a, T>,
        weights: Option<&'a [T]>,
    ) -> Result<SparseBatch<'a, T>> {
        self.check_sparse_inputs(&x)?;
        let targets = self.inputless_batch(x.rows, t, weights)?;
        Ok(SparseBatch { x, targets })
    }

    /// `predict` for CSR inputs: `PREDICT_BLOCK` rows at a time, the first layer over the
    /// nonzeros, the others dense; threads take runs of whole blocks (the same bits for any
    /// count).
    pub fn predict_sparse(&self, x: CsrRef<T>) -> Result<Matrix<T>> {
        self.check_sparse_inputs(&x)?;
        let (n, n_out) = (x.rows, self.n_outputs());
        let mut out = Matrix::zeros(n, n_out)?;
        let n_blocks = n.div_ceil(PREDICT_BLOCK);
        let k = self.threads.0.min(n_blocks).max(1);
        let per_thread = n_blocks.div_ceil(k) * PREDICT_BLOCK;
        let chunks: Vec<_> = out
            .as_mut_slice()
            .chunks_mut(per_thread * n_out)
            .enumerate()
            .collect();
        let results = map_parts(chunks, |(c, out)| -> Result<()> {
            let (mut z, mut a, mut input) =
                (Matrix::default(), Matrix::default(), Matrix::default());
            let from = c * per_thread;
            let to = (from + per_thread).min(n);
            let mut row = from;
            while row < to {
                let stop = (row + PREDICT_BLOCK).min(to);
                for (l, layer) in self.layers.iter().enumerate() {
                    if l == 0 {
                        sparse_forward(layer, x.rows_range(row, stop), &mut z, &mut a, Threads(1))?;
                    } else {
                        std::mem::swap(&mut input, &mut a);
                        layer.forward(input.view(), &mut z, &mut a, Threads(1))?;
                    }
                }
                let offset = (row - from) * n_out;
                out[offset..offset + (stop - row) * n_out].copy_from_slice(a.as_slice());
                row = stop;
            }
            Ok(())
        });
        results.into_iter().collect::<Result<Vec<()>>>()?;
        Ok(out)
    }

    /// The mean loss of a sparse batch plus (l2 / 2) * sum of squared weights.
    pub fn regularized_loss_sparse(&self, batch: &SparseBatch<T>, l2: f64) -> Result<f64> {
        let full = self.regularized_loss_check(l2, &batch.targets)?;
        let mut work = Workspace::for_layers(self.layers.len());
        let x = batch.x.rows_range(0, batch.x.rows);
        forward_sparse(&self.layers, x, &mut work, self.threads, None)?;
        let last = self.layers.len() - 1;
        let t = &batch.targets;
        let data = self
            .loss
            .value(work.z[last].view(), work.a[last].view(), &t.t, t.weights);
        Ok(data.to_f64() + full)
    }

    /// (loss, [dW, db per layer]) of the mean loss of a sparse batch (+ L2); weights unchanged.
    pub fn regularized_gradients_sparse(
        &mut self,
        batch: &SparseBatch<T>,
        l2: f64,
    ) -> Result<(f64, Vec<LayerGradient<T>>)> {
        self.regularized_loss_check(l2, &batch.targets)?;
        let x = batch.x.rows_range(0, batch.x.rows);
        let loss = self.backprop_sparse(x, &batch.targets, (l2, true), None)?;
        Ok((loss, self.work.grads.clone()))
    }

    /// The L2 penalty after checking l2 and the batch's signature.
    fn regularized_loss_check(&self, l2: f64, targets: &Batch<T>) -> Result<f64> {
        crate::batch::check_l2(l2)?;
        self.check_signature(targets)?;
        Ok(self.l2_penalty(l2))
    }

    /// `backprop` for CSR inputs: the forward pass (first layer sparse), loss, every layer's
    /// gradient into the workspace (the first layer's by `sparse_weight_grad`), dW += l2 W.
    /// Without `first_weights` the first layer's dW (and its l2 W) is not computed: the fused
    /// update computes it row by row (`apply_fused_update`).
    fn backprop_sparse(
        &mut self,
        x: RowsOf<T>,
        targets: &Batch<T>,
        (l2, first_weights): (f64, bool),
        dropout: Option<Dropout>,
    ) -> Result<f64> {
        let penalty = self.l2_penalty(l2);
        let (layers, work, threads) = (&self.layers, &mut self.work, self.threads);
        let norm = Normalizer::of(targets);
        let rates = dropout.as_ref().map(|d| d.rates);
        forward_sparse(layers, x, work, threads, dropout)?;
        let last = layers.len() - 1;
        let (z_out, a_out) = (work.z[last].view(), work.a[last].view());
        let loss = self.loss.value(z_out, a_out, &targets.t, targets.weights);
        seed_output_delta(layers, self.loss, targets, norm, work)?;
        for l in (0..layers.len()).rev() {
            if l == 0 {
                sparse_weight_grad(
                    &layers[0],
                    x,
                    work.delta[0].view(),
                    &mut work.grads[0],
                    (threads, first_weights),
                )?;
                continue;
            }
            let input = layer_input(targets.x, &work.a, &work.out, l, rates);
            let (below, here) = work.delta.split_at_mut(l);
            let dx = below.last_mut();
            layers[l].backward(input, here[0].view(), &mut work.grads[l], dx, threads)?;
            delta_below(layers, work, l, rates);
        }
        if l2 != 0.0 {
            let l2 = T::from_f64(l2);
            let skip = usize::from(!first_weights);
            let layers = self.layers.iter().zip(self.work.grads.iter_mut());
            for (layer, grad) in layers.skip(skip) {
                for (g, &w) in grad.weights.iter_mut().zip(layer.weights()) {
                    *g += l2 * w;
                }
            }
        }
        Ok(loss.to_f64() + penalty)
    }

    /// `train_epoch` for CSR inputs: the same shuffle, batches, dropout draws, optimizer
    /// steps, divergence guard and errors, with each mini-batch's rows gathered as CSR and
    /// the first layer run over their nonzeros. Plain SGD takes the unfused path (gradient,
    /// then update), which rounds like `backward`. With SGD or Adam the divergence guard
    /// keeps no snapshot of the weights and the optimizer state: each update is proven
    /// finite before it is taken (step_bound.rs), or taken on a copy and undone; the result
    /// is the snapshot guard's, bit for bit.
    pub fn train_epoch_sparse(
        &mut self,
        batch: &SparseBatch<T>,
        options: &EpochOptions,
        state: &mut TrainingState<T>,
    ) -> Result<f64> {
        self.train_epoch_sparse_until(batch, options, state, &mut || false)
    }

    /// `train_epoch_sparse` that asks `stop` before every batch after the first (as
    /// `train_epoch_until`).
    pub fn train_epoch_sparse_until(
        &mut self,
        batch: &SparseBatch<T>,
        options: &EpochOptions,
        state: &mut TrainingState<T>,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<f64> {
        let metrics =
            self.train_epoch_sparse_measured(batch, options, state, Accuracy::Skip, stop)?;
        Ok(metrics.loss)
    }

    /// `train_epoch_sparse_until` that also counts a classifier's accuracy from each batch's
    /// outputs as the epoch runs (as `train_epoch_measured`).
    pub fn train_epoch_sparse_measured(
        &mut self,
        batch: &SparseBatch<T>,
        options: &EpochOptions,
        state: &mut TrainingState<T>,
        accuracy: Accuracy<'_, T>,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<EpochMetrics> {
        let mut rows_buffers = CsrBuffers::default();
        let mut targets = (Vec::new(), Vec::new(), Vec::new());
        // Optimizers whose steps step_bound.rs proves finite keep no snapshot of the weights
        // and their state (the inputs were all checked by `CsrRef::new`).
        let bounded = state.optimizer.has_step_bounds();
        let mut bounds = Vec::new();
        let frame = EpochFrame {
            data: &batch.targets,
            options,
            accuracy,
            guard: if bounded {
                EpochGuard::EachStep
            } else {
                EpochGuard::Snapshot
            },
        };
        self.epoch_frame(frame, state, stop, |net, st, rows, tally| {
            if bounded && rows.b == 0 {
                bounds = net.tensor_bounds(st);
            }
            let (x, sub);
            if rows.shuffled {
                let gathered = rows_buffers.gather(&batch.x, rows.index());
                x = gathered.rows_range(0, gathered.rows);
                sub = gather_targets(&batch.targets, rows.index(), &mut targets);
            } else {
                x = batch.x.rows_range(rows.start, rows.end);
                sub = batch.targets.rows_range(rows.start, rows.end);
            }
            let bounds = bounded.then_some(&mut bounds);
            let loss = net.sparse_step(x, &sub, options, st, (rows.epoch, rows.b), bounds)?;
            tally.count(net, &sub, rows.index(), false);
            Ok(loss)
        })
    }

    /// One optimizer step on a sparse mini-batch (`minibatch_step` of training.rs, unfused).
    /// With `bounds` (the `EachStep` guard) the update is proven finite first, or taken on a
    /// copy and undone with the step's counter and dropout draws (`apply_checked`).
    fn sparse_step(
        &mut self,
        x: RowsOf<T>,
        sub: &Batch<T>,
        options: &EpochOptions,
        st: &mut TrainingState<T>,
        (epoch, b): (usize, usize),
        bounds: Option<&mut Vec<(Bound, Bound)>>,
    ) -> Result<f64> {
        let rng_before = st.rng.clone();
        let dropout = options.dropout.iter().any(|&p| p > 0.0).then(|| Dropout {
            rates: &options.dropout,
            rng: &mut st.rng,
        });
        // With the EachStep guard and no clipping (whose norm needs the whole gradient first),
        // the first layer's dW is never held whole: the update computes it row by row.
        let fused = bounds.is_some() && options.clip_norm.is_none();
        let loss = self.backprop_sparse(x, sub, (options.l2, !fused), dropout)?;
        if !loss.is_finite() {
            st.rng = rng_before;
            return Err(Error::NonFinite(format!(
                "training diverged in epoch {epoch}, batch {b}: the loss is {loss}; the \
                 weights are those of the last batch that kept them finite (try a smaller \
                 learning rate)"
            )));
        }
        st.steps += 1;
        if let Some(max_norm) = options.clip_norm {
            self.clip_gradients(max_norm);
        }
        match bounds {
            None => self.apply_optimizer(st), // the snapshot guard keeps the promise
            Some(bounds) => {
                if let Err(e) = self.apply_checked(x, st, (options.l2, fused), bounds, b) {
                    st.steps -= 1;
                    st.rng = rng_before;
                    return Err(e);
                }
            }
        }
        Ok(loss)
    }

    /// The optimizer's update from the gradients in the workspace (`fused`: the first
    /// layer's dW computed row by row as it is applied), when `prove_step` shows
    /// that it keeps every value finite from the bounds carried along or, failing that, from
    /// bounds measured again (and `bounds` move on); otherwise on a copy of the
    /// weights and the optimizer state, put back when a weight is not finite after it (the
    /// error of step `b`), the bounds measured again when all are.
    fn apply_checked(
        &mut self,
        x: RowsOf<T>,
        st: &mut TrainingState<T>,
        (l2, fused): (f64, bool),
        bounds: &mut Vec<(Bound, Bound)>,
        b: usize,
    ) -> Result<()> {
        let apply = |net: &mut Self, st: &mut TrainingState<T>| {
            if fused {
                net.apply_fused_update(x, st, l2);
            } else {
                net.apply_optimizer(st);
            }
        };
        let proven = self.prove_step(x, st, l2, bounds).or_else(|| {
            // Bounds carried from step to step grow loose: measured again, they may prove it.
            *bounds = self.tensor_bounds(st);
            self.prove_step(x, st, l2, bounds)
        });
        if let Some(next) = proven {
            apply(self, st);
            *bounds = next;
            return Ok(());
        }
        let copy = (self.layers.clone(), st.tensors.clone());
        apply(self, st);
        if !self.all_finite() {
            (self.layers, st.tensors) = copy;
            return Err(diverged_at(b));
        }
        *bounds = self.tensor_bounds(st);
        Ok(())
    }

    /// `apply_optimizer` with the first layer's dW not in the workspace: every other tensor
    /// from its stored gradient, and the first layer's weights a row (neuron) at a time, each
    /// row's gradient (`first_layer_row`, + l2 W) made in a scratch row and applied at once
    /// (`Optimizer::step_rows`, threads cut by neurons as `sparse_weight_grad` cuts them). The
    /// same operations on the same values as computing dW whole and then applying it: the
    /// same bits, without the (n_out, n_in) buffer.
    fn apply_fused_update(&mut self, x: RowsOf<T>, st: &mut TrainingState<T>, l2: f64) {
        let threads = self.n_threads();
        let (t, lr, opt) = (st.steps, st.learning_rate, st.optimizer);
        let parts = self.layers.iter_mut().zip(self.work.grads.iter_mut());
        for (l, ((layer, grad), (w_state, b_state))) in parts.zip(st.tensors.iter_mut()).enumerate()
        {
            let (w, bias) = layer.parameters_mut();
            if l > 0 {
                opt.step_threads(w, &mut grad.weights, w_state, t, lr, threads);
            }
            opt.step(bias, &mut grad.biases, b_state, t, lr);
        }
        let (n_in, n_out) = (self.layers[0].n_inputs(), self.layers[0].n_outputs());
        let blocks = neuron_blocks(n_out, x.nnz(), self.threads);
        let delta = self.work.delta[0].as_slice();
        let (add_l2, l2) = (l2 != 0.0, T::from_f64(l2));
        // row i's gradient, + l2 W[i] from the row before its update (as backprop_sparse adds it)
        let grad_row = |i: usize, wi: &[T], g: &mut [T]| {
            first_layer_row(x, delta, n_out, i, g);
            if add_l2 {
                for (g, &v) in g.iter_mut().zip(wi) {
                    *g += l2 * v;
                }
            }
        };
        let (w, _) = self.layers[0].parameters_mut();
        opt.step_rows(w, n_in, &mut st.tensors[0].0, (t, lr), &blocks, &grad_row);
    }

    /// The bounds of every tensor after the coming update (step_bound.rs), or None when they
    /// cannot be proven finite. Gradient bounds: max |g| of each small tensor as stored, and
    /// for the first layer's weights `first_layer_gradient_bound` (no pass over the whole).
    fn prove_step(
        &self,
        x: RowsOf<T>,
        st: &TrainingState<T>,
        l2: f64,
        bounds: &[(Bound, Bound)],
    ) -> Option<Vec<(Bound, Bound)>> {
        let (opt, t, lr) = (st.optimizer, st.steps, st.learning_rate);
        let mut next = Vec::with_capacity(bounds.len());
        for (l, (grad, &(bw, bb))) in self.work.grads.iter().zip(bounds).enumerate() {
            let gw = if l == 0 {
                first_layer_gradient_bound(x, self.work.delta[0].view(), l2 * bw.w)
            } else {
                max_abs(&grad.weights)
            };
            let gb = max_abs(&grad.biases);
            next.push((
                opt.bound_step::<T>(bw, gw, t, lr)?,
                opt.bound_step::<T>(bb, gb, t, lr)?,
            ));
        }
        Some(next)
    }

    /// The exact bounds of every tensor now: (weights, biases) per layer.
    fn tensor_bounds(&self, st: &TrainingState<T>) -> Vec<(Bound, Bound)> {
        self.layers
            .iter()
            .zip(&st.tensors)
            .map(|(layer, (sw, sb))| {
                (
                    Bound::of(layer.weights(), sw),
                    Bound::of(layer.biases(), sb),
                )
            })
            .collect()
    }
}

/// An upper bound on max |dW| of the first layer (then + `l2_term`, the bound of l2 W):
/// |dW[i, j]| = |sum_k delta[k, i] x[k, j]| <= (sum_k |delta[k, i]|) max |x|, widened by
/// (1 + u)^(n + 1) for the rounding of the n products and sums (u: T's epsilon).
fn first_layer_gradient_bound<T: Real>(x: RowsOf<T>, delta: MatRef<T>, l2_term: f64) -> f64 {
    let n_out = delta.cols();
    let mut column_sums = vec![0.0f64; n_out];
    for row in delta.as_slice().chunks_exact(n_out) {
        for (c, &d) in column_sums.iter_mut().zip(row) {
            *c += d.to_f64().abs();
        }
    }
    let (start, end) = (x.x.indptr[x.start] as usize, x.x.indptr[x.end] as usize);
    let x_max = max_abs(&x.x.data[start..end]);
    let u = if T::MAX_FINITE.to_f64() < 1e300 {
        f32::EPSILON as f64
    } else {
        f64::EPSILON
    };
    let rounding = ((x.len() + 1) as f64 * u).exp() * (1.0 + 1.0 / 1024.0);
    (max_abs(&column_sums) * x_max + l2_term) * rounding
}

/// The targets and weights of rows `index` of a batch, gathered into `buffers`.
#[allow(clippy::type_complexity)]
fn gather_targets<'b, T: Real>(
    batch: &Batch<'_, T>,
    index: &[usize],
    (tb, cb, wb): &'b mut (Vec<T>, Vec<usize>, Vec<T>),
) -> Batch<'b, T> {
    let t = match batch.t {
        Targets::Dense(t) => {
            tb.clear();
            for &k in index {
                tb.extend_from_slice(t.row(k));
            }
            Targets::Dense(MatRef::new(tb, index.len(), t.cols()).expect("gathered rows"))
        }
        Targets::Classes(c) => {
            cb.clear();
            cb.extend(index.iter().map(|&k| c[k]));
            Targets::Classes(cb)
        }
    };
    let weights = batch.weights.map(|w| {
        wb.clear();
        wb.extend(index.iter().map(|&k| w[k]));
        &wb[..]
    });
    batch.with_parts(MatRef::new(&[], index.len(), 0).expect("empty"), t, weights)
}

/// `forward_cached` with the first layer over the nonzeros of x (the same dropout draws:
/// layer by layer, row-major).
fn forward_sparse<T: Real>(
    layers: &[Layer<T>],
    x: RowsOf<T>,
    work: &mut Workspace<T>,
    threads: Threads,
    mut dropout: Option<Dropout>,
) -> Result<()> {
    let rates = dropout.as_ref().map(|d| d.rates);
    for (l, layer) in layers.iter().enumerate() {
        let (a_below, a_here) = work.a.split_at_mut(l);
        if l == 0 {
            sparse_forward(layer, x, &mut work.z[0], &mut a_here[0], threads)?;
        } else {
            let input = layer_input(MatRef::new(&[], 0, 0)?, a_below, &work.out, l, rates);
            layer.forward(input, &mut work.z[l], &mut a_here[0], threads)?;
        }
        apply_dropout(work, l, rates, dropout.as_mut())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::Loss;

    fn dense_of(x: &CsrRef<f64>) -> Vec<f64> {
        let mut d = vec![0.0; x.rows * x.cols];
        for k in 0..x.rows {
            let (idx, val) = x.row(k);
            for (&j, &v) in idx.iter().zip(val) {
                d[k * x.cols + j as usize] = v;
            }
        }
        d
    }

    #[test]
    fn checks_name_what_is_wrong() {
        let ok = CsrRef::new((2, 3), &[0, 1, 2], &[0, 2], &[1.0, 2.0]);
        assert!(ok.is_ok());
        let err = |r: Result<CsrRef<f64>>| r.unwrap_err().to_string();
        assert!(err(CsrRef::new((2, 3), &[0, 1], &[0], &[1.0])).contains("indptr of 3"));
        assert!(err(CsrRef::new((3, 3), &[0, 2, 1, 2], &[0, 1], &[1.0, 1.0])).contains("decrease"));
        assert!(err(CsrRef::new((2, 3), &[0, 2, 1], &[0], &[1.0])).contains("beyond"));
        assert!(err(CsrRef::new((1, 3), &[0, 2], &[2, 0], &[1.0, 1.0])).contains("increasing"));
        assert!(err(CsrRef::new((1, 3), &[0, 2], &[1, 1], &[1.0, 1.0])).contains("twice"));
        assert!(err(CsrRef::new((1, 3), &[0, 1], &[3], &[1.0])).contains("out of range"));
        assert!(err(CsrRef::new((1, 3), &[0, 1], &[-1], &[1.0])).contains("out of range"));
        assert!(err(CsrRef::new((1, 3), &[0, 1], &[0], &[f64::NAN])).contains("finite"));
        assert!(err(CsrRef::new((1, 3), &[0, 5], &[0], &[1.0])).contains("end at"));
        assert!(err(CsrRef::new((1, 3), &[1, 1], &[0], &[1.0])).contains("start at 0"));
        assert!(err(CsrRef::new((1, 3), &[0, 1], &[0, 1], &[1.0])).contains("one entry"));
    }

    #[test]
    fn predict_and_gradients_equal_the_dense_path() {
        let (rows, cols) = (300, 40);
        let mut rng = crate::rng::SplitMix64::new(3);
        let (mut indptr, mut indices, mut data) = (vec![0i64], Vec::new(), Vec::new());
        for _ in 0..rows {
            for j in 0..cols {
                if rng.uniform() < 0.1 {
                    indices.push(j as i32);
                    data.push(rng.uniform() * 2.0 - 1.0);
                }
            }
            indptr.push(data.len() as i64);
        }
        let x = CsrRef::new((rows, cols), &indptr, &indices, &data).unwrap();
        let dense = dense_of(&x);
        let xd = MatRef::new(&dense, rows, cols).unwrap();
        for threads in [1, 3] {
            let mut net = NeuralNetwork::<f64>::new(
                &[cols, 16, 3],
                &[Activation::Tanh],
                None,
                Loss::CrossEntropy,
                1,
            )
            .unwrap();
            net.set_n_threads(threads).unwrap();
            let ps = net.predict_sparse(x).unwrap();
            let pd = net.predict(xd).unwrap();
            for (a, b) in ps.as_slice().iter().zip(pd.as_slice()) {
                assert!((a - b).abs() < 1e-13, "{a} vs {b}");
            }
            let classes: Vec<usize> = (0..rows).map(|k| k % 3).collect();
            let sb = net
                .sparse_batch(x, Targets::Classes(&classes), None)
                .unwrap();
            let (ls, gs) = net.regularized_gradients_sparse(&sb, 0.01).unwrap();
            let db = net.batch(xd, Targets::Classes(&classes)).unwrap();
            let (ld, gd) = net.regularized_gradients(&db, 0.01).unwrap();
            assert!((ls - ld).abs() < 1e-13);
            for (s, d) in gs.iter().zip(&gd) {
                for (a, b) in s
                    .weights
                    .iter()
                    .zip(&d.weights)
                    .chain(s.biases.iter().zip(&d.biases))
                {
                    assert!((a - b).abs() < 1e-13, "{a} vs {b}");
                }
            }
        }
    }
}
