"""ModifyDBInstance through boto3: a class change waits for the maintenance window unless applied now."""

from __future__ import annotations

from emulator_testlib import client


def _db(rds, name: str) -> None:
    rds.create_db_instance(
        DBInstanceIdentifier=name, DBInstanceClass="db.m5.large", Engine="postgres",
        AllocatedStorage=20, MasterUsername="finops", MasterUserPassword="not-a-secret-1",
    )


def _shown(rds, name: str) -> dict:
    return rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]


def test_without_apply_immediately_the_class_is_pending(patched):
    rds = client(patched, "rds")
    _db(rds, "later")
    out = rds.modify_db_instance(DBInstanceIdentifier="later", DBInstanceClass="db.t3.medium")
    assert out["DBInstance"]["DBInstanceClass"] == "db.m5.large"
    assert out["DBInstance"]["PendingModifiedValues"]["DBInstanceClass"] == "db.t3.medium"
    shown = _shown(rds, "later")
    assert shown["DBInstanceClass"] == "db.m5.large"
    assert shown["PendingModifiedValues"]["DBInstanceClass"] == "db.t3.medium"
    # Applied now, it replaces what was pending.
    rds.modify_db_instance(DBInstanceIdentifier="later", DBInstanceClass="db.t3.large", ApplyImmediately=True)
    shown = _shown(rds, "later")
    assert shown["DBInstanceClass"] == "db.t3.large"
    assert "DBInstanceClass" not in shown.get("PendingModifiedValues", {})


def test_with_apply_immediately_the_class_changes_at_once(patched):
    rds = client(patched, "rds")
    _db(rds, "now")
    rds.modify_db_instance(DBInstanceIdentifier="now", DBInstanceClass="db.t3.medium", ApplyImmediately=True)
    shown = _shown(rds, "now")
    assert shown["DBInstanceClass"] == "db.t3.medium"
    assert "DBInstanceClass" not in shown.get("PendingModifiedValues", {})


def test_asking_for_the_current_class_clears_the_pending_one(patched):
    rds = client(patched, "rds")
    _db(rds, "undo")
    rds.modify_db_instance(DBInstanceIdentifier="undo", DBInstanceClass="db.t3.medium")
    rds.modify_db_instance(DBInstanceIdentifier="undo", DBInstanceClass="db.m5.large")
    assert "DBInstanceClass" not in _shown(rds, "undo").get("PendingModifiedValues", {})


def test_plain_moto_applies_it_at_once(plain):
    rds = client(plain, "rds")
    _db(rds, "plain")
    rds.modify_db_instance(DBInstanceIdentifier="plain", DBInstanceClass="db.t3.medium")
    assert _shown(rds, "plain")["DBInstanceClass"] == "db.t3.medium"
