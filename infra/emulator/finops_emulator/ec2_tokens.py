"""EC2 client tokens (RunInstances, CreateVolume), which moto 5.2.5 ignores.

Why: AWS makes RunInstances and CreateVolume idempotent under
``ClientToken``: a second call with the same token answers with what the
first one created instead of creating it again. moto reads the token and
drops it, so every retry launches another instance or volume. finops-lambda's
executions rely on the token to make a redelivered step (the rollback of a
termination, the recreation of a deleted volume) create its resource once.

What it does, as AWS does: per account and region, the first call with a
token is carried out and remembered with its parameters; a later call with
the same token and the same parameters answers with the same reservation
or volume, as they are now; the same token with other parameters is
``IdempotentParameterMismatch``. Calls without a token are untouched. The
tokens live on moto's own backend, so ``POST /moto-api/reset`` forgets them
with everything else.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

_INSTALLED = False
# Two concurrent calls with one token must not both create.
_LOCK = threading.Lock()

# The parameters AWS compares for a repeated token (what the call creates).
_RUN_PARAMS = ("ImageId", "InstanceType", "MinCount", "MaxCount", "SubnetId", "KeyName")
_VOLUME_PARAMS = ("AvailabilityZone", "Size", "SnapshotId", "VolumeType", "Iops", "Throughput")


def _tokens(backend: Any) -> dict[tuple[str, str], tuple[tuple[Any, ...], Any]]:
    store = getattr(backend, "finops_client_tokens", None)
    if store is None:
        store = {}
        backend.finops_client_tokens = store
    return store


def idempotent(
    backend: Any,
    operation: str,
    token: str | None,
    params: tuple[Any, ...],
    create: Callable[[], Any],
) -> Any:
    """What ``create`` made under ``token`` before, or what it makes now."""
    from moto.ec2.exceptions import EC2ClientError

    if not token:
        return create()
    with _LOCK:
        store = _tokens(backend)
        seen = store.get((operation, token))
        if seen is not None:
            if seen[0] != params:
                raise EC2ClientError(
                    "IdempotentParameterMismatch",
                    f"The client token {token} was used with other parameters before.",
                )
            return seen[1]
        made = create()
        store[(operation, token)] = (params, made)
        return made


def install_ec2_tokens_patch() -> None:
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore
    from moto.ec2.responses.instances import InstanceResponse

    run_instances = InstanceResponse.run_instances
    create_volume = ElasticBlockStore.create_volume

    def run_handler(self: Any) -> Any:
        if self._get_param("DryRun", False):
            return run_instances(self)
        params = tuple(self._get_param(p) for p in _RUN_PARAMS)
        return idempotent(
            self.ec2_backend, "RunInstances", self._get_param("ClientToken"), params, lambda: run_instances(self)
        )

    def volume_handler(self: Any) -> Any:
        if self._get_param("DryRun", False):
            return create_volume(self)
        params = tuple(self._get_param(p) for p in _VOLUME_PARAMS)
        return idempotent(
            self.ec2_backend, "CreateVolume", self._get_param("ClientToken"), params, lambda: create_volume(self)
        )

    InstanceResponse.run_instances = run_handler
    ElasticBlockStore.create_volume = volume_handler
    _INSTALLED = True
