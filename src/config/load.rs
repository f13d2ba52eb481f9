//! Finding manifests on disk, parsing them, and checking their cross-references before any work.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::ConfigError;
use super::manifest::{Manifest, TableSpec, PAPER_PROFILE};
use super::run::RunConfig;

/// Which folder(s) to search: paper tables live in experiments/, named sweeps in
/// experiments/sweeps/.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    Table,
    Sweep,
    Any,
}

/// A parsed, validated manifest and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedManifest {
    pub path: PathBuf,
    pub text: String,
    pub manifest: Manifest,
}

impl LoadedManifest {
    pub fn source(&self) -> String {
        self.path.display().to_string()
    }

    /// Best-effort line of the first `needle:` key, for errors serde cannot locate.
    pub fn line_of(&self, needle: &str) -> Option<usize> {
        line_of(&self.text, needle)
    }

    pub fn error(&self, needle: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::in_file(&self.path, self.line_of(needle), message)
    }
}

/// The line of `needle` used as a key, else of the first line naming it at all.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    let key = format!("{needle}:");
    let as_key = |l: &str| {
        let t = l.trim_start().trim_start_matches("- ");
        t.starts_with(&key) || l.contains(&format!(" {key}")) || l.contains(&format!("{{{key}"))
    };
    let as_word = |l: &str| {
        l.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '-'))
            .any(|w| w == needle)
    };
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .position(|l| as_key(l))
        .or_else(|| lines.iter().position(|l| as_word(l)))
        .map(|i| i + 1)
}

fn dirs_for(root: &Path, kind: ManifestKind) -> Vec<PathBuf> {
    match kind {
        ManifestKind::Table => vec![root.to_path_buf()],
        ManifestKind::Sweep => vec![root.join("sweeps")],
        ManifestKind::Any => vec![root.to_path_buf(), root.join("sweeps")],
    }
}

/// Every manifest file under `root` of the given kind, sorted by path.
pub fn manifest_files(root: &Path, kind: ManifestKind) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = dirs_for(root, kind)
        .into_iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    files
}

/// Finds a manifest by id (or by file path) and loads it.
fn load_files(root: &Path, kind: ManifestKind) -> Vec<(PathBuf, Result<LoadedManifest, ConfigError>)> {
    manifest_files(root, kind)
        .into_iter()
        .map(|file| {
            let loaded = load_manifest(&file);
            (file, loaded)
        })
        .collect()
}

/// Runs are stored by manifest id, so two files declaring one id would write into and render
/// from each other's results: an error naming both files.
fn duplicate_id(id: &str, path: &Path, other: &Path) -> ConfigError {
    ConfigError::in_file(
        path,
        None,
        format!(
            "manifest id `{id}` is also declared by {}; ids must be unique",
            other.display()
        ),
    )
}

/// Every manifest file under `root`, loaded; a file declaring an id that an earlier file
/// declares is an error naming both.
pub fn load_all(root: &Path, kind: ManifestKind) -> Vec<(PathBuf, Result<LoadedManifest, ConfigError>)> {
    let mut first: BTreeMap<String, PathBuf> = BTreeMap::new();
    load_files(root, kind)
        .into_iter()
        .map(|(file, loaded)| {
            let loaded = loaded.and_then(|m| match first.get(&m.manifest.id) {
                Some(other) => Err(duplicate_id(&m.manifest.id, &file, other)),
                None => {
                    first.insert(m.manifest.id.clone(), file.clone());
                    Ok(m)
                }
            });
            (file, loaded)
        })
        .collect()
}

