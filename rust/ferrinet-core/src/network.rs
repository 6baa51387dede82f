//! The article's `NeuralNetwork`: layers applied in order, with the backward pass done right.
//!
//! One forward pass caches every layer's input, z and a (erratum 1); backward computes every
//! gradient from the weights of that forward pass (erratum 3) and only then updates; the seed
//! of the chain rule is the true derivative of the reported mean loss (erratum 7).

use crate::activation::Activation;
use crate::error::{value_error, Error, Result};
use crate::layer::{Layer, LayerGradient};
use crate::loss::{Loss, Targets};
use crate::matrix::{MatRef, Matrix};
use crate::rng::SplitMix64;

/// Inputs and targets checked against one network: shapes, finiteness, ranges. Building one is
/// the only validation; the methods that take it do no further checks on the data.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    x: MatRef<'a>,
    t: Targets<'a>,
    checked_for: Signature, // the network it was checked against
}

/// What a `Batch` was checked against: methods refuse a batch checked for another shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Signature {
    n_inputs: usize,
    n_outputs: usize,
    loss: Loss,
}

impl<'a> Batch<'a> {
    pub fn len(&self) -> usize {
        self.x.rows()
    }

    pub fn is_empty(&self) -> bool {
        self.x.rows() == 0
    }

    pub fn inputs(&self) -> MatRef<'a> {
        self.x
    }

    /// Samples `start..end`, still checked.
    pub fn rows_range(&self, start: usize, end: usize) -> Batch<'a> {
        Batch {
            x: self.x.rows_range(start, end),
            t: self.t.rows_range(start, end),
            checked_for: self.checked_for,
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

/// Buffers reused across calls so the training loop allocates nothing per step.
#[derive(Debug, Default)]
struct Workspace {
    z: Vec<Matrix>,     // per layer (n, n_out): pre-activations of the last forward pass
    a: Vec<Matrix>,     // per layer (n, n_out): activations = the next layer's input
    delta: Vec<Matrix>, // per layer (n, n_out): dL/dz
    grads: Vec<LayerGradient>,
}

impl Workspace {
    fn for_layers(n_layers: usize) -> Self {
        let fresh = || (0..n_layers).map(|_| Matrix::default()).collect::<Vec<_>>();
        Workspace {
            z: fresh(),
            a: fresh(),
            delta: fresh(),
            grads: vec![LayerGradient::default(); n_layers],
        }
    }
}

#[derive(Debug)]
pub struct NeuralNetwork {
    layers: Vec<Layer>,
    loss: Loss,
    work: Workspace,
}

impl Clone for NeuralNetwork {
    fn clone(&self) -> Self {
        NeuralNetwork {
            layers: self.layers.clone(),
            loss: self.loss,
            work: Workspace::for_layers(self.layers.len()),
        }
    }
}

impl NeuralNetwork {
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
        check_parameter_count(sizes)?;

        let mut rng = SplitMix64::new(seed);
        let mut layers = Vec::with_capacity(sizes.len() - 1);
        for (l, pair) in sizes.windows(2).enumerate() {
            let activation = hidden_activations.get(l).copied().unwrap_or(output);
            layers.push(Layer::new(pair[0], pair[1], activation, &mut rng)?);
        }
        Self::from_layers(layers, loss)
    }

    /// A network from ready layers; checks that they chain and that the loss fits the output.
    pub fn from_layers(layers: Vec<Layer>, loss: Loss) -> Result<Self> {
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
        Ok(NeuralNetwork { layers, loss, work })
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    pub fn loss(&self) -> Loss {
        self.loss
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
    pub fn check_inputs(&self, x: MatRef) -> Result<()> {
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
        if let Some(pos) = x.as_slice().iter().position(|v| !v.is_finite()) {
            return value_error!(
                "inputs must be finite, got {} at [{}, {}]",
                x.as_slice()[pos],
                pos / x.cols(),
                pos % x.cols()
            );
        }
        Ok(())
    }

    /// Checks inputs and targets together; the result is accepted by the training methods.
    pub fn batch<'a>(&self, x: MatRef<'a>, t: Targets<'a>) -> Result<Batch<'a>> {
        self.check_inputs(x)?;
        self.loss.check_targets(&t, x.rows(), self.n_outputs())?;
        Ok(Batch {
            x,
            t,
            checked_for: self.signature(),
        })
    }

    fn signature(&self) -> Signature {
        Signature {
            n_inputs: self.n_inputs(),
            n_outputs: self.n_outputs(),
            loss: self.loss,
        }
    }

    /// A batch is only valid for networks of the shape and loss it was checked against.
    fn check_batch(&self, batch: &Batch) -> Result<()> {
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
    pub fn predict(&self, x: MatRef) -> Result<Matrix> {
        self.check_inputs(x)?;
        let (mut z, mut a, mut input) = (Matrix::default(), Matrix::default(), None::<Matrix>);
        for layer in &self.layers {
            layer.forward(input.as_ref().map_or(x, Matrix::view), &mut z, &mut a)?;
            // The activation becomes the next input; the old input buffer is reused for a.
            let previous = input.replace(std::mem::take(&mut a));
            a = previous.unwrap_or_default();
        }
        Ok(input.expect("a network has at least one layer"))
    }

    /// The mean loss of a batch (no state changes).
    pub fn compute_loss(&self, batch: &Batch) -> Result<f64> {
        self.check_batch(batch)?;
        let mut work = Workspace::for_layers(self.layers.len());
        forward_cached(&self.layers, batch.x, &mut work)?;
        let last = self.layers.len() - 1;
        Ok(self
            .loss
            .value(work.z[last].view(), work.a[last].view(), &batch.t))
    }

    /// (loss, [dW, db per layer]) of the mean loss over the batch; weights unchanged.
    pub fn gradients(&mut self, batch: &Batch) -> Result<(f64, Vec<LayerGradient>)> {
        let loss = self.backprop(batch)?;
        Ok((loss, self.work.grads.clone()))
    }

    /// One SGD step on the batch's mean loss; returns the loss of the forward pass it did
    /// before the step (erratum 8: no second forward pass is needed to report it).
    /// On an allocation error the weights are unchanged.
    /// A step that would make the loss or a weight non-finite is refused with
    /// `Error::NonFinite` and the weights stay as they were.
    pub fn backward(&mut self, batch: &Batch, learning_rate: f64) -> Result<f64> {
        check_learning_rate(learning_rate)?;
        self.checked_step(batch, learning_rate)
            .map_err(|e| match e {
                Error::NonFinite(msg) => {
                    Error::NonFinite(format!("{msg}; the step was not applied"))
                }
                other => other,
            })
    }

    /// The article's loop: per-sample SGD in order, `epochs` times; the mean loss per epoch.
    pub fn train(&mut self, batch: &Batch, epochs: usize, learning_rate: f64) -> Result<Vec<f64>> {
        let mut progress = TrainProgress::default();
        let steps = epochs.saturating_mul(batch.len());
        self.train_steps(batch, &mut progress, steps, learning_rate)?;
        Ok(progress.epoch_losses)
    }

    /// `steps` more per-sample SGD steps of `train`, continuing from `progress` (epochs wrap
    /// around the batch). Callers that must pause between chunks, to check for Ctrl-C say, call
    /// it repeatedly and get the same result as one `train`, bit for bit.
    pub fn train_steps(
        &mut self,
        batch: &Batch,
        progress: &mut TrainProgress,
        steps: usize,
        learning_rate: f64,
    ) -> Result<()> {
        check_learning_rate(learning_rate)?;
        self.check_batch(batch)?;
        let n = batch.len();
        if progress.next_sample >= n && progress.next_sample != 0 {
            return value_error!(
                "progress is at sample {} of a batch of {n}: it belongs to another batch",
                progress.next_sample
            );
        }
        for _ in 0..steps {
            let k = progress.next_sample;
            let sample = batch.rows_range(k, k + 1);
            let loss = self
                .checked_step(&sample, learning_rate)
                .map_err(|e| match e {
                    Error::NonFinite(msg) => Error::NonFinite(format!(
                        "training diverged at epoch {}, sample {k}: {msg}; the weights are those \
                     before that step (try a smaller learning_rate)",
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

    /// Copies of (W, b) per layer.
    pub fn parameters(&self) -> Vec<(Vec<f64>, Vec<f64>)> {
        self.layers
            .iter()
            .map(|l| (l.weights().to_vec(), l.biases().to_vec()))
            .collect()
    }

    /// Replaces every layer's (W, b); all are checked before any is changed.
    pub fn set_parameters(&mut self, params: Vec<(Vec<f64>, Vec<f64>)>) -> Result<()> {
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

    /// backprop + SGD update, refusing (with the weights untouched) a step whose loss or
    /// updated weights would not be finite. The Err says only what went wrong.
    fn checked_step(&mut self, batch: &Batch, learning_rate: f64) -> Result<f64> {
        let loss = self.backprop(batch)?;
        if !loss.is_finite() {
            return Err(Error::NonFinite(format!("the loss is {loss}")));
        }
        // A read-only pass first, so that a refused step leaves no weight changed.
        let stays_finite = |p: &[f64], g: &[f64]| {
            p.iter().zip(g).fold(true, |ok, (&w, &g)| {
                ok & (w - learning_rate * g).is_finite()
            })
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
                "the update would make a weight non-finite (loss {loss})"
            )));
        }
        self.apply_gradients(learning_rate);
        Ok(loss)
    }

    /// Forward with caching, loss, then every layer's gradient into the workspace.
    fn backprop(&mut self, batch: &Batch) -> Result<f64> {
        self.check_batch(batch)?;
        let (layers, work) = (&self.layers, &mut self.work);
        forward_cached(layers, batch.x, work)?;
        let last = layers.len() - 1;
        let (z_out, a_out) = (work.z[last].view(), work.a[last].view());
        let loss = self.loss.value(z_out, a_out, &batch.t);
        work.delta[last].resize(batch.len(), layers[last].n_outputs())?;
        self.loss.seed(
            z_out,
            a_out,
            &batch.t,
            layers[last].activation(),
            &mut work.delta[last],
        );

        for l in (0..layers.len()).rev() {
            let input = if l == 0 {
                batch.x
            } else {
                work.a[l - 1].view()
            };
            let (below, here) = work.delta.split_at_mut(l);
            let dx = below.last_mut(); // None for the first layer: its dx is not needed
            let has_dx = dx.is_some();
            layers[l].backward(input, here[0].view(), &mut work.grads[l], dx)?;
            if has_dx {
                // delta of the layer below = dx * f'(z) of that layer.
                let below_act = layers[l - 1].activation();
                let (z, a, d) = (&work.z[l - 1], &work.a[l - 1], &mut work.delta[l - 1]);
                for ((dv, &zv), &av) in d
                    .as_mut_slice()
                    .iter_mut()
                    .zip(z.as_slice())
                    .zip(a.as_slice())
                {
                    *dv *= below_act.derivative(zv, av);
                }
            }
        }
        Ok(loss)
    }

    fn apply_gradients(&mut self, learning_rate: f64) {
        for (layer, grad) in self.layers.iter_mut().zip(&self.work.grads) {
            layer.apply_gradient(grad, learning_rate);
        }
    }
}

fn forward_cached(layers: &[Layer], x: MatRef, work: &mut Workspace) -> Result<()> {
    for (l, layer) in layers.iter().enumerate() {
        let (before, from_here) = work.a.split_at_mut(l);
        let input = if l == 0 { x } else { before[l - 1].view() };
        layer.forward(input, &mut work.z[l], &mut from_here[0])?;
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
fn check_parameter_count(sizes: &[usize]) -> Result<()> {
    let mut total: u128 = 0;
    for pair in sizes.windows(2) {
        total += pair[0] as u128 * pair[1] as u128 + pair[1] as u128;
    }
    // Weights and their gradients, 8 bytes each.
    let bytes = total * 16;
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
