//! Mini-batch training: one epoch of shuffled batches, each a forward pass (with dropout), a
//! backward pass (with L2), clipping and an optimizer step. docs/maths.md, second part, is the
//! contract; `ferrinet.reference` follows it too.

use crate::batch::{check_finite_rows, non_finite_at, Batch};
use crate::error::{value_error, Error, Result};
use crate::float::{first_non_finite, Real};
use crate::loss::Targets;
use crate::matrix::MatRef;
use crate::network::{in_panels, Dropout, NeuralNetwork};
use crate::optimizer::{Optimizer, TensorState};
use crate::panels;
use crate::rng::SplitMix64;
use crate::team::{map_parts, with_team};

/// Batches of at least this many input values are gathered by all the network's threads.
const PARALLEL_GATHER_ABOVE: usize = 1 << 15;

/// How one epoch runs.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochOptions {
    pub batch_size: usize,
    pub shuffle: bool,
    /// L2 penalty (l2 / 2) * sum of squared weights, part of the objective.
    pub l2: f64,
    /// Drop probability per layer, output layer last (and 0); empty for no dropout.
    pub dropout: Vec<f64>,
    /// Clip the global gradient norm to this (PyTorch's clip_grad_norm_).
    pub clip_norm: Option<f64>,
}

impl EpochOptions {
    pub fn new(batch_size: usize) -> Self {
        EpochOptions {
            batch_size,
            shuffle: true,
            l2: 0.0,
            dropout: Vec::new(),
            clip_norm: None,
        }
    }

    pub fn check(&self, n_layers: usize) -> Result<()> {
        if self.batch_size == 0 {
            return value_error!("batch_size must be at least 1, got 0");
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return value_error!("l2 must be a finite number >= 0, got {}", self.l2);
        }
        if !self.dropout.is_empty() {
            if self.dropout.len() != n_layers {
                return value_error!(
                    "dropout needs one rate per layer ({n_layers}: the hidden ones, then 0 for \
                     the output layer), got {} rates",
                    self.dropout.len()
                );
            }
            if self.dropout[n_layers - 1] != 0.0 {
                return value_error!(
                    "the output layer cannot drop units: its rate must be 0, got {}",
                    self.dropout[n_layers - 1]
                );
            }
            if let Some(p) = self.dropout.iter().find(|p| !(0.0..1.0).contains(*p)) {
                return value_error!("dropout rates must be in [0, 1), got {p}");
            }
        }
        if let Some(c) = self.clip_norm {
            if !(c.is_finite() && c > 0.0) {
                return value_error!("clip_norm must be a finite number > 0, got {c}");
            }
        }
        Ok(())
    }
}

/// Everything training carries from one epoch to the next: the optimizer and its state, the
/// current learning rate, the generator for shuffles and dropout, and the counters. It lives
/// with the network, so a later `train_epoch` continues exactly where the last one stopped.
/// Saved files keep all of it (`io.rs`), so a loaded network continues bit for bit.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingState<T = f64> {
    pub(crate) optimizer: Optimizer,
    pub(crate) learning_rate: f64,
    pub(crate) seed: u64,
    pub(crate) rng: SplitMix64,
    pub(crate) steps: u64,
    pub(crate) epochs: usize,
    pub(crate) tensors: Vec<StatePair<T>>, // per layer: (weights, biases)
}

impl<T: Real> TrainingState<T> {
    pub fn new(optimizer: Optimizer, seed: u64, n_layers: usize) -> Result<Self> {
        optimizer.check()?;
        Ok(TrainingState {
            optimizer,
            learning_rate: optimizer.lr(),
            seed,
            rng: SplitMix64::new(seed),
            steps: 0,
            epochs: 0,
            tensors: vec![(TensorState::default(), TensorState::default()); n_layers],
        })
    }

    pub fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The learning rate of the next step (a schedule may have changed it).
    pub fn learning_rate(&self) -> f64 {
        self.learning_rate
    }

