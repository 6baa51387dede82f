//! The flat parameter vector and the full-batch loss-and-gradient (the core's flat.rs):
//! detached for large batches, in chunks of whole `GRAD_BLOCK`s with Ctrl-C checks between
//! them, all under one lock (the same bits however the chunks fall).

use ferrinet_core::{Batch, GradientSums, LayerGradient, NeuralNetwork, GRAD_BLOCK};
use pyo3::prelude::*;

use crate::convert::Float;
use crate::errors::IntoPyResult;
use crate::gil::{check_signals, for_each_chunk, Shared};
use crate::network::{Inputs, Model, OwnedTargets};

/// (loss + the L2 penalty, the flat gradient, each row's output when `outputs`).
pub(crate) type FlatResult<T> = (f64, Vec<T>, Option<Vec<T>>);

/// `loss_and_flat_gradient` over (x, t, weights), optionally keeping every row's output.
pub(crate) fn loss_and_gradient<T: Float>(
    py: Python<'_>,
    m: &Shared<Model<T>>,
    (x, t, weights): (&Inputs<'_, T>, &OwnedTargets<T>, Option<&[T]>),
    l2: f64,
    outputs: bool,
    big: bool,
) -> PyResult<FlatResult<T>> {
    let xv = x.view();
    let rows = x.rows;
    let work = |model: &Model<T>| -> PyResult<FlatResult<T>> {
        let net = &model.net;
        let batch = net.epoch_batch(xv, t.view(), weights).py()?;
        let mut out = outputs.then(|| vec![T::ZERO; rows * net.n_outputs()]);
        let mut grad = vec![T::ZERO; net.n_parameters()];
        let mut sums = GradientSums::default();
        let n_out = net.n_outputs();
        let work = |start: usize, end: usize| {
            let part = out
                .as_deref_mut()
                .map(|o| &mut o[start * n_out..end * n_out]);
            net.gradient_rows(&batch, start, end, &mut sums, part).py()
        };
        let between = || if big { check_signals() } else { Ok(()) };
        for_each_chunk(rows, GRAD_BLOCK, work, between)?;
        let loss = net
            .finish_flat_gradient(&mut sums, &batch, l2, &mut grad)
            .py()?;
        Ok((loss, grad, out))
    };
    if !big {
        return m.with(py, false, |m| work(m));
    }
    py.detach(|| work(&m.lock()))
}

/// (loss + the L2 penalty, every layer's gradient) of a batch of more than one block, summed
/// block by block as the flat gradient is (`gradient_rows`, `finish_gradients`): `gradients`
/// and a batch `backward` of a large batch. Called detached and under the network's lock;
/// looks for Ctrl-C between chunks of whole blocks (the same bits however the chunks fall),
/// and an interrupt leaves nothing behind but the partial sums.
pub(crate) fn blocked_gradients<T: Float>(
    net: &NeuralNetwork<T>,
    batch: &Batch<'_, T>,
    l2: f64,
) -> PyResult<(f64, Vec<LayerGradient<T>>)> {
    let mut sums = GradientSums::default();
    let work =
        |start: usize, end: usize| net.gradient_rows(batch, start, end, &mut sums, None).py();
    for_each_chunk(batch.len(), GRAD_BLOCK, work, check_signals)?;
    net.finish_gradients(&mut sums, batch, l2).py()
}
