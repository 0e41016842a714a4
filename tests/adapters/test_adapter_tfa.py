"""TF-Addons adapters and wrap_tensorflow: the float64 rejections in the registry, the NaN that semi_hard's
empty="nan" stands for, graph mode on a fixed shape, the checks on a wrapped function's output, and
lifted_struct_loss: its probed fixture values and the NaNs the registry holds (one class, far negatives)."""
import numpy as np
import pytest

import reference
from adapters import _tf, tfa, wrap_tensorflow
from reference import Spec

pytest.importorskip("torch")  # imported before TensorFlow when both are installed (adapters._tf.load)
tf = pytest.importorskip("tensorflow")
addons = pytest.importorskip("tensorflow_addons")

ADAPTERS = {a.name: a for a in tfa.ADAPTERS}
RNG = np.random.default_rng(7)
X = RNG.normal(size=(10, 6))
Y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 3, 3])


@pytest.mark.parametrize("name", ["tfa.triplet_semihard_loss", "tfa.triplet_hard_loss"])
def test_triplet_losses_reject_float64_for_every_metric(name):
    """Confirms tfa-triplet-float64-rejected (eagerly: InvalidArgumentError)."""
    adapter = ADAPTERS[name]
    for spec in adapter.specs:
        with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a double tensor but is a float"):
            adapter.run(X, Y, spec, "float64", "cpu")


def assert_float64_rejected_as_a_graph(loss) -> None:
    """loss(labels, float64 embeddings), its tf.function traced as a graph: a TypeError at trace time."""
    eager_before = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(False)
    try:
        with pytest.raises(TypeError, match="float32 that does not match type float64"):
            loss(tf.constant(Y), tf.constant(X, tf.float64))
    finally:
        tf.config.run_functions_eagerly(eager_before)


def test_triplet_loss_rejects_float64_as_a_graph_too():
    """The same rejection when the tf.function runs as a graph: a TypeError at trace time."""
    assert_float64_rejected_as_a_graph(addons.losses.triplet_semihard_loss)


def test_contrastive_rejects_float64_only_through_the_l2_distance():
    """Confirms tfa-pairwise-distance-float64-rejected, and its scope: cosine (angular_distance) conforms."""
    adapter = ADAPTERS["tfa.contrastive_loss"]
    for spec in adapter.specs:
        if spec.distance == "euclidean":
            with pytest.raises(tf.errors.InvalidArgumentError, match="double tensor but is a float"):
                adapter.run(X, Y, spec, "float64", "cpu")
        else:
            out = adapter.run(X, Y, spec, "float64", "cpu")
            oracle = reference.evaluate(X, Y, spec)
            assert out.loss == pytest.approx(oracle.loss, rel=1e-12)
            assert np.allclose(out.grad, oracle.grad, atol=1e-12)


def test_hard_loss_splits_the_gradient_when_the_nearest_negative_ties_the_row_maximum():
    """Confirms tfa-hard-loss-gradient-split-at-a-tied-row-maximum. Anchor 0's positive 1.5 and its only
    negative -1.5 are both at the row maximum 1.5; no decision of the oracle is near (gap >= 0.25), yet
    TF-Addons' gradient differs while its loss does not."""
    x = np.array([[0.0], [1.5], [0.25], [-1.5]])
    y = np.array([0, 0, 0, 1])
    adapter = ADAPTERS["tfa.triplet_hard_loss"]
    expected = {  # spec label -> TF-Addons' gradient, measured
        "batch_hard euclidean m=1 mean anchors=all empty=zero": [-0.3125, 0.40625, -0.5, 0.40625],
        "batch_hard squared_euclidean m=1 mean anchors=all empty=zero": [-0.9375, 0.46875, 0.0, 0.46875],
    }
    for spec in adapter.specs:
        if spec.distance == "cosine":
            continue  # the anchor at the origin has no direction
        out = adapter.run(x, y, spec, "float32", "cpu")
        oracle = reference.evaluate(x, y, spec)
        assert oracle.gap >= 0.25 and out.loss == pytest.approx(oracle.loss, rel=1e-6)
        assert np.abs(out.grad - oracle.grad).max() > 0.05, spec  # float32's gradient tolerance is 2e-3
        if str(spec) in expected:
            assert np.allclose(out.grad.ravel(), expected[str(spec)], atol=1e-6)


