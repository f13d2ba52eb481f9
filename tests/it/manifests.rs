//! Every manifest in experiments/ loads and plans under each of its profiles, the scaled profiles
//! stay runnable on a CPU, and every paper number a manifest carries is the number the paper
//! prints on that row's line (tests/fixtures/paper.txt is the paper's extracted text).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use repro::config::data::DatasetKind;
use repro::config::load::manifest_files;
use repro::config::{load_manifest, ManifestKind, Overrides};
use repro::plan::expand;
use serde_yaml::Value;

fn experiments() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments")
}

fn manifests() -> Vec<PathBuf> {
    let files = manifest_files(&experiments(), ManifestKind::Any);
    assert!(
        files.len() >= 30,
        "expected the paper's manifests, found {}",
        files.len()
    );
    files
}

#[test]
fn every_manifest_plans_under_every_profile() {
    let mut planned = 0;
    for file in manifests() {
        let m = match load_manifest(&file) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        };
        let man = &m.manifest;
        for profile in ["paper", "cpu", "smoke"] {
            assert!(
                profile == "paper" || man.profiles.contains_key(profile),
                "{}: no `{profile}` profile",
                m.source()
            );
            let plan = expand(&m, profile, &Overrides::default())
                .unwrap_or_else(|e| panic!("{} --profile {profile}: {e}", m.source()));
            assert!(
                !plan.nodes.is_empty(),
                "{} --profile {profile}: no runs",
                m.source()
            );
            planned += 1;
            if man.unsupported.is_some() {
                continue;
            }
            for node in &plan.nodes {
                let where_ = format!("{} --profile {profile}, run {:?}", m.source(), node.labels);
                if let Err(e) = node.config.validate() {
                    panic!("{where_}: {e}");
                }
                let data = &node.config.data;
                match profile {
                    // The smoke scale must need nothing downloaded and finish in seconds.
                    "smoke" => {
                        let synthetic = [DatasetKind::SyntheticLt, DatasetKind::SyntheticText];
                        assert!(synthetic.contains(&data.dataset), "{where_}: smoke data");
                        assert!(node.config.train.epochs <= 3, "{where_}: smoke epochs");
                        let images = data.dataset == DatasetKind::SyntheticLt;
                        assert!(
                            !images || data.resolved_image_size() <= 16,
                            "{where_}: smoke image size"
                        );
                        assert_eq!(node.seed, 0, "{where_}: smoke seeds");
                    }
                    // ImageNet-scale data does not fit the CPU scale's hours.
                    "cpu" => {
                        assert!(
                            !data.dataset.is_split_list(),
                            "{where_}: cpu uses {:?}",
                            data.dataset
                        );
                        assert!(node.config.train.epochs <= 30, "{where_}: cpu epochs");
                        assert!(data.resolved_image_size() <= 32, "{where_}: cpu image size");
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(planned > 0);
}

#[test]
fn unsupported_manifests_say_why_and_carry_the_papers_numbers() {
    let mut seen = 0;
    for file in manifests() {
        let yaml = read_yaml(&file);
        if yaml.get("unsupported").is_none() {
            continue;
        }
        seen += 1;
        let reason = yaml["unsupported"].as_str().unwrap_or_default();
        assert!(reason.len() > 20, "{}: say why it cannot run", file.display());
        let reported = yaml["table"]["reported"].as_mapping().map_or(0, |m| m.len());
        assert!(reported > 0, "{}: no paper numbers", file.display());
    }
    assert_eq!(seen, 3, "Tables 5, 6(a) and 6(b) are the unsupported ones");
}

// ---------------------------------------------------------------------------------------------
// Transcription check.

fn read_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn paper_lines() -> Vec<String> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/paper.txt"))
            .expect("tests/fixtures/paper.txt");
    text.lines().map(clean_line).collect()
}

/// Removes what the text extraction adds to a table row: the improvement superscripts
/// ("68.3+1.9+1.9{}^{\textbf{+1.9}}start_FLOATSUPERSCRIPT +1.9 end_FLOATSUPERSCRIPT" is the
/// cell 68.3 with a "+1.9" superscript, whose text appears twice before the LaTeX) and the
/// dashed-rule command glued to a row's name; runs of white space (some are no-break spaces)
/// become one space.
fn clean_line(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut s = words.join(" ").trim_start_matches("\\hdashline").to_string();
    while let Some(open) = s.find("{}^{") {
        let Some(end_rel) = s[open..].find(" end_FLOATSUPERSCRIPT") else {
            break;
        };
        let end = open + end_rel;
        let sup_start = s[open..end]
            .rfind("start_FLOATSUPERSCRIPT ")
            .map(|i| open + i + "start_FLOATSUPERSCRIPT ".len());
        let sup = sup_start.map(|i| s[i..end].to_string()).unwrap_or_default();
        let mut head = s[..open].to_string();
        for _ in 0..2 {
            if !sup.is_empty() && head.ends_with(&sup) {
                head.truncate(head.len() - sup.len());
            }
        }
        s = format!("{head}{}", &s[end + " end_FLOATSUPERSCRIPT".len()..]);
    }
    s
}

/// A table cell as printed: a number, or "-" / "Failed" for none.
fn cell(token: &str) -> Option<Option<f64>> {
    match token {
        "-" | "Failed" => Some(None),
        t => t
            .parse::<f64>()
            .ok()
            .filter(|_| t.chars().next().is_some_and(|c| c.is_ascii_digit()))
            .map(Some),
    }
}

/// The cells at the end of a row's line (everything before them is the row's name).
fn trailing_cells(line: &str) -> Vec<Option<f64>> {
    let mut cells: Vec<Option<f64>> = line.split_whitespace().rev().map_while(cell).collect();
    cells.reverse();
    cells
}

/// The lines of Table `number`: from its caption to the next caption.
fn table_block(lines: &[String], number: &str) -> Vec<String> {
    let caption = format!("Table {number}:");
    let start = lines
        .iter()
        .position(|l| l.starts_with(&caption))
        .unwrap_or_else(|| panic!("no `{caption}` in the paper text"));
    lines[start + 1..]
        .iter()
        .take_while(|l| !is_caption(l))
        .cloned()
        .collect()
}

fn is_caption(line: &str) -> bool {
    line.strip_prefix("Table ")
        .and_then(|rest| rest.split_once(':'))
        .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// "4(c)" → ["4"], "11+12" → ["11", "12"], "Figure 1" → [].
fn table_numbers(paper_table: &str) -> Vec<String> {
    if paper_table.starts_with("Fig") {
        return Vec::new();
    }
    paper_table
        .split('+')
        .map(|part| part.chars().take_while(char::is_ascii_digit).collect::<String>())
        .filter(|n| !n.is_empty())
        .collect()
}

fn numbers(values: &[Option<f64>]) -> Vec<f64> {
    values.iter().flatten().copied().collect()
}

/// Whether `line` is the row `anchor` with the manifest's `values`: the line starts with the
/// anchor (followed by a non-alphanumeric character), and the numbers of its cells — those at
/// `columns` when given — equal the manifest's numbers, in order. Empty cells on either side are
/// skipped ("-" in the paper; null where a manifest's column is not in the printed row).
fn row_matches(line: &str, anchor: &str, values: &[Option<f64>], columns: Option<&[usize]>) -> bool {
    let Some(rest) = line.strip_prefix(anchor) else {
        return false;
    };
    if rest.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()) {
        return false;
    }
    let cells = trailing_cells(rest);
    let cells: Vec<Option<f64>> = match columns {
        Some(cols) => match cols
            .iter()
            .map(|&c| cells.get(c).copied())
            .collect::<Option<Vec<_>>>()
        {
            Some(picked) => picked,
            None => return false,
        },
        None => cells,
    };
    numbers(&cells) == numbers(values)
}

fn as_values(v: &Value) -> Vec<Option<f64>> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("reported values must be a list, got {v:?}"))
        .iter()
        .map(|x| {
            if x.is_null() {
                None
            } else {
                Some(x.as_f64().expect("a number or null"))
            }
        })
        .collect()
}

fn label_of(axis: &Value, i: usize) -> String {
    if let Some(l) = axis["labels"].as_sequence().and_then(|ls| ls.get(i)) {
        return l.as_str().unwrap().to_string();
    }
    match &axis["values"][i] {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other).unwrap().trim().to_string(),
    }
}

