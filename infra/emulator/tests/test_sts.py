"""AssumeRole reaches an account only through a role that exists there."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from emulator_testlib import client


def test_assume_role_needs_the_role_in_its_account(patched):
    org = client(patched, "organizations")
    org.create_organization(FeatureSet="ALL")
    member = org.create_account(Email="m@example.com", AccountName="m")["CreateAccountStatus"]["AccountId"]
    sts = client(patched, "sts")
    # moto's CreateAccount makes OrganizationAccountAccessRole in the member.
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{member}:role/OrganizationAccountAccessRole",
                            RoleSessionName="test")["Credentials"]
    assert creds["AccessKeyId"]
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=f"arn:aws:iam::{member}:role/Missing", RoleSessionName="test")
    # The code is AWS's; the status is moto's default for errors the STS
    # model does not declare (400, where AWS says 403): clients go by the code.
    assert e.value.response["Error"]["Code"] == "AccessDenied"


def test_plain_moto_assumes_any_role(plain):
    sts = client(plain, "sts")
    assert sts.assume_role(RoleArn="arn:aws:iam::111111111111:role/Missing",
                           RoleSessionName="test")["Credentials"]["AccessKeyId"]
