//! Batches and input checks: a `Batch` is inputs and targets (and sample weights) checked
//! once against one network, which every training method then accepts without checking again;
//! the checks of a learning rate and of an L2 factor; the finite check that names the bad
//! value's row.

use crate::error::{value_error, Result};
use crate::float::{first_non_finite, Real};
use crate::loss::{Loss, Targets};
use crate::matrix::MatRef;
use crate::network::NeuralNetwork;

/// Inputs, targets and optional per-sample weights, checked against one network: shapes,
/// finiteness, ranges. Building one is the only validation of the data.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a, T = f64> {
    pub(crate) x: MatRef<'a, T>,
    pub(crate) t: Targets<'a, T>,
    pub(crate) weights: Option<&'a [T]>,
    checked_for: Signature, // the network it was checked against
    /// The inputs' finite check is left to the user of each part (`epoch_batch`).
    pub(crate) x_unchecked: bool,
}

/// What a `Batch` was checked against: methods refuse a batch checked for another shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Signature {
    n_inputs: usize,
    n_outputs: usize,
    loss: Loss,
}

impl<'a, T: Real> Batch<'a, T> {
    pub fn len(&self) -> usize {
        self.x.rows()
    }

    pub fn is_empty(&self) -> bool {
        self.x.rows() == 0
    }

    pub fn inputs(&self) -> MatRef<'a, T> {
        self.x
    }

    pub fn targets(&self) -> Targets<'a, T> {
        self.t
    }

    /// The same checks, over other data (rows gathered from this batch).
    pub(crate) fn with_parts<'b>(
        &self,
        x: MatRef<'b, T>,
        t: Targets<'b, T>,
        weights: Option<&'b [T]>,
    ) -> Batch<'b, T> {
        Batch {
            x,
            t,
            weights,
            checked_for: self.checked_for,
            x_unchecked: self.x_unchecked,
        }
    }

    /// Samples `start..end`, still checked.
    pub fn rows_range(&self, start: usize, end: usize) -> Batch<'a, T> {
        Batch {
            x: self.x.rows_range(start, end),
            t: self.t.rows_range(start, end),
            weights: self.weights.map(|w| &w[start..end]),
            checked_for: self.checked_for,
            x_unchecked: self.x_unchecked,
        }
    }
}

impl<T: Real> NeuralNetwork<T> {
    /// Checks a batch of inputs: at least one sample, n_inputs columns, all finite.
    pub fn check_inputs(&self, x: MatRef<T>) -> Result<()> {
        self.check_shape(x)?;
        self.check_rows(x, 0, x.rows())
    }

    /// At least one sample, n_inputs columns.
    fn check_shape(&self, x: MatRef<T>) -> Result<()> {
        if x.rows() == 0 {
            return value_error!(
                "got 0 samples: expected at least one row of {} inputs",
                self.n_inputs()
            );
        }
        if x.cols() != self.n_inputs() {
            return value_error!(
                "the network takes {} inputs per sample, got {}",
                self.n_inputs(),
                x.cols()
            );
        }
        Ok(())
    }

    /// Checks inputs and targets together; the result is accepted by the training methods.
    pub fn batch<'a>(&self, x: MatRef<'a, T>, t: Targets<'a, T>) -> Result<Batch<'a, T>> {
        self.check_inputs(x)?;
        let mut batch = self.unchecked_x_batch(x, t)?;
        batch.x_unchecked = false;
        Ok(batch)
    }

