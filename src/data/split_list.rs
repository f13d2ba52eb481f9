//! Split-list image datasets (ImageNet-LT, Places-LT, iNaturalist 2018, ImageNet): text files
//! of `relative/path.jpg label` lines over an image root.

use super::error::DataError;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// One image of a split file, with where it was listed (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitEntry {
    /// Image path (image root joined with the listed relative path).
    pub path: PathBuf,
    /// Label as written in the file.
    pub label: usize,
    /// Split file that listed it.
    pub list: Arc<PathBuf>,
    /// 1-based line number in `list`.
    pub line: usize,
}

/// Reads a split file. Blank lines are ignored; every other line must be
/// `relative/path label` with a label in `0..num_classes` and a path that stays inside the
/// image root.
pub fn read_split_file(
    list: &Path,
    image_root: &Path,
    num_classes: usize,
) -> Result<Vec<SplitEntry>, DataError> {
    let text = std::fs::read_to_string(list).map_err(|e| DataError::io(list, e))?;
    let list_arc = Arc::new(list.to_path_buf());
    let mut entries = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        entries.push(parse_line(raw, i + 1, &list_arc, image_root, num_classes)?);
    }
    if entries.is_empty() {
        return Err(DataError::EmptySplit {
            file: list.to_path_buf(),
        });
    }
    Ok(entries)
}

fn parse_line(
    raw: &str,
    line: usize,
    list: &Arc<PathBuf>,
    image_root: &Path,
    num_classes: usize,
) -> Result<SplitEntry, DataError> {
    let bad = |reason: String| DataError::SplitLine {
        file: list.to_path_buf(),
        line,
        reason,
    };
    let mut fields = raw.split_whitespace();
    let (Some(rel), Some(label_text), None) = (fields.next(), fields.next(), fields.next()) else {
        return Err(bad(format!("expected 'path label', got {raw:?}")));
    };
    let label: i64 = label_text
        .parse()
        .map_err(|_| bad(format!("label {label_text:?} is not an integer")))?;
    if label < 0 || label as u64 >= num_classes as u64 {
        return Err(DataError::LabelOutOfRange {
            file: list.to_path_buf(),
            line,
            label,
            num_classes,
        });
    }
    let rel_path = Path::new(rel);
    if !stays_inside(rel_path) {
        return Err(DataError::PathEscapesRoot {
            file: list.to_path_buf(),
            line,
            path: rel.to_string(),
        });
    }
    Ok(SplitEntry {
        path: image_root.join(rel_path),
        label: label as usize,
        list: Arc::clone(list),
        line,
    })
}

/// A relative path with no `..`, root or prefix component cannot leave the folder it is
/// joined to (symbolic links inside the root are the user's own choice).
fn stays_inside(path: &Path) -> bool {
    path.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && path.components().any(|c| matches!(c, Component::Normal(_)))
}

/// Relabelling of classes by descending training frequency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassMap {
    /// New label of each original label.
    pub new_of_old: Vec<usize>,
    /// Original label of each new label.
    pub old_of_new: Vec<usize>,
}

impl ClassMap {
    /// The identity (for balanced datasets, whose class order is kept).
    pub fn identity(num_classes: usize) -> Self {
        let ids: Vec<usize> = (0..num_classes).collect();
        ClassMap {
            new_of_old: ids.clone(),
            old_of_new: ids,
        }
    }

    /// Orders classes by descending number of training images; ties keep the original label
    /// order (ascending), so the map is stable across runs and platforms. The reference sorts
    /// with numpy's unstable argsort, which agrees except possibly within ties.
    pub fn by_frequency(train_labels: &[usize], num_classes: usize) -> Self {
        let counts = count_per_class(train_labels, num_classes);
        let mut old_of_new: Vec<usize> = (0..num_classes).collect();
        old_of_new.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
        let mut new_of_old = vec![0; num_classes];
        for (new, &old) in old_of_new.iter().enumerate() {
            new_of_old[old] = new;
        }
        ClassMap {
            new_of_old,
            old_of_new,
        }
    }

    /// Rewrites entry labels through the map.
    pub fn apply(&self, entries: &mut [SplitEntry]) {
        for e in entries {
            e.label = self.new_of_old[e.label];
        }
    }
}

/// Number of labels equal to each class.
pub fn count_per_class(labels: &[usize], num_classes: usize) -> Vec<usize> {
    let mut counts = vec![0; num_classes];
    for &l in labels {
        if let Some(c) = counts.get_mut(l) {
            *c += 1;
        }
    }
    counts
}

/// Decodes a JPEG or PNG to 8-bit RGB; errors name the image and the split line.
pub fn decode(entry: &SplitEntry) -> Result<image::RgbImage, DataError> {
    decode_file(&entry.path).map_err(|reason| DataError::Decode {
        image: entry.path.clone(),
        file: entry.list.to_path_buf(),
        line: entry.line,
        reason,
    })
}

/// Reads and decodes a JPEG or PNG file to 8-bit RGB; the error is the reason only, for the
/// caller to attach where the file came from.
pub fn decode_file(path: &Path) -> Result<image::RgbImage, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let format = image::guess_format(&bytes).map_err(|e| e.to_string())?;
    if format == image::ImageFormat::Jpeg && !jpeg_is_complete(&bytes) {
        // The JPEG decoder pads a truncated scan with grey instead of failing; a cut-off file
        // must not silently become a training image.
        return Err("truncated JPEG (no end-of-image marker)".into());
    }
    let img = image::load_from_memory_with_format(&bytes, format).map_err(|e| e.to_string())?;
    Ok(img.into_rgb8())
}

fn jpeg_is_complete(bytes: &[u8]) -> bool {
    // Some encoders append padding after EOI; accept it within a short tail.
    let tail = &bytes[bytes.len().saturating_sub(64)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}
