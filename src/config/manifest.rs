//! The manifest schema: one YAML file per paper table (experiments/) or named sweep
//! (experiments/sweeps/). Structural checks happen during deserialisation so serde_yaml can
//! attach a line; cross-references are checked in `validate`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::run::RunConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub paper: Option<PaperRef>,
    #[serde(default)]
    pub base: Fragment,
    /// Named axes; several axes combine as a grid product (in name order).
    #[serde(default)]
    pub axes: BTreeMap<String, Axis>,
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Stages by name; none means a single stage called `train`.
    #[serde(default)]
    pub stages: BTreeMap<String, Stage>,
    #[serde(default)]
    pub table: Option<TableSpec>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
    /// Why this manifest cannot run yet; it can still be planned and rendered.
    #[serde(default)]
    pub unsupported: Option<String>,
    /// Executor settings (e.g. Slurm partition and time limit) for this manifest's runs.
    #[serde(default)]
    pub executor: Option<Value>,
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperRef {
    pub table: String,
    #[serde(default)]
    pub metric: Option<String>,
    /// When a printed table is split over several manifests (e.g. Table 3(a): iNaturalist and
    /// Places-LT need different stages): which of the printed row's numbers, 0-based, this
    /// manifest's columns are. Default: all of them, in order.
    #[serde(default)]
    pub columns: Option<Vec<usize>>,
}

/// A partial RunConfig. Checked against the RunConfig schema when read, kept as JSON so that
/// only the keys it names override lower layers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "Value")]
pub struct Fragment(pub Value);

impl Default for Fragment {
    fn default() -> Self {
        Fragment(Value::Object(Default::default()))
    }
}

impl TryFrom<Value> for Fragment {
    type Error = String;
    fn try_from(value: Value) -> Result<Self, String> {
        let value = match value {
            Value::Null => Value::Object(Default::default()),
            v @ Value::Object(_) => v,
            other => return Err(format!("expected a mapping of run-config keys, found {other}")),
        };
        // Every section is `serde(default)`, so a partial config deserialises exactly when its
        // keys and types are valid.
        RunConfig::deserialize(&value).map_err(|e| e.to_string())?;
        Ok(Fragment(value))
    }
}

/// One axis: `key` + scalar `values`, or `keys` + `values` that are tuples (zipped keys that
/// move together). `labels` name the values in tables (default: the values themselves).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub keys: Vec<String>,
    pub values: Vec<Value>,
    #[serde(default)]
    pub labels: Vec<String>,
}

impl Axis {
    pub fn targets(&self) -> Vec<&str> {
        match &self.key {
            Some(k) => vec![k.as_str()],
            None => self.keys.iter().map(String::as_str).collect(),
        }
    }

    /// The (key, value) assignments of value `i`; tuple shape is checked by `validate`.
    pub fn assignments(&self, i: usize) -> Vec<(&str, &Value)> {
        self.assignments_of(&self.values[i])
    }

    /// The (key, value) assignments of `value`, a value of this axis or a profile's
    /// substitute for one.
    pub fn assignments_of<'a>(&'a self, value: &'a Value) -> Vec<(&'a str, &'a Value)> {
        let targets = self.targets();
        match (&self.key, value) {
            (Some(_), v) => vec![(targets[0], v)],
            (None, Value::Array(items)) => targets.into_iter().zip(items.iter()).collect(),
            (None, v) => vec![(targets[0], v)],
        }
    }

    pub fn label(&self, i: usize) -> String {
        if let Some(l) = self.labels.get(i) {
            return l.clone();
        }
        match &self.values[i] {
            Value::Array(items) => items.iter().map(scalar_label).collect::<Vec<_>>().join("/"),
            v => scalar_label(v),
        }
    }
}

fn scalar_label(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Stages whose run (same axis point and seed) must be done first; their checkpoints are
    /// handed to the trainer.
    #[serde(default)]
    pub needs: Vec<String>,
    #[serde(default)]
    pub config: Fragment,
}

/// A named overlay. Besides run-config keys it may replace `seeds`, overlay single stages,
/// substitute the values of axes, and carry a note for rendered tables.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(try_from = "Value")]
pub struct Profile {
    pub seeds: Option<Vec<u64>>,
    pub overlay: Fragment,
    pub stages: BTreeMap<String, Fragment>,
    /// Axis name → replacement values, one per value of the manifest's axis, in order; the
    /// axis keeps its labels. Axis values sit above the profile overlay, so this is how a small
    /// profile swaps e.g. ResNet-50/101/152 rows for CIFAR ResNets while the table keeps the
    /// paper's rows. Substitutes may coincide (two rows → one run), which is fine at toy scale.
    pub axes: BTreeMap<String, Vec<Value>>,
    /// What this profile changes about the experiment (e.g. a substituted dataset), for the
    /// rendered table's footnote.
    pub note: Option<String>,
    /// Executor settings over the manifest's.
    pub executor: Option<Value>,
}

