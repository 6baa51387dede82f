//! A mini-batch epoch keeps its first layer's weights in panels of 8 (float64) or 16 (float32)
//! neurons from batch to batch (src/panels.rs, network.rs `TransposedFirst`) where the CPU has
//! AVX2 and FMA, with the optimizer's state for that layer in the same panels, and puts both
//! back whatever ends it. These tests hold on any CPU: elsewhere the epoch keeps W, and every
//! property below is still one the epoch must have.
//!
//! The shapes are chosen for the panels' edges: 21 and 45 neurons (a last panel of 5), 37 and
//! 200 inputs (not a multiple of the 6-input tile), batches that end on a shorter one, and a
//! last one-row batch, which takes the one-sample path on the layer's own W.

mod common;

use common::{assert_close_scaled, flat_params, int_in, param_bits, random_vec};
use ferrinet_core::{
    Activation, EpochOptions, Error, Loss, MatRef, NeuralNetwork, Optimizer, Real, SplitMix64,
    Targets, TrainingState,
};

/// A classifier n_in -> hidden -> 5 in float type T and n rows of data for it.
fn case<T: Real>(
    n_in: usize,
    hidden: usize,
    n: usize,
    seed: u64,
) -> (NeuralNetwork<T>, Vec<T>, Vec<usize>) {
    let net = NeuralNetwork::<T>::new(
        &[n_in, hidden, 5],
        &[Activation::Relu],
        None,
        Loss::CrossEntropy,
        seed,
    )
    .unwrap();
    let mut rng = SplitMix64::new(seed + 100);
    let x = random_vec(&mut rng, n * n_in, -1.0, 1.0);
    let classes = (0..n).map(|_| int_in(&mut rng, 0, 4)).collect();
    (net, x.into_iter().map(T::from_f64).collect(), classes)
}

fn in_order(batch_size: usize) -> EpochOptions {
    EpochOptions {
        shuffle: false,
        ..EpochOptions::new(batch_size)
    }
}

/// Rows start..end as one epoch of `options`, continuing `st`; with `stop_at: Some(k)`, asked
/// to stop at the k-th look for Ctrl-C (before batch k).
fn epoch_on<T: Real>(
    net: &mut NeuralNetwork<T>,
    (x, classes): (&[T], &[usize]),
    (start, end): (usize, usize),
    (options, stop_at): (&EpochOptions, Option<usize>),
    st: &mut TrainingState<T>,
) -> Result<f64, Error> {
    let n_in = net.layers()[0].n_inputs();
    let xm = MatRef::new(&x[start * n_in..end * n_in], end - start, n_in).unwrap();
    let batch = net
        .batch(xm, Targets::Classes(&classes[start..end]))
        .unwrap();
    let mut asked = 0;
    net.train_epoch_until(&batch, options, st, &mut || {
        asked += 1;
        Some(asked) == stop_at
    })
}

/// Every parameter's bits and every optimizer buffer's bits, as f64 (exact for float32).
fn all_bits<T: Real>(net: &NeuralNetwork<T>, st: &TrainingState<T>) -> Vec<u64> {
    let params = net
        .parameters()
        .into_iter()
        .flat_map(|(w, b)| w.into_iter().chain(b));
    let buffers = st.tensor_states().iter().flat_map(|(w, b)| {
        let w = w.buffers().into_iter().flat_map(|(_, v)| v.to_vec());
        w.chain(b.buffers().into_iter().flat_map(|(_, v)| v.to_vec()))
    });
    params
        .chain(buffers)
        .map(|v| v.to_f64().to_bits())
        .collect()
}

/// Two epochs equal one call per batch, and an epoch stopped before its third batch equals an
/// epoch over the rows of the two batches done: weights and optimizer state, bit for bit. In
/// one epoch the first layer's W (and state) live in panels between the batches of 16; batch
/// by batch, every call starts from and ends on the layer's own. The last, one-row batch must
/// see (and update) the weights the batches before it left.
fn epochs_equal_their_batches<T: Real>(opt: Optimizer) {
    let (net, x, classes) = case::<T>(37, 21, 49, 13);
    let data = (&x[..], &classes[..]);
    let what = format!("{} {}", opt.name(), T::NAME);
    let fresh = || (net.clone(), TrainingState::<T>::new(opt, 0, 2).unwrap());
    let whole_epoch = (&in_order(16), None);
    let (mut whole, mut st_whole) = fresh();
    let (mut parts, mut st_parts) = fresh();
    for _ in 0..2 {
        epoch_on(&mut whole, data, (0, 49), whole_epoch, &mut st_whole).unwrap();
        for range in [(0, 16), (16, 32), (32, 48), (48, 49)] {
            epoch_on(&mut parts, data, range, whole_epoch, &mut st_parts).unwrap();
        }
    }
    let (whole_bits, parts_bits) = (all_bits(&whole, &st_whole), all_bits(&parts, &st_parts));
    assert!(whole_bits == parts_bits, "{what}: per batch");
    assert!(
        whole.parameters() != net.parameters(),
        "{what}: the epochs stepped"
    );
    let (mut stopped, mut st_stopped) = fresh();
    let result = epoch_on(
        &mut stopped,
        data,
        (0, 49),
        (&in_order(16), Some(2)),
        &mut st_stopped,
    );
    assert!(
        matches!(result, Err(Error::Interrupted)),
        "{what}: {result:?}"
    );
    assert_eq!(st_stopped.steps(), 2, "{what}");
    let (mut two, mut st_two) = fresh();
    epoch_on(&mut two, data, (0, 32), whole_epoch, &mut st_two).unwrap();
    let (stopped_bits, two_bits) = (all_bits(&stopped, &st_stopped), all_bits(&two, &st_two));
    assert!(stopped_bits == two_bits, "{what}: stopped");
    let first = |n: &NeuralNetwork<T>| n.layers()[0].weights().to_vec();
    assert!(
        first(&stopped) != first(&net),
        "{what}: the first layer's W was stepped"
    );
}

