//! Saving and loading: the safetensors format (Hugging Face's), which PyTorch reads as it is.
//!
//! A file is `header length (u64, little-endian) | JSON header | tensor data`, written and read
//! by the `safetensors` crate. Each layer l gives two tensors, named as the parameters of a
//! PyTorch `nn.Sequential` of `nn.Linear` layers with an activation module between them
//! (Linear at the even indices, activations at the odd ones):
//!
//! ```text
//! "0.weight" (n_1, n_0)   "0.bias" (n_1,)   "2.weight" (n_2, n_1)   "2.bias" (n_2,)   ...
//! ```
//! W is stored row-major as (n_out, n_in): ferrinet's own layout, and `nn.Linear`'s. The dtype
//! is F64 or F32, the network's. Everything else lives in the header's `__metadata__`, a map
//! from strings to strings, so that PyTorch's strict `load_state_dict` sees only the tensors:
//!
//! | key | value |
//! |---|---|
//! | `format` | `ferrinet` |
//! | `format_version` | `1` |
//! | `architecture` | JSON `{"sizes", "activations" (one per layer, the output layer's last), "loss", "dtype", "seed" (null if unknown), "n_threads" (null: the loader's default)}` |
//! | `data_crc32` | CRC-32 (IEEE, as zlib's `crc32`) of the tensor data, 8 lowercase hex digits |
//! | `training` | only when a training run exists: JSON `{"optimizer" (an `OptimizerConfig`), "learning_rate", "steps", "epochs", "seed", "rng_state", "moments"}`; `moments` has per layer `{"weight": B, "bias": B}`, B = `{"m", "v", "vmax", "ga"}`, each the base64 of the buffer's little-endian values in the network's dtype (`""` for a buffer the optimizer has not used) |
//! | `python` | optional: a JSON object the Python layer keeps there (fit's schedule), opaque here |
//!
//! Other metadata keys are ignored. Floats in the JSON are written shortest-round-trip and read
//! back to the same bits, so a loaded training run continues bit for bit.
//!
//! Reading checks everything before it builds anything, and never allocates from a size it has
//! not checked against the bytes it was given: the header length against the file's length
//! first, then every tensor's shape, dtype and offsets against the data, then the architecture
//! against the tensors, then the values (finite). Whatever is wrong comes back as
//! `Error::Format` saying what and where; nothing here panics on any input.
//! Memory: the file itself, plus at most a small multiple of its header and its tensors.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use safetensors::tensor::{Dtype, Metadata, SafeTensorError, SafeTensors, View};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::error::{value_error, Error, Result};
use crate::float::{first_non_finite, Real};
use crate::layer::Layer;
use crate::loss::Loss;
use crate::network::NeuralNetwork;
use crate::optimizer::{OptimizerConfig, TensorState};
use crate::rng::SplitMix64;
use crate::training::TrainingState;

/// The `format` metadata value of every ferrinet file.
pub const FORMAT_NAME: &str = "ferrinet";
/// The `format_version` this code writes and the only one it reads.
pub const FORMAT_VERSION: u32 = 1;
/// The largest safetensors header (the crate's limit, and so PyTorch's).
pub const MAX_HEADER_BYTES: usize = 100_000_000;
/// The deepest network a file may hold (two tensors per layer).
pub const MAX_LAYERS: usize = 10_000;
/// `n_threads` above this is refused (a hostile file must not ask for a million threads); a
/// file asking for more than this machine's `max_threads()` loads with that many.
pub const MAX_THREADS: usize = crate::team::THREADS_CAP;
/// The largest `python` metadata value (fit keeps a few hundred bytes there).
pub const MAX_PYTHON_BYTES: usize = 1 << 20;
/// Metadata entries accepted in a header (ferrinet writes at most 6).
const MAX_METADATA_ENTRIES: usize = 256;
const MAX_TENSORS: usize = 2 * MAX_LAYERS;
/// Bytes before the header: its length, a little-endian u64.
const N_LEN: usize = 8;
/// The crc in the header before it is known: it has the length of every crc written.
const CRC_PLACEHOLDER: &str = "00000000";

/// Everything a ferrinet file holds.
#[derive(Debug)]
pub struct ModelFile<T = f64> {
    pub network: NeuralNetwork<T>,
    /// The seed the initial weights were drawn with, when the writer knew it.
    pub seed: Option<u64>,
    /// The training run (optimizer, its moments, learning rate, generator, counters).
    pub training: Option<TrainingState<T>>,
    /// The `python` metadata: a JSON object, opaque to the core.
    pub python: Option<String>,
}

impl<T: Real> Clone for ModelFile<T> {
    fn clone(&self) -> Self {
        ModelFile {
            network: self.network.clone(),
            seed: self.seed,
            training: self.training.clone(),
            python: self.python.clone(),
        }
    }
}

/// A file read without knowing its dtype in advance.
#[derive(Debug, Clone)]
pub enum LoadedModel {
    F32(ModelFile<f32>),
    F64(ModelFile<f64>),
}

impl<T: Real> NeuralNetwork<T> {
    /// The network (architecture and weights, no training run and no seed) as a safetensors
    /// file; see the module documentation for the layout. Deterministic: the same network
    /// gives the same bytes.
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        write_model(self, None, None, None)
    }

    /// The network of a ferrinet file of this network's dtype (any training run in the file
    /// is dropped; `ModelFile::read` keeps it). Everything is checked: `Error::Format`.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self> {
        Ok(ModelFile::<T>::read(bytes)?.network)
    }
}

impl<T: Real> ModelFile<T> {
    /// The file's bytes (see `write_model`).
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        write_model(
            &self.network,
            self.seed,
            self.training.as_ref(),
            self.python.as_deref(),
        )
    }

    /// Reads a file whose dtype must be T's (`read_model` reads either).
    pub fn read(bytes: &[u8]) -> Result<Self> {
        let stop = &mut || false;
        let parsed = parse(bytes, stop)?;
        if parsed.arch.dtype != T::NAME {
            return Err(format_error(format!(
                "the file holds a {} network, not {}",
                parsed.arch.dtype,
                T::NAME
            )));
        }
        build(&parsed, stop)
    }
}

/// Reads a ferrinet file of either dtype, checking everything (see the module documentation).
pub fn read_model(bytes: &[u8]) -> Result<LoadedModel> {
    read_model_until(bytes, &mut || false)
}

