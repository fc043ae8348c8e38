"""ECS services that reach their steady state, which moto 5.2.5's never do.

Why: moto starts every service with ``runningCount`` 0 (or the
MOTO_ECS_SERVICE_RUNNING environment value, the same for every service)
and keeps it there when UpdateService changes only the task definition, so
a service never has ``runningCount == desiredCount``: the SDK's
ServicesStable waiter, which finops-lambda's executions wait on after every
UpdateService (SPEC section 10: a step returns once AWS reports it done),
could only time out.

What it does: moto runs no tasks, so a service is taken to be where AWS
takes it once its deployment completes. After CreateService and
UpdateService, ``runningCount`` equals ``desiredCount``, ``pendingCount``
is 0, and the service's one PRIMARY deployment shows the same counts, the
service's task definition and ``rolloutState`` COMPLETED. The cluster's
task counts follow. Everything else is moto's.
"""

from __future__ import annotations

from typing import Any

_INSTALLED = False


def settle(service: Any) -> None:
    """The service as AWS shows it once its deployment has completed."""
    wanted = int(service.desired_count or 0)
    service.running_count = wanted
    service.pending_count = 0
    for deployment in service.deployments or []:
        if deployment.get("status") == "PRIMARY":
            deployment.update(
                desiredCount=wanted,
                runningCount=wanted,
                pendingCount=0,
                taskDefinition=service.task_definition,
                rolloutState="COMPLETED",
                rolloutStateReason=f"ECS deployment {deployment.get('id')} completed.",
            )


def _counts(backend: Any, cluster_name: str) -> tuple[Any, int, int]:
    cluster = backend.clusters.get(cluster_name.split("/")[-1])
    if cluster is None:
        return None, 0, 0
    return cluster, cluster.running_tasks_count, cluster.pending_tasks_count


def install_ecs_patch() -> None:
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.ecs.models import EC2ContainerServiceBackend

    create_service = EC2ContainerServiceBackend.create_service
    update_service = EC2ContainerServiceBackend.update_service

    # The cluster's task counts as they were, minus the service's tasks
    # before the call, plus its tasks once settled (RunTask's stay counted).
    def create(self: Any, cluster_str: str, *args: Any, **kwargs: Any) -> Any:
        cluster, running, pending = _counts(self, cluster_str)
        service = create_service(self, cluster_str, *args, **kwargs)
        settle(service)
        if cluster is not None:
            cluster.running_tasks_count = running + service.running_count
            cluster.pending_tasks_count = pending
        return service

    def update(self: Any, service_properties: dict[str, Any]) -> Any:
        cluster_str = service_properties.get("cluster", "default")
        cluster, running, pending = _counts(self, cluster_str)
        name = str(service_properties.get("service", "")).split("/")[-1]
        old = self.services.get(f"{cluster.name}:{name}") if cluster is not None else None
        before = (old.running_count, old.pending_count) if old is not None else (0, 0)
        service = update_service(self, service_properties)
        settle(service)
        if cluster is not None:
            cluster.running_tasks_count = running - before[0] + service.running_count
            cluster.pending_tasks_count = pending - before[1]
        return service

    EC2ContainerServiceBackend.create_service = create
    EC2ContainerServiceBackend.update_service = update
    _INSTALLED = True
