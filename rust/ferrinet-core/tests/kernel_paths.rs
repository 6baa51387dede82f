//! The kernels' paths agree with each other, and threads change nothing.
//!
//! A layer's products go through one of three kernels (src/kernels.rs): one sample at a time
//! (n = 1: a matrix-vector loop summing in 8 interleaved FMA lanes), a plain loop for small
//! batches (n * n_in * n_out <= 4096), or the `gemm` crate for larger ones. Each sums in its own
//! order, so a batch computed at once and the same samples computed one by one agree to a few
//! ulps, not bit for bit: `KERNEL_REL` (1e-12 relative to the largest entry of the tensor;
//! measured worst 2.3e-13 for predict, 7e-16 for gradients).
//!
//! Threads split a product over output blocks, never over a sum, so for one input the thread
//! count must not change a single bit, and repeated runs must give the same bits. (A small
//! network's training batch is split by rows instead: each thread sums its rows' gradients,
//! and those rounding differences are bounded by `KERNEL_REL`.)

mod common;

use common::{assert_close_scaled, bits, random_vec, Head, OwnedTargets, KERNEL_REL};
use ferrinet_core::{
    Activation, EpochOptions, LayerGradient, Loss, MatRef, NeuralNetwork, Optimizer, SplitMix64,
    TrainingState,
};

fn flat(g: &LayerGradient) -> Vec<f64> {
    g.weights.iter().chain(&g.biases).copied().collect()
}

/// predict and gradients on the whole batch vs sample by sample (the mean of the per-sample
/// gradients), for shapes that put the batch on each path.
#[test]
fn a_batch_at_once_equals_its_samples_one_by_one() {
    let mut rng = SplitMix64::new(61);
    // (sizes, hidden activation, head, n): the paths the batch takes are in the comments.
    let cases: [(&[usize], Activation, Head, usize); 6] = [
        (&[8, 8, 8], Activation::Tanh, Head::MseIdentity, 5), // small loop everywhere
        (&[33, 40, 19, 3], Activation::Tanh, Head::MseIdentity, 64), // gemm, gemm, small loop
        (&[784, 13, 10], Activation::Relu, Head::CeClasses, 16), // gemm (long sums), gemm
        (&[17, 65, 2], Activation::Sigmoid, Head::Bce, 40),   // gemm, small loop; odd tails
        (&[64, 64, 64, 5], Activation::LeakyRelu, Head::CeProbs, 9), // gemm, gemm, small loop
        (&[3, 300, 1], Activation::Tanh, Head::MseSigmoid, 7), // gemm (wide), small loop
    ];
    for (c, &(sizes, act, head, n)) in cases.iter().enumerate() {
        let hidden = vec![act; sizes.len() - 2];
        let out = Some(head.output());
        let mut net =
            NeuralNetwork::<f64>::new(sizes, &hidden, out, head.loss(), 7 + c as u64).unwrap();
        let x = random_vec(&mut rng, n * sizes[0], -1.5, 1.5);
        let t = common::random_targets(&mut rng, head, n, net.n_outputs());
        let xm = MatRef::new(&x, n, sizes[0]).unwrap();
        let batch = net.batch(xm, t.view()).unwrap();

        let all = net.predict(xm).unwrap();
        let mut one_by_one = Vec::new();
        for k in 0..n {
            one_by_one.extend_from_slice(net.predict(xm.rows_range(k, k + 1)).unwrap().as_slice());
        }
        assert_close_scaled(
            all.as_slice(),
            &one_by_one,
            KERNEL_REL,
            &format!("case {c}: predict"),
        );

        let (loss, grads) = net.gradients(&batch).unwrap();
        let mut mean_loss = 0.0;
        let mut mean: Vec<Vec<f64>> = grads.iter().map(|g| vec![0.0; flat(g).len()]).collect();
        for k in 0..n {
            let (l, g) = net.gradients(&batch.rows_range(k, k + 1)).unwrap();
            mean_loss += l / n as f64;
            for (acc, gl) in mean.iter_mut().zip(&g) {
                for (a, v) in acc.iter_mut().zip(flat(gl)) {
                    *a += v / n as f64;
                }
            }
        }
        assert_close_scaled(
            &[loss],
            &[mean_loss],
            KERNEL_REL,
            &format!("case {c}: loss"),
        );
        for (l, (g, m)) in grads.iter().zip(&mean).enumerate() {
            let what = format!("case {c}: layer {l} gradients");
            assert_close_scaled(&flat(g), m, KERNEL_REL, &what);
        }
    }
}

