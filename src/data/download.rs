//! Fetching and installing dataset archives. The cache is only ever in one of two states,
//! absent or complete: downloads go to a temporary file, are checked against the published md5,
//! are extracted into a temporary folder and only then renamed into place.

use super::error::DataError;
use indicatif::{ProgressBar, ProgressStyle};
use md5::{Digest, Md5};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One published archive: where to get it, its checksum and the folder it unpacks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSpec {
    pub url: String,
    /// Lower-case hex md5 of the archive.
    pub md5: String,
    /// Archive file name below the data root.
    pub file_name: String,
    /// Top-level folder inside the archive (and below the data root once installed).
    pub folder: String,
    /// Human-readable name for messages.
    pub what: String,
}

/// Makes `root/spec.folder` exist: uses it if present, else installs `root/spec.file_name` if
/// that archive is present, else downloads the archive (when allowed) and installs it.
pub fn ensure_archive(root: &Path, spec: &ArchiveSpec, download: bool) -> Result<PathBuf, DataError> {
    let folder = root.join(&spec.folder);
    if folder.is_dir() {
        return Ok(folder);
    }
    std::fs::create_dir_all(root).map_err(|e| DataError::io(root, e))?;
    let archive = root.join(&spec.file_name);
    if !archive.is_file() {
        let missing = |reason: String| DataError::Missing {
            what: spec.what.clone(),
            expected: folder.clone(),
            archive: archive.clone(),
            url: spec.url.clone(),
            reason,
        };
        if !download {
            return Err(missing("downloading is disabled (data.download: false)".into()));
        }
        download_verified(
            &spec.url,
            Checksum::Md5(&spec.md5),
            &archive,
            &Timeouts::default(),
        )
        .map_err(|e| match e {
            DataError::Network { reason, .. } => missing(format!("download failed: {reason}")),
            other => other,
        })?;
    }
    install_archive(&archive, &spec.md5, root, &spec.folder)?;
    Ok(folder)
}

/// Lower-case hex md5 of a file.
pub fn md5_file(path: &Path) -> Result<String, DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut reader = BufReader::new(file);
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A published checksum of a file.
#[derive(Debug, Clone, Copy)]
pub enum Checksum<'a> {
    /// Lower-case hex md5 (the CIFAR archives).
    Md5(&'a str),
    /// The SHA-1 git names a file's contents by (its blob id at a pinned commit), for files
    /// published only in a repository.
    GitBlob(&'a str),
}

impl Checksum<'_> {
    pub fn verify(self, path: &Path) -> Result<(), DataError> {
        let (kind, expected, actual) = match self {
            Checksum::Md5(expected) => ("md5", expected, md5_file(path)?),
            Checksum::GitBlob(expected) => ("git blob sha1", expected, git_blob_sha1(path)?),
        };
        if actual.eq_ignore_ascii_case(expected) {
            Ok(())
        } else {
            Err(DataError::Checksum {
                path: path.to_path_buf(),
                kind,
                expected: expected.to_string(),
                actual,
            })
        }
    }
}

fn git_blob_sha1(path: &Path) -> Result<String, DataError> {
    use sha1::Sha1;
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let mut hasher = Sha1::new();
    hasher.update(format!("blob {}\0", bytes.len()).as_bytes());
    hasher.update(&bytes);
    Ok(hex(&hasher.finalize()))
}

/// A sibling path unique to this process, so concurrent runs never share a partial file.
fn temp_sibling(path: &Path, tag: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{tag}-{}", std::process::id()))
}

/// Removes a temporary path on drop unless it was kept, so errors never leave debris.
struct TempGuard(Option<PathBuf>);

impl TempGuard {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            // Best effort: the path may be a file or a folder, or never have been created.
            let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
        }
    }
}

/// How long a download may wait. There is no limit on the whole transfer: a 161 MB archive on a
/// slow link takes as long as it takes, but a server that stops sending is given up on.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// Longest wait for the next bytes.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(30),
            idle: Duration::from_secs(60),
        }
    }
}

/// Downloads `url` to `dest` through a temporary file, with a progress bar on a terminal (a line
/// otherwise), and renames it into place only when its checksum matches.
pub fn download_verified(
    url: &str,
    checksum: Checksum<'_>,
    dest: &Path,
    timeouts: &Timeouts,
) -> Result<(), DataError> {
    let tmp = temp_sibling(dest, "part");
    let guard = TempGuard(Some(tmp.clone()));
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(timeouts.connect)
        .timeout_read(timeouts.idle)
        .build();
    let response = agent.get(url).call().map_err(|e| DataError::Network {
        url: url.to_string(),
        reason: network_reason(e),
    })?;
    let total = response
        .header("Content-Length")
        .and_then(|v| v.parse::<u64>().ok());
    let bar = total.map_or_else(ProgressBar::new_spinner, ProgressBar::new);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(url.to_string());
    if bar.is_hidden() {
        let size = total.map_or(String::new(), |n| format!(" ({:.1} MB)", n as f64 / 1e6));
        eprintln!("downloading {url}{size} to {}", dest.display());
    }
    let mut reader = bar.wrap_read(response.into_reader());
    let mut file = File::create(&tmp).map_err(|e| DataError::io(&tmp, e))?;
    std::io::copy(&mut reader, &mut file).map_err(|e| match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => DataError::Network {
            url: url.to_string(),
            reason: format!("no data for {} s: {e}", timeouts.idle.as_secs_f64()),
        },
        _ => DataError::io(&tmp, e),
    })?;
    file.flush().map_err(|e| DataError::io(&tmp, e))?;
    bar.finish();
    checksum.verify(&tmp)?;
    std::fs::rename(&tmp, dest).map_err(|e| DataError::io(dest, e))?;
    guard.keep();
    Ok(())
}

/// ureq repeats the URL in its message; keep only the cause.
fn network_reason(e: ureq::Error) -> String {
    match e {
        ureq::Error::Status(code, _) => format!("HTTP status {code}"),
        ureq::Error::Transport(t) => t
            .message()
            .map_or_else(|| t.kind().to_string(), |m| format!("{}: {m}", t.kind())),
    }
}

/// Verifies `archive` against `md5`, extracts it into a temporary folder below `root` and
/// renames its top-level `folder` to `root/folder`.
pub fn install_archive(archive: &Path, md5: &str, root: &Path, folder: &str) -> Result<(), DataError> {
    Checksum::Md5(md5).verify(archive)?;
    let staging = temp_sibling(&root.join(folder), "extract");
    let guard = TempGuard(Some(staging.clone()));
    std::fs::create_dir_all(&staging).map_err(|e| DataError::io(&staging, e))?;
    let file = File::open(archive).map_err(|e| DataError::io(archive, e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    // `unpack` refuses entries that would land outside `staging`.
    tar.unpack(&staging).map_err(|e| DataError::Format {
        path: archive.to_path_buf(),
        what: "tar.gz",
        reason: e.to_string(),
    })?;
    let extracted = staging.join(folder);
    if !extracted.is_dir() {
        return Err(DataError::Format {
            path: archive.to_path_buf(),
            what: "tar.gz",
            reason: format!("archive has no top-level folder '{folder}'"),
        });
    }
    let target = root.join(folder);
    std::fs::rename(&extracted, &target).map_err(|e| DataError::io(&target, e))?;
    drop(guard);
    Ok(())
}
