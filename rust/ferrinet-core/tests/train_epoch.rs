//! `train_epoch` (mini-batch training) against the second part of docs/maths.md: the epoch
//! (shuffle, batches, reported loss), warm starts and reproducibility, dropout, L2, sample
//! weights, clipping, divergence, and the options it refuses. The optimizers' own formulas are
//! in tests/optimizers.rs.
//!
//! Exactness: `train_epoch` with `Optimizer::sgd` on batches taken in order runs the same
//! operations as `backward` on those batches (the same backprop, then `p - lr * g`), so those
//! comparisons are bit for bit. `train` (per-sample SGD) is a fused kernel that rounds
//! differently (see tests/training.rs), so it is compared to 1e-12.

mod common;

use common::{
    assert_close, assert_close_scaled, bits, flat_params, int_in, param_bits, random_case,
    random_vec, Data, Head, OwnedTargets, HEADS,
};
use ferrinet_core::shuffle;
use ferrinet_core::{
    Activation, Batch, EpochOptions, EpsPlacement, Error, Loss, MatRef, NeuralNetwork, Optimizer,
    SplitMix64, TrainingState,
};

type Params = Vec<(Vec<f64>, Vec<f64>)>;

fn state(opt: Optimizer, seed: u64, net: &NeuralNetwork) -> TrainingState {
    TrainingState::new(opt, seed, net.layers().len()).unwrap()
}

fn in_order(batch_size: usize) -> EpochOptions {
    EpochOptions {
        shuffle: false,
        ..EpochOptions::new(batch_size)
    }
}

/// SplitMix64 and uniform() as docs/maths.md writes them, independently of src/rng.rs.
struct Documented(u64);

impl Documented {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 * 2f64.powi(-53)
    }

    /// Fisher-Yates (Durstenfeld) on 0..n: for i = n-1 down to 1, j = floor(uniform() * (i+1)).
    fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = (self.uniform() * (i + 1) as f64).floor() as usize;
            order.swap(i, j);
        }
        order
    }
}

/// Rows `index` of a data set, in that order.
fn gather(data: &Data, index: &[usize]) -> Data {
    let mut x = Vec::new();
    for &k in index {
        x.extend_from_slice(&data.x[k * data.cols..(k + 1) * data.cols]);
    }
    let t = match &data.t {
        OwnedTargets::Dense { data: t, cols } => OwnedTargets::Dense {
            data: index
                .iter()
                .flat_map(|&k| t[k * cols..(k + 1) * cols].iter().copied())
                .collect(),
            cols: *cols,
        },
        OwnedTargets::Classes(c) => OwnedTargets::Classes(index.iter().map(|&k| c[k]).collect()),
    };
    Data {
        x,
        n: index.len(),
        cols: data.cols,
        t,
    }
}

/// A random case with at least `min_n` samples (random_case gives 1-4).
fn case_with_samples(
    rng: &mut SplitMix64,
    hidden: Option<Activation>,
    head: Head,
    depth: usize,
    n: usize,
) -> (NeuralNetwork, Data) {
    let (net, data) = random_case(rng, hidden, head, depth);
    let x = random_vec(rng, n * data.cols, -1.5, 1.5);
    let t = common::random_targets(rng, head, n, net.n_outputs());
    let data = Data {
        x,
        n,
        cols: data.cols,
        t,
    };
    (net, data)
}

// ---------------------------------------------------------------------------------------------
// The epoch with SGD, in order: backward per batch.

/// `backward`'s batch step, W - lr dW with the dW of `gradients()`, taken by hand (one
/// sample's `backward` is `train`'s fused step instead, which rounds w + s x once).
fn sgd_step_by_hand(net: &mut NeuralNetwork, slice: &Batch, lr: f64) -> f64 {
    let (loss, grads) = net.gradients(slice).unwrap();
    let stepped = net
        .parameters()
        .into_iter()
        .zip(&grads)
        .map(|((w, b), g)| {
            let w = w.iter().zip(&g.weights).map(|(w, g)| w - lr * g).collect();
            let b = b.iter().zip(&g.biases).map(|(b, g)| b - lr * g).collect();
            (w, b)
        })
        .collect();
    net.set_parameters(stepped).unwrap();
    loss
}

/// docs/maths.md: batches are consecutive slices of batch_size samples (the last may be smaller),
/// each one SGD step, and the epoch loss is (sum of L_b * n_b) / n. With `Optimizer::sgd` and no
/// shuffle this is W - lr dW (`backward`'s batch step) on each slice in turn, bit for bit;
/// batch_size >= n is one step on the whole batch.
#[test]
fn sgd_in_order_is_backward_on_each_slice_bit_for_bit() {
    let mut rng = SplitMix64::new(91);
    for i in 0..60 {
        let head = HEADS[i % HEADS.len()];
        let n = int_in(&mut rng, 1, 11);
        let (net, data) = case_with_samples(&mut rng, None, head, i % 4, n);
        let batch = data.batch(&net);
        let lr = [0.03, 0.01, 0.02][i % 3];
        for batch_size in [1, 2, 3, n, n + 5, usize::MAX] {
            let mut trained = net.clone();
            let mut st = state(Optimizer::sgd(lr), 1, &net);
            let loss = trained
                .train_epoch(&batch, &in_order(batch_size), &mut st)
                .unwrap();

            let mut manual = net.clone();
            let (mut total, mut start) = (0.0, 0);
            while start < n {
                let end = start.saturating_add(batch_size).min(n);
                let l = sgd_step_by_hand(&mut manual, &batch.rows_range(start, end), lr);
                total += l * (end - start) as f64;
                start = end;
            }
            let what = format!("case {i}, batch_size {batch_size}");
            assert_eq!(loss.to_bits(), (total / n as f64).to_bits(), "{what}: loss");
            assert_eq!(param_bits(&trained), param_bits(&manual), "{what}: weights");
            assert_eq!(st.steps() as usize, n.div_ceil(batch_size.min(n)), "{what}");
            assert_eq!(st.epochs(), 1);
        }
    }
}

/// batch_size = 1, no shuffle, SGD for one epoch is the article's per-sample `train` for one
/// epoch. Not bit for bit: `train` runs the fused per-sample kernel (W += -(lr delta) x with
/// FMA), train_epoch materialises dW and applies p - lr * g; they differ by ~1 ulp per step
/// (measured worst: 1e-14 relative), asked to 1e-12.
#[test]
fn batch_size_one_sgd_epoch_equals_per_sample_train() {
    let mut rng = SplitMix64::new(92);
    let mut worst = 0.0f64;
    for i in 0..60 {
        let head = HEADS[i % HEADS.len()];
        let n = int_in(&mut rng, 1, 9);
        let (net, data) = case_with_samples(&mut rng, None, head, i % 4, n);
        let batch = data.batch(&net);
        let lr = [0.1, 0.02, 0.3][i % 3];
        let mut per_sample = net.clone();
        let losses = per_sample.train(&batch, 1, lr).unwrap();
        let mut epoch = net.clone();
        let mut st = state(Optimizer::sgd(lr), 5, &net);
        let loss = epoch.train_epoch(&batch, &in_order(1), &mut st).unwrap();
        let what = format!("case {i}");
        worst = worst.max(assert_close(
            &[loss],
            &losses,
            1e-12,
            f64::MIN_POSITIVE,
            &what,
        ));
        let (got, want) = (flat_params(&epoch), flat_params(&per_sample));
        worst = worst.max(assert_close(&got, &want, 1e-12, f64::MIN_POSITIVE, &what));
    }
    eprintln!("train_epoch(batch 1) vs train: worst relative difference {worst:e}");
}