/// `read_model`, calling `stop` between chunks of the tensor data (`STOP_EVERY` values, as
/// their CRC is checked and as they are decoded): when it returns true the read ends with
/// `Error::Interrupted`, and nothing was built.
pub fn read_model_until(bytes: &[u8], stop: &mut dyn FnMut() -> bool) -> Result<LoadedModel> {
    let parsed = parse(bytes, stop)?;
    if parsed.arch.dtype == "float32" {
        Ok(LoadedModel::F32(build(&parsed, stop)?))
    } else {
        Ok(LoadedModel::F64(build(&parsed, stop)?))
    }
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// The metadata JSON `architecture`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Architecture {
    sizes: Vec<usize>,
    activations: Vec<String>,
    loss: String,
    dtype: String,
    seed: Option<u64>,
    /// The count set on the network; `null` for one that follows the loading process's
    /// default (`default_threads`).
    n_threads: Option<usize>,
}

/// The metadata JSON `training`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainingJson<'a> {
    optimizer: OptimizerConfig,
    learning_rate: f64,
    steps: u64,
    epochs: u64,
    seed: u64,
    rng_state: u64,
    #[serde(borrow)]
    moments: Vec<LayerMoments<'a>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayerMoments<'a> {
    #[serde(borrow)]
    weight: Buffers<'a>,
    #[serde(borrow)]
    bias: Buffers<'a>,
}

/// One tensor's optimizer buffers, base64 ("" = not used yet).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Buffers<'a> {
    #[serde(borrow)]
    m: Cow<'a, str>,
    #[serde(borrow)]
    v: Cow<'a, str>,
    #[serde(borrow)]
    vmax: Cow<'a, str>,
    #[serde(borrow)]
    ga: Cow<'a, str>,
}

/// A weight matrix or bias vector handed to the safetensors writer for the header only: its
/// data are empty here, and `write_model_until` appends them itself, in chunks, so that a
/// large network's write can stop between two (and no tensor is copied twice).
struct TensorRef<'a, T> {
    shape: Vec<usize>,
    values: &'a [T],
}

impl<T: Real> View for TensorRef<'_, T> {
    fn dtype(&self) -> Dtype {
        dtype_of::<T>()
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&[])
    }

    fn data_len(&self) -> usize {
        std::mem::size_of_val(self.values)
    }
}

/// Values between two calls of a `stop` callback while a file is written or read (1-4 ms of
/// work each): often enough to look for Ctrl-C every 20 ms on a busy machine.
const STOP_EVERY: usize = 1 << 19;

/// Makes a rename inside `directory` durable: opens the directory, fsyncs it and closes it, in
/// one call (the descriptor lives only inside it; a caller that held it between calls could
/// lose it to an exception raised in between). POSIX; an error where directories cannot be
/// opened or synced.
pub fn sync_directory(directory: &std::path::Path) -> std::io::Result<()> {
    std::fs::File::open(directory)?.sync_all()
}

/// The tensor names of layer l: `2l.weight`, `2l.bias` (nn.Sequential's module indices).
pub fn tensor_names(layer: usize) -> (String, String) {
    (
        format!("{}.weight", 2 * layer),
        format!("{}.bias", 2 * layer),
    )
}

/// A ferrinet file: `net`'s architecture and weights, the seed of its initial weights (None:
/// unknown), its training run if any, and the Python layer's JSON object if any. Deterministic:
/// the same arguments give the same bytes.
///
/// Refused with `Error::Value`: more than `MAX_LAYERS` layers or `MAX_THREADS` threads, a
/// training state that belongs to another network or whose moments do not fit in a safetensors
/// header (100 MB, about 75 MB of moments), and a `python` value that is not a JSON object of at
/// most `MAX_PYTHON_BYTES`.
pub fn write_model<T: Real>(
    net: &NeuralNetwork<T>,
    seed: Option<u64>,
    training: Option<&TrainingState<T>>,
    python: Option<&str>,
) -> Result<Vec<u8>> {
    write_model_until(net, seed, training, python, &mut || false)
}

/// `write_model`, calling `stop` between chunks of the tensor data (`STOP_EVERY` values):
/// when it returns true the write ends with `Error::Interrupted` (nothing is changed; the
/// bytes so far are dropped).
pub fn write_model_until<T: Real>(
    net: &NeuralNetwork<T>,
    seed: Option<u64>,
    training: Option<&TrainingState<T>>,
    python: Option<&str>,
    stop: &mut dyn FnMut() -> bool,
) -> Result<Vec<u8>> {
    let file = model_file(net, seed, training, python)?;
    let mut bytes = vec![0; file.size()];
    file.write_into(&mut bytes, stop)?;
    Ok(bytes)
}

/// A ferrinet file laid out but not written yet (`model_file`): its header, with the CRC's
/// placeholder, and its tensors in the order of their offsets. `write_into` writes it into a
/// buffer of `size()` bytes that the caller provides (the binding: a Python `bytes` object,
/// so that the file is not copied once more while Python waits).
pub struct FileWriter<'a, T> {
    /// The length and the header, `N_LEN + n` bytes.
    header: Vec<u8>,
    n: usize,
    meta: BTreeMap<String, String>,
    tensors: Vec<&'a [T]>,
    size: usize,
}

