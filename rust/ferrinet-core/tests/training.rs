//! `train` is the article's loop done right: per-sample SGD in order, one backward per sample
//! (erratum 8), epoch loss = mean of the per-sample losses. `train_steps` in any chunks is the
//! same computation, bit for bit (for the small first layers here; a first layer taken in
//! blocks needs chunks of whole blocks, tests/train_blocks.rs). And it learns: XOR and a sine
//! regression.
//!
//! `train` and `backward` on one sample are the same maths but no longer the same operations:
//! `train` runs the fused per-sample kernel (`W += (-(lr * delta_i)) * x` with FMA, src/kernels.rs
//! `sgd_rank1`), `backward` materialises dW = delta x and applies `W -= lr * dW`. They round
//! differently, by an ulp or so per step, so they are compared to a stated tolerance
//! (`TRAIN_REL`), not bit for bit.

mod common;

use common::{assert_close, bits, flat_params, param_bits, random_case, HEADS};

/// Fused vs materialised per-sample SGD (see the module comment): each step differs by ~1 ulp
/// in each weight, and 3 epochs of up to 4 samples compound that to 1.2e-14 relative at worst
/// (measured over these cases, purely relative: no absolute floor is needed).
const TRAIN_REL: f64 = 1e-12;
const TRAIN_FLOOR: f64 = f64::MIN_POSITIVE;
use ferrinet_core::{Activation, Loss, MatRef, NeuralNetwork, SplitMix64, Targets, TrainProgress};

#[test]
fn train_equals_train_steps_in_any_chunks_bit_for_bit() {
    let mut rng = SplitMix64::new(41);
    let chunk_patterns: [&[usize]; 5] = [&[1], &[3], &[7], &[1, 3, 7, 2], &[5, 11, 1, 0, 4]];
    for i in 0..30 {
        let head = HEADS[i % HEADS.len()];
        let (net, data) = random_case(&mut rng, None, head, i % 4);
        let batch = data.batch(&net);
        let (epochs, lr) = (1 + i % 6, [0.1, 0.02, 0.5][i % 3]);

        let mut whole = net.clone();
        let losses = whole.train(&batch, epochs, lr).unwrap();
        assert_eq!(losses.len(), epochs);

        for pattern in chunk_patterns {
            let mut chunked = net.clone();
            let mut progress = TrainProgress::default();
            let total = epochs * data.n;
            let (mut done, mut c) = (0, 0);
            while done < total {
                let steps = pattern[c % pattern.len()].min(total - done);
                chunked
                    .train_steps(&batch, &mut progress, steps, lr)
                    .unwrap();
                done += steps;
                c += 1;
            }
            assert_eq!(
                param_bits(&chunked),
                param_bits(&whole),
                "case {i} {pattern:?}"
            );
            assert_eq!(
                bits(&progress.epoch_losses),
                bits(&losses),
                "case {i} {pattern:?}"
            );
            assert_eq!(progress.next_sample, 0);
            assert_eq!(progress.epoch_total.to_bits(), 0.0f64.to_bits());
        }
    }
}

/// docs/maths.md: for each epoch, total = 0.0; total += backward(X[k], Y[k], lr) for k in
/// order; epoch loss = total / n.
#[test]
fn train_is_the_documented_per_sample_loop() {
    let mut rng = SplitMix64::new(42);
    let mut worst = 0.0f64;
    for i in 0..30 {
        let head = HEADS[i % HEADS.len()];
        let (net, data) = random_case(&mut rng, None, head, i % 4);
        let batch = data.batch(&net);
        let (epochs, lr) = (3, 0.05);
        let mut trained = net.clone();
        let losses = trained.train(&batch, epochs, lr).unwrap();

        let mut manual = net.clone();
        let mut expected = Vec::new();
        for _ in 0..epochs {
            let mut total = 0.0;
            for k in 0..data.n {
                total += manual.backward(&batch.rows_range(k, k + 1), lr).unwrap();
            }
            expected.push(total / data.n as f64);
        }
        let what = format!("case {i} epoch losses");
        worst = worst.max(assert_close(
            &losses,
            &expected,
            TRAIN_REL,
            TRAIN_FLOOR,
            &what,
        ));
        let (got, want) = (flat_params(&trained), flat_params(&manual));
        let what = format!("case {i} parameters");
        worst = worst.max(assert_close(&got, &want, TRAIN_REL, TRAIN_FLOOR, &what));
    }
    eprintln!("train vs per-sample backward: worst relative difference {worst:e}");
}

