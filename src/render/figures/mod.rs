//! The paper's figures from stored runs, as PNG and SVG (plotters): learned κ and λ per layer
//! (Figure 6), reliability diagrams (Figure 8), attention entropy and variance for frequent and
//! rare batches per layer (Figures 2, 5), and one class's logits with fitted Gumbel and
//! Logistic densities and their KS distances (Figure 1); and, not in the paper, each run's
//! learning curves and a table's rows' curves on one plot.
//!
//! One representative run per table point (its lowest finished seed) is drawn. A figure is
//! drawn wherever its data are; only data a run should have but lacks is reported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::chart::MeshStyle;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

mod attention;
mod curves;
mod kappa_lambda;
mod ks;
mod legend;
mod reliability;

pub use attention::AttentionFigure;
pub use curves::{CurveComparison, Curves, LearningCurves};
pub use kappa_lambda::KappaLambda;
pub use ks::KsFigure;
pub use legend::{Entry, Marker, SeriesStyle, Swatch};
pub use reliability::Reliability;

use super::RenderError;
use crate::config::LoadedManifest;
use crate::result::{ClassLogitFit, LearnedParam, RunResult, RunStatus};
use crate::store::{MemberRun, Store};

/// Height of a figure's plots, unless it has rows of them.
const PLOT_HEIGHT: u32 = 420;
/// Width of one chart of a figure.
const PANEL_WIDTH: u32 = 480;
const FONT: &str = "sans-serif";

/// What `render_figures` made and what it could not.
#[derive(Debug, Default)]
pub struct FigureReport {
    pub written: Vec<PathBuf>,
    /// One line per figure not drawn, saying why.
    pub skipped: Vec<String>,
}

/// Learned κ and λ of one run, per activation module in network order (per-channel values
/// averaged per module).
#[derive(Debug, Clone, Default)]
pub struct LearnedCurves {
    pub modules: Vec<String>,
    pub kappa: Vec<Option<f64>>,
    pub lambda: Vec<Option<f64>>,
}

impl LearnedCurves {
    pub fn from_params(params: &[LearnedParam]) -> Self {
        // Keyed by natural order of the module name; per parameter name a (sum, count).
        type Sums = BTreeMap<String, (f64, usize)>;
        let mut acc: BTreeMap<Vec<Chunk>, (String, Sums)> = BTreeMap::new();
        for p in params {
            let base = p.name.split('.').next().unwrap_or(&p.name).to_string();
            let entry = acc
                .entry(natural_key(&p.module))
                .or_insert_with(|| (p.module.clone(), BTreeMap::new()));
            let slot = entry.1.entry(base).or_insert((0.0, 0));
            slot.0 += p.value;
            slot.1 += 1;
        }
        let mut out = LearnedCurves::default();
        for (_, (module, names)) in acc {
            let mean = |n: &str| names.get(n).map(|(s, c)| s / *c as f64);
            out.modules.push(module);
            out.kappa.push(mean("kappa"));
            out.lambda.push(mean("lambda"));
        }
        out
    }

    /// One set of curves per kind of module (`gate`, `act`: the last name component without
    /// its number), since attention gates and backbone activations learn different values.
    pub fn by_kind(params: &[LearnedParam]) -> Vec<(String, LearnedCurves)> {
        let mut kinds: BTreeMap<String, Vec<LearnedParam>> = BTreeMap::new();
        for p in params {
            let last = p.module.rsplit('.').next().unwrap_or(&p.module);
            let kind = last.trim_end_matches(|c: char| c.is_ascii_digit());
            kinds.entry(kind.to_string()).or_default().push(p.clone());
        }
        kinds
            .into_iter()
            .map(|(kind, ps)| (kind, LearnedCurves::from_params(&ps)))
            .filter(|(_, c)| !c.is_empty())
            .collect()
    }

    fn is_empty(&self) -> bool {
        self.kappa.iter().chain(&self.lambda).all(Option::is_none)
    }
}

/// `layer10` after `layer2`: digits compare as numbers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Chunk {
    Num(u64),
    Text(String),
}

fn natural_key(s: &str) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        let digit = c.is_ascii_digit();
        let end = rest
            .find(|ch: char| ch.is_ascii_digit() != digit)
            .unwrap_or(rest.len());
        let (part, tail) = rest.split_at(end);
        out.push(match part.parse() {
            Ok(n) if digit => Chunk::Num(n),
            _ => Chunk::Text(part.to_string()),
        });
        rest = tail;
    }
    out
}

