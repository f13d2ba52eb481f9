//! Read-only commands: config, plan, status, show, list.

use std::collections::{BTreeMap, HashMap};

use clap::Args;
use serde::Serialize;

use super::common::{labels_text, print_json, DbArg, ManifestArgs, ManifestOpts};
use repro::config::layers::explain;
use repro::config::load::{load_all, LoadedManifest, ManifestKind};
use repro::exec::{plan_report, PlanReport};
use repro::plan::{run_layers, NodeState};

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub manifest: ManifestArgs,
    /// Say which layer set this key, for each run
    #[arg(long, value_name = "KEY.PATH")]
    pub explain: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct ConfigLine {
    run: String,
    stage: String,
    labels: BTreeMap<String, String>,
    seed: u64,
    /// The resolved config, or with --explain the sentence naming the layer.
    config: serde_json::Value,
}

pub fn cmd_config(args: ConfigArgs) -> anyhow::Result<()> {
    let (m, plan) = args.manifest.plan(ManifestKind::Any)?;
    let overrides = args.manifest.opts.overrides()?;
    let mut lines = Vec::new();
    for member in &plan.members {
        let node = &plan.nodes[member.node];
        let config = match &args.explain {
            Some(key) => {
                let point = point_of(&m, &member.labels);
                let layers = run_layers(&m, &plan.profile, &member.stage, &point, member.seed, &overrides);
                serde_json::Value::String(explain(&layers, key)?)
            }
            None => serde_json::to_value(&node.config)?,
        };
        lines.push(ConfigLine {
            run: node.id.clone(),
            stage: member.stage.clone(),
            labels: member.labels.clone(),
            seed: member.seed,
            config,
        });
    }
    if args.json {
        return print_json(&lines);
    }
    for l in lines {
        println!(
            "# run {} stage={} seed={} {}",
            l.run,
            l.stage,
            l.seed,
            labels_text(&l.labels)
        );
        match &l.config {
            serde_json::Value::String(s) => println!("{s}\n"),
            cfg => println!("{}", serde_yaml::to_string(cfg)?),
        }
    }
    Ok(())
}

