"""IAM chores for the credential-rotation test, against a moto server that enforces IAM.

    moto_iam.py setup ENDPOINT BUCKET
        While moto still lets requests through unauthenticated (the server is started with
        INITIAL_NO_AUTH_ACTION_COUNT=5): create BUCKET, a user allowed s3:* and iam:*, and
        two access keys for it. Prints {"key1": {"id", "secret"}, "key2": {...}} as JSON.

    moto_iam.py delete-key ENDPOINT KEY_ID SIGNING_ID SIGNING_SECRET
        Delete the user's access key KEY_ID, signing with another of its keys.
"""

import json
import sys

import boto3

USER = "coffer-tier"


def client(service, endpoint, key_id="testing", secret="testing"):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )


def setup(endpoint, bucket):
    # Exactly five actions: the server lets five through unauthenticated.
    client("s3", endpoint).create_bucket(Bucket=bucket)
    iam = client("iam", endpoint)
    iam.create_user(UserName=USER)
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:*", "iam:*"], "Resource": "*"}],
    }
    iam.put_user_policy(UserName=USER, PolicyName="coffer", PolicyDocument=json.dumps(policy))
    keys = [iam.create_access_key(UserName=USER)["AccessKey"] for _ in range(2)]
    print(json.dumps({f"key{i + 1}": {"id": k["AccessKeyId"], "secret": k["SecretAccessKey"]} for i, k in enumerate(keys)}))


def delete_key(endpoint, key_id, signing_id, signing_secret):
    client("iam", endpoint, signing_id, signing_secret).delete_access_key(UserName=USER, AccessKeyId=key_id)


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "setup":
        setup(*args)
    elif command == "delete-key":
        delete_key(*args)
    else:
        sys.exit(f"unknown command {command}")