/// 512 samples x 256 inputs -> 128 -> 10, batches of 128: big enough that the first layer's
/// products are cut between the threads by neurons (`kernels::splits_product`), each block of
/// neurons one GEMM call over the whole batch. predict, gradients and a training epoch (Adam,
/// shuffled batches, so the optimizer state and the next step depend on every bit) give one
/// thread's bits on 2 and 4 threads, and every rerun gives the same bits, whatever ran
/// before. (Small networks split a batch by rows instead, and round differently:
/// `split_batches_keep_the_whole_batch_mean`.)
#[test]
fn thread_counts_are_deterministic_and_agree() {
    let (n, n_in, n_hidden, n_out) = (512, 256, 128, 10);
    let mut rng = SplitMix64::new(62);
    let x = random_vec(&mut rng, n * n_in, -1.0, 1.0);
    let classes: Vec<usize> = (0..n)
        .map(|_| common::int_in(&mut rng, 0, n_out - 1))
        .collect();
    let t = OwnedTargets::Classes(classes);
    let xm = MatRef::new(&x, n, n_in).unwrap();
    let net0 = NeuralNetwork::<f64>::new(
        &[n_in, n_hidden, n_out],
        &[Activation::Relu],
        None,
        Loss::CrossEntropy,
        3,
    )
    .unwrap();
    // Unset, the count is the process's default (the CPUs it may use, or the environment's).
    assert_eq!(net0.n_threads(), ferrinet_core::default_threads().unwrap());
    assert_eq!(net0.n_threads_setting(), None);
    let adam = Optimizer::adam(1e-3);
    let options = EpochOptions::new(128);
    let run = |threads: usize| {
        let mut net = net0.clone();
        net.set_n_threads(threads).unwrap();
        assert_eq!(net.n_threads(), threads);
        let batch = net.batch(xm, t.view()).unwrap();
        let out = bits(net.predict(xm).unwrap().as_slice());
        let (loss, grads) = net.gradients(&batch).unwrap();
        let grads: Vec<u64> = grads.iter().flat_map(|g| bits(&flat(g))).collect();
        let mut state = TrainingState::new(adam, 9, net.layers().len()).unwrap();
        let epoch = net.train_epoch(&batch, &options, &mut state).unwrap();
        (
            out,
            loss.to_bits(),
            grads,
            epoch.to_bits(),
            common::param_bits(&net),
        )
    };
    let by_count: Vec<_> = [1, 2, 4].iter().map(|&k| (k, run(k))).collect();
    for &(k, ref first) in &by_count {
        for again in [run(k), run(k)] {
            assert!(again == *first, "a rerun with {k} threads changed a bit");
        }
    }
    let one = &by_count[0].1;
    for (k, other) in &by_count[1..] {
        assert!(other.0 == one.0, "predict differs with {k} threads");
        assert!(other.1 == one.1, "the loss differs with {k} threads");
        assert!(other.2 == one.2, "the gradients differ with {k} threads");
        assert!(other.3 == one.3, "the epoch loss differs with {k} threads");
        assert!(
            other.4 == one.4,
            "the trained weights differ with {k} threads"
        );
    }
}

#[test]
fn zero_threads_are_refused() {
    let mut net = NeuralNetwork::<f64>::new(&[2, 1], &[], None, Loss::Mse, 0).unwrap();
    let before = (net.n_threads(), net.n_threads_setting());
    assert!(matches!(
        net.set_n_threads(0),
        Err(ferrinet_core::Error::Value(_))
    ));
    assert_eq!((net.n_threads(), net.n_threads_setting()), before);
}

