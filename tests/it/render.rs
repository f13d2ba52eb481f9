//! Rendering from a store filled with known values: golden Markdown/LaTeX (missing and failed
//! seeds, ties, negative deltas, paper-only rows), template overrides and errors, LaTeX that
//! compiles where a TeX engine exists, and figures that are real images.

use std::collections::BTreeMap;
use std::path::Path;

use repro::config::{load_manifest, LoadedManifest, Overrides};
use repro::plan::expand;
use repro::render::figures::{self, render_figures};
use repro::render::{build, render_table, Format, RenderError, TableModel, Templates};
use repro::result::RunStatus;
use repro::result::{LearnedParam, RunResult};
use repro::store::{Claim, Provenance, Store};

use crate::common::{assert_legend_clear_of_plots, scratch, svg_texts, which, TempDir};

const MANIFEST: &str = r#"
id: golden_t
title: "Activations & friends (top-1 %, ResNet_32)"
paper: { table: "4(f)", metric: top1 }
base: { model: { arch: resnet8 } }
axes:
  act: { key: model.activation, values: [relu, prelu, aglu, gelu, silu, elu] }
seeds: [0, 1, 2]
table:
  rows: act
  columns: [{ metric: top1, label: Avg }, { metric: few, label: Few }, { metric: ece, label: ECE, precision: 2 }]
  tolerance: 0.2
  reported: { relu: [57.4, 35.0, 0.05], prelu: [56.8, 31.0], aglu: [57.9, 21.0, 0.04], gelu: [56.1, 12.0], silu: [57.1], elu: [52.6] }
  reported_rows: { "LDAM_DRW": [55.1, 30.2] }
"#;

/// (top1, few, ece) per seed; `None`: the seed's status instead.
type Seed = Result<(f64, f64, f64), RunStatus>;

fn plan_values() -> BTreeMap<&'static str, [Seed; 3]> {
    use RunStatus::*;
    BTreeMap::from([
        // Complete; Δ top1 = −0.2 (within noise), Δ few = −4.0 (off).
        (
            "relu",
            [
                Ok((57.0, 30.0, 0.05)),
                Ok((57.2, 31.0, 0.06)),
                Ok((57.4, 32.0, 0.07)),
            ],
        ),
        // One seed failed; top1 Δ = +0.4 (off by 4σ); few ties relu exactly.
        (
            "prelu",
            [Ok((57.1, 30.5, 0.04)), Ok((57.3, 31.5, 0.08)), Err(Failed)],
        ),
        // One running, one not run; best top1, tied within noise with relu and prelu.
        (
            "aglu",
            [Ok((58.0, 20.0, 0.03)), Ok((57.0, 21.0, 0.03)), Err(Running)],
        ),
        // One seed: within the declared tolerance in Avg, no noise estimate in Few.
        ("gelu", [Ok((56.0, 10.0, 0.5)), Err(Pending), Err(Pending)]),
        ("silu", [Err(Failed), Err(Failed), Err(Failed)]),
        ("elu", [Err(Pending), Err(Pending), Err(Pending)]),
    ])
}

fn prov() -> Provenance {
    Provenance {
        git_rev: Some("0123456789abcdef".into()),
        dirty: Some(false),
        ..Provenance::default()
    }
}

/// A store holding the manifest's runs with the values above; returns the manifest.
fn filled(dir: &Path, yaml: &str, extras: impl Fn(&str, &mut RunResult)) -> (LoadedManifest, Store) {
    let path = dir.join("m.yaml");
    std::fs::write(&path, yaml).unwrap();
    let m = load_manifest(&path).unwrap();
    let plan = expand(&m, "paper", &Overrides::default()).unwrap();
    let store = Store::open(dir.join("s.sqlite").to_str().unwrap()).unwrap();
    store.register_plan(&plan).unwrap();
    let values = plan_values();
    let prov = prov();
    let claim = Claim {
        owner: "test:1",
        device: "cpu",
        provenance: &prov,
        job: None,
    };
    for member in &plan.members {
        let node = &plan.nodes[member.node];
        let act = member.labels["act"].as_str();
        let seed = values[act][member.seed as usize];
        if seed == Err(RunStatus::Pending) {
            continue;
        }
        store.claim(&node.id, &claim).unwrap().unwrap();
        match seed {
            Ok((top1, few, ece)) => {
                let mut result = RunResult::default()
                    .with_metric("test", "top1", top1)
                    .with_metric("test", "few", few)
                    .with_metric("test", "ece", ece);
                if act == "aglu" {
                    result.learned = (1..=3)
                        .flat_map(|l| {
                            [("kappa", 1.0 + 0.1 * l as f64), ("lambda", 0.5 - 0.05 * l as f64)].map(
                                |(n, v)| LearnedParam {
                                    module: format!("layer{l}.act"),
                                    name: n.into(),
                                    value: v,
                                },
                            )
                        })
                        .collect();
                }
                extras(act, &mut result);
                store.finish(&node.id, "test:1", &result).unwrap();
            }
            Err(RunStatus::Running) => {}
            Err(status) => store.release(&node.id, "test:1", status, Some("boom")).unwrap(),
        }
    }
    (m, store)
}

