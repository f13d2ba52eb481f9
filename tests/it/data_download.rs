//! Archive installation: md5 verification, extraction, atomic placement, and the offline error.

use crate::common::write_cifar_binary;
use flate2::write::GzEncoder;
use repro::data::download::{
    download_verified, ensure_archive, install_archive, md5_file, ArchiveSpec, Checksum, Timeouts,
};
use repro::data::DataError;
use std::path::Path;
use std::time::Duration;

/// A tar.gz with `folder/` holding one small CIFAR-10 binary batch.
fn fabricate_archive(dir: &Path, folder: &str) -> std::path::PathBuf {
    let src = dir.join("src");
    write_cifar_binary(&src.join(folder).join("test_batch.bin"), &[1, 2, 3], 0, false);
    let archive = dir.join("archive.tar.gz");
    let file = std::fs::File::create(&archive).unwrap();
    let mut tar = tar::Builder::new(GzEncoder::new(file, flate2::Compression::fast()));
    tar.append_dir_all(folder, src.join(folder)).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    archive
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn verified_archive_is_extracted_and_moved_into_place() {
    let dir = crate::common::scratch();
    let archive = fabricate_archive(dir.path(), "cifar-10-batches-bin");
    let md5 = md5_file(&archive).unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    install_archive(&archive, &md5, &root, "cifar-10-batches-bin").unwrap();
    assert_eq!(entries(&root), ["cifar-10-batches-bin"]);
    let split = repro::data::cifar::read_binary(
        &root.join("cifar-10-batches-bin/test_batch.bin"),
        repro::data::cifar::CifarVariant::Cifar10,
    )
    .unwrap();
    assert_eq!(split.labels, [1, 2, 3]);
}

#[test]
fn md5_mismatch_installs_nothing() {
    let dir = crate::common::scratch();
    let archive = fabricate_archive(dir.path(), "cifar-10-batches-bin");
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let err = install_archive(
        &archive,
        "00000000000000000000000000000000",
        &root,
        "cifar-10-batches-bin",
    )
    .unwrap_err();
    assert!(matches!(err, DataError::Checksum { .. }), "{err}");
    assert!(entries(&root).is_empty());
}

#[test]
fn archive_without_expected_folder_leaves_no_debris() {
    let dir = crate::common::scratch();
    let archive = fabricate_archive(dir.path(), "something-else");
    let md5 = md5_file(&archive).unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let err = install_archive(&archive, &md5, &root, "cifar-10-batches-bin").unwrap_err();
    assert!(err.to_string().contains("cifar-10-batches-bin"), "{err}");
    assert!(entries(&root).is_empty(), "{:?}", entries(&root));
}

fn spec(url: &str, md5: &str) -> ArchiveSpec {
    ArchiveSpec {
        url: url.into(),
        md5: md5.into(),
        file_name: "cifar-10-binary.tar.gz".into(),
        folder: "cifar-10-batches-bin".into(),
        what: "CIFAR-10 (binary version)".into(),
    }
}

#[test]
fn archive_already_in_root_is_installed_without_network() {
    let dir = crate::common::scratch();
    let archive = fabricate_archive(dir.path(), "cifar-10-batches-bin");
    let md5 = md5_file(&archive).unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::rename(&archive, root.join("cifar-10-binary.tar.gz")).unwrap();
    let folder = ensure_archive(&root, &spec("http://127.0.0.1:9/none", &md5), false).unwrap();
    assert!(folder.join("test_batch.bin").is_file());
}

#[test]
fn unreachable_server_gives_one_clear_error_and_no_partial_file() {
    let dir = crate::common::scratch();
    // Port 9 (discard) on loopback refuses connections: the offline case without DNS delays.
    let err = ensure_archive(
        dir.path(),
        &spec("http://127.0.0.1:9/cifar-10-binary.tar.gz", "x"),
        true,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Missing { .. }), "{msg}");
    assert!(msg.contains("http://127.0.0.1:9/cifar-10-binary.tar.gz"), "{msg}");
    assert!(
        msg.contains(&dir.path().join("cifar-10-binary.tar.gz").display().to_string()),
        "{msg}"
    );
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
}

/// Serves `body` once over HTTP/1.1 on a loopback port; returns the URL.
fn serve_once(body: Vec<u8>) -> String {
    serve_in_pieces(body, 1, Duration::ZERO)
}

/// Serves `body` once in `pieces` writes with `pause` before each: a slow link, or with a
/// long pause a server that stalls.
fn serve_in_pieces(body: Vec<u8>, pieces: usize, pause: Duration) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/cifar-10-binary.tar.gz", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        for piece in body.chunks(body.len().div_ceil(pieces)) {
            std::thread::sleep(pause);
            if stream.write_all(piece).and_then(|()| stream.flush()).is_err() {
                return; // the client gave up
            }
        }
    });
    url
}

const ONE_SECOND_IDLE: Timeouts = Timeouts {
    connect: Duration::from_secs(5),
    idle: Duration::from_secs(1),
};

#[test]
fn a_slow_download_is_not_cut_off_while_bytes_keep_coming() {
    let dir = crate::common::scratch();
    let archive = fabricate_archive(dir.path(), "cifar-10-batches-bin");
    let md5 = md5_file(&archive).unwrap();
    // Three seconds in all, never a second without data.
    let url = serve_in_pieces(std::fs::read(&archive).unwrap(), 6, Duration::from_millis(500));
    let dest = dir.path().join("a.tar.gz");
    download_verified(&url, Checksum::Md5(&md5), &dest, &ONE_SECOND_IDLE).unwrap();
    assert_eq!(md5_file(&dest).unwrap(), md5);
}

#[test]
fn a_stalled_download_fails_naming_the_url_and_leaves_nothing() {
    let dir = crate::common::scratch();
    let archive = fabricate_archive(dir.path(), "cifar-10-batches-bin");
    let url = serve_in_pieces(std::fs::read(&archive).unwrap(), 2, Duration::from_secs(3));
    let dest = dir.path().join("a.tar.gz");
    let err = download_verified(&url, Checksum::Md5("x"), &dest, &ONE_SECOND_IDLE).unwrap_err();
    assert!(matches!(err, DataError::Network { .. }), "{err}");
    assert!(err.to_string().contains(&url), "{err}");
    assert_eq!(entries(dir.path()), ["archive.tar.gz", "src"]);
}

#[test]
fn download_verifies_md5_then_installs() {
    let dir = crate::common::scratch();
    let archive = fabricate_archive(dir.path(), "cifar-10-batches-bin");
    let md5 = md5_file(&archive).unwrap();
    let root = dir.path().join("root");
    let url = serve_once(std::fs::read(&archive).unwrap());
    let folder = ensure_archive(&root, &spec(&url, &md5), true).unwrap();
    assert!(folder.join("test_batch.bin").is_file());
    assert_eq!(entries(&root), ["cifar-10-batches-bin", "cifar-10-binary.tar.gz"]);
}

#[test]
fn corrupt_download_is_discarded() {
    let dir = crate::common::scratch();
    let archive = fabricate_archive(dir.path(), "cifar-10-batches-bin");
    let md5 = md5_file(&archive).unwrap();
    let mut body = std::fs::read(&archive).unwrap();
    body[20] ^= 0xFF;
    let root = dir.path().join("root");
    let err = ensure_archive(&root, &spec(&serve_once(body), &md5), true).unwrap_err();
    assert!(matches!(err, DataError::Checksum { .. }), "{err}");
    assert!(entries(&root).is_empty(), "{:?}", entries(&root));
}
