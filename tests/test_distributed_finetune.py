"""scripts/finetune_script.py for real on two CPU processes (gloo), with a tiny model.

``torchrun`` (and ``accelerate launch``) start two copies of the unchanged script; the test
checks both took part (world size 2, each saw half of every batch, so an epoch takes half as
many steps), ended with identical weights (DDP averaged the gradients), and that process 0
saved a model that loads. Takes about half a minute: marked slow.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _finetune_fixtures import gpt_tokenizer, tiny_gpt
from transformers import AutoModelForCausalLM

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "finetune_script.py"
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-gpt")
    tok = gpt_tokenizer(with_pad=True)
    model = tiny_gpt(len(tok))
    model.config.pad_token_id = tok.pad_token_id
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _run(launcher: list[str], model_dir: Path, out: Path,
         method: str) -> subprocess.CompletedProcess:
    args = ["--model", str(model_dir), "--method", method, "--max-steps", "4", "--n-train", "64",
            "--n-test", "9", "--batch-size", "4", "--output-dir", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT)}
    return subprocess.run([*launcher, str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, timeout=240, cwd=ROOT)


def _check(proc: subprocess.CompletedProcess, out: Path) -> None:
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert all(r["world_size"] == 2 and r["global_steps"] == 4 for r in ranks)
    # 64 examples, 4 per process per step, 2 processes: 8 steps an epoch, so 4 steps = 0.5.
    assert all(r["epoch"] == pytest.approx(0.5) for r in ranks)
    assert ranks[0]["weights_checksum"] == pytest.approx(ranks[1]["weights_checksum"], rel=1e-9)
    result = json.loads((out / "result.json").read_text())
    assert 0 <= result["accuracy"] <= 1
    assert "[rank 1 of 2]" in proc.stdout and "[rank 0 of 2]" in proc.stdout


def test_torchrun_two_cpu_processes_full_fine_tuning(tiny_model_dir, tmp_path):
    out = tmp_path / "full"
    proc = _run([str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2"],
                tiny_model_dir, out, "full")
    _check(proc, out)
    reloaded = AutoModelForCausalLM.from_pretrained(out)
    before = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    changed = [n for (n, p), q in zip(reloaded.named_parameters(), before.parameters(),
                                      strict=True) if not p.detach().equal(q.detach())]
    assert changed, "training did not change any weight"


def test_accelerate_launch_two_cpu_processes_lora(tiny_model_dir, tmp_path):
    out = tmp_path / "lora"
    proc = _run([str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
                 "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"],
                tiny_model_dir, out, "lora")
    _check(proc, out)
    assert (out / "adapter_config.json").exists()