/// `net`'s file, laid out (see `write_model` for what is refused).
pub fn model_file<'a, T: Real>(
    net: &'a NeuralNetwork<T>,
    seed: Option<u64>,
    training: Option<&TrainingState<T>>,
    python: Option<&str>,
) -> Result<FileWriter<'a, T>> {
    let layers = net.layers();
    let meta = file_metadata(net, seed, training, python)?;
    let mut tensors = Vec::with_capacity(2 * layers.len());
    let mut values: BTreeMap<String, &[T]> = BTreeMap::new();
    for (l, layer) in layers.iter().enumerate() {
        let (w_name, b_name) = tensor_names(l);
        let (n_in, n_out) = (layer.n_inputs(), layer.n_outputs());
        values.insert(w_name.clone(), layer.weights());
        values.insert(b_name.clone(), layer.biases());
        let (weights, biases) = (layer.weights(), layer.biases());
        tensors.push((
            w_name,
            TensorRef {
                shape: vec![n_out, n_in],
                values: weights,
            },
        ));
        tensors.push((
            b_name,
            TensorRef {
                shape: vec![n_out],
                values: biases,
            },
        ));
    }
    let header = safetensors::serialize(tensors, Some(meta.clone().into_iter().collect()))
        .map_err(|e| match e {
            SafeTensorError::HeaderTooLarge => Error::Value(format!(
                "the file's header (the metadata, with the optimizer moments) would be larger \
                 than the {MAX_HEADER_BYTES} bytes a safetensors header may hold; save without \
                 the training run"
            )),
            other => Error::Value(format!("writing the safetensors data failed: {other}")),
        })?;
    let n = header_length(&header).ok_or_else(|| internal("the writer's header length"))?;
    if header.len() != N_LEN + n {
        return Err(internal("the end of the header"));
    }
    // The tensors in the order of the header's offsets (the crate's), one after the other.
    let mut placed = scan_header(&header[N_LEN..])
        .map_err(|_| internal("the header"))?
        .into_iter()
        .map(|e| Ok((e.start, e.end, *values.get(&e.name).ok_or(())?)))
        .collect::<std::result::Result<Vec<_>, ()>>()
        .map_err(|_| internal("a tensor's name"))?;
    placed.sort_by_key(|&(start, _, _)| start);
    let mut size = 0;
    for &(start, end, tensor) in &placed {
        if start != size as u64 || end - start != std::mem::size_of_val(tensor) as u64 {
            return Err(internal("a tensor's offsets"));
        }
        size += std::mem::size_of_val(tensor);
    }
    Ok(FileWriter {
        size: N_LEN + n + size,
        header,
        n,
        meta,
        tensors: placed.into_iter().map(|(_, _, t)| t).collect(),
    })
}

impl<T: Real> FileWriter<'_, T> {
    /// The file's length in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Writes the file into `out` (`size()` bytes): the header, then the data `STOP_EVERY`
    /// values at a time with a call of `stop` before each (true: `Error::Interrupted`, `out`
    /// left half written), then the data's CRC into the header.
    pub fn write_into(&self, out: &mut [u8], stop: &mut dyn FnMut() -> bool) -> Result<()> {
        if out.len() != self.size {
            return Err(internal("the length of the buffer"));
        }
        let (head, mut data) = out.split_at_mut(self.header.len());
        head.copy_from_slice(&self.header);
        let mut crc = crc32fast::Hasher::new();
        for tensor in &self.tensors {
            for chunk in tensor.chunks(STOP_EVERY) {
                if stop() {
                    return Err(Error::Interrupted);
                }
                let (here, rest) =
                    std::mem::take(&mut data).split_at_mut(std::mem::size_of_val(chunk));
                write_le_bytes(here, chunk);
                crc.update(here);
                data = rest;
            }
        }
        let mut with_crc = self.meta.clone();
        with_crc.insert("data_crc32".to_string(), format!("{:08x}", crc.finalize()));
        canonical_metadata(out, self.n, &self.meta, &with_crc)
    }
}

/// The metadata of `net`'s file, with the CRC's placeholder (see `write_model` for what is
/// refused).
fn file_metadata<T: Real>(
    net: &NeuralNetwork<T>,
    seed: Option<u64>,
    training: Option<&TrainingState<T>>,
    python: Option<&str>,
) -> Result<BTreeMap<String, String>> {
    let layers = net.layers();
    if layers.len() > MAX_LAYERS {
        return value_error!(
            "a ferrinet file holds at most {MAX_LAYERS} layers, this network has {}",
            layers.len()
        );
    }
    if net.n_threads_setting().unwrap_or(0) > MAX_THREADS {
        return value_error!(
            "a ferrinet file records at most {MAX_THREADS} threads, this network uses {}; set \
             n_threads lower before saving",
            net.n_threads()
        );
    }
    let architecture = Architecture {
        sizes: net.sizes(),
        activations: layers
            .iter()
            .map(|l| l.activation().name().to_string())
            .collect(),
        loss: net.loss().name().to_string(),
        dtype: T::NAME.to_string(),
        seed,
        n_threads: net.n_threads_setting(),
    };
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), FORMAT_NAME.to_string());
    meta.insert("format_version".to_string(), FORMAT_VERSION.to_string());
    meta.insert("architecture".to_string(), to_json(&architecture)?);
    meta.insert("data_crc32".to_string(), CRC_PLACEHOLDER.to_string());
    if let Some(state) = training {
        meta.insert("training".to_string(), training_json(state, layers)?);
    }
    if let Some(text) = python {
        check_python(text).map_err(|e| Error::Value(format!("the python metadata {e}")))?;
        meta.insert("python".to_string(), text.to_string());
    }

    Ok(meta)
}

/// The safetensors crate takes the metadata as a std `HashMap`, whose order changes from one
/// map to the next, so two writes of one network would differ. This rewrites the metadata
/// object the crate wrote (`{"__metadata__":{...},...`, always first) in sorted key order,
/// with the crc filled in: the same entries and lengths, so the header keeps its length and
/// every offset stays valid. The object written is checked to be exactly `written` first.
fn canonical_metadata(
    bytes: &mut [u8],
    n: usize,
    written: &BTreeMap<String, String>,
    sorted: &BTreeMap<String, String>,
) -> Result<()> {
    const PREFIX: &[u8] = b"{\"__metadata__\":";
    let old = to_json(written)?;
    let new = to_json(sorted)?;
    let (start, end) = (N_LEN + PREFIX.len(), N_LEN + PREFIX.len() + old.len());
    if new.len() != old.len() || end >= N_LEN + n || !bytes[N_LEN..].starts_with(PREFIX) {
        return Err(internal("the metadata's place in the header"));
    }
    let found: BTreeMap<String, String> =
        serde_json::from_slice(&bytes[start..end]).map_err(|_| internal("the metadata"))?;
    if found != *written || !matches!(bytes[end], b',' | b'}') {
        return Err(internal("the metadata's content"));
    }
    bytes[start..end].copy_from_slice(new.as_bytes());
    Ok(())
}

fn internal(what: &str) -> Error {
    Error::Value(format!(
        "internal error while writing a ferrinet file: {what} is not where the safetensors \
         crate was expected to put it (a change in the crate?); nothing was written"
    ))
}

fn to_json<S: Serialize>(value: &S) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| Error::Value(format!("could not write the metadata JSON: {e}")))
}