/// A progress that stops mid-epoch carries the running total and the next sample.
#[test]
fn train_steps_reports_progress_within_an_epoch() {
    let mut rng = SplitMix64::new(43);
    let (mut net, data) = random_case(&mut rng, Some(Activation::Tanh), common::Head::Bce, 1);
    let batch = data.batch(&net);
    let mut progress = TrainProgress::default();
    let mut reference = net.clone();
    let steps = data.n + data.n / 2; // one epoch and a half
    net.train_steps(&batch, &mut progress, steps, 0.1).unwrap();
    assert_eq!(progress.epoch_losses.len(), 1);
    assert_eq!(progress.next_sample, steps - data.n);
    let mut total = 0.0;
    for k in 0..data.n {
        reference
            .backward(&batch.rows_range(k, k + 1), 0.1)
            .unwrap();
    }
    for k in 0..steps - data.n {
        total += reference
            .backward(&batch.rows_range(k, k + 1), 0.1)
            .unwrap();
    }
    // Fused vs materialised steps: see TRAIN_REL.
    let what = "running total of the epoch";
    assert_close(
        &[progress.epoch_total],
        &[total],
        TRAIN_REL,
        TRAIN_FLOOR,
        what,
    );
    let (got, want) = (flat_params(&net), flat_params(&reference));
    assert_close(&got, &want, TRAIN_REL, TRAIN_FLOOR, "parameters");
}

#[test]
fn zero_epochs_or_steps_change_nothing() {
    let mut rng = SplitMix64::new(44);
    for i in 0..12 {
        let (mut net, data) = random_case(&mut rng, None, HEADS[i % HEADS.len()], i % 3);
        let before = param_bits(&net);
        let batch = data.batch(&net);
        assert_eq!(net.train(&batch, 0, 0.1).unwrap(), Vec::<f64>::new());
        assert_eq!(param_bits(&net), before);
        let mut progress = TrainProgress::default();
        net.train_steps(&batch, &mut progress, 0, 0.1).unwrap();
        assert_eq!(param_bits(&net), before);
        assert!(progress.epoch_losses.is_empty() && progress.next_sample == 0);
    }
}

fn xor_accuracy(net: &NeuralNetwork, x: &[f64], t: &[f64]) -> usize {
    let out = net.predict(MatRef::new(x, 4, 2).unwrap()).unwrap();
    out.as_slice()
        .iter()
        .zip(t)
        .filter(|(&y, &ti)| (y > 0.5) == (ti > 0.5))
        .count()
}

