"""Fast solver for the colorization system of :mod:`nyutools.fill`.

``(A + G) x = b`` has 9 non-zeros per row; a sparse direct solve of the whole 640x480 grid takes
seconds (SuperLU fill-in ~30 M). The system splits naturally:

* known pixels K: diagonal 2 (1 + alpha), off-diagonal row sum -1, so the K-block is strongly
  diagonally dominant and Jacobi handles it;
* unknown pixels U: rows ``x_p = sum w x_n`` (harmonic-like, badly conditioned in big holes), but
  the holes are thin (mostly the border band outside the projection window), so a direct LU of
  the U-block alone is cheap.

A symmetric block Gauss-Seidel preconditioner (Jacobi on K, exact LU on U, Jacobi on K again)
makes BiCGSTAB converge in a handful of iterations (6 on the reference frame, to 1e-10). Falls
back to a direct solve (with a RuntimeWarning) if anything fails.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

RTOL = 1e-10
MAX_ITER = 200


def solve_colorization(matrix: sp.spmatrix, rhs: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Solve ``matrix @ x = rhs``.

    Args:
        matrix: (N, N) sparse system ``A + G`` (CSR or CSC).
        rhs: float64 (N,).
        known: bool (N,), True where the pixel's depth is known (same pixel order as ``matrix``).

    Returns:
        float64 (N,) solution (relative residual <= 1e-10, or exact direct solve on fallback).
    """
    csr = sp.csr_matrix(matrix)
    try:
        precond = _block_preconditioner(csr, known)
        x, info = spla.bicgstab(csr, rhs, M=precond, rtol=RTOL, atol=0.0, maxiter=MAX_ITER)
        if info == 0 and np.all(np.isfinite(x)):
            return x
    except RuntimeError:  # singular unknown block
        pass
    warnings.warn(
        "colorization: preconditioned BiCGSTAB failed, falling back to a direct solve (slow)",
        RuntimeWarning,
        stacklevel=3,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", spla.MatrixRankWarning)
        return spla.spsolve(csr.tocsc(), rhs)


def _block_preconditioner(csr: sp.csr_matrix, known: np.ndarray) -> spla.LinearOperator:
    """One block Gauss-Seidel sweep K -> U -> K, with Jacobi on K and an exact LU on U.

    ``x_K = D_K^-1 r_K``; ``x_U = A_UU^-1 (r_U - A_UK x_K)``;
    ``x_K += D_K^-1 (r_K - A_KK x_K - A_KU x_U)``.
    """
    k_idx = np.flatnonzero(known)
    u_idx = np.flatnonzero(~known)
    inv_diag_k = 1.0 / csr.diagonal()[k_idx]
    rows_k, rows_u = csr[k_idx], csr[u_idx]
    a_kk, a_ku = _select_columns(rows_k, known), _select_columns(rows_k, ~known)
    a_uk = _select_columns(rows_u, known)
    lu = None
    if u_idx.size:
        a_uu = _select_columns(rows_u, ~known).tocsc()
        # Structurally symmetric and diagonally dominant: symmetric ordering, no pivoting.
        lu = spla.splu(
            a_uu,
            permc_spec="MMD_AT_PLUS_A",
            diag_pivot_thresh=0.0,
            options={"SymmetricMode": True},
        )

    def apply(r: np.ndarray) -> np.ndarray:
        r = np.asarray(r).ravel()
        r_k = r[k_idx]
        x_k = inv_diag_k * r_k
        x = np.empty_like(r)
        if lu is not None:
            x_u = lu.solve(r[u_idx] - a_uk @ x_k)
            x_k = x_k + inv_diag_k * (r_k - a_kk @ x_k - a_ku @ x_u)
            x[u_idx] = x_u
        x[k_idx] = x_k
        return x

    return spla.LinearOperator(csr.shape, matvec=apply, dtype=np.float64)


def _select_columns(csr: sp.csr_matrix, columns: np.ndarray) -> sp.csr_matrix:
    """``csr[:, columns]`` for a boolean column mask, renumbering the kept columns (fast path)."""
    new_index = np.cumsum(columns) - 1
    keep = columns[csr.indices]
    rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
    counts = np.bincount(rows[keep], minlength=csr.shape[0])
    indptr = np.zeros(csr.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return sp.csr_matrix(
        (csr.data[keep], new_index[csr.indices[keep]], indptr),
        shape=(csr.shape[0], int(columns.sum())),
    )
