//! The article's per-sample SGD on a large first layer, a block of samples at a time.
//!
//! Per-sample SGD changes W after every sample, so every step reads and writes all of the
//! first layer's W: 800 kB per step for an MNIST 784-128 layer in f64. The step is then bound
//! by the cache's bandwidth, not by arithmetic (measured on the 2-core CI machine: about 26 us
//! for that read-modify-write, 60-75 GB/s). The same steps can be taken with W read and written
//! once per block of m samples instead. With the block's inputs x_0 .. x_{m-1} and each step
//! s_i = -(learning_rate * delta_i) (a vector over the layer's outputs), sample j sees
//!
//! ```text
//! W_j = W_0 + sum_{i<j} s_i x_i^T,      b_j = b_0 + sum_{i<j} s_i
//! z_j = W_j x_j + b_j = (W_0 x_j + b_0) + sum_{i<j} s_i (x_i . x_j + 1)
//! ```
//! The first term, for every j at once, is one matrix product when the block opens (Z0); the
//! dot products x_i . x_j are a second (the block's Gram matrix G); the sum is j small vector
//! updates per step; and after the last step W_m = W_0 + S^T X is a third product. Each sample
//! sees the weights of the per-sample loop, exactly in real arithmetic; in floating point the
//! sums are formed in another order, so results differ from the one-sample-at-a-time kernels by
//! a few ulps per step (tests/training.rs states the tolerance).
//!
//! Blocks start at the first step of a `train_steps` call and hold `TRAIN_BLOCK` steps (fewer
//! at the end of the call), so a training run split into calls of a multiple of `TRAIN_BLOCK`
//! steps gives the bits of one call.

use crate::error::Result;
use crate::float::Real;
use crate::kernels::{self, per_cpu, Threads};
use crate::layer::Layer;
use crate::matrix::{try_resize, MatRef};

/// Steps per block. Larger blocks make the three products more efficient but the Gram matrix
/// (m dot products of length n_inputs per step) and the correction (m/2 vector updates per
/// step) dearer. On 784-128-10, 16, 32 and 64 measured within this machine's noise of each
/// other (15-22 us per f64 step); at 32 the Gram matrix adds an eighth to a 128-wide
/// layer's arithmetic.
pub const TRAIN_BLOCK: usize = 32;

/// The block's products run on the calling thread whatever `n_threads` says: at 6 MFLOP
/// (784-128, m = 32) a second thread made `train` slower, 16 -> 18-21 us per step.
const ONE_THREAD: Threads = Threads(1);

/// First layers with fewer weights than this stay in L1/L2 cache, where the per-sample kernels
/// are compute-bound and blocking would only add work.
pub(crate) const BLOCK_MIN_WEIGHTS: usize = 16 * 1024;

/// The open block of the first layer (`len == 0`: none).
#[derive(Debug, Default)]
pub(crate) struct SgdBlock<T> {
    len: usize,   // m: steps in this block
    done: usize,  // steps taken so far; their updates are not yet in W
    x: Vec<T>,    // (m, n_inputs): the block's samples, in step order
    z0: Vec<T>,   // (m, n_outputs): W_0 x_j + b_0
    gram: Vec<T>, // (m, m): x_i . x_j
    s: Vec<T>,    // (m, n_outputs): s_i for the steps taken
}

impl<T: Real> SgdBlock<T> {
    /// Whether a block is open with steps left to take.
    pub(crate) fn is_open(&self) -> bool {
        self.done < self.len
    }

    /// Opens a block of the samples `rows` (indices into `x`, in step order): gathers them
    /// and computes Z0 and G with the current (block-start) weights.
    pub(crate) fn open(
        &mut self,
        layer: &Layer<T>,
        x: MatRef<T>,
        rows: impl ExactSizeIterator<Item = usize>,
    ) -> Result<()> {
        debug_assert!(self.done == self.len, "the previous block was flushed");
        let m = rows.len();
        let (n_in, n_out) = (layer.n_inputs(), layer.n_outputs());
        try_resize(&mut self.x, m * n_in)?;
        for (dst, k) in self.x.chunks_exact_mut(n_in).zip(rows) {
            dst.copy_from_slice(x.row(k));
        }
        try_resize(&mut self.z0, m * n_out)?;
        try_resize(&mut self.gram, m * m)?;
        try_resize(&mut self.s, m * n_out)?;
        kernels::linear_forward(
            &self.x,
            m,
            layer.weights(),
            layer.biases(),
            &mut self.z0,
            None, // f is applied per step, to z0 plus the block's corrections
            ONE_THREAD,
        );
        kernels::gram(&self.x, m, &mut self.gram, ONE_THREAD);
        (self.len, self.done) = (m, 0);
        Ok(())
    }

    /// The next step's forward pass through the layer: z = `next_z`, a = f(z), into rows of
    /// n_outputs values, with the kernels of `FMA` (`kernels::per_cpu`).
    #[inline(always)]
    pub(crate) fn forward_next<const FMA: bool>(&self, layer: &Layer<T>, z: &mut [T], a: &mut [T]) {
        self.next_z::<FMA>(z);
        layer.activation().apply_row(z, a);
    }

    /// z_j = Z0_j + sum_{i<j} s_i (G_ij + 1) for the next step j, into `z` (n_outputs).
    #[inline(always)]
    fn next_z<const FMA: bool>(&self, z: &mut [T]) {
        let (j, m, n_out) = (self.done, self.len, z.len());
        z.copy_from_slice(&self.z0[j * n_out..(j + 1) * n_out]);
        for (i, s_i) in self.s[..j * n_out].chunks_exact(n_out).enumerate() {
            per_cpu::axpy::<T, FMA>(z, self.gram[i * m + j] + T::ONE, s_i);
        }
    }

    /// Records step j's s_j = -(learning_rate * delta_j) (as the per-sample kernels form it);
    /// after the block's last step, applies the whole block to the layer.
    pub(crate) fn record(&mut self, layer: &mut Layer<T>, delta: &[T], learning_rate: T) {
        let (j, n_out) = (self.done, delta.len());
        for (s, &d) in self.s[j * n_out..(j + 1) * n_out].iter_mut().zip(delta) {
            *s = -(learning_rate * d);
        }
        self.done += 1;
        if self.done == self.len {
            self.flush(layer);
        }
    }

    /// Applies the steps taken (W += S^T X, b += sum of s_i) and closes the block; the steps
    /// not taken (a call that stopped early) are dropped.
    pub(crate) fn flush(&mut self, layer: &mut Layer<T>) {
        let done = self.done;
        if done > 0 {
            let (n_in, n_out) = (layer.n_inputs(), layer.n_outputs());
            let (w, b) = layer.parameters_mut();
            kernels::add_rank_n_update(
                &self.s[..done * n_out],
                &self.x[..done * n_in],
                done,
                w,
                b,
                ONE_THREAD,
            );
        }
        (self.len, self.done) = (0, 0);
    }
}
