"""Every known divergence is confirmed by a named test and points at a cell some adapter claims."""
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from adapters import pml, seeds, tfa, torch_native
from adapters.divergences import CONFORMANCE, REGISTRY, matches

TORCH, TFA, SEEDS = "test_adapter_torch_native::test_", "test_adapter_tfa::test_", "test_adapter_seeds::test_"
CONFIRMED_BY = {
    "torch-triplet-margin-eps-in-norm": TORCH + "triplet_margin_eps_moves_the_float64_loss_beyond_tolerance",
    "torch-triplet-margin-eps-at-duplicates": TORCH + "triplet_margin_eps_gives_duplicates_a_gradient",
    "seed001-one-class-batch-raises": TORCH + "seed001_raises_on_a_batch_of_one_class",
    "seed001-one-class-batch-raises-in-conformance": TORCH + "seed001_raises_on_a_batch_of_one_class",
    "quaterion-fallback-reads-the-cdist-diagonal": SEEDS + "quaterion_one_class_batch_reads_the_cdist_diagonal",
    "tfa-hard-loss-gradient-split-at-a-tied-row-maximum": TFA
    + "hard_loss_splits_the_gradient_when_the_nearest_negative_ties_the_row_maximum",
    "tfa-hard-loss-gradient-split-at-a-tied-row-maximum-bfloat16": TFA + "bfloat16_shows_the_split_with_the_hinge_only",
    "quaterion-fallback-reads-the-cdist-diagonal-off-the-origin": SEEDS
    + "quaterion_diagonal_breaks_translation_invariance_in_float64",
    "masked-minimum-ties-at-the-row-maximum": TORCH + "masked_minimum_gives_the_tied_negative_no_gradient",
    "quaterion-fallback-reads-the-cosine-diagonal": SEEDS + "quaterion_cosine_diagonal_over_a_tiny_mean",
    "tfa-soft-hard-loss-overflows": TFA + "soft_hard_loss_overflows_beyond_88",
    "tfa-contrastive-float16-sum-overflows": TFA + "contrastive_float16_sum_overflows_where_the_mean_fits",
    "tfa-triplet-float64-rejected": TFA + "triplet_losses_reject_float64_for_every_metric",
    "tfa-pairwise-distance-float64-rejected": TFA + "contrastive_rejects_float64_only_through_the_l2_distance",
}
BUILT_IN = [a for family in (torch_native, pml, tfa, seeds) for a in family.ADAPTERS]


def test_conformance_pattern_covers_loss_and_grad_only():
    assert [fnmatchcase(q, CONFORMANCE) for q in ("loss", "grad", "edge:no_negative")] == [True, True, False]


def test_every_entry_has_a_confirming_test():
    assert sorted(CONFIRMED_BY) == sorted(d.id for d in REGISTRY)
    for test in CONFIRMED_BY.values():
        module, function = test.split("::")
        assert f"def {function}(" in (Path(__file__).parent / f"{module}.py").read_text(), test


@pytest.mark.parametrize("entry", REGISTRY, ids=lambda d: d.id)
def test_every_entry_matches_a_claimed_cell(entry):
    """A pattern that matches no claimed adapter x spec x dtype x device would never fire: a typo."""
    cells = [
        (a.name, str(s), dtype, device)
        for a in BUILT_IN
        for s in a.specs
        for dtype in a.dtypes
        for device in a.devices
    ]
    patterns = (entry.adapter, entry.spec, entry.dtype, entry.device)
    assert any(all(matches(v, p) for v, p in zip(cell, patterns)) for cell in cells)
    assert entry.reason and entry.link and len({d.id for d in REGISTRY}) == len(REGISTRY)
