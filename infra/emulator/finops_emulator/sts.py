"""STS AssumeRole refuses a role that does not exist in its account.

Why: moto's AssumeRole accepts any role ARN ("the role does not need to
exist"), so a member account whose discovery role was never deployed (the
failure an Organization most often has) could not be reproduced: every
account would be reached. AWS answers AccessDenied (403) when the role is
missing or does not trust the caller.

Fix: before moto's own assume_role, the role's account must hold a role of
that name in moto's IAM (CreateRole, or the OrganizationAccountAccessRole
that moto's CreateAccount makes in every new member); otherwise the call
fails with AccessDenied, as AWS does. Trust policies are not evaluated.
"""

from __future__ import annotations

from typing import Any

from moto.core.exceptions import ServiceException

_INSTALLED = False


class AccessDenied(ServiceException):
    code = "AccessDenied"

    def __init__(self, message: str):
        super().__init__(message)


def role_exists(role_arn: str) -> bool:
    from moto.iam.models import iam_backends

    # arn:aws:iam::<account>:role[/path]/<name>
    parts = role_arn.split(":", 5)
    if len(parts) != 6 or not parts[5].startswith("role/"):
        return False
    account, name = parts[4], parts[5].rsplit("/", 1)[-1]
    backend = iam_backends[account][parts[1] or "aws"]
    return any(r.name == name for r in backend.get_roles())


def install_sts_assume_role_patch() -> None:
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.sts.models import STSBackend

    original = STSBackend.assume_role

    def assume_role(self: Any, region_name: str, role_session_name: str, role_arn: str, *args: Any, **kwargs: Any):
        if not role_exists(role_arn):
            raise AccessDenied(
                f"User is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
            )
        return original(self, region_name, role_session_name, role_arn, *args, **kwargs)

    STSBackend.assume_role = assume_role
    _INSTALLED = True