pub fn find_manifest(root: &Path, name: &str, kind: ManifestKind) -> Result<LoadedManifest, ConfigError> {
    let as_path = Path::new(name);
    if as_path.extension().is_some() && as_path.is_file() {
        return load_manifest(as_path);
    }
    let mut all = load_files(root, kind);
    // By file name first, then by id (a file may be named differently from its id).
    let found = all
        .iter()
        .position(|(file, _)| file.file_stem().and_then(|s| s.to_str()) == Some(name))
        .or_else(|| {
            all.iter()
                .position(|(_, r)| r.as_ref().is_ok_and(|m| m.manifest.id == name))
        });
    if let Some(i) = found {
        let (path, loaded) = all.swap_remove(i);
        let m = loaded?;
        let twin = all
            .iter()
            .find(|(_, r)| r.as_ref().is_ok_and(|o| o.manifest.id == m.manifest.id));
        return match twin {
            Some((other, _)) => Err(duplicate_id(&m.manifest.id, &path, other)),
            None => Ok(m),
        };
    }
    let wherein = dirs_for(root, kind)
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Err(ConfigError::Usage(format!("no manifest `{name}` in {wherein}")))
}

pub fn load_manifest(path: &Path) -> Result<LoadedManifest, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let manifest: Manifest = serde_yaml::from_str(&text).map_err(|e| yaml_error(path, &text, &e))?;
    let loaded = LoadedManifest {
        path: path.to_path_buf(),
        text,
        manifest,
    };
    validate(&loaded)?;
    Ok(loaded)
}

/// A YAML error with one line number: serde_yaml's own position ends the message ("at line 29
/// column 3") and is where the enclosing value starts, while the key the message names is
/// usually the precise line: the first line naming it from that position on.
pub(crate) fn yaml_error(path: &Path, text: &str, e: &serde_yaml::Error) -> ConfigError {
    let mut message = e.to_string();
    let start = e.location().map(|l| l.line());
    if start.is_some() {
        if let Some(at) = message.rfind(" at line ") {
            message.truncate(at);
        }
    }
    let from = start.unwrap_or(1);
    let rest: String = text.lines().skip(from - 1).collect::<Vec<_>>().join("\n");
    let line = backticked(&message)
        .and_then(|name| line_of(&rest, name))
        .map(|l| l + from - 1)
        .or(start);
    ConfigError::in_file(path, line, message)
}

fn backticked(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

/// Cross-reference checks that serde cannot do.
pub fn validate(m: &LoadedManifest) -> Result<(), ConfigError> {
    let man = &m.manifest;
    if man.seeds.is_empty() {
        return Err(m.error("seeds", "`seeds` must not be empty"));
    }
    validate_axes(m)?;
    validate_stages(m)?;
    for (name, profile) in &man.profiles {
        if profile.seeds.as_ref().is_some_and(Vec::is_empty) {
            return Err(m.error(name, format!("profile `{name}`: `seeds` must not be empty")));
        }
        for (axis, values) in &profile.axes {
            validate_axis_substitute(m, name, axis, values)?;
        }
        for stage in profile.stages.keys() {
            if !man.stage_defs().contains_key(stage) {
                return Err(m.error(
                    stage,
                    format!("profile `{name}` overlays unknown stage `{stage}`"),
                ));
            }
        }
    }
    if let Some(table) = &man.table {
        validate_table(m, table)?;
    }
    Ok(())
}

fn validate_axes(m: &LoadedManifest) -> Result<(), ConfigError> {
    let defaults = serde_json::to_value(RunConfig::default()).expect("defaults serialise");
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, axis) in &m.manifest.axes {
        for target in axis.targets() {
            if let Some(other) = owner.insert(target, name) {
                return Err(m.error(name, format!("axes `{other}` and `{name}` both set `{target}`")));
            }
        }
        let err = |msg: String| m.error(name, format!("axis `{name}`: {msg}"));
        if axis.key.is_some() != axis.keys.is_empty() {
            return Err(err("give exactly one of `key` or `keys`".into()));
        }
        if axis.values.is_empty() {
            return Err(err("`values` must not be empty".into()));
        }
        if !axis.labels.is_empty() && axis.labels.len() != axis.values.len() {
            return Err(err(format!(
                "{} labels for {} values",
                axis.labels.len(),
                axis.values.len()
            )));
        }
        for target in axis.targets() {
            if !is_known_target(&defaults, target) {
                return Err(err(format!("unknown config key `{target}`")));
            }
        }
        if axis.key.is_none() {
            let arity = axis.keys.len();
            if let Some(bad) = axis
                .values
                .iter()
                .find(|v| v.as_array().map(Vec::len) != Some(arity))
            {
                return Err(err(format!(
                    "value {bad} is not a list of {arity} items (one per key)"
                )));
            }
        }
        let labels: BTreeSet<String> = (0..axis.values.len()).map(|i| axis.label(i)).collect();
        if labels.len() != axis.values.len() {
            return Err(err("two values have the same label".into()));
        }
    }
    Ok(())
}