/// The `training` metadata: the optimizer, counters, generator and every moment buffer.
fn training_json<T: Real>(state: &TrainingState<T>, layers: &[Layer<T>]) -> Result<String> {
    let tensors = state.tensor_states();
    if tensors.len() != layers.len() {
        return value_error!(
            "the training state has {} layers, the network {}",
            tensors.len(),
            layers.len()
        );
    }
    // Refuse a state that cannot fit in a header before encoding it.
    let encoded: usize = tensors
        .iter()
        .flat_map(|(w, b)| w.buffers().into_iter().chain(b.buffers()))
        .map(|(_, buf)| base64_len(std::mem::size_of_val(buf)))
        .sum();
    if encoded > MAX_HEADER_BYTES {
        return value_error!(
            "the optimizer's moments take {encoded} bytes once encoded, more than the \
             {MAX_HEADER_BYTES} bytes a safetensors header may hold; save without the training \
             run (or reset it first)"
        );
    }
    let encode = |s: &TensorState<T>| {
        let [m, v, vmax, ga] = s.buffers().map(|(_, buf)| Cow::Owned(encode_buffer(buf)));
        Buffers { m, v, vmax, ga }
    };
    let json = TrainingJson {
        optimizer: state.optimizer().config(),
        learning_rate: state.learning_rate(),
        steps: state.steps(),
        epochs: state.epochs() as u64,
        seed: state.seed(),
        rng_state: state.rng().state(),
        moments: tensors
            .iter()
            .map(|(w, b)| LayerMoments {
                weight: encode(w),
                bias: encode(b),
            })
            .collect(),
    };
    to_json(&json)
}

fn encode_buffer<T: Real>(values: &[T]) -> String {
    if values.is_empty() {
        String::new()
    } else {
        BASE64.encode(le_bytes(values))
    }
}

/// Characters of padded base64 for `bytes` bytes.
fn base64_len(bytes: usize) -> usize {
    bytes.div_ceil(3) * 4
}

fn dtype_of<T: Real>() -> Dtype {
    if is_f32::<T>() {
        Dtype::F32
    } else {
        Dtype::F64
    }
}

fn is_f32<T: Real>() -> bool {
    T::NAME == "float32"
}

/// Little-endian bytes of the values (f32 values are exact through f64).
fn le_bytes<T: Real>(values: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(std::mem::size_of_val(values));
    push_le_bytes(&mut out, values);
    out
}

/// The little-endian bytes of the values into `out` (exactly their size).
fn write_le_bytes<T: Real>(out: &mut [u8], values: &[T]) {
    if is_f32::<T>() {
        for (o, v) in out.chunks_exact_mut(4).zip(values) {
            o.copy_from_slice(&(v.to_f64() as f32).to_le_bytes());
        }
    } else {
        for (o, v) in out.chunks_exact_mut(8).zip(values) {
            o.copy_from_slice(&v.to_f64().to_le_bytes());
        }
    }
}

/// Appends the little-endian bytes of the values to `out`.
fn push_le_bytes<T: Real>(out: &mut Vec<u8>, values: &[T]) {
    out.reserve(std::mem::size_of_val(values));
    if is_f32::<T>() {
        for v in values {
            out.extend_from_slice(&(v.to_f64() as f32).to_le_bytes());
        }
    } else {
        for v in values {
            out.extend_from_slice(&v.to_f64().to_le_bytes());
        }
    }
}

/// `python` metadata: a JSON object of at most `MAX_PYTHON_BYTES`.
fn check_python(text: &str) -> std::result::Result<(), String> {
    if text.len() > MAX_PYTHON_BYTES {
        return Err(format!(
            "is {} bytes, more than the {MAX_PYTHON_BYTES} allowed",
            text.len()
        ));
    }
    if !text.trim_start().starts_with('{') {
        return Err("must be a JSON object".to_string());
    }
    serde_json::from_str::<IgnoredAny>(text).map_err(|e| format!("is not valid JSON: {e}"))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

fn format_error(msg: String) -> Error {
    Error::Format(msg)
}

/// A file checked up to the point of building the network: header, tensors' places and the
/// architecture. The borrowed data are the file's.
struct Parsed<'a> {
    arch: CheckedArchitecture,
    entries: Vec<Entry>,
    data: &'a [u8],
    metadata: Metadata,
}

impl Parsed<'_> {
    fn meta(&self, key: &str) -> Option<&str> {
        self.metadata
            .metadata()
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }
}

struct CheckedArchitecture {
    sizes: Vec<usize>,
    activations: Vec<Activation>,
    loss: Loss,
    dtype: &'static str,
    seed: Option<u64>,
    n_threads: Option<usize>,
}

/// A tensor as the header lists it (checked: dtype F32/F64, rank <= 2, offsets in the data).
#[derive(Debug)]
struct Entry {
    name: String,
    dtype: Dtype,
    shape: Vec<u64>,
    start: u64,
    end: u64,
}

fn header_length(bytes: &[u8]) -> Option<usize> {
    let head: [u8; N_LEN] = bytes.get(..N_LEN)?.try_into().ok()?;
    usize::try_from(u64::from_le_bytes(head)).ok()
}

/// The header length, checked against the bytes there are before anything is allocated.
fn check_header_length(bytes: &[u8]) -> Result<usize> {
    let Some(head) = bytes.get(..N_LEN) else {
        return Err(format_error(format!(
            "not a ferrinet file: {} bytes is too short for a safetensors file, which starts \
             with its 8-byte header length (the file is empty or truncated)",
            bytes.len()
        )));
    };
    let n = u64::from_le_bytes(head.try_into().unwrap_or([0xff; N_LEN]));
    let rest = bytes.len() - N_LEN;
    if n > rest as u64 {
        return Err(format_error(format!(
            "the safetensors header length says {n} bytes, but only {rest} bytes follow it: the \
             file is truncated, or not a safetensors file"
        )));
    }
    if n > MAX_HEADER_BYTES as u64 {
        return Err(format_error(format!(
            "the safetensors header is {n} bytes, more than the {MAX_HEADER_BYTES} bytes the \
             format allows"
        )));
    }
    if n < 2 {
        return Err(format_error(format!(
            "the safetensors header is {n} bytes: too short for its JSON object"
        )));
    }
    Ok(n as usize)
}

