//! The logit losses stay finite where a naive log(sigmoid) or log(softmax) would give inf or
//! NaN: logits of +-1e4, set through the weights, give finite (here exact) losses and gradients.

mod common;

use common::{random_case, Head, HIDDEN};
use ferrinet_core::{LayerGradient, Loss, MatRef, NeuralNetwork, SplitMix64, Targets};

fn all_finite(loss: f64, grads: &[LayerGradient]) -> bool {
    loss.is_finite()
        && grads
            .iter()
            .all(|g| g.weights.iter().chain(&g.biases).all(|v| v.is_finite()))
}

/// [2, 1] sigmoid output, w = [1e4, 0]: logits 1e4, -1e4, 5e3, 1e4 with targets 0, 1, 0.5, 1.
/// Per sample l = max(z, 0) - z t + log1p(exp(-|z|)) = 1e4, 1e4, 2500, 0: mean 5625.
/// delta = (sigmoid(z) - t) / 4 = [0.25, -0.25, 0.125, 0]; dW = [0.5625, 0], db = 0.125.
#[test]
fn binary_cross_entropy_at_logits_of_1e4_is_exact() {
    let mut net =
        NeuralNetwork::<f64>::new(&[2, 1], &[], None, Loss::BinaryCrossEntropy, 0).unwrap();
    net.set_parameters(vec![(vec![1e4, 0.0], vec![0.0])])
        .unwrap();
    let x = [1.0, 0.0, -1.0, 0.0, 0.5, 0.0, 1.0, 0.0];
    let t = [0.0, 1.0, 0.5, 1.0];
    let batch = net
        .batch(
            MatRef::new(&x, 4, 2).unwrap(),
            Targets::Dense(MatRef::new(&t, 4, 1).unwrap()),
        )
        .unwrap();
    let (loss, g) = net.gradients(&batch).unwrap();
    assert_eq!(loss, 5625.0);
    assert_eq!(g[0].weights, vec![0.5625, 0.0]);
    assert_eq!(g[0].biases, vec![0.125]);
    assert_eq!(net.compute_loss(&batch).unwrap(), 5625.0);
    let out = net.predict(batch.inputs()).unwrap();
    assert_eq!(out.as_slice(), &[1.0, 0.0, 1.0, 1.0]);
    // A step from there stays finite.
    assert_eq!(net.backward(&batch, 0.1).unwrap(), 5625.0);
    assert!(net
        .parameters()
        .iter()
        .all(|(w, b)| w.iter().chain(b).all(|v: &f64| v.is_finite())));
}

/// [2, 3] softmax output with logits [1e4, -1e4, 0] and [-1e4, 1e4, 0], both of class 1:
/// lse = 1e4 for both; l = 1e4 - (-1e4) = 2e4 and 0: mean 1e4. softmax = one-hot of the max, so
/// delta = (a - t) / 2 = [0.5, -0.5, 0] and [0, 0, 0]; dW rows [0.5, 0], [-0.5, 0], [0, 0].
#[test]
fn cross_entropy_at_logits_of_1e4_is_exact() {
    let mut net = NeuralNetwork::<f64>::new(&[2, 3], &[], None, Loss::CrossEntropy, 0).unwrap();
    net.set_parameters(vec![(vec![1e4, 0.0, -1e4, 0.0, 0.0, 0.0], vec![0.0; 3])])
        .unwrap();
    let x = [1.0, 0.0, -1.0, 0.0];
    let xs = MatRef::new(&x, 2, 2).unwrap();
    let batch = net.batch(xs, Targets::Classes(&[1, 1])).unwrap();
    let (loss, g) = net.gradients(&batch).unwrap();
    assert_eq!(loss, 1e4);
    assert_eq!(g[0].weights, vec![0.5, 0.0, -0.5, 0.0, 0.0, 0.0]);
    assert_eq!(g[0].biases, vec![0.5, -0.5, 0.0]);
    assert_eq!(
        net.predict(xs).unwrap().as_slice(),
        &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    );

    // Probability rows: 0.25 (1e4 - 1e4) + 0.5 (1e4 + 1e4) + 0.25 (1e4 - 0) = 12500, and
    // 0 for a row that puts all its mass on the winning class; mean 6250.
    let t = [0.25, 0.5, 0.25, 0.0, 1.0, 0.0];
    let batch = net
        .batch(xs, Targets::Dense(MatRef::new(&t, 2, 3).unwrap()))
        .unwrap();
    let (loss, g) = net.gradients(&batch).unwrap();
    assert_eq!(loss, 6250.0);
    assert!(all_finite(loss, &g));
    assert_eq!(g[0].biases, vec![0.375, -0.25, -0.125]);
}

/// Random networks whose output layer is scaled until its logits reach about +-1e4, through
/// hidden layers of every activation: losses and every layer's gradients stay finite, for
/// binary_cross_entropy, cross_entropy (both kinds of targets) and mse with saturating outputs.
#[test]
fn losses_and_gradients_stay_finite_for_huge_logits() {
    let mut rng = SplitMix64::new(51);
    for i in 0..150 {
        let head = [
            Head::Bce,
            Head::CeClasses,
            Head::CeProbs,
            Head::MseSigmoid,
            Head::MseTanh,
        ][i % 5];
        let hidden = HIDDEN[(i / 5) % HIDDEN.len()];
        let (mut net, data) = random_case(&mut rng, Some(hidden), head, 1 + i % 3);
        // Scale the last layer so that its largest |z| over the batch is 1e4.
        let layers = common::manual_forward(&net, data.inputs());
        let z_max = layers
            .last()
            .unwrap()
            .0
            .iter()
            .fold(0.0f64, |m, z| m.max(z.abs()));
        if z_max == 0.0 {
            continue;
        }
        let mut params = net.parameters();
        let last = params.len() - 1;
        let s = 1e4 / z_max;
        params[last].0.iter_mut().for_each(|w| *w *= s);
        params[last].1.iter_mut().for_each(|b| *b *= s);
        net.set_parameters(params).unwrap();

        let batch = data.batch(&net);
        let (loss, grads) = net.gradients(&batch).unwrap();
        assert!(all_finite(loss, &grads), "case {i}: {head:?} loss {loss}");
        assert!(net.compute_loss(&batch).unwrap().is_finite());
        // One step from there is finite too. (Training on from such a start is another matter:
        // the hidden layers' gradients are scaled by the same 1e4, and SGD can diverge.)
        assert_eq!(
            net.backward(&batch, 1e-3).unwrap().to_bits(),
            loss.to_bits()
        );
        assert!(net
            .parameters()
            .iter()
            .all(|(w, b)| w.iter().chain(b).all(|v: &f64| v.is_finite())));
    }
}
