//! `evaluate` / `evaluate_rows` (predict.rs): the loss and accuracy reduced block by block,
//! the same bits for any thread count and any cut of the rows at multiples of PREDICT_BLOCK,
//! equal to `Loss::value` of the whole output for a single block; and the running accuracy
//! of `train_epoch_measured`, counted from each batch's outputs before its step.

use ferrinet_core::{
    Accuracy, Activation, EpochOptions, EvalSums, Loss, MatRef, NeuralNetwork, Optimizer,
    SplitMix64, Targets, TrainingState, PREDICT_BLOCK,
};

fn data(n: usize, d: usize, seed: u64) -> (Vec<f64>, Vec<usize>, Vec<f64>) {
    let mut rng = SplitMix64::new(seed);
    let x = (0..n * d).map(|_| rng.uniform() * 4.0 - 2.0).collect();
    let y = (0..n).map(|_| (rng.uniform() * 3.0) as usize).collect();
    let w = (0..n).map(|_| rng.uniform() + 0.1).collect();
    (x, y, w)
}

fn net(threads: usize) -> NeuralNetwork {
    let mut net = NeuralNetwork::new(
        &[5, 32, 3],
        &[Activation::Tanh],
        None,
        Loss::CrossEntropy,
        3,
    )
    .unwrap();
    net.set_n_threads(threads).unwrap();
    net
}

#[test]
fn evaluate_is_the_same_bits_for_any_thread_count_and_any_cut_into_blocks() {
    let n = 5 * PREDICT_BLOCK + 37;
    let (x, y, w) = data(n, 5, 1);
    let xm = MatRef::new(&x, n, 5).unwrap();
    let whole = net(1);
    for weighted in [false, true] {
        let batch = match weighted {
            true => whole.weighted_batch(xm, Targets::Classes(&y), &w).unwrap(),
            false => whole.batch(xm, Targets::Classes(&y)).unwrap(),
        };
        let reference = whole.evaluate(&batch).unwrap();
        for threads in [2, 3, 8] {
            assert_eq!(net(threads).evaluate(&batch).unwrap(), reference);
        }
        // in calls of 1, 2, then 3 blocks
        let mut sums = EvalSums::default();
        let cuts = [0, PREDICT_BLOCK, 3 * PREDICT_BLOCK, n];
        for pair in cuts.windows(2) {
            whole
                .evaluate_rows(&batch, pair[0], pair[1], &mut sums)
                .unwrap();
        }
        assert_eq!(whole.finish_evaluation(&sums, &batch), reference);
        // the accuracy counts the first largest output against the class
        let out = whole.predict(xm).unwrap();
        let mut hits = 0.0;
        let mut seen = 0.0;
        for k in 0..n {
            let row = out.view().row(k).to_vec();
            let best = (0..3).fold(0, |b, i| if row[i] > row[b] { i } else { b });
            let wk = if weighted { w[k] } else { 1.0 };
            hits += wk * f64::from(u8::from(best == y[k]));
            seen += wk;
        }
        let accuracy = reference.accuracy.unwrap();
        assert!(
            (accuracy - hits / seen).abs() <= 1e-12 * accuracy,
            "{accuracy} {hits}"
        );
    }
    // a single block: the bits of the loss of the whole output (`Loss::value`)
    let m = 100;
    let small = MatRef::new(&x[..m * 5], m, 5).unwrap();
    let batch = whole.batch(small, Targets::Classes(&y[..m])).unwrap();
    let (z, a) = last_layer(&whole, small);
    let value = Loss::CrossEntropy.value(z.view(), a.view(), &Targets::Classes(&y[..m]), None);
    assert_eq!(whole.evaluate(&batch).unwrap().loss, value);
    assert_eq!(whole.compute_loss(&batch).unwrap(), value);
}

