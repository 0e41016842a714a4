"""Every way the oracle refuses an input, and the message it gives; and the Spec record itself."""

import math
import re
from dataclasses import FrozenInstanceError

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from oracle_helpers import ALL_SPECS, SPECS, assert_close

import reference
from contract.batch import in_layout
from reference import OracleError, Spec, SpecError

X = np.arange(6.0).reshape(3, 2)
LABELS = [0, 0, 1]
TRIPLETS = Spec(mining="triplets")


def refuses(message_pattern: str, *args, error=OracleError, **kwargs):
    """reference.evaluate(*args, **kwargs) raises `error` with a message matching the pattern."""
    __tracebackhide__ = True
    with pytest.raises(error, match=message_pattern) as caught:
        reference.evaluate(*args, **kwargs)
    return caught.value


# --- embeddings ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "embeddings, pattern",
    [
        (np.arange(3.0), r"embeddings must be 2-D \[N, D\], got shape \(3,\)"),
        (np.zeros((3, 2, 1)), r"embeddings must be 2-D \[N, D\], got shape \(3, 2, 1\)"),
        (np.zeros((0, 2)), r"at least one row \(N >= 1\), got N = 0"),
        (np.zeros((3, 0)), r"at least one column \(D >= 1\), got D = 0"),
        (
            [[0.0, 1.0], [np.nan, 2.0], [3.0, 4.0]],
            r"must be finite: 1 non-finite value\(s\), the first nan at \[1, 0\]",
        ),
        (
            [[0.0, np.inf], [1.0, 2.0], [-np.inf, 4.0]],
            r"must be finite: 2 non-finite value\(s\), the first inf at \[0, 1\]",
        ),
        ([["a", "b"], ["c", "d"], ["e", "f"]], r"embeddings must be a 2-D array of real numbers"),
        # numpy reads None as NaN in a float array, so the message points at it as non-finite
        ([[0.0, None], [1.0, 2.0], [3.0, 4.0]], r"must be finite: 1 non-finite value\(s\), the first nan at \[0, 1\]"),
        ([[0.0], [1.0, 2.0], [3.0]], r"embeddings must be a 2-D array of real numbers"),
        ([[1 + 2j, 0], [0, 0], [0, 0]], r"embeddings must be a 2-D array of real numbers"),
        (np.array([[1 + 2j, 0], [0, 0], [0, 0]]), r"embeddings must be a 2-D array of real numbers"),
    ],
    ids=["1-D", "3-D", "N=0", "D=0", "nan", "inf", "strings", "None", "ragged", "complex list", "complex array"],
)
def test_bad_embeddings(embeddings, pattern):
    refuses(pattern, embeddings, LABELS)


# --- labels -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "labels, pattern",
    [
        (np.zeros((3, 2), dtype=int), r"labels must be 1-D \[N\] \(or \[N, 1\]\), got shape \(3, 2\)"),
        (np.int64(0), r"labels must be 1-D \[N\] \(or \[N, 1\]\), got shape \(\)"),
        ([0, 1], r"labels has length 2 but embeddings has N = 3 rows"),
        ([0, 1, 1, 0], r"labels has length 4 but embeddings has N = 3 rows"),
        ([0.0, 0.5, 1.0], r"labels must be integers \(or integral floats\), got dtype float64"),
        ([0.0, np.nan, 1.0], r"labels must be integers \(or integral floats\), got dtype float64"),
        (["a", "a", "b"], r"labels must be integers \(or integral floats\), got dtype <U1"),
        ([True, True, False], r"labels must be integers \(or integral floats\), got dtype bool"),
        ([0, None, 1], r"labels must be integers \(or integral floats\), got dtype object"),
        ([[0], [1, 2], [3]], r"labels must be"),
        ([1e300, 2e300, 1.0], r"labels must be integers that fit in int64, got array\(\[1.e\+300, 2.e\+300\]\)"),
    ],
    ids=["2-D", "0-D", "short", "long", "fractional", "nan", "strings", "bool", "None", "ragged", "beyond int64"],
)
def test_bad_labels(labels, pattern):
    refuses(pattern, X, labels)


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_column_integral_float_and_unsigned_labels_mean_the_same(spec):
    triplets = [[0, 1, 2], [2, 1, 0]] if spec.mining == "triplets" else None
    x, given = in_layout(spec, X, LABELS)  # the pairs layout, class sets: contract/batch.py
    flat = reference.evaluate(x, given, spec, triplets=triplets)
    for labels in (np.array(given)[:, None], np.array(given, dtype=float), np.array(given, dtype=np.uint8)):
        other = reference.evaluate(x, labels, spec, triplets=triplets)
        snippet = (
            f"import numpy as np, reference\nfrom reference import Spec\nx = np.arange(6.0).reshape(3, 2)\n"
            f"print(reference.evaluate(x, np.array({labels.tolist()!r}, dtype=np.{labels.dtype}), {spec!r}, triplets={triplets}).loss,\n"
            f"      reference.evaluate(x, {LABELS}, {spec!r}, triplets={triplets}).loss)"
        )
        assert_close(other.loss, flat.loss, rtol=0, atol=0, what=f"loss with labels {labels.tolist()}", snippet=snippet)
        assert_close(
            other.grad, flat.grad, rtol=0, atol=0, what=f"gradient with labels {labels.tolist()}", snippet=snippet
        )


