//! flat.rs: every parameter as one vector in scikit-learn's packing, and the full-batch loss
//! with its gradient in that layout, computed GRAD_BLOCK rows at a time and folded in block
//! order: the same bits for any thread count and any cut of the rows into calls; on one block
//! `regularized_gradients` itself; its loss `regularized_loss`'s on any number of rows.

use ferrinet_core::{
    Activation, GradientSums, Loss, MatRef, NeuralNetwork, SplitMix64, Targets, GRAD_BLOCK,
};

fn data(n: usize, d: usize, seed: u64) -> (Vec<f64>, Vec<usize>, Vec<f64>) {
    let mut rng = SplitMix64::new(seed);
    let x = (0..n * d).map(|_| rng.uniform() * 4.0 - 2.0).collect();
    let y = (0..n).map(|_| (rng.uniform() * 3.0) as usize).collect();
    let w = (0..n).map(|_| rng.uniform() + 0.1).collect();
    (x, y, w)
}

fn net(sizes: &[usize], threads: usize) -> NeuralNetwork {
    let hidden = vec![Activation::Tanh; sizes.len() - 2];
    let mut net = NeuralNetwork::new(sizes, &hidden, None, Loss::CrossEntropy, 3).unwrap();
    net.set_n_threads(threads).unwrap();
    net
}

/// ferrinet's [(dW (n_out, n_in), db)] packed as scikit-learn's `_pack` (written out here).
fn pack(sizes: &[usize], grads: &[(Vec<f64>, Vec<f64>)]) -> Vec<f64> {
    let mut flat = Vec::new();
    for (s, (w, _)) in sizes.windows(2).zip(grads) {
        let (n_in, n_out) = (s[0], s[1]);
        for i in 0..n_in {
            for j in 0..n_out {
                flat.push(w[j * n_in + i]);
            }
        }
    }
    for (_, b) in grads {
        flat.extend_from_slice(b);
    }
    flat
}

#[test]
fn flat_parameters_are_sklearns_pack_and_set_flat_parameters_inverts_it() {
    let sizes = [4, 6, 5, 3];
    let mut a = net(&sizes, 1);
    let theta = a.flat_parameters();
    assert_eq!(theta, pack(&sizes, &a.parameters()));
    let b = net(&[4, 6, 5, 3], 1);
    let shifted: Vec<f64> = theta.iter().map(|v| v * 0.5 + 0.25).collect();
    a.set_flat_parameters(&shifted).unwrap();
    assert_eq!(a.flat_parameters(), shifted);
    assert_ne!(a.parameters(), b.parameters());
    // refused: wrong length, non-finite; nothing changes
    assert!(a.set_flat_parameters(&shifted[1..]).is_err());
    let mut bad = shifted.clone();
    bad[7] = f64::NAN;
    let err = a.set_flat_parameters(&bad).unwrap_err().to_string();
    assert!(err.contains("at index 7"), "{err}");
    assert_eq!(a.flat_parameters(), shifted);
}

#[test]
fn one_block_is_regularized_gradients_bit_for_bit() {
    let sizes = [5, 16, 3];
    let n = GRAD_BLOCK - 10;
    let (x, y, w) = data(n, 5, 1);
    let xm = MatRef::new(&x, n, 5).unwrap();
    let mut whole = net(&sizes, 1);
    for weighted in [false, true] {
        let batch = match weighted {
            true => whole.weighted_batch(xm, Targets::Classes(&y), &w).unwrap(),
            false => whole.batch(xm, Targets::Classes(&y)).unwrap(),
        };
        let mut grad = vec![0.0; whole.n_parameters()];
        let loss = whole
            .loss_and_flat_gradient(&batch, 0.03, &mut grad)
            .unwrap();
        let (expected_loss, grads) = whole.regularized_gradients(&batch, 0.03).unwrap();
        let grads: Vec<_> = grads.into_iter().map(|g| (g.weights, g.biases)).collect();
        assert_eq!(grad, pack(&sizes, &grads));
        assert_eq!(loss, expected_loss);
    }
}

