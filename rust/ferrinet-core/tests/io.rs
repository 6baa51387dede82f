//! Saving and loading (src/io.rs): round trips of every architecture in both dtypes, training
//! runs that continue bit for bit after a save, and one test per way a file can be wrong
//! (truncated, corrupted, hostile): each must be `Error::Format` with a message that says what,
//! never a panic, and never an allocation driven by a size the file declares (measured with a
//! counting allocator).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeMap;

use common::{int_in, random_case, HEADS, HIDDEN};
use ferrinet_core::{
    read_model, write_model, Activation, EpochOptions, EpsPlacement, Error, LoadedModel, Loss,
    MatRef, ModelFile, NeuralNetwork, Optimizer, Real, SplitMix64, Targets, TrainingState,
};
use ferrinet_core::{tensor_names, MAX_HEADER_BYTES, MAX_LAYERS};
use safetensors::{Dtype, View};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// A counting allocator: live and peak bytes of the current thread (tests run in parallel).
// ---------------------------------------------------------------------------------------------
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        System.dealloc(p, layout);
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = System.realloc(p, layout, new_size);
        if !q.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most bytes allocated at once (beyond what was live before) while `f` ran.
fn peak_bytes<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let result = f();
    let peak = PEAK.with(Cell::get) - base;
    (result, peak.max(0) as usize)
}

const MIB: usize = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Networks, training runs and files
// ---------------------------------------------------------------------------------------------
fn adam(amsgrad: bool, decoupled: bool) -> Optimizer {
    Optimizer::Adam {
        lr: 0.01,
        beta1: 0.9,
        beta2: 0.99,
        eps: 1e-8,
        weight_decay: if decoupled { 0.01 } else { 0.0 },
        amsgrad,
        decoupled,
        eps_placement: EpsPlacement::Pytorch,
    }
}

fn optimizers() -> Vec<Optimizer> {
    vec![
        Optimizer::sgd(0.05),
        Optimizer::Sgd {
            lr: 0.05,
            momentum: 0.9,
            dampening: 0.0,
            nesterov: true,
            weight_decay: 1e-3,
        },
        Optimizer::RmsProp {
            lr: 0.005,
            alpha: 0.9,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.5,
            centered: true,
        },
        adam(true, false),
        adam(false, true),
    ]
}

/// A classifier [3, 5, 4, 3] and 24 samples for it, in T.
fn classifier<T: Real>(seed: u64) -> (NeuralNetwork<T>, Vec<T>, Vec<usize>) {
    let net = NeuralNetwork::<T>::new(
        &[3, 5, 4, 3],
        &[Activation::Tanh, Activation::Relu],
        None,
        Loss::CrossEntropy,
        seed,
    )
    .unwrap();
    let mut rng = SplitMix64::new(seed ^ 0xabc);
    let x = (0..24 * 3)
        .map(|_| T::from_f64(2.0 * rng.uniform() - 1.0))
        .collect();
    let y = (0..24).map(|k| k % 3).collect();
    (net, x, y)
}

fn options() -> EpochOptions {
    EpochOptions {
        batch_size: 5,
        shuffle: true,
        l2: 1e-3,
        dropout: vec![0.2, 0.1, 0.0],
        clip_norm: Some(5.0),
    }
}

fn epochs<T: Real>(
    net: &mut NeuralNetwork<T>,
    state: &mut TrainingState<T>,
    x: &[T],
    y: &[usize],
    n: usize,
) -> Vec<f64> {
    let batch = net
        .batch(MatRef::new(x, y.len(), 3).unwrap(), Targets::Classes(y))
        .unwrap();
    (0..n)
        .map(|_| net.train_epoch(&batch, &options(), state).unwrap())
        .collect()
}

fn bits<T: Real>(net: &NeuralNetwork<T>) -> Vec<u64> {
    net.parameters()
        .into_iter()
        .flat_map(|(w, b)| w.into_iter().chain(b))
        .map(|v| v.to_f64().to_bits())
        .collect()
}

/// A valid file with a training run: the base every hostile case below starts from.
fn trained_file() -> Vec<u8> {
    let (mut net, x, y) = classifier::<f64>(1);
    let mut state = TrainingState::new(adam(false, false), 9, 3).unwrap();
    epochs(&mut net, &mut state, &x, &y, 1);
    write_model(&net, Some(1), Some(&state), Some("{\"fit\":null}")).unwrap()
}

/// (header as JSON, tensor data) of a file.
fn split(file: &[u8]) -> (Value, Vec<u8>) {
    let n = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&file[8..8 + n]).unwrap();
    (header, file[8 + n..].to_vec())
}

