"""The field's importance criteria (criteria.py), each a row of methods.py's table: on the same trained
model each chooses its own channels where it can differ from group L2, the same ones when asked twice, and
a gradient criterion reads training batches only: poisoning the validation and test labels leaves its
channels as they were (other training videos do not)."""
import copy
import json
from types import SimpleNamespace

import pytest
import torch

import batches
import cli
import criteria
import methods
import pruners
import seed_models
from conftest import LEAN, TINY, options, run_folders, run_main
from model import EFRegressionModel

FRAMES, SIZE = 2, 32
REMOVALS = [f"structured_physical_{name}" for name, *_ in methods.CRITERIA]


@pytest.fixture(scope="module")
def trained():
    """A model whose BatchNorm scales differ from channel to channel, as a trained one's do."""
    torch.manual_seed(0)
    model = EFRegressionModel()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.weight, 0.2, 1.5)
    return model.eval()


def split(seed, videos=16, ef=None):
    """A split of random clips, their EFs drawn with them, or all `ef`."""
    generator = torch.Generator().manual_seed(seed)
    clips = torch.randint(0, 256, (videos, FRAMES, SIZE, SIZE, 3), dtype=torch.uint8, generator=generator)
    efs = torch.rand(videos, generator=generator) * 60 + 20 if ef is None else torch.full((videos,), ef)
    return batches.Batches(clips, efs, 4, torch.device("cpu"))


def removed(model, method, training):
    """The weights `method` keeps of the model at 0.5, its gradients read on `training`."""
    pruned = copy.deepcopy(model)
    pruners.Pruner(pruned, method, 0.5, FRAMES, SIZE, round_to=8, batches=training, batch_count=2).step()
    return pruned.state_dict()


def same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("method", REMOVALS + ["unstructured_lamp"])
def test_each_criterion_chooses_its_own_channels_and_the_same_ones_twice(trained, method):
    reference = "unstructured" if method == "unstructured_lamp" else "structured_physical"
    chosen = removed(trained, method, split(1))
    assert same(chosen, removed(trained, method, split(1)))
    if method == "structured_physical_lamp":
        # LAMP rescales each layer's scores monotonically: with every layer losing the same share, it keeps
        # group L2's channels; it differs only where layers compete (global ranking), as in unstructured_lamp.
        assert same(chosen, removed(trained, reference, split(1)))
    else:
        assert not same(chosen, removed(trained, reference, split(1)))


@pytest.mark.parametrize("method", ["structured_physical_taylor", "structured_physical_hessian"])
def test_gradient_criteria_read_training_batches_only(trained, method):
    cfg = cli.load(["--num-frames", str(FRAMES), "--image-size", str(SIZE), "--criterion-batches", "2"])

    def channels(loaders):
        ctx = SimpleNamespace(loaders=loaders, seed=42)
        model = copy.deepcopy(trained)
        pruners.Pruner.from_config(model, method, 0.5, cfg, batches=seed_models.criterion_batches(ctx)).step()
        return model.state_dict()
    clean = channels({"train": split(1), "val": split(2), "test": split(3)})
    assert same(clean, channels({"train": split(1), "val": split(2, ef=1e6), "test": split(3, ef=-1e6)}))
    assert not same(clean, channels({"train": split(4), "val": split(2), "test": split(3)}))  # other videos


def test_the_hessian_criterion_reads_every_training_videos_squared_gradient(trained):
    """OBD's diagonal from the squared gradient of each video of the CRITERION_BATCHES, averaged: not the
    last video's alone, which is what Torch-Pruning 1.6.1's own accumulate_grad keeps."""
    model, training = copy.deepcopy(trained), split(1)
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    squares = []
    for seen, (video, ef) in enumerate(training):
        if seen == 2:
            break
        for i in range(len(video)):
            model.zero_grad()
            ((model(video[i:i + 1]).float() - ef[i:i + 1].float()) ** 2).sum().backward()
            squares.append(conv.weight.grad.detach() ** 2)
    criteria.loss_gradients(model, training, 2, squared=True)
    assert len(squares) == 8
    assert torch.allclose(conv.weight.grad, torch.stack(squares).mean(0), rtol=1e-4, atol=1e-12)
    assert not torch.allclose(conv.weight.grad, squares[-1], rtol=1e-2)


def test_lamp_scores_put_layers_on_one_scale():
    """A layer of large weights and one of small ones: LAMP's smallest scores are alike, |w|'s are not."""
    large, small = torch.tensor([4.0, 8.0, 16.0]), torch.tensor([0.01, 0.02, 0.04])
    assert torch.allclose(criteria.lamp_scores(large), criteria.lamp_scores(small))
    assert criteria.lamp_scores(large)[-1] == 1  # the largest weight of a layer scores 1: never first to go


def test_a_tiny_run_with_every_criterion_writes_a_row_for_each(sample_root, tmp_path):
    """IMPORTANCE_CRITERIA alone plans each criterion (one row of the method table): a tiny run with all of
    them writes each removal at group L2's ratios and sizes, LAMP's masks at global L1's, and summary.md
    judges each against group L2 in a family of its own."""
    result = run_main(*TINY, *LEAN, *options(data_root=sample_root, onnx_export="false",
                                             importance_criteria=",".join(n for n, *_ in methods.CRITERIA)),
                      *run_folders(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    models = {r["name"]: r for r in json.load(open(tmp_path / "results" / "results.json"))["models"]}
    compared = [*((m, "structured_physical") for m in REMOVALS), ("unstructured_lamp", "unstructured")]
    for method, reference in compared:
        row, group_l2 = models[f"{method}_0.5"], models[f"{reference}_0.5"]
        assert row["params_effective"] == pytest.approx(group_l2["params_effective"], rel=0.01), method
        assert row["test_errors"] != group_l2["test_errors"] or method == "structured_physical_lamp", method
    summary = (tmp_path / "results" / "summary.md").read_text()
    assert "## Claims: each importance criterion against group L2 removal" in summary