#[test]
fn epochs_equal_their_batches_with_sgd_and_adam_in_both_float_types() {
    for opt in [Optimizer::sgd(0.05), Optimizer::adam(0.01)] {
        epochs_equal_their_batches::<f64>(opt);
        epochs_equal_their_batches::<f32>(opt);
    }
}

#[test]
fn epochs_in_panels_take_the_optimizers_steps() {
    // The same epochs with an inert gradient clip (a norm no gradient reaches) take the path
    // with W, its whole gradient from the GEMMs on W and the optimizer's state as they are.
    // The panels sum each weight's gradient in another order (and plain SGD adds -lr times it
    // in one rounding), so the two agree to rounding, not to the bit: plain SGD to 1e-12 of
    // the largest weight after 3 epochs; Adam divides each step by the root of its second
    // moment, which keeps a gradient's rounding relative, to 1e-10 (with its first moment m).
    // A wrong panel, input or row (a dropped term moves a weight by ~1e-3 here) is far outside.
    let cases = [
        (Optimizer::sgd(0.1), 1e-12, (37, 21, 49, 16)),
        (Optimizer::sgd(0.1), 1e-12, (200, 45, 70, 32)),
        (Optimizer::sgd(0.1), 1e-12, (6, 8, 40, 40)),
        (Optimizer::adam(0.01), 1e-10, (37, 21, 49, 16)),
        (Optimizer::adam(0.01), 1e-10, (200, 45, 70, 32)),
    ];
    for (opt, tol, (n_in, hidden, n, batch)) in cases {
        let (net, x, classes) = case::<f64>(n_in, hidden, n, 7);
        let data = (&x[..], &classes[..]);
        let run = |options: &EpochOptions| {
            let mut net = net.clone();
            let mut st = TrainingState::new(opt, 0, 2).unwrap();
            for _ in 0..3 {
                epoch_on(&mut net, data, (0, n), (options, None), &mut st).unwrap();
            }
            (net, st)
        };
        let (panels, st) = run(&in_order(batch));
        let (plain, st_plain) = run(&EpochOptions {
            clip_norm: Some(1e300),
            ..in_order(batch)
        });
        let what = format!("{}, {n_in}-{hidden}-5, {n} rows, batch {batch}", opt.name());
        assert_close_scaled(&flat_params(&panels), &flat_params(&plain), tol, &what);
        let m = |s: &TrainingState| s.tensor_states()[0].0.buffers()[0].1.to_vec();
        assert_close_scaled(&m(&st), &m(&st_plain), tol, &format!("{what}: m"));
        assert_ne!(param_bits(&panels), param_bits(&net), "{what}: stepped");
    }
}

#[test]
fn float64_sgd_epochs_give_the_same_bits_on_any_number_of_threads() {
    // 64 x 200 x 48 is a product large enough to be cut between threads (the forward product
    // by panels, the update by inputs), and every weight is the same sum in the same order
    // whoever computes it.
    let (net, x, classes) = case::<f64>(200, 45, 200, 11);
    let run = |threads: usize| {
        let mut net = net.clone();
        net.set_n_threads(threads).unwrap();
        let xm = MatRef::new(&x, 200, 200).unwrap();
        let batch = net.batch(xm, Targets::Classes(&classes)).unwrap();
        let mut st = TrainingState::new(Optimizer::sgd(0.05), 4, 2).unwrap();
        let loss = net
            .train_epoch(&batch, &EpochOptions::new(64), &mut st)
            .unwrap();
        (loss.to_bits(), param_bits(&net))
    };
    let one = run(1);
    for threads in [2, 3] {
        assert!(run(threads) == one, "{threads} threads changed a bit");
    }
}