/// A file from a header text and data, as the format lays it out.
fn assemble(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// The file with its header edited by `edit` (the crc recomputed for the data).
fn edited(file: &[u8], edit: impl FnOnce(&mut Value, &mut Vec<u8>)) -> Vec<u8> {
    let (mut header, mut data) = split(file);
    edit(&mut header, &mut data);
    if let Some(meta) = header.get_mut("__metadata__") {
        if meta.get("data_crc32").is_some() {
            meta["data_crc32"] = json!(format!("{:08x}", crc32fast::hash(&data)));
        }
    }
    assemble(&header.to_string(), &data)
}

/// A metadata value parsed as JSON, edited, and put back as a string.
fn edit_meta_json(header: &mut Value, key: &str, edit: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_str(header["__metadata__"][key].as_str().unwrap()).unwrap();
    edit(&mut v);
    header["__metadata__"][key] = json!(v.to_string());
}

struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn f64s(v: &[f64]) -> Raw {
    Raw {
        dtype: Dtype::F64,
        shape: vec![v.len()],
        bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

fn shaped(mut raw: Raw, shape: &[usize]) -> Raw {
    raw.shape = shape.to_vec();
    raw
}

/// A file of the given tensors with ferrinet's metadata for `architecture` (crc filled in),
/// written by the safetensors crate itself: for files whose tensors do not fit their
/// architecture.
fn crafted(architecture: Value, tensors: Vec<(&str, Raw)>) -> Vec<u8> {
    let meta = |crc: &str| {
        let mut m = BTreeMap::new();
        m.insert("format".to_string(), "ferrinet".to_string());
        m.insert("format_version".to_string(), "1".to_string());
        m.insert("architecture".to_string(), architecture.to_string());
        m.insert("data_crc32".to_string(), crc.to_string());
        m.into_iter().collect()
    };
    let tensors: Vec<(String, Raw)> = tensors
        .into_iter()
        .map(|(n, r)| (n.to_string(), r))
        .collect();
    let draft =
        safetensors::serialize(tensors.iter().map(|(n, r)| (n, r)), Some(meta("0"))).unwrap();
    let (_, data) = split(&draft);
    let crc = format!("{:08x}", crc32fast::hash(&data));
    safetensors::serialize(tensors.iter().map(|(n, r)| (n, r)), Some(meta(&crc))).unwrap()
}

fn arch(sizes: &[usize], activations: &[&str], loss: &str) -> Value {
    json!({"sizes": sizes, "activations": activations, "loss": loss, "dtype": "float64",
           "seed": 0, "n_threads": 1})
}

/// The tensors of a [3, 4, 2] network: weights 0.1 * k, biases 0.
fn tensors_342() -> Vec<(&'static str, Raw)> {
    let w = |r: usize, c: usize| {
        shaped(
            f64s(&(0..r * c).map(|k| 0.1 * k as f64).collect::<Vec<_>>()),
            &[r, c],
        )
    };
    vec![
        ("0.weight", w(4, 3)),
        ("0.bias", f64s(&[0.0; 4])),
        ("2.weight", w(2, 4)),
        ("2.bias", f64s(&[0.0; 2])),
    ]
}

/// Reading `file` must fail with `Error::Format` whose message contains `fragment`.
#[track_caller]
fn refused(file: &[u8], fragment: &str) -> String {
    match read_model(file) {
        Err(Error::Format(msg)) => {
            assert!(
                msg.contains(fragment),
                "expected {fragment:?} in the message, got: {msg}"
            );
            msg
        }
        Err(other) => panic!("expected Error::Format({fragment:?}), got {other:?}"),
        Ok(_) => panic!("expected Error::Format({fragment:?}), the file was accepted"),
    }
}

fn f64_file(loaded: LoadedModel) -> ModelFile<f64> {
    match loaded {
        LoadedModel::F64(f) => f,
        LoadedModel::F32(_) => panic!("expected a float64 file"),
    }
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------
fn check_round_trip<T: Real>(net: &NeuralNetwork<T>, seed: u64) {
    let bytes = write_model(net, Some(seed), None, None).unwrap();
    assert_eq!(
        bytes,
        write_model(net, Some(seed), None, None).unwrap(),
        "deterministic"
    );
    let back = ModelFile::<T>::read(&bytes).unwrap();
    assert_eq!(bits(&back.network), bits(net));
    assert_eq!(back.network.sizes(), net.sizes());
    assert_eq!(back.network.loss(), net.loss());
    let acts = |n: &NeuralNetwork<T>| {
        n.layers()
            .iter()
            .map(|l| l.activation())
            .collect::<Vec<_>>()
    };
    assert_eq!(acts(&back.network), acts(net));
    assert_eq!(back.network.n_threads(), net.n_threads());
    assert_eq!(back.network.n_threads_setting(), net.n_threads_setting());
    assert_eq!(back.seed, Some(seed));
    assert!(back.training.is_none() && back.python.is_none());
    // read -> write gives the same bytes again
    let again = write_model(&back.network, back.seed, None, None).unwrap();
    assert_eq!(again, bytes);
}

#[test]
fn every_activation_loss_and_depth_round_trips_in_both_dtypes() {
    let mut rng = SplitMix64::new(5);
    let mut count = 0;
    for head in HEADS {
        for hidden in HIDDEN {
            for depth in 0..=3 {
                let (net, _) = random_case(&mut rng, Some(hidden), head, depth);
                let seed = rng.next_u64();
                check_round_trip(&net, seed);
                let sizes = net.sizes();
                let acts: Vec<Activation> = vec![hidden; depth];
                let mut net32 = NeuralNetwork::<f32>::new(
                    &sizes,
                    &acts,
                    Some(head.output()),
                    head.loss(),
                    seed,
                )
                .unwrap();
                net32.set_n_threads(int_in(&mut rng, 1, 4)).unwrap();
                check_round_trip(&net32, seed);
                count += 2;
            }
        }
    }
    assert_eq!(count, HEADS.len() * HIDDEN.len() * 4 * 2);
}

#[test]
fn the_dtype_is_the_networks_and_typed_reads_check_it() {
    let (net, _, _) = classifier::<f32>(2);
    let bytes = net.to_safetensors().unwrap();
    let (header, data) = split(&bytes);
    assert_eq!(header["0.weight"]["dtype"], "F32");
    assert_eq!(header["0.weight"]["shape"], json!([5, 3]));
    assert_eq!(data.len(), 4 * net.n_parameters());
    assert!(matches!(read_model(&bytes), Ok(LoadedModel::F32(_))));
    assert_eq!(
        bits(&NeuralNetwork::<f32>::from_safetensors(&bytes).unwrap()),
        bits(&net)
    );
    match NeuralNetwork::<f64>::from_safetensors(&bytes) {
        Err(Error::Format(msg)) => assert!(msg.contains("float32"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_layout_is_pytorchs_and_the_metadata_is_documented() {
    let (net, _, _) = classifier::<f64>(3);
    let (header, data) = split(&net.to_safetensors().unwrap());
    let obj = header.as_object().unwrap();
    let mut names: Vec<&str> = obj.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "0.bias",
            "0.weight",
            "2.bias",
            "2.weight",
            "4.bias",
            "4.weight",
            "__metadata__"
        ]
    );
    // 0.weight holds W row-major (n_out, n_in): W[i][j] at i * n_in + j.
    let w0 = &net.layers()[0];
    let info = &header["0.weight"];
    let start = info["data_offsets"][0].as_u64().unwrap() as usize;
    let k = 2 * 3 + 1; // W[2][1]
    let stored = f64::from_le_bytes(data[start + 8 * k..start + 8 * k + 8].try_into().unwrap());
    assert_eq!(stored.to_bits(), w0.weights()[k].to_bits());
    let meta = header["__metadata__"].as_object().unwrap();
    assert_eq!(meta["format"], "ferrinet");
    assert_eq!(meta["format_version"], "1");
    assert_eq!(
        meta["data_crc32"],
        json!(format!("{:08x}", crc32fast::hash(&data)))
    );
    let a: Value = serde_json::from_str(meta["architecture"].as_str().unwrap()).unwrap();
    assert_eq!(
        a,
        json!({"sizes": [3, 5, 4, 3], "activations": ["tanh", "relu", "softmax"],
               "loss": "cross_entropy", "dtype": "float64", "seed": null, "n_threads": null})
    );
    assert!(meta.get("training").is_none());
}

#[test]
fn training_continues_bit_for_bit_after_a_save_in_both_dtypes() {
    fn run<T: Real>(opt: Optimizer) {
        let (mut net, x, y) = classifier::<T>(4);
        let mut state = TrainingState::new(opt, 77, 3).unwrap();
        epochs(&mut net, &mut state, &x, &y, 2);
        let bytes = write_model(&net, Some(4), Some(&state), None).unwrap();
        let loaded = ModelFile::<T>::read(&bytes).unwrap();
        let (mut net2, mut state2) = (loaded.network, loaded.training.unwrap());
        assert_eq!(state2, state, "{opt:?}: the state reads back exactly");
        let a = epochs(&mut net, &mut state, &x, &y, 3);
        let b = epochs(&mut net2, &mut state2, &x, &y, 3);
        assert_eq!(
            a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "{opt:?}"
        );
        assert_eq!(bits(&net), bits(&net2), "{opt:?} {}", T::NAME);
        assert_eq!(state, state2);
        assert_eq!(state.steps(), 5 * 5);
    }
    for opt in optimizers() {
        run::<f64>(opt);
        run::<f32>(opt);
    }
}

#[test]
fn a_changed_learning_rate_and_the_python_object_are_kept() {
    let (mut net, x, y) = classifier::<f64>(6);
    let mut state = TrainingState::new(adam(false, false), 1, 3).unwrap();
    epochs(&mut net, &mut state, &x, &y, 1);
    state.set_learning_rate(0.1 / 3.0).unwrap();
    let python = r#"{"fit": {"epoch": 1, "x": [1.5, "é\n"]}}"#;
    let bytes = write_model(&net, None, Some(&state), Some(python)).unwrap();
    let back = f64_file(read_model(&bytes).unwrap());
    assert_eq!(
        back.training.unwrap().learning_rate().to_bits(),
        (0.1f64 / 3.0).to_bits()
    );
    assert_eq!(back.python.as_deref(), Some(python));
    assert_eq!(back.seed, None);
}

#[test]
fn writes_refuse_what_a_file_cannot_hold() {
    let (mut net, _, _) = classifier::<f64>(1);
    for bad in ["[1, 2]", "{", "\"text\""] {
        match write_model(&net, None, None, Some(bad)) {
            Err(Error::Value(msg)) => assert!(msg.contains("python metadata"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }
    let other = TrainingState::<f64>::new(Optimizer::sgd(0.1), 0, 2).unwrap();
    assert!(matches!(
        write_model(&net, None, Some(&other), None),
        Err(Error::Value(_))
    ));
    // A network cannot hold more threads than a file may record (the setter refuses them).
    match net.set_n_threads(100_000) {
        Err(Error::Value(msg)) => assert!(
            msg.contains(&format!("at most {}", ferrinet_core::max_threads())),
            "{msg}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(ferrinet_core::max_threads() <= ferrinet_core::THREADS_CAP);
}

// ---------------------------------------------------------------------------------------------
// Truncated and corrupted files
// ---------------------------------------------------------------------------------------------
#[test]
fn every_truncation_is_refused() {
    let file = trained_file();
    for len in 0..file.len() {
        assert!(
            matches!(read_model(&file[..len]), Err(Error::Format(_))),
            "a file cut to {len} of {} bytes was not refused",
            file.len()
        );
    }
    let n = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    refused(&file[..4], "too short");
    refused(&file[..8 + n / 2], "only");
    refused(&file[..file.len() - 1], "truncated");
}

#[test]
fn every_flipped_byte_is_refused_or_still_a_valid_file() {
    // A flip in the data is caught by the crc; a flip in the header either breaks it (refused)
    // or changes a value to another valid one. Never a panic, never another error.
    let (net, _, _) = classifier::<f64>(8);
    let file = net.to_safetensors().unwrap();
    let n = 8 + u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    let mut accepted = 0;
    for i in 0..file.len() {
        for flip in [0x01u8, 0x80] {
            let mut bad = file.clone();
            bad[i] ^= flip;
            match read_model(&bad) {
                Err(Error::Format(_)) => {}
                Ok(_) => {
                    assert!(i >= 8 && i < n, "a flip at byte {i} (data) was accepted");
                    accepted += 1;
                }
                Err(e) => panic!("flip at {i}: {e:?}"),
            }
        }
    }
    assert!(accepted < file.len() / 4, "{accepted} flips were accepted");
    let mut bad = file.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    refused(&bad, "corrupted");
}

#[test]
fn extra_bytes_at_the_end_are_refused() {
    let mut file = trained_file();
    file.extend_from_slice(&[0; 8]);
    refused(&file, "extra bytes");
}

// ---------------------------------------------------------------------------------------------
// Hostile headers: sizes that must not be trusted
// ---------------------------------------------------------------------------------------------
#[test]
fn header_lengths_are_checked_against_the_file_before_anything_is_allocated() {
    for n in [u64::MAX, 1 << 40, 1 << 31, 1000] {
        let mut file = n.to_le_bytes().to_vec();
        file.extend_from_slice(b"{\"a\": 1}");
        let (result, peak) = peak_bytes(|| read_model(&file));
        let msg = match result {
            Err(Error::Format(msg)) => msg,
            other => panic!("{other:?}"),
        };
        assert!(msg.contains("only 8 bytes follow"), "{msg}");
        assert!(
            peak < 64 * 1024,
            "{peak} bytes allocated for a header of {n}"
        );
    }
    for n in [0u64, 1] {
        let mut file = n.to_le_bytes().to_vec();
        file.extend_from_slice(b"{}");
        refused(&file, "too short for its JSON object");
    }
    assert!(matches!(read_model(&[]), Err(Error::Format(_))));
}

#[test]
fn a_header_longer_than_the_format_allows_is_refused_unread() {
    let n = MAX_HEADER_BYTES + 1;
    let mut file = (n as u64).to_le_bytes().to_vec();
    file.resize(8 + n, b' ');
    let (result, peak) = peak_bytes(|| read_model(&file));
    assert!(
        matches!(&result, Err(Error::Format(m)) if m.contains("more than the 100000000")),
        "{result:?}"
    );
    assert!(peak < 64 * 1024, "{peak}");
}

#[test]
fn declared_sizes_never_drive_allocations() {
    // Absurd sizes with small tensors: refused from the shapes, before any weight is read.
    let absurd = [
        vec![3, 1 << 40, 2],
        vec![1 << 50, 1 << 50],
        vec![3, usize::MAX / 2, 2],
    ];
    for sizes in absurd {
        let n_layers = sizes.len() - 1;
        let acts: Vec<&str> = (0..n_layers)
            .map(|l| {
                if l + 1 == n_layers {
                    "identity"
                } else {
                    "relu"
                }
            })
            .collect();
        let file = crafted(arch(&sizes, &acts, "mse"), tensors_342());
        let (result, peak) = peak_bytes(|| read_model(&file));
        assert!(
            matches!(result, Err(Error::Format(_))),
            "{sizes:?}: {result:?}"
        );
        assert!(peak < file.len() + MIB, "{sizes:?}: {peak} bytes");
    }
    // Shapes whose byte size overflows, or exceeds the data.
    let file = trained_file();
    for shape in [
        json!([1u64 << 40, 1u64 << 40]),
        json!([u64::MAX, 2]),
        json!([1u64 << 30, 3]),
    ] {
        let bad = edited(&file, |h, _| h["0.weight"]["shape"] = shape.clone());
        let (result, peak) = peak_bytes(|| read_model(&bad));
        assert!(
            matches!(&result, Err(Error::Format(m)) if m.contains("needs")),
            "{result:?}"
        );
        assert!(peak < bad.len() + MIB, "{peak}");
    }
    // A valid file: the file, plus about its size again for the weights and moments.
    let (result, peak) = peak_bytes(|| read_model(&file));
    assert!(result.is_ok());
    assert!(
        peak < 4 * file.len() + MIB,
        "{peak} for a file of {}",
        file.len()
    );
}

#[test]
fn many_tensors_or_metadata_entries_are_refused_early() {
    let mut header = String::from("{");
    for i in 0..=2 * MAX_LAYERS {
        header.push_str(&format!(
            "\"t{i}\":{{\"dtype\":\"F64\",\"shape\":[0],\"data_offsets\":[0,0]}},"
        ));
    }
    header.pop();
    header.push('}');
    let file = assemble(&header, &[]);
    let (result, peak) = peak_bytes(|| read_model(&file));
    assert!(
        matches!(&result, Err(Error::Format(m)) if m.contains("more than 20000 tensors")),
        "{result:?}"
    );
    assert!(peak < file.len() + 4 * MIB, "{peak}");

    let entries: Vec<String> = (0..300).map(|i| format!("\"k{i}\":\"v\"")).collect();
    let file = assemble(
        &format!("{{\"__metadata__\":{{{}}}}}", entries.join(",")),
        &[],
    );
    refused(&file, "more than 256 entries");
}

// ---------------------------------------------------------------------------------------------
// Hostile headers: structure
// ---------------------------------------------------------------------------------------------
#[test]
fn headers_that_are_not_a_json_object_are_refused() {
    refused(&assemble("\u{0}\u{1}", b""), "not a JSON object");
    refused(&[2, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe], "not UTF-8");
    refused(&assemble("[1, 2]", b""), "not a JSON object");
    refused(&assemble("{\"a\": ", b""), "bad safetensors header");
    refused(&assemble("{} trailing", b""), "trailing characters");
    refused(&assemble("{\"0.weight\": 3}", b""), "\"0.weight\"");
    refused(
        &assemble("{\"0.weight\": {\"dtype\": \"F64\", \"shape\": [1]}}", b""),
        "has no \"data_offsets\"",
    );
}

#[test]
fn duplicate_names_are_refused() {
    let entry = "{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}";
    let file = assemble(
        &format!("{{\"0.bias\":{entry},\"0.bias\":{entry}}}"),
        &[0; 8],
    );
    refused(&file, "tensor \"0.bias\" appears twice");
    let file = assemble("{\"__metadata__\":{},\"__metadata__\":{}}", b"");
    refused(&file, "\"__metadata__\" appears twice");
}

#[test]
fn bad_offsets_are_refused_with_the_tensor_named() {
    let file = trained_file();
    let (header, _) = split(&file);
    let offsets = |name: &str| {
        let o = &header[name]["data_offsets"];
        (o[0].as_u64().unwrap(), o[1].as_u64().unwrap())
    };
    let (s, e) = offsets("0.weight");
    let set = |name: &'static str, v: Value| edited(&file, move |h, _| h[name]["data_offsets"] = v);
    refused(&set("0.weight", json!([e, s])), "ends before it starts");
    refused(&set("0.weight", json!([s, e + 8])), "needs 120 bytes");
    refused(
        &set("0.weight", json!([s - 8, e - 8])),
        "overlaps tensor \"0.bias\"",
    );
    let total = split(&file).1.len() as u64;
    refused(
        &set("0.weight", json!([total, total + (e - s)])),
        "truncated",
    );
    refused(&set("0.weight", json!([s, e, 3])), "\"0.weight\"");
    // two tensors swapped in the data is fine as long as the offsets say so: not a gap, a swap
    let (bs, be) = offsets("0.bias");
    assert_eq!(bs, 0, "the crate writes 0.bias first");
    let gap = edited(&file, |h, data| {
        h["0.bias"]["data_offsets"] = json!([8, be + 8]);
        data.splice(0..0, [0u8; 8]);
        for name in ["0.weight", "2.bias", "2.weight", "4.bias", "4.weight"] {
            let o = &mut h[name]["data_offsets"];
            *o = json!([o[0].as_u64().unwrap() + 8, o[1].as_u64().unwrap() + 8]);
        }
    });
    refused(&gap, "belong to no tensor");
}

#[test]
fn wrong_dtypes_and_ranks_are_refused() {
    let file = trained_file();
    for dtype in ["BF16", "I64", "F16", "float64", ""] {
        let bad = edited(&file, |h, _| h["2.weight"]["dtype"] = json!(dtype));
        refused(&bad, "ferrinet files hold F64 or F32 tensors");
    }
    let bad = edited(&file, |h, _| h["2.weight"]["shape"] = json!([1, 4, 5, 1]));
    refused(&bad, "more than 2 dimensions");
    let bad = edited(&file, |h, _| h["2.weight"]["shape"] = json!([-4, 5]));
    refused(&bad, "invalid value");
    // F32 tensors in a float64 file (the sizes match the byte counts)
    let w = |r: usize, c: usize| Raw {
        dtype: Dtype::F32,
        shape: vec![r, c],
        bytes: vec![0; 4 * r * c],
    };
    let mut tensors = tensors_342();
    tensors[2] = ("2.weight", w(2, 4));
    let file = crafted(arch(&[3, 4, 2], &["relu", "identity"], "mse"), tensors);
    refused(
        &file,
        "tensor \"2.weight\" is F32 but the architecture says float64",
    );
}

// ---------------------------------------------------------------------------------------------
// The metadata
// ---------------------------------------------------------------------------------------------
#[test]
fn files_that_are_not_ferrinets_are_refused() {
    // A plain state dict, as PyTorch users write them.
    let plain = safetensors::serialize(tensors_342().iter().map(|(n, r)| (*n, r)), None).unwrap();
    refused(&plain, "not a ferrinet file");
    let file = trained_file();
    refused(
        &edited(&file, |h, _| h["__metadata__"]["format"] = json!("pt")),
        "its metadata says format \"pt\"",
    );
    refused(
        &edited(&file, |h, _| {
            h["__metadata__"].as_object_mut().unwrap().remove("format");
        }),
        "not a ferrinet file",
    );
    refused(
        &edited(&file, |h, _| h["__metadata__"]["format_version"] = json!(1)),
        "a string for metadata \"format_version\"",
    );
    refused(
        &edited(&file, |h, _| h["__metadata__"] = json!(["format"])),
        "__metadata__",
    );
}

#[test]
fn unknown_format_versions_are_refused() {
    let file = trained_file();
    for (v, fragment) in [
        ("2", "format version 2 is not supported"),
        ("0", "format version 0 is not supported"),
        ("1.0", "whole number"),
        ("one", "whole number"),
    ] {
        refused(
            &edited(&file, |h, _| h["__metadata__"]["format_version"] = json!(v)),
            fragment,
        );
    }
    refused(
        &edited(&file, |h, _| {
            h["__metadata__"]
                .as_object_mut()
                .unwrap()
                .remove("format_version");
        }),
        "no format_version",
    );
}

#[test]
fn the_crc_is_checked() {
    let file = trained_file();
    let (header, data) = split(&file);
    let mut bad = data.clone();
    bad[3] ^= 0x10;
    refused(
        &assemble(&header.to_string(), &bad),
        "the tensor data are corrupted",
    );
    for crc in ["xyz", "", "123456789", "-1234567"] {
        let mut h = header.clone();
        h["__metadata__"]["data_crc32"] = json!(crc);
        refused(&assemble(&h.to_string(), &data), "8 hex digits");
    }
    let mut h = header.clone();
    h["__metadata__"]
        .as_object_mut()
        .unwrap()
        .remove("data_crc32");
    refused(&assemble(&h.to_string(), &data), "no data_crc32");
}

#[test]
fn bad_architectures_are_refused() {
    let file = trained_file();
    let with = |edit: fn(&mut Value)| edited(&file, |h, _| edit_meta_json(h, "architecture", edit));
    refused(
        &edited(&file, |h, _| {
            h["__metadata__"]["architecture"] = json!("{sizes")
        }),
        "metadata \"architecture\"",
    );
    refused(&with(|a| a["sizes"] = json!("abc")), "invalid type");
    refused(
        &with(|a| a["sizes"] = json!([3, -5, 4, 3])),
        "invalid value",
    );
    refused(&with(|a| a["extra"] = json!(1)), "unknown field");
    refused(
        &with(|a| {
            a.as_object_mut().unwrap().remove("loss");
        }),
        "missing field `loss`",
    );
    refused(
        &with(|a| a["activations"][0] = json!("swish")),
        "unknown activation \"swish\"",
    );
    refused(&with(|a| a["activations"][0] = json!(7)), "invalid type");
    refused(
        &with(|a| a["loss"] = json!("hinge")),
        "unknown loss \"hinge\"",
    );
    refused(
        &with(|a| a["sizes"] = json!([3])),
        "at least the input and output",
    );
    refused(&with(|a| a["sizes"] = json!([3, 0, 4, 3])), "size 1 is 0");
    refused(
        &with(|a| a["activations"] = json!(["relu", "softmax"])),
        "2 activations for 3",
    );
    refused(
        &with(|a| a["activations"] = json!(["softmax", "relu", "softmax"])),
        "softmax is only for the output layer",
    );
    refused(
        &with(|a| a["activations"] = json!(["tanh", "relu", "identity"])),
        "cross_entropy",
    );
    refused(&with(|a| a["dtype"] = json!("float16")), "dtype must be");
    refused(
        &with(|a| a["n_threads"] = json!(0)),
        "n_threads must be in [1, 256]",
    );
    refused(
        &with(|a| a["n_threads"] = json!(1u64 << 40)),
        "n_threads must be in",
    );
    refused(
        &with(|a| a["n_threads"] = json!(257)),
        "n_threads must be in [1, 256]",
    );
    refused(&with(|a| a["seed"] = json!(-1)), "invalid value");
    let deep: Vec<usize> = vec![2; MAX_LAYERS + 2];
    let mut a = arch(&deep, &[], "mse");
    a["activations"] = json!(vec!["relu"; MAX_LAYERS + 1]);
    refused(
        &crafted(a, tensors_342()),
        "more than the 10000 a file may hold",
    );
    refused(
        &edited(&file, |h, _| {
            h["__metadata__"]
                .as_object_mut()
                .unwrap()
                .remove("architecture");
        }),
        "no architecture",
    );
}

#[test]
fn tensors_must_be_exactly_the_architectures() {
    let a = || arch(&[3, 4, 2], &["relu", "identity"], "mse");
    assert!(
        read_model(&crafted(a(), tensors_342())).is_ok(),
        "the base is valid"
    );

    let mut extra = tensors_342();
    extra.push(("4.weight", shaped(f64s(&[1.0; 2]), &[1, 2])));
    let msg = refused(&crafted(a(), extra), "unexpected tensor \"4.weight\"");
    assert!(msg.contains("0.weight, 0.bias, 2.weight, 2.bias"), "{msg}");

    let mut missing = tensors_342();
    missing.pop();
    refused(&crafted(a(), missing), "missing tensor \"2.bias\"");

    let mut transposed = tensors_342();
    transposed[0].1.shape = vec![3, 4];
    refused(
        &crafted(a(), transposed),
        "tensor \"0.weight\" has shape (3, 4) but the sizes [3, 4, 2] need (4, 3)",
    );

    // Shapes that do not chain: 2.weight reads 5 inputs where layer 0 gives 4.
    let mut unchained = tensors_342();
    unchained[2].1 = shaped(f64s(&[0.5; 10]), &[2, 5]);
    refused(
        &crafted(a(), unchained),
        "need (2, 4): layer 1 maps 4 inputs to 2 outputs",
    );

    let mut matrix_bias = tensors_342();
    matrix_bias[1].1.shape = vec![4, 1];
    refused(
        &crafted(a(), matrix_bias),
        "tensor \"0.bias\" has shape (4, 1)",
    );

    let mut renamed = tensors_342();
    renamed[3].0 = "3.bias";
    refused(&crafted(a(), renamed), "unexpected tensor \"3.bias\"");
}

#[test]
fn non_finite_weights_are_refused_with_their_position() {
    let a = || arch(&[3, 4, 2], &["relu", "identity"], "mse");
    for (bad, shown) in [
        (f64::NAN, "NaN"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
    ] {
        let mut t = tensors_342();
        let mut w: Vec<f64> = (0..8).map(|k| k as f64).collect();
        w[6] = bad; // [1, 2] of a (2, 4) matrix
        t[2].1 = shaped(f64s(&w), &[2, 4]);
        refused(
            &crafted(a(), t),
            &format!("tensor \"2.weight\" holds {shown} at [1, 2]"),
        );
        let mut t = tensors_342();
        t[1].1 = f64s(&[0.0, bad, 0.0, 0.0]);
        refused(
            &crafted(a(), t),
            &format!("tensor \"0.bias\" holds {shown} at [1]"),
        );
    }
}

#[test]
fn bad_training_states_are_refused() {
    let file = trained_file();
    let with = |edit: fn(&mut Value)| edited(&file, |h, _| edit_meta_json(h, "training", edit));
    refused(
        &edited(&file, |h, _| {
            h["__metadata__"]["training"] = json!("not json")
        }),
        "metadata \"training\"",
    );
    refused(
        &with(|t| t["optimizer"]["name"] = json!("lion")),
        "unknown optimizer \"lion\"",
    );
    refused(
        &with(|t| t["optimizer"]["beta1"] = json!(1.5)),
        "betas[0] must be in [0, 1)",
    );
    refused(
        &with(|t| t["learning_rate"] = json!(-0.1)),
        "learning_rate must be",
    );
    refused(&with(|t| t["steps"] = json!(-3)), "invalid value");
    refused(&with(|t| t["rng_state"] = json!("12")), "invalid type");
    refused(&with(|t| t["extra"] = json!(0)), "unknown field");
    refused(
        &with(|t| {
            t["moments"].as_array_mut().unwrap().pop();
        }),
        "moments for 2 layers, the network has 3",
    );
    refused(
        &with(|t| t["moments"][1]["weight"]["m"] = json!("AAAA")),
        "moments[1].weight.m holds 4 base64 characters; expected none or 216 (the 20 values",
    );
    refused(
        &with(|t| {
            let m = t["moments"][0]["bias"]["v"].as_str().unwrap().to_string();
            t["moments"][0]["bias"]["v"] = json!(format!("!{}", &m[1..]));
        }),
        "moments[0].bias.v is not valid base64",
    );
    refused(
        &with(|t| {
            let nan = f64::NAN.to_le_bytes().repeat(5);
            use base64::Engine;
            let text = base64::engine::general_purpose::STANDARD.encode(nan);
            t["moments"][0]["bias"]["m"] = json!(text);
        }),
        "moments[0].bias.m holds NaN at [0]",
    );
    // A state the file holds is read exactly; unused buffers stay empty.
    let back = f64_file(read_model(&file).unwrap());
    let state = back.training.unwrap();
    assert_eq!(state.steps(), 5);
    let [(_, m), (_, v), (_, vmax), (_, ga)] = state.tensor_states()[0].0.buffers();
    assert_eq!((m.len(), v.len(), vmax.len(), ga.len()), (15, 15, 0, 0));
}

#[test]
fn bad_python_metadata_is_refused() {
    let file = trained_file();
    for (value, fragment) in [
        ("[1]", "must be a JSON object"),
        ("{\"a\": ", "is not valid JSON"),
        ("{} {}", "is not valid JSON"),
    ] {
        refused(
            &edited(&file, |h, _| h["__metadata__"]["python"] = json!(value)),
            fragment,
        );
    }
    let long = format!("{{\"a\": \"{}\"}}", "x".repeat(1 << 20));
    refused(
        &edited(&file, |h, _| h["__metadata__"]["python"] = json!(long)),
        "more than the 1048576 allowed",
    );
}

#[test]
fn unknown_metadata_keys_are_ignored() {
    let file = trained_file();
    let extended = edited(&file, |h, _| {
        h["__metadata__"]["note"] = json!("trained on a Tuesday")
    });
    let a = f64_file(read_model(&file).unwrap());
    let b = f64_file(read_model(&extended).unwrap());
    assert_eq!(bits(&a.network), bits(&b.network));
    assert_eq!(a.training, b.training);
}

#[test]
fn tensor_names_match_the_module_indices() {
    for l in 0..4 {
        let (w, b) = tensor_names(l);
        assert_eq!(w, format!("{}.weight", 2 * l));
        assert_eq!(b, format!("{}.bias", 2 * l));
    }
}

/// Files written by ferrinet at commit 14a4727 (tests/fixtures/saved_14a4727: a 3-4-2 tanh /
/// cross_entropy network, seed 7, two epochs of two batches, saved with its training run)
/// still load, with the optimizer record they were saved with. tests/test_saved_files.py
/// continues their training in Python and checks the bits.
#[test]
fn files_saved_by_an_earlier_version_still_load() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/saved_14a4727"
    );
    let cases = [
        (
            "adam",
            Optimizer::Adam {
                lr: 0.01,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.001,
                amsgrad: true,
                decoupled: false,
                eps_placement: EpsPlacement::Pytorch,
            },
        ),
        (
            "sgd",
            Optimizer::Sgd {
                lr: 0.05,
                momentum: 0.9,
                dampening: 0.0,
                nesterov: true,
                weight_decay: 0.0,
            },
        ),
        (
            "rmsprop",
            Optimizer::RmsProp {
                lr: 0.01,
                alpha: 0.99,
                eps: 1e-8,
                weight_decay: 0.0,
                momentum: 0.5,
                centered: true,
            },
        ),
    ];
    for (name, expected) in cases {
        let bytes = std::fs::read(format!("{dir}/{name}.safetensors")).unwrap();
        let LoadedModel::F64(file) = read_model(&bytes).unwrap() else {
            panic!("{name}: saved as float64")
        };
        assert_eq!(file.network.sizes(), [3, 4, 2], "{name}");
        assert_eq!(file.seed, Some(7), "{name}");
        let training = file.training.expect("saved with its training run");
        assert_eq!(*training.optimizer(), expected, "{name}");
        assert_eq!(training.steps(), 4, "{name}");
        assert_eq!(training.epochs(), 2, "{name}");
    }
}
