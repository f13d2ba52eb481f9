//! The minijinja environment: built-in templates (compiled into the binary from templates/), a
//! user folder whose files of the same name take precedence, and auto-escaping by output kind.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{context, AutoEscape, Environment, Error, ErrorKind, Value};

use super::escape;
use super::table::TableModel;
use super::RenderError;

/// Built-in templates by name. `.md` ones escape values for Markdown, `.tex` ones for LaTeX,
/// `.html` ones (the results site's) for HTML.
pub const BUILTIN: [(&str, &str); 10] = [
    ("table.md.j2", include_str!("../../templates/table.md.j2")),
    ("table.tex.j2", include_str!("../../templates/table.tex.j2")),
    (
        "table.compact.md.j2",
        include_str!("../../templates/table.compact.md.j2"),
    ),
    (
        "table.compact.tex.j2",
        include_str!("../../templates/table.compact.tex.j2"),
    ),
    (
        "site/base.html.j2",
        include_str!("../../templates/site/base.html.j2"),
    ),
    (
        "site/macros.html.j2",
        include_str!("../../templates/site/macros.html.j2"),
    ),
    (
        "site/index.html.j2",
        include_str!("../../templates/site/index.html.j2"),
    ),
    (
        "site/table.html.j2",
        include_str!("../../templates/site/table.html.j2"),
    ),
    (
        "site/run.html.j2",
        include_str!("../../templates/site/run.html.j2"),
    ),
    (
        "site/runs.html.j2",
        include_str!("../../templates/site/runs.html.j2"),
    ),
];

const TEX: &str = "tex";
const MD: &str = "md";

pub struct Templates {
    env: Environment<'static>,
    user_dir: Option<PathBuf>,
}

impl Templates {
    /// `user_dir`: templates there replace the built-in ones of the same file name.
    pub fn new(user_dir: Option<&Path>) -> Result<Self, RenderError> {
        if let Some(dir) = user_dir {
            if !dir.is_dir() {
                return Err(RenderError::TemplateDir(dir.to_path_buf()));
            }
        }
        let mut env = Environment::new();
        // Rendered files end with a newline like any text file. The default delimiters always
        // build, so the fallback (no trailing newline) is never taken.
        if let Ok(syntax) = SyntaxConfig::builder().keep_trailing_newline(true).build() {
            env.set_syntax(syntax);
        }
        let dir = user_dir.map(Path::to_path_buf);
        env.set_loader(move |name| {
            if let Some(path) = dir.as_ref().map(|d| d.join(name)).filter(|p| p.is_file()) {
                return std::fs::read_to_string(&path).map(Some).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidOperation,
                        format!("cannot read {}: {e}", path.display()),
                    )
                });
            }
            Ok(BUILTIN
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, source)| source.to_string()))
        });
        env.set_auto_escape_callback(|name| {
            let kind = name.strip_suffix(".j2").unwrap_or(name);
            match kind.rsplit('.').next() {
                Some("tex") => AutoEscape::Custom(TEX.into()),
                Some("md") => AutoEscape::Custom(MD.into()),
                Some("html" | "htm") => AutoEscape::Html,
                _ => AutoEscape::None,
            }
        });
        env.set_formatter(|out, state, value| {
            let escape: fn(&str) -> String = match state.auto_escape() {
                AutoEscape::Custom(k) if k == TEX => escape::latex,
                AutoEscape::Custom(k) if k == MD => escape::markdown,
                _ => return minijinja::escape_formatter(out, state, value),
            };
            // `none` would otherwise print as the word; an absent number prints as nothing.
            if value.is_none() || value.is_undefined() {
                return Ok(());
            }
            let text = value.to_string();
            let text = if value.is_safe() { text } else { escape(&text) };
            out.write_str(&text)
                .map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string()))
        });
        Ok(Self {
            env,
            user_dir: user_dir.map(Path::to_path_buf),
        })
    }

    /// Which user templates replace built-in ones, and when each was last changed: two
    /// renderings with the same identity (and the same program) draw the same pages.
    pub fn identity(&self) -> String {
        let Some(dir) = &self.user_dir else {
            return String::new();
        };
        BUILTIN
            .iter()
            .filter_map(|(name, _)| {
                let modified = std::fs::metadata(dir.join(name)).ok()?.modified().ok()?;
                Some(format!("{name} {modified:?}"))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Renders template `name` with the table as `table`.
    pub fn render(&self, name: &str, table: &TableModel) -> Result<String, RenderError> {
        self.render_context(name, context! { table => Value::from(Serde(table)) })
    }

    /// Renders template `name` with any context (the site's pages).
    pub fn render_context(&self, name: &str, ctx: Value) -> Result<String, RenderError> {
        let template = self.env.get_template(name).map_err(|e| self.error(name, e))?;
        template.render(ctx).map_err(|e| self.error(name, e))
    }

    /// Names the file the error is in (user folder or built-in) and its line.
    fn error(&self, requested: &str, e: Error) -> RenderError {
        let name = e.name().unwrap_or(requested).to_string();
        let file = match self
            .user_dir
            .as_ref()
            .map(|d| d.join(&name))
            .filter(|p| p.is_file())
        {
            Some(path) => path.display().to_string(),
            None => format!("templates/{name} (built in)"),
        };
        let mut message = e.detail().map_or_else(|| e.kind().to_string(), str::to_string);
        if e.kind() == ErrorKind::TemplateNotFound {
            let _ = write!(message, " (no template `{name}`)");
        }
        RenderError::Template {
            file,
            line: e.line(),
            message,
        }
    }
}
