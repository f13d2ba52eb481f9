//! The data of the language models: a token corpus read as build-nanogpt reads it (sequential
//! batches of B × T tokens and their next tokens, shard after shard, wrapping around at the end),
//! a validation stream, and HellaSwag questions for zero-shot evaluation.

pub mod hellaswag;
pub mod shards;
pub mod synthetic;
pub mod tokenizer;

use crate::config::data::{DataConfig, DatasetKind};
use crate::data::DataError;
pub use hellaswag::Question;
use shards::{open_shards, ShardSplit, Tokens};
use tokenizer::Vocabulary;

/// A language model's corpus: training and validation shards and the evaluation questions.
pub struct TextData {
    pub train: Vec<Tokens>,
    pub val: Vec<Tokens>,
    pub questions: Vec<Question>,
    /// How the questions' text becomes the shards' tokens.
    pub vocabulary: Vocabulary,
}

/// Reads (or, for `synthetic_text`, generates) the corpus a config names.
pub fn load_text(cfg: &DataConfig) -> Result<TextData, DataError> {
    cfg.validate().map_err(DataError::Config)?;
    let text = cfg.text();
    let mut data = match cfg.dataset {
        DatasetKind::SyntheticText => synthetic::corpus(&text, cfg.synthetic_seed)?,
        DatasetKind::FinewebEdu => {
            let folder = text
                .shards
                .clone()
                .unwrap_or_else(|| cfg.root.join("edu_fineweb10B"));
            let path = match &text.hellaswag {
                Some(path) => path.clone(),
                None => hellaswag::ensure(&cfg.root, cfg.download)?,
            };
            TextData {
                train: open_shards(&folder, ShardSplit::Train)?,
                val: open_shards(&folder, ShardSplit::Val)?,
                questions: hellaswag::read(&path)?,
                vocabulary: Vocabulary::Gpt2,
            }
        }
        other => {
            return Err(DataError::Config(format!(
                "data.dataset {other:?} is an image dataset, not a token corpus"
            )))
        }
    };
    if let Some(limit) = text.hellaswag_limit {
        data.questions.truncate(limit);
    }
    Ok(data)
}

/// Batches of `rows` sequences of `length` tokens, read in order from a list of shards as
/// build-nanogpt's `DataLoaderLite` does: each batch takes `rows·length + 1` tokens (inputs,
/// and targets one token later), the next starts `rows·length` on, and a shard is left when the
/// next batch would not fit in it. Batch `i` is known without reading the ones before it, so a
/// resumed run reads on exactly where it stopped.
pub struct TokenStream<'a> {
    shards: &'a [Tokens],
    /// Batches each shard holds.
    per_shard: Vec<usize>,
    rows: usize,
    length: usize,
}

/// One batch: `inputs` and `targets`, each `[rows, length]` row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBatch {
    pub inputs: Vec<i64>,
    pub targets: Vec<i64>,
    pub shape: [usize; 2],
}

impl<'a> TokenStream<'a> {
    pub fn new(shards: &'a [Tokens], rows: usize, length: usize) -> Result<Self, DataError> {
        let span = rows * length;
        let per_shard: Vec<usize> = shards.iter().map(|s| s.len().saturating_sub(1) / span).collect();
        if let Some(short) = shards.iter().zip(&per_shard).find(|(_, &n)| n == 0) {
            return Err(DataError::Config(format!(
                "{} holds {} tokens, fewer than one batch needs ({span} + 1: train.batch_size × data.text.sequence_length)",
                short.0.origin(),
                short.0.len()
            )));
        }
        Ok(Self {
            shards,
            per_shard,
            rows,
            length,
        })
    }

    /// Batches in one pass over every shard.
    pub fn batches_per_pass(&self) -> usize {
        self.per_shard.iter().sum()
    }

    /// The `index`-th batch from the start of the stream, wrapping around after the last shard.
    pub fn batch(&self, index: usize) -> TokenBatch {
        let (shard, at) = self.locate(index);
        let span = self.rows * self.length;
        let tokens = self.shards[shard].read(at * span, span + 1);
        TokenBatch {
            inputs: tokens[..span].to_vec(),
            targets: tokens[1..].to_vec(),
            shape: [self.rows, self.length],
        }
    }

    /// Which shard batch `index` comes from, for messages.
    pub fn origin(&self, index: usize) -> String {
        self.shards[self.locate(index).0].origin()
    }

    /// (shard, batch within it) of the `index`-th batch.
    fn locate(&self, index: usize) -> (usize, usize) {
        let mut at = index % self.batches_per_pass();
        let mut shard = 0;
        while at >= self.per_shard[shard] {
            at -= self.per_shard[shard];
            shard += 1;
        }
        (shard, at)
    }
}

impl TokenBatch {
    /// Fails on the first token the model has no embedding for.
    pub fn check_vocab(&self, vocab: usize, origin: impl FnOnce() -> String) -> Result<(), DataError> {
        let last = self.targets.last().copied();
        let bad = self
            .inputs
            .iter()
            .chain(last.iter())
            .position(|&t| t < 0 || t as usize >= vocab);
        match bad {
            None => Ok(()),
            Some(position) => Err(DataError::TokenOutOfRange {
                origin: origin(),
                position,
                token: if position < self.inputs.len() {
                    self.inputs[position]
                } else {
                    last.unwrap_or_default()
                },
                vocab,
            }),
        }
    }
}

/// Sequences per epoch, for cost estimates without reading a shard: `epoch_tokens`, else
/// the published size of the corpus (FineWeb-Edu's 10B sample: 99 training shards of 100M
/// tokens), else the generated corpus's size.
pub fn sequences_per_epoch(cfg: &DataConfig) -> usize {
    let text = cfg.text();
    let tokens = text.epoch_tokens.unwrap_or(match cfg.dataset {
        DatasetKind::FinewebEdu => 9_900_000_000,
        _ => text.synthetic_tokens as u64,
    });
    (tokens / text.sequence_length.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_follow_build_nanogpts_loader() {
        // Shard lengths 11 and 7 with 2 × 2 batches: 10 / 4 = 2 batches, then 6 / 4 = 1.
        let shards = vec![
            Tokens::Owned((0..11).collect()),
            Tokens::Owned((100..107).collect()),
        ];
        let stream = TokenStream::new(&shards, 2, 2).unwrap();
        assert_eq!(stream.batches_per_pass(), 3);
        let first = stream.batch(0);
        assert_eq!(first.inputs, [0, 1, 2, 3]);
        assert_eq!(first.targets, [1, 2, 3, 4]);
        assert_eq!(stream.batch(1).inputs, [4, 5, 6, 7]);
        assert_eq!(stream.batch(2).inputs, [100, 101, 102, 103]);
        assert_eq!(stream.batch(2).targets, [101, 102, 103, 104]);
        assert_eq!(stream.batch(3), first, "wraps around");
    }

    #[test]
    fn a_shard_shorter_than_a_batch_and_a_foreign_token_are_errors() {
        let shards = vec![Tokens::Owned(vec![1, 2, 3])];
        let message = TokenStream::new(&shards, 2, 2).err().unwrap().to_string();
        assert!(message.contains("holds 3 tokens"), "{message}");
        let batch = TokenBatch {
            inputs: vec![1, 2, 99],
            targets: vec![2, 99, 3],
            shape: [1, 3],
        };
        let message = batch
            .check_vocab(50, || "shard.npy".into())
            .err()
            .unwrap()
            .to_string();
        assert!(
            message.contains("shard.npy") && message.contains("token 99 at position 2"),
            "{message}"
        );
    }
}
