//! `repro render` and the table at the end of `repro run`, through the binary with the fake
//! trainer (`fake:` in the run config).

use std::path::Path;
use std::process::Output;

use crate::common::Sandbox;

/// A sandbox with a fake two-activation table `t` and an unsupported table `u`.
fn sandbox() -> Sandbox {
    let sb = Sandbox::default();
    sb.manifest(
        "t.yaml",
        "id: t\ntitle: Fake table\nbase: { model: { arch: resnet8 }, fake: { epochs: 1 } }\n\
         axes:\n  act: { key: model.activation, values: [relu, aglu] }\nseeds: [0, 1]\n\
         table: { rows: act, columns: [{ metric: top1, label: Avg }, { metric: top5 }],\n\
         \x20        reported: { relu: [57.4, 80.0], aglu: [57.9] }, reported_rows: { LDAM: [55.0] } }\n",
    );
    sb.manifest(
        "u.yaml",
        "id: u\ntitle: Not here\nunsupported: needs ImageNet-LT\n\
         axes:\n  act: { key: model.activation, values: [relu, aglu] }\n\
         table: { rows: act, columns: [{ metric: top1 }], reported: { relu: [57.4], aglu: [57.9] } }\n",
    );
    sb
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn is_file(p: &Path) -> bool {
    p.is_file() && std::fs::metadata(p).map(|m| m.len() > 0).unwrap_or(false)
}

#[test]
fn run_ends_by_printing_the_table_and_render_writes_every_format() {
    let sb = sandbox();
    let out = sb.run(&["run", "t"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("### Fake table"), "{stdout}");
    assert!(
        stdout.contains("| act | Avg | paper | Δ | top5 | paper | Δ |"),
        "{stdout}"
    );
    assert!(stdout.contains("| LDAM (paper) | — | 55.0 |"), "{stdout}");
    assert!(
        stdout.contains("Profile paper; seeds 0, 1 (2 per cell)"),
        "{stdout}"
    );
    for f in ["t.md", "t.compact.md", "t.tex", "t.compact.tex"] {
        assert!(is_file(&sb.path(&format!("results/tables/{f}"))), "{f}");
    }

    std::fs::create_dir_all(sb.path("tpl")).unwrap();
    std::fs::write(
        sb.path("tpl/table.html.j2"),
        "<h1>{{ table.title }}</h1>{% for r in table.rows %}<p>{{ r.label }}</p>{% endfor %}\n",
    )
    .unwrap();
    let out = sb.run(&[
        "render",
        "--format",
        "csv,json",
        "--figures",
        "--templates",
        "tpl",
        "--template",
        "table.html.j2",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("t (paper): 4/4 cells complete"), "{stdout}");
    let csv = std::fs::read_to_string(sb.path("results/tables/t.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 3, "{csv}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sb.path("results/tables/t.json")).unwrap()).unwrap();
    assert_eq!(json["rows"][0]["cells"][0]["seeds"]["done"], 2);
    let html = std::fs::read_to_string(sb.path("results/tables/t.html")).unwrap();
    assert_eq!(html, "<h1>Fake table</h1><p>relu</p><p>aglu</p>\n");
    // Unsupported manifests render the paper's numbers without any run.
    assert!(stdout.contains("u (paper): 0/2 cells complete"), "{stdout}");
    let u: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sb.path("results/tables/u.json")).unwrap()).unwrap();
    assert_eq!(u["unsupported"], "needs ImageNet-LT");
    assert_eq!(u["rows"][1]["cells"][0]["paper"], 57.9);
    assert_eq!(u["rows"][1]["cells"][0]["text"]["status"], "not run");
    // Nothing to say about the figures of a table that cannot run.
    assert!(!stdout.contains("skipped: u"), "{stdout}");
    // The fake trainer records a learned κ but no reliability diagram.
    assert!(is_file(&sb.path("results/figures/t/kappa-lambda.png")));
    assert!(
        stdout.contains("skipped: Figure 8 (reliability): no calibration bins recorded by relu, aglu"),
        "{stdout}"
    );
}

#[test]
fn render_reports_bad_input_with_status_2() {
    let sb = sandbox();
    let out = sb.run(&["render", "t"]);
    assert_eq!(out.status.code(), Some(2), "no store yet: {:?}", text(&out));
    assert!(text(&out).1.contains("no results store"), "{:?}", text(&out));
    assert_eq!(sb.run(&["run", "t"]).status.code(), Some(0));
    let out = sb.run(&["render", "nosuch"]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));

    std::fs::create_dir_all(sb.path("tpl")).unwrap();
    std::fs::write(
        sb.path("tpl/table.md.j2"),
        "line one\n{{ table.title | nosuchfilter }}\n",
    )
    .unwrap();
    let out = sb.run(&["render", "t", "--templates", "tpl"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("tpl/table.md.j2, line 2"), "{stderr}");
}

/// The compact LaTeX table explained its star (`* not all seeds finished`) even when no cell
/// had one.
#[test]
fn compact_latex_explains_the_star_only_when_a_cell_has_it() {
    let sb = sandbox();
    assert_eq!(sb.run(&["run", "t"]).status.code(), Some(0));
    let compact = || std::fs::read_to_string(sb.path("results/tables/t.compact.tex")).unwrap();
    let tex = compact();
    assert!(!tex.contains("textsuperscript"), "{tex}");
    assert!(!tex.contains("not all seeds finished"), "{tex}");

    let status = sb.run(&["status", "t", "--json"]);
    let runs: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let one = runs["runs"][0]["run"].as_str().unwrap();
    assert_eq!(sb.run(&["rm", one, "--yes"]).status.code(), Some(0));
    assert_eq!(sb.run(&["render", "t"]).status.code(), Some(0));
    let tex = compact();
    assert!(tex.contains("textsuperscript{*}"), "{tex}");
    assert!(tex.contains("* not all seeds finished"), "{tex}");
}

/// A fake table with one row per learning rate: `n` series in every figure.
fn many_series(sb: &Sandbox, n: usize) -> Vec<String> {
    let labels: Vec<String> = (1..=n).map(|i| format!("lr {i}")).collect();
    let values: Vec<String> = (1..=n).map(|i| format!("{}", i as f64 / 1000.0)).collect();
    sb.manifest(
        "many.yaml",
        &format!(
            "id: many\ntitle: Many series\nbase: {{ model: {{ arch: resnet8 }}, fake: {{ epochs: 1 }} }}\n\
             axes:\n  lr: {{ key: train.lr, values: [{}], labels: [{}] }}\nseeds: [0]\n\
             table: {{ rows: lr, columns: [{{ metric: top1 }}] }}\n",
            values.join(", "),
            labels.join(", ")
        ),
    );
    labels
}

/// With as many series as init-ablation's κ/λ figure once had, the legend covered the plots and
/// colours came round again.
#[test]
fn kappa_lambda_legend_clears_the_plots_and_no_two_series_share_a_colour() {
    let sb = Sandbox::default();
    let labels = many_series(&sb, 24);
    assert_eq!(sb.run(&["run", "many"]).status.code(), Some(0));
    let out = sb.run(&["render", "many", "--figures"]);
    assert!(out.status.success(), "{:?}", text(&out));
    let svg = sb.path("results/figures/many/kappa-lambda.svg");
    crate::common::assert_legend_clear_of_plots(&svg, &labels);
    let colours = crate::common::svg_line_colours(&std::fs::read_to_string(&svg).unwrap());
    assert_eq!(colours.len(), labels.len(), "{colours:?}");
    let png = image::open(sb.path("results/figures/many/kappa-lambda.png")).unwrap();
    assert!(
        png.height() >= 24 * 18,
        "the legend fits: height {}",
        png.height()
    );
}

/// Render listed, for every run, each analysis it had not asked for; now it says something
/// only about data a run should have, in one line per figure.
#[test]
fn render_notes_only_what_runs_lack_and_should_have() {
    let sb = sandbox();
    sb.manifest(
        "att.yaml",
        "id: att\ntitle: Attention asked for\n\
         base: { model: { arch: resnet8 }, fake: { epochs: 1 }, eval: { analyses: { attention: true } } }\n\
         axes:\n  act: { key: model.activation, values: [relu, aglu] }\n\
         table: { rows: act, columns: [{ metric: top1 }] }\n",
    );
    for m in ["t", "att"] {
        assert_eq!(sb.run(&["run", m]).status.code(), Some(0));
    }
    let out = sb.run(&["render", "--figures"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let mut skipped: Vec<&str> = stdout.lines().filter(|l| l.contains("skipped")).collect();
    skipped.sort_unstable();
    // The fake trainer records no reliability bins, which every real run has.
    let reliability = "skipped: Figure 8 (reliability): no calibration bins recorded by relu, aglu";
    let attention = "skipped: Figures 2, 5 (attention): eval.analyses.attention is on, but nothing \
                     was recorded by relu, aglu";
    assert_eq!(
        skipped,
        [reliability, reliability, attention].map(|l| format!("  {l}")),
        "{stdout}"
    );
}