    /// Any finite rate >= 0: schedules may reach 0 (cosine annealing to eta_min = 0), where a
    /// step changes nothing (AdamW's decay included, as in PyTorch).
    pub fn set_learning_rate(&mut self, learning_rate: f64) -> Result<()> {
        if !(learning_rate.is_finite() && learning_rate >= 0.0) {
            return value_error!("learning_rate must be a finite number >= 0, got {learning_rate}");
        }
        self.learning_rate = learning_rate;
        Ok(())
    }

    /// Optimizer steps taken (t of the formulas).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    pub fn epochs(&self) -> usize {
        self.epochs
    }

    /// The generator of shuffles and dropout masks, where it is now.
    pub fn rng(&self) -> &SplitMix64 {
        &self.rng
    }

    /// The optimizer's per-element state, per layer: (weights, biases).
    pub fn tensor_states(&self) -> &[(TensorState<T>, TensorState<T>)] {
        &self.tensors
    }
}

/// What an epoch measures as it runs, besides its loss: a classifier's accuracy, counted from
/// the outputs of each batch's own forward pass (before its update, dropout active), with no
/// second pass over the data. `Count(weights)`: weighted by `weights` (one per sample of the
/// epoch's batch, in the caller's order), or unweighted with `None`.
#[derive(Debug, Clone, Copy)]
pub enum Accuracy<'w, T> {
    Skip,
    Count(Option<&'w [T]>),
}

/// The running values of one epoch: `loss`, the mean over samples of each batch's objective
/// before its update, and `accuracy` (when counted): sum_k w_k c_k / sum_k w_k over the samples
/// in the order the epoch took them, c_k the score of sample k on the output of its batch's
/// forward pass (`accuracy_score`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochMetrics {
    pub loss: f64,
    pub accuracy: Option<f64>,
}

/// A layer's optimizer state: (weights, biases).
pub(crate) type StatePair<T> = (TensorState<T>, TensorState<T>);

/// What an epoch runs on (`epoch_frame`): the batch its targets are checked in (for CSR
/// inputs the targets alone), its options, what it measures besides the loss, and its guard.
pub(crate) struct EpochFrame<'f, 'b, T> {
    pub data: &'f Batch<'b, T>,
    pub options: &'f EpochOptions,
    pub accuracy: Accuracy<'f, T>,
    pub guard: EpochGuard,
}

/// How an epoch keeps a diverged step from leaving non-finite weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EpochGuard {
    /// `guarded_deferred` (guard.rs): a snapshot of the weights and the state at the start,
    /// the call replayed from it when a weight went non-finite, and put back whole when the
    /// data were refused part way (inputs checked as they are gathered).
    Snapshot,
    /// Each step keeps the promise itself, with no snapshot: a refused step changes nothing,
    /// and a step that would make a weight non-finite is proven finite first or taken on a
    /// copy and undone (step_bound.rs). For inputs checked up front (CSR), which nothing
    /// can refuse after the first step: the workspace is sized by the first, largest batch.
    EachStep,
}

/// The rows of one step: positions `start..end` of the epoch's `order` (the identity when
/// not `shuffled`), batch `b` of epoch `epoch`.
pub(crate) struct StepRows<'o> {
    pub order: &'o [usize],
    pub start: usize,
    pub end: usize,
    pub shuffled: bool,
    pub epoch: usize,
    pub b: usize,
    /// A step of the guard's checked replay (guard.rs), whose weights are read right after
    /// it: it leaves nothing for later (`TransposedFirst`).
    pub checked: bool,
}

impl StepRows<'_> {
    /// The samples of this step, as indices into the epoch's data.
    pub fn index(&self) -> &[usize] {
        &self.order[self.start..self.end]
    }
}

/// The running sums of an epoch: sum of n_b L_b, and for the accuracy (`count`: Some, with
/// the optional weights) sum of w_k c_k and sum of w_k.
pub(crate) struct Tally<'w, T> {
    count: Option<Option<&'w [T]>>,
    total: f64,
    hits: f64,
    seen: f64,
}

impl<'w, T: Real> Tally<'w, T> {
    fn new(count: Option<Option<&'w [T]>>) -> Self {
        Tally {
            count,
            total: 0.0,
            hits: 0.0,
            seen: 0.0,
        }
    }

