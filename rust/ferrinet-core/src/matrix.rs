//! Row-major matrices: a borrowed read-only view (`MatRef`) for inputs, and an owned buffer
//! (`Matrix`) that the network reuses between calls instead of allocating per batch.

use crate::error::{value_error, Error, Result};

/// A read-only (rows, cols) view of row-major data; row k is sample k.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a> {
    data: &'a [f64],
    rows: usize,
    cols: usize,
}

impl<'a> MatRef<'a> {
    pub fn new(data: &'a [f64], rows: usize, cols: usize) -> Result<Self> {
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

    pub fn as_slice(&self) -> &'a [f64] {
        self.data
    }

    #[inline]
    pub fn row(&self, k: usize) -> &'a [f64] {
        &self.data[k * self.cols..(k + 1) * self.cols]
    }

    /// Rows `start..end` as a view (no copy).
    pub fn rows_range(&self, start: usize, end: usize) -> MatRef<'a> {
        MatRef {
            data: &self.data[start * self.cols..end * self.cols],
            rows: end - start,
            cols: self.cols,
        }
    }
}

/// An owned row-major matrix, used as a reusable buffer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Matrix {
    data: Vec<f64>,
    rows: usize,
    cols: usize,
}

impl Matrix {
    pub fn zeros(rows: usize, cols: usize) -> Result<Self> {
        let mut m = Matrix::default();
        m.resize(rows, cols)?;
        Ok(m)
    }

    /// Wraps row-major data; its length must be rows * cols.
    pub fn from_vec(data: Vec<f64>, rows: usize, cols: usize) -> Result<Self> {
        MatRef::new(&data, rows, cols)?;
        Ok(Matrix { data, rows, cols })
    }

    /// Reshapes the buffer to (rows, cols), keeping its allocation when it is large enough.
    /// Contents are unspecified afterwards; callers overwrite or `fill` them. Allocation failure
    /// is an `Error::Memory`, never an abort.
    pub fn resize(&mut self, rows: usize, cols: usize) -> Result<()> {
        let len = checked_len(rows, cols)?;
        try_resize(&mut self.data, len)?;
        self.rows = rows;
        self.cols = cols;
        Ok(())
    }

    pub fn view(&self) -> MatRef<'_> {
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

    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    pub fn as_mut_slice(&mut self) -> &mut [f64] {
        &mut self.data
    }

    #[inline]
    pub fn row(&self, k: usize) -> &[f64] {
        &self.data[k * self.cols..(k + 1) * self.cols]
    }

    #[inline]
    pub fn row_mut(&mut self, k: usize) -> &mut [f64] {
        &mut self.data[k * self.cols..(k + 1) * self.cols]
    }

    pub fn into_vec(self) -> Vec<f64> {
        self.data
    }
}

/// rows * cols, or a clear error when it does not fit in memory's address space.
pub(crate) fn checked_len(rows: usize, cols: usize) -> Result<usize> {
    rows.checked_mul(cols)
        .filter(|&len| len <= isize::MAX as usize / std::mem::size_of::<f64>())
        .ok_or_else(|| {
            Error::Memory(format!(
                "a ({rows}, {cols}) buffer of float64 is larger than the address space"
            ))
        })
}

/// `v.resize(len, 0.0)` that reports allocation failure instead of aborting the process.
pub(crate) fn try_resize(v: &mut Vec<f64>, len: usize) -> Result<()> {
    if len > v.len() {
        v.try_reserve_exact(len - v.len()).map_err(|_| {
            Error::Memory(format!(
                "cannot allocate {len} float64 values ({:.1} GiB)",
                len as f64 * 8.0 / (1u64 << 30) as f64
            ))
        })?;
    }
    v.resize(len, 0.0);
    Ok(())
}
