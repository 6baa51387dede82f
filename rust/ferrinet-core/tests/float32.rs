//! `NeuralNetwork<f32>`: it starts from the f64 network's weights rounded to f32, and computes
//! what the f64 network computes to f32 precision.
//!
//! Tolerances: f32 has eps = 1.2e-7; the small networks here (widths <= 8, depth <= 4) sum a few
//! terms per dot product, so forward values, losses and gradients agree with f64 to a few 1e-6
//! (measured worst 3.2e-6, relative to the largest entry of each tensor: see
//! `common::assert_close_scaled`), asked to `REL` = 1e-5; training for a few epochs is asked to
//! `TRAIN_REL` = 1e-4 (measured worst 8e-7: SGD on these small nets does not amplify it much).
//! There is no finite-difference gradient check in f32: with eps 1.2e-7 a central difference
//! cannot resolve 1e-6.
//!
//! Each comparison gives both networks the same numbers: the inputs and targets rounded to f32,
//! and the f64 network the f32 network's weights (widened exactly), so what differs is the
//! arithmetic only.

mod common;

use common::{assert_close_scaled, int_in, random_targets, random_vec, Head, OwnedTargets};
use common::{HEADS, HIDDEN};
use ferrinet_core::{
    Activation, Batch, EpochOptions, MatRef, NeuralNetwork, Optimizer, SplitMix64, Targets,
    TrainingState,
};

const REL: f64 = 1e-5;
const TRAIN_REL: f64 = 1e-4;

/// An architecture, its seed and a batch for it, with every value representable in f32.
struct Case {
    sizes: Vec<usize>,
    hidden: Vec<Activation>,
    head: Head,
    seed: u64,
    n: usize,
    x: Vec<f64>,
    t: OwnedTargets,
}

fn round32(v: &[f64]) -> Vec<f64> {
    v.iter().map(|&a| a as f32 as f64).collect()
}

fn to32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&a| a as f32).collect()
}

fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&a| a as f64).collect()
}

fn random_case32(rng: &mut SplitMix64, head: Head, depth: usize) -> Case {
    let mut sizes = vec![int_in(rng, 1, 8)];
    let mut hidden = Vec::new();
    for _ in 0..depth {
        sizes.push(int_in(rng, 1, 8));
        hidden.push(HIDDEN[int_in(rng, 0, HIDDEN.len() - 1)]);
    }
    let m = match head {
        Head::CeClasses | Head::CeProbs => int_in(rng, 2, 3),
        _ => int_in(rng, 1, 3),
    };
    sizes.push(m);
    let n = int_in(rng, 1, 6);
    let x = round32(&random_vec(rng, n * sizes[0], -1.5, 1.5));
    let t = match random_targets(rng, head, n, m) {
        // Rounding keeps bce / cross_entropy targets in [0, 1].
        OwnedTargets::Dense { data, cols } => OwnedTargets::Dense {
            data: round32(&data),
            cols,
        },
        classes => classes,
    };
    Case {
        sizes,
        hidden,
        head,
        seed: rng.next_u64(),
        n,
        x,
        t,
    }
}

impl Case {
    fn net<T: ferrinet_core::Real>(&self) -> NeuralNetwork<T> {
        let out = Some(self.head.output());
        NeuralNetwork::<T>::new(&self.sizes, &self.hidden, out, self.head.loss(), self.seed)
            .unwrap()
    }

    /// The f32 network and an f64 network holding exactly its weights.
    fn pair(&self) -> (NeuralNetwork<f32>, NeuralNetwork<f64>) {
        let net32 = self.net::<f32>();
        let mut net64 = self.net::<f64>();
        let widened = net32
            .parameters()
            .into_iter()
            .map(|(w, b)| (widen(&w), widen(&b)))
            .collect();
        net64.set_parameters(widened).unwrap();
        (net32, net64)
    }

    fn x32(&self) -> Vec<f32> {
        to32(&self.x)
    }

    fn t32(&self) -> (Vec<f32>, usize) {
        match &self.t {
            OwnedTargets::Dense { data, cols } => (to32(data), *cols),
            OwnedTargets::Classes(_) => (Vec::new(), 0),
        }
    }

