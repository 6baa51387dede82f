//! Losses, each defined as PyTorch defines it (mean reduction), with the seed of the chain rule
//! dL/dz of the output layer beside the value. See docs/maths.md for the operation order.

use crate::activation::Activation;
use crate::error::{value_error, Result};
use crate::float::{first_non_finite, Real};
use crate::matrix::{MatRef, Matrix};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Loss {
    /// Mean over batch and outputs of (a - t)^2 (PyTorch `MSELoss`).
    Mse,
    /// Sigmoid output, from logits (PyTorch `BCEWithLogitsLoss`), mean over batch and outputs.
    BinaryCrossEntropy,
    /// Softmax output, mean over the batch of -sum_c t_c log p_c (PyTorch `CrossEntropyLoss`).
    CrossEntropy,
    /// Exp output, mean over batch and outputs of the half Poisson deviance from the log-rate z:
    /// exp(z) - t z + (t ln t - t) (scikit-learn's `MLPRegressor(loss="poisson")`; PyTorch's
    /// `PoissonNLLLoss(log_input=True)` without the constant t ln t - t). Targets t >= 0.
    Poisson,
}

/// What a batch is trained towards: one row of m values per sample, or one class per sample.
#[derive(Debug, Clone, Copy)]
pub enum Targets<'a, T = f64> {
    Dense(MatRef<'a, T>),
    Classes(&'a [usize]),
}

impl<'a, T: Real> Targets<'a, T> {
    pub fn len(&self) -> usize {
        match self {
            Targets::Dense(t) => t.rows(),
            Targets::Classes(c) => c.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn rows_range(&self, start: usize, end: usize) -> Targets<'a, T> {
        match self {
            Targets::Dense(t) => Targets::Dense(t.rows_range(start, end)),
            Targets::Classes(c) => Targets::Classes(&c[start..end]),
        }
    }

    /// t[k][i], with class indices read as one-hot rows.
    #[inline]
    pub fn get(&self, k: usize, i: usize) -> T {
        match self {
            Targets::Dense(t) => t.row(k)[i],
            Targets::Classes(c) => {
                if c[k] == i {
                    T::ONE
                } else {
                    T::ZERO
                }
            }
        }
    }
}

impl Loss {
    /// Every loss, in the order error messages and the binding's `LOSSES` list them: the one
    /// list of losses (`from_name` and `names` go through it).
    pub const ALL: [Loss; 4] = [
        Loss::Mse,
        Loss::BinaryCrossEntropy,
        Loss::CrossEntropy,
        Loss::Poisson,
    ];

    /// Every name `from_name` accepts.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|loss| loss.name()).collect()
    }

    pub fn from_name(name: &str) -> Result<Self> {
        match Self::ALL.into_iter().find(|loss| loss.name() == name) {
            Some(loss) => Ok(loss),
            None => {
                let quoted: Vec<String> = Self::names().iter().map(|n| format!("'{n}'")).collect();
                value_error!(
                    "unknown loss {name:?}: expected one of {}",
                    quoted.join(", ")
                )
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Loss::Mse => "mse",
            Loss::BinaryCrossEntropy => "binary_cross_entropy",
            Loss::CrossEntropy => "cross_entropy",
            Loss::Poisson => "poisson",
        }
    }

    /// The output activation a loss implies when none is given.
    pub fn default_output_activation(self) -> Activation {
        match self {
            Loss::Mse => Activation::Identity,
            Loss::BinaryCrossEntropy => Activation::Sigmoid,
            Loss::CrossEntropy => Activation::Softmax,
            Loss::Poisson => Activation::Exp,
        }
    }

    /// The logit losses are defined on z with their own output activation; MSE takes any
    /// element-wise output activation.
    pub fn check_output_activation(self, output: Activation) -> Result<()> {
        let required = match self {
            Loss::Mse if output == Activation::Softmax => {
                return value_error!(
                    "loss 'mse' does not take a softmax output: use loss='cross_entropy' \
                     or another output_activation"
                )
            }
            Loss::Mse => return Ok(()),
            Loss::BinaryCrossEntropy => Activation::Sigmoid,
            Loss::CrossEntropy => Activation::Softmax,
            Loss::Poisson => Activation::Exp,
        };
        if output != required {
            return value_error!(
                "loss {:?} needs output_activation {:?} (it is computed from the logits), got {:?}",
                self.name(),
                required.name(),
                output.name()
            );
        }
        Ok(())
    }

    /// Checks targets for a batch of n samples and m outputs: counts, finiteness and ranges.
    pub fn check_targets<T: Real>(self, t: &Targets<T>, n: usize, m: usize) -> Result<()> {
        if t.len() != n {
            return value_error!("got {n} samples but {} targets", t.len());
        }
        match t {
            Targets::Classes(classes) => {
                if self != Loss::CrossEntropy {
                    return value_error!(
                        "class-index targets are for loss 'cross_entropy'; loss {:?} needs \
                         targets of shape (n, {m})",
                        self.name()
                    );
                }
                if let Some((k, &c)) = classes.iter().enumerate().find(|(_, &c)| c >= m) {
                    return value_error!(
                        "class index {c} (sample {k}) is out of range for {m} outputs: \
                         expected 0 <= class < {m}"
                    );
                }
            }
            Targets::Dense(t) => {
                if t.cols() != m {
                    return value_error!(
                        "targets have {} columns, the network has {m} outputs",
                        t.cols()
                    );
                }
                if let Some(pos) = first_non_finite(t.as_slice()) {
                    let (k, i) = (pos / m, pos % m);
                    return value_error!(
                        "targets must be finite, got {} at [{k}, {i}]",
                        t.as_slice()[pos]
                    );
                }
                if self == Loss::Poisson {
                    // Counts or rates: a negative target has no Poisson likelihood (its
                    // t ln t would be NaN).
                    if let Some(pos) = t.as_slice().iter().position(|v| *v < T::ZERO) {
                        let (k, i) = (pos / m, pos % m);
                        return value_error!(
                            "loss 'poisson' needs targets >= 0 (counts or rates), got {} at \
                             [{k}, {i}]",
                            t.as_slice()[pos]
                        );
                    }
                } else if self != Loss::Mse {
                    let outside = |v: &T| !(*v >= T::ZERO && *v <= T::ONE);
                    if let Some(pos) = t.as_slice().iter().position(outside) {
                        let (k, i) = (pos / m, pos % m);
                        return value_error!(
                            "loss {:?} needs targets in [0, 1], got {} at [{k}, {i}]",
                            self.name(),
                            t.as_slice()[pos]
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the loss's value reads only the output layer's pre-activations z, never its
    /// output a = f(z) (`accumulate_row`): cross-entropy (from log-sum-exp of z), binary
    /// cross-entropy and Poisson (from z, for their stability); mse reads a.
    pub(crate) fn reads_only_z(self) -> bool {
        self != Loss::Mse
    }

    /// Whether the loss has classes, so that an accuracy means something: cross-entropy and
    /// binary cross-entropy. mse and Poisson are regressions (a count's rate against 0.5 is
    /// no accuracy; the reference's `accuracy` is None for both).
    pub fn is_classifier(self) -> bool {
        matches!(self, Loss::CrossEntropy | Loss::BinaryCrossEntropy)
    }

    /// ValueError for a loss without classes (mse) asked for an accuracy.
    pub(crate) fn check_classifier(self) -> Result<()> {
        if !self.is_classifier() {
            return value_error!(
                "accuracy needs a classifier's loss (cross_entropy or binary_cross_entropy), \
                 not {:?}",
                self.name()
            );
        }
        Ok(())
    }

    /// The score c_k of sample k, whose output row is `out`, against its targets: for
    /// cross_entropy 1 when the first largest output is the class (the class index, or the
    /// first largest value of a target row), else 0; for binary_cross_entropy the fraction of
    /// outputs with `p >= 0.5` equal to `t >= 0.5`. (`ferrinet.training.accuracy` in Python.)
    pub fn accuracy_score<T: Real>(self, out: &[T], t: &Targets<T>, k: usize) -> f64 {
        match self {
            Loss::CrossEntropy => {
                let predicted = first_argmax(out);
                let truth = match t {
                    Targets::Classes(c) => c[k],
                    Targets::Dense(d) => first_argmax(d.row(k)),
                };
                if predicted == truth {
                    1.0
                } else {
                    0.0
                }
            }
            _ => {
                let half = T::from_f64(0.5);
                let mut hits = 0.0;
                for (i, &p) in out.iter().enumerate() {
                    if (p >= half) == (t.get(k, i) >= half) {
                        hits += 1.0;
                    }
                }
                hits / out.len() as f64
            }
        }
    }

    /// L, the mean loss of a batch, from the output layer's z and a. With sample weights w_k
    /// it is the weighted mean sum_k w_k l_k / sum_k w_k of the per-sample losses.
    pub fn value<T: Real>(
        self,
        z: MatRef<T>,
        a: MatRef<T>,
        t: &Targets<T>,
        weights: Option<&[T]>,
    ) -> T {
        let (n, m) = (z.rows(), z.cols());
        if let Some(w) = weights {
            let mut total = T::ZERO;
            let mut s = T::ZERO;
            for (k, &wk) in w.iter().enumerate().take(n) {
                let lk = self.accumulate(z, a, t, k, T::ZERO);
                let lk = if self == Loss::CrossEntropy {
                    lk
                } else {
                    lk / T::from_f64(m as f64)
                };
                total += wk * lk;
                s += wk;
            }
            // A batch whose samples all weigh 0 has nothing to learn from: loss 0, gradient 0.
            return if s == T::ZERO { T::ZERO } else { total / s };
        }
        let mut sum = T::ZERO;
        for k in 0..n {
            sum = self.accumulate(z, a, t, k, sum);
        }
        match self {
            Loss::CrossEntropy => sum / T::from_f64(n as f64),
            _ => sum / T::from_f64((n * m) as f64),
        }
    }

    /// The unnormalised sums of `value` over one block of rows: (sum of the loss terms, 0)
    /// without weights, (sum of w_k l_k, sum of w_k) with them, each a running sum over the
    /// block's rows in order. `finish_value` turns the blocks' sums, added in order, into the
    /// mean; for a single block the result is `value`'s, bit for bit.
    pub(crate) fn block_sums<T: Real>(
        self,
        z: MatRef<T>,
        a: MatRef<T>,
        t: &Targets<T>,
        weights: Option<&[T]>,
    ) -> (T, T) {
        let add = |k: usize, sum: T| self.accumulate(z, a, t, k, sum);
        self.block_sums_by((z.rows(), z.cols()), weights, add)
    }

    /// `block_sums` of n rows of m outputs, each row's loss terms added to a running sum by
    /// `add(k, sum)`, rows in order (`accumulate`, or `cross_entropy_terms` from a log-sum-exp
    /// already known).
    pub(crate) fn block_sums_by<T: Real>(
        self,
        (n, m): (usize, usize),
        weights: Option<&[T]>,
        mut add: impl FnMut(usize, T) -> T,
    ) -> (T, T) {
        match weights {
            Some(w) => {
                let (mut total, mut s) = (T::ZERO, T::ZERO);
                for (k, &wk) in w.iter().enumerate().take(n) {
                    let lk = add(k, T::ZERO);
                    let lk = if self == Loss::CrossEntropy {
                        lk
                    } else {
                        lk / T::from_f64(m as f64)
                    };
                    total += wk * lk;
                    s += wk;
                }
                (total, s)
            }
            None => {
                let mut sum = T::ZERO;
                for k in 0..n {
                    sum = add(k, sum);
                }
                (sum, T::ZERO)
            }
        }
    }

    /// The mean loss from the sums of `block_sums` over n samples of m outputs.
    pub(crate) fn finish_value<T: Real>(
        self,
        (total, s): (T, T),
        weighted: bool,
        n: usize,
        m: usize,
    ) -> T {
        match (weighted, self) {
            (true, _) if s == T::ZERO => T::ZERO,
            (true, _) => total / s,
            (false, Loss::CrossEntropy) => total / T::from_f64(n as f64),
            (false, _) => total / T::from_f64((n * m) as f64),
        }
    }

    /// `value` of a batch given as consecutive parts (z, a, t) of its rows, with the whole
    /// batch's weights: one running sum over the parts in order, so the same bits as `value`
    /// on the whole batch.
    pub fn value_of_parts<'p, T: Real + 'p>(
        self,
        parts: impl Iterator<Item = (MatRef<'p, T>, MatRef<'p, T>, Targets<'p, T>)>,
        weights: Option<&[T]>,
    ) -> T {
        let (mut total, mut s, mut sum) = (T::ZERO, T::ZERO, T::ZERO);
        let (mut n, mut m, mut row) = (0, 1, 0);
        for (z, a, t) in parts {
            m = z.cols();
            n += z.rows();
            for k in 0..z.rows() {
                match weights {
                    Some(w) => {
                        let lk = self.accumulate(z, a, &t, k, T::ZERO);
                        let lk = if self == Loss::CrossEntropy {
                            lk
                        } else {
                            lk / T::from_f64(m as f64)
                        };
                        total += w[row] * lk;
                        s += w[row];
                    }
                    None => sum = self.accumulate(z, a, &t, k, sum),
                }
                row += 1;
            }
        }
        match (weights, self) {
            (Some(_), _) if s == T::ZERO => T::ZERO,
            (Some(_), _) => total / s,
            (None, Loss::CrossEntropy) => sum / T::from_f64(n as f64),
            (None, _) => sum / T::from_f64((n * m) as f64),
        }
    }

    /// `value` of a batch of one unweighted sample (the per-sample steps): sample k of `t`
    /// against the output row (z, a); the same operations as `value` with n = 1 (its division
    /// by n is by 1 for cross-entropy, by m otherwise).
    #[inline(always)]
    pub(crate) fn value_sample<T: Real>(self, z: &[T], a: &[T], t: &Targets<T>, k: usize) -> T {
        let sum = self.accumulate_row(z, a, t, k, T::ZERO);
        match self {
            Loss::CrossEntropy => sum / T::ONE,
            _ => sum / T::from_f64(z.len() as f64),
        }
    }

    /// `sum` plus sample k's loss terms, added one by one (cross-entropy: one term per class
    /// with a non-zero target), so that one running sum over a batch follows docs/maths.md.
    #[inline]
    fn accumulate<T: Real>(
        self,
        z: MatRef<T>,
        a: MatRef<T>,
        t: &Targets<T>,
        k: usize,
        sum: T,
    ) -> T {
        self.accumulate_row(z.row(k), a.row(k), t, k, sum)
    }

    /// `accumulate` for sample k of `t` with its output row (zk, ak). Always inlined: the
    /// per-sample steps compile it into their loop (`value_sample`, `kernels::per_cpu`).
    #[inline(always)]
    fn accumulate_row<T: Real>(
        self,
        zk: &[T],
        ak: &[T],
        t: &Targets<T>,
        k: usize,
        mut sum: T,
    ) -> T {
        match self {
            Loss::Mse => {
                for (i, &ai) in ak.iter().enumerate() {
                    let d = ai - t.get(k, i);
                    sum += d * d;
                }
            }
            Loss::BinaryCrossEntropy => {
                // max(z,0) - z t + log(1 + exp(-|z|)): never exponentiates a positive number.
                for (i, &zi) in zk.iter().enumerate() {
                    sum += (zi.max(T::ZERO) - zi * t.get(k, i)) + (-zi.abs()).exp().ln_1p();
                }
            }
            Loss::Poisson => {
                // From z, never from a log of the output: exp(z) - t z + t ln t - t, arranged
                // as (exp(z) - t) + t (ln t - z) so that near the fit (z ~ ln t) no large
                // t ln t and t z cancel; 0 ln 0 = 0.
                for (i, &zi) in zk.iter().enumerate() {
                    sum += poisson_deviance(zi, t.get(k, i));
                }
            }
            Loss::CrossEntropy => return cross_entropy_terms(zk, log_sum_exp(zk), t, k, sum),
        }
        sum
    }

    /// delta = dL/dz of the output layer. The 1/(n m) (or 1/n) of the mean is here: the factor
    /// the article dropped (erratum 7). With sample weights, sample k's share is w_k / sum w.
    pub fn seed<T: Real>(
        self,
        z: MatRef<T>,
        a: MatRef<T>,
        t: &Targets<T>,
        weights: Option<&[T]>,
        output: Activation,
        delta: &mut Matrix<T>,
    ) {
        let total_weight = weights.map(|w| w.iter().fold(T::ZERO, |s, &v| s + v));
        self.seed_normalized(z, a, t, weights, z.rows(), total_weight, output, delta);
    }

    /// `seed` for some rows of a batch of `batch_len` rows whose sample weights (if any) sum
    /// to `total_weight`: each row's delta is the one `seed` gives it on the whole batch.
    #[allow(clippy::too_many_arguments)]
    pub fn seed_normalized<T: Real>(
        self,
        z: MatRef<T>,
        a: MatRef<T>,
        t: &Targets<T>,
        weights: Option<&[T]>,
        batch_len: usize,
        total_weight: Option<T>,
        output: Activation,
        delta: &mut Matrix<T>,
    ) {
        let (zs, as_, m) = (z.as_slice(), a.as_slice(), z.cols());
        let rows = (t, weights, batch_len, total_weight);
        self.seed_rows(zs, as_, m, rows, output, delta.as_mut_slice());
    }

    /// `seed_normalized` on row-major slices of m columns: z, a and delta hold the same rows,
    /// the rows of `t` and `weights`, of a batch of `batch_len` rows whose sample weights sum
    /// to `total_weight` (top_rows.rs seeds each thread's block of rows with it).
    pub(crate) fn seed_rows<T: Real>(
        self,
        z: &[T],
        a: &[T],
        m: usize,
        (t, weights, batch_len, total_weight): (&Targets<T>, Option<&[T]>, usize, Option<T>),
        output: Activation,
        delta: &mut [T],
    ) {
        let n = z.len() / m.max(1);
        assert!(z.len() == n * m && a.len() == n * m && delta.len() == n * m);
        let (nf, mf) = (T::from_f64(batch_len as f64), T::from_f64(m as f64));
        let two = T::ONE + T::ONE;
        // c_k: the factor of sample k.
        let factor = |k: usize| -> T {
            match (weights, total_weight) {
                (Some(_), Some(s)) if s == T::ZERO => T::ZERO,
                (Some(w), Some(s)) => match self {
                    Loss::Mse => (two * w[k]) / (s * mf),
                    Loss::BinaryCrossEntropy | Loss::Poisson => w[k] / (s * mf),
                    Loss::CrossEntropy => w[k] / s,
                },
                _ => match self {
                    Loss::Mse => two / (nf * mf),
                    Loss::BinaryCrossEntropy | Loss::Poisson => T::ONE / (nf * mf),
                    Loss::CrossEntropy => T::ONE / nf,
                },
            }
        };
        let rows = z.chunks_exact(m).zip(a.chunks_exact(m));
        for (k, ((zk, ak), dk)) in rows.zip(delta.chunks_exact_mut(m)).enumerate() {
            self.seed_row(factor(k), zk, ak, t, k, output, dk);
        }
    }

    /// `seed` for a batch of one unweighted sample (the per-sample steps of `train` and
    /// `backward`): sample k of `t` against the output row (z, a), into the row `d`. The
    /// factor is `seed`'s with n = 1 (1 n = n exactly), so the bits are `seed`'s; without its
    /// generality (the batch's size and weights, a matrix per argument), which costs more than
    /// the arithmetic for a narrow output.
    #[inline(always)]
    pub(crate) fn seed_sample<T: Real>(
        self,
        z: &[T],
        a: &[T],
        t: &Targets<T>,
        k: usize,
        output: Activation,
        d: &mut [T],
    ) {
        let mf = T::from_f64(z.len() as f64);
        let c = match self {
            Loss::Mse => (T::ONE + T::ONE) / mf,
            Loss::BinaryCrossEntropy | Loss::Poisson => T::ONE / mf,
            Loss::CrossEntropy => T::ONE,
        };
        self.seed_row(c, z, a, t, k, output, d);
    }

    /// Row k's delta with its factor c (`seed_normalized`).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn seed_row<T: Real>(
        self,
        c: T,
        zk: &[T],
        ak: &[T],
        t: &Targets<T>,
        k: usize,
        output: Activation,
        dk: &mut [T],
    ) {
        let m = zk.len();
        match self {
            // d/da (a - t)^2 / (n m) = 2 (a - t) / (n m), then times f'(z).
            Loss::Mse => {
                for i in 0..m {
                    dk[i] = (c * (ak[i] - t.get(k, i))) * output.derivative(zk[i], ak[i]);
                }
            }
            // d/dz of the logit form is sigmoid(z) - t; of the log-rate form exp(z) - t.
            Loss::BinaryCrossEntropy | Loss::Poisson => {
                for i in 0..m {
                    dk[i] = c * (ak[i] - t.get(k, i));
                }
            }
            // d/dz_i of -sum_c t_c log softmax(z)_c = softmax(z)_i * sum_c t_c - t_i.
            Loss::CrossEntropy => {
                let total = match t {
                    Targets::Classes(_) => T::ONE,
                    Targets::Dense(tt) => tt.row(k).iter().fold(T::ZERO, |s, &v| s + v),
                };
                for i in 0..m {
                    dk[i] = c * (ak[i] * total - t.get(k, i));
                }
            }
        }
    }
}

/// One element of the half Poisson deviance, from the log-rate z:
/// `(exp(z) - t) + t * (ln(t) - z)` for t > 0, `exp(z)` for t = 0 (0 ln 0 = 0).
#[inline]
pub fn poisson_deviance<T: Real>(z: T, t: T) -> T {
    let e = z.exp();
    if t > T::ZERO {
        (e - t) + t * (t.ln() - z)
    } else {
        e
    }
}

/// `sum` plus cross-entropy's terms of sample k, whose output row has pre-activations zk and
/// log-sum-exp `lse`: lse - z_c for class c, or sum_i t_i (lse - z_i) over the non-zero targets.
#[inline]
pub(crate) fn cross_entropy_terms<T: Real>(
    zk: &[T],
    lse: T,
    t: &Targets<T>,
    k: usize,
    sum: T,
) -> T {
    match t {
        Targets::Classes(c) => sum + (lse - zk[c[k]]),
        Targets::Dense(_) => {
            let mut l = T::ZERO;
            for (i, &zi) in zk.iter().enumerate() {
                let ti = t.get(k, i);
                if ti != T::ZERO {
                    l += ti * (lse - zi);
                }
            }
            sum + l
        }
    }
}

/// log sum_i exp(z_i), computed as max + log sum exp(z_i - max) so nothing overflows.
pub fn log_sum_exp<T: Real>(z: &[T]) -> T {
    let mx = z.iter().copied().fold(z[0], T::max);
    let mut s = T::ZERO;
    for &zi in z {
        s += (zi - mx).exp();
    }
    mx + s.ln()
}

/// The index of the first largest value (outputs counted here are finite: a step with a
/// non-finite loss is refused before its batch is counted).
fn first_argmax<T: Real>(v: &[T]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate().skip(1) {
        if x > v[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::sigmoid;

    fn one(z: &[f64]) -> MatRef<'_> {
        MatRef::new(z, 1, z.len()).unwrap()
    }

    #[test]
    fn bce_from_logits_is_finite_at_huge_logits() {
        let z = [1e4, -1e4];
        let a = [sigmoid(1e4), sigmoid(-1e4)];
        let t = [0.0, 1.0];
        let l = Loss::BinaryCrossEntropy.value(one(&z), one(&a), &Targets::Dense(one(&t)), None);
        // Both samples are wrong by a logit of 1e4: the loss is 1e4 each, mean 1e4.
        assert_eq!(l, 1e4);
    }

    #[test]
    fn cross_entropy_matches_minus_log_softmax() {
        let z = [1.0, 2.0, 3.0];
        let mut a = [0.0; 3];
        crate::activation::softmax(&z, &mut a);
        let l = Loss::CrossEntropy.value(one(&z), one(&a), &Targets::Classes(&[0]), None);
        assert!((l - (-a[0].ln())).abs() < 1e-15);
        let huge = [1e4, 0.0, 0.0];
        let target = Targets::Classes(&[1]);
        let l = Loss::CrossEntropy.value(one(&huge), one(&[1.0, 0.0, 0.0]), &target, None);
        assert_eq!(l, 1e4);
    }

    #[test]
    fn poisson_is_the_half_deviance_and_zero_at_the_fit() {
        // t ln t - t + exp(z) - t z, with 0 ln 0 = 0; at z = ln t it is 0.
        let (z, t) = ([0.3, -1.2, 2.0], [2.0, 0.0, 2.0f64.exp()]);
        let a: Vec<f64> = z.iter().map(|v: &f64| v.exp()).collect();
        let l = Loss::Poisson.value(one(&z), one(&a), &Targets::Dense(one(&t)), None);
        let by_hand = (2.0 * 2.0f64.ln() - 2.0 + 0.3f64.exp() - 2.0 * 0.3) + (-1.2f64).exp();
        assert!(
            (l - by_hand / 3.0).abs() < 1e-15,
            "{l} vs {}",
            by_hand / 3.0
        );
        assert!(poisson_deviance(2.0, 2.0f64.exp()).abs() < 1e-15);
        // the seed is (exp(z) - t) / (n m)
        let mut delta = Matrix::zeros(1, 3).unwrap();
        let target = Targets::Dense(one(&t));
        Loss::Poisson.seed(one(&z), one(&a), &target, None, Activation::Exp, &mut delta);
        for i in 0..3 {
            assert_eq!(delta.row(0)[i], (a[i] - t[i]) / 3.0);
        }
    }

    #[test]
    fn poisson_refuses_negative_targets() {
        let t = [1.0, -0.5];
        let err = Loss::Poisson
            .check_targets(&Targets::Dense(one(&t)), 1, 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains(">= 0") && err.contains("-0.5"), "{err}");
        assert!(Loss::Poisson
            .check_targets(&Targets::Dense(one(&[0.0, 3.0])), 1, 2)
            .is_ok());
        assert!(Loss::Poisson
            .check_output_activation(Activation::Identity)
            .is_err());
    }

    #[test]
    fn output_activation_rules() {
        assert!(Loss::Mse.check_output_activation(Activation::Tanh).is_ok());
        assert!(Loss::Mse
            .check_output_activation(Activation::Softmax)
            .is_err());
        assert!(Loss::CrossEntropy
            .check_output_activation(Activation::Sigmoid)
            .is_err());
        assert!(Loss::BinaryCrossEntropy
            .check_output_activation(Activation::Sigmoid)
            .is_ok());
    }
}
