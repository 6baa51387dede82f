use ferrinet_core::optimizer::TensorState;
use ferrinet_core::*;
#[test]
fn explore() {
    for alpha in [0.5, 0.9, 0.99] {
        let opt = Optimizer::RmsProp {
            lr: 0.01,
            alpha,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: true,
        };
        let mut st = TensorState::default();
        let mut p = vec![0.0f64; 4];
        let mut first_nan = None;
        for t in 1..=2000u64 {
            opt.step(&mut p, &mut vec![0.1, 0.3, 1.0, 3.7], &mut st, t, 0.01);
            if first_nan.is_none() && p.iter().any(|v| !v.is_finite()) {
                first_nan = Some(t);
            }
        }
        eprintln!("alpha {alpha}: first non-finite at {first_nan:?}: {p:?}");
    }
}