/// Checks the file up to building the network.
fn parse<'b>(bytes: &'b [u8], stop: &mut dyn FnMut() -> bool) -> Result<Parsed<'b>> {
    let n = check_header_length(bytes)?;
    let header = &bytes[N_LEN..N_LEN + n];
    let data = &bytes[N_LEN + n..];
    let mut entries = scan_header(header)?;
    check_offsets(&mut entries, data.len())?;
    // The crate's own reading, now that the header is known to be sane: the metadata map.
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(crate_error)?;
    let get =
        |key: &str| -> Option<&str> { metadata.metadata().as_ref()?.get(key).map(String::as_str) };

    match get("format") {
        Some(FORMAT_NAME) => {}
        Some(other) => {
            return Err(format_error(format!(
                "not a ferrinet file: its metadata says format {other:?}, not {FORMAT_NAME:?}"
            )))
        }
        None => {
            return Err(format_error(format!(
                "not a ferrinet file: a safetensors file without the metadata \
                 format={FORMAT_NAME:?} (a plain PyTorch state dict, say); ferrinet reads the \
                 files it writes"
            )))
        }
    }
    let version = get("format_version")
        .ok_or_else(|| format_error("the metadata has no format_version".to_string()))?;
    match version.parse::<u64>() {
        Ok(v) if v == FORMAT_VERSION as u64 => {}
        Ok(v) => {
            return Err(format_error(format!(
                "format version {v} is not supported: this ferrinet reads version \
                 {FORMAT_VERSION} (a newer ferrinet wrote the file?)"
            )))
        }
        Err(_) => {
            return Err(format_error(format!(
                "format_version must be a whole number, got {:?}",
                brief_str(version)
            )))
        }
    }
    let crc_text = get("data_crc32")
        .ok_or_else(|| format_error("the metadata has no data_crc32".to_string()))?;
    let crc = (crc_text.len() == 8 && crc_text.bytes().all(|c| c.is_ascii_hexdigit()))
        .then(|| u32::from_str_radix(crc_text, 16).ok())
        .flatten()
        .ok_or_else(|| {
            format_error(format!(
                "data_crc32 must be 8 hex digits, got {:?}",
                brief_str(crc_text)
            ))
        })?;
    let mut hasher = crc32fast::Hasher::new();
    for chunk in data.chunks(8 * STOP_EVERY) {
        if stop() {
            return Err(Error::Interrupted);
        }
        hasher.update(chunk);
    }
    let actual = hasher.finalize();
    if actual != crc {
        return Err(format_error(format!(
            "the tensor data are corrupted: their CRC-32 is {actual:08x}, the file says {crc:08x}"
        )));
    }
    let arch = parse_architecture(
        get("architecture")
            .ok_or_else(|| format_error("the metadata has no architecture".to_string()))?,
    )?;
    if let Some(text) = get("python") {
        check_python(text).map_err(|e| format_error(format!("the python metadata {e}")))?;
    }
    Ok(Parsed {
        arch,
        entries,
        data,
        metadata,
    })
}

fn parse_architecture(text: &str) -> Result<CheckedArchitecture> {
    let bad = |msg: String| format_error(format!("metadata \"architecture\": {msg}"));
    let a: Architecture = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    if a.sizes.len() < 2 {
        return Err(bad(format!(
            "sizes must list at least the input and output sizes, got {:?}",
            a.sizes
        )));
    }
    if a.sizes.len() - 1 > MAX_LAYERS {
        return Err(bad(format!(
            "{} layers, more than the {MAX_LAYERS} a file may hold",
            a.sizes.len() - 1
        )));
    }
    if let Some(i) = a.sizes.iter().position(|&s| s == 0) {
        return Err(bad(format!(
            "every size must be at least 1, got {} (size {i} is 0)",
            brief(&a.sizes)
        )));
    }
    if a.activations.len() != a.sizes.len() - 1 {
        return Err(bad(format!(
            "{} activations for {} layers: one per layer is needed, the output layer's last",
            a.activations.len(),
            a.sizes.len() - 1
        )));
    }
    let activations = a
        .activations
        .iter()
        .map(|name| Activation::from_name(name))
        .collect::<Result<Vec<_>>>()
        .map_err(|e| bad(e.to_string()))?;
    let loss = Loss::from_name(&a.loss).map_err(|e| bad(e.to_string()))?;
    let (output, hidden) = activations.split_last().expect("at least one layer");
    if let Some(l) = hidden.iter().position(|&a| a == Activation::Softmax) {
        return Err(bad(format!(
            "softmax is only for the output layer; layer {l} uses it"
        )));
    }
    loss.check_output_activation(*output)
        .map_err(|e| bad(e.to_string()))?;
    let dtype = match a.dtype.as_str() {
        "float64" => "float64",
        "float32" => "float32",
        other => {
            return Err(bad(format!(
                "dtype must be \"float64\" or \"float32\", got {:?}",
                brief_str(other)
            )))
        }
    };
    if let Some(n) = a.n_threads.filter(|n| !(1..=MAX_THREADS).contains(n)) {
        return Err(bad(format!(
            "n_threads must be in [1, {MAX_THREADS}] (or null: the loader's default), got {n}"
        )));
    }
    Ok(CheckedArchitecture {
        sizes: a.sizes,
        activations,
        loss,
        dtype,
        seed: a.seed,
        n_threads: a.n_threads,
    })
}

