"""feature=basic_pitch: basic-pitch's posteriorgrams cut into windows as its own inference cuts them,
a precomputed (frozen, cached) feature; and one probe run on the tiny demo corpus end to end."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from genre.features import BasicPitch
from genre.features.base import PrecomputedTransform
from genre.features.transcription import LEAD, TRIM, WINDOW_HOP
from genre.pretrained.basic_pitch import INSTALL, WINDOW_SAMPLES
from helpers import TINY_DEMO, run_cli

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("basic_pitch") is None, reason=f"the basic-pitch wheel is not installed ({INSTALL})"
)


@pytest.fixture(scope="module")
def onset() -> BasicPitch:
    return BasicPitch(sample_rate=22050, layer="onset")


def test_is_a_precomputed_feature_of_whole_windows(onset: BasicPitch) -> None:
    assert isinstance(onset, PrecomputedTransform) and onset.precomputed and onset.n_bands == 88
    assert onset.steps_per_patch == 142
    # 3840 samples of silence in front; a window every 36164 samples, each needs 43844.
    assert [onset.windows_in(n) for n in (40003, 40004, 76167, 76168, 88200)] == [0, 1, 1, 2, 2]


def test_each_window_is_the_networks_output_less_the_overlap(onset: BasicPitch) -> None:
    torch.manual_seed(0)
    waveform = 0.1 * torch.randn(2, 88200)
    out = onset(waveform)
    assert out.shape == (2, 88, onset.steps_in(88200)) == (2, 88, 284)
    second = F.pad(waveform, (LEAD, 0))[:, WINDOW_HOP : WINDOW_HOP + WINDOW_SAMPLES]
    with torch.no_grad():
        expected = onset.net(second)["onset"][:, TRIM:-TRIM]
    torch.testing.assert_close(out[:, :, 142:].transpose(1, 2), expected, rtol=0, atol=1e-5)


def test_other_rates_are_resampled_and_bad_input_is_refused() -> None:
    feature = BasicPitch(sample_rate=16000, layer="contour")
    assert feature(torch.zeros(1, 64000)).shape == (1, 264, feature.steps_in(64000))
    with pytest.raises(ValueError, match="layer: 'pitch'"):
        BasicPitch(sample_rate=22050, layer="pitch")
    with pytest.raises(ValueError, match=r"waveform: basic-pitch needs at least 1\.81 s"):
        feature(torch.zeros(1, 16000))
    with pytest.raises(ValueError, match="waveform: BasicPitch takes float waveforms"):
        feature(torch.zeros(1, 16000, dtype=torch.int16))


@pytest.mark.slow
def test_a_probe_on_basic_pitch_notes_runs_on_the_demo_corpus(tmp_path: Path, cache_dir: Path) -> None:
    run_dir = tmp_path / "run"
    args = [*TINY_DEMO, "feature=basic_pitch", "trainer.segment_seconds=2.0", "trainer.epochs=2"]
    result = run_cli([*args, "model=linear", "trainer.progress=false", f"hydra.run.dir={run_dir}"], tmp_path, cache_dir)
    assert "test accuracy:" in result.stdout
    assert "features BasicPitch: 88 bands" in (run_dir / "run.log").read_text()
