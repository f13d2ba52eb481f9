//! Layering: built-in defaults < manifest base < stage < profile < profile's stage overlay <
//! axis values and seed < `REPRO_*` environment < `--set key.path=value`.
//!
//! Axis values sit above the profile so that a profile (say `smoke` shrinking the model) cannot
//! collapse the points of an axis into one run. Values are merged as JSON (fast enough for
//! 10,000-run sweeps); figment tracks which layer set a key for `--explain` and reads the
//! environment.

use figment::providers::{Env, Serialized};
use figment::value::{Dict, Map as FigMap};
use figment::{Figment, Metadata, Profile as FigProfile, Provider};
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::ConfigError;
use super::run::{RunConfig, SECTIONS};

/// One named source of config values.
#[derive(Debug, Clone)]
pub struct Layer {
    pub name: String,
    pub value: Value,
}

impl Layer {
    pub fn new(name: impl Into<String>, value: Value) -> Self {
        Self {
            name: name.into(),
            value,
        }
    }

    pub fn defaults() -> Self {
        let value = serde_json::to_value(RunConfig::default()).expect("defaults serialise");
        Self::new("built-in defaults", value)
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<FigMap<FigProfile, Dict>, figment::Error> {
        Serialized::defaults(&self.value).data()
    }
}

/// The command-line and environment overrides, applied on top of every run.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub layers: Vec<Layer>,
}

impl Overrides {
    /// `REPRO_<SECTION>__<KEY>=value` (double underscore for nesting), then each `--set`.
    pub fn from_env_and_sets(sets: &[String]) -> Result<Self, ConfigError> {
        let mut layers = env_layers()?;
        for set in sets {
            layers.push(set_layer(set)?);
        }
        // Checked one by one, so a bad key or value is blamed on its own flag or variable.
        for layer in &layers {
            RunConfig::deserialize(&layer.value)
                .map_err(|e| ConfigError::invalid(&layer.name, None, e.to_string()))?;
        }
        Ok(Self { layers })
    }
}

impl Overrides {
    /// Names the overrides in an error, since they apply to every run.
    pub fn hint(&self) -> String {
        if self.layers.is_empty() {
            return String::new();
        }
        let names: Vec<&str> = self.layers.iter().map(|l| l.name.as_str()).collect();
        format!(" (with overrides: {})", names.join(", "))
    }
}

fn env_layers() -> Result<Vec<Layer>, ConfigError> {
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("REPRO_"))
        .collect();
    vars.sort();
    let mut layers = Vec::new();
    for (name, _) in vars {
        let key = name["REPRO_".len()..].to_lowercase();
        let section = key.split("__").next().unwrap_or_default();
        if !SECTIONS.contains(&section) {
            continue; // REPRO_DB and friends are not config keys
        }
        // figment parses the value the way it parses any environment value (ints, bools...).
        let wanted = key.clone();
        let provider = Env::prefixed("REPRO_")
            .filter(move |k| k.as_str().eq_ignore_ascii_case(&wanted))
            .split("__");
        let value: Value = Figment::from(provider)
            .extract()
            .map_err(|e| ConfigError::invalid(format!("environment variable {name}"), None, e.to_string()))?;
        layers.push(Layer::new(format!("environment variable {name}"), value));
    }
    Ok(layers)
}

fn set_layer(set: &str) -> Result<Layer, ConfigError> {
    let name = format!("--set {set}");
    let (path, raw) = set
        .split_once('=')
        .ok_or_else(|| ConfigError::invalid(&name, None, "expected key.path=value"))?;
    if path.is_empty() || path.split('.').any(str::is_empty) {
        return Err(ConfigError::invalid(&name, None, "empty key"));
    }
    // YAML scalars give the natural reading: 3 → int, true → bool, [1, 2] → list, relu → string.
    let value: Value = serde_yaml::from_str(raw)
        .map_err(|e| ConfigError::invalid(&name, None, format!("bad value: {e}")))?;
    let mut tree = Value::Object(Map::new());
    set_path(&mut tree, path, value);
    Ok(Layer::new(name, tree))
}

/// Sets `a.b.c` in a JSON object, creating (or replacing non-object) intermediate nodes.
pub fn set_path(target: &mut Value, path: &str, value: Value) {
    let mut node = target;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let map = node.as_object_mut().expect("just made an object");
        if parts.peek().is_none() {
            map.insert(part.to_string(), value);
            return;
        }
        node = map
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// Merge with figment's `merge` semantics: mappings merge key by key, anything else replaces.
pub fn deep_merge(base: &mut Value, top: &Value) {
    match (base, top) {
        (Value::Object(b), Value::Object(t)) => {
            for (k, v) in t {
                match b.get_mut(k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, t) => *b = t.clone(),
    }
}

/// Merges layers in order (lowest first).
pub fn merge_layers(layers: &[Layer]) -> Value {
    let mut merged = Value::Object(Map::new());
    for layer in layers {
        deep_merge(&mut merged, &layer.value);
    }
    merged
}

/// Checks a merged value against the RunConfig schema.
pub fn resolve_merged(merged: &Value) -> Result<RunConfig, serde_json::Error> {
    RunConfig::deserialize(merged)
}

fn figment(layers: &[Layer]) -> Figment {
    layers
        .iter()
        .fold(Figment::new(), |f, layer| f.merge(layer.clone()))
}

/// The layers merged by figment, the engine `explain` reports from. `merge_layers` must give
/// the same value (tested over every manifest): it exists because it is fast enough for
/// 10,000-run sweeps.
pub fn merge_with_figment(layers: &[Layer]) -> Result<Value, Box<figment::Error>> {
    figment(layers).extract().map_err(Box::new)
}

/// For every leaf key of the merged layers (`train.lr`; a list is one leaf), the layer that set
/// it: the last one naming it. The same answer as `explain` (tested over every manifest)
/// without building a figment per key, so a page can attribute a whole config.
pub fn key_sources(layers: &[Layer]) -> BTreeMap<String, String> {
    fn walk(value: &Value, path: &str, layer: &str, out: &mut BTreeMap<String, String>) {
        match value {
            Value::Object(map) => {
                // An object replaces a leaf at its place (deep_merge's rule).
                out.remove(path);
                for (k, v) in map {
                    let key = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(v, &key, layer, out);
                }
            }
            _ => {
                // A leaf replaces whatever lay below it.
                let below = format!("{path}.");
                out.retain(|k, _| !k.starts_with(&below));
                out.insert(path.to_string(), layer.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    for layer in layers {
        walk(&layer.value, "", &layer.name, &mut out);
    }
    out
}

/// Which layer set `key` (the last one that names it), per figment's provenance tracking.
pub fn explain(layers: &[Layer], key: &str) -> Result<String, ConfigError> {
    let figment = figment(layers);
    let value: figment::value::Value = figment
        .find_value(key)
        .map_err(|_| ConfigError::Usage(format!("no config key `{key}`")))?;
    let meta = figment
        .get_metadata(value.tag())
        .map(|m| m.name.to_string())
        .unwrap_or_else(|| "unknown".into());
    let shown: Value = value
        .deserialize()
        .map_err(|e| ConfigError::Usage(format!("{key}: {e}")))?;
    Ok(format!("{key} = {shown}  (set by {meta})"))
}
