//! `NeuralNetwork::trace`: the forward and backward pass of ONE sample with every intermediate
//! kept, for teaching and debugging ("the backward pass made visible").
//!
//! It runs the very pieces `gradients` runs (`Layer::forward`, `Loss::value`, `Loss::seed`,
//! `Layer::backward`, then `f'` of the layer below), in the same order and on the same thread
//! count, so its dW and db are bit for bit those of `gradients` on the one-sample batch. Per
//! layer l, with x_l its input (x_0 = the sample, x_{l+1} = a_l):
//! ```text
//! z_l      = W_l x_l + b_l                      (n_out,)
//! a_l      = f_l(z_l)                           (softmax: per row)
//! delta_L  = dL/dz of the output layer          (Loss::seed, docs/maths.md)
//! dW_l     = delta_l x_l^T   (outer product)    (n_out, n_in)
//! db_l     = delta_l
//! dx_l     = W_l^T delta_l   = dL/dx_l          (n_in,)
//! delta_{l-1} = dx_l * f'_{l-1}(z_{l-1})        (element-wise)
//! ```
//! The network is only read: `trace` takes `&self`.

use crate::activation::Activation;
use crate::batch::Batch;
use crate::error::{value_error, Result};
use crate::float::Real;
use crate::kernels::Threads;
use crate::layer::{Layer, LayerGradient};
use crate::loss::Targets;
use crate::matrix::{MatRef, Matrix};
use crate::network::NeuralNetwork;

/// One layer of a trace: its parameters and everything the sample's passes computed there.
/// Matrices are row-major (n_outputs, n_inputs); row i belongs to neuron i.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerTrace<T = f64> {
    pub activation: Activation,
    pub n_inputs: usize,
    pub n_outputs: usize,
    /// W (n_outputs, n_inputs) and b (n_outputs,) as they were during the trace (copies).
    pub weights: Vec<T>,
    pub biases: Vec<T>,
    /// x: what the layer read (n_inputs,): the sample for layer 0, else `a` of the layer below.
    pub input: Vec<T>,
    /// z = W x + b (n_outputs,).
    pub z: Vec<T>,
    /// a = f(z) (n_outputs,).
    pub a: Vec<T>,
    /// delta = dL/dz (n_outputs,).
    pub delta: Vec<T>,
    /// dL/dW = delta x^T (n_outputs, n_inputs).
    pub grad_weights: Vec<T>,
    /// dL/db = delta (n_outputs,).
    pub grad_biases: Vec<T>,
    /// dL/dx = W^T delta (n_inputs,): what is sent to the layer below (before its f').
    pub grad_input: Vec<T>,
}

/// The trace of one sample: the loss, the target as a row, and every layer, input side first.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace<T = f64> {
    /// L of the sample (the mean over its outputs for mse and binary_cross_entropy).
    pub loss: f64,
    /// t as a dense row of n_outputs values (a class index becomes a one-hot row).
    pub target: Vec<T>,
    pub layers: Vec<LayerTrace<T>>,
}

impl<T: Real> Trace<T> {
    /// The network's output for the sample: `a` of the last layer.
    pub fn output(&self) -> &[T] {
        &self.layers[self.layers.len() - 1].a
    }
}

