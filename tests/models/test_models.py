"""Tests for the model zoo in genre.models and its Hydra configs in conf/model/."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hydra.utils
import pytest
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

import genre.models
from genre import CONFIG_DIR
from genre.models import (
    CNN,
    CNN1D,
    CRNN,
    FCN,
    MLP,
    ClosedFormProbe,
    GenreModel,
    LateFusionProbe,
    LinearBaseline,
    ResNet,
    ShortChunkCNN,
)
from helpers import REPO

CONF_DIR = CONFIG_DIR / "model"
MODELS: list[type[GenreModel]] = [
    CNN,
    CRNN,
    ResNet,
    CNN1D,
    FCN,
    ShortChunkCNN,
    LinearBaseline,
    MLP,
    ClosedFormProbe,
    LateFusionProbe,
]


def _make(model_cls: type[GenreModel], n_bands: int, n_classes: int, **kwargs: Any) -> GenreModel:
    """``model_cls(n_bands, n_classes, **kwargs)``; a late-fusion probe also gets two parts, as a fused feature
    gives it."""
    if model_cls is LateFusionProbe:
        kwargs["part_bands"] = [n_bands // 2, n_bands - n_bands // 2]
    return model_cls(n_bands, n_classes, **kwargs)


def _facts(cfg, n_bands: int) -> dict:
    """What the run hands a model besides n_bands: a late-fusion probe gets its fused feature's parts."""
    return {"part_bands": [n_bands // 2, n_bands - n_bands // 2]} if "LateFusion" in cfg["_target_"] else {}


N_CLASSES = 10


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    # The CPU is shared: two OpenMP threads spinning against other processes run these small
    # batches several times slower than one thread does.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _forward_backward(model: GenreModel, x: torch.Tensor) -> torch.Tensor:
    """Train-mode forward, cross-entropy backward; return the logits."""
    model.train()
    logits = model(x)
    labels = torch.arange(x.shape[0]) % N_CLASSES
    F.cross_entropy(logits, labels).backward()
    return logits


def _check_outputs_and_grads(model: GenreModel, x: torch.Tensor) -> None:
    logits = _forward_backward(model, x)
    assert logits.shape == (x.shape[0], N_CLASSES)
    assert torch.isfinite(logits).all()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name} got no gradient"
            assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"


@pytest.mark.parametrize("model_cls", MODELS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("n_bands", [12, 20, 40, 128])
@pytest.mark.parametrize("n_frames", [16, 216])
def test_shapes_and_gradients(model_cls: type[GenreModel], n_bands: int, n_frames: int) -> None:
    torch.manual_seed(0)
    _check_outputs_and_grads(_make(model_cls, n_bands, N_CLASSES), torch.randn(2, n_bands, n_frames))


@pytest.mark.parametrize("model_cls", MODELS, ids=lambda c: c.__name__)
def test_full_clip(model_cls: type[GenreModel]) -> None:
    """A whole 30-s clip (1292 frames at hop 512, 22050 Hz) of 128 mel bands."""
    torch.manual_seed(0)
    _check_outputs_and_grads(_make(model_cls, 128, N_CLASSES), torch.randn(2, 128, 1292))


@pytest.mark.parametrize("model_cls", MODELS, ids=lambda c: c.__name__)
def test_single_frame_and_chroma(model_cls: type[GenreModel]) -> None:
    """Degenerate extreme: 12 bands and one frame must still not pool a dimension to zero."""
    torch.manual_seed(0)
    _check_outputs_and_grads(_make(model_cls, 12, N_CLASSES), torch.randn(2, 12, 1))


@pytest.mark.parametrize("model_cls", MODELS, ids=lambda c: c.__name__)
def test_rejects_wrong_band_count(model_cls: type[GenreModel]) -> None:
    model = _make(model_cls, 40, N_CLASSES)
    with pytest.raises(ValueError, match="expects"):
        model(torch.randn(2, 20, 44))
    with pytest.raises(ValueError, match="expects"):
        model(torch.randn(40, 44))


def _config_paths() -> list[Path]:
    return sorted(CONF_DIR.glob("*.yaml"))


def _model_config(path: Path) -> DictConfig:
    """A model's config file as its node composes: without its defaults list (the feature it pairs with)."""
    cfg = OmegaConf.load(path)
    assert isinstance(cfg, DictConfig)
    cfg.pop("defaults", None)
    return cfg


@pytest.mark.parametrize("path", _config_paths(), ids=lambda p: p.stem)
def test_config_instantiates(path: Path) -> None:
    torch.manual_seed(0)
    cfg = _model_config(path)
    model = hydra.utils.instantiate(cfg, n_bands=40, n_classes=N_CLASSES, **_facts(cfg, 40))
    assert isinstance(model, GenreModel)
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 40, 44)).shape == (2, N_CLASSES)