#[test]
fn the_same_bits_for_any_thread_count_and_any_cut_into_calls() {
    let sizes = [6, 40, 30, 3];
    let n = 7 * GRAD_BLOCK + 19;
    let (x, y, w) = data(n, 6, 2);
    let xm = MatRef::new(&x, n, 6).unwrap();
    let one = net(&sizes, 1);
    let batch = one.weighted_batch(xm, Targets::Classes(&y), &w).unwrap();
    let mut reference = vec![0.0; one.n_parameters()];
    let loss = one
        .loss_and_flat_gradient(&batch, 0.1, &mut reference)
        .unwrap();
    // the loss is regularized_loss's (the same blocks as evaluate)
    assert_eq!(loss, one.regularized_loss(&batch, 0.1).unwrap());
    for threads in [2, 3, 8] {
        let mut grad = vec![0.0; one.n_parameters()];
        let l = net(&sizes, threads)
            .loss_and_flat_gradient(&batch, 0.1, &mut grad)
            .unwrap();
        assert_eq!((l, &grad), (loss, &reference), "{threads} threads");
    }
    // in calls of 1, 2, then 5 blocks, with the outputs kept: predict's values
    let three = net(&sizes, 3);
    let mut sums = GradientSums::default();
    let mut out = vec![0.0; n * 3];
    let cuts = [0, GRAD_BLOCK, 3 * GRAD_BLOCK, n];
    for pair in cuts.windows(2) {
        let part = &mut out[pair[0] * 3..pair[1] * 3];
        three
            .gradient_rows(&batch, pair[0], pair[1], &mut sums, Some(part))
            .unwrap();
    }
    let mut grad = vec![0.0; one.n_parameters()];
    let l = three
        .finish_flat_gradient(&mut sums, &batch, 0.1, &mut grad)
        .unwrap();
    assert_eq!((l, &grad), (loss, &reference));
    assert_eq!(out, one.predict(xm).unwrap().into_vec());
    // and it is the whole batch's gradient, to rounding
    let mut whole = net(&sizes, 1);
    let (_, grads) = whole.regularized_gradients(&batch, 0.1).unwrap();
    let grads: Vec<_> = grads.into_iter().map(|g| (g.weights, g.biases)).collect();
    for (a, b) in reference.iter().zip(pack(&sizes, &grads)) {
        assert!((a - b).abs() <= 1e-13 * (1.0 + b.abs()), "{a} {b}");
    }
}

#[test]
fn bad_calls_are_refused() {
    let sizes = [5, 8, 3];
    let n = 2 * GRAD_BLOCK;
    let (mut x, y, _) = data(n, 5, 3);
    let one = net(&sizes, 2);
    let mut grad = vec![0.0; one.n_parameters()];
    {
        let xm = MatRef::new(&x, n, 5).unwrap();
        let batch = one.batch(xm, Targets::Classes(&y)).unwrap();
        assert!(one.loss_and_flat_gradient(&batch, -1.0, &mut grad).is_err());
        assert!(one
            .loss_and_flat_gradient(&batch, 0.0, &mut grad[1..])
            .is_err());
        let mut sums = GradientSums::default();
        assert!(one.gradient_rows(&batch, 1, n, &mut sums, None).is_err());
        one.gradient_rows(&batch, 0, GRAD_BLOCK, &mut sums, None)
            .unwrap();
        // half the rows are not the batch's gradient
        assert!(one
            .finish_flat_gradient(&mut sums, &batch, 0.0, &mut grad)
            .is_err());
    }
    // a non-finite input of an unchecked (epoch) batch is named by its row, in any block
    x[(GRAD_BLOCK + 3) * 5 + 2] = f64::INFINITY;
    let xm = MatRef::new(&x, n, 5).unwrap();
    let batch = one.epoch_batch(xm, Targets::Classes(&y), None).unwrap();
    let err = one
        .loss_and_flat_gradient(&batch, 0.0, &mut grad)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("[{}, 2]", GRAD_BLOCK + 3)),
        "{err}"
    );
}
