"""The results schema, declared once, as data: one `Record` per kind of JSON-lines record, one `Field` per field.

Everything else derives from these declarations: `ResultsWriter.write` refuses a record that does not
conform (`check`), the reader's key fields and closed values (reports/reader.py), the report's column
lists (reports/model.py and its sections), and docs/results-schema.md (`python -m reports.schema_doc`).

A field's value is checked as JSON holds it, after `results.jsonable`: NumPy arrays are arrays, NumPy
scalars numbers, and a non-finite number is one of the strings "nan", "inf", "-inf" (JSON has none).

    required  the writer refuses a record without the field (a null is allowed where its type says so)
    key       required, and never null or empty: the report places the record by it, and lists a record
              without it as a problem instead of showing it
    choices   a closed set of values: the writer refuses, and the reader lists, any other value
    known     the values written today, documented; others are shown as they are (an open set)

Adding an optional field or a record kind keeps schema_version; changing what an existing field means
(or its type) is a new version, which the reader refuses to mix with this one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from registry import KINDS as DIVERGENCE_KINDS
from contract.dtypes import NAMES as DTYPES
from contract.precision import PRECISIONS
from contract.targets import NAMES as DEVICES

SCHEMA = "triplet-conformance/results"
SCHEMA_VERSION = 1
KINDS = ("run", "run_end", "comparison", "edge_case", "divergence", "robustness", "benchmark")
VERDICTS = ("pass", "fail", "xfail", "xpass", "skip", "ambiguous", "error")
EDGE_CASES = ("no_positive", "no_negative", "singletons", "full_collapse", "duplicates", "nan_input")
EDGE_OUTCOMES = ("value", "nan", "inf", "error")
QUANTITIES = ("loss", "grad")
SWEEPS = ("offset", "near_duplicate", "scale", "temperature", "tf32")
BENCHMARK_STATUSES = ("ok", "timeout", "oom", "error", "skipped")
# A benchmark record's implementations that are no peer: ours (inhouse.torch, whose figures the check and the report
# give; inhouse.triton, ours too) and the references every implementation is measured against (the oracle; one
# N x N x D matmul; the least work of the task's loss, benchmarks/tasks.py LEAST_WORK_BLOCKS)
OURS = "inhouse.torch"
ORACLE, MATMUL, LEAST_WORK = "oracle", "matmul", "least-work"
REFERENCES = (ORACLE, MATMUL, LEAST_WORK)
NOT_PEERS = (OURS, "inhouse.triton", *REFERENCES)

TYPES = ("string", "integer", "number", "boolean", "null", "array", "object")
NON_FINITE = ("nan", "inf", "-inf")  # how `results.jsonable` writes the numbers JSON lacks


@dataclass(frozen=True)
class Field:
    name: str
    types: tuple  # names from TYPES, and at most one nested Record (an object of that shape)
    required: bool
    meaning: str
    key: bool = False
    items: tuple = ()  # an array's element types; () leaves the elements unchecked
    choices: tuple = ()  # closed: nothing else is written or read
    known: tuple = ()  # open: documented, not enforced

    @property
    def record(self) -> "Record | None":
        return next((t for t in self.types if isinstance(t, Record)), None)


@dataclass(frozen=True)
class Record:
    name: str
    meaning: str
    fields: tuple[Field, ...]
    empty_allowed: str = ""  # when an empty object stands for the whole record: says when; "" where it never does

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.key)

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)


def _types(spec) -> tuple:
    if isinstance(spec, Record):
        return (spec,)
    if isinstance(spec, str):
        return tuple(spec.split("|"))
    return tuple(t for part in spec for t in _types(part))


def required(name: str, types, meaning: str, **extra) -> Field:
    return Field(name, _types(types), True, meaning, items=_types(extra.pop("items", ())), **extra)


def optional(name: str, types, meaning: str, **extra) -> Field:
    return Field(name, _types(types), False, meaning, items=_types(extra.pop("items", ())), **extra)


def key(name: str, types, meaning: str, **extra) -> Field:
    return Field(name, _types(types), True, meaning, key=True, items=_types(extra.pop("items", ())), **extra)


# --- what every record carries (set by the writer, never passed to `write`) -----------------------------
ENVELOPE = Record("envelope", "Every record, whatever its kind, starts with these four fields.", (
    key("schema", "string", "tells these files from other JSON lines", choices=(SCHEMA,)),
    key("schema_version", "integer", "the version of this schema; the reader shows only the version it reads",
        choices=(SCHEMA_VERSION,)),
    key("kind", "string", "which of the records below this is", choices=KINDS),
    key("run_id", "string", "the run that wrote it: every record of one run (one writer) shares it"),
))

# --- nested records --------------------------------------------------------------------------------------
HYPOTHESIS = Record("hypothesis", "The Hypothesis settings of a pytest run (in its `run` header).", (
    required("profile", "string", "the settings profile loaded: dev, ci (derandomised), thorough, or a user's own"),
    optional("seed", "integer|string|null", "--hypothesis-seed as given on the command line; null: a random seed"),
    optional("max_examples", "integer", "the profile's max_examples (conformance cells may draw fewer)"),
    optional("derandomize", "boolean", "whether the profile derandomises: the same examples every run"),
    optional("cell_seconds", "number|null", "the time box per conformance item (--cell-seconds), null for none"),
))

TOLERANCE = Record("tolerance", "The tolerance a comparison cell was judged by: |impl - oracle| <= atol + rtol |oracle|.", (
    required("atol", "number", "absolute tolerance of the reported example: the table's atol times `scale`"),
    required("rtol", "number", "relative tolerance (the table's, per dtype and quantity)"),
    required("source", "string", "where the table's row comes from (torch.testing, JAX), and how atol was scaled"),
    optional("scale", "number", "atol / table atol (>= 1): how much the batch's estimated rounding widened atol"),
    optional("scale_range", "array", "[smallest, largest] scale over the cell's examples", items="number"),
    optional("compute_dtype", "string", "the dtype the implementation computes in (TF-Addons upcasts float16)",
             known=DTYPES),
    optional("matmul_mantissa_bits", "integer", "on a target that rounds matmul inputs (cuda-tf32: TF32, 10 bits; "
             "contract/targets.py): the bits the rounding model used, u = (D + 2) eps + 2 x 2^-bits"),
    optional("within_dtype_model", "boolean|null", "on such a target: whether every example also stayed within the "
             "plain dtype's tolerance (the float32 table and model, TF32 off); null: none could be compared"),
    optional("dtype_model_error", "number|null", "on such a target: the largest normalised error under the plain "
             "dtype's model (below 1: within it)"),
), empty_allowed="the cell ran no example (skipped before drawing one)")

COUNTEREXAMPLE = Record("counterexample", "One example of a comparison cell: the failing one (Hypothesis replays the "
                        "shrunk failure last), else the one with the largest normalised error.", (
    required("embeddings", "array", "the batch, N rows of D coordinates, as the dtype holds them"),
    required("labels", "array", "N integer class labels", items="integer"),
    required("triplets", "array|null", "the (a, p, n) index rows for mining=triplets; null otherwise"),
    required("oracle_loss", "number", "the oracle's loss (float64)"),
    required("impl_loss", "number|null", "the implementation's loss; null when it gave no answer"),
    required("oracle_grad", "array", "the oracle's gradient, N x D"),
    required("impl_grad", "array|null", "the implementation's gradient; null when it gave none (loss only, error)"),
    required("selection", "array", "the oracle's selected terms, one row each: (a, p, n), or (i, j) for contrastive"),
    required("gap", "number", "the decision gap: smallest distance from a tie, hinge or zero distance"),
    optional("gaps", "object", "{decision kind: gap}, each kind's own decision gap"),
    optional("ambiguous", "object", "{decision kind: {gap, resolution}} for the kinds the dtype cannot resolve"),
    optional("exact_ties", "array", "decision kinds the example sits exactly on, on an integer lattice every "
             "implementation computes exactly: decided by the spec's own rule (reference/gaps.py)", items="string"),
    optional("layout", "string", "how the strategy built the batch (clustered, one class, near duplicates ...)"),
    optional("normalized_error", "number|null", "this example's normalised error; null when not compared"),
    optional("failure", "string", "why this example failed, in words; empty when it did not"),
    required("reproducer", "string", "Python source that rebuilds the batch and calls the oracle and the adapter"),
))

# --- the kinds -----------------------------------------------------------------------------------------------
RUN = Record("run", "The header: the first line of a run (ResultsWriter.header).", (
    required("started", "string", "when the run began, ISO 8601 UTC"),
    required("git_revision", "string", 'short commit of the checkout, "-dirty" with uncommitted changes, or "unknown"'),
    required("python", "string", "Python version"),
    required("platform", "string", "platform.platform()"),
    required("hostname", "string", "the machine's host name; labels the run when `environment` is empty"),
    required("argv", "array", "the command line", items="string"),
    required("environment", "string", 'the tox environment (TOX_ENV_NAME); "" outside tox. Labels the run'),
    optional("hypothesis", HYPOTHESIS, "pytest runs: the Hypothesis settings"),
    optional("adapters", "array", "pytest runs: the adapters the run judges", items="string"),
    optional("machine_settings", "object", "pytest runs: the machine settings applied to every adapter call "
             "(engine/machine.py) and the variables that choose the frameworks' kernels and threads"),
    optional("frameworks", "object", "{distribution: version}; without it the page lists the adapters' versions"),
    optional("devices", "array", 'execution targets: a string ("cuda:0 NVIDIA H100 80GB HBM3") or an object of words',
             items="string|object"),
    optional("benchmark", "object", "benchmarks/run.py: its settings (sizes, dims, tasks, implementations, caps ...)"),
    optional("machine", "string", "benchmarks/run.py: the machine in words (CPU model, cores, memory, GPU)"),
    optional("notes", "string", "free text"),
))

RUN_END = Record("run_end", "The last line of a run; a run without one was interrupted (its results are partial).", (
    required("finished", "string", "when the run ended, ISO 8601"),
    required("duration_s", "number", "seconds from start to end"),
    required("exit_status", "integer", "pytest's exit status (0 all passed, 1 some failed, 2 interrupted ...)"),
    required("interrupted", "boolean", "stopped by the user (Ctrl-C)"),
    optional("counts", "object", "{verdict: comparison records with it}"),
))

COMPARISON = Record("comparison", "One conformance cell: adapter x spec x dtype x device x quantity, against the oracle.", (
    key("adapter", "string", "the adapter's name (adapters/, or a user's --adapter)"),
    required("framework", "string", 'the implementation\'s framework ("torch", "tensorflow", "numpy" ...)'),
    required("spec", "object", "reference.Spec.to_dict(): the semantics the adapter claims"),
    key("spec_label", "string", "str(Spec), the label the page shows"),
    key("dtype", "string", "the dtype the implementation is called with", known=DTYPES),
    key("device", "string", "where it runs", known=DEVICES),
    optional("target", "string", 'the execution target the adapter reported ("cpu", "cuda:0 NVIDIA H100 80GB HBM3"; "" if none ran)'),
    optional("version", "string", 'the versions the adapter reported ("torch 2.13.0 + triton 3.1.0")'),
    key("quantity", "string", "what is compared: the loss or its gradient w.r.t. the embeddings", known=QUANTITIES),
    key("verdict", "string", "pass, fail (a discrepancy), xfail / xpass (a registered divergence that did / did not "
        "show), skip, ambiguous (every example undecidable in the dtype), error (the check broke)", choices=VERDICTS),
    optional("reason", "string", "why it failed, errored, was skipped, xfailed or was ambiguous"),
    optional("examples", "integer", "examples drawn"),
    optional("ambiguous_examples", "integer", "examples accepted among admissible outcomes, or not compared"),
    optional("exact_tie_examples", "integer", "examples that sat exactly on a decision the spec's own rule decided "
             "(an integer lattice, exact in the dtype)"),
    optional("ambiguous_kinds", "object", "{decision kind: examples} of the ambiguous examples, per kind that kept "
             "this quantity from the oracle's own value (reference/gaps.py; the loss: kinds across which it jumps, "
             "e.g. soft_underflow, a soft term of mean_nonzero the dtype may round to 0 and leave out of the count)"),
    optional("precision", "string", "how precisely the adapter declares it computes distances (contract/precision.py): "
             '"direct" is the default every adapter is held to; "gram" a declared widening', choices=tuple(PRECISIONS)),
    optional("max_abs", "number|null", "largest |implementation - oracle| over the compared examples"),
    optional("max_rel", "number|null", "largest |implementation - oracle| / |oracle|"),
    optional("max_ulp", "number|null", "largest difference in units in the last place of the dtype"),
    optional("normalized_error", "number|null", "largest |impl - oracle| / (atol + rtol |oracle|): below 1 passes"),
    optional("errors", "array", "the normalised error of every compared example (4 digits), for the distribution",
             items="number|null"),
    optional("tolerance", TOLERANCE, "the tolerance the cell was judged by"),
    optional("divergence", "string|null", "registry ids (registry/__init__.py) covering the cell, comma-separated"),
    optional("counterexample", (COUNTEREXAMPLE, "null"), "the failing or worst example; null when none was drawn"),
    optional("nodeid", "string", "the pytest item"),
    optional("duration_s", "number", "seconds the pytest item took"),
))

EDGE_CASE = Record("edge_case", "What one implementation does on one degenerate batch (the edge-case tests), per "
                   "adapter x spec x case.", (
    key("adapter", "string", "the adapter's name"),
    required("spec", "object", "reference.Spec.to_dict()"),
    key("spec_label", "string", "str(Spec)"),
    required("dtype", "string", "the dtype it was called with (its first claimed one)", known=DTYPES),
    required("device", "string", "where it ran", known=DEVICES),
    key("case", "string", "the degenerate batch", known=EDGE_CASES),
    key("outcome", "string", "what the implementation returned: a finite value, NaN, infinity, or an exception",
        choices=EDGE_OUTCOMES),
    required("loss", "number|null", "its loss; null when it raised"),
    required("grad_finite", "boolean|null", "whether every gradient element is finite; null: no gradient"),
    required("error", "string", 'the exception, "Type: message"; "" when none'),
    optional("oracle_outcome", "string", "what the oracle returned (error: it rejects the batch)", choices=EDGE_OUTCOMES),
    required("oracle_loss", "number|null", "the oracle's loss; null when it rejects the batch"),
    optional("oracle_error", "string", 'why the oracle rejects the batch; "" when it does not'),
    required("matches_oracle", "boolean|null", "loss and gradient within tolerance of the oracle; null: no oracle answer"),
    optional("problems", "array", "what does not match, in words", items="string"),
    optional("divergence", "string|null", "registry ids covering the case, comma-separated"),
))

DIVERGENCE = Record("divergence", "One entry of the known-divergence registry (registry/__init__.py), as this run "
                    "saw it.", (
    key("id", "string", "the entry's id"),
    key("adapter", "string|array", "the adapter name pattern(s) it covers (fnmatch)", items="string"),
    required("pattern", "object|string", "{spec, dtype, device, quantity}: the patterns that narrow it (or one text)"),
    required("divergence_kind", "string", "what kind of difference (`kind` is the record's own kind)",
             known=DIVERGENCE_KINDS),
    required("reason", "string", "why the implementation differs"),
    required("link", "string", "the upstream issue or source"),
    required("reproduces", "boolean|null", "true: an xfail showed it; false: an xpass (stale); null: not exercised"),
    optional("items", "integer", "collected test items the entry covers"),
    optional("outcomes", "object", "{verdict: items} of those items"),
))

ROBUSTNESS = Record("robustness", "One level of a numerical robustness sweep, per adapter x "
                    "dtype x device x sweep x level.", (
    key("adapter", "string", "the adapter (or a NumPy reference line) measured"),
    optional("framework", "string", "its framework"),
    optional("spec", "object", "reference.Spec.to_dict() of the spec swept"),
    required("spec_label", "string", "str(Spec)"),
    required("dtype", "string", "the dtype it was called with", known=DTYPES),
    required("device", "string", "where it ran", known=DEVICES),
    key("sweep", "string", "far from the origin, near-duplicate points, scaled, logits at a temperature, or offset "
        "with TF32 matmuls", known=SWEEPS),
    key("level", "number", "the sweep's level: offset, pair distance, scale factor or temperature"),
    optional("batches", "integer", "batches measured; the one furthest beyond its bounds speaks for the level"),
    optional("eps", "number", "the machine epsilon the bounds use (TF32's for the tf32 sweep)"),
    required("bound", "number|null", "the loss error the documented expectation allows (the robustness suite's bounds.py)"),
    required("grad_bound", "number|null", "the gradient error (max over elements) it allows"),
    optional("oracle_loss", "number", "the exact loss (oracle, float64)"),
    optional("tolerance", "number", "what the value tolerance table allows at that loss"),
    optional("ambiguous", "array", "decision kinds within the dtype's resolution at this level", items="string"),
    optional("realized_level", "number", "near_duplicate: the pairs' smallest distance as the dtype holds them"),
    optional("error", "string|null", "the call's failure; null when it answered"),
    optional("version", "string", "the versions the adapter reported"),
    optional("target", "string", "the execution target the adapter reported"),
    optional("impl_loss", "number|null", "the implementation's loss; null when not finite or none"),
    required("loss_error", "number|null", "|impl - exact| loss (distance to the admissible losses at a tie)"),
    required("grad_error", "number|null", "max |impl - exact| gradient element; null when not finite or none"),
    required("nonfinite", "boolean|null", "a NaN or infinity in the loss or gradient; null: not measured"),
    required("within_bound", "boolean|null", "every judged error within its bound; null: not measured"),
    optional("within_tolerance", "boolean", "the raw loss error within the value tolerance"),
    optional("collapsed", "boolean|null", "it answered as if every distance were 0 (underflow)"),
    optional("skipped", "string", "why the sweep did not run here (no numbers then)"),
    optional("divergence", "string|null", "registry ids covering this sweep, comma-separated"),
))

BENCHMARK = Record("benchmark", "Time and peak memory of one measurement (benchmarks/run.py), per implementation x "
                   "task x N x D x device.", (
    key("implementation", "string", f'benchmarks/implementations.py name (the references: "{MATMUL}", one N x N x D '
        f'matmul; "{LEAST_WORK}", the least work of the task\'s loss; "{ORACLE}")'),
    optional("task", "string", 'the loss measured, or "matmul"'),
    required("spec_label", "string", "str(Spec) of the task (the matmul's shape for the reference)"),
    key("device", "string", "where it ran", known=DEVICES),
    key("n", "integer", "batch size N"),
    required("d", "integer", "embedding dimension D"),
    required("seconds", "number|null", "forward + backward, the fastest timed call; null unless ok"),
    required("peak_bytes", "number|null", "peak memory above the pre-call baseline; null unless ok"),
    required("status", "string", "ok, or why there is no number (skipped: not run, see reason)",
             known=BENCHMARK_STATUSES),
    required("reference_seconds", "number|null", "one N x N x D matmul on the same device; null when it had none"),
    optional("first_seconds", "number", "the first call, warm-up included"),
    optional("repeats", "integer", "timed calls after the first"),
    optional("memory_method", "string", "how peak memory was measured"),
    optional("version", "string", "framework versions"),
    optional("target", "string", "the execution target"),
    optional("reason", "string", "why there is no number"),
    optional("time_cap_s", "number", "the time cap, from the first call"),
    optional("memory_cap_bytes", "integer", "the resident memory cap (CPU)"),
    optional("threads", "integer|null", "CPU threads per framework; null: the frameworks' defaults"),
))

RECORDS: dict[str, Record] = {r.name: r for r in (RUN, RUN_END, COMPARISON, EDGE_CASE, DIVERGENCE, ROBUSTNESS,
                                                  BENCHMARK)}
NESTED: tuple[Record, ...] = (HYPOTHESIS, TOLERANCE, COUNTEREXAMPLE)
assert tuple(RECORDS) == KINDS


def columns(kind: str) -> tuple[str, ...]:
    """The columns of a table of `kind` records: the run, then every declared field in declaration order."""
    return ("run_id", *RECORDS[kind].names)


# --- checking ------------------------------------------------------------------------------------------------
def json_type(value) -> str:
    """The TYPES name of a JSON value; a non-finite number (as a string) is a "number"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number" if math.isfinite(value) else "non-finite float"
    if isinstance(value, str):
        return "number" if value in NON_FINITE else "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _conforms(value, kind) -> bool:
    if isinstance(kind, Record):
        return isinstance(value, dict)
    found = json_type(value)
    return found == kind or (kind == "number" and found == "integer") or (
        kind == "string" and isinstance(value, str))


