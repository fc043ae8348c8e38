#!/usr/bin/env python3
"""Uploads the dashboard (web/dist) to the stack's WebBucket, writes its
/config.json from the stack's outputs, and invalidates what must not be
served stale. Run after `sam deploy`, with the deploying credentials:

    infra/.venv/bin/python infra/scripts/deploy_web.py --stack finops-lambda

Content-hashed files (assets/) are cached for a year; index.html and
config.json are revalidated on every load. With an existing user pool
(UserPoolId), pass --hosted-ui-domain and add the DashboardUrl output as a
callback and sign-out URL of its app client.
"""

import argparse
import json
import mimetypes
import pathlib
import time

import boto3
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]


def outputs(cfn, stack):
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def routes():
    """The API's routes, "METHOD /path", as the app's capability check reads them."""
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    methods = {"get", "post", "put", "patch", "delete"}
    return sorted(
        f"{m.upper()} {path}"
        for path, item in spec.get("paths", {}).items()
        for m in item
        if m in methods
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stack", required=True)
    ap.add_argument("--region")
    ap.add_argument("--hosted-ui-domain", help="with an existing user pool")
    args = ap.parse_args()
    session = boto3.session.Session(region_name=args.region)
    out = outputs(session.client("cloudformation"), args.stack)
    pool = out["UserPoolId"]
    region = pool.split("_", 1)[0]
    domain = args.hosted_ui_domain or out.get("HostedUiDomain")
    if not domain:
        raise SystemExit("no HostedUiDomain output: pass --hosted-ui-domain")
    config = {
        "auth": "cognito",
        "authority": f"https://cognito-idp.{region}.amazonaws.com/{pool}",
        "clientId": out["UserPoolClientId"],
        "domain": domain,
        "wsUrl": out["WebSocketUrl"],
        "routes": routes(),
    }
    dist = ROOT / "web" / "dist"
    if not (dist / "index.html").is_file():
        raise SystemExit("web/dist is not built: run make bootstrap")
    s3 = session.client("s3")
    bucket = out["WebBucketName"]
    for f in sorted(p for p in dist.rglob("*") if p.is_file() and p.name != ".stamp"):
        key = f.relative_to(dist).as_posix()
        immutable = key.startswith("assets/")
        s3.upload_file(
            str(f),
            bucket,
            key,
            ExtraArgs={
                "ContentType": mimetypes.guess_type(f.name)[0] or "application/octet-stream",
                "CacheControl": "public, max-age=31536000, immutable" if immutable else "no-cache",
            },
        )
    s3.put_object(
        Bucket=bucket,
        Key="config.json",
        Body=json.dumps(config).encode(),
        ContentType="application/json",
        CacheControl="no-cache",
    )
    session.client("cloudfront").create_invalidation(
        DistributionId=out["WebDistributionId"],
        InvalidationBatch={
            "Paths": {"Quantity": 2, "Items": ["/index.html", "/config.json"]},
            "CallerReference": str(time.time()),
        },
    )
    print(f"dashboard deployed: {out['DashboardUrl']}")


if __name__ == "__main__":
    main()
