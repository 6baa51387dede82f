//! `train` on a first layer large enough to be taken in blocks of samples (src/per_sample/sgd_block.rs).
//! It must take the same steps as the one-sample-at-a-time kernels, to a stated tolerance. It
//! must give the same bits however a run is split into calls, as long as each call's length
//! is a multiple of `TRAIN_BLOCK`. And divergence must be handled as in the per-sample loop.
//! (float32 blocks against float64: tests/float32.rs.)

mod common;

use common::{
    assert_close, assert_close_scaled, bits, flat_params, param_bits, random_targets, random_vec,
    Data, Head, HEADS,
};
use ferrinet_core::{
    Activation, Error, NeuralNetwork, Real, SplitMix64, TrainProgress, TRAIN_BLOCK,
};

/// Blocked vs per-sample steps: within a block the pre-activations are formed as
/// Z0 + sum s_i (x_i . x_j + 1) instead of from the updated weights, and the updates are summed
/// by a matrix product, so each step rounds differently. Over the runs below (3 epochs of 45
/// samples) the worst parameter difference measured is 1.2e-15, 4e-15 of the largest
/// parameter (a few ulps at that scale), and the worst epoch loss differs by 6e-16 relative.
/// Parameters are compared relative to the largest one (`assert_close_scaled`): weights that
/// pass near zero keep the absolute rounding of the sums that formed them.
const PARAM_REL: f64 = 5e-14;
const LOSS_REL: f64 = 1e-13;

/// A network whose first layer has 160 x 110 = 17,600 weights (blocked: at least 16,384),
/// `depth` - 1 further hidden layers of 4-20 units, and n samples of pixel-like inputs.
fn big_case(rng: &mut SplitMix64, head: Head, depth: usize, n: usize) -> (NeuralNetwork, Data) {
    let n_in = 160;
    let n_out = match head {
        Head::CeClasses | Head::CeProbs => 3,
        _ => 2,
    };
    let mut sizes = vec![n_in, 110];
    for _ in 1..depth {
        sizes.push(4 + (rng.next_u64() % 17) as usize);
    }
    sizes.push(n_out);
    let hidden = [Activation::Relu, Activation::Tanh, Activation::LeakyRelu];
    let acts: Vec<_> = (0..depth).map(|l| hidden[l % hidden.len()]).collect();
    let net = NeuralNetwork::<f64>::new(
        &sizes,
        &acts,
        Some(head.output()),
        head.loss(),
        rng.next_u64(),
    )
    .unwrap();
    let data = Data {
        x: random_vec(rng, n * n_in, 0.0, 1.0),
        n,
        cols: n_in,
        t: random_targets(rng, head, n, n_out),
    };
    (net, data)
}

/// The per-sample kernels' run: one step per call never opens a block.
fn one_step_at_a_time<T: Real>(
    net: &NeuralNetwork<T>,
    batch: &ferrinet_core::Batch<T>,
    steps: usize,
    lr: f64,
) -> (NeuralNetwork<T>, Vec<f64>) {
    let mut stepped = net.clone();
    let mut progress = TrainProgress::default();
    for _ in 0..steps {
        stepped.train_steps(batch, &mut progress, 1, lr).unwrap();
    }
    (stepped, progress.epoch_losses)
}