impl TryFrom<Value> for Profile {
    type Error = String;
    fn try_from(value: Value) -> Result<Self, String> {
        let mut map = match value {
            Value::Null => Default::default(),
            Value::Object(m) => m,
            other => return Err(format!("a profile must be a mapping, found {other}")),
        };
        let seeds = map
            .remove("seeds")
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| format!("profile seeds: {e}"))?;
        let axes = map
            .remove("axes")
            .map(serde_json::from_value::<BTreeMap<String, Vec<Value>>>)
            .transpose()
            .map_err(|e| format!("profile axes (axis name → list of values): {e}"))?
            .unwrap_or_default();
        let note = map
            .remove("note")
            .map(serde_json::from_value::<String>)
            .transpose()
            .map_err(|e| format!("profile note: {e}"))?;
        let executor = map.remove("executor");
        let stages = map
            .remove("stages")
            .map(serde_json::from_value::<BTreeMap<String, Value>>)
            .transpose()
            .map_err(|e| format!("profile stages: {e}"))?
            .unwrap_or_default()
            .into_iter()
            .map(|(name, v)| Fragment::try_from(v).map(|f| (name, f)))
            .collect::<Result<_, _>>()?;
        Ok(Profile {
            seeds,
            overlay: Fragment::try_from(Value::Object(map))?,
            stages,
            axes,
            note,
            executor,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn names(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// Axis (or axes, labels joined with " / ") whose values make the rows.
    pub rows: OneOrMany,
    /// Optional axis whose values make column groups; each group has all `columns`.
    #[serde(default)]
    pub column_axis: Option<String>,
    pub columns: Vec<Column>,
    /// Stage whose runs fill the cells (default: the last stage).
    #[serde(default)]
    pub stage: Option<String>,
    /// The paper's numbers: row label → one entry per column (column groups flattened).
    #[serde(default)]
    pub reported: BTreeMap<String, Vec<Option<f64>>>,
    /// Rows the paper reports that this manifest does not run (other methods).
    #[serde(default)]
    pub reported_rows: BTreeMap<String, Vec<Option<f64>>>,
    /// Row label → the row's name as printed in the paper, where they differ (the paper's
    /// names repeat, e.g. "with Temp" twice in Table 4(a)); the transcription test finds the
    /// paper's line by it.
    #[serde(default)]
    pub paper_labels: BTreeMap<String, String>,
    /// Decimals shown for every column (default 1, as the paper prints accuracies).
    #[serde(default)]
    pub precision: Option<usize>,
    /// A difference to the paper this small counts as reproduced whatever the noise (metric
    /// units, e.g. 0.5 points of accuracy); columns may override it.
    #[serde(default)]
    pub tolerance: Option<f64>,
}

/// Which way a metric improves; decides the bold "best" cell of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Higher,
    Lower,
}

impl Better {
    /// Losses, calibration errors and error rates go down; accuracies go up.
    pub fn for_metric(metric: &str) -> Better {
        let lower = ["nll", "ece", "nc1", "loss", "err", "error"];
        if lower
            .iter()
            .any(|l| metric == *l || metric.ends_with(&format!("_{l}")))
        {
            Better::Lower
        } else {
            Better::Higher
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub metric: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default = "default_split")]
    pub split: String,
    #[serde(default)]
    pub stage: Option<String>,
    /// Overrides the table's `precision`.
    #[serde(default)]
    pub precision: Option<usize>,
    /// Overrides the table's `tolerance`.
    #[serde(default)]
    pub tolerance: Option<f64>,
    /// Default: from the metric's name (see [`Better::for_metric`]).
    #[serde(default)]
    pub better: Option<Better>,
}

impl Column {
    pub fn better(&self) -> Better {
        self.better.unwrap_or_else(|| Better::for_metric(&self.metric))
    }
}

fn default_split() -> String {
    "test".into()
}

/// The name a manifest uses for its single stage when it declares none.
pub const DEFAULT_STAGE: &str = "train";

/// Profile every manifest has, empty unless the manifest defines it.
pub const PAPER_PROFILE: &str = "paper";

impl Manifest {
    /// Stage definitions, with the implicit single stage filled in.
    pub fn stage_defs(&self) -> BTreeMap<String, Stage> {
        if self.stages.is_empty() {
            BTreeMap::from([(DEFAULT_STAGE.to_string(), Stage::default())])
        } else {
            self.stages.clone()
        }
    }
}