def test_every_model_has_a_config() -> None:
    targets = {_model_config(p)["_target_"] for p in _config_paths()}
    exported = {f"genre.models.{name}" for name in genre.models.__all__ if name != "GenreModel"}
    assert exported == {f"genre.models.{cls.__name__}" for cls in MODELS}
    assert targets == exported


def _train_steps(model: GenreModel, x: torch.Tensor, y: torch.Tensor, steps: int) -> list[float]:
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.slow
@pytest.mark.parametrize("model_cls", [CNN, CRNN], ids=lambda c: c.__name__)
def test_overfits_tiny_set(model_cls: type[GenreModel]) -> None:
    torch.manual_seed(0)
    n_classes = 4
    x = torch.randn(8, 20, 32)
    y = torch.arange(8) % n_classes  # balanced: two examples per class
    losses = _train_steps(_make(model_cls, 20, n_classes), x, y, steps=60)
    final = sum(losses[-5:]) / 5
    # With balanced labels a model that ignores its input cannot go below the label entropy
    # ln(4) ~= 1.39, so half of it is only reachable by actually fitting the examples.
    assert final < 0.5 * math.log(n_classes), losses
    assert final < 0.5 * losses[0], losses


# Two settings per model that differ only in width.
WIDTHS: dict[type[GenreModel], tuple[dict[str, Any], dict[str, Any]]] = {
    CNN: ({"channels": [8, 16]}, {"channels": [8, 32]}),
    CRNN: ({"channels": [8, 16], "rnn_hidden": 8}, {"channels": [8, 16], "rnn_hidden": 16}),
    ResNet: ({"widths": [8, 16], "blocks_per_stage": [1, 1]}, {"widths": [8, 32], "blocks_per_stage": [1, 1]}),
    CNN1D: ({"channels": [16, 16]}, {"channels": [16, 32]}),
    FCN: ({"channels": [8, 16]}, {"channels": [8, 32]}),
    ShortChunkCNN: ({"channels": [8, 8, 16]}, {"channels": [8, 16, 16]}),
}


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("model_cls", list(WIDTHS), ids=lambda c: c.__name__)
def test_n_parameters(model_cls: type[GenreModel]) -> None:
    narrow_kwargs, wide_kwargs = WIDTHS[model_cls]
    narrow, wide = _make(model_cls, 20, N_CLASSES, **narrow_kwargs), _make(model_cls, 20, N_CLASSES, **wide_kwargs)
    assert narrow.n_parameters == _count(narrow)
    assert wide.n_parameters == _count(wide)
    assert narrow.n_parameters < wide.n_parameters
    # Frozen parameters are not trainable and must not be counted.
    before = narrow.n_parameters
    first = next(narrow.parameters())
    first.requires_grad_(False)
    assert narrow.n_parameters == _count(narrow) == before - first.numel()


def test_linear_baseline_is_one_linear_layer() -> None:
    for n_bands in (12, 128):
        model = LinearBaseline(n_bands, N_CLASSES)
        assert model.n_parameters == _count(model) == 2 * n_bands * N_CLASSES + N_CLASSES
        assert [type(m) for m in model.modules() if isinstance(m, torch.nn.Linear)] == [torch.nn.Linear]


def test_listconfig_hyperparameters_accepted() -> None:
    cfg = OmegaConf.create({"channels": [8, 16], "rnn_hidden": 8})
    model = CRNN(20, N_CLASSES, channels=cfg.channels, rnn_hidden=cfg.rnn_hidden)
    assert model.n_parameters == CRNN(20, N_CLASSES, channels=(8, 16), rnn_hidden=8).n_parameters