#[test]
fn blocked_train_takes_the_per_sample_steps() {
    let mut rng = SplitMix64::new(77);
    let (mut worst_p, mut worst_l) = (0.0f64, 0.0f64);
    for (i, &head) in HEADS.iter().enumerate() {
        for depth in 1..=2 {
            let (net, data) = big_case(&mut rng, head, depth, 45);
            let batch = data.batch(&net);
            assert_eq!(net.train_granule(), TRAIN_BLOCK);
            // Poisson's steps grow with its output exp(z): at 0.05 these per-sample runs (z of a
            // few units) are near-unstable and amplify the blocks' rounding (measured 5.1e-14
            // of the largest parameter), so it takes the smallest of the three rates.
            let lr = match head {
                Head::Poisson => 0.01,
                _ => [0.05, 0.01, 0.1][i % 3],
            };
            let epochs = 3;
            let mut blocked = net.clone();
            let losses = blocked.train(&batch, epochs, lr).unwrap();
            let (stepped, expected) = one_step_at_a_time(&net, &batch, epochs * data.n, lr);
            let what = format!("{head:?} depth {depth}");
            worst_l = worst_l.max(assert_close(
                &losses,
                &expected,
                LOSS_REL,
                0.0,
                &format!("{what}: epoch losses"),
            ));
            let (got, want) = (flat_params(&blocked), flat_params(&stepped));
            worst_p = worst_p.max(assert_close_scaled(
                &got,
                &want,
                PARAM_REL,
                &format!("{what}: parameters"),
            ));
            // The blocked path did run: it rounds differently somewhere.
            assert_ne!(param_bits(&blocked), param_bits(&stepped), "{what}");
            // And it learned what the steps learn: the loss went down.
            assert!(losses[2] < losses[0], "{what}: {losses:?}");
        }
    }
    eprintln!("blocked vs per-sample: worst relative difference {worst_p:e} (parameters), {worst_l:e} (losses)");
}

/// A network with no hidden layer: the blocked first layer is also the output layer.
#[test]
fn a_blocked_output_layer_takes_the_per_sample_steps() {
    let mut rng = SplitMix64::new(78);
    let (n_in, n_out, n) = (200, 90, 40);
    let net =
        NeuralNetwork::<f64>::new(&[n_in, n_out], &[], None, ferrinet_core::Loss::Mse, 5).unwrap();
    let data = Data {
        x: random_vec(&mut rng, n * n_in, -1.0, 1.0),
        n,
        cols: n_in,
        t: random_targets(&mut rng, Head::MseIdentity, n, n_out),
    };
    let batch = data.batch(&net);
    let mut blocked = net.clone();
    let losses = blocked.train(&batch, 2, 0.002).unwrap();
    let (stepped, expected) = one_step_at_a_time(&net, &batch, 2 * n, 0.002);
    assert_close(&losses, &expected, LOSS_REL, 0.0, "losses");
    let (got, want) = (flat_params(&blocked), flat_params(&stepped));
    assert_close_scaled(&got, &want, PARAM_REL, "parameters");
    assert_ne!(param_bits(&blocked), param_bits(&stepped));
}

/// Calls of a multiple of TRAIN_BLOCK steps (the last one any length) give the bits of one call:
/// the blocks fall in the same places. Blocks wrap past the end of the data (45 samples).
#[test]
fn calls_of_whole_blocks_give_the_bits_of_one_call() {
    let mut rng = SplitMix64::new(79);
    let (net, data) = big_case(&mut rng, Head::CeClasses, 2, 45);
    let batch = data.batch(&net);
    let epochs = 4;
    let total = epochs * data.n;
    let mut whole = net.clone();
    let losses = whole.train(&batch, epochs, 0.05).unwrap();
    let b = TRAIN_BLOCK;
    for pattern in [vec![b], vec![2 * b, b], vec![b, 3 * b, 5 * b]] {
        let mut chunked = net.clone();
        let mut progress = TrainProgress::default();
        let (mut done, mut c) = (0, 0);
        while done < total {
            let steps = pattern[c % pattern.len()].min(total - done);
            chunked
                .train_steps(&batch, &mut progress, steps, 0.05)
                .unwrap();
            done += steps;
            c += 1;
        }
        assert_eq!(param_bits(&chunked), param_bits(&whole), "{pattern:?}");
        assert_eq!(bits(&progress.epoch_losses), bits(&losses), "{pattern:?}");
    }
    // Cut elsewhere, the blocks fall elsewhere: the same steps, other roundings.
    let mut cut = net.clone();
    let mut progress = TrainProgress::default();
    cut.train_steps(&batch, &mut progress, 7, 0.05).unwrap();
    cut.train_steps(&batch, &mut progress, total - 7, 0.05)
        .unwrap();
    let (got, want) = (flat_params(&cut), flat_params(&whole));
    assert_close_scaled(&got, &want, PARAM_REL, "cut at 7");
    assert_ne!(param_bits(&cut), param_bits(&whole));
}