    /// Counts the accuracy of the batch just stepped (`sub`: the samples `index` of the
    /// epoch's data), read from its forward pass's output (`split`: in the shares'
    /// workspaces); nothing when the epoch does not count it.
    pub(crate) fn count(
        &mut self,
        net: &NeuralNetwork<T>,
        sub: &Batch<T>,
        index: &[usize],
        split: bool,
    ) {
        if let Some(weights) = self.count {
            let weight = |k: usize| weights.map_or(1.0, |w| w[index[k]].to_f64());
            net.count_batch_accuracy(sub, split, weight, (&mut self.hits, &mut self.seen));
        }
    }
}

/// Fisher-Yates (Durstenfeld), drawing j = floor(uniform() * (i + 1)) as docs/maths.md says.
pub fn shuffle(order: &mut [usize], rng: &mut SplitMix64) {
    for i in (1..order.len()).rev() {
        let j = (rng.uniform() * (i + 1) as f64) as usize;
        order.swap(i, j);
    }
}

impl<T: Real> NeuralNetwork<T> {
    /// One epoch of mini-batch training with `state` (the caller keeps it between epochs;
    /// the Python binding stores it with the network). Returns the epoch loss: the mean over
    /// samples of each batch's objective before its update.
    ///
    /// A batch whose loss or update is not finite stops the epoch with `Error::NonFinite`;
    /// the network and `state` are then those after the last batch that kept every weight
    /// finite.
    pub fn train_epoch(
        &mut self,
        batch: &Batch<T>,
        options: &EpochOptions,
        state: &mut TrainingState<T>,
    ) -> Result<f64> {
        self.train_epoch_until(batch, options, state, &mut || false)
    }

