"""Creates what the functions expect in the (moto) AWS account: the table, the gateway's
PISTE credentials secret and the verified SES sender. Idempotent."""

import json
import os
import sys

import boto3
from botocore.exceptions import ClientError

endpoint = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
region = os.environ.get("AWS_REGION", "eu-west-3")
table = os.environ["TABLE_NAME"]
piste_secret = os.environ["PISTE_CREDENTIALS_SECRET"]
sender = os.environ.get("SENDER_EMAIL", "rappels@choruspro-gateway.local")

kw = dict(endpoint_url=endpoint, region_name=region,
          aws_access_key_id="test", aws_secret_access_key="test")
ddb = boto3.client("dynamodb", **kw)
sm = boto3.client("secretsmanager", **kw)
ses = boto3.client("sesv2", **kw)

try:
    ddb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": n, "AttributeType": "S"} for n in ("PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK", "GSI3PK", "GSI3SK")
        ],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"},
                   {"AttributeName": "SK", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{
            "IndexName": "GSI1",
            "KeySchema": [{"AttributeName": "GSI1PK", "KeyType": "HASH"},
                          {"AttributeName": "GSI1SK", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }, {
            "IndexName": "GSI2",
            "KeySchema": [{"AttributeName": "GSI2PK", "KeyType": "HASH"},
                          {"AttributeName": "GSI2SK", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "INCLUDE",
                           "NonKeyAttributes": ["siret", "market_ref", "situation"]},
        }, {
            "IndexName": "GSI3",
            "KeySchema": [{"AttributeName": "GSI3PK", "KeyType": "HASH"},
                          {"AttributeName": "GSI3SK", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }],
    )
    ddb.update_time_to_live(TableName=table,
                            TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})
    print(f"  table {table} created")
except ClientError as e:
    if e.response["Error"]["Code"] != "ResourceInUseException":
        raise
    print(f"  table {table} exists")

value = json.dumps({
    "client_id": os.environ.get("PISTE_CLIENT_ID", "gateway-local"),
    "client_secret": os.environ.get("PISTE_CLIENT_SECRET", "gateway-local-secret"),
})
try:
    sm.create_secret(Name=piste_secret, SecretString=value)
    print(f"  secret {piste_secret} created")
except ClientError as e:
    if e.response["Error"]["Code"] != "ResourceExistsException":
        raise
    print(f"  secret {piste_secret} exists")

# The documents bucket (issue 16): as in infra/template.yaml, uploads through pre-signed
# PUTs from a browser (CORS), deleted after 30 days.
bucket = os.environ.get("DOCUMENTS_BUCKET")
if bucket:
    s3 = boto3.client("s3", **kw)
    try:
        s3.create_bucket(Bucket=bucket,
                         CreateBucketConfiguration={"LocationConstraint": region})
        print(f"  bucket {bucket} created")
    except ClientError as e:
        if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
        print(f"  bucket {bucket} exists")
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [{
        "ID": "documents-30-days", "Status": "Enabled", "Filter": {"Prefix": "documents/"},
        "Expiration": {"Days": 30}}]})
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [{
        "AllowedMethods": ["PUT"], "AllowedOrigins": ["*"],
        "AllowedHeaders": ["content-type", "content-length"], "MaxAgeSeconds": 900}]})

bus = os.environ.get("EVENT_BUS_NAME", "choruspro-gateway-local")
events = boto3.client("events", **kw)
try:
    events.create_event_bus(Name=bus)
    print(f"  event bus {bus} created")
except ClientError as e:
    if e.response["Error"]["Code"] != "ResourceAlreadyExistsException":
        raise
    print(f"  event bus {bus} exists")

domain = sender.split("@", 1)[1]
ses.create_email_identity(EmailIdentity=domain)
print(f"  SES sender domain {domain} verified")
sys.exit(0)