/// Small first layers (under 16,384 weights) and narrow ones (under 64 outputs) are never
/// blocked: their calls can be cut anywhere.
#[test]
fn small_and_narrow_first_layers_have_a_granule_of_one() {
    let granule = |sizes: &[usize]| {
        NeuralNetwork::<f64>::new(
            sizes,
            &[Activation::Relu],
            None,
            ferrinet_core::Loss::CrossEntropy,
            0,
        )
        .unwrap()
        .train_granule()
    };
    assert_eq!(granule(&[127, 128, 10]), 1);
    assert_eq!(granule(&[784, 63, 10]), 1);
    assert_eq!(granule(&[128, 128, 10]), TRAIN_BLOCK);
    assert_eq!(granule(&[784, 64, 10]), TRAIN_BLOCK);
}

/// Divergence inside a block: NonFinite, the weights finite and moved (the steps before the
/// bad one are kept), and the same result from a second run (the blocks are deterministic).
#[test]
fn divergence_inside_a_block_keeps_finite_weights() {
    let mut rng = SplitMix64::new(81);
    let (net, data) = big_case(&mut rng, Head::MseIdentity, 2, 45);
    let batch = data.batch(&net);
    for lr in [5.0, 50.0, 1e6] {
        let mut a = net.clone();
        let err = a.train(&batch, 1000, lr).unwrap_err();
        assert!(matches!(err, Error::NonFinite(_)), "{err:?}");
        assert!(flat_params(&a).iter().all(|w| w.is_finite()), "lr {lr}");
        assert_ne!(param_bits(&a), param_bits(&net), "lr {lr}: no good step");
        let mut b = net.clone();
        b.train(&batch, 1000, lr).unwrap_err();
        assert_eq!(param_bits(&a), param_bits(&b), "lr {lr}");
    }
}

/// A stop inside a block (`train_steps_until`, how the binding checks for Ctrl-C within a
/// call): Interrupted, `progress` counts the steps taken, and the network holds exactly those
/// steps, the open block applied as far as it went: it agrees with the per-sample kernels
/// taking that many steps. Then the run goes on from there.
#[test]
fn a_stop_inside_a_block_keeps_the_steps_taken() {
    let mut rng = SplitMix64::new(82);
    let (net, data) = big_case(&mut rng, Head::CeClasses, 1, 45);
    let batch = data.batch(&net);
    let mut a = net.clone();
    let mut progress = TrainProgress::default();
    let mut asked = 0;
    let err = a
        .train_steps_until(&batch, &mut progress, 100, 0.05, &mut || {
            asked += 1;
            asked > 10 // asked before steps 1, 2, ...: stops before step 11
        })
        .unwrap_err();
    assert!(matches!(err, Error::Interrupted), "{err:?}");
    assert_eq!(progress.next_sample, 11);
    let (stepped, _) = one_step_at_a_time(&net, &batch, 11, 0.05);
    assert_close_scaled(
        &flat_params(&a),
        &flat_params(&stepped),
        PARAM_REL,
        "11 steps",
    );
    a.train_steps(&batch, &mut progress, 34, 0.05).unwrap();
    assert_eq!(progress.epoch_losses.len(), 1);
    let (stepped, losses) = one_step_at_a_time(&net, &batch, 45, 0.05);
    assert_close(&progress.epoch_losses, &losses, LOSS_REL, 0.0, "epoch loss");
    assert_close_scaled(
        &flat_params(&a),
        &flat_params(&stepped),
        PARAM_REL,
        "45 steps",
    );
}