    /// `train_epoch` that asks `stop` before every batch after the first; when it answers
    /// true the epoch ends there with `Error::Interrupted`, the network and `state` holding the
    /// batches done so far (the epoch is not counted).
    ///
    /// Phases: `check_epoch` (may refuse, changes nothing), the order of the samples, then
    /// under the divergence guard (guard.rs) one `minibatch` and one `minibatch_step` per
    /// batch, and last the state of the run is kept (or put back when the call was refused).
    pub fn train_epoch_until(
        &mut self,
        batch: &Batch<T>,
        options: &EpochOptions,
        state: &mut TrainingState<T>,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<f64> {
        let metrics = self.train_epoch_measured(batch, options, state, Accuracy::Skip, stop)?;
        Ok(metrics.loss)
    }

    /// `train_epoch_until` that also counts the accuracy of a classifier from each batch's
    /// outputs as the epoch runs (`Accuracy`): what `fit` reports for the training data.
    pub fn train_epoch_measured(
        &mut self,
        batch: &Batch<T>,
        options: &EpochOptions,
        state: &mut TrainingState<T>,
        accuracy: Accuracy<'_, T>,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<EpochMetrics> {
        let fused = fuses_sgd(options, &state.optimizer);
        let threads = self.n_threads();
        let dropout = options.dropout.iter().any(|&p| p > 0.0);
        let mut buffers = Gathered::default();
        let frame = EpochFrame {
            data: batch,
            options,
            accuracy,
            guard: EpochGuard::Snapshot,
        };
        self.epoch_frame(frame, state, stop, |net, st, rows, tally| {
            let range = (rows.start, rows.end);
            let sub = minibatch(
                batch,
                rows.order,
                rows.shuffled,
                range,
                threads,
                &mut buffers,
            )?;
            let deferred = !rows.checked;
            let at = (rows.epoch, rows.b);
            let loss = net.minibatch_step(&sub, options, (fused, deferred), st, at)?;
            tally.count(net, &sub, rows.index(), net.splits(sub.len(), dropout));
            Ok(loss)
        })
    }

    /// The frame every epoch runs in (dense here, CSR in sparse.rs), so that the two cannot
    /// drift: `check_epoch` (may refuse, changes nothing), the order of the samples (shuffled
    /// or not), then under the divergence guard one `step` per batch, which gathers its rows
    /// and takes its optimizer step (returning the batch's loss) and counts its accuracy into
    /// the `Tally`; last the epoch is counted, or on a refused call the shuffle's draws put
    /// back. A replay of the guard starts the sums again from its first batch.
    pub(crate) fn epoch_frame(
        &mut self,
        frame: EpochFrame<'_, '_, T>,
        state: &mut TrainingState<T>,
        stop: &mut dyn FnMut() -> bool,
        mut step: impl FnMut(&mut Self, &mut TrainingState<T>, &StepRows, &mut Tally<T>) -> Result<f64>,
    ) -> Result<EpochMetrics> {
        let EpochFrame {
            data,
            options,
            accuracy,
            guard,
        } = frame;
        self.check_epoch(data, options, state)?;
        let n = data.len();
        let count = match accuracy {
            Accuracy::Skip => None,
            Accuracy::Count(weights) => {
                self.loss.check_classifier()?;
                if let Some(w) = weights {
                    check_accuracy_weights(w, n)?;
                }
                Some(weights)
            }
        };
        let mut order: Vec<usize> = (0..n).collect();
        let rng_before = state.rng.clone();
        if options.shuffle {
            shuffle(&mut order, &mut state.rng);
        }
        let bs = options.batch_size.min(n);
        let mut tally = Tally::new(count);
        let epoch = state.epochs;
        let mut one =
            |net: &mut Self, st: &mut TrainingState<T>, b: usize, checked| -> Result<()> {
                if b > 0 && stop() {
                    return Err(Error::Interrupted);
                }
                if b == 0 {
                    tally = Tally::new(count); // a replay (guard.rs) starts the sums again
                }
                let (start, end) = (b * bs, ((b + 1) * bs).min(n));
                let shuffled = options.shuffle;
                let rows = StepRows {
                    order: &order,
                    start,
                    end,
                    shuffled,
                    epoch,
                    b,
                    checked,
                };
                let loss = step(net, st, &rows, &mut tally)?;
                tally.total += loss * (end - start) as f64;
                Ok(())
            };
        // With several threads, helpers stay awake for the epoch's parallel sections (team.rs).
        // Whatever ends the steps, the first layer's weights are put back from a transposed
        // copy before anything reads them (`TransposedFirst`).
        let result = with_team(self.n_threads(), || match guard {
            EpochGuard::Snapshot => self.guarded_deferred(
                state,
                n.div_ceil(bs),
                &mut one,
                |net: &mut Self, st: &mut TrainingState<T>| net.settle_first_state(&mut st.tensors),
            ),
            EpochGuard::EachStep => {
                let run = (0..n.div_ceil(bs)).try_for_each(|b| one(self, state, b, true));
                self.settle_first_state(&mut state.tensors);
                run
            }
        });
        if let Err(Error::Value(_) | Error::Memory(_)) = result {
            // A refused call changes nothing (the guard put the rest back): not the shuffle.
            state.rng = rng_before;
        }
        result?;
        state.epochs += 1;
        Ok(EpochMetrics {
            loss: tally.total / n as f64,
            accuracy: count.map(|_| tally.hits / tally.seen),
        })
    }

    /// Adds the scores of the samples of the batch just stepped (`sub`), read from the output
    /// of its forward pass (the workspace, or the shares' workspaces when its rows were split
    /// between threads), to `hits` (sum of w_k c_k) and `seen` (sum of w_k), sample by sample.
    fn count_batch_accuracy(
        &self,
        sub: &Batch<T>,
        split: bool,
        weight: impl Fn(usize) -> f64,
        (hits, seen): (&mut f64, &mut f64),
    ) {
        let last = self.layers.len() - 1;
        let mut count = |out: MatRef<T>, offset: usize| {
            for k in 0..out.rows() {
                let w = weight(offset + k);
                *hits += w * self.loss.accuracy_score(out.row(k), &sub.t, offset + k);
                *seen += w;
            }
        };
        if split {
            let k = self.shares.len();
            let n = sub.len();
            for (i, work) in self.shares.iter().enumerate() {
                count(work.a[last].view(), i * n / k);
            }
        } else {
            count(self.work.a[last].view(), 0);
        }
    }

    /// Everything `train_epoch` checks before it changes anything.
    fn check_epoch(
        &self,
        batch: &Batch<T>,
        options: &EpochOptions,
        state: &TrainingState<T>,
    ) -> Result<()> {
        options.check(self.layers.len())?;
        if state.tensors.len() != self.layers.len() {
            return value_error!("this training state belongs to a network of another depth");
        }
        // Validate the batch against this network before anything is drawn (the inputs of
        // an `epoch_batch` are checked one mini-batch at a time, by `minibatch`).
        self.check_signature(batch)
    }

    /// One step of the epoch on the mini-batch `sub` (batch `b` of epoch `epoch`): forward,
    /// backward and the optimizer's update, or the fused plain-SGD step when `fused`. Returns
    /// the batch's objective before the update; a non-finite one changes nothing.
    ///
    /// `deferred`: the fused step may leave the first layer's weights transposed
    /// (`TransposedFirst`); the caller settles them. Every other step settles them first.
    fn minibatch_step(
        &mut self,
        sub: &Batch<T>,
        options: &EpochOptions,
        (fused, deferred): (bool, bool),
        st: &mut TrainingState<T>,
        (epoch, b): (usize, usize),
    ) -> Result<f64> {
        // A refused batch must not have drawn its masks: keep the generator to put back.
        let rng_before = st.rng.clone();
        let dropout = options.dropout.iter().any(|&p| p > 0.0).then(|| Dropout {
            rates: &options.dropout,
            rng: &mut st.rng,
        });
        let split = self.splits(sub.len(), dropout.is_some());
        let fused = fused && !split;
        // The first layer in panels for the optimizer too (`TransposedFirst`), where it is
        // for a fused step: its W and state stay there from step to step, and a step that may
        // not leave them (the guard's checked replay) takes them all the same and settles
        // after itself, for the fast run's bits.
        let panels = !fused
            && !split
            && in_panels()
            && options.l2 == 0.0
            && options.clip_norm.is_none()
            && self.transposes_first(sub.len());
        let loss = if fused {
            self.sgd_batch(sub, dropout, st.learning_rate, deferred)?
        } else if panels {
            self.transpose_first_state(&mut st.tensors);
            let loss = self.backprop(sub, 0.0, dropout);
            if !deferred && !matches!(loss, Ok(l) if l.is_finite()) {
                self.settle_first_state(&mut st.tensors); // no step below to settle after
            }
            loss?
        } else {
            self.settle_first_state(&mut st.tensors);
            self.backprop(sub, options.l2, dropout)?
        };
        if !loss.is_finite() {
            st.rng = rng_before;
            return Err(Error::NonFinite(format!(
                "training diverged in epoch {epoch}, batch {b}: the loss is {loss}; the \
                 weights are those of the last batch that kept them finite (try a smaller \
                 learning rate)"
            )));
        }
        st.steps += 1;
        if !fused {
            if let Some(max_norm) = options.clip_norm {
                self.clip_gradients(max_norm);
            }
            self.apply_optimizer(st);
        }
        if panels && !deferred {
            self.settle_first_state(&mut st.tensors);
        }
        Ok(loss)
    }

    /// Makes the first layer's weights and its optimizer state (`tensors[0]`) live in panels
    /// (`TransposedFirst`), unless they are.
    pub(crate) fn transpose_first_state(&mut self, tensors: &mut [StatePair<T>]) {
        self.transpose_first_layer();
        if !self.work.first_t.state_live {
            let (n_in, n_out) = (self.layers[0].n_inputs(), self.layers[0].n_outputs());
            let len = panels::panels_len::<T>(n_out, n_in);
            relayout(&mut tensors[0].0, len, |w, p| {
                panels::pack(w, n_out, n_in, p)
            });
            self.work.first_t.state_live = true;
        }
    }

    /// Puts the first layer's weights and its optimizer state (`tensors[0]`) back from panels,
    /// where an epoch left them (`TransposedFirst`); nothing otherwise.
    pub(crate) fn settle_first_state(&mut self, tensors: &mut [StatePair<T>]) {
        if self.work.first_t.state_live {
            let (n_in, n_out) = (self.layers[0].n_inputs(), self.layers[0].n_outputs());
            relayout(&mut tensors[0].0, n_out * n_in, |p, w| {
                panels::unpack(p, n_out, n_in, w)
            });
            self.work.first_t.state_live = false;
        }
        self.settle_first_layer();
    }

    /// The optimizer's update of every layer from the gradients in the workspace.
    pub(crate) fn apply_optimizer(&mut self, st: &mut TrainingState<T>) {
        let threads = self.n_threads();
        let (t, lr, opt) = (st.steps, st.learning_rate, st.optimizer);
        // The first layer's W, gradient and state are all in panels, or none is.
        let first_in_panels = self.work.first_t.state_live;
        let (first_t, grads) = (&mut self.work.first_t, &mut self.work.grads);
        for (l, ((layer, grad), (w_state, b_state))) in self
            .layers
            .iter_mut()
            .zip(grads.iter_mut())
            .zip(st.tensors.iter_mut())
            .enumerate()
        {
            let (w, bias) = layer.parameters_mut();
            let w = if l == 0 && first_in_panels {
                first_t.wt_mut()
            } else {
                w
            };
            opt.step_threads(w, &mut grad.weights, w_state, t, lr, threads);
            opt.step(bias, &mut grad.biases, b_state, t, lr);
        }
    }

    /// Scales every gradient by max_norm / (norm + 1e-6) when that is below 1.
    pub(crate) fn clip_gradients(&mut self, max_norm: f64) {
        let mut s = T::ZERO;
        for g in &self.work.grads {
            for &v in g.weights.iter().chain(&g.biases) {
                s += v * v;
            }
        }
        let coef = T::from_f64(max_norm) / (s.sqrt() + T::from_f64(1e-6));
        if coef < T::ONE {
            for g in self.work.grads.iter_mut() {
                for v in g.weights.iter_mut().chain(g.biases.iter_mut()) {
                    *v *= coef;
                }
            }
        }
    }
}

/// Each buffer of `state` the optimizer uses (not empty) replaced by `convert(buffer, new)`
/// into a new one of `len` values: the first layer's state into or out of panels.
fn relayout<T: Real>(state: &mut TensorState<T>, len: usize, convert: impl Fn(&[T], &mut [T])) {
    for buf in state.buffers_mut() {
        if !buf.is_empty() {
            let mut new = vec![T::ZERO; len];
            convert(buf, &mut new);
            *buf = new;
        }
    }
}

/// Accuracy weights: one per sample, finite and >= 0.
fn check_accuracy_weights<T: Real>(w: &[T], n: usize) -> Result<()> {
    if w.len() != n {
        return value_error!(
            "accuracy weights: expected {n} (one per sample), got {}",
            w.len()
        );
    }
    if let Some((k, v)) = w
        .iter()
        .enumerate()
        .find(|(_, v)| !(v.is_finite() && **v >= T::ZERO))
    {
        return value_error!("accuracy weights must be finite and >= 0, got {v} at {k}");
    }
    Ok(())
}

/// Whether the epoch's steps are plain SGD, which takes its update inside the weight-gradient
/// products (`sgd_batch`) on batches whose rows are not split between threads.
fn fuses_sgd(options: &EpochOptions, optimizer: &Optimizer) -> bool {
    matches!(
        optimizer,
        Optimizer::Sgd { momentum, weight_decay, .. } if *momentum == 0.0 && *weight_decay == 0.0
    ) && options.l2 == 0.0
        && options.clip_norm.is_none()
}

/// `dst.copy_from_slice(src)` one cache line at a time, asking for the same line of `next` (the
/// row copied after this one) as each is copied. A shuffled batch's rows come from all over x,
/// out of DRAM: the hardware prefetcher only starts on a row once its first lines have missed,
/// so each row would begin with a stall. Asked one row ahead, its lines are on their way while
/// this row is copied: gathering an epoch's batches of 64 rows of 784 float64 took 40-43 ms
/// instead of 44-49 ms (best of 8, interleaved; the gather is ~8% of a batch-64 epoch). Only
/// timing changes: the values copied are the same.
fn copy_fetching_next<T: Copy>(dst: &mut [T], src: &[T], next: &[T]) {
    const LINE_BYTES: usize = 64;
    let line = (LINE_BYTES / std::mem::size_of::<T>()).max(1);
    let mut d = dst.chunks_exact_mut(line);
    let mut s = src.chunks_exact(line);
    for (i, (dc, sc)) in (&mut d).zip(&mut s).enumerate() {
        if let Some(ahead) = next.get(i * line) {
            prefetch(ahead);
        }
        dc.copy_from_slice(sc);
    }
    d.into_remainder().copy_from_slice(s.remainder());
}

/// Asks the CPU to bring the cache line holding `value` into cache (x86-64's PREFETCHT0; a
/// hint that never faults and changes nothing). Elsewhere nothing.
#[inline(always)]
fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it cannot fault and changes no value, and SSE (which
    // has it) is part of every x86-64 CPU; `value` is a live reference anyway.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// The buffers a shuffled epoch gathers its mini-batches into (x, dense targets, classes,
/// sample weights), reused from batch to batch.
type Gathered<T> = (Vec<T>, Vec<T>, Vec<usize>, Vec<T>);

/// Rows `start..end` of the epoch's `order` as a checked mini-batch: gathered into `buffers`
/// when shuffled, else a view of the batch. An unchecked batch (`epoch_batch`) is checked row
/// by row as it is gathered, while each row is in cache; an error names the row in the
/// caller's x (the epoch's guard then puts the network and the state back as they were).
fn minibatch<'b, T: Real>(
    batch: &Batch<'b, T>,
    order: &[usize],
    shuffled: bool,
    (start, end): (usize, usize),
    threads: usize,
    buffers: &'b mut Gathered<T>,
) -> Result<Batch<'b, T>> {
    let mut sub = if shuffled {
        let rows = &order[start..end];
        let (xb, tb, cb, wb) = buffers;
        let (sub, bad) = gather(threads, batch, rows, (xb, tb, cb, wb));
        if let Some(pos) = bad {
            non_finite_at(sub.x, pos, |k| rows[k])?;
        }
        sub
    } else {
        let sub = batch.rows_range(start, end);
        if sub.x_unchecked {
            check_finite_rows(sub.x, |k| start + k)?;
        }
        sub
    };
    sub.x_unchecked = false;
    Ok(sub)
}

