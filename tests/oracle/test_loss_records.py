"""One record per loss (reference/losses.py): every table keyed by loss derives from the records or covers them all,
and each record says truthfully what its oracle takes and meets."""
import naive
import numpy as np
import pytest

import reference
from contract.batch import in_layout
from reference import LOSSES, Spec, SpecError
from reference.losses import OPTIONAL_FIELDS

DEFAULTS = Spec()


def test_the_vocabulary_is_the_records():
    assert reference.MININGS == tuple(LOSSES)
    for field, minings in (("soft", reference.SOFT_MININGS), ("scaled", reference.SCALED_MININGS),
                           ("anchors", reference.ANCHORS_MININGS)):
        assert minings == tuple(name for name, loss in LOSSES.items() if field in loss.takes)


def test_every_loss_has_its_plain_loop():
    """tests/oracle/naive.py: the plain loops every oracle is checked against (test_oracle_vs_naive.py)."""
    assert sorted(naive.STRATEGIES) == sorted(LOSSES)


@pytest.mark.parametrize("loss", LOSSES.values(), ids=lambda loss: loss.name)  # a name: the same in every worker
def test_a_loss_takes_only_the_fields_its_record_names(loss):
    for field, value in (("soft", True), ("scaled", True), ("anchors", "valid"), ("temperature", 0.5),
                         ("symmetric", True), ("alpha", 3.0), ("beta", 40.0), ("base", 0.25), ("gamma", 64.0)):
        if field in loss.takes:
            continue
        with pytest.raises(SpecError, match=f"Spec.{field} applies only"):
            Spec(mining=loss.name, distance=loss.distances[0], **{field: value})
    assert set(loss.takes) <= set(OPTIONAL_FIELDS)


@pytest.mark.parametrize("loss", LOSSES.values(), ids=lambda loss: loss.name)
def test_a_loss_accepts_only_the_distances_its_record_names(loss):
    for distance in reference.DISTANCES:
        if distance in loss.distances:
            assert Spec(mining=loss.name, distance=distance).distance == distance
        else:
            with pytest.raises(SpecError, match=f"mining='{loss.name}' is defined on distance in"):
                Spec(mining=loss.name, distance=distance)


def _specs(loss):
    forms = [{}]
    if "soft" in loss.takes:
        forms.append({"soft": True})
    if "scaled" in loss.takes:
        forms.append({"scaled": True})
    if "anchors" in loss.takes:
        forms.append({"anchors": "valid"})
    return [Spec(mining=loss.name, distance=distance, reduction=reduction, **form)
            for form in forms for distance in loss.distances for reduction in reference.REDUCTIONS]


@pytest.mark.parametrize("loss", LOSSES.values(), ids=lambda loss: loss.name)
def test_an_oracle_meets_only_the_decision_kinds_its_record_declares(loss):
    rng = np.random.default_rng(7)
    measured_everywhere = {"zero_distance", "zero_norm"}  # evaluate's own, from the distance and the norms
    for spec in _specs(loss):
        for _ in range(3):
            x, y = in_layout(spec, rng.normal(size=(9, 3)), rng.integers(0, 3, size=9))
            triplets = reference.valid_triplets(y)[:5] if loss.layout == "labels and triplets" else None
            met = set(reference.evaluate(x, y, spec, triplets).gaps) - measured_everywhere
            assert met <= set(loss.gaps), f"{spec}: meets {sorted(met - set(loss.gaps))}, not in its record"


def test_every_loss_reads_as_words_in_the_report():
    from reports.describe import describe_spec

    for loss in LOSSES.values():
        spec = Spec(mining=loss.name, distance=loss.distances[0])
        assert describe_spec(spec.to_dict()).startswith(loss.selects[0].upper())
    assert DEFAULTS.mining in LOSSES
