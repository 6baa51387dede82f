//! A small network's batch split by rows across threads (`NeuralNetwork::set_n_threads`):
//! each thread runs forward and backward on its share of the rows, then the shares' gradients
//! are added in a fixed order. Large layers are instead cut by neurons inside the kernels
//! (`kernels::splits_product`); the threads of a training call are kept awake by `team.rs`.

use crate::batch::Batch;
use crate::error::Result;
use crate::float::Real;
use crate::kernels::{self, Threads};
use crate::layer::LayerGradient;
use crate::matrix::try_resize;
use crate::network::{backward_cached, forward_cached, NeuralNetwork, Normalizer, Workspace};
use crate::team::map_parts;

/// Below this many rows per thread, a batch is not split (the hand-off would cost more).
const ROWS_PER_THREAD: usize = 16;

impl<T: Real> NeuralNetwork<T> {
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

    /// `backprop` with the batch's rows split into k contiguous shares, one per thread: each
    /// share runs forward and backward on its own workspace (its delta normalised by the
    /// whole batch's n or sum of weights, so each row's delta is the single-thread one), then
    /// the shares' gradients are added in share order. The sums over samples (dW, db) are
    /// split in k, so results depend on k but never on timing: for a given k they are the
    /// same bits on every run. The loss is summed over the shares in one running sum, as one
    /// thread would.
    pub(crate) fn backprop_split(&mut self, batch: &Batch<T>, k: usize) -> Result<T> {
        let n = batch.len();
        let norm = Normalizer::of(batch);
        if self.shares.len() != k {
            self.shares = (0..k)
                .map(|_| Workspace::for_layers(self.layers.len()))
                .collect();
        }
        let bounds: Vec<(usize, usize)> = (0..k).map(|i| (i * n / k, (i + 1) * n / k)).collect();
        let (layers, loss) = (&self.layers, self.loss);
        let shares = self.shares.iter_mut().zip(&bounds).collect();
        map_parts(shares, |(work, &(start, end))| {
            let share = batch.rows_range(start, end);
            forward_cached(layers, share.x, work, Threads(1), None)?;
            backward_cached(layers, loss, &share, norm, work, None, Threads(1))
        })
        .into_iter()
        .collect::<Result<()>>()?;
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
            let runs = grad.weights.chunks_mut(chunk).enumerate().collect();
            map_parts(runs, |(i, g): (usize, &mut [T])| {
                sum_range(g, i * chunk, |lg| &lg.weights)
            });
            sum_range(&mut grad.biases, 0, |lg| &lg.biases);
        }
        Ok(value)
    }
}
