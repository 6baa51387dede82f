//! Per-sample `train` (the article's loop) on the article's 2-8-1 network and on 784-128-10:
//! `cargo run --release --example small_train`.
use ferrinet_core::{Activation, Loss, MatRef, NeuralNetwork, Real, SplitMix64, Targets};
use std::time::Instant;

/// Uniform inputs in [0, 1) (pixel-like); mse on uniform targets for one output, else
/// cross-entropy on uniform class indices (as benches/bench_sgd.py).
fn run<T: Real>(sizes: &[usize], n: usize, name: &str) {
    let (n_in, n_out) = (sizes[0], sizes[sizes.len() - 1]);
    let mut rng = SplitMix64::new(1);
    let x: Vec<T> = (0..n_in * n).map(|_| T::from_f64(rng.uniform())).collect();
    let y: Vec<T> = (0..n).map(|_| T::from_f64(rng.uniform())).collect();
    let classes: Vec<usize> = (0..n)
        .map(|_| (rng.next_u64() % n_out as u64) as usize)
        .collect();
    let hidden = vec![Activation::Relu; sizes.len() - 2];
    let loss = if n_out == 1 {
        Loss::Mse
    } else {
        Loss::CrossEntropy
    };
    let mut net = NeuralNetwork::<T>::new(sizes, &hidden, None, loss, 0).unwrap();
    let xm = MatRef::new(&x, n, n_in).unwrap();
    let t = if n_out == 1 {
        Targets::Dense(MatRef::new(&y, n, 1).unwrap())
    } else {
        Targets::Classes(&classes)
    };
    let batch = net.batch(xm, t).unwrap();
    let start = Instant::now();
    let losses = net.train(&batch, 1, 0.01).unwrap();
    let dt = start.elapsed().as_secs_f64();
    println!(
        "{sizes:?} {name} train: {:.3} us/step (loss {:.6})",
        dt / n as f64 * 1e6,
        losses[0]
    );
}

/// With an argument ("2-8-1", "784-128-10"), only that network (for a profiler).
fn main() {
    let only = std::env::args().nth(1);
    let want = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if want("2-8-1") {
        run::<f64>(&[2, 8, 1], 2_000_000, "f64");
    }
    if want("784-128-10") {
        run::<f64>(&[784, 128, 10], 20_000, "f64");
        run::<f32>(&[784, 128, 10], 20_000, "f32");
    }
}