@pytest.mark.parametrize("distance, points", [("squared_euclidean", [0.0, 10.0, 0.5, -0.7]),
                                               ("euclidean", [0.0, 100.0, 1.0, -2.0])])
def test_soft_hard_loss_overflows_beyond_88(distance, points):
    """Confirms tfa-soft-hard-loss-overflows: hp - hn = 100 - 0.25 in squared-L2 and 100 - 1 in L2; log1p(exp(99))
    is inf in float32, softplus(99) is 99."""
    x = np.array(points)[:, None]
    y = np.array([0, 0, 1, 1])
    adapter = ADAPTERS["tfa.triplet_hard_loss"]
    spec = Spec(mining="batch_hard", distance=distance, soft=True)
    oracle = reference.evaluate(x, y, spec)
    for dtype in ("float32", "float16", "bfloat16"):
        out = adapter.run(x, y, spec, dtype, "cpu")
        assert np.isinf(out.loss) and np.isnan(out.grad).any() and np.isfinite(oracle.loss)


def test_semihard_without_a_positive_pair_is_nan_with_nan_gradient():
    """The claimed empty="nan": 0 / 0 over ordered positive pairs (tensorflow/addons#1676, #2447)."""
    adapter = ADAPTERS["tfa.triplet_semihard_loss"]
    spec = adapter.specs[0]
    out = adapter.run(X, np.arange(len(X)), spec, "float32", "cpu")
    assert np.isnan(out.loss) and np.isnan(out.grad).all()
    assert np.isnan(reference.evaluate(X, np.arange(len(X)), spec).loss)


def test_soft_hard_loss_ignores_the_margin():
    embeddings, labels = tf.constant(X, tf.float32), tf.constant(Y)
    soft = [addons.losses.triplet_hard_loss(labels, embeddings, margin=m, soft=True).numpy() for m in (1.0, 5.0)]
    assert soft[0] == soft[1]


@pytest.mark.parametrize("name", ["tfa.triplet_semihard_loss", "tfa.triplet_hard_loss"])
def test_graph_mode_on_a_fixed_shape_matches_eager_mode_and_the_oracle(name):
    """The "(graph)" adapters run TF-Addons' tf.functions as graphs: same loss and gradient as eagerly."""
    graph, eager = ADAPTERS[f"{name} (graph)"], ADAPTERS[name]
    assert graph.extra["mode"] == "graph" and eager.extra["mode"] == "eager"
    spec = graph.specs[0]
    for _ in range(2):  # the second call reuses the traced graph
        in_graph = graph.run(X, Y, spec, "float32", "cpu")
    eagerly = eager.run(X, Y, spec, "float32", "cpu")
    oracle = reference.evaluate(X, Y, spec)
    assert in_graph.loss == pytest.approx(eagerly.loss, rel=1e-6)
    assert np.allclose(in_graph.grad, eagerly.grad, atol=1e-6)
    assert in_graph.loss == pytest.approx(oracle.loss, rel=1e-5)
    assert tf.config.functions_run_eagerly() is False  # the setting is restored


def test_graph_true_runs_a_plain_function_as_a_graph_retracing_as_kerass_fit_does():
    """graph=True traces the forward and the gradient into one tf.function with reduce_retracing, as Keras's fit
    builds its train function: a plain Python function runs as a graph too, and batches of new sizes reuse the graph
    traced for an unknown batch size instead of each tracing its own."""
    traced = []

    def loss(embeddings, labels):
        traced.append((tf.executing_eagerly(), embeddings.shape.as_list()))
        return tf.reduce_sum(embeddings ** 2)

    adapter = wrap_tensorflow(loss, name="plain in a graph", spec=Spec(), graph=True)
    for rows in (5, 6, 7, 8, 6):
        out = adapter.run(X[:rows], Y[:rows], Spec(), "float32", "cpu")
        assert out.loss == pytest.approx(np.sum(X[:rows] ** 2), rel=1e-6)
        np.testing.assert_allclose(out.grad, 2 * X[:rows], rtol=1e-6)
    assert [eagerly for eagerly, _ in traced] == [False] * len(traced)
    assert [shape for _, shape in traced] == [[5, 6], [None, 6]]


