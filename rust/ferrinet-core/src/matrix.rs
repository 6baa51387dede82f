//! Row-major matrices: a borrowed read-only view (`MatRef`) for inputs, and an owned buffer
//! (`Matrix`) that the network reuses between calls instead of allocating per batch.

use crate::error::{value_error, Error, Result};
use crate::float::Real;

/// A read-only (rows, cols) view of row-major data; row k is sample k.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a, T = f64> {
    data: &'a [T],
    rows: usize,
    cols: usize,
}

impl<'a, T: Real> MatRef<'a, T> {
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Result<Self> {
        match rows.checked_mul(cols) {
            Some(len) if len == data.len() => Ok(MatRef { data, rows, cols }),
            _ => value_error!(
                "a ({rows}, {cols}) matrix needs {} values, got {}",
                rows as u128 * cols as u128,
                data.len()
            ),
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn as_slice(&self) -> &'a [T] {
        self.data
    }

    #[inline]
    pub fn row(&self, k: usize) -> &'a [T] {
        &self.data[k * self.cols..(k + 1) * self.cols]
    }

    /// Rows `start..end` as a view (no copy).
    pub fn rows_range(&self, start: usize, end: usize) -> MatRef<'a, T> {
        MatRef {
            data: &self.data[start * self.cols..end * self.cols],
            rows: end - start,
            cols: self.cols,
        }
    }
}

/// An owned row-major matrix, used as a reusable buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix<T = f64> {
    data: Vec<T>,
    rows: usize,
    cols: usize,
}

impl<T> Default for Matrix<T> {
    fn default() -> Self {
        Matrix {
            data: Vec::new(),
            rows: 0,
            cols: 0,
        }
    }
}

impl<T: Real> Matrix<T> {
    pub fn zeros(rows: usize, cols: usize) -> Result<Self> {
        let mut m = Matrix::default();
        m.resize(rows, cols)?;
        Ok(m)
    }

    /// Wraps row-major data; its length must be rows * cols.
    pub fn from_vec(data: Vec<T>, rows: usize, cols: usize) -> Result<Self> {
        MatRef::new(&data, rows, cols)?;
        Ok(Matrix { data, rows, cols })
    }

    /// Reshapes the buffer to (rows, cols), keeping its allocation when it is large enough.
    /// Contents are unspecified afterwards; callers overwrite or `fill` them. Allocation failure
    /// is an `Error::Memory`, never an abort.
    #[inline]
    pub fn resize(&mut self, rows: usize, cols: usize) -> Result<()> {
        if rows == self.rows && cols == self.cols && self.data.len() == rows * cols {
            return Ok(());
        }
        let len = checked_len(rows, cols)?;
        try_resize(&mut self.data, len)?;
        self.rows = rows;
        self.cols = cols;
        Ok(())
    }

    pub fn view(&self) -> MatRef<'_, T> {
        MatRef {
            data: &self.data,
            rows: self.rows,
            cols: self.cols,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn as_slice(&self) -> &[T] {
        &self.data
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.data
    }

    #[inline]
    pub fn row(&self, k: usize) -> &[T] {
        &self.data[k * self.cols..(k + 1) * self.cols]
    }

    #[inline]
    pub fn row_mut(&mut self, k: usize) -> &mut [T] {
        &mut self.data[k * self.cols..(k + 1) * self.cols]
    }

    pub fn into_vec(self) -> Vec<T> {
        self.data
    }
}

/// rows * cols, or a clear error when it does not fit in memory's address space.
pub(crate) fn checked_len(rows: usize, cols: usize) -> Result<usize> {
    rows.checked_mul(cols)
        .filter(|&len| len <= isize::MAX as usize / 8)
        .ok_or_else(|| {
            Error::Memory(format!(
                "a ({rows}, {cols}) buffer is larger than the address space"
            ))
        })
}

/// `v.resize(len, 0.0)` that reports allocation failure instead of aborting the process.
pub(crate) fn try_resize<T: Real>(v: &mut Vec<T>, len: usize) -> Result<()> {
    if len > v.len() {
        v.try_reserve_exact(len - v.len()).map_err(|_| {
            Error::Memory(format!(
                "cannot allocate {len} {} values ({:.1} GiB)",
                T::NAME,
                (len * std::mem::size_of::<T>()) as f64 / (1u64 << 30) as f64
            ))
        })?;
    }
    v.resize(len, T::ZERO);
    Ok(())
}