@pytest.mark.parametrize(
    ("model_cls", "kwargs"),
    [
        (CNN, {"channels": []}),
        (CNN, {"dropout": 1.0}),
        (CRNN, {"rnn_layers": 0}),
        (ResNet, {"widths": [8, 16], "blocks_per_stage": [1]}),
    ],
)
def test_bad_hyperparameters_raise_value_error_naming_the_parameter(
    model_cls: type[GenreModel], kwargs: dict[str, Any]
) -> None:
    # The library names its own parameter and the fix; the command line prefixes the config key.
    parameter = list(kwargs)[-1]
    with pytest.raises(ValueError, match=rf"^{parameter}: .+\. (Use|Give) "):
        _make(model_cls, 20, N_CLASSES, **kwargs)


@pytest.mark.parametrize("model_cls", MODELS, ids=lambda c: c.__name__)
def test_batch_independence_in_eval(model_cls: type[GenreModel]) -> None:
    torch.manual_seed(0)
    model = _make(model_cls, 40, N_CLASSES)
    # A few train-mode batches so BatchNorm running statistics are not the trivial 0/1.
    with torch.no_grad():
        for _ in range(2):
            model.train()(torch.randn(4, 40, 44) * 3 + 1)
    model.eval()
    x = torch.randn(4, 40, 44)
    with torch.no_grad():
        batch = model(x)
        for i in range(x.shape[0]):
            torch.testing.assert_close(model(x[i : i + 1])[0], batch[i], atol=1e-5, rtol=1e-5)


TWO_D: list[type[GenreModel]] = [CNN, CRNN, ResNet, FCN, ShortChunkCNN]


@pytest.mark.parametrize("model_cls", TWO_D, ids=lambda c: c.__name__)
@pytest.mark.parametrize("n_bands", [12, 128])
@pytest.mark.parametrize("n_frames", [1, 216])
def test_freq_as_channel_shapes_and_gradients(model_cls: type[GenreModel], n_bands: int, n_frames: int) -> None:
    torch.manual_seed(0)
    _check_outputs_and_grads(
        _make(model_cls, n_bands, N_CLASSES, freq_as_channel=True), torch.randn(2, n_bands, n_frames)
    )


@pytest.mark.parametrize("model_cls", TWO_D, ids=lambda c: c.__name__)
def test_freq_as_channel_sees_the_whole_spectrum_in_one_filter(model_cls: type[GenreModel]) -> None:
    """Bands as channels: a change in one band at one frame reaches the first layer's outputs of that
    frame in every "row" (there is one), not only the neighbouring bands as with 3x3 kernels."""
    torch.manual_seed(0)
    model = _make(model_cls, 40, N_CLASSES, freq_as_channel=True).eval()
    image = model.as_image(torch.zeros(1, 40, 30))
    assert image.shape == (1, 40, 1, 30)
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    x = torch.zeros(1, 40, 1, 30)
    x[0, 39, 0, 15] = 1.0  # the top band only
    response = first(x)[0].abs().sum(dim=0)[0]  # (output frames,)
    stride = first.stride[1]
    reached = torch.tensor([abs(j * stride - 15) <= 1 for j in range(response.numel())])
    assert response[reached].gt(0).all() and response[~reached].eq(0).all()


def _readme_counts() -> dict[str, list[int | None]]:
    """Parameter columns of the README's model table: 12, 40, 128 bands, 128 bands freq_as_channel."""
    readme = (REPO / "README.md").read_text()
    rows: dict[str, list[int | None]] = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 6 and cells[0].startswith("`") and cells[0].strip("`") in {p.stem for p in _config_paths()}:
            rows[cells[0].strip("`")] = [None if c in ("—", "-", "") else int(c.replace(",", "")) for c in cells[-4:]]
    return rows


def test_readme_model_table_matches_the_models() -> None:
    """The README's parameter counts are those of the default configs (6 classes), so they cannot go stale."""
    rows = _readme_counts()
    assert set(rows) == {p.stem for p in _config_paths()}
    for name, counts in rows.items():
        cfg = _model_config(CONF_DIR / f"{name}.yaml")
        actual: list[int | None] = [
            hydra.utils.instantiate(cfg, n_bands=b, n_classes=6, **_facts(cfg, b)).n_parameters for b in (12, 40, 128)
        ]
        if "freq_as_channel" in cfg:
            cfg.freq_as_channel = True
            actual.append(hydra.utils.instantiate(cfg, n_bands=128, n_classes=6).n_parameters)
        else:
            actual.append(None)
        assert counts == actual, name