/// z and a of the output layer, by the layers' own forward passes.
fn last_layer(
    net: &NeuralNetwork,
    x: MatRef<f64>,
) -> (ferrinet_core::Matrix, ferrinet_core::Matrix) {
    let mut input =
        ferrinet_core::Matrix::from_vec(x.as_slice().to_vec(), x.rows(), x.cols()).unwrap();
    let (mut z, mut a) = (
        ferrinet_core::Matrix::default(),
        ferrinet_core::Matrix::default(),
    );
    for layer in net.layers() {
        layer
            .forward(input.view(), &mut z, &mut a, ferrinet_core::Threads(1))
            .unwrap();
        input = a.clone();
    }
    (z, a)
}

#[test]
fn the_running_accuracy_of_an_epoch_is_counted_from_each_batch_before_its_step() {
    let n = 300;
    let (x, y, w) = data(n, 5, 2);
    let xm = MatRef::new(&x, n, 5).unwrap();
    for weighted in [false, true] {
        let mut trained = net(1);
        let mut twin = net(1);
        let batch = trained.epoch_batch(xm, Targets::Classes(&y), None).unwrap();
        let options = EpochOptions {
            shuffle: false,
            ..EpochOptions::new(64)
        };
        let opt = Optimizer::sgd(0.5);
        let mut state = TrainingState::new(opt, 0, 2).unwrap();
        let acc_w = weighted.then_some(&w[..]);
        let metrics = trained
            .train_epoch_measured(
                &batch,
                &options,
                &mut state,
                Accuracy::Count(acc_w),
                &mut || false,
            )
            .unwrap();
        // the twin: each batch evaluated, then stepped by one batch epoch
        let (mut hits, mut seen, mut total) = (0.0, 0.0, 0.0);
        let mut twin_state = TrainingState::new(opt, 0, 2).unwrap();
        for start in (0..n).step_by(64) {
            let end = (start + 64).min(n);
            let xb = MatRef::new(&x[start * 5..end * 5], end - start, 5).unwrap();
            let part = twin.batch(xb, Targets::Classes(&y[start..end])).unwrap();
            let wb = weighted.then_some(&w[start..end]);
            let before = match wb {
                Some(wb) => {
                    let b = twin
                        .weighted_batch(xb, Targets::Classes(&y[start..end]), wb)
                        .unwrap();
                    twin.evaluate(&b).unwrap()
                }
                None => twin.evaluate(&part).unwrap(),
            };
            let sw: f64 = wb.map_or((end - start) as f64, |wb| wb.iter().sum());
            hits += before.accuracy.unwrap() * sw;
            seen += sw;
            let loss = twin
                .train_epoch(
                    &part,
                    &EpochOptions {
                        shuffle: false,
                        ..EpochOptions::new(64)
                    },
                    &mut twin_state,
                )
                .unwrap();
            total += loss * (end - start) as f64;
        }
        assert_eq!(metrics.loss, total / n as f64);
        let accuracy = metrics.accuracy.unwrap();
        assert!(
            (accuracy - hits / seen).abs() <= 1e-12,
            "{accuracy} vs {}",
            hits / seen
        );
        assert_eq!(
            trained.parameters(),
            twin.parameters(),
            "the measured epoch takes the same steps"
        );
    }
    // mse has no accuracy to count
    let mut mse = NeuralNetwork::new(&[5, 3], &[], None, Loss::Mse, 0).unwrap();
    let t = vec![0.0; n * 3];
    let batch = mse
        .epoch_batch(xm, Targets::Dense(MatRef::new(&t, n, 3).unwrap()), None)
        .unwrap();
    let mut state = TrainingState::new(Optimizer::sgd(0.1), 0, 1).unwrap();
    let options = EpochOptions::new(32);
    assert!(mse
        .train_epoch_measured(
            &batch,
            &options,
            &mut state,
            Accuracy::Count(None),
            &mut || false
        )
        .is_err());
}

