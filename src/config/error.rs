use std::fmt;
use std::path::{Path, PathBuf};

/// An input error: a manifest, an override or a name the user gave. The CLI exits 2 on these.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{location}: {message}")]
    Invalid { location: Location, message: String },
    #[error("{0}")]
    Usage(String),
}

/// Where an input error is: a file (or `--set`, environment) and, when known, a line.
#[derive(Debug, Clone)]
pub struct Location {
    pub source: String,
    pub line: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.source),
            None => write!(f, "{}", self.source),
        }
    }
}

impl ConfigError {
    pub fn invalid(source: impl Into<String>, line: Option<usize>, message: impl Into<String>) -> Self {
        Self::Invalid {
            location: Location {
                source: source.into(),
                line,
            },
            message: message.into(),
        }
    }

    pub fn in_file(path: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        Self::invalid(path.display().to_string(), line, message)
    }
}

impl crate::exit::ExitStatus for ConfigError {
    fn exit_code(&self) -> i32 {
        crate::exit::INPUT
    }
}
