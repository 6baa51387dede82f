//! `predict`'s speed-up path: a large batch goes through every layer `PREDICT_BLOCK` rows at
//! a time (a block's z and a stay in cache), each block's inputs checked just before use, and
//! with several threads each takes a run of whole blocks (the same bits for any count).

use crate::activation::{softmax_lse, Activation};
use crate::batch::Batch;
use crate::error::{value_error, Result};
use crate::float::Real;
use crate::kernels::Threads;
use crate::loss::{cross_entropy_terms, Loss};
use crate::matrix::{MatRef, Matrix};
use crate::network::NeuralNetwork;
use crate::team::map_parts;

/// Buffers for `predict_with`: pre-activations, activations and the layer input of one block
/// of rows, and the output of all rows.
#[derive(Debug)]
pub struct PredictScratch<T = f64> {
    z: Matrix<T>,
    a: Matrix<T>,
    input: Matrix<T>,
    pub(crate) out: Matrix<T>,
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

impl<T: Real> NeuralNetwork<T> {
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
            let runs = scratch.out.as_mut_slice().chunks_mut(per_thread * n_out);
            map_parts(runs.enumerate().collect(), |(i, out)| {
                let from = start + i * per_thread;
                let to = (from + per_thread).min(end);
                let mut bufs = (Matrix::default(), Matrix::default(), Matrix::default());
                let (z, a, input) = (&mut bufs.0, &mut bufs.1, &mut bufs.2);
                self.predict_blocks(x, from, to, (z, a, input), out)
            })
            .into_iter()
            .collect()
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
            self.forward_block(x, (row, stop), (z, a, input), true)?;
            let offset = (row - start) * n_out;
            out[offset..offset + (stop - row) * n_out].copy_from_slice(a.as_slice());
            row = stop;
        }
        Ok(())
    }

    /// Rows row..stop of x through every layer, one thread; the output layer's z and, when
    /// `output`, its a are left in `z` and `a` (without, `a` holds no output of the block).
    fn forward_block(
        &self,
        x: MatRef<T>,
        (row, stop): (usize, usize),
        (z, a, input): (&mut Matrix<T>, &mut Matrix<T>, &mut Matrix<T>),
        output: bool,
    ) -> Result<()> {
        let last = self.layers.len() - 1;
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
            if l == last && !output {
                layer.forward_z(layer_x, z, Threads(1))?;
            } else {
                layer.forward(layer_x, z, a, Threads(1))?;
            }
        }
        Ok(())
    }

    /// The mean loss (and, for a classifier, the accuracy) of a batch: `evaluate_rows` over
    /// all of it. No state changes.
    pub fn evaluate(&self, batch: &Batch<T>) -> Result<Evaluation> {
        let mut sums = EvalSums::default();
        self.evaluate_rows(batch, 0, batch.len(), &mut sums)?;
        Ok(self.finish_evaluation(&sums, batch))
    }

    /// `evaluate`'s loss alone: the same blocked pass and the same bits, without counting the
    /// accuracy (`compute_loss`, `regularized_loss`).
    pub fn evaluate_loss(&self, batch: &Batch<T>) -> Result<f64> {
        let mut sums = EvalSums::loss_only();
        self.evaluate_rows(batch, 0, batch.len(), &mut sums)?;
        Ok(self.finish_evaluation(&sums, batch).loss)
    }

    /// Adds rows `start..end` of the batch to the running sums of an evaluation (`start` a
    /// multiple of `PREDICT_BLOCK`). The rows go through the network `PREDICT_BLOCK` at a time,
    /// as in `predict`, and each block is reduced to its loss sums and accuracy counts as soon
    /// as its output is there, so the output of the whole batch is never kept. With several
    /// threads each takes a run of whole blocks; the blocks' sums are then added in block
    /// order, so the result is the same bits for any thread count and for any cut of the rows
    /// into calls at multiples of `PREDICT_BLOCK`. The inputs of a batch from `epoch_batch`
    /// are checked block by block, as `predict` does.
    pub fn evaluate_rows(
        &self,
        batch: &Batch<T>,
        start: usize,
        end: usize,
        sums: &mut EvalSums<T>,
    ) -> Result<()> {
        self.check_signature(batch)?;
        let x = batch.x;
        if start % PREDICT_BLOCK != 0 || start >= end || end > x.rows() {
            return value_error!(
                "rows {start}..{end} of {}: expected a non-empty range starting at a multiple \
                 of {PREDICT_BLOCK}",
                x.rows()
            );
        }
        let n_blocks = (end - start).div_ceil(PREDICT_BLOCK);
        let mut parts = vec![BlockSums::<T>::default(); n_blocks];
        let k = self.threads.0.min(n_blocks);
        let per_thread = n_blocks.div_ceil(k.max(1));
        let mut bufs = (Matrix::default(), Matrix::default(), Matrix::default());
        let result = if k <= 1 {
            parts.iter_mut().enumerate().try_for_each(|(j, part)| {
                let row = start + j * PREDICT_BLOCK;
                let stop = (row + PREDICT_BLOCK).min(end);
                *part = self.block_sums(batch, (row, stop), &mut bufs, sums.count_accuracy)?;
                Ok(())
            })
        } else {
            let runs = parts.chunks_mut(per_thread).enumerate().collect();
            let count = sums.count_accuracy;
            map_parts(runs, |(i, run): (usize, &mut [BlockSums<T>])| {
                let mut bufs = (Matrix::default(), Matrix::default(), Matrix::default());
                let first = start + i * per_thread * PREDICT_BLOCK;
                for (j, part) in run.iter_mut().enumerate() {
                    let row = first + j * PREDICT_BLOCK;
                    let stop = (row + PREDICT_BLOCK).min(end);
                    *part = self.block_sums(batch, (row, stop), &mut bufs, count)?;
                }
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
        for part in &parts {
            sums.add(part);
        }
        sums.rows += end - start;
        Ok(())
    }

    /// The loss sums and, with `count_accuracy`, the accuracy counts of rows row..stop (one
    /// block).
    fn block_sums(
        &self,
        batch: &Batch<T>,
        (row, stop): (usize, usize),
        (z, a, input): &mut (Matrix<T>, Matrix<T>, Matrix<T>),
        count_accuracy: bool,
    ) -> Result<BlockSums<T>> {
        if batch.x_unchecked {
            self.check_rows(batch.x, row, stop)?;
        }
        // The accuracy reads the output a; a loss that reads only z does not need it, and
        // the output layer's activation (softmax: an exp per output) is then skipped. With
        // both, for cross-entropy, each row's softmax is taken here with its log-sum-exp, the
        // loss's (`softmax_lse`): one exp per output instead of one for a and one for the loss.
        let counts = count_accuracy && self.loss.is_classifier();
        let last = self.layers.len() - 1;
        let fused = counts
            && self.loss == Loss::CrossEntropy
            && self.layers[last].activation() == Activation::Softmax;
        let output = (counts && !fused) || !self.loss.reads_only_z();
        self.forward_block(batch.x, (row, stop), (z, a, input), output)?;
        let t = batch.t.rows_range(row, stop);
        let weights = batch.weights.map(|w| &w[row..stop]);
        let loss = if fused {
            let (n, m) = (z.rows(), z.cols());
            a.resize(n, m)?;
            let (zv, av) = (z.view(), a.as_mut_slice());
            let add = |k: usize, sum: T| {
                let lse = softmax_lse(zv.row(k), &mut av[k * m..(k + 1) * m]);
                cross_entropy_terms(zv.row(k), lse, &t, k, sum)
            };
            self.loss.block_sums_by((n, m), weights, add)
        } else {
            // Without the output, z stands in for a, which such a loss does not read.
            let a_view = if output { a.view() } else { z.view() };
            self.loss.block_sums(z.view(), a_view, &t, weights)
        };
        let (mut hits, mut seen) = (0.0, 0.0);
        if counts {
            let out = a.view();
            for k in 0..out.rows() {
                let w = weights.map_or(1.0, |w| w[k].to_f64());
                hits += w * self.loss.accuracy_score(out.row(k), &t, k);
                seen += w;
            }
        }
        Ok(BlockSums { loss, hits, seen })
    }

    /// The mean loss and accuracy from the sums of every row of `batch`.
    pub fn finish_evaluation(&self, sums: &EvalSums<T>, batch: &Batch<T>) -> Evaluation {
        let loss = self.loss.finish_value(
            sums.loss,
            batch.weights.is_some(),
            sums.rows,
            self.n_outputs(),
        );
        Evaluation {
            loss: loss.to_f64(),
            accuracy: (sums.count_accuracy && self.loss.is_classifier())
                .then(|| sums.hits / sums.seen),
        }
    }
}

/// One block's share of an evaluation.
#[derive(Debug, Clone, Copy)]
struct BlockSums<T> {
    loss: (T, T),
    hits: f64,
    seen: f64,
}

impl<T: Real> Default for BlockSums<T> {
    fn default() -> Self {
        BlockSums {
            loss: (T::ZERO, T::ZERO),
            hits: 0.0,
            seen: 0.0,
        }
    }
}

/// The running sums of an evaluation over consecutive ranges of rows (`evaluate_rows`):
/// `default()` counts a classifier's accuracy, `loss_only()` does not.
#[derive(Debug, Clone, Copy)]
pub struct EvalSums<T = f64> {
    loss: (T, T),
    hits: f64,
    seen: f64,
    rows: usize,
    count_accuracy: bool,
}

impl<T: Real> Default for EvalSums<T> {
    fn default() -> Self {
        EvalSums {
            loss: (T::ZERO, T::ZERO),
            hits: 0.0,
            seen: 0.0,
            rows: 0,
            count_accuracy: true,
        }
    }
}

impl<T: Real> EvalSums<T> {
    /// Sums of the loss alone (the evaluation's accuracy is then None): what `compute_loss`
    /// needs, without the argmax of every row.
    pub fn loss_only() -> Self {
        EvalSums {
            count_accuracy: false,
            ..Self::default()
        }
    }

    fn add(&mut self, part: &BlockSums<T>) {
        self.loss.0 += part.loss.0;
        self.loss.1 += part.loss.1;
        self.hits += part.hits;
        self.seen += part.seen;
    }
}

/// What `evaluate` returns: the mean loss (weighted by the batch's sample weights, no L2) and,
/// for a classifier, the accuracy sum_k w_k c_k / sum_k w_k (`Loss::accuracy_score`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    pub loss: f64,
    pub accuracy: Option<f64>,
}