/// The learning rate of the state (a schedule may set it) is the one used, not the optimizer's.
/// 0 is allowed (a schedule may anneal to 0) and then a step changes nothing, AdamW's decay
/// included; a negative or non-finite rate is refused.
#[test]
fn the_state_learning_rate_is_the_one_used() {
    let mut rng = SplitMix64::new(93);
    let (net, data) = case_with_samples(&mut rng, None, Head::MseIdentity, 2, 6);
    let batch = data.batch(&net);
    let mut st = state(Optimizer::sgd(0.1), 0, &net);
    st.set_learning_rate(0.025).unwrap();
    assert_eq!(st.learning_rate(), 0.025);
    assert_eq!(st.optimizer().lr(), 0.1);
    let mut trained = net.clone();
    trained.train_epoch(&batch, &in_order(6), &mut st).unwrap();
    let mut manual = net.clone();
    manual.backward(&batch, 0.025).unwrap();
    assert_eq!(param_bits(&trained), param_bits(&manual));
    for lr in [-1.0, -f64::MIN_POSITIVE, f64::NAN, f64::INFINITY] {
        assert!(
            matches!(st.set_learning_rate(lr), Err(Error::Value(_))),
            "{lr}"
        );
    }
    assert_eq!(st.learning_rate(), 0.025);

    let adamw = Optimizer::Adam {
        lr: 0.01,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.1,
        amsgrad: false,
        decoupled: true,
        eps_placement: EpsPlacement::Pytorch,
    };
    for opt in [Optimizer::sgd(0.1), Optimizer::adam(0.01), adamw] {
        let mut st = state(opt, 0, &net);
        st.set_learning_rate(0.0).unwrap();
        let mut frozen = net.clone();
        frozen
            .train_epoch(&batch, &EpochOptions::new(2), &mut st)
            .unwrap();
        assert_eq!(
            param_bits(&frozen),
            param_bits(&net),
            "{opt:?} moved at lr 0"
        );
        assert_eq!(st.steps(), 3);
    }
}

/// `train_epoch_until` asks before every batch after the first; stopping after one batch leaves
/// the network and state of that batch, and the epoch is not counted.
#[test]
fn an_interrupted_epoch_keeps_the_batches_done() {
    let mut rng = SplitMix64::new(107);
    let (net, data) = case_with_samples(&mut rng, None, Head::Bce, 1, 7);
    let batch = data.batch(&net);
    let mut a = net.clone();
    let mut st = state(Optimizer::sgd(0.05), 0, &net);
    let mut asked = 0;
    let result = a.train_epoch_until(&batch, &in_order(3), &mut st, &mut || {
        asked += 1;
        true
    });
    assert!(matches!(result, Err(Error::Interrupted)), "{result:?}");
    assert_eq!(asked, 1);
    assert_eq!((st.steps(), st.epochs()), (1, 0));
    let mut manual = net.clone();
    manual.backward(&batch.rows_range(0, 3), 0.05).unwrap();
    assert_eq!(param_bits(&a), param_bits(&manual));

    // Never stopping is train_epoch.
    let mut b = net.clone();
    let mut st_b = state(Optimizer::sgd(0.05), 0, &net);
    let lb = b
        .train_epoch_until(&batch, &in_order(3), &mut st_b, &mut || false)
        .unwrap();
    let mut c = net.clone();
    let lc = c
        .train_epoch(
            &batch,
            &in_order(3),
            &mut state(Optimizer::sgd(0.05), 0, &net),
        )
        .unwrap();
    assert_eq!(
        (lb.to_bits(), param_bits(&b)),
        (lc.to_bits(), param_bits(&c))
    );
}

// ---------------------------------------------------------------------------------------------
// Warm starts, reproducibility, shuffling.

/// Everything a run depends on: shuffle, dropout masks, Adam's moments, L2 and clipping.
fn full_options() -> EpochOptions {
    EpochOptions {
        batch_size: 3,
        shuffle: true,
        l2: 1e-3,
        dropout: vec![0.2, 0.0],
        clip_norm: Some(0.5),
    }
}

/// Two epochs with one state are one continued run: a copy of (network, state) taken after
/// the first epoch continues exactly like the original; the same seed reproduces every bit; a
/// fresh state after epoch 1, or another seed, gives another run.
#[test]
fn epochs_continue_the_state_and_a_seed_reproduces_them() {
    let mut rng = SplitMix64::new(94);
    for i in 0..12 {
        let head = HEADS[i % HEADS.len()];
        let (net, data) = case_with_samples(&mut rng, Some(Activation::Tanh), head, 1, 10);
        let batch = data.batch(&net);
        let options = full_options();
        let run = |seed: u64, epochs: usize| {
            let mut a = net.clone();
            let mut st = state(Optimizer::adam(0.01), seed, &net);
            let losses: Vec<f64> = (0..epochs)
                .map(|_| a.train_epoch(&batch, &options, &mut st).unwrap())
                .collect();
            (a, st, losses)
        };
        let (a, st_a, losses_a) = run(11, 2);
        assert_eq!((st_a.epochs(), st_a.steps()), (2, 8));

        let (b, st_b, losses_b) = run(11, 2);
        assert_eq!(
            bits(&losses_a),
            bits(&losses_b),
            "case {i}: not reproducible"
        );
        assert_eq!(param_bits(&a), param_bits(&b), "case {i}: not reproducible");
        assert_eq!(st_a, st_b);

        // Warm start from a copy taken after epoch 1.
        let (one, st_one, _) = run(11, 1);
        let (mut c, mut st_c) = (one.clone(), st_one.clone());
        let second = c.train_epoch(&batch, &options, &mut st_c).unwrap();
        assert_eq!(
            second.to_bits(),
            losses_a[1].to_bits(),
            "case {i}: warm start"
        );
        assert_eq!(param_bits(&c), param_bits(&a), "case {i}: warm start");
        assert_eq!(st_c, st_a);

        // A fresh state for epoch 2 (new generator, zero moments) is another run.
        let mut d = one.clone();
        let mut fresh = state(Optimizer::adam(0.01), 11, &net);
        d.train_epoch(&batch, &options, &mut fresh).unwrap();
        assert_ne!(
            param_bits(&d),
            param_bits(&a),
            "case {i}: the state carried nothing"
        );

        // Another seed shuffles (and drops) differently.
        let (e, _, losses_e) = run(12, 2);
        assert_ne!(param_bits(&e), param_bits(&a), "case {i}: seed ignored");
        assert_ne!(bits(&losses_e), bits(&losses_a), "case {i}: seed ignored");
    }
}

/// `shuffle` is the documented Fisher-Yates with j = floor(uniform() * (i + 1)), drawing
/// exactly n - 1 numbers, and gives a permutation.
#[test]
fn shuffle_is_the_documented_fisher_yates() {
    for seed in [0, 1, 42, 0xDEAD_BEEF, u64::MAX] {
        for n in [0, 1, 2, 3, 5, 10, 100, 1000, 4097] {
            let mut expected_rng = Documented(seed);
            let expected = expected_rng.permutation(n);
            let mut rng = SplitMix64::new(seed);
            let mut order: Vec<usize> = (0..n).collect();
            shuffle(&mut order, &mut rng);
            assert_eq!(order, expected, "seed {seed}, n {n}");
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert!(
                sorted.into_iter().eq(0..n),
                "seed {seed}, n {n}: not a permutation"
            );
            // Both generators drew the same count of numbers.
            assert_eq!(rng.next_u64(), expected_rng.next(), "seed {seed}, n {n}");
        }
    }
    // It does shuffle: 1000 elements are not left in order.
    let mut order: Vec<usize> = (0..1000).collect();
    shuffle(&mut order, &mut SplitMix64::new(3));
    assert!(order.iter().enumerate().filter(|(i, &k)| *i == k).count() < 20);
}