/// Row labels in the table's order (several row axes: labels joined with " / ").
fn row_order(yaml: &Value) -> Vec<String> {
    let rows: Vec<String> = match &yaml["table"]["rows"] {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(s) => s.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
        other => panic!("table.rows: {other:?}"),
    };
    rows.iter().fold(vec![String::new()], |acc, axis| {
        let ax = &yaml["axes"][axis.as_str()];
        let n = ax["values"].as_sequence().map_or(0, Vec::len);
        acc.iter()
            .flat_map(|p| {
                (0..n).map(move |i| {
                    let l = label_of(ax, i);
                    if p.is_empty() {
                        l
                    } else {
                        format!("{p} / {l}")
                    }
                })
            })
            .collect()
    })
}

/// Problems with one manifest's paper numbers (empty when it is a faithful transcription).
fn transcription_errors(yaml: &Value, lines: &[String]) -> Vec<String> {
    let table = &yaml["table"];
    let mut rows: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    for key in ["reported", "reported_rows"] {
        if let Some(map) = table[key].as_mapping() {
            for (label, values) in map {
                rows.insert(label.as_str().unwrap().to_string(), as_values(values));
            }
        }
    }
    if rows.is_empty() {
        return Vec::new();
    }
    let paper_table = yaml["paper"]["table"].as_str().expect("paper.table");
    let numbers_of_tables = table_numbers(paper_table);
    if numbers_of_tables.is_empty() {
        return vec![format!(
            "paper.table `{paper_table}` names no table, but there are paper numbers"
        )];
    }
    let block: Vec<String> = numbers_of_tables
        .iter()
        .flat_map(|n| table_block(lines, n))
        .collect();
    let columns: Option<Vec<usize>> = yaml["paper"]["columns"]
        .as_sequence()
        .map(|c| c.iter().map(|v| v.as_u64().unwrap() as usize).collect());
    let anchor_of = |label: &str| -> String {
        table["paper_labels"][label]
            .as_str()
            .map_or(label.to_string(), str::to_string)
    };
    let mut errors = Vec::new();
    for (label, values) in &rows {
        let anchor = anchor_of(label);
        if anchor.is_empty() {
            continue; // unnamed rows: checked below, as a sequence
        }
        let found = block
            .iter()
            .any(|l| row_matches(l, &anchor, values, columns.as_deref()));
        if !found {
            let candidates: Vec<String> = block
                .iter()
                .filter(|l| l.starts_with(&anchor))
                .map(|l| format!("{:?}", trailing_cells(&l[anchor.len()..])))
                .collect();
            errors.push(format!(
                "row `{label}` {values:?}: no line of Table {paper_table} starting with `{anchor}` has these numbers (lines with that name have {candidates:?})"
            ));
        }
    }
    // Rows the paper prints without names (lost check-marks): its bare numbers, in order.
    let unnamed: Vec<String> = row_order(yaml)
        .into_iter()
        .filter(|l| rows.contains_key(l) && anchor_of(l).is_empty())
        .collect();
    if !unnamed.is_empty() {
        let ours: Vec<f64> = unnamed.iter().flat_map(|l| numbers(&rows[l])).collect();
        let printed: Vec<f64> = block
            .iter()
            .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
                [one] => cell(one).flatten(),
                _ => None,
            })
            .collect();
        if ours != printed {
            errors.push(format!(
                "unnamed rows {unnamed:?} are {ours:?}; Table {paper_table} prints {printed:?}"
            ));
        }
    }
    errors
}

