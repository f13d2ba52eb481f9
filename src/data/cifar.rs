//! CIFAR-10/100 readers for both official distributions: the python-pickle archives
//! (`cifar-10-batches-py`, `cifar-100-python`) and the binary archives (`cifar-10-batches-bin`,
//! `cifar-100-binary`). Images come out as 32x32 RGB, HWC, in file order.

use super::download::{ensure_archive, ArchiveSpec};
use super::error::DataError;
use super::pickle;
use std::path::{Path, PathBuf};

/// Side of a CIFAR image.
pub const SIDE: usize = 32;
const PIXELS: usize = SIDE * SIDE * 3;

/// CIFAR-10 or CIFAR-100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarVariant {
    Cifar10,
    Cifar100,
}

/// On-disk distribution of the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarFormat {
    Python,
    Binary,
}

/// One split: `labels.len()` images of 32x32x3 bytes (HWC) in `pixels`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CifarSplit {
    pub pixels: Vec<u8>,
    pub labels: Vec<usize>,
}

impl CifarSplit {
    /// Keeps only the given images, in the given order.
    pub fn select(&self, indices: &[usize]) -> CifarSplit {
        let mut pixels = Vec::with_capacity(indices.len() * PIXELS);
        for &i in indices {
            pixels.extend_from_slice(&self.pixels[i * PIXELS..(i + 1) * PIXELS]);
        }
        CifarSplit {
            pixels,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        }
    }
}

impl CifarFormat {
    /// Display name, as on the CIFAR page.
    pub fn name(self) -> &'static str {
        match self {
            CifarFormat::Python => "python",
            CifarFormat::Binary => "binary",
        }
    }
}

impl CifarVariant {
    /// Number of (fine) classes.
    pub fn classes(self) -> usize {
        match self {
            CifarVariant::Cifar10 => 10,
            CifarVariant::Cifar100 => 100,
        }
    }

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            CifarVariant::Cifar10 => "CIFAR-10",
            CifarVariant::Cifar100 => "CIFAR-100",
        }
    }

    /// Official archive of one distribution (URL and md5 as published with the dataset).
    pub fn archive(self, format: CifarFormat) -> ArchiveSpec {
        let (file, folder, md5) = match (self, format) {
            (CifarVariant::Cifar10, CifarFormat::Python) => (
                "cifar-10-python.tar.gz",
                "cifar-10-batches-py",
                "c58f30108f718f92721af3b95e74349a",
            ),
            (CifarVariant::Cifar10, CifarFormat::Binary) => (
                "cifar-10-binary.tar.gz",
                "cifar-10-batches-bin",
                "c32a1d4ab5d03f1284b67883e8d87530",
            ),
            (CifarVariant::Cifar100, CifarFormat::Python) => (
                "cifar-100-python.tar.gz",
                "cifar-100-python",
                "eb9058c3a382ffc7106e4002c42a8d85",
            ),
            (CifarVariant::Cifar100, CifarFormat::Binary) => (
                "cifar-100-binary.tar.gz",
                "cifar-100-binary",
                "03b5dce01913d631647c71ecec9e9cb8",
            ),
        };
        ArchiveSpec {
            url: format!("https://www.cs.toronto.edu/~kriz/{file}"),
            md5: md5.to_string(),
            file_name: file.to_string(),
            folder: folder.to_string(),
            what: format!("{} ({} version)", self.name(), format.name()),
        }
    }

    fn files(self, format: CifarFormat, train: bool) -> Vec<String> {
        match (self, format, train) {
            (CifarVariant::Cifar10, CifarFormat::Python, true) => {
                (1..=5).map(|i| format!("data_batch_{i}")).collect()
            }
            (CifarVariant::Cifar10, CifarFormat::Python, false) => vec!["test_batch".into()],
            (CifarVariant::Cifar10, CifarFormat::Binary, true) => {
                (1..=5).map(|i| format!("data_batch_{i}.bin")).collect()
            }
            (CifarVariant::Cifar10, CifarFormat::Binary, false) => vec!["test_batch.bin".into()],
            (CifarVariant::Cifar100, CifarFormat::Python, t) => {
                vec![if t { "train" } else { "test" }.into()]
            }
            (CifarVariant::Cifar100, CifarFormat::Binary, t) => {
                vec![if t { "train.bin" } else { "test.bin" }.into()]
            }
        }
    }
}

/// Which distribution is present under `root`: the python one if its folder exists, else the
/// binary one, else `None`.
pub fn detect_format(root: &Path, variant: CifarVariant) -> Option<CifarFormat> {
    [CifarFormat::Python, CifarFormat::Binary]
        .into_iter()
        .find(|f| root.join(variant.archive(*f).folder).is_dir())
}