/// One representative run per table point: the lowest finished seed of each label set at
/// `stage`, in the store's (plan) order.
pub fn representatives<'a>(runs: &'a [MemberRun], stage: &str) -> Vec<(String, &'a MemberRun)> {
    let mut chosen: Vec<(String, &MemberRun)> = Vec::new();
    for run in runs
        .iter()
        .filter(|r| r.stage == stage && r.status == RunStatus::Done)
    {
        let label = run.labels.values().cloned().collect::<Vec<_>>().join(" / ");
        match chosen.iter_mut().find(|(l, _)| *l == label) {
            Some(slot) if run.seed < slot.1.seed => slot.1 = run,
            Some(_) => {}
            None => chosen.push((label, run)),
        }
    }
    chosen
}

/// Runs that lack data they should have, by what is missing: one line per figure in the
/// report, however many runs it concerns.
#[derive(Default)]
struct Missing(BTreeMap<&'static str, Vec<String>>);

impl Missing {
    fn add(&mut self, what: &'static str, label: &str) {
        self.0.entry(what).or_default().push(label.to_string());
    }

    fn lines(self) -> impl Iterator<Item = String> {
        self.0
            .into_iter()
            .map(|(what, labels)| format!("{what} {}", labels.join(", ")))
    }
}

const NO_RELIABILITY: &str = "Figure 8 (reliability): no calibration bins recorded by";
const NO_ATTENTION: &str =
    "Figures 2, 5 (attention): eval.analyses.attention is on, but nothing was recorded by";
const NO_KS: &str = "Figure 1 (logits): eval.analyses.ks is on, but no logits were recorded by";

/// Whether a run's config switched analysis `name` on (`eval.analyses.<name>`).
fn asked_for(config: &serde_json::Value, name: &str) -> bool {
    config
        .pointer(&format!("/eval/analyses/{name}"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

/// Draws every figure the manifest's runs have data for into `out_dir`.
pub fn render_figures(
    store: &Store,
    m: &LoadedManifest,
    profile: &str,
    out_dir: &Path,
) -> Result<FigureReport, RenderError> {
    let runs = store.manifest_runs(&m.manifest.id, profile)?;
    let stage = super::table::table_stage(m);
    let reps = representatives(&runs, &stage);
    let mut report = FigureReport::default();
    if reps.is_empty() {
        // An unsupported manifest never has runs, and its table already says why.
        if m.manifest.unsupported.is_none() {
            report
                .skipped
                .push(format!("{}: no finished runs at stage `{stage}`", m.manifest.id));
        }
        return Ok(report);
    }
    std::fs::create_dir_all(out_dir).map_err(|source| RenderError::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let mut learned = Vec::new();
    let mut curves = Vec::new();
    let mut missing = Missing::default();
    let mut slugs = Slugs::default();
    for (label, run) in &reps {
        let result = store.result(&run.run_id)?;
        let config = store.run_config(&run.run_id)?;
        let figures = RunFigures {
            label,
            slug: slugs.unique(label),
            result: &result,
            config: &config,
        };
        report.written.extend(figures.save(out_dir, &mut missing)?);
        let kinds = LearnedCurves::by_kind(&result.learned);
        if !kinds.is_empty() {
            learned.push((label.clone(), kinds));
        }
        let run_curves = Curves::of(&result);
        if !run_curves.is_empty() {
            curves.push((label.clone(), run_curves));
        }
    }
    if !curves.is_empty() {
        report
            .written
            .extend(save(&CurveComparison { runs: &curves }, &out_dir.join("curves"))?);
    }
    if !learned.is_empty() {
        report.written.extend(save(
            &KappaLambda { runs: &learned },
            &out_dir.join("kappa-lambda"),
        )?);
    }
    report.skipped.extend(missing.lines());
    Ok(report)
}

/// The figures of one representative run: its reliability diagram, attention statistics and
/// logit distributions.
struct RunFigures<'a> {
    label: &'a str,
    /// The label as a file name.
    slug: String,
    result: &'a RunResult,
    config: &'a serde_json::Value,
}

impl RunFigures<'_> {
    /// Saves each figure the run has data for into `out_dir`; notes in `missing` what the run
    /// should have had.
    fn save(&self, out_dir: &Path, missing: &mut Missing) -> Result<Vec<PathBuf>, RenderError> {
        let (label, result) = (self.label, self.result);
        let stem = |figure: &str| out_dir.join(format!("{figure}-{}", self.slug));
        let mut written = Vec::new();
        let curves = Curves::of(result);
        if !curves.is_empty() {
            written.extend(save(&LearningCurves { curves: &curves }, &stem("curves"))?);
        }
        if result.reliability.iter().any(|b| b.count > 0) {
            let figure = Reliability {
                title: format!("Reliability: {label}"),
                bins: &result.reliability,
                ece: result.metric("test", "ece"),
            };
            written.extend(save(&figure, &stem("reliability"))?);
        } else {
            // Every trained run records its calibration: a run without it is worth a word.
            missing.add(NO_RELIABILITY, label);
        }
        let analyses = &result.analyses;
        if !analyses.attention.is_empty() {
            let figure = AttentionFigure {
                title: label.to_string(),
                layers: &analyses.attention,
            };
            written.extend(save(&figure, &stem("attention"))?);
        } else if asked_for(self.config, "attention") {
            missing.add(NO_ATTENTION, label);
        }
        let with_samples: Vec<&ClassLogitFit> =
            analyses.ks.iter().filter(|ks| !ks.logits.is_empty()).collect();
        if with_samples.is_empty() && asked_for(self.config, "ks") {
            missing.add(NO_KS, label);
        }
        for ks in with_samples {
            let class = ks.class;
            let figure = KsFigure {
                title: format!("{label}: logits of class {class}"),
                ks,
            };
            written.extend(save(
                &figure,
                &with_suffix(&stem("ks"), &format!("-class{class}")),
            )?);
        }
        Ok(written)
    }
}

/// A file-name-safe form of a row label: letters, digits, `-` and `.` kept, every other run of
/// characters one `_`.
fn slug(label: &str) -> String {
    let mut s = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
            s.push(c);
        } else if !s.ends_with('_') {
            s.push('_');
        }
    }
    let s = s.trim_matches('_');
    if s.is_empty() {
        "run".into()
    } else {
        s.to_string()
    }
}

/// Slugs handed out so far in one render, so that two labels that read alike still get two
/// files (`-2`, `-3` … after the first).
#[derive(Default)]
struct Slugs(std::collections::HashSet<String>);

impl Slugs {
    fn unique(&mut self, label: &str) -> String {
        let base = slug(label);
        let mut candidate = base.clone();
        let mut n = 1;
        while !self.0.insert(candidate.clone()) {
            n += 1;
            candidate = format!("{base}-{n}");
        }
        candidate
    }
}

type DrawResult = Result<(), String>;

/// A figure that can draw itself on any plotters backend: its plots, and a legend that `save`
/// puts in a column to their right.
pub trait Figure {
    /// Width and height of the plots, without the legend.
    fn plot_size(&self) -> (u32, u32);
    fn legend(&self) -> Vec<Entry>;
    fn draw_plots<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult;
}

fn fail<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Plotters needs a font for any text; the bundled DejaVu Sans makes figures independent of
/// the machine's fonts.
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bundled font is valid; a failure would only mean figures without text.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

/// `stem` + `suffix`. Not `with_extension`: a stem made from a label such as `U(1,1.3)` has
/// dots of its own, and replacing from the last one would make two labels one file.
fn with_suffix(stem: &Path, suffix: &str) -> PathBuf {
    let mut name = stem.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Pixel size of the whole figure: the plots, widened by the legend column and heightened
/// where the legend is taller than they are.
fn figure_size(figure: &impl Figure, entries: &[Entry]) -> (u32, u32) {
    let (w, h) = figure.plot_size();
    (w + legend::width(entries), h.max(legend::height(entries)))
}

fn draw_figure<DB: DrawingBackend>(
    figure: &impl Figure,
    entries: &[Entry],
    root: &DrawingArea<DB, Shift>,
) -> DrawResult {
    root.fill(&WHITE).map_err(fail)?;
    let (plots, key) = root.split_horizontally(figure.plot_size().0);
    figure.draw_plots(&plots)?;
    legend::draw(&key, entries)?;
    root.present().map_err(fail)
}

/// The figure as an SVG document; the error says what failed to draw.
pub fn svg(figure: &impl Figure) -> Result<String, String> {
    register_font();
    let entries = figure.legend();
    let size = figure_size(figure, &entries);
    let mut svg = String::new();
    draw_figure(
        figure,
        &entries,
        &SVGBackend::with_string(&mut svg, size).into_drawing_area(),
    )?;
    Ok(svg)
}

/// Writes `<stem>.svg` and `<stem>.png`.
pub fn save(figure: &impl Figure, stem: &Path) -> Result<Vec<PathBuf>, RenderError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |message: String| RenderError::Figure { path, message }
    };
    let entries = figure.legend();
    let size = figure_size(figure, &entries);
    let svg_path = with_suffix(stem, ".svg");
    let png_path = with_suffix(stem, ".png");
    let svg = svg(figure).map_err(err(&svg_path))?;
    std::fs::write(&svg_path, svg).map_err(|source| RenderError::Io {
        path: svg_path.clone(),
        source,
    })?;
    let mut pixels = vec![0u8; (size.0 * size.1 * 3) as usize];
    draw_figure(
        figure,
        &entries,
        &BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area(),
    )
    .map_err(err(&png_path))?;
    image::save_buffer(&png_path, &pixels, size.0, size.1, image::ExtendedColorType::Rgb8)
        .map_err(fail)
        .map_err(err(&png_path))?;
    Ok(vec![png_path, svg_path])
}

