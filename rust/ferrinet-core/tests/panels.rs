//! A float64 plain-SGD epoch keeps its first layer's weights in panels of 8 neurons from batch
//! to batch (src/panels.rs, network.rs `TransposedFirst`) where the CPU has AVX2 and FMA, and
//! puts them back whatever ends it. These tests hold on any CPU: elsewhere the epoch keeps W,
//! and every property below is still one the epoch must have.
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

/// A classifier n_in -> hidden -> 5 and n rows of data for it.
fn case(n_in: usize, hidden: usize, n: usize, seed: u64) -> (NeuralNetwork, Vec<f64>, Vec<usize>) {
    let net = NeuralNetwork::<f64>::new(
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
    (net, x, classes)
}

fn in_order(batch_size: usize) -> EpochOptions {
    EpochOptions {
        shuffle: false,
        ..EpochOptions::new(batch_size)
    }
}

/// Rows start..end as one in-order epoch of `options`, continuing `st`.
fn epoch_on(
    net: &mut NeuralNetwork,
    (x, classes): (&[f64], &[usize]),
    (start, end): (usize, usize),
    options: &EpochOptions,
    st: &mut TrainingState,
) -> Result<f64, Error> {
    let n_in = net.layers()[0].n_inputs();
    let xm = MatRef::new(&x[start * n_in..end * n_in], end - start, n_in).unwrap();
    let batch = net
        .batch(xm, Targets::Classes(&classes[start..end]))
        .unwrap();
    net.train_epoch(&batch, options, st)
}

#[test]
fn a_float64_sgd_epoch_equals_one_call_per_batch_bit_for_bit() {
    // In one epoch the first layer's W lives in panels between the batches of 16; batch by
    // batch, every call starts from and ends on the layer's own W. The last, one-row batch
    // must see (and update) the weights the batches before it left.
    let (net, x, classes) = case(37, 21, 49, 3);
    let opt = Optimizer::sgd(0.05);
    let options = in_order(16);
    let mut whole = net.clone();
    let mut st = TrainingState::new(opt, 0, 2).unwrap();
    epoch_on(&mut whole, (&x, &classes), (0, 49), &options, &mut st).unwrap();
    let mut parts = net.clone();
    let mut st = TrainingState::new(opt, 0, 2).unwrap();
    for range in [(0, 16), (16, 32), (32, 48), (48, 49)] {
        epoch_on(&mut parts, (&x, &classes), range, &options, &mut st).unwrap();
    }
    assert_eq!(param_bits(&whole), param_bits(&parts));
    assert_ne!(param_bits(&whole), param_bits(&net), "the epoch stepped");
}

#[test]
fn a_float64_sgd_epoch_takes_the_steps_of_plain_sgd() {
    // The same epoch with an inert gradient clip (a norm no gradient reaches) takes the
    // unfused path: the whole gradient from the GEMMs on W, then p - lr g. The panels sum each
    // weight's gradient in another order and add -lr times it in one rounding, so the two
    // agree to rounding, not to the bit. 1e-12 of the largest weight: a wrong panel, input or
    // row (a dropped term changes a weight by ~1e-3 here) is far outside it.
    for (n_in, hidden, n, batch) in [(37, 21, 49, 16), (200, 45, 70, 32), (6, 8, 40, 40)] {
        let (net, x, classes) = case(n_in, hidden, n, 7);
        let opt = Optimizer::sgd(0.1);
        let mut fused = net.clone();
        let mut st = TrainingState::new(opt, 0, 2).unwrap();
        for _ in 0..3 {
            epoch_on(
                &mut fused,
                (&x, &classes),
                (0, n),
                &in_order(batch),
                &mut st,
            )
            .unwrap();
        }
        let mut plain = net.clone();
        let mut st = TrainingState::new(opt, 0, 2).unwrap();
        let options = EpochOptions {
            clip_norm: Some(1e300),
            ..in_order(batch)
        };
        for _ in 0..3 {
            epoch_on(&mut plain, (&x, &classes), (0, n), &options, &mut st).unwrap();
        }
        let what = format!("{n_in}-{hidden}-5, {n} rows, batch {batch}");
        assert_close_scaled(&flat_params(&fused), &flat_params(&plain), 1e-12, &what);
        assert_ne!(param_bits(&fused), param_bits(&net), "{what}: stepped");
    }
}

#[test]
fn float64_sgd_epochs_give_the_same_bits_on_any_number_of_threads() {
    // 64 x 200 x 48 is a product large enough to be cut between threads (by panels: whole
    // neurons), and every weight is the same sum in the same order whoever computes it.
    let (net, x, classes) = case(200, 45, 200, 11);
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

#[test]
fn an_interrupted_float64_sgd_epoch_keeps_the_first_layers_steps() {
    // Stopped before its third batch, the epoch has left its first layer's W in panels: the
    // network must hold the weights of the two batches done, as an epoch over their rows does.
    let (net, x, classes) = case(37, 21, 49, 5);
    let opt = Optimizer::sgd(0.05);
    let options = in_order(16);
    let mut stopped = net.clone();
    let mut st = TrainingState::new(opt, 0, 2).unwrap();
    let xm = MatRef::new(&x, 49, 37).unwrap();
    let batch = stopped.batch(xm, Targets::Classes(&classes)).unwrap();
    let mut asked = 0;
    let result = stopped.train_epoch_until(&batch, &options, &mut st, &mut || {
        asked += 1;
        asked == 2
    });
    assert!(matches!(result, Err(Error::Interrupted)), "{result:?}");
    assert_eq!(st.steps(), 2);
    let mut two = net.clone();
    let mut st = TrainingState::new(opt, 0, 2).unwrap();
    epoch_on(&mut two, (&x, &classes), (0, 32), &options, &mut st).unwrap();
    assert_eq!(param_bits(&stopped), param_bits(&two));
    let first = |n: &NeuralNetwork| n.layers()[0].weights().to_vec();
    assert_ne!(
        first(&stopped),
        first(&net),
        "the first layer's W was stepped"
    );
}

// ---------------------------------------------------------------------------------------------
// Optimizers with a state (Adam here) keep the first layer's state in the same panels as its
// weights, and put both back whatever ends the epoch. In both float types.

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

/// `case` in float type T.
fn case_in<T: Real>(
    n_in: usize,
    hidden: usize,
    n: usize,
    seed: u64,
) -> (NeuralNetwork<T>, Vec<T>, Vec<usize>) {
    let (net, x, classes) = case(n_in, hidden, n, seed);
    let (w, b): (Vec<Vec<T>>, Vec<Vec<T>>) = net
        .parameters()
        .into_iter()
        .map(|(w, b)| {
            (
                w.into_iter().map(T::from_f64).collect(),
                b.into_iter().map(T::from_f64).collect(),
            )
        })
        .unzip();
    let mut net_t = NeuralNetwork::<T>::new(
        &[n_in, hidden, 5],
        &[Activation::Relu],
        None,
        Loss::CrossEntropy,
        seed,
    )
    .unwrap();
    net_t
        .set_parameters(w.into_iter().zip(b).collect())
        .unwrap();
    (net_t, x.into_iter().map(T::from_f64).collect(), classes)
}

/// Rows start..end as one in-order epoch of batches of 16, continuing `st`.
fn epoch_in<T: Real>(
    net: &mut NeuralNetwork<T>,
    (x, classes): (&[T], &[usize]),
    (start, end): (usize, usize),
    st: &mut TrainingState<T>,
    stop_at: Option<usize>,
) -> Result<f64, Error> {
    let n_in = net.layers()[0].n_inputs();
    let xm = MatRef::new(&x[start * n_in..end * n_in], end - start, n_in).unwrap();
    let batch = net
        .batch(xm, Targets::Classes(&classes[start..end]))
        .unwrap();
    let mut asked = 0;
    net.train_epoch_until(&batch, &in_order(16), st, &mut || {
        asked += 1;
        Some(asked) == stop_at
    })
}

fn adam_epochs_keep_their_state_with_the_panels<T: Real>() {
    let (net, x, classes) = case_in::<T>(37, 21, 49, 13);
    let opt = Optimizer::adam(0.01);
    // One epoch, then a second from the state it left: as one call per batch.
    let mut whole = net.clone();
    let mut st_whole = TrainingState::new(opt, 0, 2).unwrap();
    for _ in 0..2 {
        epoch_in(&mut whole, (&x, &classes), (0, 49), &mut st_whole, None).unwrap();
    }
    let mut parts = net.clone();
    let mut st_parts = TrainingState::new(opt, 0, 2).unwrap();
    for _ in 0..2 {
        for range in [(0, 16), (16, 32), (32, 48), (48, 49)] {
            epoch_in(&mut parts, (&x, &classes), range, &mut st_parts, None).unwrap();
        }
    }
    let what = T::NAME;
    assert!(
        all_bits(&whole, &st_whole) == all_bits(&parts, &st_parts),
        "{what}: per batch"
    );
    // Stopped before its third batch: the weights and the state of the two batches done.
    let mut stopped = net.clone();
    let mut st_stopped = TrainingState::new(opt, 0, 2).unwrap();
    let result = epoch_in(
        &mut stopped,
        (&x, &classes),
        (0, 49),
        &mut st_stopped,
        Some(2),
    );
    assert!(
        matches!(result, Err(Error::Interrupted)),
        "{what}: {result:?}"
    );
    let mut two = net.clone();
    let mut st_two = TrainingState::new(opt, 0, 2).unwrap();
    epoch_in(&mut two, (&x, &classes), (0, 32), &mut st_two, None).unwrap();
    assert!(
        all_bits(&stopped, &st_stopped) == all_bits(&two, &st_two),
        "{what}: stopped"
    );
    assert_eq!(st_stopped.steps(), 2);
}

#[test]
fn adam_epochs_keep_their_state_with_the_panels_in_both_float_types() {
    adam_epochs_keep_their_state_with_the_panels::<f64>();
    adam_epochs_keep_their_state_with_the_panels::<f32>();
}

#[test]
fn an_adam_epoch_in_panels_takes_adams_steps() {
    // As `a_float64_sgd_epoch_takes_the_steps_of_plain_sgd`, for Adam: the inert clip takes
    // the path with W, its gradient and its state as they are. Adam divides each step by the
    // root of its second moment, which keeps a gradient's rounding relative: 1e-10 of the
    // largest weight after 3 epochs (a wrong element moves a weight by ~1e-3, lr = 0.01).
    for (n_in, hidden, n, batch) in [(37, 21, 49, 16), (200, 45, 70, 32)] {
        let (net, x, classes) = case(n_in, hidden, n, 17);
        let opt = Optimizer::adam(0.01);
        let mut panels = net.clone();
        let mut st = TrainingState::new(opt, 0, 2).unwrap();
        for _ in 0..3 {
            epoch_on(
                &mut panels,
                (&x, &classes),
                (0, n),
                &in_order(batch),
                &mut st,
            )
            .unwrap();
        }
        let mut plain = net.clone();
        let mut st_plain = TrainingState::new(opt, 0, 2).unwrap();
        let options = EpochOptions {
            clip_norm: Some(1e300),
            ..in_order(batch)
        };
        for _ in 0..3 {
            epoch_on(&mut plain, (&x, &classes), (0, n), &options, &mut st_plain).unwrap();
        }
        let what = format!("{n_in}-{hidden}-5, {n} rows, batch {batch}");
        assert_close_scaled(&flat_params(&panels), &flat_params(&plain), 1e-10, &what);
        let m = |s: &TrainingState| s.tensor_states()[0].0.buffers()[0].1.to_vec();
        assert_close_scaled(&m(&st), &m(&st_plain), 1e-10, &format!("{what}: m"));
        assert_ne!(param_bits(&panels), param_bits(&net), "{what}: stepped");
    }
}
