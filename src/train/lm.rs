//! Training and evaluating a language model (paper Table 15, following build-nanogpt): next-token
//! cross-entropy over the corpus stream, the validation loss, and HellaSwag zero-shot accuracy.

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::GradientsAccumulator;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};

use super::fit::{
    check_cancel, epoch_seed, learned_params, resume, save_checkpoint, wrong_task, Absorbed, TrainContext,
    TrainError, Updates,
};
use crate::config::RunConfig;
use crate::data::text::tokenizer::Vocabulary;
use crate::data::text::{load_text, Question, TokenBatch, TokenStream};
use crate::data::DataError;
use crate::nn::{FusedBackend, Gpt2};
use crate::result::{EpochMetrics, RunResult};

/// Trains the run's language model on its corpus and evaluates it: `val`/`loss` and
/// `hellaswag`/`acc`, `acc_norm` (percent).
pub(super) fn fit_language<B>(
    run: &RunConfig,
    ctx: &TrainContext<'_>,
    device: &B::Device,
) -> Result<RunResult, TrainError>
where
    B: AutodiffBackend + FusedBackend,
    B::InnerBackend: FusedBackend,
{
    run.validate()?;
    let data = load_text(&run.data)?;
    let text = run.data.text();
    let rows = run.train.batch_size;
    let train = TokenStream::new(&data.train, rows, text.sequence_length)?;
    let val = TokenStream::new(&data.val, rows, text.sequence_length)?;
    let span = (rows * text.sequence_length) as u64;
    let steps = match text.epoch_tokens {
        Some(tokens) => (tokens / span).max(1) as usize,
        None => train.batches_per_pass(),
    };
    let val_steps = ((text.val_tokens / span).max(1) as usize).min(val.batches_per_pass());
    let vocab = run.model.vocab();
    let model = Gpt2::<B>::seeded(&run.model, run.seed, device).map_err(wrong_task)?;
    let mut updates = Updates::<B>::new(run, steps);
    let (mut model, first_epoch) = resume(model, &mut updates, run, ctx, device)?;
    let mut epochs = Vec::new();
    let mut last_val = None;
    for epoch in first_epoch..run.train.epochs {
        crate::nn::rng::seed(epoch_seed(run.seed, epoch));
        let start = Instant::now();
        let mut pending = GradientsAccumulator::<Gpt2<B>>::new();
        let mut sum = 0.0;
        for iter in 0..steps {
            check_cancel(ctx, epoch)?;
            let index = epoch * steps + iter;
            let batch = train.batch(index);
            batch.check_vocab(vocab, || train.origin(index))?;
            let (inputs, targets) = token_tensors::<B>(batch, device);
            let loss = next_token_loss(model.forward(inputs), targets);
            match updates.absorb(model, loss, &mut pending, epoch, iter) {
                Absorbed::Updated(updated, value) => {
                    model = updated;
                    sum += value;
                }
                Absorbed::Diverged(_, reason) => {
                    return Ok(RunResult {
                        diverged: Some(reason),
                        epochs,
                        ..RunResult::default()
                    })
                }
            }
            updates.report(ctx, run, epoch, iter);
        }
        let seconds = start.elapsed().as_secs_f64();
        let done = epoch + 1;
        let evaluate_now =
            (run.eval.eval_every > 0 && done.is_multiple_of(run.eval.eval_every)) || done == run.train.epochs;
        let evaluation_start = Instant::now();
        let val_loss = if evaluate_now {
            let loss = validation_loss(&model.valid(), &val, val_steps, vocab, device)?;
            last_val = Some(loss);
            Some(loss)
        } else {
            None
        };
        let metrics = EpochMetrics {
            epoch: done,
            loss: sum / steps as f64,
            lr: Some(updates.lr(epoch, 0)),
            tokens_per_s: Some((steps as u64 * span) as f64 / seconds.max(1e-9)),
            val_loss,
            eval_seconds: evaluate_now.then(|| evaluation_start.elapsed().as_secs_f64()),
            ..EpochMetrics::default()
        };
        save_checkpoint::<B, _>(run, ctx, &model, &updates, done)?;
        if let Some(observer) = ctx.observer {
            observer.epoch(&metrics, run.train.epochs);
        }
        epochs.push(metrics);
    }
    let inner = model.valid();
    let val_loss = match last_val {
        Some(loss) => loss,
        None => validation_loss(&inner, &val, val_steps, vocab, device)?,
    };
    let (acc, acc_norm) = hellaswag(&inner, &data.questions, &data.vocabulary, device)?;
    Ok(RunResult {
        reported_epoch: Some(run.train.epochs),
        learned: learned_params(model.adaptive_modules()),
        epochs,
        ..RunResult::default()
    }
    .with_metric("val", "loss", val_loss)
    .with_metric("hellaswag", "acc", acc)
    .with_metric("hellaswag", "acc_norm", acc_norm))
}

fn token_tensors<B: Backend>(
    batch: TokenBatch,
    device: &B::Device,
) -> (Tensor<B, 2, Int>, Tensor<B, 2, Int>) {
    let tensor = |tokens| Tensor::from_data(TensorData::new(tokens, batch.shape), device);
    (tensor(batch.inputs), tensor(batch.targets))
}