    fn batch32<'a>(
        &'a self,
        net: &NeuralNetwork<f32>,
        x: &'a [f32],
        t: &'a (Vec<f32>, usize),
    ) -> Batch<'a, f32> {
        let xm = MatRef::new(x, self.n, self.sizes[0]).unwrap();
        let targets = match &self.t {
            OwnedTargets::Dense { .. } => Targets::Dense(MatRef::new(&t.0, self.n, t.1).unwrap()),
            OwnedTargets::Classes(c) => Targets::Classes(c),
        };
        net.batch(xm, targets).unwrap()
    }

    fn batch64<'a>(&'a self, net: &NeuralNetwork<f64>) -> Batch<'a> {
        net.batch(
            MatRef::new(&self.x, self.n, self.sizes[0]).unwrap(),
            self.t.view(),
        )
        .unwrap()
    }
}

fn flat32(net: &NeuralNetwork<f32>) -> Vec<f64> {
    net.parameters()
        .into_iter()
        .flat_map(|(w, b)| widen(&w).into_iter().chain(widen(&b)))
        .collect()
}

#[test]
fn an_f32_network_starts_from_the_f64_weights_rounded() {
    let mut rng = SplitMix64::new(81);
    for i in 0..60 {
        let case = random_case32(&mut rng, HEADS[i % HEADS.len()], i % 5);
        let (net32, net64) = (case.net::<f32>(), case.net::<f64>());
        for (l, ((w32, b32), (w64, b64))) in net32
            .parameters()
            .into_iter()
            .zip(net64.parameters())
            .enumerate()
        {
            let rounded: Vec<u32> = w64.iter().map(|&w| (w as f32).to_bits()).collect();
            let got: Vec<u32> = w32.iter().map(|w| w.to_bits()).collect();
            assert_eq!(got, rounded, "case {i} layer {l}");
            assert!(
                b32.iter().chain(&[0.0]).all(|&b| b.to_bits() == 0)
                    && b64.iter().all(|&b| b == 0.0)
            );
        }
        let layers32 = net32
            .layers()
            .iter()
            .map(|l| (l.activation(), l.n_inputs(), l.n_outputs()));
        let layers64 = net64
            .layers()
            .iter()
            .map(|l| (l.activation(), l.n_inputs(), l.n_outputs()));
        assert!(layers32.eq(layers64));
    }
}

#[test]
fn predict_loss_and_gradients_agree_with_f64() {
    let mut rng = SplitMix64::new(82);
    let mut worst = [0.0f64; 3];
    for i in 0..120 {
        let case = random_case32(&mut rng, HEADS[i % HEADS.len()], i % 5);
        let (mut net32, mut net64) = case.pair();
        let (x32, t32) = (case.x32(), case.t32());
        let b32 = case.batch32(&net32, &x32, &t32);
        let b64 = case.batch64(&net64);

        let p32 = net32.predict(b32.inputs()).unwrap();
        let p64 = net64.predict(b64.inputs()).unwrap();
        let what = format!("case {i}: predict");
        worst[0] = worst[0].max(assert_close_scaled(
            &widen(p32.as_slice()),
            p64.as_slice(),
            REL,
            &what,
        ));

        let (l32, g32) = net32.gradients(&b32).unwrap();
        let (l64, g64) = net64.gradients(&b64).unwrap();
        assert_eq!(l32.to_bits(), net32.compute_loss(&b32).unwrap().to_bits());
        // The loss is compared relative to max(|L|, 1e-3): a loss near 0 is a sum of terms of
        // its own size (every term is >= 0), so no cancellation hides there.
        let rel = common::rel_diff(l32, l64, 1e-3);
        assert!(rel <= REL, "case {i}: loss {l32} vs {l64}: {rel:e}");
        worst[1] = worst[1].max(rel);
        for (l, (a, b)) in g32.iter().zip(&g64).enumerate() {
            let got: Vec<f64> = widen(&a.weights)
                .into_iter()
                .chain(widen(&a.biases))
                .collect();
            let want: Vec<f64> = b.weights.iter().chain(&b.biases).copied().collect();
            let what = format!("case {i}: layer {l} gradients");
            worst[2] = worst[2].max(assert_close_scaled(&got, &want, REL, &what));
        }
    }
    eprintln!("f32 vs f64, worst relative differences: predict, loss, gradients {worst:?}");
}