/// A profile's substitute values for an axis: the axis exists, one substitute per value, and
/// zipped axes get tuples of the right arity. The run-config check happens when planning.
fn validate_axis_substitute(
    m: &LoadedManifest,
    profile: &str,
    axis: &str,
    values: &[Value],
) -> Result<(), ConfigError> {
    let err = |msg: String| m.error(axis, format!("profile `{profile}`, axes.{axis}: {msg}"));
    let Some(ax) = m.manifest.axes.get(axis) else {
        return Err(err("no such axis".into()));
    };
    if values.len() != ax.values.len() {
        return Err(err(format!(
            "{} values for the axis's {} (give one substitute per value, in order)",
            values.len(),
            ax.values.len()
        )));
    }
    if ax.key.is_none() {
        let arity = ax.keys.len();
        if let Some(bad) = values.iter().find(|v| v.as_array().map(Vec::len) != Some(arity)) {
            return Err(err(format!(
                "value {bad} is not a list of {arity} items (one per key)"
            )));
        }
    }
    Ok(())
}

/// A target is known when the path exists in the serialised defaults, runs into a free-form
/// section (an empty object there), e.g. `train.lr` while `train` is untyped, or is a key the
/// defaults leave out while unset (`model.image_size`, `train.ema.decay`), which the typed
/// config then accepts.
pub fn is_known_target(defaults: &Value, path: &str) -> bool {
    let mut parts = path.split('.');
    let Some(first) = parts.next() else {
        return false;
    };
    if !super::run::SECTIONS.contains(&first) {
        return false;
    }
    let mut node = defaults.get(first);
    for part in parts {
        match node {
            None | Some(Value::Null) => return accepted_by_schema(path),
            Some(Value::Object(map)) if map.is_empty() => return true,
            Some(Value::Object(map)) => node = map.get(part),
            Some(_) => return false,
        }
    }
    node.is_some() || accepted_by_schema(path)
}

/// Whether the typed run config takes `path`, set to null, without calling it an unknown field
/// (a wrong type is not this check's business: the merged config's deserialisation says it).
fn accepted_by_schema(path: &str) -> bool {
    let probe = path
        .rsplit('.')
        .fold(Value::Null, |inner, key| serde_json::json!({ key: inner }));
    match serde_json::from_value::<RunConfig>(probe) {
        Ok(_) => true,
        Err(e) => !e.to_string().contains("unknown field"),
    }
}

fn validate_stages(m: &LoadedManifest) -> Result<(), ConfigError> {
    let stages = m.manifest.stage_defs();
    for (name, stage) in &stages {
        for need in &stage.needs {
            if !stages.contains_key(need) {
                return Err(m.error(name, format!("stage `{name}` needs unknown stage `{need}`")));
            }
        }
    }
    stage_order(&stages.iter().map(|(k, v)| (k.clone(), v.needs.clone())).collect())
        .map(|_| ())
        .map_err(|cycle| {
            m.error(
                &cycle,
                format!("stage dependencies form a cycle through `{cycle}`"),
            )
        })
}

/// Stages in dependency order (parents first); Err names a stage on a cycle.
pub fn stage_order(needs: &BTreeMap<String, Vec<String>>) -> Result<Vec<String>, String> {
    let mut order = Vec::new();
    let mut done = BTreeSet::new();
    while order.len() < needs.len() {
        let ready: Vec<&String> = needs
            .iter()
            .filter(|(name, deps)| !done.contains(*name) && deps.iter().all(|d| done.contains(d)))
            .map(|(name, _)| name)
            .collect();
        if ready.is_empty() {
            let stuck = needs
                .keys()
                .find(|n| !done.contains(*n))
                .expect("some stage left");
            return Err(stuck.clone());
        }
        for name in ready {
            done.insert(name.clone());
            order.push(name.clone());
        }
    }
    Ok(order)
}

