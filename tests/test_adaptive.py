"""Adaptive TTA: the band chooser, agreement with always-TTA on real images, and the mode in API, CLI and relay.

Nothing here depends on the bundled model's exact numbers: outcomes are compared between modes of the same
model, and escalation is forced or ruled out with explicit bands.
"""
from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest

from conftest import pick
from edge_runtime import Detector, adaptive, bundle
from edge_runtime.cli import main
from server import Config, create_app
from server_support import no_outside_network

__all__ = ["no_outside_network"]

SOURCES = ("wfjsw-prompt-builder", "wfjsw-prompt-builder-facecrops", "jamesflare-codex", "hdm-xut",
           "animaginexl4-gallery", "danbooru-facecrops", "agbooks-2021", "style2paints", "mimvoid-wallpapers",
           "frenzyexists-wallpapers-2021")


@pytest.fixture(scope="module")
def det():
    return Detector()


@pytest.fixture(scope="module")
def images(manifest_rows):
    """Six images of each of ten AI and human sources."""
    return [path for source in SOURCES for path in pick(manifest_rows, source, 6)]


@pytest.fixture(scope="module")
def always(det, images):
    return list(det.check_many(images, tta="always"))


def test_adaptive_labels_agree_with_always_tta_on_real_images(det, images, always):
    adaptive_results = list(det.check_many(images, tta="adaptive"))
    agree = np.mean([a.label == b.label for a, b in zip(adaptive_results, always)])
    assert agree >= adaptive.MIN_AGREEMENT
    for result, full in zip(adaptive_results, always):
        primary = full.view_probabilities[det.views[0]]
        escalated = bool(adaptive.escalates(primary, det.escalation_band))
        assert result.tta == "adaptive"
        assert result.views_run == (list(det.views) if escalated else [det.views[0]])
        assert result.probability == pytest.approx(full.probability if escalated else primary, abs=1e-6)


def test_bands_force_or_rule_out_escalation(images, always):
    everything = Detector(escalation_band=(-1.0, 2.0)).check_many(images[:8])
    assert [r.probability for r in everything] == pytest.approx([r.probability for r in always[:8]], abs=1e-6)
    nothing = Detector(escalation_band=(0.5, 0.5)).check_many(images[:8])
    assert all(len(r.views_run) == 1 for r in nothing)
    single_view = Detector(views=["original"], escalation_band=(-1.0, 2.0))  # nothing to escalate to
    assert [r.views_run for r in single_view.check_many(images[:2])] == [["original"]] * 2


def test_escalation_runs_the_remaining_crop_views_too(images):
    det = Detector(views=["crop", "original", "crop-flip"], escalation_band=(-1.0, 2.0))
    escalated = list(det.check_many(images[::12]))
    for result, path in zip(escalated, images[::12]):
        assert result.views_run == ["crop", "original", "crop-flip"]
        assert result.view_probabilities == pytest.approx(det.check(path, tta="always").view_probabilities, abs=1e-6)


def test_sidecar_escalation_band_is_used(tmp_path, images):
    model = tmp_path / "model.tflite"
    shutil.copy(bundle.DEFAULT_MODEL, model)
    sidecar = bundle.read_sidecar(bundle.DEFAULT_MODEL)
    bundle.sidecar_path(model).write_text(json.dumps({**sidecar, "escalation_band": [-1.0, 2.0]}))
    det = Detector(model)
    assert det.escalation_band == (-1.0, 2.0) and det.info()["escalation_band"] == [-1.0, 2.0]
    assert det.check(images[0]).views_run == list(det.views)


def test_default_band_widens_the_unsure_band():
    assert adaptive.default_band(0.5, (0.4, 0.6)) == pytest.approx((0.3, 0.7))
    assert adaptive.default_band(0.5, (0.1, 0.9)) == (0.0, 1.0)
    det = Detector()
    assert det.escalation_band == pytest.approx(adaptive.default_band(det.threshold, det.unsure_band)) \
        or "escalation_band" in det.metadata


