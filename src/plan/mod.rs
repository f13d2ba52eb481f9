//! Expansion of a manifest into the sweep graph: axes × seeds × stages → runs with stable ids.

mod cost;
mod graph;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::config::layers::{deep_merge, merge_layers, resolve_merged, set_path, Layer, Overrides};
use crate::config::load::{check_profile, stage_order, LoadedManifest};
use crate::config::{ConfigError, RunConfig};

pub use cost::CostEstimate;
pub use graph::{classify, NodeState, StageCounts};

/// Part of every run id. Bump it when a code change alters results, so old runs are not
/// mistaken for new ones; unrelated edits keep ids (and the work done) valid.
pub const CODE_VERSION: &str = "repro-results-1";

/// One run of the graph.
#[derive(Debug, Clone, Serialize)]
pub struct PlanNode {
    pub id: String,
    pub stage: String,
    /// Axis name → value label, for tables and `repro status`.
    pub labels: BTreeMap<String, String>,
    pub seed: u64,
    #[serde(skip)]
    pub config: RunConfig,
    pub config_json: String,
    /// Indices into `Plan::nodes` of the runs this one needs.
    #[serde(skip)]
    pub parents: Vec<usize>,
    pub parent_ids: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub manifest: String,
    pub profile: String,
    pub stages: Vec<String>,
    /// Parents before children; each distinct run once.
    pub nodes: Vec<PlanNode>,
    /// Every (node, labels) membership, including points that resolved to an existing node.
    pub members: Vec<Member>,
    pub unsupported: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub node: usize,
    pub stage: String,
    pub labels: BTreeMap<String, String>,
    pub seed: u64,
}

/// One point of the axis grid: the index of each axis's value.
type Point = Vec<(String, usize)>;