/// `compute_loss` (evaluate's loss alone) leaves out the output layer's activation when the
/// loss reads only z (cross-entropy, binary cross-entropy, Poisson), and `evaluate` of a
/// cross-entropy network takes each row's log-sum-exp from its softmax: the same bits as the
/// loss of the whole output from the layers' own forward passes, compute_loss the same as
/// evaluate's loss, and evaluate's accuracy that of predict's outputs, for every loss (class
/// and dense targets for cross-entropy); mse, which reads the output, with a sigmoid output so
/// that a differs from z.
#[test]
fn compute_loss_is_the_loss_of_the_whole_output_for_every_loss() {
    let (n, d, m) = (3 * PREDICT_BLOCK + 11, 5, 3);
    let (x, y, w) = data(n, d, 7);
    let mut rng = SplitMix64::new(11);
    let dense: Vec<f64> = (0..n * m).map(|_| (rng.uniform() * 3.0).floor()).collect();
    let binary: Vec<f64> = dense
        .iter()
        .map(|&t| f64::from(u8::from(t > 1.0)))
        .collect();
    let dense = MatRef::new(&dense, n, m).unwrap();
    let binary = MatRef::new(&binary, n, m).unwrap();
    let soft: Vec<f64> = (0..n * m).map(|i| [0.2, 0.0, 0.8][i % 3]).collect();
    let soft = MatRef::new(&soft, n, m).unwrap();
    let cases = [
        (Loss::CrossEntropy, None, Targets::Classes(&y)),
        (Loss::CrossEntropy, None, Targets::Dense(soft)),
        (Loss::BinaryCrossEntropy, None, Targets::Dense(binary)),
        (Loss::Poisson, None, Targets::Dense(dense)),
        (Loss::Mse, Some(Activation::Sigmoid), Targets::Dense(binary)),
    ];
    let xm = MatRef::new(&x, n, d).unwrap();
    for (loss, output, t) in cases {
        let net = NeuralNetwork::new(&[d, 16, m], &[Activation::Tanh], output, loss, 5).unwrap();
        // one block: the loss of the whole output
        let k = 100;
        let small = MatRef::new(&x[..k * d], k, d).unwrap();
        let tk = match t {
            Targets::Classes(c) => Targets::Classes(&c[..k]),
            Targets::Dense(v) => Targets::Dense(v.rows_range(0, k)),
        };
        let (z, a) = last_layer(&net, small);
        let value = loss.value(z.view(), a.view(), &tk, None);
        let batch = net.batch(small, tk).unwrap();
        assert_eq!(net.compute_loss(&batch).unwrap(), value, "{loss:?}");
        // several blocks, weighted or not: evaluate's loss
        for weighted in [false, true] {
            let batch = match weighted {
                true => net.weighted_batch(xm, t, &w).unwrap(),
                false => net.batch(xm, t).unwrap(),
            };
            let evaluation = net.evaluate(&batch).unwrap();
            assert_eq!(
                net.compute_loss(&batch).unwrap(),
                evaluation.loss,
                "{loss:?}"
            );
            // the accuracy, counted from predict's outputs in the same order (running sums
            // per block, added block by block): the same bits
            if let Targets::Classes(c) = t {
                let out = net.predict(xm).unwrap();
                let (mut hits, mut seen) = (0.0, 0.0);
                for start in (0..n).step_by(PREDICT_BLOCK) {
                    let (mut block_hits, mut block_seen) = (0.0, 0.0);
                    for k in start..(start + PREDICT_BLOCK).min(n) {
                        let row = out.view().row(k).to_vec();
                        let best = (0..m).fold(0, |b, i| if row[i] > row[b] { i } else { b });
                        let wk = if weighted { w[k] } else { 1.0 };
                        block_hits += wk * f64::from(u8::from(best == c[k]));
                        block_seen += wk;
                    }
                    hits += block_hits;
                    seen += block_seen;
                }
                assert_eq!(evaluation.accuracy, Some(hits / seen), "{loss:?}");
            }
        }
    }
}