fn golden_table() -> (TempDir, LoadedManifest, Store, TableModel) {
    let scratch = scratch();
    let (m, store) = filled(scratch.path(), MANIFEST, |_, _| {});
    let runs = store.manifest_runs("golden_t", "paper").unwrap();
    let table = build(&m, "paper", &runs).unwrap();
    (scratch, m, store, table)
}

/// Compares with tests/golden/NAME; `UPDATE_GOLDEN=1` rewrites the file instead.
fn check_golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create)", path.display()));
    assert_eq!(actual, expected, "{name} differs from {}", path.display());
}

#[test]
fn table_model_counts_ties_and_verdicts() {
    let (_s, _m, _store, t) = golden_table();
    let row = |label: &str| t.rows.iter().find(|r| r.label == label).unwrap();
    let relu = &row("relu").cells;
    assert_eq!(relu[0].text.mean.as_deref(), Some("57.2"));
    assert_eq!(relu[0].text.delta.as_deref(), Some("-0.2"));
    assert_eq!(relu[0].text.verdict.as_deref(), Some("within noise"));
    assert_eq!(relu[1].text.verdict.as_deref(), Some("off by 6.9 sigma"));
    let prelu = &row("prelu").cells;
    assert_eq!(prelu[0].text.status.as_deref(), Some("2/3 seeds, 1 failed"));
    assert_eq!(prelu[0].text.delta.as_deref(), Some("+0.4"));
    assert!(relu[1].best && prelu[1].best, "exact tie in Few");
    let aglu = &row("aglu").cells;
    assert!(
        aglu[0].best && relu[0].best && prelu[0].best,
        "ties within noise in Avg"
    );
    assert!(!aglu[1].best);
    assert_eq!(aglu[0].text.status.as_deref(), Some("2/3 seeds, 1 running"));
    assert!(aglu[2].best, "ECE: lower is better");
    let gelu = &row("gelu").cells;
    assert_eq!(gelu[0].text.verdict.as_deref(), Some("within tolerance"));
    assert_eq!(gelu[1].text.verdict.as_deref(), Some("no noise estimate"));
    assert_eq!(gelu[1].text.delta.as_deref(), Some("-2.0"));
    assert_eq!(row("silu").cells[0].text.status.as_deref(), Some("failed"));
    assert_eq!(row("silu").cells[0].text.mean, None);
    assert_eq!(row("elu").cells[0].text.status.as_deref(), Some("not run"));
    assert_eq!(t.revisions, ["0123456"]);
    assert_eq!((t.cells_complete, t.cells_total), (3, 18));
    assert_eq!(t.reported_rows[0].cells[0].text.paper.as_deref(), Some("55.1"));
}

#[test]
fn golden_markdown_latex_csv() {
    let (_s, _m, _store, t) = golden_table();
    let templates = Templates::new(None).unwrap();
    for format in [Format::Md, Format::Latex, Format::Csv] {
        for (name, text) in render_table(&templates, &t, format).unwrap() {
            check_golden(&name, &text);
        }
    }
}

#[test]
fn user_templates_override_and_errors_name_file_and_line() {
    let (s, _m, _store, t) = golden_table();
    let dir = s.path().join("templates");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("table.md.j2"),
        "{{ table.title }} / {{ table.rows[0].label }}\n",
    )
    .unwrap();
    let templates = Templates::new(Some(&dir)).unwrap();
    let out = templates.render("table.md.j2", &t).unwrap();
    // Escaped for Markdown: `_` and `&` of the title stay text.
    assert_eq!(out, "Activations & friends (top-1 %, ResNet\\_32) / relu\n");
    // The built-in compact template is still there.
    assert!(templates
        .render("table.compact.md.j2", &t)
        .unwrap()
        .contains("| act |"));

    std::fs::write(dir.join("table.tex.j2"), "ok\n{% for x in %}\n").unwrap();
    let err = Templates::new(Some(&dir))
        .unwrap()
        .render("table.tex.j2", &t)
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, RenderError::Template { line: Some(2), .. }),
        "{msg}"
    );
    assert!(
        msg.contains(&dir.join("table.tex.j2").display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("line 2"), "{msg}");
    assert!(matches!(
        Templates::new(Some(&s.path().join("nope"))),
        Err(RenderError::TemplateDir(_))
    ));
}

