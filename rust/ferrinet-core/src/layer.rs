//! The article's `Layer`: neurons that read the same inputs. Weights live in one contiguous
//! row-major (n_outputs, n_inputs) buffer; row i is neuron i (see `Layer::neuron`).

use crate::activation::Activation;
use crate::error::{value_error, Error, Result};
use crate::matrix::{checked_len, try_resize, MatRef, Matrix};
use crate::neuron::Neuron;
use crate::rng::SplitMix64;

#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    n_inputs: usize,
    n_outputs: usize,
    weights: Vec<f64>, // (n_outputs, n_inputs), row i = neuron i's weights
    biases: Vec<f64>,  // (n_outputs,)
    activation: Activation,
}

/// dL/dW and dL/db of one layer, shaped like the layer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LayerGradient {
    pub weights: Vec<f64>, // (n_outputs, n_inputs)
    pub biases: Vec<f64>,  // (n_outputs,)
}

impl Layer {
    /// A layer with seeded uniform weights (He or Glorot bound by the layer's own activation,
    /// `Activation::init_limit`) drawn in row-major order, and zero biases.
    pub fn new(
        n_inputs: usize,
        n_outputs: usize,
        activation: Activation,
        rng: &mut SplitMix64,
    ) -> Result<Self> {
        if n_inputs == 0 || n_outputs == 0 {
            return value_error!(
                "a layer needs at least one input and one output, got ({n_outputs}, {n_inputs})"
            );
        }
        let mut weights = Vec::new();
        try_resize(&mut weights, checked_len(n_outputs, n_inputs)?)?;
        let mut biases = Vec::new();
        try_resize(&mut biases, n_outputs)?;
        let limit = activation.init_limit(n_inputs, n_outputs);
        for w in weights.iter_mut() {
            *w = limit * (2.0 * rng.uniform() - 1.0);
        }
        Ok(Layer {
            n_inputs,
            n_outputs,
            weights,
            biases,
            activation,
        })
    }

    /// A layer from given parameters; shapes and finiteness are checked.
    pub fn from_parts(
        n_inputs: usize,
        n_outputs: usize,
        weights: Vec<f64>,
        biases: Vec<f64>,
        activation: Activation,
    ) -> Result<Self> {
        check_parameters(n_inputs, n_outputs, &weights, &biases)?;
        Ok(Layer {
            n_inputs,
            n_outputs,
            weights,
            biases,
            activation,
        })
    }

    pub fn n_inputs(&self) -> usize {
        self.n_inputs
    }

    pub fn n_outputs(&self) -> usize {
        self.n_outputs
    }

    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// (n_outputs, n_inputs), row-major.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    pub fn biases(&self) -> &[f64] {
        &self.biases
    }

    /// Neuron i: a view of row i of the weights and bias i.
    pub fn neuron(&self, i: usize) -> Neuron<'_> {
        Neuron {
            weights: &self.weights[i * self.n_inputs..(i + 1) * self.n_inputs],
            bias: self.biases[i],
        }
    }

    pub fn neurons(&self) -> impl Iterator<Item = Neuron<'_>> {
        (0..self.n_outputs).map(|i| self.neuron(i))
    }

    /// Replaces the parameters after checking their shapes and values.
    pub fn set_parameters(&mut self, weights: Vec<f64>, biases: Vec<f64>) -> Result<()> {
        check_parameters(self.n_inputs, self.n_outputs, &weights, &biases)?;
        self.weights = weights;
        self.biases = biases;
        Ok(())
    }

    /// z = x W^T + b and a = f(z) for a batch x of shape (n, n_inputs), into reused buffers.
    /// Each z[k][i] is neuron i's `forward` on sample k: the article's picture, batched.
    pub fn forward(&self, x: MatRef, z: &mut Matrix, a: &mut Matrix) -> Result<()> {
        let n = x.rows();
        z.resize(n, self.n_outputs)?;
        a.resize(n, self.n_outputs)?;
        for k in 0..n {
            let (xk, zk) = (x.row(k), z.row_mut(k));
            for (zi, neuron) in zk.iter_mut().zip(self.neurons()) {
                *zi = neuron.forward(xk);
            }
            self.activation.apply_row(z.row(k), a.row_mut(k));
        }
        Ok(())
    }

    /// Given delta = dL/dz (n, n_outputs) and the input x (n, n_inputs) of the forward pass:
    ///   dW = delta^T x,  db = sum over samples of delta,  dx = delta W.
    /// dx is computed with the weights of the forward pass (nothing is updated here: erratum 3)
    /// and only when asked (the first layer's dx is never needed).
    pub fn backward(
        &self,
        x: MatRef,
        delta: MatRef,
        grad: &mut LayerGradient,
        dx: Option<&mut Matrix>,
    ) -> Result<()> {
        let (n, n_in) = (x.rows(), self.n_inputs);
        try_resize(&mut grad.weights, self.weights.len())?;
        try_resize(&mut grad.biases, self.n_outputs)?;
        grad.weights.fill(0.0);
        grad.biases.fill(0.0);
        // dW[i][j] = sum over k of delta[k][i] x[k][j], accumulated in sample order.
        for k in 0..n {
            let xk = x.row(k);
            for (i, &d) in delta.row(k).iter().enumerate() {
                let dw_row = &mut grad.weights[i * n_in..(i + 1) * n_in];
                for (dw, &xj) in dw_row.iter_mut().zip(xk) {
                    *dw += d * xj;
                }
                grad.biases[i] += d;
            }
        }
        if let Some(dx) = dx {
            // dx[k][j] = sum over i of delta[k][i] W[i][j], accumulated in neuron order.
            dx.resize(n, n_in)?;
            dx.as_mut_slice().fill(0.0);
            for k in 0..n {
                let dxk = dx.row_mut(k);
                for (i, &d) in delta.row(k).iter().enumerate() {
                    let w_row = &self.weights[i * n_in..(i + 1) * n_in];
                    for (dxj, &w) in dxk.iter_mut().zip(w_row) {
                        *dxj += d * w;
                    }
                }
            }
        }
        Ok(())
    }

    /// Plain SGD: W -= learning_rate dW, b -= learning_rate db.
    pub fn apply_gradient(&mut self, grad: &LayerGradient, learning_rate: f64) {
        for (w, &g) in self.weights.iter_mut().zip(&grad.weights) {
            *w -= learning_rate * g;
        }
        for (b, &g) in self.biases.iter_mut().zip(&grad.biases) {
            *b -= learning_rate * g;
        }
    }
}

fn check_parameters(
    n_inputs: usize,
    n_outputs: usize,
    weights: &[f64],
    biases: &[f64],
) -> Result<()> {
    if n_inputs == 0 || n_outputs == 0 {
        return value_error!(
            "a layer needs at least one input and one output, got ({n_outputs}, {n_inputs})"
        );
    }
    if weights.len() as u128 != n_inputs as u128 * n_outputs as u128 {
        return value_error!(
            "weights must have shape ({n_outputs}, {n_inputs}) = {} values, got {}",
            n_inputs as u128 * n_outputs as u128,
            weights.len()
        );
    }
    if biases.len() != n_outputs {
        return value_error!(
            "biases must have shape ({n_outputs},), got {} values",
            biases.len()
        );
    }
    if let Some(p) = weights.iter().chain(biases).position(|v| !v.is_finite()) {
        let v = weights.iter().chain(biases).nth(p).unwrap();
        return Err(Error::Value(format!(
            "weights and biases must be finite, got {v}"
        )));
    }
    Ok(())
}
