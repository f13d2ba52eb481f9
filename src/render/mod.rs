//! Render: stored runs → table model → statistics → templates → results/tables/*.md | *.tex
//! (+ CSV, JSON), the paper's figures from the runs' result files, and the results site.

pub mod escape;
pub mod export;
pub mod figures;
pub mod site;
pub mod stats;
pub mod table;
pub mod templates;

use std::path::{Path, PathBuf};

pub use table::{build, TableModel};
pub use templates::Templates;

use crate::config::LoadedManifest;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("manifest `{0}` has no `table` section")]
    NoTable(String),
    #[error("template error in {file}{}: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Template {
        file: String,
        line: Option<usize>,
        message: String,
    },
    #[error("--templates {0}: not a folder")]
    TemplateDir(PathBuf),
    #[error("cannot write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("figure {path}: {message}")]
    Figure { path: PathBuf, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl crate::exit::ExitStatus for RenderError {
    fn exit_code(&self) -> i32 {
        match self {
            RenderError::NoTable(_) | RenderError::Template { .. } | RenderError::TemplateDir(_) => {
                crate::exit::INPUT
            }
            RenderError::Store(e) => e.exit_code(),
            _ => crate::exit::FAILURE,
        }
    }
}

/// Output formats; Markdown and LaTeX come in a full and a compact (paper-style) variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Md,
    Latex,
    Csv,
    Json,
}

/// The files of one table: (file name, contents).
pub fn render_table(
    templates: &Templates,
    table: &TableModel,
    format: Format,
) -> Result<Vec<(String, String)>, RenderError> {
    let stem = file_stem(&table.id, &table.profile);
    Ok(match format {
        Format::Md => vec![
            (format!("{stem}.md"), templates.render("table.md.j2", table)?),
            (
                format!("{stem}.compact.md"),
                templates.render("table.compact.md.j2", table)?,
            ),
        ],
        Format::Latex => vec![
            (format!("{stem}.tex"), templates.render("table.tex.j2", table)?),
            (
                format!("{stem}.compact.tex"),
                templates.render("table.compact.tex.j2", table)?,
            ),
        ],
        Format::Csv => vec![(format!("{stem}.csv"), export::csv(table))],
        Format::Json => vec![(format!("{stem}.json"), export::json(table)?)],
    })
}

/// `table4f` under the paper profile, `table4f.smoke` under another: profiles never overwrite
/// each other's tables.
pub fn file_stem(id: &str, profile: &str) -> String {
    if profile == crate::config::manifest::PAPER_PROFILE {
        id.to_string()
    } else {
        format!("{id}.{profile}")
    }
}

/// The table of a manifest under a profile, from the store.
pub fn table_from_store(store: &Store, m: &LoadedManifest, profile: &str) -> Result<TableModel, RenderError> {
    let runs = store.manifest_runs(&m.manifest.id, profile)?;
    build(m, profile, &runs)
}

/// A user's own template, `table.<kind>.j2` or `<kind>.j2`, renders to `<stem>.<kind>`.
pub fn render_custom(
    templates: &Templates,
    table: &TableModel,
    name: &str,
) -> Result<(String, String), RenderError> {
    let base = name.strip_suffix(".j2").unwrap_or(name);
    let kind = base.strip_prefix("table.").unwrap_or(base);
    let file = format!("{}.{kind}", file_stem(&table.id, &table.profile));
    Ok((file, templates.render(name, table)?))
}

/// Renders `formats` of a table, and each of the `custom` templates, into `out_dir`; returns
/// the paths written.
pub fn write_table(
    templates: &Templates,
    table: &TableModel,
    formats: &[Format],
    custom: &[String],
    out_dir: &Path,
) -> Result<Vec<PathBuf>, RenderError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RenderError::Io { path, source }
    };
    std::fs::create_dir_all(out_dir).map_err(io(out_dir))?;
    let mut files = Vec::new();
    for format in formats {
        files.extend(render_table(templates, table, *format)?);
    }
    for name in custom {
        files.push(render_custom(templates, table, name)?);
    }
    let mut written = Vec::new();
    for (name, text) in files {
        let path = out_dir.join(name);
        std::fs::write(&path, text).map_err(io(&path))?;
        written.push(path);
    }
    Ok(written)
}
