"""The region's API Gateway CloudWatch Logs role, set once, outside any stack (streaming mode).

A REST API stage with access logs needs the region's API Gateway account
setting (`cloudwatchRoleArn`) to name a role that API Gateway can assume. The
setting is account-wide and per region, so no stack owns it here:

- Set from a stack (`AWS::ApiGateway::Account` right after its new role), the first
  create fails intermittently, "The role ARN does not have required permissions"
  (aws-cdk #2194): IAM has not propagated the new role yet. Serverless Framework
  moved the step out of CloudFormation for that reason (serverless #6531, #6591);
  AWS CDK stopped managing it per stack by default (aws-cdk #21546, feature flag
  `@aws-cdk/aws-apigateway:disableCloudWatchRole`).
- Deleted with a stack, the role leaves the setting naming a role that no longer
  exists, and every REST API of the region loses its logs (aws-cdk #10878).

So: when the setting names a role that exists, it is left alone (it may serve
other APIs). Otherwise ROLE_NAME is created (or reused) with AWS's managed policy,
and the setting is written, retried while IAM propagates the role.

    python scripts/_apigw_log_role.py --region REGION
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

import boto3
from botocore.exceptions import ClientError

ROLE_NAME = "apigateway-cloudwatch-logs"
POLICY = "arn:{partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
TRUST = ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
         '"Principal": {"Service": "apigateway.amazonaws.com"}, "Action": "sts:AssumeRole"}]}')
# IAM's propagation usually takes seconds; API Gateway refuses the role until then.
PROPAGATION_WAIT_S = 120.0


def _role_exists(iam, arn: str) -> bool:
    try:
        iam.get_role(RoleName=arn.rsplit("/", 1)[-1])
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchEntity":
            return False
        raise
    return True


def _not_propagated(exc: ClientError) -> bool:
    """API Gateway's answer while the role is new to it: BadRequestException, "...does not have
    required permissions..." (the message aws-cdk #2194 quotes)."""
    error = exc.response["Error"]
    return error["Code"] == "BadRequestException" and "permissions" in error.get("Message", "")


def ensure(apigateway, iam, *, wait_s: float = PROPAGATION_WAIT_S, sleep: Callable[[float], None] = time.sleep,
           clock: Callable[[], float] = time.monotonic) -> str:
    """The role ARN the region's setting names once this returns (what it did is printed)."""
    current = apigateway.get_account().get("cloudwatchRoleArn")
    if current and _role_exists(iam, current):
        print(f"API Gateway logs role: {current} (already set; left as it is)", file=sys.stderr)
        return current
    try:
        arn = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=TRUST,
                              Description="API Gateway access logs to CloudWatch Logs (this region's account setting)"
                              )["Role"]["Arn"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        arn = iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"]
    iam.attach_role_policy(RoleName=ROLE_NAME, PolicyArn=POLICY.format(partition=arn.split(":")[1]))
    deadline, pause = clock() + wait_s, 2.0
    while True:
        try:
            apigateway.update_account(patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": arn}])
            break
        except ClientError as exc:
            if not _not_propagated(exc) or clock() + pause > deadline:
                raise
            sleep(pause)
            pause = min(pause * 2, 15.0)
    print(f"API Gateway logs role: {arn} (set for this region{'; it named a deleted role' if current else ''})",
          file=sys.stderr)
    return arn


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", required=True)
    region = parser.parse_args(argv).region
    ensure(boto3.client("apigateway", region_name=region), boto3.client("iam", region_name=region))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