# --- triplets -------------------------------------------------------------------------------------------


def test_triplets_are_required_for_mining_triplets():
    refuses(r"mining='triplets' needs the \(anchor, positive, negative\) index triples", X, LABELS, TRIPLETS)


@pytest.mark.parametrize("mining", [m for m in reference.MININGS if m != "triplets"])
def test_triplets_are_refused_where_the_mining_selects_its_own(mining):
    refuses(
        rf"triplets are given but mining='{mining}' selects its own",
        X,
        LABELS,
        Spec(mining=mining, distance=reference.LOSSES[mining].distances[0]),
        triplets=[[0, 1, 2]],
    )


@pytest.mark.parametrize(
    "triplets, pattern",
    [
        ([0, 1, 2], r"triplets must have shape \[T, 3\] \(anchor, positive, negative\), got \(3,\)"),
        ([[0, 1]], r"triplets must have shape \[T, 3\] \(anchor, positive, negative\), got \(1, 2\)"),
        ([[[0, 1, 2]]], r"triplets must have shape \[T, 3\] \(anchor, positive, negative\), got \(1, 1, 3\)"),
        ([[0, 1, 2], [0, 1]], r"triplets must"),
        ([[0.0, 1.0, 2.0]], r"triplets must be integer indices, got dtype float64"),
        ([[True, False, True]], r"triplets must be integer indices, got dtype bool"),
        ([[0, 1, 3]], r"triplets\[0, 2\] = 3 is out of range for N = 3 embeddings"),
        ([[0, 1, 2], [-1, 1, 2]], r"triplets\[1, 0\] = -1 is out of range for N = 3 embeddings"),
    ],
    ids=["1-D", "pairs", "3-D", "ragged", "floats", "bools", "too large", "negative"],
)
def test_bad_triplets(triplets, pattern):
    refuses(pattern, X, LABELS, TRIPLETS, triplets=triplets)


# --- the spec ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, allowed",
    [
        ("mining", "hardest", reference.MININGS),
        ("distance", "manhattan", reference.DISTANCES),
        ("reduction", "avg", reference.REDUCTIONS),
        ("anchors", "some", reference.ANCHORS),
        ("empty", "none", reference.EMPTIES),
    ],
)
def test_unknown_values_are_refused_with_the_allowed_ones(field, value, allowed):
    with pytest.raises(SpecError, match=rf"Spec\.{field}='{value}' is not allowed; choose one of {', '.join(allowed)}"):
        Spec(**{field: value})


@pytest.mark.parametrize("margin", [-0.1, -1, math.nan, math.inf, -math.inf, "1", None, True])
def test_margin_must_be_a_finite_number_at_least_0(margin):
    with pytest.raises(SpecError, match=r"Spec\.margin must be"):
        Spec(margin=margin)


@pytest.mark.parametrize("flag", ["normalize", "soft", "scaled"])
def test_flags_must_be_booleans(flag):
    with pytest.raises(SpecError, match=rf"Spec\.{flag} must be True or False, got 1"):
        Spec(**{flag: 1})


