"""EC2 client tokens through boto3: a repeated RunInstances or CreateVolume creates once, as in AWS."""

from __future__ import annotations

import botocore.exceptions
import pytest

from emulator_testlib import client


def _ec2(url: str):
    return client(url, "ec2")


def test_run_instances_with_one_token_launches_once(patched):
    ec2 = _ec2(patched)
    run = dict(ImageId="ami-12c6146b", InstanceType="m5.large", MinCount=1, MaxCount=1, ClientToken="launch-1")
    first = ec2.run_instances(**run)["Instances"][0]["InstanceId"]
    again = ec2.run_instances(**run)["Instances"][0]["InstanceId"]
    assert again == first
    other = ec2.run_instances(**{**run, "ClientToken": "launch-2"})["Instances"][0]["InstanceId"]
    assert other != first
    untokened = dict(run)
    del untokened["ClientToken"]
    assert ec2.run_instances(**untokened)["Instances"][0]["InstanceId"] not in (first, other)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.run_instances(**{**run, "InstanceType": "m5.xlarge"})
    assert e.value.response["Error"]["Code"] == "IdempotentParameterMismatch"
    found = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert found.count(first) == 1


def test_create_volume_with_one_token_creates_once(patched):
    ec2 = _ec2(patched)
    make = dict(AvailabilityZone="us-east-1a", Size=8, VolumeType="gp3", ClientToken="vol-token-1")
    first = ec2.create_volume(**make)["VolumeId"]
    assert ec2.create_volume(**make)["VolumeId"] == first
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_volume(**{**make, "Size": 9})
    assert e.value.response["Error"]["Code"] == "IdempotentParameterMismatch"
    # A dry run never creates, and never spends the token.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_volume(**{**make, "ClientToken": "vol-token-2", "DryRun": True})
    assert e.value.response["Error"]["Code"] == "DryRunOperation"
    assert ec2.create_volume(**{**make, "ClientToken": "vol-token-2"})["VolumeId"] != first


def test_reset_forgets_the_tokens(patched):
    import urllib.request

    ec2 = _ec2(patched)
    make = dict(AvailabilityZone="us-east-1a", Size=8, ClientToken="vol-token-reset")
    first = ec2.create_volume(**make)["VolumeId"]
    urllib.request.urlopen(urllib.request.Request(patched + "/moto-api/reset", data=b"", method="POST")).close()
    assert ec2.create_volume(**make)["VolumeId"] != first


def test_plain_moto_ignores_the_token(plain):
    ec2 = _ec2(plain)
    run = dict(ImageId="ami-12c6146b", InstanceType="m5.large", MinCount=1, MaxCount=1, ClientToken="t")
    assert ec2.run_instances(**run)["Instances"][0]["InstanceId"] != ec2.run_instances(**run)["Instances"][0]["InstanceId"]
