//! Times one epoch of 60,000 x 784-128-10 mini-batch training on 1 and 2 threads:
//! `cargo run --release --example epoch [sgd|adam] [batch] [threads] [f64|f32]` (default: sgd,
//! batch 256, threads "1,2", both dtypes; best of 5 per thread count, alternating).
//! `EPOCH_ROUNDS=k` takes k rounds instead of 5; `EPOCH_ALL=1` also prints every epoch's time
//! to stderr, for the spread between epochs (the best alone hides a host's slow phases).
use ferrinet_core::{
    Activation, EpochOptions, Loss, MatRef, NeuralNetwork, Optimizer, Real, Targets, TrainingState,
};
use std::time::Instant;

fn run<T: Real>(name: &str, opt: Optimizer, batch_size: usize, thread_counts: &[usize]) {
    let (n, n_in) = (60_000, 784);
    let x: Vec<T> = (0..n * n_in)
        .map(|i| T::from_f64(((i * 7919) % 1000) as f64 / 1000.0 - 0.5))
        .collect();
    let classes: Vec<usize> = (0..n).map(|i| (i * 104_729) % 10).collect();
    let net0 = NeuralNetwork::<T>::new(
        &[n_in, 128, 10],
        &[Activation::Relu],
        None,
        Loss::CrossEntropy,
        0,
    )
    .unwrap();
    let options = EpochOptions::new(batch_size);
    let mut best = vec![f64::INFINITY; thread_counts.len()];
    let env = |name| std::env::var(name).ok();
    let rounds = env("EPOCH_ROUNDS")
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let every = env("EPOCH_ALL").is_some();
    for _ in 0..rounds {
        for (i, &threads) in thread_counts.iter().enumerate() {
            let mut net = net0.clone();
            net.set_n_threads(threads).unwrap();
            let xm = MatRef::new(&x, n, n_in).unwrap();
            let batch = net.batch(xm, Targets::Classes(&classes)).unwrap();
            let mut state = TrainingState::new(opt, 0, 2).unwrap();
            let t = Instant::now();
            net.train_epoch(&batch, &options, &mut state).unwrap();
            let seconds = t.elapsed().as_secs_f64();
            if every {
                eprintln!("{name} {threads} thread(s): {:.0} ms", seconds * 1e3);
            }
            best[i] = best[i].min(seconds);
        }
    }
    let times: Vec<String> = thread_counts
        .iter()
        .zip(&best)
        .map(|(t, b)| format!("{t} thread(s) {:.0} ms", b * 1e3))
        .collect();
    let speed_up = if best.len() > 1 {
        format!(", speed-up {:.2}x", best[0] / best[best.len() - 1])
    } else {
        String::new()
    };
    println!(
        "epoch {} b{batch_size} {name}: {}{speed_up}",
        opt.name(),
        times.join(", ")
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = match args.first().map(String::as_str).unwrap_or("sgd") {
        "adam" => Optimizer::adam(1e-3),
        _ => Optimizer::sgd(0.01),
    };
    let batch_size = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(256);
    let thread_counts: Vec<usize> = args
        .get(2)
        .map(|s| s.split(',').filter_map(|t| t.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2]);
    let dtype = args.get(3).map(String::as_str).unwrap_or("both");
    if dtype != "f32" {
        run::<f64>("f64", opt, batch_size, &thread_counts);
    }
    if dtype != "f64" {
        run::<f32>("f32", opt, batch_size, &thread_counts);
    }
}