def test_low_precision_losses_come_back_in_the_input_dtype():
    """TF-Addons upcasts float16/bfloat16 to float32 and casts the loss back (PR #1683)."""
    for dtype in ("float16", "bfloat16"):
        out = ADAPTERS["tfa.triplet_hard_loss"].run(X, Y, Spec(), dtype, "cpu")
        assert out.loss == pytest.approx(reference.evaluate(X, Y, Spec()).loss, rel=2e-2)


@pytest.mark.parametrize(
    "returned, message",
    [
        (lambda e: 1.5, "returned a float, expected a scalar tf.Tensor"),
        (lambda e: tf.reduce_sum(e, axis=1), "returned a tensor of shape [3], expected a scalar"),
        (lambda e: tf.cast(tf.reduce_sum(e), tf.float64), "returned a float64 tensor for float32 embeddings"),
    ],
)
def test_wrap_tensorflow_checks_the_output(returned, message):
    adapter = wrap_tensorflow(lambda e, y: returned(e), name="bad-tf", spec=Spec())
    with pytest.raises(TypeError) as raised:
        adapter.run(X[:3], Y[:3], Spec(), "float32", "cpu")
    assert message in str(raised.value)


def test_wrap_tensorflow_gradient_and_missing_gpu():
    adapter = wrap_tensorflow(lambda e, y: tf.reduce_sum(e * e), name="square", spec=Spec(), targets=("cpu", "cuda"))
    out = adapter.run(X, Y, Spec(), "float32", "cpu")
    assert np.allclose(out.grad, 2 * X, rtol=1e-6) and out.version.startswith("tensorflow ")
    if not tf.config.list_physical_devices("GPU"):
        assert "no GPU visible" in adapter.available("cuda")
    with pytest.raises(TypeError, match="graph must be True or False"):
        wrap_tensorflow(lambda e, y: tf.reduce_sum(e), name="x", spec=Spec(), graph="yes")
    assert _tf.target("cpu") == "cpu"


def test_bfloat16_shows_the_split_with_the_hinge_only():
    """Confirms tfa-hard-loss-gradient-split-at-a-tied-row-maximum-bfloat16: on the tied 1-D batch the hinge's
    gradient error exceeds bfloat16's gradient tolerance (0.1 + 0.1 |g|), softplus's stays inside it."""
    x = np.array([[0.0], [1.5], [0.25], [-1.5]])
    y = np.array([0, 0, 0, 1])
    adapter = ADAPTERS["tfa.triplet_hard_loss"]
    for spec in (s for s in adapter.specs if s.distance == "euclidean"):
        oracle = reference.evaluate(x, y, spec)
        error = np.abs(adapter.run(x, y, spec, "bfloat16", "cpu").grad - oracle.grad)
        beyond = (error > 0.1 + 0.1 * np.abs(oracle.grad)).any()
        assert beyond == (not spec.soft), spec


def test_contrastive_float16_sum_overflows_where_the_mean_fits():
    """Confirms tfa-contrastive-float16-sum-overflows: one class of 20 points 5 apart, mean 1750."""
    x, y = (np.arange(20.0) * 5.0)[:, None], np.zeros(20, dtype=int)
    adapter = ADAPTERS["tfa.contrastive_loss"]
    spec = next(s for s in adapter.specs if s.distance == "euclidean" and s.reduction == "mean")
    assert reference.evaluate(x, y, spec).loss == pytest.approx(1750.0)
    assert adapter.run(x, y, spec, "float16", "cpu").loss == np.inf
    assert adapter.run(x, y, spec, "float32", "cpu").loss == pytest.approx(1750.0, rel=1e-6)


