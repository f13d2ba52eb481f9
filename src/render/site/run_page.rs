//! One run's page: what it is (config, by the layer that set each key), where it ran, what it
//! produced (metrics, per-class accuracy, curves, learned κ/λ, artifacts), and why it failed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::super::figures::{self, Curves, KappaLambda, LearnedCurves, LearningCurves};
use super::RenderError;
use crate::config::layers::{key_sources, merge_layers, resolve_merged};
use crate::config::{LoadedManifest, Overrides, RunConfig};
use crate::data::groups::{Group, GroupThresholds};
use crate::plan::{point_of, run_layers};
use crate::result::{EpochMetrics, RunResult, RunStatus};
use crate::store::{RunDetail, RunSummary};

#[derive(Debug, Serialize)]
pub struct RunPage {
    run: RunDetail,
    memberships: Vec<MemberLink>,
    parents: Vec<String>,
    config: Vec<ConfigRow>,
    /// Provenance as printed: (key, value), JSON for structured values.
    provenance: Vec<(String, String)>,
    /// The many and few thresholds of the per-class bands.
    thresholds: (usize, usize),
    /// Why some or all keys have no layer named.
    config_note: Option<String>,
    metrics: Vec<MetricRow>,
    classes: Vec<ClassRow>,
    learned: Vec<LearnedRow>,
    epochs: Vec<EpochMetrics>,
    /// The epochs are a language model's: validation loss and tokens/s, not top-1 and images/s.
    language: bool,
    /// A failed or interrupted run's last recorded epochs, as its progress lines read.
    log_tail: Vec<String>,
    curves_svg: Option<String>,
    learned_svg: Option<String>,
}

#[derive(Debug, Serialize)]
struct MemberLink {
    manifest: String,
    profile: String,
    labels: String,
    /// The table page, when the site has one for this manifest and profile.
    href: Option<String>,
}

#[derive(Debug, Serialize)]
struct ConfigRow {
    key: String,
    value: String,
    /// The layer that set it, per the manifest on disk; `None` when that manifest no longer
    /// gives this value.
    source: Option<String>,
}

#[derive(Debug, Serialize)]
struct MetricRow {
    split: String,
    name: String,
    value: String,
}

#[derive(Debug, Serialize)]
struct ClassRow {
    class: u32,
    n_train: u64,
    n_test: u64,
    correct: u64,
    accuracy: Option<String>,
    band: Group,
}

#[derive(Debug, Serialize)]
struct LearnedRow {
    module: String,
    kappa: Option<String>,
    lambda: Option<String>,
}

impl RunPage {
    pub fn build(
        run: RunDetail,
        summary: &RunSummary,
        manifests: &BTreeMap<&str, &LoadedManifest>,
        table_pages: &BTreeMap<(String, String), String>,
    ) -> Result<Self, RenderError> {
        let memberships = summary
            .members
            .iter()
            .map(|m| MemberLink {
                manifest: m.manifest.clone(),
                profile: m.profile.clone(),
                labels: crate::plan::labels_text(&m.labels),
                href: table_pages
                    .get(&(m.manifest.clone(), m.profile.clone()))
                    .map(|h| format!("../{h}")),
            })
            .collect();
        let (config, config_note) = attributed_config(&run, summary, manifests);
        let result = &run.result;
        let thresholds = RunConfig::deserialize(&run.config)
            .map(|c| GroupThresholds::from(&c.data))
            .unwrap_or_default();
        let curves = Curves::of(result);
        let curves_svg = (!curves.is_empty())
            .then(|| figures::svg(&LearningCurves { curves: &curves }))
            .transpose()
            .map_err(|e| drawn(&run.id, e))?;
        let learned_kinds = LearnedCurves::by_kind(&result.learned);
        let learned_svg = (!learned_kinds.is_empty())
            .then(|| {
                let runs = [("this run".to_string(), learned_kinds)];
                figures::svg(&KappaLambda { runs: &runs })
            })
            .transpose()
            .map_err(|e| drawn(&run.id, e))?;
        Ok(RunPage {
            memberships,
            parents: run.parents.clone(),
            config,
            config_note,
            metrics: metric_rows(result),
            classes: class_rows(result, thresholds),
            thresholds: (thresholds.many, thresholds.few),
            provenance: run
                .provenance
                .iter()
                .map(|(k, v)| (k.clone(), if v.is_null() { "—".into() } else { shown(v) }))
                .collect(),
            learned: learned_rows(result),
            epochs: result.epochs.clone(),
            language: result.epochs.iter().any(|e| e.tokens_per_s.is_some()),
            log_tail: match run.status {
                RunStatus::Failed | RunStatus::Interrupted => log_tail(&result.epochs),
                _ => Vec::new(),
            },
            curves_svg,
            learned_svg,
            run,
        })
    }

    pub fn context(&self) -> minijinja::Value {
        minijinja::context! {
            root => "../",
            title => format!("Run {}", self.run.id),
            page => minijinja::Value::from(minijinja::value::Serde(self)),
        }
    }
}