/// `−log p(target)` at every position, `[N, T]`, for logits `[N, T, V]`.
fn token_losses<B: Backend>(logits: Tensor<B, 3>, targets: Tensor<B, 2, Int>) -> Tensor<B, 2> {
    let [n, t, _] = logits.dims();
    let picked = log_softmax(logits, 2).gather(2, targets.reshape([n, t, 1]));
    picked.reshape([n, t]).neg()
}

/// The mean next-token cross-entropy.
fn next_token_loss<B: Backend>(logits: Tensor<B, 3>, targets: Tensor<B, 2, Int>) -> Tensor<B, 1> {
    token_losses(logits, targets).mean()
}

/// The mean loss over the first `steps` batches of the validation stream.
fn validation_loss<B: FusedBackend>(
    model: &Gpt2<B>,
    val: &TokenStream<'_>,
    steps: usize,
    vocab: usize,
    device: &B::Device,
) -> Result<f64, DataError> {
    let mut sum = 0.0;
    for index in 0..steps {
        let batch = val.batch(index);
        batch.check_vocab(vocab, || val.origin(index))?;
        let (inputs, targets) = token_tensors::<B>(batch, device);
        sum += next_token_loss(model.forward(inputs), targets)
            .into_scalar()
            .elem::<f64>();
    }
    Ok(sum / steps as f64)
}

/// HellaSwag accuracy, in percent, as build-nanogpt scores it: each ending follows the context
/// (tokens of `" " + ending`), and the ending with the lowest total loss over its tokens is the
/// answer of `acc`, the one with the lowest mean loss per token that of `acc_norm`. A row longer
/// than the model's context keeps its last tokens.
fn hellaswag<B: FusedBackend>(
    model: &Gpt2<B>,
    questions: &[Question],
    vocabulary: &Vocabulary,
    device: &B::Device,
) -> Result<(f64, f64), DataError> {
    let (mut right, mut right_norm) = (0usize, 0usize);
    for question in questions {
        let context = vocabulary.encode(&question.ctx)?;
        let endings = question
            .endings
            .iter()
            .map(|e| vocabulary.encode(&format!(" {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let losses = ending_losses(model, &context, &endings, device);
        let (total, mean) = choices(&losses);
        right += usize::from(total == question.label);
        right_norm += usize::from(mean == question.label);
    }
    let percent = |n: usize| 100.0 * n as f64 / questions.len().max(1) as f64;
    Ok((percent(right), percent(right_norm)))
}

/// The loss of each token of each ending after the context.
fn ending_losses<B: FusedBackend>(
    model: &Gpt2<B>,
    context: &[u32],
    endings: &[Vec<u32>],
    device: &B::Device,
) -> Vec<Vec<f32>> {
    let limit = model.context();
    let rows: Vec<(Vec<u32>, usize)> = endings
        .iter()
        .map(|ending| {
            let mut row = [context, ending.as_slice()].concat();
            let cut = row.len().saturating_sub(limit);
            row.drain(..cut);
            let ending_start = row.len() - ending.len().min(row.len());
            (row, ending_start)
        })
        .collect();
    let length = rows.iter().map(|(row, _)| row.len()).max().unwrap_or(1).max(2);
    let padded: Vec<i64> = rows
        .iter()
        .flat_map(|(row, _)| {
            row.iter()
                .map(|&t| i64::from(t))
                .chain(std::iter::repeat(0))
                .take(length)
        })
        .collect();
    let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(padded, [rows.len(), length]), device);
    let inputs = tokens.clone().narrow(1, 0, length - 1);
    let targets = tokens.narrow(1, 1, length - 1);
    let losses = token_losses(model.forward(inputs), targets)
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .unwrap_or_default();
    rows.iter()
        .enumerate()
        .map(|(r, (row, start))| {
            // Position p predicts token p + 1: an ending's tokens start..len are predicted at
            // start − 1..len − 1.
            let from = r * (length - 1) + start.saturating_sub(1);
            losses[from..r * (length - 1) + row.len() - 1].to_vec()
        })
        .collect()
}

/// The ending with the lowest total loss and the one with the lowest mean loss per token.
fn choices(losses: &[Vec<f32>]) -> (usize, usize) {
    let lowest = |score: &dyn Fn(&[f32]) -> f64| {
        (0..losses.len())
            .min_by(|&a, &b| score(&losses[a]).total_cmp(&score(&losses[b])))
            .unwrap_or_default()
    };
    let total = |l: &[f32]| l.iter().map(|&v| f64::from(v)).sum::<f64>();
    let mean = |l: &[f32]| total(l) / l.len().max(1) as f64;
    (lowest(&total), lowest(&mean))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_and_mean_loss_can_choose_differently() {
        // A long ending with a low mean but a high total, and a short one the other way round.
        let losses = vec![vec![1.0, 1.0, 1.0, 1.0], vec![1.5], vec![3.0, 3.0]];
        assert_eq!(choices(&losses), (1, 0));
    }
}