/// Each layer's (weights, biases) entry of a parsed file, checked: no tensor but those of the
/// architecture, each with its dtype and shape.
fn locate_tensors<'p, T: Real>(p: &'p Parsed<'_>) -> Result<Vec<(&'p Entry, &'p Entry)>> {
    let sizes = &p.arch.sizes;
    let n_layers = sizes.len() - 1;
    let dtype = dtype_of::<T>();
    let expected: HashSet<String> = (0..n_layers)
        .flat_map(|l| {
            let (w, b) = tensor_names(l);
            [w, b]
        })
        .collect();
    let listing = || {
        let (w, b) = tensor_names(n_layers - 1);
        if n_layers <= 3 {
            (0..n_layers)
                .map(|l| {
                    let (w, b) = tensor_names(l);
                    format!("{w}, {b}")
                })
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            format!("0.weight, 0.bias, ..., {w}, {b}")
        }
    };
    if let Some(extra) = p.entries.iter().find(|e| !expected.contains(&e.name)) {
        return Err(format_error(format!(
            "unexpected tensor {:?}: a file for sizes {} holds exactly {}",
            brief_str(&extra.name),
            brief(sizes),
            listing()
        )));
    }
    let by_name: HashMap<&str, &Entry> = p.entries.iter().map(|e| (e.name.as_str(), e)).collect();
    let mut places = Vec::with_capacity(n_layers);
    for l in 0..n_layers {
        let (n_in, n_out) = (sizes[l], sizes[l + 1]);
        let (w_name, b_name) = tensor_names(l);
        let find = |name: &str, shape: &[usize]| -> Result<&Entry> {
            let e = by_name.get(name).ok_or_else(|| {
                format_error(format!(
                    "missing tensor {name:?}: a file for sizes {} holds {}",
                    brief(sizes),
                    listing()
                ))
            })?;
            if e.dtype != dtype {
                return Err(format_error(format!(
                    "tensor {name:?} is {:?} but the architecture says {} ({dtype:?})",
                    e.dtype,
                    T::NAME
                )));
            }
            if e.shape.len() != shape.len()
                || e.shape.iter().zip(shape).any(|(&a, &b)| a != b as u64)
            {
                let what = if shape.len() == 2 {
                    format!("layer {l} maps {n_in} inputs to {n_out} outputs")
                } else {
                    format!("layer {l} has {n_out} outputs")
                };
                return Err(format_error(format!(
                    "tensor {name:?} has shape {} but the sizes {} need {}: {what}",
                    shape_str(&e.shape),
                    brief(sizes),
                    shape_str(&shape.iter().map(|&d| d as u64).collect::<Vec<_>>())
                )));
            }
            Ok(e)
        };
        let w = find(&w_name, &[n_out, n_in])?;
        let b = find(&b_name, &[n_out])?;
        places.push((w, b));
    }
    Ok(places)
}

/// Builds the network (and training run) of a parsed file, all checks first.
fn build<T: Real>(p: &Parsed<'_>, stop: &mut dyn FnMut() -> bool) -> Result<ModelFile<T>> {
    // A file that records no count takes the default; a bad FERRINET_NUM_THREADS is the
    // environment's fault, not the file's: its ValueError comes first, unchanged.
    if p.arch.n_threads.is_none() {
        crate::team::default_threads()?;
    }
    let sizes = &p.arch.sizes;
    let n_layers = sizes.len() - 1;
    let places = locate_tensors::<T>(p)?;
    // Every tensor is where it should be and of the right size: read the values.
    let mut layers = Vec::with_capacity(n_layers);
    for (l, (w, b)) in places.into_iter().enumerate() {
        let (n_in, n_out) = (sizes[l], sizes[l + 1]);
        let weights = decode_tensor::<T>(w, p.data, n_in, stop)?;
        let biases = decode_tensor::<T>(b, p.data, 1, stop)?;
        let layer = Layer::from_parts(n_in, n_out, weights, biases, p.arch.activations[l])
            .map_err(|e| format_error(format!("layer {l}: {e}")))?;
        layers.push(layer);
    }
    let mut network = NeuralNetwork::from_layers(layers, p.arch.loss)
        .map_err(|e| format_error(format!("the layers do not form a network: {e}")))?;
    // A checkpoint from a larger machine loads here with this machine's most; a network saved
    // with the default (null) follows this process's default (`from_layers`).
    if let Some(n) = p.arch.n_threads {
        network
            .set_n_threads(n.min(crate::team::max_threads()))
            .map_err(|e| format_error(e.to_string()))?;
    }
    let training = match p.meta("training") {
        Some(text) => Some(parse_training(text, network.layers())?),
        None => None,
    };
    Ok(ModelFile {
        network,
        seed: p.arch.seed,
        training,
        python: p.meta("python").map(str::to_string),
    })
}

/// The values of a checked tensor, refusing NaN and infinities (with their position).
fn decode_tensor<T: Real>(
    e: &Entry,
    data: &[u8],
    cols: usize,
    stop: &mut dyn FnMut() -> bool,
) -> Result<Vec<T>> {
    // start <= end <= data.len() was checked by check_offsets.
    let bytes = &data[e.start as usize..e.end as usize];
    let values = decode_values_until::<T>(bytes, stop)?;
    if let Some(k) = first_non_finite(&values) {
        let at = if e.shape.len() == 2 {
            format!("[{}, {}]", k / cols, k % cols)
        } else {
            format!("[{k}]")
        };
        return Err(format_error(format!(
            "tensor {:?} holds {} at {at}: weights and biases must be finite",
            e.name, values[k]
        )));
    }
    Ok(values)
}

/// `decode_values` in chunks of `STOP_EVERY` values, calling `stop` before each.
fn decode_values_until<T: Real>(bytes: &[u8], stop: &mut dyn FnMut() -> bool) -> Result<Vec<T>> {
    let size = std::mem::size_of::<T>();
    let mut out = Vec::new();
    out.try_reserve_exact(bytes.len() / size).map_err(|_| {
        Error::Memory(format!(
            "cannot allocate {} bytes for a tensor of the file",
            bytes.len()
        ))
    })?;
    for chunk in bytes.chunks(STOP_EVERY * size) {
        if stop() {
            return Err(Error::Interrupted);
        }
        push_values(&mut out, chunk);
    }
    Ok(out)
}

/// Little-endian values of T (the length is a multiple of T's size: checked by the caller).
fn decode_values<T: Real>(bytes: &[u8]) -> Result<Vec<T>> {
    decode_values_until(bytes, &mut || false)
}

/// Appends the little-endian values of T in `bytes` to `out`.
fn push_values<T: Real>(out: &mut Vec<T>, bytes: &[u8]) {
    if is_f32::<T>() {
        for c in bytes.chunks_exact(4) {
            out.push(T::from_f64(
                f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64
            ));
        }
    } else {
        for c in bytes.chunks_exact(8) {
            let v = f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            out.push(T::from_f64(v));
        }
    }
}