/// Copies the rows `index` of a batch into reused buffers and returns a batch over them; for
/// a batch whose inputs are unchecked, also the position in the gathered x of its first
/// non-finite value, if any (each row is checked as it is copied, while it is in cache).
#[allow(clippy::type_complexity)]
fn gather<'b, T: Real>(
    threads: usize,
    batch: &Batch<'_, T>,
    index: &[usize],
    (xb, tb, cb, wb): (
        &'b mut Vec<T>,
        &'b mut Vec<T>,
        &'b mut Vec<usize>,
        &'b mut Vec<T>,
    ),
) -> (Batch<'b, T>, Option<usize>) {
    let x = batch.x;
    let cols = x.cols();
    let check = batch.x_unchecked;
    // Copies `rows` into `dst`; the first non-finite value's position in `dst` when checking.
    let copy = |dst: &mut [T], rows: &[usize]| -> Option<usize> {
        let mut bad = None;
        for (j, (d, &k)) in dst.chunks_exact_mut(cols).zip(rows).enumerate() {
            match rows.get(j + 1) {
                Some(&next) => copy_fetching_next(d, x.row(k), x.row(next)),
                None => d.copy_from_slice(x.row(k)),
            }
            if check && bad.is_none() {
                bad = first_non_finite(d).map(|i| j * cols + i);
            }
        }
        bad
    };
    xb.resize(index.len() * cols, T::ZERO);
    let bad = if threads > 1 && index.len() * cols >= PARALLEL_GATHER_ABOVE {
        // The rows come from all over x (DRAM, not cache): with the products split across
        // threads, one thread copying them all is the largest serial part of a step.
        let rows_per = index.len().div_ceil(threads);
        let shares: Vec<_> = xb
            .chunks_mut(rows_per * cols)
            .zip(index.chunks(rows_per))
            .collect();
        let found = map_parts(shares, |(dst, rows)| copy(dst, rows));
        // The first bad value of the first share that has one, as one thread finds it.
        found
            .into_iter()
            .enumerate()
            .find_map(|(i, bad)| bad.map(|pos| i * rows_per * cols + pos))
    } else {
        copy(xb, index)
    };
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
    let sub = batch.with_parts(
        MatRef::new(xb, index.len(), x.cols()).expect("gathered rows"),
        t,
        weights,
    );
    (sub, bad)
}

