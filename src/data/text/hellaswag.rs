//! HellaSwag (Zellers et al., 2019): sentence completions with four candidate endings, one right.
//! The official validation file is one JSON object per line; `ctx`, `endings` and `label` are
//! what zero-shot evaluation reads.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::data::download::{download_verified, Checksum, Timeouts};
use crate::data::DataError;

/// The official validation file, pinned to a commit of the authors' repository, and the git
/// blob id it has there.
const URL: &str =
    "https://raw.githubusercontent.com/rowanz/hellaswag/a29ff8e9a04bba4bd6588223785ce105328adc57/data/hellaswag_val.jsonl";
const BLOB_SHA1: &str = "0f5ee25d72216f12317d5d8a7b92deafa423d81e";

/// One question: a context and four endings, `label` the right one.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Question {
    pub ctx: String,
    pub endings: Vec<String>,
    pub label: usize,
}

/// `root/hellaswag/hellaswag_val.jsonl`, downloaded and checked when absent (if allowed).
pub fn ensure(root: &Path, download: bool) -> Result<PathBuf, DataError> {
    let path = root.join("hellaswag").join("hellaswag_val.jsonl");
    if path.is_file() {
        return Ok(path);
    }
    let missing = |reason: String| DataError::Missing {
        what: "HellaSwag's validation set".into(),
        expected: path.clone(),
        archive: path.clone(),
        url: URL.into(),
        reason,
    };
    if !download {
        return Err(missing("downloading is disabled (data.download: false)".into()));
    }
    let folder = root.join("hellaswag");
    std::fs::create_dir_all(&folder).map_err(|e| DataError::io(&folder, e))?;
    download_verified(URL, Checksum::GitBlob(BLOB_SHA1), &path, &Timeouts::default()).map_err(
        |e| match e {
            DataError::Network { reason, .. } => missing(format!("download failed: {reason}")),
            other => other,
        },
    )?;
    Ok(path)
}

/// Every question of a HellaSwag jsonl file.
pub fn read(path: &Path) -> Result<Vec<Question>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let questions = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let bad = |reason: String| DataError::Question {
                file: path.to_path_buf(),
                line: i + 1,
                reason,
            };
            let question: Question = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
            if question.endings.len() < 2 || question.label >= question.endings.len() {
                let reason = format!("label {} of {} endings", question.label, question.endings.len());
                return Err(bad(reason));
            }
            Ok(question)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if questions.is_empty() {
        return Err(DataError::Format {
            path: path.to_path_buf(),
            what: "HellaSwag jsonl",
            reason: "no questions".into(),
        });
    }
    Ok(questions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_official_layout_and_names_a_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hellaswag_val.jsonl");
        let line = r#"{"ind": 24, "activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.", "ctx_b": "he", "ctx": "A man is sitting on a roof. he", "split": "val", "split_type": "indomain", "label": 3, "endings": ["is using wrap to wrap a pair of skis.", "is ripping level tiles off.", "is holding a rubik's cube.", "starts pulling up roofing on a roof."], "source_id": "activitynet~v_-JhWjGDPHMY"}"#;
        std::fs::write(&path, format!("{line}\n")).unwrap();
        let questions = read(&path).unwrap();
        assert_eq!(questions[0].label, 3);
        assert_eq!(questions[0].ctx, "A man is sitting on a roof. he");
        std::fs::write(
            &path,
            format!("{line}\n{{\"ctx\": \"x\", \"endings\": [\"a\"], \"label\": 2}}\n"),
        )
        .unwrap();
        let message = read(&path).unwrap_err().to_string();
        assert!(
            message.contains("hellaswag_val.jsonl:2") && message.contains("label 2 of 1"),
            "{message}"
        );
    }

    #[test]
    fn checks_the_git_blob_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "hello\n").unwrap();
        // `printf 'hello\n' | git hash-object --stdin`
        Checksum::GitBlob("ce013625030ba8dba906f756967f9e9ca394464a")
            .verify(&path)
            .unwrap();
        assert!(Checksum::GitBlob(BLOB_SHA1).verify(&path).is_err());
    }
}