def test_semihard_gradient_of_a_nan_loss_is_zero_or_nan_by_the_sign_of_a_gram_residue():
    """Why the gradient of semi_hard's NaN loss (no positive pair) is not compared (engine/judge.py): for one row twice
    with two labels, TF-Addons' gradient is NaN where its Gram expansion of the pair is 0 or above and 0 where it rounds
    below 0 (pairwise_distance's maximum(d2, 0) then sends the upstream inf to the constant). Which one a row gets
    depends on the CPU's matmul (oneDNN's or Eigen's kernel, its vector width and summation order), so only this holds
    on every machine: in one dimension the expansion is exactly 0 (one product, the same in the norm and the matmul)
    and the gradient NaN; in more, each gradient is all NaN or all 0, never another value."""
    adapter = ADAPTERS["tfa.triplet_semihard_loss"]
    euclidean = next(s for s in adapter.specs if s.distance == "euclidean")
    rng = np.random.default_rng(3)
    for d in (1, 4):
        rows = rng.normal(size=(20, d)) * 10.0 ** rng.uniform(-1, 2, (20, 1))
        for row in rows.astype(np.float32).astype(np.float64):
            x = np.array([row, row])
            assert np.isnan(reference.evaluate(x, [0, 1], euclidean).loss)
            out = adapter.run(x, np.array([0, 1]), euclidean, "float32", "cpu")
            assert np.isnan(out.loss)
            assert np.isnan(out.grad).all() if d == 1 else (np.isnan(out.grad).all() or not out.grad.any()), out.grad


def test_angular_gradient_of_a_row_near_the_origin_is_within_the_normalisations_rounding():
    """In one dimension the spec's cosine gradient is exactly 0, but normalising a row of norm 7.3e-4 leaves its unit
    row's rounding times 1 / |x| in the gradient (engine/tolerances.py `projection_rounding`). TF-Addons' l2_normalize
    takes 1 / |x| from the CPU's rsqrt estimate refined by a Newton step: -2^-7 on an AVX2 machine (once registered
    as a divergence, from that machine's residual), 2^-11 on an AVX-512 one. Both are within that rounding, and so is
    this machine's and torch's; a gradient 32 times the AVX2 one is not. (The rounding counts every pair's slope in
    the g the projection cancels, the parallel pairs' too: 1 - cos of two unit rows rounds to +-1e-7, and the clamp
    passes the slope where it comes out positive; about 2^-3.8 here.)"""
    from engine.ambiguity import decisions
    from contract.batch import found
    from engine.judge import judge
    from reference import evaluate
    from engine.tolerances import tolerance

    x, y = found("cosine_d1_row_near_the_origin")
    spec = Spec(mining="contrastive", distance="cosine", margin=1.0, reduction="sum", empty="zero")
    expected = evaluate(x, y, spec)
    assert not expected.grad.any()
    allowed = tolerance("grad", "float32", expected)

    def conforms(grad):
        return judge("grad", grad, expected, decisions(expected, "float32"), allowed, "float32").ok

    for seen in (-(2.0**-7), 2.0**-11):
        grad = np.zeros_like(expected.grad)
        grad[6, 0] = seen
        assert conforms(grad)
    assert not conforms(grad * 2.0**9)  # 2^-2
    assert conforms(ADAPTERS["tfa.contrastive_loss"].run(x, y, spec, "float32", "cpu").grad)  # this machine's CPU
    torch = pytest.importorskip("torch")
    from inhouse.torch_losses import metric_loss

    points = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    metric_loss(points, y, spec).backward()
    assert conforms(points.grad.double().numpy())



# --- lifted_struct_loss ------------------------------------------------------------------------------

# Fixture A of docs/upstream/next-losses.md: unit vectors, labels [0, 0, 1, 1].
FIXTURE_A = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-0.8, 0.6]])
FIXTURE_A_LABELS = np.array([0, 0, 1, 1])
LIFTED = Spec(mining="lifted", distance="euclidean", margin=1.0, reduction="mean", empty="nan")


@pytest.mark.parametrize("name", ["tfa.lifted_struct_loss", "tfa.lifted_struct_loss (graph)"])
@pytest.mark.parametrize("scale, expected", [(1.0, 2.0997672), (3.0, 1.9600879)])
def test_lifted_gives_the_probed_fixture_values(name, scale, expected):
    """TF-Addons' lifted_struct_loss on fixture A is 2.0997672, on 3 A 1.9600879 (no normalisation), eagerly and as
    a graph (docs/upstream/next-losses.md, section 4.1), within float32's loss tolerance; so is the oracle's, and
    the gradients agree with it within float32's gradient tolerance."""
    adapter = ADAPTERS[name]
    x = scale * FIXTURE_A
    out = adapter.run(x, FIXTURE_A_LABELS, LIFTED, "float32", "cpu")
    oracle = reference.evaluate(x, FIXTURE_A_LABELS, LIFTED)
    assert out.loss == pytest.approx(expected, rel=1.3e-6, abs=1e-5)
    assert oracle.loss == pytest.approx(expected, abs=1e-7)
    np.testing.assert_allclose(out.grad, oracle.grad, rtol=2e-3, atol=2e-3)