#[cfg(test)]
mod tests {
    use super::copy_fetching_next;

    /// The divergence guard replays an epoch one checked step at a time (guard.rs), and those
    /// steps must round as the fast run's did: a step that may not leave the first layer (and
    /// its optimizer state) in panels still computes in them, and settles after itself. Plain
    /// SGD (the fused step) and Adam (the gradient, then the optimizer's step).
    #[test]
    fn a_checked_step_rounds_as_a_deferred_one() {
        use crate::{Activation, EpochOptions, Loss, MatRef, NeuralNetwork, Optimizer};
        use crate::{Targets, TrainingState};
        let net = NeuralNetwork::<f64>::new(
            &[600, 21, 5],
            &[Activation::Relu],
            None,
            Loss::CrossEntropy,
            1,
        )
        .unwrap();
        let x: Vec<f64> = (0..32 * 600)
            .map(|i| ((i * 7919) % 1000) as f64 / 500.0 - 1.0)
            .collect();
        let classes: Vec<usize> = (0..32).map(|i| (i * 7) % 5).collect();
        let options = EpochOptions::new(16);
        let run = |opt: Optimizer, deferred: bool| {
            let fused = super::fuses_sgd(&options, &opt);
            let mut net = net.clone();
            let mut st = TrainingState::new(opt, 0, 2).unwrap();
            for r in [0, 16] {
                let xm = MatRef::new(&x[r * 600..(r + 16) * 600], 16, 600).unwrap();
                let batch = net
                    .batch(xm, Targets::Classes(&classes[r..r + 16]))
                    .unwrap();
                net.minibatch_step(&batch, &options, (fused, deferred), &mut st, (0, r))
                    .unwrap();
                let left = deferred && super::in_panels();
                assert_eq!(net.work.first_t.live, left, "W left in panels");
                assert_eq!(net.work.first_t.state_live, left && !fused, "the state too");
            }
            net.settle_first_state(&mut st.tensors);
            let mut bits: Vec<u64> = net
                .parameters()
                .into_iter()
                .flat_map(|(w, b)| w.into_iter().chain(b))
                .map(f64::to_bits)
                .collect();
            for (w, _) in st.tensor_states() {
                bits.extend(
                    w.buffers()
                        .into_iter()
                        .flat_map(|(_, v)| v.iter().map(|x| x.to_bits())),
                );
            }
            (bits, net)
        };
        for opt in [Optimizer::sgd(0.05), Optimizer::adam(0.01)] {
            let (fast, stepped) = run(opt, true);
            assert!(fast == run(opt, false).0, "{}", opt.name());
            assert!(
                stepped.parameters() != net.parameters(),
                "{}: the steps changed the weights",
                opt.name()
            );
        }
    }

    #[test]
    fn copy_fetching_next_copies_every_value_whatever_the_length() {
        // Lengths below, at and past a cache line (8 float64 / 16 float32), with remainders,
        // and a next row shorter or longer than the one copied.
        for len in [0, 1, 7, 8, 9, 16, 17, 100, 784] {
            let src: Vec<f64> = (0..len).map(|i| i as f64 * 0.5 - 3.0).collect();
            let mut dst = vec![f64::NAN; len];
            copy_fetching_next(&mut dst, &src, &[1.0; 3]);
            assert_eq!(dst, src, "float64, {len} values");
            let src: Vec<f32> = (0..len).map(|i| i as f32 - 1.5).collect();
            let mut dst = vec![f32::NAN; len];
            copy_fetching_next(&mut dst, &src, &vec![2.0; len + 40]);
            assert_eq!(dst, src, "float32, {len} values");
        }
    }
}