@pytest.mark.parametrize(
    "fields, pattern",
    [
        (
            {"mining": "contrastive", "soft": True},
            r"Spec\.soft applies only to mining in \(batch_all, batch_hard, semi_hard, triplets\), not mining='contrastive'",
        ),
        ({"mining": "semi_hard_all", "soft": True}, r"Spec\.soft applies only to .* not mining='semi_hard_all'"),
        (
            {"mining": "batch_all", "scaled": True},
            r"Spec\.scaled applies only to mining in \(batch_hard\), not mining='batch_all'",
        ),
        ({"mining": "semi_hard", "scaled": True}, r"Spec\.scaled applies only to .* not mining='semi_hard'"),
        ({"scaled": True, "soft": True}, r"Spec\.scaled and Spec\.soft do not combine"),
        (
            {"mining": "batch_all", "anchors": "valid"},
            r"Spec\.anchors applies only to mining in \(batch_hard\), not mining='batch_all'",
        ),
        ({"mining": "contrastive", "anchors": "valid"}, r"Spec\.anchors applies only to .* not mining='contrastive'"),
    ],
    ids=lambda v: str(v) if isinstance(v, dict) else "",
)
def test_fields_that_do_not_combine(fields, pattern):
    with pytest.raises(SpecError, match=pattern):
        Spec(**fields)


def test_spec_must_be_a_spec():
    refuses(r"spec must be a reference\.Spec, got dict", X, LABELS, {"mining": "batch_all"})


def test_from_dict_names_unknown_fields():
    with pytest.raises(SpecError, match=r"unknown Spec field\(s\) margn, mode; known: alpha, anchors, base, beta, distance, .*soft"):
        Spec.from_dict({"margn": 1.0, "mode": "x"})


def test_every_error_is_an_oracle_error_and_a_value_error():
    assert issubclass(SpecError, OracleError) and issubclass(OracleError, ValueError)
    error = refuses(r"labels has length", X, [0, 1])
    assert type(error) is OracleError


# --- the Spec record -----------------------------------------------------------------------------------------


def test_spec_is_frozen_and_hashable():
    spec = Spec()
    with pytest.raises(FrozenInstanceError):
        spec.margin = 2.0
    assert len({Spec(), Spec(), Spec(margin=2.0)}) == 2


def test_soft_ignores_the_margin():
    assert Spec(soft=True, margin=5) == Spec(soft=True) and Spec(soft=True, margin=5).margin == 0.0


def test_integer_margin_is_stored_as_float():
    assert Spec(margin=1) == Spec(margin=1.0) and isinstance(Spec(margin=1).margin, float)


def test_every_spec_round_trips_through_dict_and_repr():
    # the reports' reproducers print repr(spec); results store to_dict()
    broken = [
        spec for spec in ALL_SPECS if Spec.from_dict(spec.to_dict()) != spec or eval(repr(spec), {"Spec": Spec}) != spec
    ]
    assert not broken, f"specs that do not round-trip: {broken[:3]}"


def test_str_is_readable_and_distinct_for_distinct_specs():
    names = {str(spec) for spec in ALL_SPECS}
    assert len(names) == len(ALL_SPECS), "two distinct specs print the same"
    assert str(Spec()) == "batch_hard euclidean m=1 mean anchors=all empty=zero"
    assert str(Spec(mining="semi_hard", distance="cosine", normalize=True, soft=True, empty="nan")) == (
        "semi_hard cosine normalized soft mean empty=nan"
    )
    assert all(re.fullmatch(r"[a-z_]+( [a-z0-9_=.+-]+)+", name) for name in names)


@given(st.floats(0, 1e6))
def test_str_tells_neighbouring_margins_apart(margin):
    neighbour = float(np.nextafter(margin, math.inf))
    assert str(Spec(margin=margin)) != str(Spec(margin=neighbour)), (
        f"Spec(margin={margin!r}) and Spec(margin={neighbour!r}) both print as {str(Spec(margin=margin))!r}"
    )


def test_at_temperature_sets_every_logit_scale_its_loss_takes():
    """The softmax family's temperature is t; the similarity family's scales multiply similarities: 1 / t each."""
    assert Spec(mining="ntxent", distance="cosine").at_temperature(0.01).temperature == 0.01
    circle = Spec(mining="circle", distance="cosine", margin=0.25).at_temperature(0.01)
    assert (circle.gamma, circle.margin, circle.temperature) == (100.0, 0.25, 1.0)
    multi = Spec(mining="multi_similarity", distance="cosine", base=0.2).at_temperature(0.1)
    assert (multi.alpha, multi.beta, multi.base, multi.gamma) == (10.0, 10.0, 0.2, Spec().gamma)
    with pytest.raises(SpecError, match="mining='batch_hard' has no logit scale"):
        Spec(mining="batch_hard").at_temperature(0.1)