#[test]
fn paper_numbers_are_the_papers() {
    let lines = paper_lines();
    let mut errors = Vec::new();
    let mut checked = 0;
    for file in manifests() {
        let yaml = read_yaml(&file);
        let errs = transcription_errors(&yaml, &lines);
        checked += yaml["table"]["reported"].as_mapping().map_or(0, |m| m.len());
        errors.extend(errs.into_iter().map(|e| format!("{}: {e}", file.display())));
    }
    assert!(errors.is_empty(), "transcription errors:\n{}", errors.join("\n"));
    assert!(checked > 100, "only {checked} reported rows checked");
}

#[test]
fn the_check_catches_typos_and_reads_superscripts() {
    let line = clean_line(
        "APA* + AGLU (ours) 68.3+1.9+1.9{}^{\\textbf{+1.9}}start_FLOATSUPERSCRIPT +1.9 end_FLOATSUPERSCRIPT 54.8+0.9+0.9{}^{\\textbf{+0.9}}start_FLOATSUPERSCRIPT +0.9 end_FLOATSUPERSCRIPT 39.4 55.70.00.0{}^{\\text{0.0}}start_FLOATSUPERSCRIPT 0.0 end_FLOATSUPERSCRIPT",
    );
    assert_eq!(line, "APA* + AGLU (ours) 68.3 54.8 39.4 55.7");
    let v = |xs: &[f64]| xs.iter().map(|x| Some(*x)).collect::<Vec<_>>();
    assert!(row_matches(
        &line,
        "APA* + AGLU (ours)",
        &v(&[68.3, 54.8, 39.4, 55.7]),
        None
    ));
    assert!(!row_matches(
        &line,
        "APA* + AGLU (ours)",
        &v(&[68.3, 54.8, 39.4, 55.8]),
        None
    ));
    assert!(!row_matches(
        &line,
        "APA* + AGLU (ours)",
        &v(&[54.8, 68.3, 39.4, 55.7]),
        None
    ));
    assert!(!row_matches(
        &line,
        "APA* + AGLU (ours)",
        &v(&[68.3, 54.8, 39.4]),
        None
    ));
    assert!(!row_matches(
        &line,
        "APA* (ours)",
        &v(&[68.3, 54.8, 39.4, 55.7]),
        None
    ));
    assert!(row_matches("TSC [53] 69.7 -", "TSC", &v(&[69.7]), Some(&[0])));
    assert!(!row_matches("TSC [53] 69.7 -", "TSC", &v(&[69.7]), Some(&[1])));
    assert!(row_matches("CNT [67] - 39.2", "CNT", &[None, Some(39.2)], None));
    assert!(!row_matches("CEx 51.7 52.9", "CE", &v(&[51.7, 52.9]), None));
    assert_eq!(table_numbers("11+12"), vec!["11", "12"]);
    assert_eq!(table_numbers("4(c)"), vec!["4"]);
}

