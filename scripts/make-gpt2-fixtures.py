#!/usr/bin/env python3
"""Writes `repro verify` fixtures for GPT-2, built by Hugging Face transformers with random weights.

    python3 scripts/make-gpt2-fixtures.py REFERENCE_CHECKOUT OUT_DIR [--full]

REFERENCE_CHECKOUT is a checkout of github.com/kostas1515/AGLU: its AGLU module (`UniRect` in
classification/resnet_cifar.py) is imported, not copied, and put in place of the tanh GELU
(`gelu_new`) in every block's MLP, one shared κ/λ per block. Needs torch, transformers and
safetensors (all from PyPI; the models are built offline from a `GPT2Config`, nothing is
downloaded). Every case is transformers' own `GPT2LMHeadModel` with random weights, random
LayerNorm scales and shifts, random biases, embeddings and κ/λ, no dropout, eager attention, run
in eval mode on a random batch of token ids.

The saved state dict holds the parameters only: `lm_head.weight` is tied to
`transformer.wte.weight` and left out (safetensors refuses shared tensors), and so is any buffer.

Without --full only the small `gpt2_test` cases are written (~100-150 kB per file: they are the
committed tests/fixtures/models/gpt2_test_*). --full adds GPT-2 small (124M parameters, ~500 MB
per format), not committed. Then: `repro verify --weights both OUT_DIR/*.json`.
"""
import json
import os
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.pytorch_utils import Conv1D

# The geometry repro's `arch` names stand for.
GPT2_TEST = {"vocab_size": 97, "n_positions": 64, "n_embd": 32, "n_layer": 2, "n_head": 2}
GPT2_SMALL = {"vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12}


def cases(full):
    # (name, arch, geometry, batch, tokens, activation)
    yield "gpt2_test_gelu", "gpt2_test", GPT2_TEST, 2, 16, "gelu_tanh"
    yield "gpt2_test_aglu", "gpt2_test", GPT2_TEST, 2, 16, "aglu"
    if full:
        yield "gpt2_gelu", "gpt2", GPT2_SMALL, 2, 16, "gelu_tanh"
        yield "gpt2_aglu", "gpt2", GPT2_SMALL, 2, 16, "aglu"


def build(geometry):
    config = GPT2Config(
        **geometry,
        activation_function="gelu_new",  # 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        layer_norm_epsilon=1e-5,
        # GPT-2's <|endoftext|> is its last token; 50256 would lie outside the small vocabulary.
        bos_token_id=geometry["vocab_size"] - 1, eos_token_id=geometry["vocab_size"] - 1,
        # Plain additive-mask softmax attention, rather than whichever SDPA kernel is picked.
        attn_implementation="eager",
    )
    return GPT2LMHeadModel(config)


def randomise(model):
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
            elif isinstance(module, Conv1D):
                # Conv1D's weight is [in, out]. GPT-2's std of 0.02 (and 0.02/√(2·n_layer) for
                # c_proj) leaves logits near zero, where a wrong layer barely shows.
                module.weight.normal_(0, module.weight.shape[0] ** -0.5)
                module.bias.normal_(0, 0.05)
        model.transformer.wte.weight.normal_(0, 0.5)
        model.transformer.wpe.weight.normal_(0, 0.5)
        for key, param in model.named_parameters():
            if key.endswith("kappa_param"):
                param.uniform_(0.5, 1.5)
            elif key.endswith("lambda_param"):
                param.uniform_(0.2, 1.0)


def parameters_only(model):
    # named_parameters() lists a tied tensor once, under its first name (transformer.wte.weight),
    # and lists no buffers; state_dict() would add lm_head.weight and any buffer.
    assert model.lm_head.weight is model.transformer.wte.weight, "lm_head is not tied to wte"
    names = {k for k, _ in model.named_parameters()}
    assert "lm_head.weight" not in names
    return {k: v.contiguous() for k, v in model.state_dict().items() if k in names}


def main():
    args = [a for a in sys.argv[1:] if a != "--full"]
    if len(args) != 2:
        sys.exit(__doc__)
    reference, out = args
    sys.path.insert(0, os.path.join(reference, "classification"))
    import resnet_cifar  # noqa: E402  (needs the path above)

    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    for name, arch, geometry, batch, tokens, activation in cases("--full" in sys.argv):
        model = build(geometry)
        if activation == "aglu":
            for block in model.transformer.h:
                block.mlp.act = resnet_cifar.UniRect()
        randomise(model)
        model.eval()
        vocab = geometry["vocab_size"]
        x = torch.randint(0, vocab, (batch, tokens))
        with torch.no_grad():
            logits = model(input_ids=x, use_cache=False).logits
            exact = model.double()(input_ids=x, use_cache=False).logits
        model.float()
        state = parameters_only(model)
        save_file(state, os.path.join(out, name + ".safetensors"))
        torch.save(state, os.path.join(out, name + ".pth"))
        # The tolerance: twenty times the float32 model's own distance from float64.
        spread = float((logits.double() - exact).abs().max())
        g = geometry
        fixture = {
            "name": name,
            "note": f"transformers {transformers.__version__} GPT2LMHeadModel ({arch} geometry: vocab "
                    f"{g['vocab_size']}, {g['n_positions']} positions, width {g['n_embd']}, "
                    f"{g['n_layer']} layers, {g['n_head']} heads), MLP activation "
                    f"{'the reference AGLU (UniRect, shared κ/λ per block)' if activation == 'aglu' else 'gelu_new (tanh GELU)'}, "
                    f"no dropout, eager attention, eval mode; lm_head.weight is tied to "
                    f"transformer.wte.weight and omitted from the weights; "
                    f"float32 vs float64 spread {spread:.2e}",
            "model": {"arch": arch, "vocab_size": vocab, "activation": activation},
            "weights": name + ".safetensors", "weights_pth": name + ".pth", "mode": "eval",
            "tolerance": {"max_abs": max(20 * spread, 1e-5)},
            "input_shape": list(x.shape), "input": x.flatten().tolist(),
            "logits_shape": list(logits.shape), "logits": logits.flatten().tolist(),
            "state_dict_keys": sorted(state),
        }
        with open(os.path.join(out, name + ".json"), "w") as f:
            json.dump(fixture, f)
        print(f"{name}: max |logit| {float(logits.abs().max()):.4g}, float32 vs float64 {spread:.2e}")


if __name__ == "__main__":
    main()