impl<T: Real> NeuralNetwork<T> {
    /// Forward and backward pass of one sample `x` (n_inputs values) with target `t` (one
    /// sample's: a class index or a row), keeping every layer's input, z, a, delta = dL/dz,
    /// dW, db and dx. The inputs and target are checked as `batch` checks them; the network
    /// is not changed.
    pub fn trace(&self, x: &[T], t: Targets<'_, T>) -> Result<Trace<T>> {
        let batch = self.trace_sample(x, t)?;
        let (x, t) = (batch.inputs(), batch.targets());
        let threads = Threads(self.n_threads());
        let layers = self.layers();
        let n_layers = layers.len();
        let last = n_layers - 1;

        // Forward, keeping z and a of every layer (as `gradients` does).
        let fresh = || (0..n_layers).map(|_| Matrix::default()).collect::<Vec<_>>();
        let (mut z, mut a) = (fresh(), fresh());
        for (l, layer) in layers.iter().enumerate() {
            let (below, here) = a.split_at_mut(l);
            let input = if l == 0 { x } else { below[l - 1].view() };
            layer.forward(input, &mut z[l], &mut here[0], threads)?;
        }

        // The loss and the seed of the chain rule, dL/dz of the output layer.
        let loss = self.loss();
        let (z_out, a_out) = (z[last].view(), a[last].view());
        let loss_value = loss.value(z_out, a_out, &t, None).to_f64();
        let mut delta = fresh();
        delta[last].resize(1, layers[last].n_outputs())?;
        loss.seed(
            z_out,
            a_out,
            &t,
            None,
            layers[last].activation(),
            &mut delta[last],
        );

        // Backward: every gradient from the weights of the forward pass.
        let mut grads: Vec<LayerGradient<T>> =
            (0..n_layers).map(|_| LayerGradient::default()).collect();
        let mut dxs = fresh();
        for l in (0..n_layers).rev() {
            let input = if l == 0 { x } else { a[l - 1].view() };
            layers[l].backward(
                input,
                delta[l].view(),
                &mut grads[l],
                Some(&mut dxs[l]),
                threads,
            )?;
            if l > 0 {
                // delta of the layer below = dx * f'(z) of THAT layer's activation.
                let below_act = layers[l - 1].activation();
                let mut d = dxs[l].clone();
                for ((dv, &zv), &av) in d
                    .as_mut_slice()
                    .iter_mut()
                    .zip(z[l - 1].as_slice())
                    .zip(a[l - 1].as_slice())
                {
                    *dv *= below_act.derivative(zv, av);
                }
                delta[l - 1] = d;
            }
        }

        let m = layers[last].n_outputs();
        let target = (0..m).map(|i| t.get(0, i)).collect();
        let traces = layer_traces(layers, x, (&z, &a, &delta, &dxs), grads);
        Ok(Trace {
            loss: loss_value,
            target,
            layers: traces,
        })
    }

    /// The one-sample batch of `trace`, checked as `batch` checks it.
    fn trace_sample<'a>(&self, x: &'a [T], t: Targets<'a, T>) -> Result<Batch<'a, T>> {
        let n_in = self.n_inputs();
        if x.len() != n_in {
            return value_error!(
                "trace follows one sample of {n_in} inputs, got {} values",
                x.len()
            );
        }
        if t.len() != 1 {
            return value_error!(
                "trace follows one sample: expected the target of 1 sample, got {}",
                t.len()
            );
        }
        self.batch(MatRef::new(x, 1, n_in)?, t)
    }
}

/// Every layer's record of a traced sample, from the forward pass's (z, a), the deltas and
/// the dx of the backward pass, and the gradients (taken).
#[allow(clippy::type_complexity)]
fn layer_traces<T: Real>(
    layers: &[Layer<T>],
    x: MatRef<T>,
    (z, a, delta, dxs): (&[Matrix<T>], &[Matrix<T>], &[Matrix<T>], &[Matrix<T>]),
    mut grads: Vec<LayerGradient<T>>,
) -> Vec<LayerTrace<T>> {
    let mut traces = Vec::with_capacity(layers.len());
    for (l, layer) in layers.iter().enumerate() {
        let input = if l == 0 { x } else { a[l - 1].view() };
        let grad = std::mem::take(&mut grads[l]);
        traces.push(LayerTrace {
            activation: layer.activation(),
            n_inputs: layer.n_inputs(),
            n_outputs: layer.n_outputs(),
            weights: layer.weights().to_vec(),
            biases: layer.biases().to_vec(),
            input: input.as_slice().to_vec(),
            z: z[l].as_slice().to_vec(),
            a: a[l].as_slice().to_vec(),
            delta: delta[l].as_slice().to_vec(),
            grad_weights: grad.weights,
            grad_biases: grad.biases,
            grad_input: dxs[l].as_slice().to_vec(),
        });
    }
    traces
}
