"""sparsenet._threads.one_blas_thread: one BLAS thread inside, the caller's setting restored after, and
a nested call a no-op (the outer limit holds)."""

import contextlib

import pytest

threadpoolctl = pytest.importorskip("threadpoolctl")

from sparsenet._threads import one_blas_thread  # noqa: E402


def _blas_threads():
    return {p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"}


def test_nested_limit_is_a_no_op_and_the_outer_one_holds():
    before = _blas_threads()
    with one_blas_thread():
        assert _blas_threads() == {1}
        inner = one_blas_thread()
        assert isinstance(inner, contextlib.nullcontext)
        with inner:
            assert _blas_threads() == {1}
        assert _blas_threads() == {1}
    assert _blas_threads() == before
    # after the outer one, a new call limits again
    assert not isinstance(one_blas_thread(), contextlib.nullcontext)


def test_depth_is_restored_when_the_body_raises():
    with pytest.raises(RuntimeError):
        with one_blas_thread():
            raise RuntimeError("boom")
    assert not isinstance(one_blas_thread(), contextlib.nullcontext)
    assert isinstance(one_blas_thread(False), contextlib.nullcontext)