/// The data as a batch, with sample weights when given.
fn batch_of<'a>(net: &NeuralNetwork, data: &'a Data, weights: Option<&'a [f64]>) -> Batch<'a> {
    match weights {
        Some(w) => net.weighted_batch(data.inputs(), data.t.view(), w).unwrap(),
        None => data.batch(net),
    }
}

/// The epoch's shuffle is the first thing drawn from a generator seeded with the state's seed:
/// a shuffled epoch equals an epoch in order over the data permuted by the documented
/// Fisher-Yates (with sample weights permuted alongside), bit for bit.
#[test]
fn a_shuffled_epoch_is_an_ordered_epoch_over_the_documented_permutation() {
    let mut rng = SplitMix64::new(95);
    for i in 0..30 {
        let head = HEADS[i % HEADS.len()];
        let n = int_in(&mut rng, 2, 13);
        let (net, data) = case_with_samples(&mut rng, None, head, i % 3, n);
        let weights: Vec<f64> = (0..n).map(|_| 0.25 + rng.uniform()).collect();
        let seed = rng.next_u64();
        let order = Documented(seed).permutation(n);
        let permuted = gather(&data, &order);
        let permuted_weights: Vec<f64> = order.iter().map(|&k| weights[k]).collect();
        for weighted in [false, true] {
            let batch = batch_of(&net, &data, weighted.then_some(&weights[..]));
            let batch_p = batch_of(&net, &permuted, weighted.then_some(&permuted_weights[..]));
            let mut shuffled = net.clone();
            let mut st = state(Optimizer::adam(0.02), seed, &net);
            let options = EpochOptions::new(4);
            let l1 = shuffled.train_epoch(&batch, &options, &mut st).unwrap();
            let mut ordered = net.clone();
            let mut st_o = state(Optimizer::adam(0.02), seed, &net);
            let l2 = ordered
                .train_epoch(&batch_p, &in_order(4), &mut st_o)
                .unwrap();
            assert_eq!(l1.to_bits(), l2.to_bits(), "case {i}, weighted {weighted}");
            assert_eq!(param_bits(&shuffled), param_bits(&ordered), "case {i}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Dropout.

/// The network that dropout with per-unit factors `masks[l]` (0 or 1/(1-p); empty: no dropout
/// on layer l) computes for one sample: the next layer reads a * m, and W (a * m) = (W diag m) a,
/// so it is the network with W[l+1]'s column i scaled by masks[l][i].
fn masked_params(params: &Params, masks: &[Vec<f64>]) -> Params {
    let mut p = params.clone();
    for (l, mask) in masks.iter().enumerate() {
        if mask.is_empty() {
            continue;
        }
        let width = mask.len();
        for row in p[l + 1].0.chunks_exact_mut(width) {
            for (w, &m) in row.iter_mut().zip(mask) {
                *w *= m;
            }
        }
    }
    p
}

/// The dropped objective of a batch for fixed masks (one set per sample), and its gradient,
/// from per-sample masked networks: L = mean of the per-sample losses, and the gradient of
/// W[l+1][j][i] is m_i times that of the masked weight.
fn masked_loss_and_gradients(
    net: &NeuralNetwork,
    params: &Params,
    batch: &Batch,
    samples: &[usize],
    masks: &[Vec<Vec<f64>>],
) -> (f64, Params) {
    let mut probe = net.clone();
    let n = samples.len() as f64;
    let mut loss = 0.0;
    let mut grads: Params = params
        .iter()
        .map(|(w, b)| (vec![0.0; w.len()], vec![0.0; b.len()]))
        .collect();
    for (&k, mask) in samples.iter().zip(masks) {
        probe.set_parameters(masked_params(params, mask)).unwrap();
        let (l, g) = probe.gradients(&batch.rows_range(k, k + 1)).unwrap();
        loss += l / n;
        for (layer, (acc, gl)) in grads.iter_mut().zip(&g).enumerate() {
            let below = layer.checked_sub(1).map(|b| &mask[b]);
            let width = gl.weights.len() / gl.biases.len();
            for (p, (a, &v)) in acc.0.iter_mut().zip(&gl.weights).enumerate() {
                let m = below
                    .filter(|m| !m.is_empty())
                    .map_or(1.0, |m| m[p % width]);
                *a += m * v / n;
            }
            for (a, &v) in acc.1.iter_mut().zip(&gl.biases) {
                *a += v / n;
            }
        }
    }
    (loss, grads)
}

/// The masks of one batch, drawn as docs/maths.md says: for each layer in order with p > 0, a
/// (n_b, width) row-major block of keep = uniform() >= p. Returns masks[sample][layer].
fn draw_masks(
    rng: &mut Documented,
    rates: &[f64],
    widths: &[usize],
    n_b: usize,
) -> Vec<Vec<Vec<f64>>> {
    let mut masks = vec![vec![Vec::new(); rates.len()]; n_b];
    for (l, (&p, &w)) in rates.iter().zip(widths).enumerate() {
        if p == 0.0 {
            continue;
        }
        let scale = 1.0 / (1.0 - p);
        for sample in masks.iter_mut() {
            sample[l] = (0..w)
                .map(|_| if rng.uniform() >= p { scale } else { 0.0 })
                .collect();
        }
    }
    masks
}

fn dropout_net(head: Head, seed: u64) -> NeuralNetwork {
    NeuralNetwork::<f64>::new(
        &[4, 6, 5, head_width(head)],
        &[Activation::Tanh, Activation::Sigmoid],
        Some(head.output()),
        head.loss(),
        seed,
    )
    .unwrap()
}

fn head_width(head: Head) -> usize {
    match head {
        Head::CeClasses | Head::CeProbs => 3,
        _ => 2,
    }
}

fn dropout_data(rng: &mut SplitMix64, head: Head, n: usize) -> Data {
    Data {
        x: random_vec(rng, n * 4, -1.5, 1.5),
        n,
        cols: 4,
        t: common::random_targets(rng, head, n, head_width(head)),
    }
}

fn sub(a: &Params, b: &Params) -> Vec<f64> {
    let flat = |p: &Params| -> Vec<f64> {
        p.iter()
            .flat_map(|(w, b)| w.iter().chain(b).copied().collect::<Vec<_>>())
            .collect()
    };
    flat(a).iter().zip(flat(b)).map(|(x, y)| x - y).collect()
}

fn flat(p: &Params) -> Vec<f64> {
    p.iter()
        .flat_map(|(w, b)| w.iter().chain(b).copied().collect::<Vec<_>>())
        .collect()
}

/// A whole epoch with dropout (shuffled, batches of 3 of 8 samples, rates 0.5 and 0.25, SGD),
/// replayed with the documented draws (the shuffle, then per batch each dropout layer's
/// (n_b, width) block) and per-sample masked networks: the same epoch loss and weights to 1e-12
/// (the replay scales weights where the kernel scales activations, and sums per sample: a few
/// ulps, measured worst 6e-16).
#[test]
fn dropout_epoch_equals_a_replay_with_the_documented_masks() {
    let mut rng = SplitMix64::new(96);
    let rates = [0.5, 0.25, 0.0];
    for (i, head) in HEADS.into_iter().enumerate() {
        let net = dropout_net(head, 100 + i as u64);
        let n = 8;
        let data = dropout_data(&mut rng, head, n);
        let batch = data.batch(&net);
        let (lr, batch_size, seed) = (0.2, 3, 500 + i as u64);
        let options = EpochOptions {
            dropout: rates.to_vec(),
            ..EpochOptions::new(batch_size)
        };
        let mut trained = net.clone();
        let mut st = state(Optimizer::sgd(lr), seed, &net);
        let loss = trained.train_epoch(&batch, &options, &mut st).unwrap();

        let widths: Vec<usize> = net.layers().iter().map(|l| l.n_outputs()).collect();
        let mut draws = Documented(seed);
        let order = draws.permutation(n);
        let mut params = net.parameters();
        let mut total = 0.0;
        for samples in order.chunks(batch_size) {
            let masks = draw_masks(&mut draws, &rates, &widths, samples.len());
            let (l, g) = masked_loss_and_gradients(&net, &params, &batch, samples, &masks);
            total += l * samples.len() as f64;
            for ((w, b), (gw, gb)) in params.iter_mut().zip(&g) {
                w.iter_mut().zip(gw).for_each(|(p, g)| *p -= lr * g);
                b.iter_mut().zip(gb).for_each(|(p, g)| *p -= lr * g);
            }
        }
        let what = format!("{head:?}");
        assert_close(
            &[loss],
            &[total / n as f64],
            1e-12,
            f64::MIN_POSITIVE,
            &what,
        );
        assert_close_scaled(&flat_params(&trained), &flat(&params), 1e-12, &what);
        // And the masks mattered: without dropout the epoch is another one.
        let mut plain = net.clone();
        let l0 = plain
            .train_epoch(
                &batch,
                &EpochOptions::new(batch_size),
                &mut state(Optimizer::sgd(lr), seed, &net),
            )
            .unwrap();
        assert!(
            (l0 - loss).abs() > 1e-6 * loss.abs(),
            "{head:?}: dropout changed nothing"
        );
    }
}

/// The gradient train_epoch applies under dropout is the gradient of the dropped network for
/// the masks drawn: one SGD step with lr = 1 on one batch (g = W0 - W1) against central
/// differences of the masked objective (the tolerance and floor of tests/gradient_check.rs).
#[test]
fn dropout_gradients_match_finite_differences_for_the_drawn_masks() {
    const TOL: f64 = 1e-6;
    const H: f64 = 1e-6;
    let mut rng = SplitMix64::new(97);
    let rates = [0.5, 0.3, 0.0];
    let mut worst = 0.0f64;
    for (i, head) in HEADS.into_iter().chain(HEADS).enumerate() {
        let net = dropout_net(head, 200 + i as u64);
        let n = 1 + i % 5;
        let data = dropout_data(&mut rng, head, n);
        let batch = data.batch(&net);
        let seed = 700 + i as u64;
        let options = EpochOptions {
            dropout: rates.to_vec(),
            ..in_order(n)
        };
        let mut stepped = net.clone();
        let loss = stepped
            .train_epoch(
                &batch,
                &options,
                &mut state(Optimizer::sgd(1.0), seed, &net),
            )
            .unwrap();
        let applied = sub(&net.parameters(), &stepped.parameters());

        let widths: Vec<usize> = net.layers().iter().map(|l| l.n_outputs()).collect();
        let masks = draw_masks(&mut Documented(seed), &rates, &widths, n);
        let samples: Vec<usize> = (0..n).collect();
        let params = net.parameters();
        let (l_masked, _) = masked_loss_and_gradients(&net, &params, &batch, &samples, &masks);
        assert_close(
            &[loss],
            &[l_masked],
            1e-12,
            f64::MIN_POSITIVE,
            &format!("case {i} loss"),
        );

        let floor = 32.0 * f64::EPSILON * loss.abs().max(1.0) / (2.0 * H) / TOL;
        let mut p = 0;
        for l in 0..params.len() {
            for is_bias in [false, true] {
                let len = if is_bias {
                    params[l].1.len()
                } else {
                    params[l].0.len()
                };
                for q in 0..len {
                    let at = |delta: f64| {
                        let mut moved = params.clone();
                        let v = if is_bias {
                            &mut moved[l].1[q]
                        } else {
                            &mut moved[l].0[q]
                        };
                        *v += delta;
                        let stored = *v;
                        (
                            stored,
                            masked_loss_and_gradients(&net, &moved, &batch, &samples, &masks).0,
                        )
                    };
                    let ((hi, l_hi), (lo, l_lo)) = (at(H), at(-H));
                    let numeric = (l_hi - l_lo) / (hi - lo);
                    let analytic = applied[p];
                    let rel =
                        (analytic - numeric).abs() / analytic.abs().max(numeric.abs()).max(floor);
                    assert!(
                        rel <= TOL,
                        "case {i} {head:?}: layer {l} {}[{q}]: {analytic:e} vs {numeric:e} ({rel:e})",
                        if is_bias { "b" } else { "W" }
                    );
                    worst = worst.max(rel);
                    p += 1;
                }
            }
        }
    }
    eprintln!("dropout gradients vs finite differences: worst relative error {worst:e}");
}

/// A dropped unit contributes nothing: with one sample, every unit the drawn mask drops keeps
/// its incoming weights, its bias and its outgoing weights bit for bit through an SGD step,
/// and every kept unit's bias moves.
#[test]
fn dropped_units_get_no_gradient() {
    let mut rng = SplitMix64::new(98);
    let rates = [0.5, 0.5, 0.0];
    let mut dropped_seen = 0;
    for i in 0..30 {
        let head = HEADS[i % HEADS.len()];
        let net = dropout_net(head, 300 + i as u64);
        let data = dropout_data(&mut rng, head, 1);
        let seed = 900 + i as u64;
        let options = EpochOptions {
            dropout: rates.to_vec(),
            ..in_order(1)
        };
        let mut stepped = net.clone();
        stepped
            .train_epoch(
                &data.batch(&net),
                &options,
                &mut state(Optimizer::sgd(0.5), seed, &net),
            )
            .unwrap();
        let widths: Vec<usize> = net.layers().iter().map(|l| l.n_outputs()).collect();
        let masks = draw_masks(&mut Documented(seed), &rates, &widths, 1).remove(0);
        let (before, after) = (net.parameters(), stepped.parameters());
        for l in 0..2 {
            let n_in = net.layers()[l].n_inputs();
            for (u, &m) in masks[l].iter().enumerate() {
                let row = |p: &Params| bits(&p[l].0[u * n_in..(u + 1) * n_in]);
                let column = |p: &Params| -> Vec<u64> {
                    p[l + 1]
                        .0
                        .chunks_exact(widths[l])
                        .map(|r| r[u].to_bits())
                        .collect()
                };
                if m == 0.0 {
                    dropped_seen += 1;
                    assert_eq!(
                        row(&after),
                        row(&before),
                        "case {i}: layer {l} unit {u} W row"
                    );
                    assert_eq!(after[l].1[u].to_bits(), before[l].1[u].to_bits());
                    assert_eq!(column(&after), column(&before), "case {i}: unit {u} out");
                } else {
                    assert_eq!(m, 2.0);
                    // A kept unit learns, unless everything above it was dropped (layer 0
                    // under a layer 1 that dropped all its units).
                    if l == 1 || masks[1].iter().any(|&m| m != 0.0) {
                        assert_ne!(after[l].1[u].to_bits(), before[l].1[u].to_bits());
                    }
                }
            }
        }
    }
    assert!(dropped_seen > 50, "{dropped_seen}");
}

/// Rates of 0 draw nothing: dropout [0, 0, 0] is no dropout, bit for bit, over two shuffled
/// epochs (a draw would shift the second epoch's shuffle). And a run with dropout is
/// reproducible from its seed while differing from the run without.
#[test]
fn zero_rates_draw_nothing_and_dropout_is_reproducible() {
    let mut rng = SplitMix64::new(99);
    for (i, head) in HEADS.into_iter().enumerate() {
        let net = dropout_net(head, 400 + i as u64);
        let data = dropout_data(&mut rng, head, 9);
        let batch = data.batch(&net);
        let run = |dropout: Vec<f64>| {
            let mut a = net.clone();
            let mut st = state(Optimizer::adam(0.01), 21, &net);
            let options = EpochOptions {
                dropout,
                ..EpochOptions::new(4)
            };
            let losses: Vec<u64> = (0..2)
                .map(|_| a.train_epoch(&batch, &options, &mut st).unwrap().to_bits())
                .collect();
            (losses, param_bits(&a))
        };
        let none = run(Vec::new());
        assert_eq!(run(vec![0.0; 3]), none, "{head:?}");
        let dropped = run(vec![0.5, 0.0, 0.0]);
        assert_eq!(
            run(vec![0.5, 0.0, 0.0]),
            dropped,
            "{head:?}: not reproducible"
        );
        assert_ne!(dropped.0[0], none.0[0], "{head:?}: p = 0.5 changed nothing");
        // Prediction never drops.
        let x = data.inputs();
        assert_eq!(net.predict(x).unwrap(), net.predict(x).unwrap());
    }
}

// ---------------------------------------------------------------------------------------------
// L2.

/// regularized_loss is compute_loss + (0.5 l2) sum W^2 and regularized_gradients is dW + l2 W
/// (db unchanged), as documented, bit for bit; and regularized_gradients matches central
/// differences of regularized_loss (tolerance and floor of tests/gradient_check.rs).
#[test]
fn l2_gradients_match_finite_differences_of_the_regularized_loss() {
    const TOL: f64 = 1e-6;
    const H: f64 = 1e-6;
    let mut rng = SplitMix64::new(100);
    let smooth = [Activation::Identity, Activation::Sigmoid, Activation::Tanh];
    let mut worst = 0.0f64;
    for i in 0..60 {
        let head = HEADS[i % HEADS.len()];
        let (mut net, data) = random_case(&mut rng, Some(smooth[i % 3]), head, i % 4);
        let batch = data.batch(&net);
        let l2 = [1e-3, 0.1, 1.0, 3.0][i % 4];

        let (loss, grads) = net.gradients(&batch).unwrap();
        let (rloss, rgrads) = net.regularized_gradients(&batch, l2).unwrap();
        let mut s = 0.0;
        for layer in net.layers() {
            for &w in layer.weights() {
                s += w * w;
            }
        }
        assert_eq!(
            rloss.to_bits(),
            (loss + (0.5 * l2) * s).to_bits(),
            "case {i}"
        );
        assert_eq!(
            net.regularized_loss(&batch, l2).unwrap().to_bits(),
            rloss.to_bits()
        );
        assert_eq!(
            net.regularized_loss(&batch, 0.0).unwrap().to_bits(),
            loss.to_bits()
        );
        for ((layer, g), r) in net.layers().iter().zip(&grads).zip(&rgrads) {
            let expected: Vec<f64> = g
                .weights
                .iter()
                .zip(layer.weights())
                .map(|(g, w)| g + l2 * w)
                .collect();
            assert_eq!(bits(&r.weights), bits(&expected), "case {i}: dW + l2 W");
            assert_eq!(bits(&r.biases), bits(&g.biases), "case {i}: db unchanged");
        }

        let floor = 32.0 * f64::EPSILON * rloss.abs().max(1.0) / (2.0 * H) / TOL;
        let params = net.parameters();
        let mut probe = net.clone();
        for (l, r) in rgrads.iter().enumerate() {
            for is_bias in [false, true] {
                let analytic_all = if is_bias { &r.biases } else { &r.weights };
                for (q, &analytic) in analytic_all.iter().enumerate() {
                    let mut at = |delta: f64| {
                        let mut moved = params.clone();
                        let v = if is_bias {
                            &mut moved[l].1[q]
                        } else {
                            &mut moved[l].0[q]
                        };
                        *v += delta;
                        let stored = *v;
                        probe.set_parameters(moved).unwrap();
                        (stored, probe.regularized_loss(&batch, l2).unwrap())
                    };
                    let ((hi, l_hi), (lo, l_lo)) = (at(H), at(-H));
                    let numeric = (l_hi - l_lo) / (hi - lo);
                    let rel =
                        (analytic - numeric).abs() / analytic.abs().max(numeric.abs()).max(floor);
                    assert!(
                        rel <= TOL,
                        "case {i}: layer {l} {q}: {analytic:e} vs {numeric:e} ({rel:e})"
                    );
                    worst = worst.max(rel);
                }
            }
        }

        // train_epoch's objective includes the penalty, and its step uses dW + l2 W.
        let mut trained = net.clone();
        let options = EpochOptions {
            l2,
            ..in_order(data.n)
        };
        let epoch = trained
            .train_epoch(&batch, &options, &mut state(Optimizer::sgd(0.1), 0, &net))
            .unwrap();
        let n = data.n as f64;
        assert_eq!(epoch.to_bits(), ((rloss * n) / n).to_bits(), "case {i}");
        let expected: Vec<u64> = params
            .iter()
            .zip(&rgrads)
            .flat_map(|((w, b), g)| {
                let w: Vec<f64> = w.iter().zip(&g.weights).map(|(p, g)| p - 0.1 * g).collect();
                let b: Vec<f64> = b.iter().zip(&g.biases).map(|(p, g)| p - 0.1 * g).collect();
                bits(&w).into_iter().chain(bits(&b))
            })
            .collect();
        assert_eq!(param_bits(&trained), expected, "case {i}");
    }
    eprintln!("L2 gradients vs finite differences: worst relative error {worst:e}");
}

// ---------------------------------------------------------------------------------------------
// Sample weights.

/// Integer sample weights are repeated samples: weight w_k is sample k taken w_k times (0:
/// left out). Same mean, summed in another order: loss and gradients agree to 1e-12 (relative
/// to each tensor's largest entry). Scaling all weights changes nothing (to 1e-12 as well).
#[test]
fn integer_sample_weights_equal_repeated_samples() {
    let mut rng = SplitMix64::new(101);
    let mut worst = 0.0f64;
    for i in 0..60 {
        let head = HEADS[i % HEADS.len()];
        let n = int_in(&mut rng, 1, 7);
        let (mut net, data) = case_with_samples(&mut rng, None, head, i % 4, n);
        let mut weights: Vec<f64> = (0..n).map(|_| int_in(&mut rng, 0, 3) as f64).collect();
        if weights.iter().all(|&w| w == 0.0) {
            weights[n - 1] = 2.0;
        }
        let repeated_index: Vec<usize> = (0..n)
            .flat_map(|k| std::iter::repeat_n(k, weights[k] as usize))
            .collect();
        let repeated = gather(&data, &repeated_index);

        let weighted = net
            .weighted_batch(data.inputs(), data.t.view(), &weights)
            .unwrap();
        let (lw, gw) = net.gradients(&weighted).unwrap();
        assert_eq!(lw.to_bits(), net.compute_loss(&weighted).unwrap().to_bits());
        let (lr_, gr) = net.gradients(&repeated.batch(&net)).unwrap();
        let what = format!("case {i} {head:?} weights {weights:?}");
        worst = worst.max(assert_close(&[lw], &[lr_], 1e-12, f64::MIN_POSITIVE, &what));
        for (a, b) in gw.iter().zip(&gr) {
            let (a, b) = (
                [&a.weights[..], &a.biases].concat(),
                [&b.weights[..], &b.biases].concat(),
            );
            worst = worst.max(assert_close_scaled(&a, &b, 1e-12, &what));
        }

        let scaled: Vec<f64> = weights.iter().map(|w| w * 0.37).collect();
        let (ls, gs) = net
            .gradients(
                &net.weighted_batch(data.inputs(), data.t.view(), &scaled)
                    .unwrap(),
            )
            .unwrap();
        assert_close(&[ls], &[lw], 1e-12, f64::MIN_POSITIVE, &what);
        for (a, b) in gs.iter().zip(&gw) {
            let (a, b) = (
                [&a.weights[..], &a.biases].concat(),
                [&b.weights[..], &b.biases].concat(),
            );
            assert_close_scaled(&a, &b, 1e-12, &what);
        }
    }
    eprintln!("weights vs repeated samples: worst relative difference {worst:e}");
}

#[test]
fn bad_sample_weights_are_refused() {
    let mut rng = SplitMix64::new(102);
    let (net, data) = case_with_samples(&mut rng, None, Head::CeClasses, 1, 3);
    let (x, t) = (data.inputs(), data.t.view());
    let nan = f64::NAN;
    for bad in [
        vec![0.0, 0.0, 0.0],
        vec![-0.0, 0.0, -0.0],
        vec![1.0, -1.0, 1.0],
        vec![1.0, 1.0, -1e-300],
        vec![1.0, nan, 1.0],
        vec![f64::INFINITY, 1.0, 1.0],
        vec![1.0, 1.0, f64::NEG_INFINITY],
        vec![1.0, 1.0],
        vec![1.0, 1.0, 1.0, 1.0],
        vec![],
    ] {
        match net.weighted_batch(x, t, &bad) {
            Err(Error::Value(msg)) => assert!(!msg.is_empty()),
            other => panic!("{bad:?} was accepted: {other:?}"),
        }
    }
    // Zeros are fine as long as one weight is not.
    net.weighted_batch(x, t, &[0.0, 0.0, 1e-300]).unwrap();
}

/// docs/maths.md: a batch whose weights sum to 0 has loss 0 and gradient 0; L2 still acts.
/// With batches of 2 over weights [0, 0, 1, 2], the first SGD step changes nothing (or only
/// applies the L2 term), and the epoch is the second batch's step.
#[test]
fn a_batch_whose_weights_sum_to_zero_has_loss_and_gradient_zero() {
    let mut rng = SplitMix64::new(108);
    for (i, head) in HEADS.into_iter().enumerate() {
        let (mut net, data) = case_with_samples(&mut rng, Some(Activation::Tanh), head, 1, 4);
        let weights = [0.0, 0.0, 1.0, 2.0];
        let batch = net
            .weighted_batch(data.inputs(), data.t.view(), &weights)
            .unwrap();
        let (loss, grads) = net.gradients(&batch.rows_range(0, 2)).unwrap();
        assert_eq!(loss, 0.0, "{head:?}");
        assert!(
            grads
                .iter()
                .all(|g| g.weights.iter().chain(&g.biases).all(|&v| v == 0.0)),
            "{head:?}: {grads:?}"
        );
        assert_eq!(net.compute_loss(&batch.rows_range(0, 2)).unwrap(), 0.0);

        let lr = 0.1;
        let mut a = net.clone();
        let epoch = a
            .train_epoch(
                &batch,
                &in_order(2),
                &mut state(Optimizer::sgd(lr), 0, &net),
            )
            .unwrap();
        let mut manual = net.clone();
        let second = manual.backward(&batch.rows_range(2, 4), lr).unwrap();
        assert_eq!(param_bits(&a), param_bits(&manual), "case {i} {head:?}");
        assert_eq!(
            epoch.to_bits(),
            ((0.0 * 2.0 + second * 2.0) / 4.0f64).to_bits()
        );

        // With L2 the zero-weight batch is a pure decay step: W - lr * (l2 W), b unchanged.
        let l2 = 0.5;
        let mut d = net.clone();
        let options = EpochOptions { l2, ..in_order(2) };
        let one = batch.rows_range(0, 2);
        d.train_epoch(&one, &options, &mut state(Optimizer::sgd(lr), 0, &net))
            .unwrap();
        for ((w0, b0), (w1, b1)) in net.parameters().iter().zip(d.parameters()) {
            let decayed: Vec<f64> = w0.iter().map(|w| w - lr * (0.0 + l2 * w)).collect();
            assert_eq!(bits(&w1), bits(&decayed), "{head:?}");
            assert_eq!(bits(&b1), bits(b0), "{head:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Gradient clipping.

/// With clip_norm below the gradient's global norm, the SGD update is lr * g * coef with
/// coef = clip_norm / (norm + 1e-6) (bit for bit, as documented), so its norm is at most
/// clip_norm * lr; with clip_norm above the norm, the step is the unclipped one, bit for bit.
#[test]
fn clipping_bounds_the_update_and_leaves_small_gradients_alone() {
    let mut rng = SplitMix64::new(103);
    for i in 0..60 {
        let head = HEADS[i % HEADS.len()];
        let (mut net, data) = random_case(&mut rng, None, head, i % 4);
        let batch = data.batch(&net);
        let lr = 0.3;
        let (_, grads) = net.gradients(&batch).unwrap();
        let mut s = 0.0;
        for g in &grads {
            for v in g.weights.iter().chain(&g.biases) {
                s += v * v;
            }
        }
        let norm = s.sqrt();
        if norm == 0.0 {
            continue;
        }
        let before = net.parameters();
        let step = |clip: Option<f64>| {
            let mut a = net.clone();
            let options = EpochOptions {
                clip_norm: clip,
                ..in_order(data.n)
            };
            a.train_epoch(&batch, &options, &mut state(Optimizer::sgd(lr), 0, &net))
                .unwrap();
            a
        };
        let unclipped = step(None);

        let clip = norm / 4.0;
        let clipped = step(Some(clip));
        let update = sub(&before, &clipped.parameters());
        let update_norm = update.iter().map(|u| u * u).sum::<f64>().sqrt();
        assert!(
            update_norm <= clip * lr * (1.0 + 1e-12),
            "case {i}: |update| = {update_norm} > {}",
            clip * lr
        );
        // The direction is kept and the size is lr * norm * coef (clip * lr, but for the 1e-6
        // of the formula).
        let expected_norm = lr * norm * (clip / (norm + 1e-6));
        assert_close(
            &[update_norm],
            &[expected_norm],
            1e-12,
            0.0,
            &format!("case {i}"),
        );
        let coef = clip / (norm + 1e-6);
        let expected: Vec<u64> = before
            .iter()
            .zip(&grads)
            .flat_map(|((w, b), g)| {
                let w: Vec<f64> = w
                    .iter()
                    .zip(&g.weights)
                    .map(|(p, g)| p - lr * (g * coef))
                    .collect();
                let b: Vec<f64> = b
                    .iter()
                    .zip(&g.biases)
                    .map(|(p, g)| p - lr * (g * coef))
                    .collect();
                bits(&w).into_iter().chain(bits(&b))
            })
            .collect();
        assert_eq!(param_bits(&clipped), expected, "case {i}");

        let loose = step(Some(norm * 4.0));
        assert_eq!(param_bits(&loose), param_bits(&unclipped), "case {i}");
    }
}

// ---------------------------------------------------------------------------------------------
// Divergence.

/// A linear regression network with a learning rate far too large: the weights grow
/// geometrically, the loss overflows after a few dozen steps.
fn diverging_case() -> (NeuralNetwork, Data) {
    let mut rng = SplitMix64::new(104);
    let net =
        NeuralNetwork::<f64>::new(&[3, 5, 2], &[Activation::Identity], None, Loss::Mse, 8).unwrap();
    let n = 6;
    let data = Data {
        x: random_vec(&mut rng, n * 3, -2.0, 2.0),
        n,
        cols: 3,
        t: OwnedTargets::Dense {
            data: random_vec(&mut rng, n * 2, -3.0, 3.0),
            cols: 2,
        },
    };
    (net, data)
}

/// train_epoch stops with Error::NonFinite; the network and the state are those after the last
/// batch that kept every weight finite: a replay one batch at a time from the start, stopped at
/// the first refused batch, ends with the same weights bit for bit and the same step count.
#[test]
fn train_epoch_divergence_keeps_the_last_finite_weights() {
    let (net, data) = diverging_case();
    let batch = data.batch(&net);
    for (opt, batch_size) in [(Optimizer::sgd(2.0), 2), (Optimizer::sgd(0.7), 1)] {
        let options = in_order(batch_size);
        let mut a = net.clone();
        let mut st = state(opt, 0, &net);
        let mut epochs = 0;
        let err = loop {
            match a.train_epoch(&batch, &options, &mut st) {
                Ok(loss) => {
                    epochs += 1;
                    assert!(epochs < 10_000 && loss.is_finite());
                }
                Err(e) => break e,
            }
        };
        assert!(matches!(err, Error::NonFinite(_)), "{err:?}");
        assert!(flat_params(&a).iter().all(|w| w.is_finite()));
        assert_ne!(
            param_bits(&a),
            param_bits(&net),
            "no good step at all: pick another lr"
        );
        assert!(st.steps() > 2, "diverged at once: {}", st.steps());
        assert_eq!(st.epochs(), epochs);
        let out = a.predict(data.inputs()).unwrap();
        assert_eq!(out.rows(), data.n);

        // Replay: one batch per call.
        let mut r = net.clone();
        let mut st_r = state(opt, 0, &net);
        'replay: loop {
            let mut start = 0;
            while start < data.n {
                let end = (start + batch_size).min(data.n);
                let one = batch.rows_range(start, end);
                if r.train_epoch(&one, &options, &mut st_r).is_err() {
                    break 'replay;
                }
                start = end;
            }
        }
        assert_eq!(param_bits(&a), param_bits(&r), "{opt:?}");
        assert_eq!(st.steps(), st_r.steps(), "{opt:?}");
        eprintln!(
            "{opt:?}, batch {batch_size}: diverged after {} good steps: {err}",
            st.steps()
        );
    }
}

/// With dropout, the state after a refused batch should be the state after the last good batch,
/// generator included, so that training resumed from it (say at a smaller learning rate) draws
/// the masks a run that stopped there would draw. Found failing: when the refused batch's loss
/// is non-finite while the weights are still finite, `guarded` returns on its fast path and
/// the masks that batch drew stay drawn (when a weight overflows instead, the checked replay
/// restores the state, masks included). Reported; un-ignore once src/training.rs restores the
/// generator on that path.
#[test]
fn a_refused_batch_leaves_the_generator_where_the_last_good_batch_left_it() {
    let (net, data) = diverging_case();
    let batch = data.batch(&net);
    let options = EpochOptions {
        dropout: vec![0.5, 0.0],
        ..in_order(1)
    };
    let mut a = net.clone();
    let mut st = state(Optimizer::sgd(2.0), 0, &net);
    let err = loop {
        if let Err(e) = a.train_epoch(&batch, &options, &mut st) {
            break e;
        }
    };
    assert!(matches!(err, Error::NonFinite(_)), "{err:?}");

    // Replay one batch per call; the state of a refused call is the one from before it.
    let mut r = net.clone();
    let mut st_r = state(Optimizer::sgd(2.0), 0, &net);
    'replay: loop {
        for k in 0..data.n {
            let before = st_r.clone();
            if r.train_epoch(&batch.rows_range(k, k + 1), &options, &mut st_r)
                .is_err()
            {
                st_r = before;
                break 'replay;
            }
        }
    }
    assert_eq!(param_bits(&a), param_bits(&r));
    assert_eq!(st.steps(), st_r.steps());
    // The states differ in the epoch counter only (the replay counts one per call): resuming
    // from each, from sane weights at a sane rate, must draw the same masks.
    for (s, n) in [(&mut st, &mut a), (&mut st_r, &mut r)] {
        s.set_learning_rate(1e-3).unwrap();
        n.set_parameters(net.parameters()).unwrap();
    }
    a.train_epoch(&batch, &options, &mut st).unwrap();
    r.train_epoch(&batch, &options, &mut st_r).unwrap();
    assert_eq!(
        param_bits(&a),
        param_bits(&r),
        "resumed runs drew different masks"
    );
}

/// The same for per-sample `train`: NonFinite, and the weights of the last good step, which a
/// replay with `train_steps` one step at a time reproduces bit for bit.
#[test]
fn train_divergence_keeps_the_last_finite_weights() {
    let (net, data) = diverging_case();
    let batch = data.batch(&net);
    for lr in [0.7, 2.0, 50.0] {
        let mut a = net.clone();
        let err = a.train(&batch, 10_000, lr).unwrap_err();
        assert!(matches!(err, Error::NonFinite(_)), "{err:?}");
        assert!(flat_params(&a).iter().all(|w| w.is_finite()), "lr {lr}");
        assert_ne!(
            param_bits(&a),
            param_bits(&net),
            "lr {lr}: no good step at all"
        );

        let mut r = net.clone();
        let mut progress = ferrinet_core::TrainProgress::default();
        let mut good = 0;
        while r.train_steps(&batch, &mut progress, 1, lr).is_ok() {
            good += 1;
            assert!(good < 60_000);
        }
        assert_eq!(param_bits(&a), param_bits(&r), "lr {lr}");
        eprintln!("train, lr {lr}: diverged after {good} good steps: {err}");
    }
}

/// A step refused by `backward` changes nothing either.
#[test]
fn backward_refuses_a_diverging_step_and_changes_nothing() {
    let (mut net, data) = diverging_case();
    let batch = data.batch(&net);
    let before = param_bits(&net);
    let err = net.backward(&batch, 1e308).unwrap_err();
    assert!(matches!(err, Error::NonFinite(_)), "{err:?}");
    assert_eq!(param_bits(&net), before);
}

// ---------------------------------------------------------------------------------------------
// Refused options.

#[test]
fn bad_epoch_options_are_refused_and_change_nothing() {
    let mut rng = SplitMix64::new(105);
    let (net, data) = case_with_samples(&mut rng, Some(Activation::Relu), Head::MseIdentity, 2, 5);
    let n_layers = net.layers().len();
    assert_eq!(n_layers, 3);
    let nan = f64::NAN;
    let mut bad: Vec<EpochOptions> = vec![EpochOptions::new(0)];
    for dropout in [
        vec![0.5],
        vec![0.5, 0.5],
        vec![0.5, 0.5, 0.0, 0.0],
        vec![0.5, 0.5, 0.5], // the output layer never drops
        vec![1.0, 0.0, 0.0],
        vec![-0.1, 0.0, 0.0],
        vec![0.0, nan, 0.0],
        vec![0.0, 0.0, nan],
    ] {
        bad.push(EpochOptions {
            dropout,
            ..EpochOptions::new(2)
        });
    }
    for clip in [0.0, -1.0, nan, f64::INFINITY] {
        bad.push(EpochOptions {
            clip_norm: Some(clip),
            ..EpochOptions::new(2)
        });
    }
    for l2 in [-1e-3, nan, f64::INFINITY] {
        bad.push(EpochOptions {
            l2,
            ..EpochOptions::new(2)
        });
    }
    let batch = data.batch(&net);
    for options in bad {
        assert!(
            matches!(options.check(n_layers), Err(Error::Value(_))),
            "{options:?} passed check"
        );
        let mut a = net.clone();
        let mut st = state(Optimizer::adam(0.01), 3, &net);
        let st_before = st.clone();
        let result = a.train_epoch(&batch, &options, &mut st);
        assert!(
            matches!(result, Err(Error::Value(_))),
            "{options:?}: {result:?}"
        );
        assert_eq!(param_bits(&a), param_bits(&net), "{options:?}");
        assert_eq!(st, st_before, "{options:?}: the state changed");
    }
    // The edges that are fine.
    for options in [
        EpochOptions::new(1),
        EpochOptions::new(usize::MAX),
        EpochOptions {
            dropout: vec![0.0, 0.999, 0.0],
            l2: 0.0,
            clip_norm: Some(f64::MIN_POSITIVE),
            ..EpochOptions::new(3)
        },
    ] {
        options.check(n_layers).unwrap();
    }
    let defaults = EpochOptions::new(32);
    assert!(defaults.shuffle && defaults.l2 == 0.0 && defaults.dropout.is_empty());
    assert_eq!(defaults.clip_norm, None);
}

/// A state made for another depth, or a batch checked for another network, is refused before
/// anything changes.
#[test]
fn a_state_or_batch_of_another_network_is_refused() {
    let mut rng = SplitMix64::new(106);
    let (net, data) = case_with_samples(&mut rng, Some(Activation::Tanh), Head::MseIdentity, 1, 4);
    let batch = data.batch(&net);
    let mut a = net.clone();
    let mut other_depth = TrainingState::new(Optimizer::adam(0.01), 0, 3).unwrap();
    let before = other_depth.clone();
    let r = a.train_epoch(&batch, &EpochOptions::new(2), &mut other_depth);
    assert!(matches!(r, Err(Error::Value(_))), "{r:?}");
    assert_eq!(other_depth, before);

    let other = NeuralNetwork::<f64>::new(
        &[net.n_inputs(), 3, net.n_outputs() + 1],
        &[Activation::Tanh],
        None,
        Loss::Mse,
        0,
    )
    .unwrap();
    let t = common::random_targets(&mut rng, Head::MseIdentity, 4, other.n_outputs());
    let foreign = other.batch(data.inputs(), t.view()).unwrap();
    let mut st = state(Optimizer::adam(0.01), 0, &net);
    let st_before = st.clone();
    let r = a.train_epoch(&foreign, &EpochOptions::new(2), &mut st);
    assert!(matches!(r, Err(Error::Value(_))), "{r:?}");
    assert_eq!(st, st_before);
    assert_eq!(param_bits(&a), param_bits(&net));
    let _ = MatRef::<f64>::new(&[], 0, 1);
}

// ---------------------------------------------------------------------------------------------
// Plain SGD on one thread makes a large layer's update inside its weight-gradient product
// (`NeuralNetwork::sgd_batch`): the same step as W -= lr dW on a materialised dW, rounded
// once instead of twice.

/// Against the materialised update (the same epoch with clip_norm = 1e300: a clip that never
/// triggers, which takes the unfused path), for shuffled epochs with sample weights and with
/// dropout, on layers that use the GEMM (batch 32 x 100 x 50 and 32 x 50 x 5). Measured worst
/// difference over 3 epochs: 3e-16 of the largest parameter and 2e-16 relative in a loss;
/// asked to 1e-14. The fused path did run: the bits differ. A wrong order (dx from the updated
/// weights, erratum 3) would differ by about lr * |dW| (1e-3 here), not by rounding.
#[test]
fn fused_sgd_matches_the_materialised_update() {
    let mut rng = SplitMix64::new(97);
    for (i, head) in [Head::CeClasses, Head::MseIdentity, Head::Bce]
        .into_iter()
        .enumerate()
    {
        let n = 200;
        let n_out = head_width(head);
        let net = NeuralNetwork::<f64>::new(
            &[100, 50, n_out],
            &[Activation::Relu],
            Some(head.output()),
            head.loss(),
            i as u64,
        )
        .unwrap();
        let data = Data {
            x: random_vec(&mut rng, n * 100, 0.0, 1.0),
            n,
            cols: 100,
            t: common::random_targets(&mut rng, head, n, n_out),
        };
        let weights = random_vec(&mut rng, n, 0.5, 2.0);
        for (with_weights, dropout) in [(false, vec![]), (true, vec![]), (false, vec![0.2, 0.0])] {
            let batch = if with_weights {
                batch_of(&net, &data, Some(&weights))
            } else {
                batch_of(&net, &data, None)
            };
            let fused_opts = EpochOptions {
                dropout: dropout.clone(),
                ..EpochOptions::new(32)
            };
            let plain_opts = EpochOptions {
                clip_norm: Some(1e300),
                ..fused_opts.clone()
            };
            let (mut fused, mut plain) = (net.clone(), net.clone());
            let mut st_f = state(Optimizer::sgd(0.05), 7, &net);
            let mut st_p = state(Optimizer::sgd(0.05), 7, &net);
            let (mut lf, mut lp) = (Vec::new(), Vec::new());
            for _ in 0..3 {
                lf.push(fused.train_epoch(&batch, &fused_opts, &mut st_f).unwrap());
                lp.push(plain.train_epoch(&batch, &plain_opts, &mut st_p).unwrap());
            }
            let what = format!("{head:?} weights {with_weights} dropout {dropout:?}");
            let wl = assert_close(&lf, &lp, 1e-14, 0.0, &format!("{what}: losses"));
            let (got, want) = (flat_params(&fused), flat_params(&plain));
            let wp = assert_close_scaled(&got, &want, 1e-14, &format!("{what}: parameters"));
            eprintln!("{what}: worst {wp:e} (parameters), {wl:e} (losses)");
            assert_ne!(
                param_bits(&fused),
                param_bits(&plain),
                "{what}: fused path ran"
            );
            assert_eq!(st_f.steps(), st_p.steps());
            assert_eq!(
                st_f.rng().state(),
                st_p.rng().state(),
                "{what}: same masks drawn"
            );
            assert!(lf[2] < lf[0], "{what}: it learns: {lf:?}");
        }
    }
}

/// An `epoch_batch` leaves the inputs' finite check to the epoch, which checks each row as it
/// gathers it; batches of 512 x 160 values are gathered by both threads at once on 2 threads.
/// With bad values in three rows, the error names, on 1 and 2 threads alike, the bad row that
/// comes first in the shuffled order (the batches before it were trained, then put back), and
/// the network and the state are as before the call.
#[test]
fn an_unchecked_epoch_names_the_first_bad_row_in_gathered_order_on_any_thread_count() {
    let (n, n_in, n_out) = (2048, 160, 3);
    let mut rng = SplitMix64::new(41);
    let mut x = random_vec(&mut rng, n * n_in, -1.0, 1.0);
    let classes: Vec<usize> = (0..n).map(|_| int_in(&mut rng, 0, n_out - 1)).collect();
    // Bad values at shuffled positions 1700, 1300 (batch 2, row 276: the second thread's
    // share) and 1500; the first in gathered order is position 1300.
    let seed = 12;
    let order = Documented(seed).permutation(n);
    let bad_rows = [order[1700], order[1300], order[1500]];
    for (i, &r) in bad_rows.iter().enumerate() {
        x[r * n_in + 7 + i] = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY][i];
    }
    let expected = format!("got inf at [{}, 8]", order[1300]);
    let net0 = NeuralNetwork::<f64>::new(
        &[n_in, 32, n_out],
        &[Activation::Relu],
        None,
        Loss::CrossEntropy,
        2,
    )
    .unwrap();
    for threads in [1, 2] {
        let mut net = net0.clone();
        net.set_n_threads(threads).unwrap();
        let xm = MatRef::new(&x, n, n_in).unwrap();
        let batch = net
            .epoch_batch(xm, ferrinet_core::Targets::Classes(&classes), None)
            .unwrap();
        let mut st = state(Optimizer::adam(0.01), seed, &net);
        let before = st.clone();
        let err = net
            .train_epoch(&batch, &EpochOptions::new(512), &mut st)
            .unwrap_err();
        let message = format!("{err}");
        assert!(
            matches!(err, Error::Value(_)) && message.contains(&expected),
            "{threads} thread(s): {message:?}, expected {expected:?}"
        );
        assert_eq!(param_bits(&net), param_bits(&net0), "{threads} thread(s)");
        assert_eq!(st.steps(), before.steps());
        assert_eq!(st.rng(), before.rng());
    }
}