/// Reads the train (or test) split, downloading the python archive first when neither
/// distribution is present and `download` allows it.
pub fn load(
    root: &Path,
    variant: CifarVariant,
    train: bool,
    download: bool,
) -> Result<CifarSplit, DataError> {
    let format = match detect_format(root, variant) {
        Some(f) => f,
        None => {
            ensure_archive(root, &variant.archive(CifarFormat::Python), download)?;
            CifarFormat::Python
        }
    };
    load_format(root, variant, format, train)
}

/// Reads one split of an explicitly chosen distribution.
pub fn load_format(
    root: &Path,
    variant: CifarVariant,
    format: CifarFormat,
    train: bool,
) -> Result<CifarSplit, DataError> {
    let folder = root.join(variant.archive(format).folder);
    let mut split = CifarSplit::default();
    for name in variant.files(format, train) {
        let path = folder.join(name);
        let part = match format {
            CifarFormat::Python => read_python(&path, variant)?,
            CifarFormat::Binary => read_binary(&path, variant)?,
        };
        split.pixels.extend(part.pixels);
        split.labels.extend(part.labels);
    }
    Ok(split)
}

fn read(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}

fn format_error(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::Format {
        path: path.to_path_buf(),
        what: "CIFAR",
        reason: reason.into(),
    }
}

/// Planar CHW rows (R plane, G plane, B plane) to interleaved HWC.
fn planar_to_hwc(row: &[u8], out: &mut Vec<u8>) {
    let plane = SIDE * SIDE;
    for p in 0..plane {
        out.extend_from_slice(&[row[p], row[plane + p], row[2 * plane + p]]);
    }
}

fn check_labels(path: &Path, labels: &[usize], variant: CifarVariant) -> Result<(), DataError> {
    match labels.iter().find(|&&l| l >= variant.classes()) {
        Some(l) => Err(format_error(
            path,
            format!("label {l} outside 0..{}", variant.classes()),
        )),
        None => Ok(()),
    }
}

/// Reads a binary batch: per record, 1 label byte (CIFAR-10) or coarse+fine bytes (CIFAR-100)
/// followed by 3072 planar pixel bytes.
pub fn read_binary(path: &Path, variant: CifarVariant) -> Result<CifarSplit, DataError> {
    let bytes = read(path)?;
    let label_bytes = match variant {
        CifarVariant::Cifar10 => 1,
        CifarVariant::Cifar100 => 2,
    };
    let record = label_bytes + PIXELS;
    if bytes.is_empty() || bytes.len() % record != 0 {
        return Err(format_error(
            path,
            format!("size {} is not a multiple of {record}-byte records", bytes.len()),
        ));
    }
    let mut split = CifarSplit {
        pixels: Vec::with_capacity(bytes.len() / record * PIXELS),
        labels: Vec::with_capacity(bytes.len() / record),
    };
    for rec in bytes.chunks_exact(record) {
        split.labels.push(usize::from(rec[label_bytes - 1]));
        planar_to_hwc(&rec[label_bytes..], &mut split.pixels);
    }
    check_labels(path, &split.labels, variant)?;
    Ok(split)
}

/// Reads a python-pickle batch: a dict with a uint8 `data` array [N, 3072] and `labels`
/// (CIFAR-10) or `fine_labels` (CIFAR-100).
pub fn read_python(path: &Path, variant: CifarVariant) -> Result<CifarSplit, DataError> {
    let bytes = read(path)?;
    let mut value = pickle::parse(&bytes).map_err(|e| format_error(path, e))?;
    let label_key = match variant {
        CifarVariant::Cifar10 => "labels",
        CifarVariant::Cifar100 => "fine_labels",
    };
    let missing = |key: &str| format_error(path, format!("no '{key}' entry"));
    let labels = value.get(label_key).ok_or_else(|| missing(label_key))?;
    let labels = pickle::int_list(labels).map_err(|e| format_error(path, e))?;
    drop(bytes);
    let data = value.take("data").ok_or_else(|| missing("data"))?;
    let array = pickle::u8_array(data).map_err(|e| format_error(path, e))?;
    if array.shape != [labels.len(), PIXELS] {
        return Err(format_error(
            path,
            format!(
                "data shape {:?} does not match {} labels x {PIXELS}",
                array.shape,
                labels.len()
            ),
        ));
    }
    check_labels(path, &labels, variant)?;
    let mut pixels = Vec::with_capacity(array.data.len());
    for row in array.data.chunks_exact(PIXELS) {
        planar_to_hwc(row, &mut pixels);
    }
    Ok(CifarSplit { pixels, labels })
}

/// Expected location of the extracted folder of a distribution (for messages and docs).
pub fn folder(root: &Path, variant: CifarVariant, format: CifarFormat) -> PathBuf {
    root.join(variant.archive(format).folder)
}
