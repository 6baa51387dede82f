//! One error type for the whole core. The binding maps it to Python exceptions in one place
//! (`ferrinet-py/src/errors.rs`): `Value` -> `ValueError`, `Memory` -> `MemoryError`,
//! `Format` -> `ferrinet.ModelFormatError` (a `ValueError`).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// An argument is wrong: a shape, a name, a value out of range, a NaN.
    /// The message says what was expected and what was given.
    Value(String),
    /// A buffer could not be allocated (checked *before* any model state changes).
    Memory(String),
    /// A training step would make the loss or a weight NaN or infinite; it was not applied.
    NonFinite(String),
    /// The caller's stop check asked training to stop (between two steps; state consistent).
    Interrupted,
    /// A saved model (a safetensors file, `io.rs`) is truncated, corrupted, hostile or not a
    /// ferrinet file. The message says what is wrong and where.
    Format(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Value(msg) | Error::Memory(msg) | Error::NonFinite(msg) | Error::Format(msg) => {
                f.write_str(msg)
            }
            Error::Interrupted => f.write_str("training was interrupted"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// `Err(Error::Value(format!(...)))` in one line.
macro_rules! value_error {
    ($($arg:tt)*) => { Err($crate::error::Error::Value(format!($($arg)*))) };
}
pub(crate) use value_error;