/// The article's per-sample SGD, 5 epochs, and a mini-batch run (SGD with momentum, L2,
/// shuffled batches of 2) for 3 epochs, in f32 and f64 from the same start.
#[test]
fn training_agrees_with_f64() {
    let mut rng = SplitMix64::new(83);
    let mut worst = [0.0f64; 2];
    for i in 0..60 {
        let case = random_case32(&mut rng, HEADS[i % HEADS.len()], i % 4);
        let (x32, t32) = (case.x32(), case.t32());

        let (mut net32, mut net64) = case.pair();
        let b32 = case.batch32(&net32, &x32, &t32);
        let b64 = case.batch64(&net64);
        let losses32 = net32.train(&b32, 5, 0.05).unwrap();
        let losses64 = net64.train(&b64, 5, 0.05).unwrap();
        let what = format!("case {i}: train, epoch losses");
        worst[0] = worst[0].max(common::assert_close(
            &losses32, &losses64, TRAIN_REL, 1e-3, &what,
        ));
        let what = format!("case {i}: train, weights");
        let w64 = common::flat_params(&net64);
        worst[0] = worst[0].max(assert_close_scaled(&flat32(&net32), &w64, TRAIN_REL, &what));

        let (mut net32, mut net64) = case.pair();
        let opt = Optimizer::Sgd {
            lr: 0.05,
            momentum: 0.9,
            dampening: 0.0,
            nesterov: true,
            weight_decay: 0.0,
        };
        let mut options = EpochOptions::new(2);
        options.l2 = 1e-2;
        let n_layers = net32.layers().len();
        let mut s32 = TrainingState::<f32>::new(opt, 4, n_layers).unwrap();
        let mut s64 = TrainingState::<f64>::new(opt, 4, n_layers).unwrap();
        for epoch in 0..3 {
            let l32 = net32.train_epoch(&b32, &options, &mut s32).unwrap();
            let l64 = net64.train_epoch(&b64, &options, &mut s64).unwrap();
            let what = format!("case {i}: train_epoch {epoch}, loss");
            worst[1] = worst[1].max(common::assert_close(&[l32], &[l64], TRAIN_REL, 1e-3, &what));
        }
        let what = format!("case {i}: train_epoch, weights");
        let w64 = common::flat_params(&net64);
        worst[1] = worst[1].max(assert_close_scaled(&flat32(&net32), &w64, TRAIN_REL, &what));
    }
    eprintln!("f32 vs f64 training, worst relative differences: train, train_epoch {worst:?}");
}

/// Per-sample `train` on a first layer taken in blocks (160 x 110 weights: src/per_sample/sgd_block.rs),
/// 3 epochs of 45 samples, in f32 and f64 from the same start. Measured worst: 4e-7 of the
/// largest parameter, 5e-8 relative in an epoch loss; asked to 5e-6 and 1e-6 (about 10x).
#[test]
fn blocked_training_agrees_with_f64() {
    let mut rng = SplitMix64::new(80);
    let (n, head) = (45, Head::CeClasses);
    let case = Case {
        sizes: vec![160, 110, 3],
        hidden: vec![Activation::Relu],
        head,
        seed: rng.next_u64(),
        n,
        x: round32(&random_vec(&mut rng, n * 160, 0.0, 1.0)),
        t: random_targets(&mut rng, head, n, 3),
    };
    let (x32, t32) = (case.x32(), case.t32());
    let (mut net32, mut net64) = case.pair();
    assert_eq!(net32.train_granule(), ferrinet_core::TRAIN_BLOCK);
    let b32 = case.batch32(&net32, &x32, &t32);
    let b64 = case.batch64(&net64);
    let l32 = net32.train(&b32, 3, 0.05).unwrap();
    let l64 = net64.train(&b64, 3, 0.05).unwrap();
    let wl = common::assert_close(&l32, &l64, 1e-6, 0.0, "epoch losses");
    let w64 = common::flat_params(&net64);
    let wp = assert_close_scaled(&flat32(&net32), &w64, 5e-6, "parameters");
    eprintln!("f32 vs f64 blocks: worst {wp:e} (parameters, of the largest), {wl:e} (losses)");
}

/// f32 saturates like f64 does: logits of 1e4 give finite losses and gradients.
#[test]
fn f32_logit_losses_stay_finite_at_huge_logits() {
    let mut net =
        NeuralNetwork::<f32>::new(&[2, 3], &[], None, ferrinet_core::Loss::CrossEntropy, 0)
            .unwrap();
    net.set_parameters(vec![(vec![1e4, 0.0, -1e4, 0.0, 0.0, 0.0], vec![0.0; 3])])
        .unwrap();
    let x = [1.0f32, 0.0, -1.0, 0.0];
    let batch = net
        .batch(MatRef::new(&x, 2, 2).unwrap(), Targets::Classes(&[1, 1]))
        .unwrap();
    let (loss, g) = net.gradients(&batch).unwrap();
    assert_eq!(loss, 1e4);
    assert_eq!(g[0].biases, vec![0.5f32, -0.5, 0.0]);
}