/// Axis value indices back from labels (labels are unique per axis, checked at load).
fn point_of(m: &LoadedManifest, labels: &BTreeMap<String, String>) -> Vec<(String, usize)> {
    labels
        .iter()
        .map(|(axis, label)| {
            let ax = &m.manifest.axes[axis];
            let i = (0..ax.values.len()).find(|&i| ax.label(i) == *label).unwrap_or(0);
            (axis.clone(), i)
        })
        .collect()
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub manifest: ManifestArgs,
    #[command(flatten)]
    pub db: DbArg,
    #[arg(long)]
    pub json: bool,
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn print_report(r: &PlanReport) {
    println!("{} (profile {}): {} runs", r.manifest, r.profile, r.runs);
    println!(
        "  {:<12} {:>6} {:>7} {:>7} {:>7} {:>6} {:>8}",
        "stage", "done", "to run", "blocked", "running", "failed", "diverged"
    );
    for c in &r.stages {
        println!(
            "  {:<12} {:>6} {:>7} {:>7} {:>7} {:>6} {:>8}",
            c.stage, c.done, c.to_run, c.blocked, c.running, c.failed, c.diverged
        );
    }
    println!(
        "  cost of what is left: {} epochs, {} image passes",
        grouped(r.cost.epochs),
        grouped(r.cost.image_passes)
    );
    if let Some(reason) = &r.unsupported {
        println!("  unsupported: {reason} (`repro run` refuses it)");
    }
}

pub fn cmd_plan(args: PlanArgs) -> anyhow::Result<()> {
    let (_, plan) = args.manifest.plan(ManifestKind::Any)?;
    let store = args.db.open_if_exists()?;
    let (report, _) = plan_report(&plan, store.as_ref())?;
    if args.json {
        return print_json(&report);
    }
    print_report(&report);
    Ok(())
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Manifest id or path; all manifests in the store when left out
    pub name: Option<String>,
    #[command(flatten)]
    pub opts: ManifestOpts,
    #[command(flatten)]
    pub db: DbArg,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct RunLine {
    run: String,
    stage: String,
    labels: BTreeMap<String, String>,
    seed: u64,
    state: NodeState,
    error: Option<String>,
    metrics: BTreeMap<String, BTreeMap<String, f64>>,
}

pub fn cmd_status(args: StatusArgs) -> anyhow::Result<()> {
    let Some(name) = args.name.clone() else {
        let summaries = args.db.open_existing()?.manifest_summaries()?;
        if args.json {
            return print_json(&summaries);
        }
        for s in summaries {
            let parts: Vec<String> = s.by_status.iter().map(|(k, v)| format!("{v} {k}")).collect();
            println!(
                "{} [{}]: {}/{} done ({})",
                s.manifest,
                s.profile,
                s.done(),
                s.total,
                parts.join(", ")
            );
        }
        return Ok(());
    };
    let (_, plan) = args.opts.plan(&name, ManifestKind::Any)?;
    let store = args.db.open_if_exists()?;
    let (report, states) = plan_report(&plan, store.as_ref())?;
    let stored: HashMap<String, _> = match &store {
        Some(store) => store
            .manifest_runs(&plan.manifest, &plan.profile)?
            .into_iter()
            .map(|r| (r.run_id.clone(), r))
            .collect(),
        None => HashMap::new(),
    };
    let lines: Vec<RunLine> = plan
        .nodes
        .iter()
        .zip(&states)
        .map(|(n, s)| RunLine {
            run: n.id.clone(),
            stage: n.stage.clone(),
            labels: n.labels.clone(),
            seed: n.seed,
            state: *s,
            error: stored.get(&n.id).and_then(|r| r.error.clone()),
            metrics: stored.get(&n.id).map(|r| r.metrics.clone()).unwrap_or_default(),
        })
        .collect();
    if args.json {
        return print_json(&serde_json::json!({ "summary": report, "runs": lines }));
    }
    print_report(&report);
    for l in lines {
        let err = l.error.map(|e| format!("  ({e})")).unwrap_or_default();
        println!(
            "  {}  {:<8} {:<10} seed={} {}{err}",
            l.run,
            l.stage,
            l.state.as_str(),
            l.seed,
            labels_text(&l.labels)
        );
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Run id (a unique prefix is enough)
    pub run: String,
    #[command(flatten)]
    pub db: DbArg,
    #[arg(long)]
    pub json: bool,
}

pub fn cmd_show(args: ShowArgs) -> anyhow::Result<()> {
    let store = args.db.open_existing()?;
    let d = store.run_detail(&args.run)?;
    if args.json {
        return print_json(&d);
    }
    println!(
        "run {}  stage {}  status {}  attempt {}  seed {}",
        d.id, d.stage, d.status, d.attempt, d.seed
    );
    if !d.parents.is_empty() {
        println!("parents: {}", d.parents.join(", "));
    }
    for (manifest, profile, labels) in &d.members {
        println!("in {manifest} [{profile}] {labels}");
    }
    println!("provenance:");
    for (k, v) in &d.provenance {
        println!("  {k}: {v}");
    }
    println!("config:\n{}", indent(&serde_yaml::to_string(&d.config)?));
    let r = &d.result;
    println!("final metrics:");
    for (split, values) in &r.metrics {
        for (name, value) in values {
            println!("  {split}/{name} = {value}");
        }
    }
    println!("per-epoch metrics:");
    for e in &r.epochs {
        let optional = |name: &str, v: Option<f64>| v.map_or(String::new(), |v| format!("  {name} {v:.4}"));
        println!(
            "  epoch {:>4}  loss {:.4}{}{}{}",
            e.epoch,
            e.loss,
            optional("lr", e.lr),
            optional("test_top1", e.test_top1),
            optional("images/s", e.images_per_s),
        );
    }
    if !r.classes.is_empty() {
        println!("per-class results: {} classes", r.classes.len());
    }
    for p in &r.learned {
        println!("  learned {}.{} = {}", p.module, p.name, p.value);
    }
    for a in &r.artifacts {
        println!(
            "  artifact {}: {} ({} bytes, sha256 {})",
            a.kind,
            a.path.display(),
            a.bytes.unwrap_or(0),
            a.sha256.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long, default_value = "experiments")]
    pub experiments: std::path::PathBuf,
    #[command(flatten)]
    pub db: DbArg,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct ListLine {
    id: String,
    path: String,
    title: Option<String>,
    error: Option<String>,
    /// profile → (done, total) as recorded in the store
    progress: BTreeMap<String, (usize, usize)>,
}

pub fn cmd_list(args: ListArgs) -> anyhow::Result<()> {
    if !args.experiments.is_dir() {
        return Err(repro::config::ConfigError::Usage(format!(
            "no manifest folder {} (run from the project folder, or pass --experiments DIR)",
            args.experiments.display()
        ))
        .into());
    }
    let summaries = match args.db.open_if_exists()? {
        Some(store) => store.manifest_summaries()?,
        None => Vec::new(),
    };
    let lines: Vec<ListLine> = load_all(&args.experiments, ManifestKind::Any)
        .into_iter()
        .map(|(path, loaded)| {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            let (id, title, error) = match loaded {
                Ok(m) => (m.manifest.id, Some(m.manifest.title), None),
                Err(e) => (stem, None, Some(e.to_string())),
            };
            let progress = summaries
                .iter()
                .filter(|s| s.manifest == id)
                .map(|s| (s.profile.clone(), (s.done(), s.total)))
                .collect();
            ListLine {
                id,
                path: path.display().to_string(),
                title,
                error,
                progress,
            }
        })
        .collect();
    if args.json {
        return print_json(&lines);
    }
    for l in lines {
        let progress: Vec<String> = l
            .progress
            .iter()
            .map(|(p, (d, t))| format!("{p} {d}/{t}"))
            .collect();
        let progress = if progress.is_empty() {
            "not run".to_string()
        } else {
            progress.join(", ")
        };
        match (l.title, l.error) {
            (Some(title), _) => println!("{:<20} {progress:<24} {title}", l.id),
            (None, Some(err)) => println!("{:<20} INVALID: {err}", l.id),
            (None, None) => println!("{}", l.id),
        }
    }
    Ok(())
}