/// The `training` metadata -> the training state of `layers`.
fn parse_training<T: Real>(text: &str, layers: &[Layer<T>]) -> Result<TrainingState<T>> {
    let bad = |msg: String| format_error(format!("metadata \"training\": {msg}"));
    let json: TrainingJson = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let optimizer = json
        .optimizer
        .to_optimizer()
        .map_err(|e| bad(format!("optimizer: {e}")))?;
    let lr = json.learning_rate;
    if !(lr.is_finite() && lr >= 0.0) {
        return Err(bad(format!(
            "learning_rate must be a finite number >= 0, got {lr}"
        )));
    }
    let epochs = usize::try_from(json.epochs)
        .map_err(|_| bad(format!("epochs {} is out of range", json.epochs)))?;
    if json.moments.len() != layers.len() {
        return Err(bad(format!(
            "moments for {} layers, the network has {}",
            json.moments.len(),
            layers.len()
        )));
    }
    let mut tensors = Vec::with_capacity(layers.len());
    for (l, (layer, m)) in layers.iter().zip(&json.moments).enumerate() {
        let w = decode_state(&m.weight, layer.weights().len(), l, "weight")?;
        let b = decode_state(&m.bias, layer.biases().len(), l, "bias")?;
        tensors.push((w, b));
    }
    Ok(TrainingState {
        optimizer,
        learning_rate: lr,
        seed: json.seed,
        rng: SplitMix64::new(json.rng_state),
        steps: json.steps,
        epochs,
        tensors,
    })
}

fn decode_state<T: Real>(
    b: &Buffers<'_>,
    n: usize,
    layer: usize,
    which: &str,
) -> Result<TensorState<T>> {
    let buffer = |name: &str, text: &str| -> Result<Vec<T>> {
        let what = format!("metadata \"training\": moments[{layer}].{which}.{name}");
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let bytes = n * std::mem::size_of::<T>();
        let expected = base64_len(bytes);
        if text.len() != expected {
            return Err(format_error(format!(
                "{what} holds {} base64 characters; expected none or {expected} (the {n} values \
                 of that tensor)",
                text.len()
            )));
        }
        let raw = BASE64
            .decode(text)
            .map_err(|e| format_error(format!("{what} is not valid base64: {e}")))?;
        if raw.len() != bytes {
            return Err(format_error(format!(
                "{what} decodes to {} bytes; expected {bytes}",
                raw.len()
            )));
        }
        let values = decode_values::<T>(&raw)?;
        if let Some(k) = values.iter().position(|v| v.to_f64().is_nan()) {
            return Err(format_error(format!("{what} holds NaN at [{k}]")));
        }
        Ok(values)
    };
    Ok(TensorState {
        m: buffer("m", &b.m)?,
        v: buffer("v", &b.v)?,
        vmax: buffer("vmax", &b.vmax)?,
        ga: buffer("ga", &b.ga)?,
    })
}

fn crate_error(e: SafeTensorError) -> Error {
    format_error(match e {
        SafeTensorError::InvalidOffset(name) => format!(
            "the data offsets of tensor {:?} are wrong: the tensors must follow one another \
             from offset 0 without gaps or overlaps",
            brief_str(&name)
        ),
        SafeTensorError::InvalidHeaderDeserialization(e) => {
            format!("the safetensors header is not what the format specifies: {e}")
        }
        other => format!("not a valid safetensors file: {other}"),
    })
}

/// A short rendering of a list that may be long (a hostile file's).
fn brief<D: fmt::Debug>(items: &[D]) -> String {
    if items.len() <= 12 {
        format!("{items:?}")
    } else {
        let head: Vec<String> = items[..10].iter().map(|d| format!("{d:?}")).collect();
        format!("[{}, ... ({} in all)]", head.join(", "), items.len())
    }
}

/// A string from a file, cut short if long.
fn brief_str(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

fn shape_str(shape: &[u64]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// The header scan: a first pass over the JSON that bounds everything the crate's parser would
// allocate for (number of tensors, their ranks, metadata entries) and names what is wrong.
// ---------------------------------------------------------------------------------------------

fn scan_header(header: &[u8]) -> Result<Vec<Entry>> {
    let text = std::str::from_utf8(header).map_err(|e| {
        format_error(format!(
            "the safetensors header is not UTF-8 text ({e}): the file is corrupted or not a \
             safetensors file"
        ))
    })?;
    if !text.starts_with('{') {
        return Err(format_error(
            "the safetensors header is not a JSON object: the file is corrupted or not a \
             safetensors file"
                .to_string(),
        ));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let entries = de
        .deserialize_map(HeaderVisitor)
        .and_then(|entries| de.end().map(|()| entries))
        .map_err(|e| format_error(format!("bad safetensors header: {e}")))?;
    Ok(entries)
}

/// Tensor sizes against the data: every tensor inside it, of the size its shape and dtype
/// need, one after the other from 0 with no gap or overlap, the last ending at its end.
fn check_offsets(entries: &mut [Entry], data_len: usize) -> Result<()> {
    let data_len = data_len as u64;
    for e in entries.iter() {
        let elem = if e.dtype == Dtype::F32 { 4u64 } else { 8 };
        let need = e
            .shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .and_then(|count| count.checked_mul(elem));
        let name = brief_str(&e.name);
        if e.end < e.start {
            return Err(format_error(format!(
                "tensor {name:?} has data_offsets [{}, {}]: it ends before it starts",
                e.start, e.end
            )));
        }
        if e.end > data_len {
            return Err(format_error(format!(
                "tensor {name:?} ends at byte {} of the tensor data, but the file holds only {} \
                 bytes of data: the file is truncated, or its offsets are wrong",
                e.end, data_len
            )));
        }
        if need != Some(e.end - e.start) {
            return Err(format_error(format!(
                "tensor {name:?} of shape {} and dtype {:?} needs {} bytes, but its data_offsets \
                 [{}, {}] hold {}",
                shape_str(&e.shape),
                e.dtype,
                need.map_or("more than 2^64".to_string(), |b| b.to_string()),
                e.start,
                e.end,
                e.end - e.start
            )));
        }
    }
    entries.sort_by_key(|e| (e.start, e.end));
    let mut pos = 0u64;
    let mut previous: Option<&str> = None;
    for e in entries.iter() {
        if e.start < pos {
            return Err(format_error(format!(
                "tensor {:?} (data_offsets [{}, {}]) overlaps tensor {:?}, which ends at {pos}",
                brief_str(&e.name),
                e.start,
                e.end,
                brief_str(previous.unwrap_or("?"))
            )));
        }
        if e.start > pos {
            return Err(format_error(format!(
                "bytes {pos}..{} of the tensor data belong to no tensor (tensor {:?} starts at \
                 {}): the offsets are wrong",
                e.start,
                brief_str(&e.name),
                e.start
            )));
        }
        pos = e.end;
        previous = Some(&e.name);
    }
    if pos != data_len {
        return Err(format_error(format!(
            "the tensors hold {pos} bytes but {data_len} bytes follow the header: the file has \
             extra bytes at its end, or its offsets are wrong"
        )));
    }
    Ok(())
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = Vec<Entry>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object mapping tensor names to their dtype, shape and data_offsets")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Vec<Entry>, A::Error> {
        let mut entries: Vec<Entry> = Vec::new();
        let mut names: HashSet<String> = HashSet::new();
        let mut metadata_seen = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "__metadata__" {
                if std::mem::replace(&mut metadata_seen, true) {
                    return Err(de::Error::custom("\"__metadata__\" appears twice"));
                }
                map.next_value_seed(MetadataScan)?;
                continue;
            }
            if entries.len() == MAX_TENSORS {
                return Err(de::Error::custom(format!(
                    "more than {MAX_TENSORS} tensors: a ferrinet file holds two per layer, for at \
                     most {MAX_LAYERS} layers"
                )));
            }
            if names.contains(&key) {
                return Err(de::Error::custom(format!(
                    "tensor {:?} appears twice",
                    brief_str(&key)
                )));
            }
            let (dtype, shape, (start, end)) = map.next_value_seed(EntryScan { name: &key })?;
            names.insert(key.clone());
            entries.push(Entry {
                name: key,
                dtype,
                shape,
                start,
                end,
            });
        }
        Ok(entries)
    }
}

/// `__metadata__`: at most `MAX_METADATA_ENTRIES` string -> string entries.
struct MetadataScan;

impl<'de> DeserializeSeed<'de> for MetadataScan {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MetadataScan {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"__metadata__\" to be an object mapping names to strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        let mut count = 0;
        while let Some(key) = map.next_key::<String>()? {
            count += 1;
            if count > MAX_METADATA_ENTRIES {
                return Err(de::Error::custom(format!(
                    "\"__metadata__\" has more than {MAX_METADATA_ENTRIES} entries"
                )));
            }
            map.next_value_seed(StringScan { key: &key })?;
        }
        Ok(())
    }
}

/// A metadata value: any string.
struct StringScan<'k> {
    key: &'k str,
}

