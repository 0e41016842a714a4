"""The oracle's cosine distance between near-parallel rows: 1 - u_i.u_j rounds to 0 at angles below about 1.5e-8, yet
1 - cos is a smooth function of the rows whose gradient, sin(angle) / |x|, is not 0 there. Two rows (1, 0) and (1, t)
have cos = (1 + t^2)^(-1/2) exactly, so both are known in closed form."""
import numpy as np
import pytest

from reference.distances import pairwise, pairwise_backward, sine_of_cosine_distance

ANGLES = (2.0**-27, 1e-8, 3e-6, 0.25)


def rows(t: float) -> np.ndarray:
    return np.array([[1.0, 0.0], [1.0, t], [0.0, 0.0]])


def one_minus_cos(t: float) -> float:
    """1 - (1 + t^2)^(-1/2), without the cancellation."""
    return -np.expm1(-0.5 * np.log1p(t * t))


@pytest.mark.parametrize("t", ANGLES)
def test_cosine_distance_of_near_parallel_rows_keeps_its_relative_precision(t):
    dist = pairwise(rows(t), "cosine")
    assert dist[0, 1] == dist[1, 0] == pytest.approx(one_minus_cos(t), rel=1e-7, abs=0.0)
    assert dist[0, 0] == dist[1, 1] == 0.0


def test_a_zero_row_is_at_distance_one_from_every_row_itself_included():
    assert np.array_equal(pairwise(rows(0.25), "cosine")[2], [1.0, 1.0, 1.0])


@pytest.mark.parametrize("t", ANGLES)
def test_gradient_of_a_near_parallel_pair_is_its_sine_over_the_norm(t):
    """dD/dx_0 = -(u_1 - c u_0) / |x_0| = (0, -t c) and dD/dx_1 = -(u_0 - c u_1) / |x_1| = (-t^2 c^3, t c^3), c = cos."""
    x = rows(t)
    selector = np.zeros((3, 3))
    selector[0, 1] = 1.0
    c = 1.0 / np.sqrt(1.0 + t * t)
    grad = pairwise_backward(x, pairwise(x, "cosine"), selector, "cosine")
    np.testing.assert_allclose(grad[:2], [[0.0, -t * c], [-t * t * c**3, t * c**3]], rtol=1e-7, atol=0.0)
    assert np.array_equal(grad[2], [0.0, 0.0])


@pytest.mark.parametrize("t", ANGLES)
def test_sine_of_the_distance_is_the_angle_s_sine(t):
    assert sine_of_cosine_distance(np.array(one_minus_cos(t))) == pytest.approx(t / np.sqrt(1.0 + t * t), rel=1e-7, abs=0.0)
