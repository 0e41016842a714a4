"""The discrepancies: every comparison cell whose verdict is fail or error, worst first, each with its
counterexample (inputs, both answers, where the gradients differ most) and a copy-paste reproducer."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import describe
from .common import DISCREPANT, QUANTITY_WORDS, text_of


@dataclass
class ArrayView:
    name: str
    text: str
    rows: int


@dataclass
class Discrepancy:
    anchor: str
    adapter: str
    spec_label: str
    spec_words: str
    dtype: str
    device: str
    quantity: str
    verdict: str
    variant: str
    run_label: str
    reason: str
    error: str
    max_abs: str
    max_rel: str
    max_ulp: str
    tolerance: str
    examples: str
    oracle_value: str
    impl_value: str
    worst_element: str
    inputs: list[ArrayView]
    gradients: list[ArrayView]
    selection: str
    gap: str
    layout: str  # how the strategy built the batch (clustered, near-ties, ...), where the record says
    reproducer: str


def _worst_element(oracle, impl) -> str:
    """Where the two gradients differ most, with both values: the first thing a reader looks for."""
    if oracle is None or impl is None or oracle.shape != impl.shape or oracle.size == 0:
        return ""
    difference = np.abs(impl.astype(float) - oracle.astype(float))
    if np.isnan(difference).all():
        return "every element is NaN in one of them"
    index = np.unravel_index(int(np.nanargmax(difference)), difference.shape)
    return (f"largest difference at {[int(i) for i in index]}: oracle {describe.full(oracle[index])}, "
            f"implementation {describe.full(impl[index])}")


def build_discrepancies(comparisons: pd.DataFrame) -> tuple[list[Discrepancy], dict[int, str]]:
    found = comparisons[comparisons["verdict"].isin(DISCREPANT)].copy()
    found["_order"] = found["verdict"].map({"fail": 0, "error": 1})
    found["_error"] = found["normalized_error"].map(lambda v: describe.number(v) or 0.0)
    found = found.sort_values(["_order", "_error"], ascending=[True, False], kind="stable")
    views, anchors = [], {}
    for position, row in enumerate(found.itertuples(), start=1):
        anchor = f"discrepancy-{position}"
        anchors[row.Index] = anchor
        example = row.counterexample if isinstance(row.counterexample, dict) else {}
        arrays = {name: describe.as_array(example.get(name))
                  for name in ("embeddings", "labels", "triplets", "oracle_grad", "impl_grad", "selection")}
        tolerance = row.tolerance if isinstance(row.tolerance, dict) else {}
        loss_quantity = row.quantity == "loss"
        views.append(Discrepancy(
            anchor=anchor, adapter=row.adapter, spec_label=row.spec_label,
            spec_words=describe.describe_spec(row.spec, row.spec_label), dtype=row.dtype, device=row.device,
            quantity=QUANTITY_WORDS.get(row.quantity, row.quantity), verdict=row.verdict, variant=row.variant,
            run_label=row.run_label, reason=text_of(row.reason) or text_of(example.get("failure")),
            error=describe.multiple(row.normalized_error), max_abs=describe.scientific(row.max_abs),
            max_rel=describe.scientific(row.max_rel), max_ulp=describe.scientific(row.max_ulp),
            tolerance=describe.tolerance_text(tolerance) + (f" ({tolerance['source']})" if tolerance.get("source") else ""),
            examples=text_of(row.examples),
            oracle_value=describe.full(example.get("oracle_loss")),
            impl_value=describe.full(example.get("impl_loss")),
            worst_element="" if loss_quantity else _worst_element(arrays["oracle_grad"], arrays["impl_grad"]),
            inputs=[ArrayView(name, describe.array_text(arrays[name]), len(arrays[name]))
                    for name in ("embeddings", "labels", "triplets") if arrays[name] is not None],
            gradients=[ArrayView(label, describe.array_text(arrays[name]), len(arrays[name]))
                       for name, label in (("oracle_grad", "oracle gradient"), ("impl_grad", "implementation gradient"))
                       if arrays[name] is not None],
            selection=describe.selection_text(arrays["selection"]) if "selection" in example else "",
            gap=describe.scientific(example.get("gap")) if "gap" in example else "",
            layout=text_of(example.get("layout")),
            reproducer=text_of(example.get("reproducer")),
        ))
    return views, anchors

