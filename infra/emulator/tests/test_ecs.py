"""ECS services through boto3: they reach the steady state the ServicesStable waiter waits for."""

from __future__ import annotations

from emulator_testlib import client


def _service(ecs, cluster: str, desired: int) -> str:
    ecs.create_cluster(clusterName=cluster)
    td = ecs.register_task_definition(
        family=f"{cluster}-web", cpu="1024", memory="2048", requiresCompatibilities=["FARGATE"],
        containerDefinitions=[{"name": "web", "image": "nginx", "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=cluster, serviceName="api", taskDefinition=td, desiredCount=desired, launchType="FARGATE")
    return td


def _stable(ecs, cluster: str) -> dict:
    s = ecs.describe_services(cluster=cluster, services=["api"])["services"][0]
    assert s["runningCount"] == s["desiredCount"]
    assert s["pendingCount"] == 0
    assert len(s["deployments"]) == 1
    d = s["deployments"][0]
    assert (d["status"], d["rolloutState"], d["runningCount"]) == ("PRIMARY", "COMPLETED", s["desiredCount"])
    assert d["taskDefinition"] == s["taskDefinition"]
    return s


def test_services_settle_after_create_and_every_update(patched):
    ecs = client(patched, "ecs")
    _service(ecs, "settle", 3)
    assert _stable(ecs, "settle")["runningCount"] == 3
    ecs.update_service(cluster="settle", service="api", desiredCount=1)
    assert _stable(ecs, "settle")["runningCount"] == 1
    td2 = ecs.register_task_definition(
        family="settle-web", cpu="512", memory="1024", requiresCompatibilities=["FARGATE"],
        containerDefinitions=[{"name": "web", "image": "nginx", "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster="settle", service="api", taskDefinition=td2)
    assert _stable(ecs, "settle")["taskDefinition"] == td2
    cluster = ecs.describe_clusters(clusters=["settle"])["clusters"][0]
    assert (cluster["runningTasksCount"], cluster["pendingTasksCount"]) == (1, 0)


def test_plain_moto_never_runs_the_tasks(plain):
    ecs = client(plain, "ecs")
    td = _service(ecs, "plain", 3)
    ecs.update_service(cluster="plain", service="api", taskDefinition=td)
    s = ecs.describe_services(cluster="plain", services=["api"])["services"][0]
    assert s["runningCount"] != s["desiredCount"]
