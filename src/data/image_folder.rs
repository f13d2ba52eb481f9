//! torchvision `ImageFolder` datasets: `<root>/<split>/<class>/*.{jpg,jpeg,png}`, classes
//! numbered by sorted folder name, images of a class in file-name order (both as Python's
//! `sorted`, i.e. by code point, which is UTF-8 byte order).
//!
//! Small images are decoded once into memory (see [`MEMORY_CACHE_BYTES`]); larger sets stay
//! file-backed and are decoded per batch, like the split-list datasets.

use super::error::DataError;
use super::split_list;
use crate::config::data::OnBadImage;
use rayon::prelude::*;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// File extensions taken as images (compared case-insensitively).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// Largest decoded size (bytes, RGB) a split may have to be held in memory. CIFAR-10's 50 000
/// 32×32 images are 150 MB; ImageNet at full size is far beyond any sensible limit and is
/// decoded per batch instead.
pub const MEMORY_CACHE_BYTES: u64 = 4 << 30;

/// The images of one split folder, in class-then-file-name order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderSplit {
    pub paths: Vec<PathBuf>,
    pub labels: Vec<usize>,
}

impl FolderSplit {
    /// Keeps only the given images, in the given order.
    pub fn select(&self, indices: &[usize]) -> FolderSplit {
        FolderSplit {
            paths: indices.iter().map(|&i| self.paths[i].clone()).collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        }
    }
}

/// The class folder names of a split folder, sorted.
pub fn class_names(split_dir: &Path) -> Result<Vec<OsString>, DataError> {
    let mut names = Vec::new();
    for (name, path) in visible_entries(split_dir, "split")? {
        if !path.is_dir() {
            return Err(DataError::UnexpectedEntry {
                path,
                reason: "a split folder may only hold class folders".into(),
            });
        }
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// Lists a split folder whose class folders are labelled by position in `classes` (the
/// training classes); a class folder not in `classes` is an error.
pub fn scan(split_dir: &Path, classes: &[OsString], train_dir: &Path) -> Result<FolderSplit, DataError> {
    let mut split = FolderSplit::default();
    for name in class_names(split_dir)? {
        let folder = split_dir.join(&name);
        let label = classes
            .binary_search(&name)
            .map_err(|_| DataError::UnknownClass {
                folder: folder.clone(),
                train: train_dir.to_path_buf(),
            })?;
        let mut files = Vec::new();
        for (file, path) in visible_entries(&folder, "class")? {
            if path.is_dir() || !is_image_name(&file) {
                return Err(DataError::UnexpectedEntry {
                    path,
                    reason: format!(
                        "not an image file (a class folder may only hold files ending in .{})",
                        IMAGE_EXTENSIONS.join(", .")
                    ),
                });
            }
            files.push((file, path));
        }
        if files.is_empty() {
            return Err(DataError::EmptyClass { folder });
        }
        files.sort();
        split.labels.extend(std::iter::repeat_n(label, files.len()));
        split.paths.extend(files.into_iter().map(|(_, p)| p));
    }
    Ok(split)
}

/// Images per class folder of a split, without decoding anything (for cost estimates).
pub fn count_images(split_dir: &Path) -> Result<Vec<usize>, DataError> {
    class_names(split_dir)?
        .iter()
        .map(|name| {
            let folder = split_dir.join(name);
            Ok(visible_entries(&folder, "class")?
                .iter()
                .filter(|(n, _)| is_image_name(n))
                .count())
        })
        .collect()
}

/// Decodes a listed image; the error names the file.
pub fn decode(path: &Path) -> Result<image::RgbImage, DataError> {
    split_list::decode_file(path).map_err(|reason| DataError::Image {
        image: path.to_path_buf(),
        reason,
    })
}

/// Decoded pixels of a whole split, when it is small enough and of one image size.
pub struct Decoded {
    pub pixels: Vec<u8>,
    pub labels: Vec<usize>,
    pub height: usize,
    pub width: usize,
}

/// Either the split decoded into memory, or (too large, or of mixed sizes) the listing back for
/// per-batch decoding. With `on_bad_image: skip`, undecodable images are left out (with a
/// warning each) here rather than at every epoch.
pub fn decode_all(split: FolderSplit, on_bad: OnBadImage) -> Result<Result<Decoded, FolderSplit>, DataError> {
    let Some(first) = split.paths.first() else {
        return Ok(Err(split));
    };
    // The header alone gives the size; a bad first file is reported by the full decode below.
    if let Ok((w, h)) = image::image_dimensions(first) {
        let bytes = u64::from(w) * u64::from(h) * 3 * split.paths.len() as u64;
        if bytes > MEMORY_CACHE_BYTES {
            return Ok(Err(split));
        }
    }
    let decoded: Vec<Result<image::RgbImage, DataError>> =
        split.paths.par_iter().map(|p| decode(p)).collect();
    let mut images = Vec::with_capacity(decoded.len());
    let mut kept = FolderSplit::default();
    for ((result, &label), path) in decoded.into_iter().zip(&split.labels).zip(&split.paths) {
        match (result, on_bad) {
            (Ok(img), _) => {
                images.push(img);
                kept.labels.push(label);
                kept.paths.push(path.clone());
            }
            (Err(e), OnBadImage::Skip) => eprintln!("warning: skipping image: {e}"),
            (Err(e), OnBadImage::Fail) => return Err(e),
        }
    }
    let Some(dims) = images.first().map(|i| i.dimensions()) else {
        return Ok(Err(FolderSplit::default()));
    };
    if images.iter().any(|i| i.dimensions() != dims) {
        // Packed storage needs one size; mixed sizes are decoded per batch (the crops of the
        // loader handle them), keeping only the images that decoded.
        return Ok(Err(kept));
    }
    let (width, height) = (dims.0 as usize, dims.1 as usize);
    let mut pixels = Vec::with_capacity(images.len() * width * height * 3);
    for img in images {
        pixels.extend_from_slice(img.as_raw());
    }
    Ok(Ok(Decoded {
        pixels,
        labels: kept.labels,
        height,
        width,
    }))
}

fn is_image_name(name: &OsString) -> bool {
    Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Entries of a folder except hidden ones (`.DS_Store`, editor files), which no image dataset
/// means to include.
fn visible_entries(dir: &Path, what: &'static str) -> Result<Vec<(OsString, PathBuf)>, DataError> {
    if !dir.is_dir() {
        return Err(DataError::MissingFolder {
            path: dir.to_path_buf(),
            what,
        });
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        out.push((name, entry.path()));
    }
    Ok(out)
}