fn font(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().into()
}

/// A tick label as plotters writes it, except that a tick a rounding error below zero reads
/// `0.0` rather than `-0.0`.
pub fn tick(value: &f64) -> String {
    let label = <RangedCoordf64 as ValueFormatter<f64>>::format(value);
    match label.strip_prefix('-') {
        Some(zero) if zero.chars().all(|c| c == '0' || c == '.') => zero.to_string(),
        _ => label,
    }
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The grid, axis descriptions, fonts and tick labels every chart shares; callers add their
/// own settings and draw it.
fn mesh<'a, 'b, DB: DrawingBackend>(
    chart: &'b mut Chart<'a, DB>,
    x_desc: &str,
    y_desc: &str,
) -> MeshStyle<'a, 'b, RangedCoordf64, RangedCoordf64, DB> {
    let mut mesh = chart.configure_mesh();
    // Grid lines at the labelled ticks only: the fine lines between them made the SVGs five
    // times larger (a run page carries two) and the plots no easier to read.
    mesh.max_light_lines(0)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style(font(12))
        .axis_desc_style(font(14));
    mesh
}

/// Padded range of values, never empty.
fn range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    // A flat series (one point, say) gets a range around its value, not a sliver of it
    // labelled in millionths.
    let pad = match hi - lo {
        span if span > 1e-9 * hi.abs().max(1.0) => (span * 0.08).max(1e-3),
        _ => (hi.abs() * 0.05).max(0.05),
    };
    (lo - pad)..(hi + pad)
}