fn validate_table(m: &LoadedManifest, table: &TableSpec) -> Result<(), ConfigError> {
    let man = &m.manifest;
    let mut used = BTreeSet::new();
    for axis in table.rows.names().into_iter().chain(table.column_axis.as_deref()) {
        if !man.axes.contains_key(axis) {
            return Err(m.error("table", format!("table uses unknown axis `{axis}`")));
        }
        used.insert(axis);
    }
    if let Some(unused) = man.axes.keys().find(|a| !used.contains(a.as_str())) {
        return Err(m.error(
            unused,
            format!("axis `{unused}` is neither the table's rows nor its column_axis, so a cell would mix its values"),
        ));
    }
    if table.columns.is_empty() {
        return Err(m.error("columns", "table has no columns"));
    }
    let stages = man.stage_defs();
    let stage_refs = table
        .stage
        .iter()
        .chain(table.columns.iter().filter_map(|c| c.stage.as_ref()));
    for stage in stage_refs {
        if !stages.contains_key(stage) {
            return Err(m.error(stage, format!("table refers to unknown stage `{stage}`")));
        }
    }
    let rows: BTreeSet<String> = row_labels(man, table).into_iter().collect();
    let width = table.columns.len() * table.column_axis.as_ref().map_or(1, |a| man.axes[a].values.len());
    for (label, values) in &table.reported {
        if !rows.contains(label) {
            return Err(m.error(
                "reported",
                format!(
                    "reported row `{label}` maps to no runs (rows are: {})",
                    join(&rows)
                ),
            ));
        }
        if values.len() > width {
            return Err(m.error(
                "reported",
                format!(
                    "reported row `{label}` has {} numbers for {width} columns",
                    values.len()
                ),
            ));
        }
    }
    for label in table.paper_labels.keys() {
        if !table.reported.contains_key(label) && !table.reported_rows.contains_key(label) {
            return Err(m.error(
                "paper_labels",
                format!("paper_labels names `{label}`, which is no reported row"),
            ));
        }
    }
    for (label, values) in &table.reported_rows {
        if values.len() > width {
            return Err(m.error(
                label,
                format!("reported-only row `{label}` has more numbers than columns"),
            ));
        }
    }
    Ok(())
}

fn join(set: &BTreeSet<String>) -> String {
    set.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// Row labels in grid order: each row axis's labels, joined with " / " for several axes.
pub fn row_labels(man: &Manifest, table: &TableSpec) -> Vec<String> {
    row_keys(man, table)
        .iter()
        .map(|key| {
            key.iter()
                .map(|(_, l)| l.as_str())
                .collect::<Vec<_>>()
                .join(" / ")
        })
        .collect()
}

/// Each row's (axis, value label) pairs in grid order; runs carry the same pairs as labels.
pub fn row_keys(man: &Manifest, table: &TableSpec) -> Vec<Vec<(String, String)>> {
    table.rows.names().iter().fold(vec![Vec::new()], |acc, axis| {
        let ax = &man.axes[*axis];
        acc.iter()
            .flat_map(|prefix| {
                (0..ax.values.len()).map(move |i| {
                    let mut key = prefix.clone();
                    key.push((axis.to_string(), ax.label(i)));
                    key
                })
            })
            .collect()
    })
}

/// Profiles a manifest may be run with: its own plus the implicit `paper`.
pub fn check_profile(m: &LoadedManifest, profile: &str) -> Result<(), ConfigError> {
    if profile == PAPER_PROFILE || m.manifest.profiles.contains_key(profile) {
        return Ok(());
    }
    let known: BTreeSet<String> = m
        .manifest
        .profiles
        .keys()
        .cloned()
        .chain([PAPER_PROFILE.to_string()])
        .collect();
    Err(ConfigError::Usage(format!(
        "{}: no profile `{profile}` (known: {})",
        m.source(),
        join(&known)
    )))
}