fn drawn(id: &str, message: String) -> RenderError {
    RenderError::Figure {
        path: super::run_href(id).into(),
        message,
    }
}

/// The stored config as leaf rows, each with the layer that set it when the run's manifest (as
/// it is on disk now) still resolves to the same value.
fn attributed_config(
    run: &RunDetail,
    summary: &RunSummary,
    manifests: &BTreeMap<&str, &LoadedManifest>,
) -> (Vec<ConfigRow>, Option<String>) {
    let stored = leaves(&run.config);
    let member = summary
        .members
        .iter()
        .find_map(|m| Some((m, *manifests.get(m.manifest.as_str())?)));
    let Some((member, m)) = member else {
        let rows = stored
            .into_iter()
            .map(|(key, value)| ConfigRow {
                key,
                value: shown(&value),
                source: None,
            })
            .collect();
        let names: Vec<&str> = summary.members.iter().map(|m| m.manifest.as_str()).collect();
        let note = format!(
            "Which layer set each key is not shown: the manifest ({}) is not among the manifests on disk.",
            names.join(", ")
        );
        return (rows, Some(note));
    };
    let point = point_of(m, &member.labels);
    let layers = run_layers(
        m,
        &member.profile,
        &run.stage,
        &point,
        run.seed,
        &Overrides::default(),
    );
    let sources = key_sources(&layers);
    let now = resolve_merged(&merge_layers(&layers))
        .ok()
        .and_then(|c| serde_json::to_value(c).ok())
        .map(|v| leaves(&v))
        .unwrap_or_default();
    let mut differs = 0;
    let rows = stored
        .into_iter()
        .map(|(key, value)| {
            let same = now.get(&key).is_some_and(|v| same_value(v, &value));
            differs += usize::from(!same);
            ConfigRow {
                source: same.then(|| sources.get(&key).cloned()).flatten(),
                value: shown(&value),
                key,
            }
        })
        .collect();
    let note = (differs > 0).then(|| {
        let (keys, them) = match differs {
            1 => ("1 key has".to_string(), "it another value"),
            n => (format!("{n} keys have"), "them other values"),
        };
        format!(
            "{keys} no layer named: {} as it is on disk gives {them} \
             (edited since this run, or the run had --set / REPRO_* overrides).",
            m.source()
        )
    });
    (rows, note)
}

/// Lines shown of a stopped run's progress.
const LOG_TAIL: usize = 10;

fn log_tail(epochs: &[EpochMetrics]) -> Vec<String> {
    let start = epochs.len().saturating_sub(LOG_TAIL);
    epochs[start..].iter().map(|e| e.line(None)).collect()
}

/// Equal, numbers to float32 precision: configs keep some values as f32, and a value read back
/// through f64 differs from the same value parsed afresh in the last digits.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1.0),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        _ => a == b,
    }
}

/// Leaf keys of a config (`train.lr`); a list is one leaf.
fn leaves(value: &Value) -> BTreeMap<String, Value> {
    fn walk(value: &Value, path: String, out: &mut BTreeMap<String, Value>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    let key = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(v, key, out);
                }
            }
            _ => {
                out.insert(path, value.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(value, String::new(), &mut out);
    out
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every final metric, the test set's first (then `ema`, `hellaswag`, … by name).
fn metric_rows(result: &RunResult) -> Vec<MetricRow> {
    let mut splits: Vec<_> = result.metrics.iter().collect();
    splits.sort_by_key(|(split, _)| (split.as_str() != "test", split.as_str()));
    splits
        .into_iter()
        .flat_map(|(split, values)| {
            values.iter().map(move |(name, value)| MetricRow {
                split: split.clone(),
                name: name.clone(),
                value: format!("{value:.4}"),
            })
        })
        .collect()
}

/// Per-class results, most frequent class first, each in its many/medium/few band by the run's
/// own thresholds.
fn class_rows(result: &RunResult, thresholds: GroupThresholds) -> Vec<ClassRow> {
    let mut rows: Vec<ClassRow> = result
        .classes
        .iter()
        .map(|c| ClassRow {
            class: c.class,
            n_train: c.n_train,
            n_test: c.n_test,
            correct: c.correct,
            accuracy: (c.n_test > 0).then(|| format!("{:.1}", 100.0 * c.correct as f64 / c.n_test as f64)),
            band: thresholds.group(c.n_train as usize),
        })
        .collect();
    rows.sort_by(|a, b| b.n_train.cmp(&a.n_train).then(a.class.cmp(&b.class)));
    rows
}

/// κ and λ per module in network order (per-channel values as their mean).
fn learned_rows(result: &RunResult) -> Vec<LearnedRow> {
    let curves = LearnedCurves::from_params(&result.learned);
    let text = |v: &Option<f64>| v.map(|v| format!("{v:.4}"));
    curves
        .modules
        .iter()
        .zip(curves.kappa.iter().zip(&curves.lambda))
        .map(|(module, (k, l))| LearnedRow {
            module: module.clone(),
            kappa: text(k),
            lambda: text(l),
        })
        .collect()
}
