"""RDS class changes that wait for the maintenance window, which moto 5.2.5 applies at once.

Why: ModifyDBInstance without ``ApplyImmediately`` does not change a DB
instance's class on AWS: the change is shown under
``PendingModifiedValues.DBInstanceClass`` and applied in the next
maintenance window. moto applies every change at once and never shows a
pending value, so an execution that asks for the window could not be told
apart from one applied now, and the code that reads a pending class would
never be exercised.

What it does, as AWS does: a ModifyDBInstance whose ``ApplyImmediately`` is
not true and that changes ``DBInstanceClass`` keeps the current class and
records the new one as pending (its other changes are applied as moto
applies them); one with ``ApplyImmediately=true`` applies the class and
clears what was pending. ``DescribeDBInstances`` and the ModifyDBInstance
answer show ``PendingModifiedValues``. The maintenance window itself never
comes in the emulator; a later change applied now replaces the pending one.
"""

from __future__ import annotations

from typing import Any

_INSTALLED = False


def _truthy(value: Any) -> bool:
    return str(value).lower() == "true"


def install_rds_pending_patch() -> None:
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.rds.models import DBInstance, RDSBackend

    original = RDSBackend.modify_db_instance

    def modify_db_instance(self: Any, db_instance_identifier: str, db_kwargs: dict[str, Any]) -> Any:
        now = _truthy(db_kwargs.get("apply_immediately", db_kwargs.get("ApplyImmediately", False)))
        key = "db_instance_class" if "db_instance_class" in db_kwargs else "DBInstanceClass"
        wanted = db_kwargs.get(key)
        if wanted is not None and not now:
            db_kwargs = {k: v for k, v in db_kwargs.items() if k != key}
        database = original(self, db_instance_identifier, db_kwargs)
        pending = dict(getattr(database, "finops_pending", {}) or {})
        if wanted is not None and not now:
            if wanted == database.db_instance_class:
                pending.pop("DBInstanceClass", None)
            else:
                pending["DBInstanceClass"] = wanted
        elif wanted is not None:
            pending.pop("DBInstanceClass", None)
        database.finops_pending = pending
        return database

    def pending_modified_values(self: Any) -> dict[str, Any]:
        return dict(getattr(self, "finops_pending", {}) or {})

    RDSBackend.modify_db_instance = modify_db_instance
    DBInstance.pending_modified_values = property(pending_modified_values)
    _INSTALLED = True
