//! GPT-2's byte-pair encoding (tiktoken's `r50k_base`, the same merges), as every open GPT-2
//! reproduction tokenises with it: documents prefixed by the end-of-text token, text encoded
//! without interpreting special tokens.

use std::sync::OnceLock;

use tiktoken_rs::CoreBPE;

use crate::data::DataError;

/// `<|endoftext|>`: separates documents in the token shards.
pub const END_OF_TEXT: u32 = 50_256;

fn bpe() -> Result<&'static CoreBPE, DataError> {
    static BPE: OnceLock<Result<CoreBPE, String>> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::r50k_base().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| DataError::Config(format!("GPT-2's tokenizer could not be built: {e}")))
}

/// The tokens of `text`, special-token strings encoded as plain text.
pub fn encode(text: &str) -> Result<Vec<u32>, DataError> {
    Ok(bpe()?.encode_ordinary(text))
}

/// How a corpus's text becomes model tokens.
#[derive(Debug, Clone, PartialEq)]
pub enum Vocabulary {
    /// GPT-2's token ids.
    Gpt2,
    /// GPT-2's tokens renumbered 0, 1, … in the order of this list, for a corpus that uses few
    /// of them (the generated one: its model needs a few dozen outputs, not 50,257).
    Compact(Vec<u32>),
}

impl Vocabulary {
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, DataError> {
        let tokens = encode(text)?;
        match self {
            Vocabulary::Gpt2 => Ok(tokens),
            Vocabulary::Compact(list) => tokens
                .into_iter()
                .map(|t| {
                    list.binary_search(&t).map(|i| i as u32).map_err(|_| {
                        DataError::Config(format!(
                            "{text:?} has a token outside the generated corpus's vocabulary"
                        ))
                    })
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Token ids as GPT-2's published encoder gives them.
    #[test]
    fn encodes_like_gpt2() {
        assert_eq!(encode("Hello world").unwrap(), [15496, 995]);
        let special = encode("<|endoftext|>").unwrap();
        assert!(
            special.len() > 1 && !special.contains(&END_OF_TEXT),
            "special tokens stay text"
        );
    }
}
