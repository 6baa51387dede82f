//! Times `predict` on 60,000 x 784 through 784-128-10, one thread, f64 and f32:
//! `cargo run --release --example predict`.
use ferrinet_core::{Activation, Loss, MatRef, NeuralNetwork, Real};
use std::time::Instant;

fn run<T: Real>(name: &str) {
    let (n, n_in) = (60_000, 784);
    let x: Vec<T> = (0..n * n_in)
        .map(|i| T::from_f64(((i * 7919) % 1000) as f64 / 1000.0))
        .collect();
    let net = NeuralNetwork::<T>::new(
        &[n_in, 128, 10],
        &[Activation::Relu],
        None,
        Loss::CrossEntropy,
        0,
    )
    .unwrap();
    let xm = MatRef::new(&x, n, n_in).unwrap();
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        let out = net.predict(xm).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
        std::hint::black_box(out);
    }
    let gflops = 2.0 * n as f64 * (784.0 * 128.0 + 128.0 * 10.0) / best / 1e9;
    println!(
        "predict 60000x784 {name}: {:.1} ms ({gflops:.1} GFLOP/s)",
        best * 1e3
    );
}

fn main() {
    run::<f64>("f64");
    run::<f32>("f32");
}
