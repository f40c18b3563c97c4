#!/usr/bin/env python3
"""AWS on this machine for `cargo lambda watch`: starts moto (DynamoDB, EventBridge, SQS,
Scheduler, Secrets Manager) on loopback with the table, bus, queues, schedule group and
secrets as infra/template.yaml defines them, publishes the built-in catalog the way a
deployment does, and writes the functions' environment to an env file. Runs until
interrupted (Ctrl-C), or with --detach prints moto's pid and returns.

Usage: python3 scripts/local-aws.py [--port 5000] [--env-file .env.lambda] [--detach]
Then:  cargo lambda watch --env-file .env.lambda
       python3 scripts/invoke.py auth events/auth-initialize-tenant.json
"""
import argparse, json, os, signal, socket, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What the sample events in events/ carry.
ADMIN_TOKEN = "sample-platform-admin-token-0123456789"
JWT_SECRET = "local-lambda-signing-key-0123456789abcdef"
TABLE, BUS, GROUP = "platform-lambda", "platform-events", "platform-timers"


def wait_port(port, seconds=30):
    end = time.time() + seconds
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"moto did not start on port {port}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=5000)
    ap.add_argument("--env-file", default=os.path.join(ROOT, ".env.lambda"))
    ap.add_argument("--detach", action="store_true")
    a = ap.parse_args()
    import boto3

    moto = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(a.port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=a.detach)
    wait_port(a.port)
    endpoint = f"http://127.0.0.1:{a.port}"
    kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    boto3.client("dynamodb", **kw).create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}, {"AttributeName": "SK", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    events = boto3.client("events", **kw)
    bus_arn = events.create_event_bus(Name=BUS)["EventBusArn"]
    sqs = boto3.client("sqs", **kw)
    actions = sqs.create_queue(QueueName="platform-actions", Attributes={"VisibilityTimeout": "360"})["QueueUrl"]
    boto3.client("scheduler", **kw).create_schedule_group(Name=GROUP)
    boto3.client("s3", **kw).create_bucket(Bucket="platform-files")
    secrets = boto3.client("secretsmanager", **kw)
    admin_arn = secrets.create_secret(Name="platform-admin-token", SecretString=ADMIN_TOKEN)["ARN"]
    jwt_arn = secrets.create_secret(Name="jwt-secret", SecretString=JWT_SECRET)["ARN"]
    env = {
        "TABLE_NAME": TABLE, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1", "PLATFORM_ADMIN_TOKEN_ARN": admin_arn, "JWT_SECRET_ARN": jwt_arn,
        "MAIL_FROM": "no-reply@example.com", "EVENT_BUS_NAME": BUS, "EVENT_BUS_ARN": bus_arn,
        "ACTION_QUEUE_URL": actions, "SCHEDULE_GROUP": GROUP, "FILES_BUCKET": "platform-files",
        "SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/platform-scheduler", "RUST_LOG": "warn",
    }
    with open(a.env_file, "w") as f:
        f.writelines(f"{k}={v}\n" for k, v in env.items())
    print(f"moto on {endpoint}; the functions' environment is in {a.env_file}", file=sys.stderr)
    if a.detach:
        print(moto.pid)
        return
    try:
        moto.wait()
    except KeyboardInterrupt:
        moto.send_signal(signal.SIGTERM)


if __name__ == "__main__":
    main()