def type_words(types: tuple) -> str:
    return " or ".join(t.name if isinstance(t, Record) else t for t in types)


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def violations(record: Record, values: dict, where: str = "") -> list[str]:
    """What keeps `values` (a record's fields, without the envelope) from being a `record`; [] when it is one."""
    if not values and record.empty_allowed:
        return []
    found = [f"unknown field {where + name!r} (known: {', '.join(record.names)})"
             for name in values if name not in record.names]
    for field in record.fields:
        path = where + field.name
        if field.name not in values:
            if field.required:
                found.append(f"missing required field {path!r}")
            continue
        value = values[field.name]
        if not any(_conforms(value, kind) for kind in field.types):
            found.append(f"field {path!r} is {json_type(value)} {_shown(value)}, expected {type_words(field.types)}")
            continue
        if field.key and value in ("", [], {}):
            found.append(f"field {path!r} is empty: the report places the record by it")
        if field.choices and value is not None and value not in field.choices:
            found.append(f"field {path!r} is {_shown(value)}, not one of {', '.join(map(str, field.choices))}")
        if field.items and isinstance(value, list):
            found += [f"field '{path}[{i}]' is {json_type(item)} {_shown(item)}, expected {type_words(field.items)}"
                      for i, item in enumerate(value) if not any(_conforms(item, kind) for kind in field.items)][:5]
        if field.record is not None and isinstance(value, dict):
            found += violations(field.record, value, path + ".")
    return found


def check(kind: str, fields: dict) -> None:
    """Raise ValueError naming the kind and every field that keeps `fields` from being a `kind` record."""
    if kind not in RECORDS:
        raise ValueError(f"unknown record kind {kind!r}; known: {', '.join(KINDS)}")
    envelope = [f"field {name!r} is set by the writer, not passed" for name in ENVELOPE.names if name in fields]
    found = envelope + violations(RECORDS[kind], {k: v for k, v in fields.items() if k not in ENVELOPE.names})
    if found:
        raise ValueError(f"{kind} record does not match the results schema (reports/schema.py): " + "; ".join(found))
