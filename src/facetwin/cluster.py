"""A Ray cluster for batch work: a local one started for the run, or an existing one by address.

Why Ray and not our own process pool: Ray already does what batch work on many machines needs
and what we would otherwise get subtly wrong - scheduling tasks onto workers across nodes,
retrying a task whose worker process died (``kill -9``, a lost node), and moving task arguments
and results between machines. facetwin keeps the parts Ray does not know about: which work is
safe to redo (each task writes its own file atomically, so a retried task overwrites nothing
finished) and the single writer of each output.

``ray`` is an optional extra (``pip install -e '.[ray]'``) and is imported only here, when a
command asks for ``--ray``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from facetwin.errors import FacetwinError, UsageError

log = logging.getLogger(__name__)

LOCAL = "local"
#: How often Ray reruns a task whose worker died before it finished (Ray's own default is 3).
TASK_RETRIES = 3


@dataclass(frozen=True)
class RayConfig:
    """Where batch work runs.

    address: ``"local"`` starts a private cluster on this machine for the run (stopped after);
        anything else is the address of a running cluster (``ray start --head`` printed it;
        ``"auto"`` finds one on this machine). Every node must see the same paths (a shared
        file system), since tasks read inputs and write outputs by path.
    workers: for a local cluster, how many worker processes (0: one per CPU core). On an
        existing cluster each task asks for one CPU and the cluster decides.
    """

    address: str = LOCAL
    workers: int = 0

    @property
    def local(self) -> bool:
        return self.address == LOCAL


def import_ray() -> Any:
    """The ``ray`` module, or a one-line UsageError naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise UsageError(
            "--ray needs Ray: pip install -e '.[ray]' (or pip install 'ray>=2.40')"
        ) from None
    return ray


@contextmanager
def connect(cfg: RayConfig) -> Iterator[Any]:
    """Ray, initialised for the run: a private local cluster of ``cfg.workers`` CPUs, or the
    cluster at ``cfg.address``. A cluster this started is shut down on exit (Ctrl-C included)."""
    ray = import_ray()
    if ray.is_initialized():  # a caller (a test, a notebook) connected already: use theirs
        yield ray
        return
    workers = cfg.workers or os.cpu_count() or 1
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    # each worker runs one task with one torch thread: parallelism comes from the workers
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    try:
        if cfg.local:
            ray.init(num_cpus=workers, runtime_env={"env_vars": env}, **kwargs)
        else:
            ray.init(address=cfg.address, runtime_env={"env_vars": env}, **kwargs)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise UsageError(f"cannot reach the Ray cluster at {cfg.address!r}: {e}") from None
    log.info("ray: %s", ray.cluster_resources())
    try:
        yield ray
    finally:
        ray.shutdown()


def wait_all(ray: Any, refs: list[Any], on_done: Any = None) -> list[Any]:
    """The results of ``refs`` in their order, calling ``on_done(result)`` as each finishes
    (for a progress bar). A task that failed for good raises its error here."""
    results: dict[Any, Any] = {}
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            try:
                results[ref] = ray.get(ref)
            except ray.exceptions.RayTaskError as e:
                # a facetwin error in a task (a damaged input) is the user's one-line error
                if isinstance(e.cause, FacetwinError):
                    raise e.cause from None
                raise
            if on_done is not None:
                on_done(results[ref])
    return [results[r] for r in refs]
