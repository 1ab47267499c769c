"""Sets up a moto server the way a wharf customer's AWS account would look.

Commands (JSON on stdout):
  init ENDPOINT BUCKET        before enforcement: admin and wharf users with keys, the bucket;
                              then switches IAM enforcement on.
  role ENDPOINT ADMIN_AK ADMIN_SK SPEC_JSON
                              as admin: a role with a trust policy and an S3 permission policy.
Only ever talks to the given 127.0.0.1 endpoint.
"""
import json
import sys
import urllib.request

import boto3
from botocore.config import Config


def clients(endpoint, key, secret):
    kw = dict(aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1", endpoint_url=endpoint)
    return (
        boto3.client("iam", **kw),
        boto3.client("s3", config=Config(s3={"addressing_style": "path"}), **kw),
    )


def allow(actions, resource):
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}]})


def init(endpoint, bucket):
    iam, s3 = clients(endpoint, "testing", "testing")
    iam.create_user(UserName="admin")
    admin = iam.create_access_key(UserName="admin")["AccessKey"]
    iam.put_user_policy(UserName="admin", PolicyName="admin", PolicyDocument=allow("*", "*"))
    user = iam.create_user(UserName="wharf")["User"]
    wharf = iam.create_access_key(UserName="wharf")["AccessKey"]
    iam.put_user_policy(UserName="wharf", PolicyName="assume",
                        PolicyDocument=allow(["sts:AssumeRole", "sts:GetCallerIdentity"], "*"))
    s3.create_bucket(Bucket=bucket)
    req = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST",
                                 headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(req).read()
    return {
        "admin": {"access_key": admin["AccessKeyId"], "secret_key": admin["SecretAccessKey"]},
        "wharf": {"access_key": wharf["AccessKeyId"], "secret_key": wharf["SecretAccessKey"], "arn": user["Arn"]},
    }


def role(endpoint, admin_key, admin_secret, spec):
    iam, _ = clients(endpoint, admin_key, admin_secret)
    statement = {"Effect": "Allow", "Principal": {"AWS": spec["trust_principal"]}, "Action": "sts:AssumeRole"}
    if spec.get("external_id"):
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": spec["external_id"]}}
    arn = iam.create_role(RoleName=spec["name"], AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [statement]}))["Role"]["Arn"]
    if spec.get("permission_policy"):
        iam.put_role_policy(RoleName=spec["name"], PolicyName="wharf", PolicyDocument=json.dumps(spec["permission_policy"]))
    return {"arn": arn}


if __name__ == "__main__":
    command, endpoint = sys.argv[1], sys.argv[2]
    if not endpoint.startswith("http://127.0.0.1:"):
        sys.exit("moto_fixture talks to 127.0.0.1 only")
    if command == "init":
        out = init(endpoint, sys.argv[3])
    elif command == "role":
        out = role(endpoint, sys.argv[3], sys.argv[4], json.loads(sys.argv[5]))
    else:
        sys.exit(f"unknown command {command}")
    print(json.dumps(out))