def test_tta_modes_and_booleans(det, images):
    assert [Detector(tta=value).tta for value in (True, False, "ALWAYS", "never")] == \
        ["always", "never", "always", "never"]
    assert det.tta == "adaptive"
    with pytest.raises(ValueError, match="adaptive, always, never"):
        Detector(tta="sometimes")
    with pytest.raises(ValueError):
        det.check(images[0], tta="maybe")
    assert det.check(images[0], tta=True).views_run == list(det.views)
    assert det.check(images[0], tta="never").views_run == [det.views[0]]


def test_choose_band_meets_the_agreement_with_the_fewest_escalations():
    rng = np.random.default_rng(0)
    primary = rng.uniform(0, 1, 2000)
    views = np.stack([primary, *(np.clip(primary + rng.normal(0, 0.08, 2000), 0, 1) for _ in range(3))], axis=1)
    threshold, unsure = 0.5, (0.4, 0.6)
    band = adaptive.choose_band(views, threshold, unsure)
    agree, escalated = adaptive.agreement(views, band, threshold, unsure)
    assert agree >= 0.995 and escalated < 0.5
    low, high = band
    for narrower in ((low + 0.01, high), (low, high - 0.01)):  # any narrower band misses the target
        assert adaptive.agreement(views, narrower, threshold, unsure)[0] < 0.995
    assert adaptive.agreement(views, adaptive.choose_band(views, threshold, unsure, 1.0), threshold, unsure)[0] == 1


def test_choose_band_on_real_predictions(det, always):
    views = np.array([[r.view_probabilities[v] for v in det.views] for r in always])
    band = adaptive.choose_band(views, det.threshold, det.unsure_band)
    assert adaptive.agreement(views, band, det.threshold, det.unsure_band)[0] >= adaptive.MIN_AGREEMENT
    with pytest.raises(ValueError):
        adaptive.choose_band(np.zeros((0, 4)), det.threshold, det.unsure_band)


@pytest.mark.parametrize("flags, mode", [((), "adaptive"), (("--tta", "always"), "always"),
                                         (("--tta", "never"), "never"), (("--no-tta",), "never"),
                                         (("--tta", "adaptive", "--workers", "1"), "adaptive")])
def test_cli_tta_and_workers_flags(capsys, det, images, flags, mode):
    code = main([str(images[0]), str(images[-1]), "--json", *flags])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    for record, path in zip(records, (images[0], images[-1])):
        expected = det.check(path, tta=mode)
        assert (record["tta"], record["views_run"]) == (mode, expected.views_run)
        assert record["probability"] == pytest.approx(expected.probability, abs=1e-6)


@pytest.mark.parametrize("flags", [("--tta", "sometimes"), ("--workers", "0"), ("--threads", "0")])
def test_cli_refuses_bad_flags(capsys, images, flags):
    with pytest.raises(SystemExit) as exit_:
        main([str(images[0]), *flags])
    assert exit_.value.code == 2 and flags[0] in capsys.readouterr().err


@pytest.fixture(scope="module")
def client():
    return create_app(Config(rate_limit="off", batch_rate_limit="off", cache_entries=0)).test_client()


@pytest.mark.parametrize("value, mode", [(None, "adaptive"), ("adaptive", "adaptive"), ("always", "always"),
                                         ("never", "never"), ("1", "always"), ("0", "never")])
def test_relay_tta_parameter(client, det, images, value, mode):
    data = images[1].read_bytes()
    answer = client.post("/api/v1/check" + (f"?tta={value}" if value else ""), data=data,
                         content_type="application/octet-stream").get_json()
    expected = det.check(data, tta=mode)
    assert (answer["tta"], answer["views_run"]) == (mode, expected.views_run)
    assert answer["probability"] == pytest.approx(expected.probability, abs=1e-6)
    batch = client.post("/api/v1/check-batch" + (f"?tta={value}" if value else ""),
                        data={"file": [(io.BytesIO(data), "a")]}).get_json()["results"][0]
    assert (batch["tta"], batch["views_run"]) == (mode, expected.views_run)


def test_relay_refuses_an_unknown_tta(client, images):
    response = client.post("/api/v1/check?tta=sometimes", data=images[0].read_bytes(), content_type="image/jpeg")
    assert response.status_code == 400 and "tta" in response.get_json()["error"]["reason"]
