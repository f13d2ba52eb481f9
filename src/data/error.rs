//! The one error type of the data half. Every variant names the file (and line, where there is
//! one) so a user can fix the input without reading code.

use std::path::PathBuf;

/// Errors from reading, fetching or preparing data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be opened, read or written.
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A dataset file exists but does not have the expected layout.
    #[error("{path}: not a valid {what} file: {reason}")]
    Format {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    /// A split-list line is malformed.
    #[error("{file}:{line}: {reason}")]
    SplitLine {
        file: PathBuf,
        line: usize,
        reason: String,
    },
    /// A split-list file has no entries.
    #[error("{file}: split file has no entries")]
    EmptySplit { file: PathBuf },
    /// A label is outside the dataset's class range.
    #[error("{file}:{line}: label {label} is outside 0..{num_classes}")]
    LabelOutOfRange {
        file: PathBuf,
        line: usize,
        label: i64,
        num_classes: usize,
    },
    /// A split-list path is absolute or climbs out of the image root.
    #[error("{file}:{line}: path {path:?} escapes the image root (absolute or contains '..')")]
    PathEscapesRoot {
        file: PathBuf,
        line: usize,
        path: String,
    },
    /// An image file could not be decoded.
    #[error("{image} (from {file}:{line}): cannot decode image: {reason}")]
    Decode {
        image: PathBuf,
        file: PathBuf,
        line: usize,
        reason: String,
    },
    /// An image file (outside any split list) could not be decoded.
    #[error("{image}: cannot decode image: {reason}")]
    Image { image: PathBuf, reason: String },
    /// An image-folder dataset folder (root, split or class) does not exist.
    #[error("{path}: {what} folder not found")]
    MissingFolder { path: PathBuf, what: &'static str },
    /// An image-folder class folder holds no images.
    #[error("{folder}: class folder has no images (.jpg, .jpeg or .png)")]
    EmptyClass { folder: PathBuf },
    /// Something in an image-folder dataset that is not where an image or class folder may be.
    #[error("{path}: {reason}")]
    UnexpectedEntry { path: PathBuf, reason: String },
    /// An evaluation class folder with no training counterpart (its label would be undefined).
    #[error("{folder}: class folder is not among the training classes in {train}")]
    UnknownClass { folder: PathBuf, train: PathBuf },
    /// Dataset files are absent and could not be fetched.
    #[error(
        "{what} not found at {expected} ({reason}); \
         download {url} yourself and put it at {archive} (or extract it there so that {expected} exists)"
    )]
    Missing {
        what: String,
        expected: PathBuf,
        archive: PathBuf,
        url: String,
        reason: String,
    },
    /// A download could not be completed.
    #[error("cannot fetch {url}: {reason}")]
    Network { url: String, reason: String },
    /// A downloaded or supplied file does not have the published checksum.
    #[error("{path}: {kind} {actual} does not match the expected {expected}")]
    Checksum {
        path: PathBuf,
        /// Which checksum: `md5`, `git blob sha1`.
        kind: &'static str,
        expected: String,
        actual: String,
    },
    /// A token-shard folder without shards of a split.
    #[error(
        "{folder}: no {split} shards (files with '{split}' in their name, ending .npy or .bin); \
         write them with build-nanogpt's fineweb.py (or llm.c's dev/data/fineweb.py) and point \
         data.text.shards at their folder"
    )]
    NoShards { folder: PathBuf, split: &'static str },
    /// A token outside the model's vocabulary.
    #[error("{origin}: token {token} at position {position} is outside the vocabulary of {vocab} (model.vocab_size)")]
    TokenOutOfRange {
        origin: String,
        position: usize,
        token: i64,
        vocab: usize,
    },
    /// A HellaSwag line that is not a question.
    #[error("{file}:{line}: not a HellaSwag question: {reason}")]
    Question {
        file: PathBuf,
        line: usize,
        reason: String,
    },
    /// A data worker thread panicked (a bug, reported instead of silently ending the epoch).
    #[error("data loader worker panicked: {0}")]
    WorkerPanicked(String),
    /// The configuration cannot be served by the data half.
    #[error("data config: {0}")]
    Config(String),
}

impl DataError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }
}
