//! `Real`: the float type a network computes in (f64 by default, f32 for speed).
//!
//! A small trait of our own rather than num-traits: the core needs a dozen operations, and
//! each maps to the same libm call the Python reference makes (exp, ln_1p, tanh, pow, ...).

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

pub trait Real:
    Copy
    + Send
    + Sync
    + Debug
    + Display
    + Default
    + PartialOrd
    + PartialEq
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    /// The largest finite value.
    const MAX_FINITE: Self;
    /// "float32" / "float64", as NumPy names the dtype.
    const NAME: &'static str;

    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn ln_1p(self) -> Self;
    fn tanh(self) -> Self;
    fn sqrt(self) -> Self;
    fn abs(self) -> Self;
    fn powf(self, e: Self) -> Self;
    fn max(self, other: Self) -> Self;
    fn is_finite(self) -> bool;
    /// a * b + c with one rounding where the CPU has FMA (used by the kernels only).
    fn mul_add(self, b: Self, c: Self) -> Self;
}

macro_rules! impl_real {
    ($t:ty, $name:expr) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const MAX_FINITE: Self = <$t>::MAX;
            const NAME: &'static str = $name;

            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline(always)]
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[inline(always)]
            fn mul_add(self, b: Self, c: Self) -> Self {
                <$t>::mul_add(self, b, c)
            }
        }
    };
}

impl_real!(f64, "float64");
impl_real!(f32, "float32");

/// The index of the first NaN or infinity in `v`, if any.
///
/// Every call on user data (inputs, targets) scans all of it, so the common case (all finite)
/// must run at memory speed: blocks of `BLOCK` values are tested with a branch-free fold that
/// the compiler vectorizes, and only a block that fails is searched element by element. On a
/// 60,000 x 784 f32 array this is 1.4x faster than `iter().position(..)`, which stops to
/// branch on every value.
pub fn first_non_finite<T: Real>(v: &[T]) -> Option<usize> {
    const BLOCK: usize = 1024;
    // One sample's few values (a per-sample `backward` call's x and target): a plain search
    // costs less than setting up the blocks.
    if v.len() <= 16 {
        return v.iter().position(|x| !x.is_finite());
    }
    v.chunks(BLOCK).enumerate().find_map(|(b, block)| {
        if block.iter().fold(true, |ok, &x| ok & x.is_finite()) {
            None
        } else {
            block
                .iter()
                .position(|x| !x.is_finite())
                .map(|i| b * BLOCK + i)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::first_non_finite;

    #[test]
    fn first_non_finite_finds_the_first_bad_value_across_blocks() {
        assert_eq!(first_non_finite::<f64>(&[]), None);
        assert_eq!(first_non_finite(&vec![1.0f64; 5000]), None);
        let bad = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
        for (k, pos) in [0, 1, 1023, 1024, 2500, 4999].into_iter().enumerate() {
            let mut v = vec![1.0f64; 5000];
            v[pos] = bad[k % 3];
            assert_eq!(first_non_finite(&v), Some(pos));
            // A second bad value, in the same block or a later one, does not change the answer.
            v[(pos + 1).min(4999)] = f64::NAN;
            v[4999] = f64::NAN;
            assert_eq!(first_non_finite(&v), Some(pos));
        }
        let w: Vec<f32> = (0..3000)
            .map(|i| if i == 2047 { f32::NAN } else { i as f32 })
            .collect();
        assert_eq!(first_non_finite(&w), Some(2047));
        // short slices (one sample's values) take a plain search: the same answers
        for len in [1, 2, 16, 17] {
            for pos in 0..len {
                let mut v = vec![0.5f32; len];
                v[pos] = f32::INFINITY;
                v[len - 1] = f32::NAN;
                assert_eq!(first_non_finite(&v), Some(pos), "{len} values");
            }
            assert_eq!(first_non_finite(&vec![-2.0f64; len]), None);
        }
    }
}
