//! Helpers shared by the tests: scratch folders and writers for the official CIFAR file formats.

use std::path::Path;

pub use tempfile::TempDir;

/// A fresh folder under the system temp dir, removed on drop (set REPRO_KEEP_TEST_DIRS=1 to
/// keep it, e.g. to look at rendered figures).
pub fn scratch() -> TempDir {
    let mut dir = tempfile::Builder::new()
        .prefix("repro-test-")
        .tempdir()
        .expect("create a temp dir");
    if std::env::var_os("REPRO_KEEP_TEST_DIRS").is_some() {
        dir.disable_cleanup(true);
        eprintln!("keeping {}", dir.path().display());
    }
    dir
}

/// A fresh, empty database on the PostgreSQL server named by `REPRO_TEST_POSTGRES` (a URL whose
/// role may create databases; `.ci/run` starts such a server), or None when it is not set.
pub fn postgres_db() -> Option<String> {
    use sqlx::Connection;
    let Ok(admin) = std::env::var("REPRO_TEST_POSTGRES") else {
        eprintln!("note: REPRO_TEST_POSTGRES is not set: PostgreSQL half of this test skipped");
        return None;
    };
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let name = format!(
        "t{}_{}_{n}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conn = sqlx::postgres::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("REPRO_TEST_POSTGRES={admin}: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create a test database");
    });
    let (server, _) = admin.rsplit_once('/').expect("a URL ending in /DATABASE");
    Some(format!("{server}/{name}"))
}

/// The stores a store test runs against: a SQLite file in `dir`, and a fresh PostgreSQL
/// database when the tests have a server (`postgres_db`).
pub fn store_urls(dir: &Path) -> Vec<String> {
    let sqlite = dir.join(format!("s{}.sqlite", std::process::id()));
    let mut urls = vec![sqlite.to_str().expect("UTF-8 temp dir").to_string()];
    urls.extend(postgres_db());
    urls
}

/// Planar (CHW) pixels of a fabricated image whose first three red bytes encode `index`, so a
/// test can tell which source image ended up where.
pub fn planar_pixels(index: usize) -> Vec<u8> {
    let mut px: Vec<u8> = (0..3072).map(|j| ((index * 31 + j * 7) % 251) as u8).collect();
    px[0] = (index >> 16) as u8;
    px[1] = (index >> 8) as u8;
    px[2] = index as u8;
    px
}

/// Index encoded by `planar_pixels`, read back from an HWC image (red of pixels 0, 1, 2).
pub fn decode_index(hwc: &[u8]) -> usize {
    (usize::from(hwc[0]) << 16) | (usize::from(hwc[3]) << 8) | usize::from(hwc[6])
}

/// A CIFAR binary batch: per record the label byte(s) then 3072 planar pixels.
pub fn write_cifar_binary(path: &Path, labels: &[usize], first_index: usize, cifar100: bool) {
    let mut out = Vec::with_capacity(labels.len() * 3074);
    for (k, &l) in labels.iter().enumerate() {
        if cifar100 {
            out.push((l / 5) as u8);
        }
        out.push(l as u8);
        out.extend(planar_pixels(first_index + k));
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, out).unwrap();
}

fn short_binstring(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'U');
    out.push(s.len() as u8);
    out.extend_from_slice(s);
}

/// A CIFAR python batch as Python 2's cPickle writes it (protocol 2, byte-string keys, numpy
/// array via `numpy.core.multiarray._reconstruct`).
pub fn write_cifar_pickle(path: &Path, label_key: &str, labels: &[usize], first_index: usize) {
    let n = labels.len();
    let mut o = vec![0x80, 2, b'}', b'q', 1, b'('];
    short_binstring(&mut o, label_key.as_bytes());
    o.extend([b']', b'q', 2]);
    for chunk in labels.chunks(1000) {
        o.push(b'(');
        for &l in chunk {
            o.extend([b'K', l as u8]);
        }
        o.push(b'e');
    }
    short_binstring(&mut o, b"data");
    o.extend(b"cnumpy.core.multiarray\n_reconstruct\nq\x03cnumpy\nndarray\nq\x04K\x00\x85");
    short_binstring(&mut o, b"b");
    o.extend([0x87, b'R', b'q', 5, b'(', b'K', 1, b'M']);
    o.extend((n as u16).to_le_bytes());
    o.extend([b'M', 0x00, 0x0c, 0x86]);
    o.extend(b"cnumpy\ndtype\nq\x06");
    short_binstring(&mut o, b"u1");
    o.extend([b'K', 0, b'K', 1, 0x87, b'R', b'q', 7, b'(', b'K', 3]);
    short_binstring(&mut o, b"|");
    o.extend([
        b'N', b'N', b'N', b'J', 0xff, 0xff, 0xff, 0xff, b'J', 0xff, 0xff, 0xff, 0xff, b'K', 0, b't', b'b',
        0x89,
    ]);
    let mut data = Vec::with_capacity(n * 3072);
    for k in 0..n {
        data.extend(planar_pixels(first_index + k));
    }
    o.push(b'T');
    o.extend((data.len() as u32).to_le_bytes());
    o.extend(data);
    o.extend([b't', b'b', b'q', 8, b'u', b'.']);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, o).unwrap();
}