/// Planning merges layers with a fast JSON merge; `config --explain` asks figment which layer
/// set a key. The two must resolve every run of every manifest to the same config.
#[test]
fn the_fast_merge_and_figment_agree_on_every_run() {
    use repro::config::layers::{merge_layers, merge_with_figment, resolve_merged};
    use repro::plan::{grid, run_layers, seeds_for};
    let mut compared = 0;
    for file in manifests() {
        let m = load_manifest(&file).expect("manifest loads");
        for profile in std::iter::once("paper").chain(m.manifest.profiles.keys().map(String::as_str)) {
            for stage in m.manifest.stage_defs().keys() {
                for point in grid(&m).iter().take(4) {
                    let seed = seeds_for(&m, profile)[0];
                    let layers = run_layers(&m, profile, stage, point, seed, &Overrides::default());
                    let fast = resolve_merged(&merge_layers(&layers)).expect("fast merge resolves");
                    let figment = merge_with_figment(&layers).expect("figment merges");
                    let slow = resolve_merged(&figment).expect("figment merge resolves");
                    assert_eq!(fast, slow, "{} [{profile}] {stage} {point:?}", m.manifest.id);
                    compared += 1;
                }
            }
        }
    }
    assert!(compared > 100, "compared {compared} runs");
}

/// A run's page attributes every key of its config at once (`key_sources`); `config --explain`
/// asks figment one key at a time. They must name the same layer for every key.
#[test]
fn key_sources_name_the_layer_explain_names() {
    use repro::config::layers::{explain, key_sources};
    use repro::plan::{grid, run_layers, seeds_for};
    let mut compared = 0;
    for file in manifests() {
        let m = load_manifest(&file).expect("manifest loads");
        for profile in std::iter::once("paper").chain(m.manifest.profiles.keys().map(String::as_str)) {
            let stage = m.manifest.stage_defs().keys().last().cloned().expect("a stage");
            let Some(point) = grid(&m).into_iter().next() else {
                continue;
            };
            let seed = seeds_for(&m, profile)[0];
            let layers = run_layers(&m, profile, &stage, &point, seed, &Overrides::default());
            for (key, layer) in key_sources(&layers) {
                let said = explain(&layers, &key).expect("explain knows the key");
                assert!(
                    said.ends_with(&format!("(set by {layer})")),
                    "{} [{profile}] {key}: {said} vs {layer}",
                    m.manifest.id
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 1000, "compared {compared} keys");
}