    /// A batch for `train_epoch` with every check of `batch` / `weighted_batch` but the
    /// inputs' finite check, which the epoch makes on each mini-batch as it gathers it (the
    /// rows are then in cache; a separate pass over all of x costs 3-4% of an epoch). A bad
    /// value stops the epoch with the error `batch` would give, and the network and training
    /// state are put back as they were before the epoch. Other methods check it as `batch`.
    pub fn epoch_batch<'a>(
        &self,
        x: MatRef<'a, T>,
        t: Targets<'a, T>,
        weights: Option<&'a [T]>,
    ) -> Result<Batch<'a, T>> {
        let mut batch = self.unchecked_x_batch(x, t)?;
        if let Some(w) = weights {
            batch = self.with_weights(batch, w)?;
        }
        Ok(batch)
    }

    fn unchecked_x_batch<'a>(&self, x: MatRef<'a, T>, t: Targets<'a, T>) -> Result<Batch<'a, T>> {
        self.check_shape(x)?;
        self.loss.check_targets(&t, x.rows(), self.n_outputs())?;
        Ok(Batch {
            x,
            t,
            weights: None,
            checked_for: self.signature(),
            x_unchecked: true,
        })
    }

    /// `batch` with a weight per sample (finite, >= 0, not all 0).
    pub fn weighted_batch<'a>(
        &self,
        x: MatRef<'a, T>,
        t: Targets<'a, T>,
        weights: &'a [T],
    ) -> Result<Batch<'a, T>> {
        let batch = self.batch(x, t)?;
        self.with_weights(batch, weights)
    }

    /// Targets (and weights) of n samples checked as `epoch_batch` checks them, for inputs
    /// kept elsewhere (a sparse matrix, sparse.rs): x is an (n, 0) stand-in that the sparse
    /// paths never read.
    pub(crate) fn inputless_batch<'a>(
        &self,
        n: usize,
        t: Targets<'a, T>,
        weights: Option<&'a [T]>,
    ) -> Result<Batch<'a, T>> {
        self.loss.check_targets(&t, n, self.n_outputs())?;
        let mut batch = Batch {
            x: MatRef::new(&[], n, 0)?,
            t,
            weights: None,
            checked_for: self.signature(),
            x_unchecked: false,
        };
        if let Some(w) = weights {
            batch = self.with_weights(batch, w)?;
        }
        Ok(batch)
    }

    fn with_weights<'a>(&self, mut batch: Batch<'a, T>, weights: &'a [T]) -> Result<Batch<'a, T>> {
        let x = batch.x;
        if weights.len() != x.rows() {
            return value_error!(
                "sample_weight has {} values for {} samples",
                weights.len(),
                x.rows()
            );
        }
        if let Some((k, w)) = weights
            .iter()
            .enumerate()
            .find(|(_, w)| !(w.is_finite() && **w >= T::ZERO))
        {
            return value_error!("sample weights must be finite and >= 0, got {w} at {k}");
        }
        if weights.iter().all(|&w| w == T::ZERO) {
            return value_error!("sample weights are all 0: nothing to learn from");
        }
        if !weights.iter().fold(T::ZERO, |s, &w| s + w).is_finite() {
            return value_error!("sample weights are too large: their sum is not finite");
        }
        batch.weights = Some(weights);
        Ok(batch)
    }

    fn signature(&self) -> Signature {
        Signature {
            n_inputs: self.n_inputs(),
            n_outputs: self.n_outputs(),
            loss: self.loss,
        }
    }

    /// A batch is only valid for networks of the shape and loss it was checked against.
    pub(crate) fn check_batch(&self, batch: &Batch<T>) -> Result<()> {
        self.check_signature(batch)?;
        if batch.x_unchecked {
            self.check_rows(batch.x, 0, batch.len())?;
        }
        Ok(())
    }

    /// `check_batch` without the inputs' finite check of an `epoch_batch`.
    pub(crate) fn check_signature(&self, batch: &Batch<T>) -> Result<()> {
        if batch.checked_for != self.signature() {
            return value_error!(
                "this batch was checked for a network with {:?}, not {:?}",
                batch.checked_for,
                self.signature()
            );
        }
        Ok(())
    }

    /// The finite check of `check_inputs` on rows `start..end` of `x`, positions given in `x`.
    pub fn check_rows(&self, x: MatRef<T>, start: usize, end: usize) -> Result<()> {
        check_finite_rows(x.rows_range(start, end), |k| start + k)
    }
}

/// ValueError naming the first non-finite value of `x` by its position in the caller's array:
/// row `row_of(k)` for row k of `x` (a block of rows, or a gathered mini-batch).
pub(crate) fn check_finite_rows<T: Real>(
    x: MatRef<T>,
    row_of: impl Fn(usize) -> usize,
) -> Result<()> {
    match first_non_finite(x.as_slice()) {
        Some(pos) => non_finite_at(x, pos, row_of),
        None => Ok(()),
    }
}

/// The ValueError of `check_finite_rows` for the value at flat position `pos` of `x`.
pub(crate) fn non_finite_at<T: Real>(
    x: MatRef<T>,
    pos: usize,
    row_of: impl Fn(usize) -> usize,
) -> Result<()> {
    value_error!(
        "inputs must be finite, got {} at [{}, {}]",
        x.as_slice()[pos],
        row_of(pos / x.cols()),
        pos % x.cols()
    )
}

pub(crate) fn check_l2(l2: f64) -> Result<()> {
    if !(l2.is_finite() && l2 >= 0.0) {
        return value_error!("l2 must be a finite number >= 0, got {l2}");
    }
    Ok(())
}

/// Refuses a learning rate that is not finite and positive.
pub fn check_learning_rate(learning_rate: f64) -> Result<()> {
    if !(learning_rate.is_finite() && learning_rate > 0.0) {
        return value_error!("learning_rate must be a finite number > 0, got {learning_rate}");
    }
    Ok(())
}