/// Labels of a fabricated training set: every class `per_class` times, in a scrambled but
/// deterministic order (so within-class positions differ from global positions).
pub fn scrambled_labels(classes: usize, per_class: usize) -> Vec<usize> {
    let n = classes * per_class;
    // Multiplying by a unit modulo n permutes 0..n.
    let step = (1..n).rev().find(|s| gcd(*s, n) == 1 && *s > n / 3).unwrap_or(1);
    (0..n).map(|i| (i * step % n) % classes).collect()
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// A working folder with an `experiments/` tree, in which the `repro` binary runs as a user
/// would run it (no inherited `REPRO_*` settings, no standard input).
///
/// With `REPRO_TEST_STORE=postgres` (and `REPRO_TEST_POSTGRES`, see [`postgres_db`]) its
/// default store is a fresh PostgreSQL database instead of `results/repro.sqlite`: `.ci/run`
/// runs the command-line tests a second time so, to show both databases behave alike.
pub struct Sandbox {
    dir: TempDir,
    db: Option<String>,
}

impl Default for Sandbox {
    fn default() -> Self {
        let dir = scratch();
        std::fs::create_dir_all(dir.path().join("experiments/sweeps")).expect("create experiments/");
        let db = (std::env::var("REPRO_TEST_STORE").as_deref() == Ok("postgres"))
            .then(|| postgres_db().expect("REPRO_TEST_STORE=postgres needs REPRO_TEST_POSTGRES"));
        Sandbox { dir, db }
    }
}

impl Sandbox {
    pub fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `experiments/<file>`.
    pub fn manifest(&self, file: &str, yaml: &str) {
        std::fs::write(self.path("experiments").join(file), yaml).expect("write manifest");
    }

    pub fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_repro"));
        c.current_dir(self.dir.path())
            .args(args)
            .stdin(std::process::Stdio::null());
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("REPRO_")) {
            c.env_remove(k);
        }
        if let Some(db) = &self.db {
            c.env("REPRO_DB", db);
        }
        c
    }

    /// The store the binary uses here when given no `--db`.
    pub fn store_url(&self) -> String {
        self.db
            .clone()
            .unwrap_or_else(|| self.path("results/repro.sqlite").display().to_string())
    }

    /// Whether the default store has been created (a PostgreSQL database always has).
    pub fn store_exists(&self) -> bool {
        self.db.is_some() || self.path("results/repro.sqlite").exists()
    }

    /// Whether the default store is SQLite's `results/repro.sqlite` (not PostgreSQL): for
    /// tests of what only a file can do (be corrupt, read-only, missing).
    pub fn sqlite_default(&self) -> bool {
        if self.db.is_some() {
            eprintln!("note: a SQLite-only check, skipped on PostgreSQL");
        }
        self.db.is_none()
    }

    pub fn run(&self, args: &[&str]) -> std::process::Output {
        self.cmd(args).output().expect("run repro")
    }
}

/// The value of attribute `name` in the SVG tag `tag`.
fn svg_attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    tag[start..].split('"').next()
}

/// Each `<text>` of an SVG written by plotters: its x and its content.
pub fn svg_texts(svg: &str) -> Vec<(f64, String)> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let x = svg_attr(t, "x")?.parse().ok()?;
            let content = t.split_once('>')?.1.split("</text>").next()?;
            Some((x, content.trim().to_string()))
        })
        .collect()
}

/// Rightmost x of an SVG's `<line>`s: plotters draws the charts' grids as lines, and nothing
/// else.
pub fn svg_grid_right(svg: &str) -> f64 {
    svg.split("<line")
        .skip(1)
        .flat_map(|l| [svg_attr(l, "x1"), svg_attr(l, "x2")])
        .filter_map(|x| x?.parse::<f64>().ok())
        .fold(f64::NEG_INFINITY, f64::max)
}

/// Colours of an SVG's polylines other than black (which axes and ticks are drawn in).
pub fn svg_line_colours(svg: &str) -> std::collections::BTreeSet<String> {
    svg.split("<polyline")
        .skip(1)
        .filter_map(|l| svg_attr(l, "stroke"))
        .filter(|c| *c != "#000000")
        .map(str::to_string)
        .collect()
}

/// Asserts that every one of `labels` is a text of `svg` lying right of every grid line: a
/// legend that covers no plot. (The same words may also describe an axis, left of the grid.)
pub fn assert_legend_clear_of_plots(svg: &Path, labels: &[String]) {
    let text = std::fs::read_to_string(svg).unwrap();
    let grid = svg_grid_right(&text);
    let texts = svg_texts(&text);
    for label in labels {
        let at = texts.iter().filter(|(_, t)| t == label).map(|(x, _)| *x);
        let rightmost = at.fold(f64::NEG_INFINITY, f64::max);
        assert!(
            rightmost.is_finite(),
            "{}: no legend entry `{label}`",
            svg.display()
        );
        assert!(
            rightmost > grid,
            "{}: legend entry `{label}` at x = {rightmost} lies over a plot (grid reaches x = {grid})",
            svg.display()
        );
    }
}

/// A command's exit status (-1 when a signal ended it).
pub fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The path of `program` on PATH, if it is there.
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(program))
        .find(|p| p.is_file())
}
