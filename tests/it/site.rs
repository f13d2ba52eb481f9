//! The results site, built from a store of real smoke runs (and one failed run), checked file by
//! file and, where Chromium is installed, in the browser.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::common::{code, stderr, which, Sandbox};

/// A run that fails, so that the site has a failure to explain.
const BROKEN: &str = "id: broken\ntitle: A run that fails\n\
    base: { model: { arch: resnet8 }, fake: { epochs: 3, fail: \"CUDA out of memory <in layer3>\" } }\n\
    axes:\n  act: { key: model.activation, values: [relu] }\n\
    table: { rows: act, columns: [{ metric: top1 }] }\n";

/// One site for every test here: Table 4f trained for real at smoke scale (7 runs) and the
/// failing run, then `repro report`.
fn site() -> &'static (Sandbox, PathBuf) {
    static SITE: OnceLock<(Sandbox, PathBuf)> = OnceLock::new();
    SITE.get_or_init(|| {
        let sb = Sandbox::default();
        let table4f = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/table4f.yaml");
        std::fs::copy(table4f, sb.path("experiments/table4f.yaml")).expect("copy table4f");
        sb.manifest("broken.yaml", BROKEN);
        let out = sb.run(&["run", "table4f", "--profile", "smoke"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(code(&sb.run(&["run", "broken"])), 1);
        let out = sb.run(&["report", "--out", "site"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let dir = sb.path("site");
        (sb, dir)
    })
}

fn html_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read site folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(html_files(&path));
        } else if path.extension().is_some_and(|e| e == "html") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Every `href="…"` and `src="…"` of a page.
fn references(html: &str) -> Vec<String> {
    let mut refs = Vec::new();
    for attr in [" href=\"", " src=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let end = rest.find('"').expect("attribute closes");
            // The pages escape attribute values as HTML does (`/` as `&#x2f;`).
            refs.push(rest[..end].replace("&#x2f;", "/").replace("&amp;", "&"));
        }
    }
    refs
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A page's text with the slashes the HTML escaping writes as `&#x2f;` read back.
fn read_text(path: &Path) -> String {
    read(path).replace("&#x2f;", "/")
}

#[test]
fn every_link_and_image_of_the_site_resolves_to_a_file_in_it() {
    let (_, dir) = site();
    let pages = html_files(dir);
    // index, runs, two tables, eight runs.
    assert_eq!(pages.len(), 12, "{pages:?}");
    let mut targets = BTreeSet::new();
    for page in &pages {
        let html = read(page);
        for r in references(&html) {
            assert!(
                !r.contains("://") && !r.starts_with("//"),
                "{}: the site must work offline, but it links {r}",
                page.display()
            );
            let file = r.split('#').next().unwrap_or_default();
            if file.is_empty() {
                continue;
            }
            let target = page.parent().expect("page folder").join(file);
            assert!(
                target.is_file(),
                "{}: {r} is not a file of the site",
                page.display()
            );
            targets.insert(target.canonicalize().expect("canonical"));
        }
    }
    // Every page is reachable by a link from another.
    for page in pages.iter().filter(|p| !p.ends_with("index.html")) {
        let page = page.canonicalize().expect("canonical");
        assert!(targets.contains(&page), "nothing links {}", page.display());
    }
}

#[test]
fn the_index_shows_the_table_and_the_summary_and_a_failed_run_says_why() {
    let (_, dir) = site();
    let index = read(&dir.join("index.html"));
    let text = index.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(index.contains("AGLU against other activations"), "{index}");
    assert!(text.contains("2 tables, 8 runs: 7 done, 1 failed."), "{text}");
    assert!(
        text.contains("Of 7 cells with a paper number: 0 within noise of the paper, 7 with one seed (no noise estimate)."),
        "{text}"
    );
    // A results table is the first thing on the page after the heading and the summary.
    let table = index.find("<table class=\"results\"").expect("a results table");
    assert_eq!(index.find("<table"), Some(table));
    let main = index.find("<main>").expect("main");
    assert!(
        table - main < 1000,
        "{} bytes before the first table",
        table - main
    );
    let broken = html_files(&dir.join("runs"))
        .into_iter()
        .map(|p| read(&p))
        .find(|html| html.contains("badge st-failed"))
        .expect("the failed run's page");
    assert!(broken.contains("Why it failed"), "{broken}");
    // The error is there, escaped.
    assert!(
        broken.contains("CUDA out of memory &lt;in layer3&gt;"),
        "{broken}"
    );
    assert!(broken.contains("epoch 3  loss"), "its last epochs: {broken}");
}

#[test]
fn a_run_page_has_curves_per_class_accuracy_learned_values_and_config_sources() {
    let (sb, dir) = site();
    let out = sb.run(&["status", "table4f", "--profile", "smoke", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    let aglu = status["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .find(|r| r["labels"]["act"] == "AGLU")
        .expect("the AGLU run")["run"]
        .as_str()
        .expect("id")
        .to_string();
    let page = read_text(&dir.join(format!("runs/{aglu}.html")));
    assert!(
        page.contains("<h2>Learning curves</h2>") && page.contains("<svg"),
        "curves"
    );
    assert!(
        page.contains("role=\"img\" aria-label="),
        "figures carry alt text"
    );
    assert!(
        page.contains("<h2>Per-class accuracy</h2>") && page.contains("band-few"),
        "classes"
    );
    assert!(page.contains("<h2>Learned κ and λ</h2>"), "learned values");
    // The smoke profile set the model; the axis set the activation.
    assert!(
        page.contains("<td><code>model.arch</code></td><td><code>resnet8</code></td><td>experiments/table4f.yaml: profiles.smoke</td>"),
        "config source of model.arch"
    );
    assert!(page.contains("<code>model.activation</code></td><td><code>aglu</code></td><td>experiments/table4f.yaml: axes.act"), "axis source");
    // The runs list's data is valid JSON behind its assignment.
    let js = read(&dir.join("runs.js"));
    let json = js
        .strip_prefix("window.REPRO_RUNS = ")
        .and_then(|s| s.trim_end().strip_suffix(';'))
        .expect("runs.js assigns the runs");
    let rows: Vec<serde_json::Value> = serde_json::from_str(json).expect("runs.js is JSON");
    assert_eq!(rows.len(), 8);
}

/// Headless Chromium: a page's DOM after its scripts ran, and what it printed to the console.
fn chromium(browser: &Path, page: &Path, extra: &[&str]) -> (String, String) {
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium on {}: {}",
        page.display(),
        stderr(&out)
    );
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr(&out))
}

/// Share of pixels that are not (near) white.
fn inked(png: &Path) -> f64 {
    let img = image::open(png).expect("screenshot decodes").to_rgb8();
    let inked = img.pixels().filter(|p| p.0.iter().any(|&c| c < 200)).count();
    inked as f64 / (img.width() * img.height()) as f64
}

#[test]
fn every_page_loads_in_chromium_without_console_errors_and_screenshots_are_not_blank() {
    let Some(browser) = which("chromium").or_else(|| which("chromium-browser")) else {
        eprintln!("skipped: no chromium on PATH (Debian: apt-get install chromium)");
        return;
    };
    let (sb, dir) = site();
    for page in html_files(dir) {
        let (dom, log) = chromium(&browser, &page, &["--dump-dom"]);
        assert!(dom.contains("</html>"), "{}: no document", page.display());
        let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
        assert!(console.is_empty(), "{}: {console:?}", page.display());
        if page.ends_with("runs.html") {
            // The script ran: the filters it shows are visible and it redrew the rows.
            assert!(
                dom.contains("<form id=\"runs-filter\" class=\"filters\">"),
                "{dom}"
            );
        }
    }
    let aglu_page = html_files(&dir.join("runs"))
        .into_iter()
        .next()
        .expect("a run page");
    for (page, shot) in [(dir.join("index.html"), "index.png"), (aglu_page, "run.png")] {
        let shot = sb.path(shot);
        chromium(
            &browser,
            &page,
            &[
                "--hide-scrollbars",
                "--window-size=1280,900",
                &format!("--screenshot={}", shot.display()),
            ],
        );
        let ink = inked(&shot);
        assert!(
            ink > 0.02,
            "{}: screenshot is blank ({ink:.4} inked)",
            page.display()
        );
    }
}

#[test]
fn a_rebuilt_site_drops_the_pages_of_removed_runs_and_keeps_other_files() {
    let sb = Sandbox::default();
    sb.manifest(
        "t.yaml",
        "id: t\ntitle: t\nbase: { model: { arch: resnet8 }, fake: { epochs: 1 } }\n\
         axes:\n  act: { key: model.activation, values: [relu, aglu] }\n\
         table: { rows: act, columns: [{ metric: top1 }] }\n",
    );
    // `run --report DIR` builds the site when the runs end.
    assert_eq!(code(&sb.run(&["run", "t", "--report", "site"])), 0);
    let run_pages = || html_files(&sb.path("site/runs"));
    assert_eq!(run_pages().len(), 2);
    std::fs::write(sb.path("site/notes.txt"), "mine").expect("write a file of the user's");
    let removed = run_pages()[0]
        .file_stem()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert_eq!(code(&sb.run(&["rm", &removed, "--yes"])), 0);
    assert_eq!(code(&sb.run(&["report", "--out", "site"])), 0);
    let left = run_pages();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(!left[0].ends_with(format!("{removed}.html")));
    assert!(!read(&sb.path("site/runs.html")).contains(&removed));
    assert!(
        sb.path("site/notes.txt").is_file(),
        "a file the site did not write stays"
    );
}

#[test]
fn a_profile_without_runs_is_refused_naming_the_ones_there() {
    let (sb, _) = site();
    let out = sb.run(&["report", "--profile", "smok", "--out", "other"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("--profile smok: the store has no runs under it (it has: paper, smoke)"),
        "{}",
        stderr(&out)
    );
    assert!(!sb.path("other").exists(), "nothing written");
}