#[test]
fn unsupported_manifest_shows_paper_numbers_and_reason() {
    let s = scratch();
    let yaml = "id: u\ntitle: ImageNet only\nunsupported: needs the ImageNet-LT images\n\
                axes:\n  act: { key: model.activation, values: [relu, aglu] }\n\
                table: { rows: act, columns: [{ metric: top1 }], reported: { relu: [57.4], aglu: [57.9] } }\n";
    let path = s.path().join("u.yaml");
    std::fs::write(&path, yaml).unwrap();
    let m = load_manifest(&path).unwrap();
    let t = build(&m, "paper", &[]).unwrap();
    let md = Templates::new(None).unwrap().render("table.md.j2", &t).unwrap();
    assert!(md.contains("Not run here: needs the ImageNet-LT images"), "{md}");
    assert!(md.contains("| aglu | not run | 57.9 |  |"), "{md}");
}

/// Compiles the LaTeX tables with pdflatex when it is installed.
#[test]
fn latex_compiles_where_tex_is_available() {
    let Some(pdflatex) = which("pdflatex") else {
        println!("skipped: no pdflatex on PATH, the LaTeX tables were not compiled");
        return;
    };
    let (s, _m, _store, t) = golden_table();
    let templates = Templates::new(None).unwrap();
    let tables: Vec<String> = render_table(&templates, &t, Format::Latex)
        .unwrap()
        .into_iter()
        .map(|(_, text)| text)
        .collect();
    let doc = format!(
        "\\documentclass{{article}}\n\\usepackage[utf8]{{inputenc}}\n\\usepackage{{booktabs}}\n\
         \\usepackage[margin=1cm,landscape]{{geometry}}\n\\begin{{document}}\n{}\n\\end{{document}}\n",
        tables.join("\n")
    );
    std::fs::write(s.path().join("doc.tex"), doc).unwrap();
    let out = std::process::Command::new(pdflatex)
        .current_dir(s.path())
        .args(["-interaction=nonstopmode", "-halt-on-error", "doc.tex"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pdflatex failed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The reliability diagram and analyses a trained run records, which the figures draw.
fn with_analyses(result: &mut RunResult) {
    use repro::result::{AttentionStats, Bin, ClassLogitFit, Fit};
    result.reliability = (0..10)
        .map(|i| {
            let lo = i as f64 / 10.0;
            Bin {
                lower: lo,
                upper: lo + 0.1,
                count: 5 + i,
                mean_confidence: lo + 0.05,
                accuracy: (lo * 0.9).min(1.0),
            }
        })
        .collect();
    // Quantiles of Gumbel(−0.5, 1.2): a histogram the fitted curve should follow.
    let logits: Vec<f32> = (0..400)
        .map(|i| (-0.5 - 1.2 * (-((i as f64 + 0.5) / 400.0).ln()).ln()) as f32)
        .collect();
    result.analyses.attention = (1..=4)
        .map(|l| AttentionStats {
            layer: format!("layer{l}"),
            frequent_entropy: 2.0 - 0.1 * l as f64,
            rare_entropy: 2.2 - 0.2 * l as f64,
            frequent_variance: 0.01 * l as f64,
            rare_variance: 0.02 * l as f64,
        })
        .collect();
    let fit = |loc, scale, ks| Fit { loc, scale, ks };
    result.analyses.ks = vec![
        ClassLogitFit {
            class: 3,
            logits,
            gumbel: fit(-0.5, 1.2, 0.041),
            logistic: fit(0.0, 1.0, 0.063),
        },
        ClassLogitFit {
            class: 4,
            logits: Vec::new(),
            gumbel: fit(0.1, 1.0, 0.2),
            logistic: fit(0.0, 1.0, 0.1),
        },
    ];
}

fn assert_image(path: &Path) {
    assert!(path.is_file(), "{} missing", path.display());
    if path.extension().is_some_and(|e| e == "svg") {
        let svg = std::fs::read_to_string(path).unwrap();
        assert!(
            svg.contains("<svg") && svg.contains("<text") && svg.len() > 1000,
            "{}",
            path.display()
        );
        return;
    }
    let img = image::open(path).unwrap().to_rgb8();
    let (w, h) = img.dimensions();
    assert!(w >= 480 && h >= 420, "{}: {w}x{h}", path.display());
    let first = *img.get_pixel(0, 0);
    let distinct = img.pixels().filter(|p| **p != first).count();
    assert!(
        distinct > 5_000,
        "{} is nearly blank ({distinct} pixels drawn)",
        path.display()
    );
}

#[test]
fn figures_render_as_non_empty_images() {
    let s = scratch();
    // Analyses and reliability bins for aglu only: the others lack bins, which every trained run
    // records, and that is reported; analyses they never asked for are not.
    let (m, store) = filled(s.path(), MANIFEST, |act, result| {
        if act == "aglu" {
            with_analyses(result);
        }
    });
    let out = s.path().join("figures");
    let report = render_figures(&store, &m, "paper", &out).unwrap();
    let names: Vec<String> = report
        .written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "reliability-aglu.png",
        "reliability-aglu.svg",
        "attention-aglu.png",
        "ks-aglu-class3.svg",
        "kappa-lambda.png",
        "kappa-lambda.svg",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    for path in &report.written {
        assert_image(path);
    }
    let legends: [(&str, &[&str]); 4] = [
        ("reliability-aglu.svg", &["accuracy", "perfect calibration"]),
        ("attention-aglu.svg", &["frequent", "rare"]),
        (
            "ks-aglu-class3.svg",
            &["logits (n = 400)", "Gumbel (KS 0.041)", "Logistic (KS 0.063)"],
        ),
        ("kappa-lambda.svg", &["aglu"]),
    ];
    for (file, labels) in legends {
        let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
        assert_legend_clear_of_plots(&out.join(file), &labels);
    }
    assert_eq!(
        report.skipped,
        ["Figure 8 (reliability): no calibration bins recorded by relu, prelu, gelu"]
    );
}

/// The learned values of run `aglu` of `MANIFEST`, replaced by `learned`; its κ/λ figure.
fn kappa_lambda_svg(s: &TempDir, learned: &[(&str, &str, f64)]) -> String {
    let learned: Vec<LearnedParam> = learned
        .iter()
        .map(|(module, name, value)| LearnedParam {
            module: module.to_string(),
            name: name.to_string(),
            value: *value,
        })
        .collect();
    let (m, store) = filled(s.path(), MANIFEST, |act, result| {
        if act == "aglu" {
            result.learned = learned.clone();
        }
    });
    let out = s.path().join("figures");
    render_figures(&store, &m, "paper", &out).unwrap();
    std::fs::read_to_string(out.join("kappa-lambda.svg")).unwrap()
}

/// Backbone activations and attention gates number their layers apart and learn different
/// values: drawn on shared axes, they read as one curve.
#[test]
fn kappa_lambda_draws_each_module_kind_in_panels_of_its_own() {
    let s = scratch();
    let svg = kappa_lambda_svg(
        &s,
        &[
            ("layer1.act", "kappa", 1.1),
            ("layer2.act", "kappa", 1.2),
            ("layer1.0.attention.gate", "kappa", -0.2),
            ("layer1.0.attention.gate", "lambda", 0.4),
        ],
    );
    let texts: Vec<String> = svg_texts(&svg).into_iter().map(|(_, t)| t).collect();
    for caption in [
        "learned κ of activations",
        "learned λ of activations",
        "learned κ of attention gates",
        "learned λ of attention gates",
    ] {
        assert!(texts.iter().any(|t| t == caption), "{caption} not in {texts:?}");
    }
}

/// A tick a rounding error below zero was labelled `-0.0`.
#[test]
fn no_tick_reads_negative_zero() {
    assert_eq!(figures::tick(&-1.3877787807814457e-17), "0.0");
    assert_eq!(figures::tick(&-0.25), "-0.25");
    assert_eq!(figures::tick(&0.5), "0.5");
    let s = scratch();
    // Fig. 6's smoke APA gates: an axis from -0.29 to 0.06 puts a tick at -1e-17.
    let svg = kappa_lambda_svg(
        &s,
        &[
            ("layer1.0.attention.gate", "kappa", -0.27),
            ("layer2.0.attention.gate", "kappa", -0.1),
            ("layer3.0.attention.gate", "kappa", 0.04),
        ],
    );
    let ticks: Vec<String> = svg_texts(&svg).into_iter().map(|(_, t)| t).collect();
    assert!(ticks.iter().any(|t| t == "0.0"), "{ticks:?}");
    assert!(!ticks.iter().any(|t| t == "-0.0" || t == "-0"), "{ticks:?}");
}

#[test]
fn representative_run_is_the_lowest_finished_seed() {
    let (_s, _m, store, _t) = golden_table();
    let runs = store.manifest_runs("golden_t", "paper").unwrap();
    let reps = figures::representatives(&runs, "train");
    let labels: Vec<(&str, u64)> = reps.iter().map(|(l, r)| (l.as_str(), r.seed)).collect();
    assert_eq!(labels, [("relu", 0), ("prelu", 0), ("aglu", 0), ("gelu", 0)]);
}