def test_lifted_graph_and_eager_agree():
    """The "(graph)" adapter traces lifted_struct_loss and its gradient into one graph: the same loss and gradient as
    eagerly, on a random batch and on batches of new sizes (the graph retraced for an unknown batch size)."""
    graph, eager = ADAPTERS["tfa.lifted_struct_loss (graph)"], ADAPTERS["tfa.lifted_struct_loss"]
    assert graph.extra["mode"] == "graph" and eager.extra["mode"] == "eager"
    for rows in (10, 10, 8, 9):
        in_graph = graph.run(X[:rows], Y[:rows], LIFTED, "float32", "cpu")
        eagerly = eager.run(X[:rows], Y[:rows], LIFTED, "float32", "cpu")
        oracle = reference.evaluate(X[:rows], Y[:rows], LIFTED)
        assert in_graph.loss == pytest.approx(eagerly.loss, rel=1e-6)
        np.testing.assert_allclose(in_graph.grad, eagerly.grad, rtol=1e-5, atol=1e-6)
        assert in_graph.loss == pytest.approx(oracle.loss, rel=1e-5)
    assert tf.config.functions_run_eagerly() is False  # the setting is restored


def test_lifted_half_precision_is_computed_in_float32_and_cast_back():
    """float16 and bfloat16 are upcast (PR #1683): fixture A gives 2.1 and 2.09375 (probed), float32's 2.0997672
    rounded to the dtype's grid, and the loss comes back in the input dtype (the adapter checks it)."""
    adapter = ADAPTERS["tfa.lifted_struct_loss"]
    assert adapter.compute_dtype == {"float16": "float32", "bfloat16": "float32"}
    assert adapter.run(FIXTURE_A, FIXTURE_A_LABELS, LIFTED, "float16", "cpu").loss == pytest.approx(2.1, abs=1e-3)
    assert adapter.run(FIXTURE_A, FIXTURE_A_LABELS, LIFTED, "bfloat16", "cpu").loss == 2.09375


def test_lifted_rejects_float64_eagerly_and_as_a_graph():
    """Confirms tfa-lifted-float64-rejected: InvalidArgumentError eagerly (the float32 masks of pairwise_distance),
    TypeError when the tf.function is traced."""
    adapter = ADAPTERS["tfa.lifted_struct_loss"]
    for spec in adapter.specs:
        with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a double tensor but is a float"):
            adapter.run(X, Y, spec, "float64", "cpu")
    assert_float64_rejected_as_a_graph(addons.losses.lifted_struct_loss)


def lifted_answers(adapter, x, labels):
    """(spec, dtype, the oracle's answer, the adapter's) for every spec it claims and dtype it computes (float64 is
    rejected: tfa-lifted-float64-rejected)."""
    for spec in adapter.specs:
        oracle = reference.evaluate(x, labels, spec)
        for dtype in (d for d in adapter.dtypes if d != "float64"):
            yield spec, dtype, oracle, adapter.run(x, labels, spec, dtype, "cpu")


@pytest.mark.parametrize("name", ["tfa.lifted_struct_loss", "tfa.lifted_struct_loss (graph)"])
def test_lifted_one_class_is_nan_with_nan_gradients(name):
    """Confirms tfa-lifted-one-class-nan: fixture A in one class has no negative; the spec's terms are all 0
    (J = -inf), TF-Addons' loss and gradient NaN (-inf x 0 on the diagonal), in every dtype it computes."""
    for spec, dtype, oracle, out in lifted_answers(ADAPTERS[name], FIXTURE_A, np.zeros(4, dtype=np.int64)):
        assert oracle.loss == 0.0 and not oracle.grad.any()
        assert np.isnan(out.loss) and np.isnan(out.grad).all(), (spec, dtype)