/// The article's task, done with its method (per-sample SGD, MSE) and a tanh hidden layer:
/// 100% accuracy at threshold 0.5 for at least 19 of 20 seeds.
#[test]
fn xor_is_learned_for_nearly_every_seed() {
    let x = [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
    let t = [0.0, 1.0, 1.0, 0.0];
    let (epochs, lr) = (XOR_EPOCHS, XOR_LR);
    let mut solved = 0;
    let mut report = Vec::new();
    for seed in 0..20 {
        let mut net =
            NeuralNetwork::<f64>::new(&[2, 8, 1], &[Activation::Tanh], None, Loss::Mse, seed)
                .unwrap();
        let batch = net
            .batch(
                MatRef::new(&x, 4, 2).unwrap(),
                Targets::Dense(MatRef::new(&t, 4, 1).unwrap()),
            )
            .unwrap();
        let losses = net.train(&batch, epochs, lr).unwrap();
        let acc = xor_accuracy(&net, &x, &t);
        report.push((seed, acc, losses[0], *losses.last().unwrap()));
        if acc == 4 {
            solved += 1;
        }
    }
    eprintln!("XOR (seed, correct of 4, first loss, last loss): {report:?}");
    assert!(
        solved >= 19,
        "XOR solved for {solved} of 20 seeds: {report:?}"
    );
}

/// Per-sample SGD on this MSE is stable for lr below about 1 / (1 + |h|^2) ~ 0.2 (h: the 8
/// hidden activations); measured on seeds 0-99: lr 0.05 for 500 epochs solves 100 of 100,
/// lr 0.1 solves 93 (7 stay in the classic 2-of-4 local minimum), lr 0.3 almost none.
const XOR_EPOCHS: usize = 500;
const XOR_LR: f64 = 0.05;

/// Regression: y = sin(x) on [-pi, pi] with a tanh hidden layer and an identity output; the fit
/// explains at least 95% of the variance (R^2 >= 0.95) on points between the training points,
/// for each of a few seeds.
#[test]
fn sine_regression_reaches_r2_of_0_95() {
    let n = 64;
    let xs: Vec<f64> = (0..n)
        .map(|k| -std::f64::consts::PI + 2.0 * std::f64::consts::PI * k as f64 / (n - 1) as f64)
        .collect();
    let ys: Vec<f64> = xs.iter().map(|x| x.sin()).collect();
    // Evaluated between the training points.
    let test_x: Vec<f64> = xs.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect();
    let test_y: Vec<f64> = test_x.iter().map(|x| x.sin()).collect();
    for seed in 0..4 {
        let mut net =
            NeuralNetwork::<f64>::new(&[1, 16, 1], &[Activation::Tanh], None, Loss::Mse, seed)
                .unwrap();
        let batch = net
            .batch(
                MatRef::new(&xs, n, 1).unwrap(),
                Targets::Dense(MatRef::new(&ys, n, 1).unwrap()),
            )
            .unwrap();
        let losses = net.train(&batch, SINE_EPOCHS, SINE_LR).unwrap();
        let pred = net
            .predict(MatRef::new(&test_x, test_x.len(), 1).unwrap())
            .unwrap();
        let mean = test_y.iter().sum::<f64>() / test_y.len() as f64;
        let ss_tot: f64 = test_y.iter().map(|y| (y - mean).powi(2)).sum();
        let ss_res: f64 = pred
            .as_slice()
            .iter()
            .zip(&test_y)
            .map(|(p, y)| (p - y).powi(2))
            .sum();
        let r2 = 1.0 - ss_res / ss_tot;
        eprintln!(
            "sine, seed {seed}: R^2 = {r2}, epoch loss {} -> {}",
            losses[0],
            losses.last().unwrap()
        );
        assert!(r2 >= 0.95, "seed {seed}: R^2 = {r2}");
        assert!(losses.last().unwrap() < &losses[0]);
    }
}

/// Measured on seeds 0-19: R^2 between 0.980 and 0.992 on the training points.
const SINE_EPOCHS: usize = 300;
const SINE_LR: f64 = 0.02;

/// `train` on a batch with sample weights: per docs/maths.md it is `backward` on each sample in
/// turn, and a one-sample batch of weight 0 has loss 0 and gradient 0. Found failing: the fused
/// per-sample step (`sgd_sample`) drops the weights, so zero-weight samples are trained on and
/// `train` on a weighted batch equals `train` on the unweighted one. Refusing weighted batches
/// in `train` would be a fix too. Reported; un-ignore once src/per_sample.rs does one or the other.
#[test]
fn train_respects_sample_weights_like_the_backward_loop() {
    let mut rng = SplitMix64::new(45);
    for i in 0..12 {
        let head = HEADS[i % HEADS.len()];
        let (net, data) = random_case(&mut rng, None, head, 1 + i % 2);
        let weights: Vec<f64> = (0..data.n).map(|k| [0.0, 1.0, 2.5][k % 3]).collect();
        if weights.iter().all(|&w| w == 0.0) {
            continue;
        }
        let batch = net
            .weighted_batch(data.inputs(), data.t.view(), &weights)
            .unwrap();
        let mut trained = net.clone();
        match trained.train(&batch, 2, 0.1) {
            Err(ferrinet_core::Error::Value(_)) => continue,
            Err(e) => panic!("case {i}: {e:?}"),
            Ok(losses) => {
                let mut manual = net.clone();
                let mut expected = Vec::new();
                for _ in 0..2 {
                    let mut total = 0.0;
                    for k in 0..data.n {
                        total += manual.backward(&batch.rows_range(k, k + 1), 0.1).unwrap();
                    }
                    expected.push(total / data.n as f64);
                }
                let what = format!("case {i}: weighted train");
                assert_close(&losses, &expected, TRAIN_REL, TRAIN_FLOOR, &what);
                let (got, want) = (flat_params(&trained), flat_params(&manual));
                assert_close(&got, &want, TRAIN_REL, TRAIN_FLOOR, &what);
            }
        }
    }
}