// ---------------------------------------------------------------------------------------------
// A float32 plain-SGD epoch keeps its first layer's weights transposed from batch to batch
// (network.rs, `TransposedFirst`) and puts them back whatever ends it.

/// 64-32-10 in float32 (the first layer's products are GEMMs from 3 rows on), 16 * 3 + 1 rows:
/// three batches of 16 then one row, which takes the one-sample path (the layer's own W).
fn transposed_case() -> (NeuralNetwork<f32>, Vec<f32>, Vec<usize>) {
    let net = NeuralNetwork::<f32>::new(
        &[64, 32, 10],
        &[Activation::Relu],
        None,
        ferrinet_core::Loss::CrossEntropy,
        5,
    )
    .unwrap();
    let mut rng = SplitMix64::new(41);
    let n = 49;
    let x = to32(&random_vec(&mut rng, n * 64, -1.0, 1.0));
    let classes = (0..n).map(|_| int_in(&mut rng, 0, 9)).collect();
    (net, x, classes)
}

fn bits32(net: &NeuralNetwork<f32>) -> Vec<u32> {
    let layers = net.layers().iter();
    layers
        .flat_map(|l| l.weights().iter().chain(l.biases()).map(|v| v.to_bits()))
        .collect()
}

/// Rows start..end as one in-order epoch of batches of 16, continuing `st`.
fn epoch_on(
    net: &mut NeuralNetwork<f32>,
    (x, classes): (&[f32], &[usize]),
    (start, end): (usize, usize),
    st: &mut TrainingState<f32>,
) {
    let xm = MatRef::new(&x[start * 64..end * 64], end - start, 64).unwrap();
    let batch = net
        .batch(xm, Targets::Classes(&classes[start..end]))
        .unwrap();
    let options = EpochOptions {
        shuffle: false,
        ..EpochOptions::new(16)
    };
    net.train_epoch(&batch, &options, st).unwrap();
}

#[test]
fn a_float32_sgd_epoch_equals_one_call_per_batch_bit_for_bit() {
    // Batch by batch, every call starts from and ends on the layer's own W; in one epoch the
    // first layer's W lives transposed between the batches of 16, and the last, one-row batch
    // must see (and update) the weights the batches before it left.
    let (net, x, classes) = transposed_case();
    let opt = Optimizer::sgd(0.05);
    let mut whole = net.clone();
    let mut st = TrainingState::<f32>::new(opt, 0, 2).unwrap();
    epoch_on(&mut whole, (&x, &classes), (0, 49), &mut st);
    let mut parts = net.clone();
    let mut st = TrainingState::<f32>::new(opt, 0, 2).unwrap();
    for range in [(0, 16), (16, 32), (32, 48), (48, 49)] {
        epoch_on(&mut parts, (&x, &classes), range, &mut st);
    }
    assert_eq!(bits32(&whole), bits32(&parts));
    let first = |n: &NeuralNetwork<f32>| n.layers()[0].weights().to_vec();
    assert_ne!(
        first(&whole),
        first(&net),
        "the first layer's W was stepped"
    );
}

#[test]
fn an_interrupted_float32_sgd_epoch_keeps_the_first_layers_steps() {
    // Stopped before its third batch, the epoch has left its first layer's W transposed: the
    // network must hold the weights of the two batches done, as an epoch over their rows does.
    let (net, x, classes) = transposed_case();
    let opt = Optimizer::sgd(0.05);
    let mut stopped = net.clone();
    let mut st = TrainingState::<f32>::new(opt, 0, 2).unwrap();
    let xm = MatRef::new(&x, 49, 64).unwrap();
    let batch = stopped.batch(xm, Targets::Classes(&classes)).unwrap();
    let options = EpochOptions {
        shuffle: false,
        ..EpochOptions::new(16)
    };
    let mut asked = 0;
    let result = stopped.train_epoch_until(&batch, &options, &mut st, &mut || {
        asked += 1;
        asked == 2
    });
    assert!(
        matches!(result, Err(ferrinet_core::Error::Interrupted)),
        "{result:?}"
    );
    assert_eq!(st.steps(), 2);
    let mut two = net.clone();
    let mut st = TrainingState::<f32>::new(opt, 0, 2).unwrap();
    epoch_on(&mut two, (&x, &classes), (0, 32), &mut st);
    assert_eq!(bits32(&stopped), bits32(&two));
    let first = |n: &NeuralNetwork<f32>| n.layers()[0].weights().to_vec();
    assert_ne!(
        first(&stopped),
        first(&net),
        "the first layer's W was stepped"
    );
}
