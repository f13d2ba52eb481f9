//! Token shards as the open GPT-2 reproductions write them, read memory-mapped: build-nanogpt's
//! `fineweb.py` saves each shard with `numpy.save` (a `.npy` array of little-endian uint16),
//! llm.c's saves a `.bin` with a 256-int32 header (magic 20240520, version 1, token count).
//! A folder's shards are those with `train` or `val` in their file names, in name order.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::data::DataError;

const LLMC_MAGIC: i32 = 20_240_520;
const LLMC_HEADER: usize = 256 * 4;
const NPY_MAGIC: &[u8] = b"\x93NUMPY";

/// Which shards of a folder: the split's name appears in the file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardSplit {
    Train,
    Val,
}

impl ShardSplit {
    fn name(self) -> &'static str {
        match self {
            ShardSplit::Train => "train",
            ShardSplit::Val => "val",
        }
    }
}

/// The tokens of one shard: a file mapped into memory, or generated ones.
pub enum Tokens {
    Mapped {
        path: PathBuf,
        map: Mmap,
        start: usize,
        len: usize,
    },
    Owned(Vec<u16>),
}

impl Tokens {
    pub fn len(&self) -> usize {
        match self {
            Tokens::Mapped { len, .. } => *len,
            Tokens::Owned(tokens) => tokens.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tokens `[from, from + count)`, widened for the tensor library.
    pub fn read(&self, from: usize, count: usize) -> Vec<i64> {
        match self {
            Tokens::Mapped { map, start, .. } => map[start + 2 * from..start + 2 * (from + count)]
                .chunks_exact(2)
                .map(|pair| i64::from(u16::from_le_bytes([pair[0], pair[1]])))
                .collect(),
            Tokens::Owned(tokens) => tokens[from..from + count].iter().map(|&t| i64::from(t)).collect(),
        }
    }

    /// Where these tokens come from, for messages.
    pub fn origin(&self) -> String {
        match self {
            Tokens::Mapped { path, .. } => path.display().to_string(),
            Tokens::Owned(_) => "the generated corpus".into(),
        }
    }
}

/// The split's shards in `folder`, each mapped and its header checked.
pub fn open_shards(folder: &Path, split: ShardSplit) -> Result<Vec<Tokens>, DataError> {
    let entries = std::fs::read_dir(folder).map_err(|e| DataError::io(folder, e))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| DataError::io(folder, e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let shard = name.ends_with(".npy") || name.ends_with(".bin");
        if shard && name.contains(split.name()) {
            paths.push(path);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(DataError::NoShards {
            folder: folder.to_path_buf(),
            split: split.name(),
        });
    }
    paths.iter().map(|p| open_shard(p)).collect()
}

/// One shard file, by its extension's format.
pub fn open_shard(path: &Path) -> Result<Tokens, DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    // Safety: the mapping is read-only and shards are written once, before training; a shard
    // truncated while mapped would fault, as reading it any other way would fail.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| DataError::io(path, e))?;
    let bad = |what, reason: String| DataError::Format {
        path: path.to_path_buf(),
        what,
        reason,
    };
    let (start, len) = if path.extension().is_some_and(|e| e == "npy") {
        npy_layout(&map).map_err(|reason| bad("NumPy uint16 token shard (.npy)", reason))?
    } else {
        llmc_layout(&map).map_err(|reason| bad("llm.c token shard (.bin)", reason))?
    };
    Ok(Tokens::Mapped {
        path: path.to_path_buf(),
        map,
        start,
        len,
    })
}

/// (first token's byte offset, token count) of an llm.c shard.
fn llmc_layout(bytes: &[u8]) -> Result<(usize, usize), String> {
    let header = bytes
        .get(..LLMC_HEADER)
        .ok_or_else(|| format!("{} bytes, shorter than the 1024-byte header", bytes.len()))?;
    let int = |i: usize| {
        i32::from_le_bytes([
            header[4 * i],
            header[4 * i + 1],
            header[4 * i + 2],
            header[4 * i + 3],
        ])
    };
    if int(0) != LLMC_MAGIC {
        return Err(format!("magic number {} (expected {LLMC_MAGIC})", int(0)));
    }
    if int(1) != 1 {
        return Err(format!("version {} (expected 1: uint16 tokens)", int(1)));
    }
    let count = usize::try_from(int(2)).map_err(|_| format!("negative token count {}", int(2)))?;
    let expected = LLMC_HEADER + 2 * count;
    if bytes.len() != expected {
        return Err(format!(
            "the header promises {count} tokens ({expected} bytes) but the file has {} bytes",
            bytes.len()
        ));
    }
    Ok((LLMC_HEADER, count))
}

/// (first token's byte offset, token count) of a one-dimensional little-endian uint16 array.
fn npy_layout(bytes: &[u8]) -> Result<(usize, usize), String> {
    if !bytes.starts_with(NPY_MAGIC) || bytes.len() < 10 {
        return Err("no NumPy magic string".into());
    }
    let (header_len, header_start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => {
            let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            (len as usize, 12)
        }
        v => return Err(format!("unsupported format version {v}")),
    };
    let start = header_start + header_len;
    let header = bytes
        .get(header_start..start)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or("truncated or non-text header")?;
    let compact: String = header.chars().filter(|c| !c.is_whitespace()).collect();
    if !compact.contains("'descr':'<u2'") {
        return Err(format!(
            "dtype is not little-endian uint16 ('<u2'): {}",
            header.trim()
        ));
    }
    if !compact.contains("'fortran_order':False") {
        return Err("Fortran-ordered array".into());
    }
    let shape = compact
        .split("'shape':(")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .ok_or("no shape")?;
    let count: usize = shape
        .trim_end_matches(',')
        .parse()
        .map_err(|_| format!("shape ({shape}) is not one-dimensional"))?;
    let expected = start + 2 * count;
    if bytes.len() != expected {
        return Err(format!(
            "the header promises {count} tokens ({expected} bytes) but the file has {} bytes",
            bytes.len()
        ));
    }
    Ok((start, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn write_llmc(path: &Path, tokens: &[u16]) {
        let mut bytes = vec![0u8; LLMC_HEADER];
        for (i, v) in [LLMC_MAGIC, 1, tokens.len() as i32].into_iter().enumerate() {
            bytes[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
        }
        bytes.extend(tokens.iter().flat_map(|t| t.to_le_bytes()));
        std::fs::write(path, bytes).unwrap();
    }

    /// What `numpy.save` writes for a uint16 vector (format 1.0, header padded to 64 bytes).
    pub fn write_npy(path: &Path, tokens: &[u16]) {
        let dict = format!(
            "{{'descr': '<u2', 'fortran_order': False, 'shape': ({},), }}",
            tokens.len()
        );
        let pad = 64 - (10 + dict.len() + 1) % 64;
        let header = format!("{dict}{}\n", " ".repeat(pad % 64));
        let mut bytes = NPY_MAGIC.to_vec();
        bytes.extend([1, 0]);
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        bytes.extend(tokens.iter().flat_map(|t| t.to_le_bytes()));
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn reads_both_formats_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        write_npy(&dir.path().join("edufineweb_train_000002.npy"), &[7, 8, 50256]);
        write_llmc(&dir.path().join("edufineweb_train_000001.bin"), &[1, 2, 3, 4]);
        write_npy(&dir.path().join("edufineweb_val_000000.npy"), &[9]);
        let train = open_shards(dir.path(), ShardSplit::Train).unwrap();
        assert_eq!(train.len(), 2);
        assert_eq!(train[0].read(1, 3), [2, 3, 4]);
        assert_eq!(train[1].read(0, 3), [7, 8, 50256]);
        assert_eq!(
            open_shards(dir.path(), ShardSplit::Val).unwrap()[0].read(0, 1),
            [9]
        );
    }

    #[test]
    fn a_truncated_or_foreign_shard_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x_train_000001.bin");
        write_llmc(&path, &[1, 2, 3, 4]);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        let message = open_shard(&path).err().unwrap().to_string();
        assert!(
            message.contains("x_train_000001.bin") && message.contains("promises 4 tokens"),
            "{message}"
        );
        let npy = dir.path().join("y_train.npy");
        write_npy(&npy, &[1]);
        let mut bytes = std::fs::read(&npy).unwrap();
        let at = bytes.windows(3).position(|w| w == b"<u2").unwrap();
        bytes[at + 1..at + 3].copy_from_slice(b"i4");
        std::fs::write(&npy, bytes).unwrap();
        let message = open_shard(&npy).err().unwrap().to_string();
        assert!(message.contains("'<u2'"), "{message}");
        let empty = tempfile::tempdir().unwrap();
        let message = open_shards(empty.path(), ShardSplit::Train)
            .err()
            .unwrap()
            .to_string();
        assert!(message.contains("no train shards"), "{message}");
    }
}
