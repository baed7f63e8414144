"""Tests of operators.darcy and `generate darcy`: order of accuracy, an independent series
solution, the coefficient field, per-sample seeding across resolutions, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from operators.__main__ import main
from operators.darcy import (
    DARCY,
    DarcyFlow,
    darcy_coefficient,
    darcy_matrix,
    darcy_operator,
    default_fine_nx,
    face_coefficients,
    neumann_grf,
    solve_darcy,
)
from operators.data import GenerateConfig, generate_arrays
from pdes.solution import read_dataset

PI = math.pi


def manufactured(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """u = sin(pi x) sin(pi y), a = 1 + 0.5 sin(2 pi x) cos(pi y) and f = -div(a grad u),
    differentiated by hand: f = 2 pi^2 a u - a_x u_x - a_y u_y. Returns (a, f, u) on n x n nodes."""
    x = np.linspace(0.0, 1.0, n)
    X, Y = np.meshgrid(x, x, indexing="ij")
    u = np.sin(PI * X) * np.sin(PI * Y)
    a = 1 + 0.5 * np.sin(2 * PI * X) * np.cos(PI * Y)
    a_x, a_y = PI * np.cos(2 * PI * X) * np.cos(PI * Y), -0.5 * PI * np.sin(2 * PI * X) * np.sin(PI * Y)
    u_x, u_y = PI * np.cos(PI * X) * np.sin(PI * Y), PI * np.sin(PI * X) * np.cos(PI * Y)
    return a, 2 * PI**2 * a * u - a_x * u_x - a_y * u_y, u


def sine_series(x: np.ndarray, a: float, k_max: int = 2001) -> np.ndarray:
    """-a Laplacian u = 1 on (0, 1)^2, u = 0 on the boundary: u = sum over odd k, l of
    16 / (pi^4 a k l (k^2 + l^2)) sin(k pi x) sin(l pi y). With odd k, l <= 2001 the tail is
    below 1e-10 (the change from 2001 to 4001 terms is 8.6e-11 at a = 1)."""
    k = np.arange(1, k_max + 1, 2)
    s = np.sin(PI * np.outer(x, k))
    c = 16 / (PI**4 * a * np.outer(k, k) * (k[:, None] ** 2 + k[None, :] ** 2))
    return s @ c @ s.T


@pytest.mark.parametrize("method", ["pcg", "splu"])
def test_finite_differences_converge_at_second_order_for_a_smooth_coefficient(method):
    errs = []
    for n in (17, 33, 65):
        a, f, u = manufactured(n)
        errs.append(np.abs(solve_darcy(a, f, method=method) - u).max())
    order = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))  # measured: 2.004, 1.997
    assert np.all((order > 1.8) & (order < 2.2)), order


def test_constant_coefficient_matches_the_double_sine_series_to_order_h2():
    errs = []
    for n in (17, 33, 65):
        x = np.linspace(0.0, 1.0, n)
        errs.append(np.abs(solve_darcy(np.full((n, n), 3.0)) - sine_series(x, 3.0)).max())
    errs = np.array(errs)
    order = np.log2(errs[:-1] / errs[1:])  # measured: 1.994, 1.999
    assert np.all((order > 1.8) & (order < 2.2)), order
    # O(h^2) with a constant of order one relative to max u = 0.0737 / a: e / (h^2 max u) = 0.79 here.
    h = 1.0 / (np.array([17, 33, 65]) - 1)
    assert np.all(errs / (h**2 * 0.0736713532 / 3.0) < 1.0)


def test_batched_pcg_agrees_with_sparse_lu_and_the_matrix_with_the_matvec():
    n = 33
    a = darcy_coefficient(7, range(3), np.linspace(0, 1, n))
    u_pcg, u_lu = solve_darcy(a), solve_darcy(a, method="splu")
    # tol 1e-10 on the relative residual; with kappa(P^-1 A) <= 4 the error is of that order.
    assert np.abs(u_pcg - u_lu).max() <= 1e-9 * np.abs(u_lu).max()
    ax, ay = face_coefficients(a)
    v = np.random.default_rng(0).standard_normal((n - 2, n - 2))
    by_matrix = (darcy_matrix(a[0]) @ v.ravel()).reshape(n - 2, n - 2)
    np.testing.assert_allclose(darcy_operator(ax[:1], ay[:1], v[None], 1 / (n - 1))[0], by_matrix, rtol=1e-12,
                               atol=1e-9)
    assert abs(darcy_matrix(a[0]) - darcy_matrix(a[0]).T).max() == 0  # symmetric


def test_the_coefficient_takes_only_12_and_3_with_half_the_area_at_12_on_average():
    a = darcy_coefficient(0, range(200), np.linspace(0, 1, 33), DarcyFlow(grf_modes=64))  # 64: fast
    assert set(np.unique(a)) == {3.0, 12.0}
    # The GRF is a centred Gaussian at every point, so P(g >= 0) = 1/2. The area share of one
    # sample varies (std ~0.2 at this correlation length), so the mean of 200 has std ~0.015.
    share = (a == 12.0).mean(axis=(1, 2))
    assert abs(share.mean() - 0.5) < 0.06
    assert 0.05 < share.std() < 0.4  # a random field, not a fixed pattern


def test_the_grf_is_one_function_on_every_grid_and_seeded_per_sample():
    fine = neumann_grf(3, [4, 5], np.linspace(0, 1, 65), modes=32)
    coarse = neumann_grf(3, [5], np.linspace(0, 1, 17), modes=32)
    np.testing.assert_allclose(coarse[0], fine[1, ::4, ::4], rtol=0, atol=1e-12)
    # A cosine series: even about both walls (zero normal derivative), g(-d) = g(d), g(1 + d) = g(1 - d).
    g = neumann_grf(3, [4], np.array([-0.1, 0.1, 0.9, 1.1]), modes=32)[0]
    np.testing.assert_allclose(g[0], g[1], atol=1e-12)
    np.testing.assert_allclose(g[:, 3], g[:, 2], atol=1e-12)


def test_the_grf_has_the_karhunen_loeve_variance_at_a_corner():
    # Var g(0, 0) = sum over (k, l) != (0, 0) of c_k^2 c_l^2 (pi^2 (k^2 + l^2) + 9)^-2 (cos = 1 there).
    k = np.arange(16)
    c2 = np.where(k == 0, 1.0, 2.0)
    lam = np.outer(c2, c2) * (PI**2 * (k[:, None] ** 2 + k[None, :] ** 2) + 9.0) ** -2.0
    expected = lam.sum() - lam[0, 0]
    g = neumann_grf(0, range(2000), np.array([0.0]), modes=16)[:, 0, 0]
    # 2000 Gaussian draws: the sample variance has relative std sqrt(2 / 2000) = 3.2 %; allow 4 of them.
    assert abs(g.var() / expected - 1) < 0.13
    assert abs(g.mean()) < 4 * math.sqrt(expected / 2000)  # zero mean


def test_same_seed_gives_the_stride_subsample_of_the_fine_solve_at_every_stored_grid():
    # Fine grid 33 nodes: stored 9 (stride 4) and 17 (stride 2), the small version of 421 -> 85, 211.
    cfg9 = GenerateConfig(kind="darcy", n_train=2, n_test=1, nx=9, fine_nx=33, seed=5)
    cfg17 = GenerateConfig(kind="darcy", n_train=1, n_test=2, nx=17, fine_nx=33, seed=5, chunk_size=2)
    d9, d17 = generate_arrays(cfg9), generate_arrays(cfg17)
    np.testing.assert_array_equal(d9["a"].values, d17["a"].values[:, ::2, ::2])
    np.testing.assert_array_equal(d9["u"].values, d17["u"].values[:, ::2, ::2])
    # ... and both are the fine solve of the same per-sample coefficients, subsampled.
    a33 = darcy_coefficient(5, range(3), np.linspace(0, 1, 33))
    np.testing.assert_array_equal(d9["a"].values, a33[:, ::4, ::4])
    np.testing.assert_allclose(d9["u"].values, solve_darcy(a33)[:, ::4, ::4], rtol=0, atol=1e-15)
    assert list(d9["split"].values) == ["train", "train", "test"]


def test_generate_darcy_writes_a_non_periodic_operator_dataset(tmp_path):
    path = tmp_path / "darcy.nc"
    assert main(["generate", "darcy", "--n-train", "2", "--n-test", "1", "--nx", "11", "--seed", "1",
                 "--out", str(path), "--no-progress", "--json"]) == 0
    ds = read_dataset(path)
    assert ds["a"].dims == ds["u"].dims == ("sample", "x", "y") and ds["u"].shape == (3, 11, 11)
    np.testing.assert_array_equal(ds["x"].values, np.linspace(0, 1, 11))
    assert ds.attrs["periodic"] == 0 and ds.attrs["equation"] == "darcy"
    assert ds.attrs["method"] == "finite_difference"
    import json

    params = json.loads(ds.attrs["params"])
    assert params["fine_nx"] == 421 and params["a_pos"] == 12 and params["f"] == 1  # 420 = 42 * 10
    assert params["grf"]["tau"] == 3 and params["grf"]["alpha"] == 2
    u = ds["u"].values
    assert np.all(u[:, 0, :] == 0) and np.all(u[:, :, -1] == 0) and np.all(u[:, 1:-1, 1:-1] > 0)  # max principle
    # The chunked file holds what the in-memory builder computes.
    mem = generate_arrays(GenerateConfig(kind="darcy", n_train=2, n_test=1, nx=11, seed=1))
    np.testing.assert_array_equal(mem["u"].values, u)


def test_other_kinds_are_marked_periodic():
    ds = generate_arrays(GenerateConfig(kind="heat", n_train=1, n_test=1, nx=16, fine_nx=16))
    assert ds.attrs["periodic"] == 1


def test_default_fine_grid_is_421_for_the_papers_resolutions_else_one_refinement():
    assert [default_fine_nx(n) for n in (85, 141, 211, 29)] == [421, 421, 421, 421]
    assert default_fine_nx(64) == 127 and default_fine_nx(421) == 841


@pytest.mark.parametrize("kwargs, match", [
    ({"n_train": 0, "n_test": 0}, "at least 1"),
    ({"nx": 85, "fine_nx": 200}, "fine_nx must be"),
    ({"nx": 85, "fine_nx": 85}, "fine_nx must be"),
    ({"nx": -5}, "nx must be"),
    ({"n_test": -1}, "n_test"),
    ({"seed": -1}, "seed"),
    ({"fine_nx": -3}, "fine_nx must be"),
    ({"nu": 0.1}, "nu does not apply"),
])
def test_bad_darcy_configs_raise_one_line_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GenerateConfig(**{"kind": "darcy", "nx": 11, **kwargs})


@pytest.mark.parametrize("argv", [
    ["--n-train", "0", "--n-test", "0"],
    ["--nx", "85", "--fine-nx", "300"],
    ["--nx", "-3"],
    ["--seed", "-2"],
])
def test_cli_rejects_bad_darcy_input_with_exit_code_2(argv, tmp_path, capsys):
    out = tmp_path / "d.nc"
    assert main(["generate", "darcy", *argv, "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("operators: error:") and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_solver_and_problem_reject_bad_input():
    with pytest.raises(ValueError, match="positive"):
        solve_darcy(np.full((5, 5), -1.0))
    with pytest.raises(ValueError, match="shape"):
        solve_darcy(np.ones((4, 5)))
    with pytest.raises(ValueError, match="broadcast"):
        solve_darcy(np.ones((5, 5)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="a_neg"):
        DarcyFlow(a_neg=0.0)
    with pytest.raises(ValueError, match="seed"):
        neumann_grf(-1, [0], np.linspace(0, 1, 5))
    assert DARCY.a_pos == 12 and DARCY.a_neg == 3 and DARCY.f == 1
