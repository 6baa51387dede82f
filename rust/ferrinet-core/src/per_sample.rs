//! Per-sample training, the article's loop (`train`, `train_steps*`): one fused SGD step per
//! sample (`sgd_sample`), whose first layer takes its update in one of three ways
//! (`FirstLayer`): now, deferred into the next sample's forward pass, or within a block of
//! samples (`sgd_block`, for a first layer too large for the fastest caches).

pub(crate) mod sgd_block;

use std::cell::Cell;
use std::ops::Range;

use crate::batch::{check_learning_rate, Batch};
use crate::error::{value_error, Error, Result};
use crate::float::Real;
use crate::kernels;
use crate::network::{forward_sample, NeuralNetwork, Workspace};
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
        self.train_steps_on(batch, progress, steps, learning_rate, stop, false)
    }

    /// `train_steps_until`, with the baseline kernels whatever the CPU when `baseline`
    /// (`run_steps`; for the tests, which cover that copy on any machine).
    fn train_steps_on(
        &mut self,
        batch: &Batch<T>,
        progress: &mut TrainProgress,
        steps: usize,
        learning_rate: f64,
        stop: &mut dyn FnMut() -> bool,
        baseline: bool,
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
        self.size_sample_rows()?;
        // The sample whose first-layer update is still to be made (fused into the next
        // sample's forward pass, see `sgd_sample`); shared by the steps and the flush.
        let pending = Cell::new(None);
        let mut steps_run = StepRun {
            batch,
            lr,
            steps,
            stop,
            pending: &pending,
            blocked: self.blocks_first_layer(),
            baseline,
        };
        self.guarded_runs(
            progress,
            steps,
            |net, progress, range, checked| net.run_steps(&mut steps_run, progress, range, checked),
            |net, _| {
                if let Some(prev) = pending.take() {
                    let (x_prev, delta) = (batch.x.row(prev), net.work.delta[0].row(0));
                    // the steps' kernels: the CPU's (dispatched), or the baseline's
                    match baseline {
                        false => net.layers[0].sgd_sample(x_prev, delta, lr, None),
                        true => net.layers[0].sgd_row::<false>(x_prev, delta, lr, None),
                    }
                }
                net.work.block.flush(&mut net.layers[0]);
            },
        )
    }

    /// Sizes the rows the per-sample steps work in (z, a and delta of every layer: (1,
    /// n_outputs)) once per call, so that the steps take them as they are.
    pub(crate) fn size_sample_rows(&mut self) -> Result<()> {
        let Workspace { z, a, delta, .. } = &mut self.work;
        let rows = z.iter_mut().zip(a.iter_mut()).zip(delta.iter_mut());
        for (layer, ((z, a), delta)) in self.layers.iter().zip(rows) {
            let n_out = layer.n_outputs();
            z.resize(1, n_out)?;
            a.resize(1, n_out)?;
            delta.resize(1, n_out)?;
        }
        Ok(())
    }

    /// Steps `range` of a `train_steps_until` call (`step_loop`), with the kernels compiled for
    /// this CPU: the loop is compiled twice, once for AVX2+FMA and once for the baseline target,
    /// and the CPU picks one here, once per call rather than once per kernel
    /// (`kernels::per_cpu`). `run.baseline` takes the baseline copy on any CPU (tests).
    fn run_steps(
        &mut self,
        run: &mut StepRun<T>,
        progress: &mut TrainProgress,
        range: Range<usize>,
        checked: bool,
    ) -> Result<()> {
        if !run.baseline && kernels::avx2_fma() {
            // SAFETY: the CPU has the features the copy was compiled for.
            #[cfg(target_arch = "x86_64")]
            return unsafe { self.step_loop_avx2(run, progress, range, checked) };
        }
        self.step_loop::<false>(run, progress, range, checked)
    }

    /// `step_loop` compiled for AVX2+FMA; callers check that the CPU has them.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn step_loop_avx2(
        &mut self,
        run: &mut StepRun<T>,
        progress: &mut TrainProgress,
        range: Range<usize>,
        checked: bool,
    ) -> Result<()> {
        self.step_loop::<true>(run, progress, range, checked)
    }

    /// Steps `range` (indices into the call's steps) in order, each `sgd_sample` on the next
    /// sample of `progress`; `checked` steps are the guard's replay (first layer `Now`).
    #[inline(always)]
    fn step_loop<const FMA: bool>(
        &mut self,
        run: &mut StepRun<T>,
        progress: &mut TrainProgress,
        range: Range<usize>,
        checked: bool,
    ) -> Result<()> {
        let n = run.batch.len();
        for i in range {
            if i > 0 && !checked && (run.stop)() {
                return Err(Error::Interrupted);
            }
            let k = progress.next_sample;
            let left = run.steps - i;
            let first = if checked {
                FirstLayer::Now
            } else if run.blocked && (self.work.block.is_open() || left >= 2) {
                if !self.work.block.is_open() {
                    let rows = (0..left.min(TRAIN_BLOCK)).map(|j| (k + j) % n);
                    self.work.block.open(&self.layers[0], run.batch.x, rows)?;
                }
                FirstLayer::Blocked
            } else {
                FirstLayer::Deferred(run.pending)
            };
            let loss = self
                .sgd_sample::<FMA>(run.batch, k, run.lr, first)
                .map_err(|e| match e {
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
        }
        Ok(())
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

    /// One fused per-sample SGD step on sample k of the batch, with the kernels of `FMA`
    /// (`kernels::per_cpu`), in the rows `size_sample_rows` sized; Err(NonFinite) on a
    /// non-finite loss, before any change of its own.
    ///
    /// `first` says how the first layer takes its part. `Deferred`: its update is not made at
    /// the end of the step; the sample's index is left in the cell, and the next step makes
    /// the update inside its own forward pass through the first layer
    /// (`Layer::sgd_then_forward`: one pass over the largest weight matrix per sample instead
    /// of two). The arithmetic is that of `Now`; the caller flushes the last pending update.
    /// `Blocked`: the step is one of the open block's (sgd_block.rs), which the caller opened
    /// and flushes if the run stops inside it.
    #[inline(always)]
    fn sgd_sample<const FMA: bool>(
        &mut self,
        batch: &Batch<T>,
        k: usize,
        lr: T,
        first: FirstLayer,
    ) -> Result<f64> {
        // sample k: its row of x, and its targets read at k (no `Batch::rows_range`, whose
        // targets and weights cost more than a narrow step's arithmetic)
        let x_k = batch.x.row(k);
        let layers = &mut self.layers;
        let Workspace {
            z, a, delta, block, ..
        } = &mut self.work;
        // The first layer's forward pass where this step takes it its own way; then the rest.
        let first_done = match first {
            FirstLayer::Blocked => {
                let (z, a) = (z[0].as_mut_slice(), a[0].as_mut_slice());
                block.forward_next::<FMA>(&layers[0], z, a);
                true
            }
            FirstLayer::Deferred(pending) => match pending.take() {
                Some(prev) => {
                    let (z, a) = (z[0].as_mut_slice(), a[0].as_mut_slice());
                    let x_prev = batch.x.row(prev);
                    layers[0].sgd_then_forward::<FMA>(x_prev, delta[0].as_slice(), lr, x_k, z, a);
                    true
                }
                None => false,
            },
            FirstLayer::Now => false,
        };
        forward_sample::<T, FMA>(layers, x_k, z, a, usize::from(first_done));
        let last = layers.len() - 1;
        let (z_out, a_out) = (z[last].as_slice(), a[last].as_slice());
        let loss = self.loss.value_sample(z_out, a_out, &batch.t, k);
        if !loss.is_finite() {
            return Err(Error::NonFinite(format!("the loss is {loss}")));
        }
        let out_act = layers[last].activation();
        let d_out = delta[last].as_mut_slice();
        self.loss
            .seed_sample(z_out, a_out, &batch.t, k, out_act, d_out);
        for l in (1..layers.len()).rev() {
            let (below, here) = delta.split_at_mut(l);
            let dx = below[l - 1].as_mut_slice();
            dx.fill(T::ZERO);
            layers[l].sgd_row::<FMA>(a[l - 1].as_slice(), here[0].as_slice(), lr, Some(dx));
            let below_act = layers[l - 1].activation();
            below_act.scale_by_derivative(dx, z[l - 1].as_slice(), a[l - 1].as_slice());
        }
        let delta_first = delta[0].as_slice();
        match first {
            FirstLayer::Deferred(pending) => pending.set(Some(k)),
            FirstLayer::Blocked => block.record(&mut layers[0], delta_first, lr),
            FirstLayer::Now => layers[0].sgd_row::<FMA>(x_k, delta_first, lr, None),
        }
        Ok(loss.to_f64())
    }
}

/// What the steps of one `train_steps_until` call share (`run_steps`).
struct StepRun<'r, 'b, T> {
    batch: &'r Batch<'b, T>,
    lr: T,
    /// The call's step count (a block is opened only with two steps or more left).
    steps: usize,
    stop: &'r mut dyn FnMut() -> bool,
    pending: &'r Cell<Option<usize>>,
    /// Whether the first layer takes its steps in blocks (`blocks_first_layer`).
    blocked: bool,
    /// The baseline kernels whatever the CPU (tests).
    baseline: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::kernels::per_cpu;
    use crate::loss::{Loss, Targets};
    use crate::matrix::MatRef;
    use crate::rng::SplitMix64;

    type Params<T> = Vec<(Vec<T>, Vec<T>)>;

    /// The article's per-sample loop written out kernel by kernel with the kernel set `FMA`
    /// (the per-kernel composition `train` was before its loop was dispatched once per call):
    /// forward, the loss and its seed, then from the top layer down each layer's fused step
    /// with dx from the weights before it. `steps` steps cycling over the samples; the
    /// parameters after them and the mean loss of each completed epoch.
    fn kernel_by_kernel<T: Real, const FMA: bool>(
        net: &NeuralNetwork<T>,
        x: MatRef<T>,
        t: &Targets<T>,
        steps: usize,
        lr: T,
    ) -> (Params<T>, Vec<f64>) {
        let (layers, loss) = (net.layers(), net.loss());
        let mut params = net.parameters();
        let (n, last) = (x.rows(), layers.len() - 1);
        let (mut losses, mut total) = (Vec::new(), 0.0);
        for i in 0..steps {
            let k = i % n;
            let (mut zs, mut acts): (Vec<Vec<T>>, Vec<Vec<T>>) = (Vec::new(), Vec::new());
            for (l, layer) in layers.iter().enumerate() {
                let input = if l == 0 { x.row(k) } else { &acts[l - 1] };
                let (w, b) = &params[l];
                let mut z = vec![T::ZERO; b.len()];
                per_cpu::gemv_bias::<T, FMA>(w, input, b, &mut z);
                let mut a = vec![T::ZERO; b.len()];
                layer.activation().apply(&z, &mut a, b.len());
                zs.push(z);
                acts.push(a);
            }
            total += loss.value_sample(&zs[last], &acts[last], t, k).to_f64();
            let mut delta = vec![T::ZERO; zs[last].len()];
            let out_act = layers[last].activation();
            loss.seed_sample(&zs[last], &acts[last], t, k, out_act, &mut delta);
            for l in (0..layers.len()).rev() {
                let (w, b) = &mut params[l];
                if l == 0 {
                    per_cpu::sgd_rank1::<T, FMA>(w, b, &delta, x.row(k), lr, None);
                    break;
                }
                let mut dx = vec![T::ZERO; acts[l - 1].len()];
                per_cpu::sgd_rank1::<T, FMA>(w, b, &delta, &acts[l - 1], lr, Some(&mut dx));
                let below = layers[l - 1].activation();
                below.scale_by_derivative(&mut dx, &zs[l - 1], &acts[l - 1]);
                delta = dx;
            }
            if k == n - 1 {
                losses.push(total / n as f64);
                total = 0.0;
            }
        }
        (params, losses)
    }

    fn bits<T: Real>(params: &Params<T>) -> Vec<u64> {
        let each = |v: &Vec<T>| v.iter().map(|x| x.to_f64().to_bits()).collect::<Vec<_>>();
        params
            .iter()
            .flat_map(|(w, b)| [each(w), each(b)].concat())
            .collect()
    }

    /// (sizes, hidden activation, loss): narrow and wide rows, one and two hidden layers, each
    /// loss with its own output (and a dense cross-entropy target).
    const CASES: [(&[usize], Activation, Loss); 6] = [
        (&[2, 8, 1], Activation::Relu, Loss::Mse),
        (&[3, 5, 4, 2], Activation::Tanh, Loss::CrossEntropy),
        (&[1, 32, 32, 1], Activation::Relu, Loss::Mse),
        (&[13, 7, 3], Activation::Sigmoid, Loss::BinaryCrossEntropy),
        (&[9, 12, 3], Activation::LeakyRelu, Loss::Poisson),
        (&[17, 10, 4], Activation::Relu, Loss::CrossEntropy),
    ];

    /// Each case's network (seeded) and data: 6 samples, inputs in (-1, 1), targets the
    /// loss accepts (class indices for the first cross-entropy case, probability rows for the
    /// second).
    fn case<T: Real>(c: usize) -> (NeuralNetwork<T>, Vec<T>, Vec<T>, Vec<usize>) {
        let (sizes, act, loss) = CASES[c];
        let hidden = vec![act; sizes.len() - 2];
        let net = NeuralNetwork::<T>::new(sizes, &hidden, None, loss, 40 + c as u64).unwrap();
        let (n, n_in, m) = (6, sizes[0], *sizes.last().unwrap());
        let mut rng = SplitMix64::new(50 + c as u64);
        let mut draw = |lo: f64, hi: f64| T::from_f64(lo + (hi - lo) * rng.uniform());
        let x: Vec<T> = (0..n * n_in).map(|_| draw(-1.0, 1.0)).collect();
        let mut dense: Vec<T> = (0..n * m).map(|_| draw(0.0, 1.0)).collect();
        if loss == Loss::BinaryCrossEntropy {
            dense
                .iter_mut()
                .for_each(|v| *v = T::from_f64(v.to_f64().round()));
        } else if loss == Loss::CrossEntropy {
            for row in dense.chunks_exact_mut(m) {
                let s = row.iter().fold(T::ZERO, |s, &v| s + v);
                row.iter_mut().for_each(|v| *v /= s);
            }
        }
        let classes = (0..n).map(|k| (k * 7) % m).collect();
        (net, x, dense, classes)
    }

    fn targets<'a, T: Real>(c: usize, dense: &'a [T], classes: &'a [usize]) -> Targets<'a, T> {
        let (sizes, _, loss) = CASES[c];
        let m = *sizes.last().unwrap();
        if loss == Loss::CrossEntropy && c == 1 {
            Targets::Classes(classes)
        } else {
            Targets::Dense(MatRef::new(dense, dense.len() / m, m).unwrap())
        }
    }

    /// `train`, whose loop is dispatched once per call, gives the bits of the same steps made
    /// kernel by kernel, weights and epoch losses, with this CPU's kernels and (forced) with
    /// the baseline ones, in f64 and f32: the single `#[target_feature]` entry changes no
    /// rounding, and the baseline copy (which this machine never picks) is right.
    fn one_dispatch_is_kernel_by_kernel<T: Real>() {
        let lr = T::from_f64(0.05);
        for (c, &(sizes, _, _)) in CASES.iter().enumerate() {
            let (net0, x, dense, classes) = case::<T>(c);
            let t = targets(c, &dense, &classes);
            let xm = MatRef::new(&x, 6, sizes[0]).unwrap();
            let steps = 15; // two epochs and a half: the pending update is flushed mid-epoch
            for baseline in [false, true] {
                let mut net = net0.clone();
                let batch = net.batch(xm, t).unwrap();
                let mut progress = TrainProgress::default();
                net.train_steps_on(&batch, &mut progress, steps, 0.05, &mut || false, baseline)
                    .unwrap();
                let (expected, losses) = if baseline || !kernels::avx2_fma() {
                    kernel_by_kernel::<T, false>(&net0, xm, &t, steps, lr)
                } else {
                    kernel_by_kernel::<T, true>(&net0, xm, &t, steps, lr)
                };
                let what = format!("case {c} {}, baseline {baseline}", T::NAME);
                assert_eq!(bits(&net.parameters()), bits(&expected), "{what}: weights");
                let loss_bits = |v: &[f64]| v.iter().map(|l| l.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    loss_bits(&progress.epoch_losses),
                    loss_bits(&losses),
                    "{what}: epoch losses"
                );
            }
        }
    }

    #[test]
    fn one_dispatch_per_call_gives_the_bits_of_one_per_kernel() {
        one_dispatch_is_kernel_by_kernel::<f64>();
        one_dispatch_is_kernel_by_kernel::<f32>();
    }

    /// One-sample `backward` (`backward_sample`, dispatched once per call too) gives the bits
    /// of a one-sample `train` step, with this CPU's kernels and with the baseline ones.
    fn backward_is_one_train_step<T: Real>() {
        for (c, &(sizes, _, _)) in CASES.iter().enumerate() {
            let (net0, x, dense, classes) = case::<T>(c);
            let t = targets(c, &dense, &classes);
            let xm = MatRef::new(&x, 6, sizes[0]).unwrap();
            for baseline in [false, true] {
                let (mut stepped, mut trained) = (net0.clone(), net0.clone());
                for k in 0..6 {
                    let one = stepped
                        .batch(xm.rows_range(k, k + 1), t.rows_range(k, k + 1))
                        .unwrap();
                    let loss = stepped.backward_sample(&one, 0.05, baseline).unwrap();
                    assert!(loss.is_some(), "case {c}: a small step is proven finite");
                    let mut progress = TrainProgress::default();
                    trained
                        .train_steps_on(&one, &mut progress, 1, 0.05, &mut || false, baseline)
                        .unwrap();
                    assert_eq!(
                        loss.map(f64::to_bits),
                        Some(progress.epoch_losses[0].to_bits()),
                        "case {c}, sample {k}: the loss"
                    );
                    assert_eq!(
                        bits(&stepped.parameters()),
                        bits(&trained.parameters()),
                        "case {c} {}, sample {k}, baseline {baseline}",
                        T::NAME
                    );
                }
            }
        }
    }

    /// A first layer taken in blocks (sgd_block.rs, whose products do not depend on the kernel
    /// set) steps through the baseline copy too, and agrees with the CPU's to rounding.
    #[test]
    fn blocked_steps_run_with_either_kernels() {
        let net0 =
            NeuralNetwork::<f64>::new(&[256, 64, 3], &[Activation::Relu], None, Loss::Mse, 3)
                .unwrap();
        assert_eq!(
            net0.train_granule(),
            TRAIN_BLOCK,
            "the first layer is blocked"
        );
        let mut rng = SplitMix64::new(4);
        let x: Vec<f64> = (0..40 * 256).map(|_| rng.uniform() - 0.5).collect();
        let t: Vec<f64> = (0..40 * 3).map(|_| rng.uniform()).collect();
        let (xm, tm) = (
            MatRef::new(&x, 40, 256).unwrap(),
            MatRef::new(&t, 40, 3).unwrap(),
        );
        let run = |baseline: bool| {
            let mut net = net0.clone();
            let batch = net.batch(xm, Targets::Dense(tm)).unwrap();
            let mut progress = TrainProgress::default();
            net.train_steps_on(&batch, &mut progress, 70, 0.01, &mut || false, baseline)
                .unwrap();
            net.parameters()
        };
        let (cpu, baseline) = (run(false), run(true));
        for ((w1, b1), (w2, b2)) in cpu.iter().zip(&baseline) {
            for (p, q) in w1.iter().chain(b1).zip(w2.iter().chain(b2)) {
                assert!((p - q).abs() <= 1e-12 * (1.0 + q.abs()), "{p} vs {q}");
            }
        }
    }

    #[test]
    fn one_sample_backward_is_a_train_step_with_either_kernels() {
        backward_is_one_train_step::<f64>();
        backward_is_one_train_step::<f32>();
    }
}
