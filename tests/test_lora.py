"""course_utils.finetune.lora against peft's LoRA (same weights -> same outputs, before and after
merging), for nn.Linear and GPT-2's Conv1D, plus peft prompt tuning on the course's tokenizer
layout. Tiny random models only: a few seconds."""

import copy

import pytest
import torch
from _finetune_fixtures import gpt_tokenizer, tiny_gpt
from peft import (
    LoraConfig,
    PeftModel,
    PromptTuningConfig,
    PromptTuningInit,
    TaskType,
    get_peft_model,
)
from torch import nn
from transformers.pytorch_utils import Conv1D

from course_utils.finetune import costs
from course_utils.finetune.lora import (
    LoRALayer,
    count_trainable_parameters,
    inject_lora,
    linear_module_names,
    lora_forward,
    merge_lora,
    merge_lora_weights,
    rank_for_energy,
    target_matches,
    update_singular_values,
)

torch.set_num_threads(1)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.Linear(6, 12)
        self.act = nn.GELU()
        self.down = nn.Linear(12, 4)

    def forward(self, x):
        return self.down(self.act(self.up(x)))


def _copy_into_peft(mine: nn.Module, peft_model, scale_b: float = 0.5) -> None:
    """Random non-zero B (at init B = 0 and every LoRA equals its base), same A and B in both."""
    gen = torch.Generator().manual_seed(7)
    inner = peft_model.base_model.model
    n = 0
    for name, layer in mine.named_modules():
        if isinstance(layer, LoRALayer):
            target = inner.get_submodule(name)
            with torch.no_grad():
                layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=gen) * scale_b)
                target.lora_A["default"].weight.copy_(layer.lora_A)
                target.lora_B["default"].weight.copy_(layer.lora_B)
            n += 1
    assert n > 0


def _pair(model, targets, r=4, alpha=8.0, fan_in_fan_out=False):
    mine = inject_lora(copy.deepcopy(model), targets, r=r, alpha=alpha)
    theirs = get_peft_model(copy.deepcopy(model), LoraConfig(
        r=r, lora_alpha=alpha, target_modules=targets, lora_dropout=0.0,
        fan_in_fan_out=fan_in_fan_out))
    _copy_into_peft(mine, theirs)
    return mine.eval(), theirs.eval()


