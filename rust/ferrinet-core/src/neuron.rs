//! The article's `Neuron`: a row of weights and a bias.
//!
//! In ferrinet a neuron does not own its weights: it is a view of row i of its layer's
//! (n_outputs, n_inputs) weight matrix, so the article's picture holds while the layer keeps one
//! contiguous buffer (erratum 11).

#[derive(Debug, Clone, Copy)]
pub struct Neuron<'a> {
    pub weights: &'a [f64], // (n_inputs,)
    pub bias: f64,
}

impl Neuron<'_> {
    /// Pre-activation z = w . x + b, summed left to right from 0.0 (docs/maths.md), so that the
    /// pure-Python reference can reproduce the same bits. The caller has checked the lengths;
    /// a mismatch here is a bug, and panics rather than truncating as the article's `zip` did.
    #[inline]
    pub fn forward(&self, inputs: &[f64]) -> f64 {
        assert_eq!(inputs.len(), self.weights.len(), "neuron input length");
        let mut sum = 0.0;
        for (w, x) in self.weights.iter().zip(inputs) {
            sum += w * x;
        }
        sum + self.bias
    }
}