/// A batch split across threads keeps each row's share of the mean: with sample weights (the
/// first share's all zero, so a share's own sum of weights would be 0) and without, for each
/// loss, the gradients and the loss with 2 and 3 threads agree with one thread to `KERNEL_REL`,
/// and the gradients differ from it in some bit (the split path did run).
#[test]
fn split_batches_keep_the_whole_batch_mean() {
    let (n, n_in, n_out) = (96, 20, 3);
    let mut rng = SplitMix64::new(63);
    let x = random_vec(&mut rng, n * n_in, -1.0, 1.0);
    let xm = MatRef::new(&x, n, n_in).unwrap();
    let mut w = random_vec(&mut rng, n, 0.0, 2.0);
    w[..32].iter_mut().for_each(|v| *v = 0.0);
    for (loss, out) in [
        (Loss::Mse, Some(Activation::Identity)),
        (Loss::BinaryCrossEntropy, None),
        (Loss::CrossEntropy, None),
        (Loss::Poisson, None),
    ] {
        let t: Vec<f64> = match loss {
            Loss::Mse => random_vec(&mut rng, n * n_out, -1.0, 1.0),
            _ => (0..n * n_out)
                .map(|i| if (i * 7) % 3 == 0 { 1.0 } else { 0.0 })
                .collect(),
        };
        let tm = MatRef::new(&t, n, n_out).unwrap();
        let net0 = NeuralNetwork::<f64>::new(&[n_in, 64, n_out], &[Activation::Tanh], out, loss, 5)
            .unwrap();
        for weights in [None, Some(&w[..])] {
            let grads = |k: usize| {
                let mut net = net0.clone();
                net.set_n_threads(k).unwrap();
                let targets = ferrinet_core::Targets::Dense(tm);
                let batch = match weights {
                    None => net.batch(xm, targets).unwrap(),
                    Some(w) => net.weighted_batch(xm, targets, w).unwrap(),
                };
                let (l, g) = net.gradients(&batch).unwrap();
                (l, g.iter().flat_map(flat).collect::<Vec<f64>>())
            };
            let (l1, g1) = grads(1);
            for k in [2, 3] {
                let (lk, gk) = grads(k);
                let what = format!("{loss:?}, weights {}, {k} threads", weights.is_some());
                assert_close_scaled(&[lk], &[l1], KERNEL_REL, &format!("loss: {what}"));
                assert_close_scaled(&gk, &g1, KERNEL_REL, &what);
                assert!(bits(&gk) != bits(&g1), "no bit changed: did {what} split?");
            }
        }
    }
}

#[test]
fn predicted_row_ranges_are_the_rows_of_the_whole_and_checked_block_by_block() {
    use ferrinet_core::{PredictScratch, PREDICT_BLOCK};
    let (n, n_in) = (3 * PREDICT_BLOCK + 17, 20);
    let mut rng = SplitMix64::new(8);
    let mut x = random_vec(&mut rng, n * n_in, -1.0, 1.0);
    let net =
        NeuralNetwork::<f64>::new(&[n_in, 16, 3], &[Activation::Tanh], None, Loss::Mse, 1).unwrap();
    let whole = net.predict(MatRef::new(&x, n, n_in).unwrap()).unwrap();
    let mut scratch = PredictScratch::default();
    for (start, end) in [
        (0, n),
        (PREDICT_BLOCK, n),
        (2 * PREDICT_BLOCK, 3 * PREDICT_BLOCK),
    ] {
        let xm = MatRef::new(&x, n, n_in).unwrap();
        let part = net.predict_rows_with(xm, start, end, &mut scratch).unwrap();
        assert_eq!(
            bits(part.as_slice()),
            bits(&whole.as_slice()[start * 3..end * 3])
        );
    }
    // A range must start on a block boundary and lie inside x.
    let xm = MatRef::new(&x, n, n_in).unwrap();
    for (start, end) in [(1, 10), (0, n + 1), (PREDICT_BLOCK, PREDICT_BLOCK)] {
        let err = net
            .predict_rows_with(xm, start, end, &mut scratch)
            .unwrap_err();
        assert!(err.to_string().contains("multiple of"), "{err}");
    }
    // A bad value is found in the block that holds it, with its row in x; one in a row outside
    // the range is not looked at.
    x[(n - 1) * n_in + 4] = f64::NAN;
    let xm = MatRef::new(&x, n, n_in).unwrap();
    let err = net.predict_rows_with(xm, 0, n, &mut scratch).unwrap_err();
    assert!(
        err.to_string().contains(&format!("at [{}, 4]", n - 1)),
        "{err}"
    );
    assert!(net
        .predict_rows_with(xm, 0, PREDICT_BLOCK, &mut scratch)
        .is_ok());
}