pub fn run_id(config_json: &str, parent_ids: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(CODE_VERSION.as_bytes());
    h.update(b"\n");
    h.update(config_json.as_bytes());
    for p in parent_ids {
        h.update(b"\n");
        h.update(p.as_bytes());
    }
    let digest = h.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The layers of one run, lowest first (shared by `plan` and `config --explain`).
pub fn run_layers(
    m: &LoadedManifest,
    profile: &str,
    stage: &str,
    point: &[(String, usize)],
    seed: u64,
    overrides: &Overrides,
) -> Vec<Layer> {
    let mut layers = stage_prefix_layers(m, profile, stage);
    layers.extend(point_layers(m, profile, point, seed));
    layers.extend(overrides.layers.iter().cloned());
    layers
}

fn stage_prefix_layers(m: &LoadedManifest, profile: &str, stage: &str) -> Vec<Layer> {
    let src = m.source();
    let man = &m.manifest;
    let stages = man.stage_defs();
    let mut layers = vec![
        Layer::defaults(),
        Layer::new(format!("{src}: base"), man.base.0.clone()),
        Layer::new(
            format!("{src}: stages.{stage}.config"),
            stages[stage].config.0.clone(),
        ),
    ];
    if let Some(p) = man.profiles.get(profile) {
        layers.push(Layer::new(
            format!("{src}: profiles.{profile}"),
            p.overlay.0.clone(),
        ));
        if let Some(s) = p.stages.get(stage) {
            layers.push(Layer::new(
                format!("{src}: profiles.{profile}.stages.{stage}"),
                s.0.clone(),
            ));
        }
    }
    layers
}

fn point_layers(m: &LoadedManifest, profile: &str, point: &[(String, usize)], seed: u64) -> Vec<Layer> {
    let src = m.source();
    let substitutes = m.manifest.profiles.get(profile).map(|p| &p.axes);
    let mut layers: Vec<Layer> = point
        .iter()
        .map(|(axis, i)| {
            let ax = &m.manifest.axes[axis];
            let substitute = substitutes.and_then(|s| s.get(axis)).map(|values| &values[*i]);
            let mut v = Value::Object(Map::new());
            for (key, value) in ax.assignments_of(substitute.unwrap_or(&ax.values[*i])) {
                set_path(&mut v, key, value.clone());
            }
            let name = match substitute {
                Some(_) => format!("{src}: profiles.{profile}.axes.{axis} = {}", ax.label(*i)),
                None => format!("{src}: axes.{axis} = {}", ax.label(*i)),
            };
            Layer::new(name, v)
        })
        .collect();
    layers.push(Layer::new(
        format!("{src}: seeds ({seed})"),
        serde_json::json!({ "seed": seed }),
    ));
    layers
}

/// The grid product of all axes, in axis-name order (last axis varies fastest).
pub fn grid(m: &LoadedManifest) -> Vec<Point> {
    m.manifest
        .axes
        .iter()
        .fold(vec![Vec::new()], |acc, (name, axis)| {
            acc.iter()
                .flat_map(|p| {
                    (0..axis.values.len()).map(move |i| {
                        let mut p = p.clone();
                        p.push((name.clone(), i));
                        p
                    })
                })
                .collect()
        })
}

/// A run's point of the axis grid back from its labels (labels are unique per axis, checked at
/// load); a label the manifest no longer has reads as the axis's first value.
pub fn point_of(m: &LoadedManifest, labels: &BTreeMap<String, String>) -> Point {
    labels
        .iter()
        .filter_map(|(axis, label)| {
            let ax = m.manifest.axes.get(axis)?;
            let i = (0..ax.values.len()).find(|&i| ax.label(i) == *label).unwrap_or(0);
            Some((axis.clone(), i))
        })
        .collect()
}

pub fn seeds_for(m: &LoadedManifest, profile: &str) -> Vec<u64> {
    m.manifest
        .profiles
        .get(profile)
        .and_then(|p| p.seeds.clone())
        .unwrap_or_else(|| m.manifest.seeds.clone())
}

/// Expands a manifest under a profile and overrides into the run graph. Fails on the first
/// run whose config does not resolve.
pub fn expand(m: &LoadedManifest, profile: &str, overrides: &Overrides) -> Result<Plan, ConfigError> {
    check_profile(m, profile)?;
    check_overrides(m, profile, overrides)?;
    let defs = m.manifest.stage_defs();
    let needs = defs.iter().map(|(k, v)| (k.clone(), v.needs.clone())).collect();
    let stages = stage_order(&needs).map_err(|s| m.error(&s, "stage cycle"))?;
    // Everything below the axis layers is shared by all runs of a stage: merge it once.
    let prefixes: HashMap<&str, Value> = stages
        .iter()
        .map(|s| (s.as_str(), merge_layers(&stage_prefix_layers(m, profile, s))))
        .collect();
    let top = merge_layers(&overrides.layers);

    let mut plan = Plan {
        manifest: m.manifest.id.clone(),
        profile: profile.to_string(),
        stages: stages.clone(),
        nodes: Vec::new(),
        members: Vec::new(),
        unsupported: m.manifest.unsupported.clone(),
    };
    let mut index: HashMap<String, usize> = HashMap::new();
    for point in grid(m) {
        let labels: BTreeMap<String, String> = point
            .iter()
            .map(|(a, i)| (a.clone(), m.manifest.axes[a].label(*i)))
            .collect();
        for seed in seeds_for(m, profile) {
            let mut of_stage: HashMap<&str, usize> = HashMap::new();
            for stage in &stages {
                let mut value = prefixes[stage.as_str()].clone();
                for layer in point_layers(m, profile, &point, seed) {
                    deep_merge(&mut value, &layer.value);
                }
                deep_merge(&mut value, &top);
                let invalid = |e: &dyn std::fmt::Display| {
                    let needle = point.last().map(|(a, _)| a.as_str()).unwrap_or("base");
                    m.error(
                        needle,
                        format!(
                            "run {} seed={seed} stage={stage}: {e}{}",
                            labels_text(&labels),
                            overrides.hint()
                        ),
                    )
                };
                let config = resolve_merged(&value).map_err(|e| invalid(&e))?;
                // A config that cannot train (epochs: 0, lr: -1, …) is refused before anything
                // is stored; the fake trainer's configs are test fixtures, not runs to train.
                if config.fake.is_none() {
                    config.validate().map_err(|e| invalid(&e))?;
                }
                let parents: Vec<usize> = defs[stage].needs.iter().map(|n| of_stage[n.as_str()]).collect();
                let parent_ids: Vec<String> = parents.iter().map(|&p| plan.nodes[p].id.clone()).collect();
                let config_json = config.canonical_json();
                let id = run_id(&config_json, &parent_ids);
                let node = *index.entry(id.clone()).or_insert_with(|| {
                    plan.nodes.push(PlanNode {
                        id,
                        stage: stage.clone(),
                        labels: labels.clone(),
                        seed,
                        config,
                        config_json,
                        parents,
                        parent_ids,
                    });
                    plan.nodes.len() - 1
                });
                of_stage.insert(stage, node);
                plan.members.push(Member {
                    node,
                    stage: stage.clone(),
                    labels: labels.clone(),
                    seed,
                });
            }
        }
    }
    Ok(plan)
}

/// An override of a key that the manifest varies per run would make its runs identical or
/// their labels false (`--set model.activation=relu` on an activation axis: seven rows, one run,
/// one number shown seven times), so it is refused, naming the axis.
fn check_overrides(m: &LoadedManifest, profile: &str, overrides: &Overrides) -> Result<(), ConfigError> {
    for layer in &overrides.layers {
        for path in leaf_paths(&layer.value, "") {
            let clash = |key: &str| key == path || nested(key, &path) || nested(&path, key);
            if let Some((axis, _)) = m
                .manifest
                .axes
                .iter()
                .find(|(_, ax)| ax.targets().into_iter().any(clash))
            {
                return Err(ConfigError::Usage(format!(
                    "{}: {} varies `{path}` across its runs (axis `{axis}`); an override would \
                     make them one run or mislabel them. Drop it, or edit the axis in {}",
                    layer.name,
                    m.manifest.id,
                    m.path.display()
                )));
            }
            if clash("seed") {
                let seeds: Vec<String> = seeds_for(m, profile).iter().map(u64::to_string).collect();
                return Err(ConfigError::Usage(format!(
                    "{}: the seed of each run comes from {}'s seeds ({}) and labels its results; \
                     change `seeds:` in {} (or in the profile) instead",
                    layer.name,
                    m.manifest.id,
                    seeds.join(", "),
                    m.path.display()
                )));
            }
        }
    }
    Ok(())
}

/// True when `inner` is a key below `outer` (`model.gate` below `model`).
fn nested(inner: &str, outer: &str) -> bool {
    inner
        .strip_prefix(outer)
        .is_some_and(|rest| rest.starts_with('.'))
}

/// The dotted paths of the non-object values in `value`.
fn leaf_paths(value: &Value, prefix: &str) -> Vec<String> {
    match value {
        Value::Object(map) => map
            .iter()
            .flat_map(|(k, v)| {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaf_paths(v, &path)
            })
            .collect(),
        _ => vec![prefix.to_string()],
    }
}

/// `axis=label axis=label`, for messages and listings.
pub fn labels_text(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::LoadedManifest;

    fn manifest(yaml: &str) -> LoadedManifest {
        let manifest = serde_yaml::from_str(yaml).expect("test manifest parses");
        let m = LoadedManifest {
            path: "test.yaml".into(),
            text: yaml.into(),
            manifest,
        };
        crate::config::load::validate(&m).expect("test manifest is valid");
        m
    }

    const GRID: &str = "id: g\ntitle: t\n\
        axes:\n  a: { key: model.activation, values: [relu, aglu] }\n  \
        z: { keys: [model.attention, model.gate], values: [[se, sigmoid], [se, apa], [cbam, apa]] }\n\
        seeds: [0, 1]\n\
        stages:\n  pre: {}\n  ft: { needs: [pre], config: { train: { epochs: 1, schedule: { warmup_epochs: 0 } } } }\n\
        profiles:\n  smoke: { seeds: [5], model: { arch: resnet8, activation: gelu } }\n";

    #[test]
    fn grid_times_seeds_times_stages() {
        let plan = expand(&manifest(GRID), "paper", &Overrides::default()).unwrap();
        assert_eq!(plan.nodes.len(), 2 * 3 * 2 * 2);
        let ft = plan.nodes.iter().find(|n| n.stage == "ft").unwrap();
        assert_eq!(ft.parent_ids, vec![plan.nodes[ft.parents[0]].id.clone()]);
        assert_eq!(plan.nodes[ft.parents[0]].labels, ft.labels);
    }

    #[test]
    fn axes_win_over_profiles_and_profiles_replace_seeds() {
        let plan = expand(&manifest(GRID), "smoke", &Overrides::default()).unwrap();
        assert_eq!(plan.nodes.len(), 2 * 3 * 2);
        assert!(plan.nodes.iter().all(|n| n.config.seed == 5));
        let acts: std::collections::BTreeSet<String> = plan
            .nodes
            .iter()
            .map(|n| format!("{:?}", n.config.model.activation))
            .collect();
        assert_eq!(acts.len(), 2);
    }

    #[test]
    fn profiles_substitute_axis_values_and_keep_labels() {
        let yaml = "id: s\ntitle: t\n\
            axes:\n  depth: { keys: [model.arch, model.reduction], values: [[resnet101, 16], [resnet152, 16]], labels: [R101, R152] }\n\
            profiles:\n  smoke: { note: toy nets, axes: { depth: [[resnet8, 4], [resnet20, 4]] } }\n";
        let m = manifest(yaml);
        assert_eq!(m.manifest.profiles["smoke"].note.as_deref(), Some("toy nets"));
        let plan = expand(&m, "smoke", &Overrides::default()).unwrap();
        let got: Vec<(String, String, usize)> = plan
            .nodes
            .iter()
            .map(|n| {
                (
                    n.labels["depth"].clone(),
                    format!("{:?}", n.config.model.arch),
                    n.config.model.reduction,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("R101".into(), "Resnet8".into(), 4),
                ("R152".into(), "Resnet20".into(), 4)
            ]
        );
        let paper = expand(&m, "paper", &Overrides::default()).unwrap();
        assert_eq!(format!("{:?}", paper.nodes[1].config.model.arch), "Resnet152");
    }

    #[test]
    fn axis_substitutes_are_checked() {
        let bad = |profile: &str| {
            let yaml = format!(
                "id: s\ntitle: t\naxes:\n  a: {{ keys: [model.arch, model.reduction], values: [[resnet50, 16]] }}\n\
                 profiles:\n  p: {profile}\n"
            );
            let manifest = serde_yaml::from_str(&yaml).expect("parses");
            let m = LoadedManifest {
                path: "t.yaml".into(),
                text: yaml,
                manifest,
            };
            crate::config::load::validate(&m).unwrap_err().to_string()
        };
        assert!(bad("{ axes: { b: [[resnet8, 4]] } }").contains("no such axis"));
        assert!(bad("{ axes: { a: [[resnet8, 4], [resnet8, 4]] } }").contains("2 values"));
        assert!(bad("{ axes: { a: [resnet8] } }").contains("list of 2"));
    }

    #[test]
    fn ids_are_stable_and_depend_on_config_and_parents() {
        let m = manifest(GRID);
        let a = expand(&m, "paper", &Overrides::default()).unwrap();
        let b = expand(&m, "paper", &Overrides::default()).unwrap();
        let ids = |p: &Plan| p.nodes.iter().map(|n| n.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        let set = Overrides::from_env_and_sets(&["train.lr=0.5".into()]).unwrap();
        let c = expand(&m, "paper", &set).unwrap();
        assert!(ids(&a).iter().all(|id| !ids(&c).contains(id)));
        assert_ne!(run_id("{}", &[]), run_id("{}", &["x".into()]));
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let cfg: RunConfig = serde_json::from_str(r#"{"train": {"lr": 0.5, "epochs": 2}}"#).unwrap();
        let json = cfg.canonical_json();
        // Struct fields serialise in declaration order (epochs before lr); canonical JSON sorts.
        assert!(json.find("\"batch_size\":").unwrap() < json.find("\"epochs\":2").unwrap());
        assert!(json.find("\"epochs\":2").unwrap() < json.find("\"lr\":0.5").unwrap());
        assert!(json.find("\"data\":").unwrap() < json.find("\"model\":").unwrap());
    }

    #[test]
    fn known_targets_follow_the_schema() {
        let defaults = serde_json::to_value(RunConfig::default()).unwrap();
        use crate::config::load::is_known_target as known;
        assert!(known(&defaults, "model.init.apa_kappa"));
        assert!(known(&defaults, "train.schedule.warmup_epochs"));
        assert!(!known(&defaults, "train.anything"));
        assert!(known(&defaults, "fake.sleep_ms"));
        assert!(!known(&defaults, "model.nope"));
        assert!(!known(&defaults, "modle.arch"));
        assert!(!known(&defaults, "model.arch.deeper"));
        // Left out of the defaults while unset, yet keys of the typed config.
        assert!(known(&defaults, "model.drop_path"));
        assert!(known(&defaults, "train.ema"));
        assert!(known(&defaults, "train.ema.decay"));
        assert!(!known(&defaults, "train.ema.nope"));
        assert!(known(&defaults, "data.rand_augment.m"));
        assert!(!known(&defaults, "data.rand_augment.q"));
    }
}