def test_lifted_without_a_positive_pair_is_nan():
    """The claimed empty="nan": every label distinct, 0 / 0 over positive pairs."""
    adapter = ADAPTERS["tfa.lifted_struct_loss"]
    out = adapter.run(FIXTURE_A, np.arange(4), LIFTED, "float32", "cpu")
    assert np.isnan(out.loss) and np.isnan(reference.evaluate(FIXTURE_A, np.arange(4), LIFTED).loss)


@pytest.mark.parametrize("name", ["tfa.lifted_struct_loss", "tfa.lifted_struct_loss (graph)"])
def test_lifted_is_nan_once_a_nearest_negative_is_past_88_7(name):
    """Confirms tfa-lifted-far-negatives-overflow: two classes 0.5 wide in 1-D, `apart` from each other. Row 0's
    nearest negative is `apart` away; TF-Addons exponentiates e^(apart) for its masked-out diagonal, inf in float32
    past 88.72, and inf x 0 is NaN: the loss and every gradient entry are NaN where the spec gives 0 (every
    J < -80), for each margin and each dtype it computes; at 88.5 the exponential is finite and so is the answer."""
    for apart, overflows in ((80.0, False), (88.5, False), (89.0, True), (100.0, True)):
        x = np.array([[0.0], [0.5], [apart], [apart + 0.5]])
        for spec, dtype, oracle, out in lifted_answers(ADAPTERS[name], x, FIXTURE_A_LABELS):
            assert oracle.loss == 0.0 and not oracle.grad.any()
            if overflows:
                assert np.isnan(out.loss) and np.isnan(out.grad).all(), (apart, spec, dtype)
            else:
                assert out.loss == 0.0 and not out.grad.any(), (apart, spec, dtype)


@pytest.mark.parametrize("name", ["tfa.lifted_struct_loss", "tfa.lifted_struct_loss (graph)"])
def test_lifted_gradient_leaks_through_the_shift_at_a_tie(name):
    """Confirms tfa-lifted-gradient-through-a-tied-shift. Rows 0 and 2 (1-D -4 and 4, class 1) have their nearest
    negatives both 2 away and their row maxima both 8: every step of m_i = max over negatives (m - D) is the same
    float32 arithmetic for both rows, so m_0 = m_2 on any CPU, and tf.maximum splits the shift's gradient. The loss
    is right; the gradient is beyond the dtype's gradient tolerance (atol = rtol: float32 2e-3, float16 1e-2,
    bfloat16 1e-1) in every dtype and margin. Moving row 0 by 2^-6 breaks the tie, and the gradient agrees again."""
    x = np.array([[-4.0], [2.0], [4.0], [2.0], [-2.0]])
    y = np.array([1, 0, 1, 0, 0])
    adapter = ADAPTERS[name]
    allowed = {"float32": 2e-3, "float16": 1e-2, "bfloat16": 1e-1}
    for spec in adapter.specs:
        oracle = reference.evaluate(x, y, spec)
        for dtype in adapter.dtypes:
            if dtype == "float64":
                continue  # rejected: tfa-lifted-float64-rejected
            out = adapter.run(x, y, spec, dtype, "cpu")
            assert out.loss == pytest.approx(oracle.loss, rel=2e-2), (spec, dtype)
            error = np.abs(out.grad - oracle.grad)
            assert error.max() > 0.25, (spec, dtype)
            assert (error > allowed[dtype] * (1 + np.abs(oracle.grad))).any(), (spec, dtype)
        untied = x + np.array([[2.0**-6], [0.0], [0.0], [0.0], [0.0]])
        out = adapter.run(untied, y, spec, "float32", "cpu")
        np.testing.assert_allclose(out.grad, reference.evaluate(untied, y, spec).grad, rtol=2e-3, atol=2e-3)
    if name == "tfa.lifted_struct_loss":  # the spec's gradient, and TF-Addons', at m = 1 (in the registry's reason)
        spec = next(s for s in adapter.specs if s.margin == 1.0)
        np.testing.assert_allclose(reference.evaluate(x, y, spec).grad.ravel(),
                                   [-0.4128, 2.0271, -0.2393, 2.0271, -3.4022], atol=1e-4)
        np.testing.assert_allclose(adapter.run(x, y, spec, "float32", "cpu").grad.ravel(),
                                   [-0.0868, 1.8641, 0.0868, 1.8641, -3.7282], atol=1e-3)