def test_lora_on_linear_matches_peft_before_and_after_merging():
    torch.manual_seed(0)
    base = MLP()
    mine, theirs = _pair(base, ["up", "down"], r=3, alpha=6.0)
    x = torch.randn(5, 6)
    assert not torch.allclose(mine(x), base(x), atol=1e-3)  # the update really contributes
    torch.testing.assert_close(mine(x), theirs(x))
    merged_mine, merged_theirs = merge_lora(mine), theirs.merge_and_unload()
    assert isinstance(merged_mine.up, nn.Linear) and not isinstance(merged_mine.up, LoRALayer)
    torch.testing.assert_close(merged_mine(x), merged_theirs(x), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(merged_mine.up.weight, merged_theirs.up.weight)


def test_lora_on_gpt2_conv1d_matches_peft_before_and_after_merging():
    base = tiny_gpt(60, seed=1).eval()
    mine, theirs = _pair(base, ["c_attn", "c_fc"], r=4, alpha=16.0, fan_in_fan_out=True)
    ids = torch.randint(0, 60, (2, 11))
    out = mine(input_ids=ids).logits
    assert not torch.allclose(out, base(input_ids=ids).logits, atol=1e-3)
    torch.testing.assert_close(out, theirs(input_ids=ids).logits)
    merged_mine, merged_theirs = merge_lora(mine), theirs.merge_and_unload()
    attn = merged_mine.transformer.h[0].attn.c_attn
    assert type(attn) is Conv1D
    torch.testing.assert_close(attn.weight, merged_theirs.transformer.h[0].attn.c_attn.weight)
    torch.testing.assert_close(merged_mine(input_ids=ids).logits,
                               merged_theirs(input_ids=ids).logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(merged_mine(input_ids=ids).logits, out, atol=1e-5, rtol=1e-4)


def test_fresh_lora_changes_nothing_and_only_a_b_train():
    torch.manual_seed(0)
    base = nn.Linear(8, 5)
    layer = LoRALayer(copy.deepcopy(base), r=2, alpha=4)
    x = torch.randn(3, 8)
    torch.testing.assert_close(layer(x), base(x))  # B starts at zero
    assert (layer.lora_B == 0).all() and layer.lora_A.abs().sum() > 0
    assert layer.scaling == 2.0
    layer(x).sum().backward()
    assert layer.base.weight.grad is None and layer.lora_B.grad is not None


def test_lora_layer_forward_is_the_formula():
    torch.manual_seed(0)
    base = nn.Linear(7, 3)
    layer = LoRALayer(base, r=2, alpha=3)
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(4, 7)
    expected = torch.nn.functional.linear(x, base.weight, base.bias) + 1.5 * (
        x @ layer.lora_A.T @ layer.lora_B.T)
    torch.testing.assert_close(layer(x), expected)
    torch.testing.assert_close(lora_forward(x, base.weight, base.bias, layer.lora_A,
                                            layer.lora_B, 3, 2), expected)
    merged = merge_lora_weights(base.weight, layer.lora_A, layer.lora_B, 3, 2)
    torch.testing.assert_close(torch.nn.functional.linear(x, merged, base.bias), expected)


def test_dropout_only_in_training_mode():
    torch.manual_seed(0)
    layer = LoRALayer(nn.Linear(16, 16), r=4, alpha=4, dropout=0.5)
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(8, 16)
    layer.train()
    assert not torch.allclose(layer(x), layer(x))
    layer.eval()
    torch.testing.assert_close(layer(x), layer(x))


def test_trainable_count_matches_peft_and_the_formula():
    base = tiny_gpt(60)
    mine = inject_lora(copy.deepcopy(base), ["c_attn"], r=4, alpha=8)
    theirs = get_peft_model(copy.deepcopy(base), LoraConfig(r=4, lora_alpha=8,
                                                            target_modules=["c_attn"],
                                                            fan_in_fan_out=True))
    trainable, total = count_trainable_parameters(mine)
    d = base.config.n_embd
    assert trainable == base.config.n_layer * 4 * (d + 3 * d)
    assert (trainable, total) == theirs.get_nb_trainable_parameters()
    assert costs.count_parameters(base) == (total - trainable, total - trainable)


def test_wrong_target_names_fail_like_peft_and_name_the_real_layers():
    base = tiny_gpt(60)
    assert {"c_attn", "c_proj", "c_fc", "lm_head"} <= set(linear_module_names(base))
    with pytest.raises(ValueError, match="c_attn"):
        inject_lora(copy.deepcopy(base), ["q_proj", "v_proj"])
    with pytest.raises(ValueError, match="q_proj"):
        get_peft_model(copy.deepcopy(base), LoraConfig(target_modules=["q_proj", "v_proj"]))
    with pytest.raises(TypeError):
        LoRALayer(nn.Embedding(4, 4))
    with pytest.raises(ValueError):
        LoRALayer(nn.Linear(4, 4), r=0)
    with pytest.raises(ValueError, match="no LoRA layers"):
        merge_lora(nn.Sequential(nn.Linear(2, 2)))


def test_singular_values_of_a_low_rank_update():
    torch.manual_seed(0)
    W = torch.randn(20, 12)
    delta = torch.randn(20, 3) @ torch.randn(3, 12)
    sv = update_singular_values(W, W + delta)
    torch.testing.assert_close(sv, torch.linalg.svdvals(delta.double()).float(), atol=1e-4,
                               rtol=1e-4)
    assert (sv[3:] < 1e-4).all() and rank_for_energy(sv, 0.999) <= 3
    assert rank_for_energy(torch.tensor([1.0, 1.0, 1.0, 1.0]), 0.5) == 2


def test_peft_adapter_save_load_and_merge_give_the_same_outputs(tmp_path):
    base = tiny_gpt(60, seed=2).eval()
    model = get_peft_model(copy.deepcopy(base), LoraConfig(r=2, lora_alpha=4,
                                                           target_modules=["c_attn"],
                                                           fan_in_fan_out=True))
    for name, p in model.named_parameters():
        if "lora_B" in name:
            with torch.no_grad():
                p.normal_()
    model.eval()
    ids = torch.randint(0, 60, (2, 9))
    expected = model(input_ids=ids).logits
    model.save_pretrained(tmp_path)
    assert costs.size_on_disk(tmp_path) < costs.count_parameters(base)[0] * 4 / 10
    loaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path).eval()
    torch.testing.assert_close(loaded(input_ids=ids).logits, expected)
    merged = loaded.merge_and_unload()
    torch.testing.assert_close(merged(input_ids=ids).logits, expected, atol=1e-5, rtol=1e-4)


def test_prompt_tuning_text_init_uses_the_tokenizer_at_the_given_path(tmp_path):
    tok = gpt_tokenizer(with_pad=True)
    tok.save_pretrained(tmp_path)
    base = tiny_gpt(len(tok))
    text = "Review : the film was great"
    config = PromptTuningConfig(task_type=TaskType.CAUSAL_LM,
                                prompt_tuning_init=PromptTuningInit.TEXT,
                                prompt_tuning_init_text=text, num_virtual_tokens=6,
                                tokenizer_name_or_path=str(tmp_path))
    model = get_peft_model(base, config)
    assert count_trainable_parameters(model)[0] == 6 * base.config.n_embd
    ids = tok(text)["input_ids"]
    expected = base.transformer.wte.weight[torch.tensor(ids[:6])]
    prompt = model.prompt_encoder["default"].embedding.weight
    torch.testing.assert_close(prompt, expected)
    out = model(input_ids=torch.tensor([ids]))
    assert out.logits.shape[1] == 6 + len(ids)  # the virtual tokens come first


class _Holder(nn.Module):
    """One layer inside a module, so peft can target it by name."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)


@pytest.mark.parametrize("kind, d_in, d_out, r, alpha", [
    ("linear", 7, 3, 2, 3.0), ("linear", 5, 5, 1, 8.0), ("conv1d", 9, 4, 3, 6.0),
    ("conv1d", 6, 6, 4, 1.0)])
def test_lora_layer_merge_unmerge_and_dropout_match_peft(kind, d_in, d_out, r, alpha):
    """LoRALayer.merge/unmerge (in place) and train-mode dropout against peft's LoRA layer,
    on Linear and Conv1D of odd and square sizes (the grader's reference for 06.1)."""
    torch.manual_seed(3)
    base = nn.Linear(d_in, d_out) if kind == "linear" else Conv1D(d_out, d_in)
    with torch.no_grad():
        base.bias.normal_()
    mine = LoRALayer(copy.deepcopy(base), r=r, alpha=alpha, dropout=0.3)
    theirs = get_peft_model(_Holder(copy.deepcopy(base)), LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=0.3, target_modules=["layer"],
        fan_in_fan_out=kind == "conv1d"))
    peft_layer = theirs.base_model.model.layer
    with torch.no_grad():
        mine.lora_B.normal_()
        peft_layer.lora_A["default"].weight.copy_(mine.lora_A)
        peft_layer.lora_B["default"].weight.copy_(mine.lora_B)
    trainable = {n.rsplit(".", 2)[0] for n, p in theirs.named_parameters() if p.requires_grad}
    assert {n for n, p in mine.named_parameters() if p.requires_grad} == {"lora_A", "lora_B"}
    assert len(trainable) == 2  # peft's lora_A and lora_B only
    x = torch.randn(2, 5, d_in)
    mine.train(), theirs.train()
    with torch.random.fork_rng():
        torch.manual_seed(11)
        got = mine(x)
    with torch.random.fork_rng():
        torch.manual_seed(11)
        want = theirs(x)
    torch.testing.assert_close(got, want)  # one dropout mask, on the LoRA path only
    mine.eval(), theirs.eval()
    before = theirs(x)
    torch.testing.assert_close(mine(x), before)
    assert not torch.allclose(before, base(x), atol=1e-3)
    mine.merge()
    peft_layer.merge()
    torch.testing.assert_close(mine.base.weight, peft_layer.base_layer.weight)
    torch.testing.assert_close(mine(x), theirs(x), atol=1e-5, rtol=1e-4)
    mine.merge()  # a second merge adds nothing (peft warns and does nothing)
    torch.testing.assert_close(mine.base.weight, peft_layer.base_layer.weight)
    mine.unmerge()
    peft_layer.unmerge()
    torch.testing.assert_close(mine.base.weight, base.weight, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(mine(x), theirs(x), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(mine(x), before, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("targets", [["c_attn"], ["attn.c_proj"], ["1.mlp.c_fc"], ["lm_head"],
                                     ["c_fc", "c_proj"], r"transformer\.h\.1[01]?\.mlp\.c_fc",
                                     r".*c_attn", "c_attn"])
def test_target_names_match_as_in_peft(targets):
    """target_matches against peft's own rule, on every module name of a 12-block GPT-2."""
    from peft.tuners.tuners_utils import check_target_module_exists

    model = tiny_gpt(30, n_layer=12, n_embd=8)
    config = LoraConfig(target_modules=targets)
    for name, _ in model.named_modules():
        if name:
            assert target_matches(name, targets) == bool(
                check_target_module_exists(config, name)), name


def test_p_tuning_trains_only_its_prompt_encoder():
    from course_utils.finetune.methods import Method

    model = Method("P-tuning", "p-tuning", learning_rate=1e-2, num_virtual_tokens=5).apply(
        tiny_gpt(60, seed=2))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("prompt_encoder" in n for n in trainable)
    assert model.get_prompt(batch_size=2).shape[:2] == (2, 5)