impl<'de> DeserializeSeed<'de> for StringScan<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for StringScan<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a string for metadata {:?} (safetensors metadata maps names to strings)",
            brief_str(self.key)
        )
    }

    fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<(), E> {
        Ok(())
    }
}

/// One tensor's `{"dtype", "shape", "data_offsets"}`.
struct EntryScan<'n> {
    name: &'n str,
}

type EntryParts = (Dtype, Vec<u64>, (u64, u64));

impl<'de> DeserializeSeed<'de> for EntryScan<'_> {
    type Value = EntryParts;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<EntryParts, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EntryScan<'_> {
    type Value = EntryParts;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tensor {:?} to be an object {{\"dtype\", \"shape\", \"data_offsets\"}}",
            brief_str(self.name)
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<EntryParts, A::Error> {
        let name = brief_str(self.name);
        let (mut dtype, mut shape, mut offsets) = (None, None, None);
        while let Some(field) = map.next_key::<String>()? {
            match field.as_str() {
                "dtype" => {
                    let d: String = map.next_value()?;
                    dtype = Some(match d.as_str() {
                        "F64" => Dtype::F64,
                        "F32" => Dtype::F32,
                        _ => {
                            return Err(de::Error::custom(format!(
                                "tensor {name:?} has dtype {:?}: ferrinet files hold F64 or F32 \
                                 tensors",
                                brief_str(&d)
                            )))
                        }
                    });
                }
                "shape" => shape = Some(map.next_value_seed(ShapeScan { name: &name })?),
                "data_offsets" => {
                    let pair = map.next_value_seed(OffsetsScan { name: &name })?;
                    offsets = Some(pair);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let missing = |field: &str| de::Error::custom(format!("tensor {name:?} has no {field:?}"));
        Ok((
            dtype.ok_or_else(|| missing("dtype"))?,
            shape.ok_or_else(|| missing("shape"))?,
            offsets.ok_or_else(|| missing("data_offsets"))?,
        ))
    }
}

/// A shape of rank <= 2 (ferrinet's tensors are matrices and vectors).
struct ShapeScan<'n> {
    name: &'n str,
}

impl<'de> DeserializeSeed<'de> for ShapeScan<'_> {
    type Value = Vec<u64>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Vec<u64>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ShapeScan<'_> {
    type Value = Vec<u64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tensor {:?}: a shape, a list of sizes", self.name)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Vec<u64>, A::Error> {
        let mut dims = Vec::with_capacity(2);
        while let Some(d) = seq.next_element::<u64>()? {
            if dims.len() == 2 {
                return Err(de::Error::custom(format!(
                    "tensor {:?} has more than 2 dimensions: ferrinet's tensors are weights \
                     (2-D) and biases (1-D)",
                    self.name
                )));
            }
            dims.push(d);
        }
        Ok(dims)
    }
}

/// `data_offsets`: exactly [start, end].
struct OffsetsScan<'n> {
    name: &'n str,
}

impl<'de> DeserializeSeed<'de> for OffsetsScan<'_> {
    type Value = (u64, u64);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(u64, u64), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for OffsetsScan<'_> {
    type Value = (u64, u64);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tensor {:?}: data_offsets [start, end]", self.name)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(u64, u64), A::Error> {
        let (mut found, mut count) = ([0u64; 2], 0usize);
        while let Some(v) = seq.next_element::<u64>()? {
            if count < 2 {
                found[count] = v;
            }
            count += 1;
        }
        match count {
            2 => Ok((found[0], found[1])),
            _ => Err(de::Error::custom(format!(
                "tensor {:?}: data_offsets must be [start, end], two offsets",
                self.name
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_len_matches_the_encoder() {
        for n in 0..20 {
            assert_eq!(base64_len(n), BASE64.encode(vec![7u8; n]).len());
        }
    }

    #[test]
    fn brief_cuts_long_lists_and_strings() {
        assert_eq!(brief(&[1, 2, 3]), "[1, 2, 3]");
        assert!(brief(&(0..100).collect::<Vec<_>>()).ends_with("(100 in all)]"));
        assert_eq!(brief_str(&"x".repeat(100)).len(), 63);
    }

    #[test]
    fn tensor_names_follow_nn_sequential() {
        assert_eq!(tensor_names(0), ("0.weight".into(), "0.bias".into()));
        assert_eq!(tensor_names(3), ("6.weight".into(), "6.bias".into()));
    }
}
