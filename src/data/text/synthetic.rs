//! A text corpus a two-block GPT learns in seconds, with questions in HellaSwag's form about it.
//! A seeded world gives each of sixteen people one food they like and one city they live in;
//! documents are a few true sentences about random people (" alice likes plums. bob lives in
//! oslo."), tokenised with GPT-2's encoding and each prefixed by the end-of-text token, as the
//! FineWeb-Edu shards are. A question gives a sentence or two and "<person> lives in" (or
//! "likes"), with the right city (or food) among four endings: chance is 25%, a model that
//! has learned the world answers nearly all.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::shards::Tokens;
use super::tokenizer::{encode, Vocabulary, END_OF_TEXT};
use super::{Question, TextData};
use crate::config::data::TextConfig;
use crate::data::DataError;

const PEOPLE: [&str; 16] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "kevin", "laura",
    "mike", "nina", "oscar", "peggy",
];
const FOODS: [&str; 8] = [
    "apples", "pears", "plums", "grapes", "figs", "bread", "cheese", "rice",
];
const CITIES: [&str; 8] = [
    "paris", "rome", "oslo", "lima", "cairo", "delhi", "tokyo", "berlin",
];

/// Who likes and lives where.
struct World {
    food: Vec<usize>,
    city: Vec<usize>,
}

impl World {
    fn new(rng: &mut StdRng) -> Self {
        Self {
            food: PEOPLE.iter().map(|_| rng.random_range(0..FOODS.len())).collect(),
            city: PEOPLE.iter().map(|_| rng.random_range(0..CITIES.len())).collect(),
        }
    }

    /// A true sentence about `person`, with a leading space as running text has.
    fn sentence(&self, person: usize, city: bool) -> String {
        match city {
            true => format!(" {} lives in {}.", PEOPLE[person], CITIES[self.city[person]]),
            false => format!(" {} likes {}.", PEOPLE[person], FOODS[self.food[person]]),
        }
    }

    fn document(&self, rng: &mut StdRng) -> String {
        let sentences = rng.random_range(3..9);
        (0..sentences)
            .map(|_| self.sentence(rng.random_range(0..PEOPLE.len()), rng.random_bool(0.5)))
            .collect()
    }

    fn question(&self, rng: &mut StdRng) -> Question {
        let lead: String = (0..rng.random_range(0..3))
            .map(|_| self.sentence(rng.random_range(0..PEOPLE.len()), rng.random_bool(0.5)))
            .collect();
        let person = rng.random_range(0..PEOPLE.len());
        let city = rng.random_bool(0.5);
        let (verb, choices, right) = match city {
            true => ("lives in", &CITIES[..], self.city[person]),
            false => ("likes", &FOODS[..], self.food[person]),
        };
        let mut wrong: Vec<usize> = (0..choices.len()).filter(|&c| c != right).collect();
        wrong.shuffle(rng);
        let mut endings: Vec<usize> = wrong.into_iter().take(3).chain([right]).collect();
        endings.shuffle(rng);
        Question {
            ctx: format!("{lead} {} {verb}", PEOPLE[person]),
            label: endings.iter().position(|&c| c == right).unwrap_or_default(),
            endings: endings.iter().map(|&c| format!("{}.", choices[c])).collect(),
        }
    }
}

/// The corpus a `synthetic_text` config describes: `synthetic_tokens` training tokens, a tenth
/// as many validation tokens, and `synthetic_questions` questions. Its vocabulary is the GPT-2
/// tokens the corpus and the questions use, renumbered from 0 (the end-of-text token first).
pub fn corpus(text: &TextConfig, seed: u64) -> Result<TextData, DataError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let world = World::new(&mut rng);
    let mut stream = |count: usize| -> Result<Vec<u32>, DataError> {
        let mut tokens = Vec::with_capacity(count + 64);
        while tokens.len() < count {
            tokens.push(END_OF_TEXT);
            tokens.extend(encode(&world.document(&mut rng))?);
        }
        tokens.truncate(count);
        Ok(tokens)
    };
    let train = stream(text.synthetic_tokens)?;
    let val = stream(text.synthetic_tokens / 10)?;
    let questions: Vec<Question> = (0..text.synthetic_questions)
        .map(|_| world.question(&mut rng))
        .collect();
    let mut used: Vec<u32> = train.iter().chain(&val).copied().collect();
    for q in &questions {
        used.extend(encode(&q.ctx)?);
        for ending in &q.endings {
            used.extend(encode(&format!(" {ending}"))?);
        }
    }
    used.sort_unstable();
    used.dedup();
    let compact = |tokens: Vec<u32>| -> Tokens {
        Tokens::Owned(
            tokens
                .iter()
                .map(|t| used.binary_search(t).unwrap_or_default() as u16)
                .collect(),
        )
    };
    Ok(TextData {
        train: vec![compact(train)],
        val: vec![compact(val)],
        questions,
        vocabulary: Vocabulary::Compact(used),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_have_one_true_ending() {
        let text = TextConfig {
            synthetic_tokens: 2_000,
            synthetic_questions: 50,
            ..TextConfig::default()
        };
        let data = corpus(&text, 4).unwrap();
        assert_eq!(data.train[0].len(), 2_000);
        assert_eq!(data.val[0].len(), 200);
        let Vocabulary::Compact(list) = &data.vocabulary else {
            panic!("a compact vocabulary")
        };
        assert!(list.len() < 100, "{} tokens", list.len());
        let first = data.train[0].read(0, 1)[0] as usize;
        assert_eq!(list[first], END_OF_TEXT);
        for q in &data.questions {
            data.vocabulary.encode(&q.ctx).unwrap();
        }
        let mut rng = StdRng::seed_from_u64(4);
        let world = World::new(&mut rng);
        for q in &data.questions {
            assert_eq!(q.endings.len(), 4);
            let person = PEOPLE
                .iter()
                .position(|p| {
                    q.ctx.ends_with(&format!(" {p} lives in")) || q.ctx.ends_with(&format!(" {p} likes"))
                })
                .unwrap();
            let right = match q.ctx.ends_with("lives in") {
                true => CITIES[world.city[person]],
                false => FOODS[world.food[person]],
            };
            assert_eq!(q.endings[q.label], format!("{right}."));
            assert_eq!(q.endings.iter().filter(|e| e.starts_with(right)).count(), 1);
        }
        // The same seed, the same corpus.
        assert_eq!(corpus(&text, 4).unwrap().questions, data.questions);
    }
}
