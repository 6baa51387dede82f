//! Per-sample `train` (the article's loop) on the article's 2-8-1 network and on 784-128-10:
//! `cargo run --release --example small_train`.
use ferrinet_core::{Activation, Loss, MatRef, NeuralNetwork, Real, Targets};
use std::time::Instant;

fn run<T: Real>(sizes: &[usize], n: usize, name: &str) {
    let (n_in, n_out) = (sizes[0], sizes[sizes.len() - 1]);
    let x: Vec<T> = (0..n_in * n)
        .map(|i| T::from_f64(((i * 7919) % 1000) as f64 / 1000.0))
        .collect();
    let y: Vec<T> = (0..n_out * n)
        .map(|i| T::from_f64(((i * 104729) % 1000) as f64 / 1000.0))
        .collect();
    let hidden = vec![Activation::Relu; sizes.len() - 2];
    let mut net = NeuralNetwork::<T>::new(sizes, &hidden, None, Loss::Mse, 0).unwrap();
    let xm = MatRef::new(&x, n, n_in).unwrap();
    let t = Targets::Dense(MatRef::new(&y, n, n_out).unwrap());
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

fn main() {
    run::<f64>(&[2, 8, 1], 2_000_000, "f64");
    run::<f64>(&[784, 128, 10], 20_000, "f64");
    run::<f32>(&[784, 128, 10], 20_000, "f32");
}