/// Lines with markers over a whole-numbered x (layer, epoch), one per series; their labels are
/// in the figure's legend.
fn whole_x_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    series: &[(SeriesStyle, Vec<(f64, f64)>)],
) -> DrawResult {
    let points = || series.iter().flat_map(|(_, p)| p.iter());
    let n = points().map(|p| p.0).fold(1.0, f64::max);
    let y = range(points().map(|p| p.1));
    let mut chart = ChartBuilder::on(area)
        .caption(title, font(17))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(0.5..n + 0.5, y)
        .map_err(fail)?;
    // Label whole numbers only, and no more than a dozen of them.
    let whole = |x: &f64| match x.fract() == 0.0 {
        true => format!("{x:.0}"),
        false => String::new(),
    };
    mesh(&mut chart, x_desc, y_desc)
        .x_labels((n as usize + 1).min(12))
        .x_label_formatter(&whole)
        .draw()
        .map_err(fail)?;
    for (style, points) in series {
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                style.colour.stroke_width(2),
            ))
            .map_err(fail)?;
        // Markers on a line of many points are a smear; they mark points where a line has few.
        if points.len() <= 60 {
            for p in points {
                style.marker.draw(chart.plotting_area(), *p, style.colour)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// init-ablation's labels differ after a dot; they once made 11 files for 13 figures.
    #[test]
    fn labels_that_differ_anywhere_get_their_own_files() {
        let labels = [
            "U(1,1.3) / APA U(0,1)",
            "U(1,1.3) / APA U(-1,0)",
            "U(1,1.3) / APA U(-1,0)",
            "a/b",
            "a_b",
        ];
        let mut slugs = Slugs::default();
        let files: std::collections::HashSet<PathBuf> = labels
            .iter()
            .map(|l| {
                with_suffix(
                    &Path::new("out").join(format!("reliability-{}", slugs.unique(l))),
                    ".png",
                )
            })
            .collect();
        assert_eq!(files.len(), labels.len(), "{files:?}");
        assert!(
            files.contains(Path::new("out/reliability-U_1_1.3_APA_U_0_1.png")),
            "{files:?}"
        );
    }

    #[test]
    fn natural_order_and_channel_means() {
        let p = |m: &str, n: &str, v: f64| LearnedParam {
            module: m.into(),
            name: n.into(),
            value: v,
        };
        let c = LearnedCurves::from_params(&[
            p("layer10.act", "kappa", 3.0),
            p("layer2.act", "kappa.0", 1.0),
            p("layer2.act", "kappa.1", 2.0),
            p("layer2.act", "lambda", 0.5),
        ]);
        assert_eq!(c.modules, ["layer2.act", "layer10.act"]);
        assert_eq!(c.kappa, [Some(1.5), Some(3.0)]);
        assert_eq!(c.lambda, [Some(0.5), None]);
        let kinds = LearnedCurves::by_kind(&[
            p("layer1.0.attention.gate", "kappa", -0.1),
            p("layer1.0.act1", "kappa", 1.0),
            p("layer1.0.act2", "kappa", 1.1),
        ]);
        let names: Vec<&str> = kinds.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["act", "gate"]);
        assert_eq!(kinds[0].1.kappa, [Some(1.0), Some(1.1)]);
    }
}
