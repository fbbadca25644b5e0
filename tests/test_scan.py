"""The pipelined scan (`Detector.check_many`): input order, bounded read-ahead, batched invokes, same verdicts."""
from __future__ import annotations

import pytest

from conftest import pick
from edge_runtime import Detector, ImageError
from edge_runtime.detector import lookahead


@pytest.fixture(scope="module")
def det():
    return Detector()


@pytest.fixture(scope="module")
def sources(manifest_rows):
    """21 real images of three sources and formats, with a broken file at positions 5 and 13."""
    paths = pick(manifest_rows, "wfjsw-prompt-builder", 7) + pick(manifest_rows, "danbooru-facecrops", 7) + \
        pick(manifest_rows, "agbooks-2021", 7)
    mixed = list(paths)
    mixed.insert(5, b"not an image")
    mixed.insert(13, paths[0].read_bytes()[:300])
    return mixed


@pytest.mark.parametrize("workers, batch_size", [(1, 1), (2, 4), (3, 8)])
def test_scan_streams_in_input_order_and_reads_ahead_a_bounded_number(det, sources, workers, batch_size):
    pulled = []

    def lazily():
        for source in sources:
            pulled.append(source)
            yield source

    limit = lookahead(workers, batch_size)
    outcomes = []
    for outcome in det.check_many(lazily(), tta="adaptive", workers=workers, batch_size=batch_size):
        assert len(pulled) - len(outcomes) <= limit  # never more decoded or decoding than the look-ahead
        outcomes.append(outcome)
        if len(outcomes) == 1:
            assert len(pulled) < len(sources)  # the first outcome comes before the input is exhausted
    assert len(outcomes) == len(sources)
    for source, outcome in zip(sources, outcomes):
        if isinstance(source, bytes):
            assert isinstance(outcome, ImageError)
        else:
            single = det.check(source)
            assert (outcome.label, outcome.views_run) == (single.label, single.views_run)
            assert outcome.probability == pytest.approx(single.probability, abs=1e-6)


def test_scan_puts_several_primary_views_in_one_invoke(det, sources):
    interpreter = det._interpreter(4)
    shapes = []
    real_invoke = interpreter.invoke
    interpreter.invoke = lambda: (shapes.append(interpreter.get_input_details()[0]["shape"][0]), real_invoke())
    try:
        list(det.check_many(sources[:8], tta="never", batch_size=4))
    finally:
        del interpreter.invoke
    assert shapes == [4, 4]  # 8 sources, one broken: the second batch is padded rather than given a new size


def test_prepare_then_classify_gives_the_verdicts_of_check_many(det, sources):
    """The two halves a distributed scan runs apart (archive_scan: decode tasks, classifier actors)."""
    images = [source for source in sources if not isinstance(source, bytes)]
    with pytest.raises(ImageError):
        det.prepare(b"not an image")
    halves = det.classify([det.prepare(source.read_bytes()) for source in images])
    for half, whole in zip(halves, det.check_many(images), strict=True):
        assert (half.label, half.views_run, half.reason, half.evidence) == \
            (whole.label, whole.views_run, whole.reason, whole.evidence)
        assert half.probability == pytest.approx(whole.probability, abs=1e-6)
