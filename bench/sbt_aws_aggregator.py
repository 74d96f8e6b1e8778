"""
Runs sbt-aws's data aggregator (resources/functions/data-aggregator/index.py of
the @cdklabs/sbt-aws npm package) against the emulator, the way sbt-aws
deploys it: Firehose writes newline-delimited records to S3 and each new
object invokes the handler with an S3 event.

Usage: python sbt_aws_aggregator.py CONFIG.json   (written by bench/ingest.ts)

Config: endpoint (the emulator), dynamodbEndpoint (the recording proxy in
front of it, which bills each DynamoDB request), package (unpacked npm package
dir), table, bucket, batches (path of a JSON file: a list of batches, each a
list of record lines).
Prints one JSON line: handler seconds, DynamoDB and S3 requests.
"""
import importlib.util
import json
import os
import sys
import time

import boto3

cfg = json.load(open(sys.argv[1]))
os.environ.update({
    "AWS_ENDPOINT_URL": cfg["endpoint"],
    "AWS_ENDPOINT_URL_DYNAMODB": cfg.get("dynamodbEndpoint", cfg["endpoint"]),
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    # as sbt-aws's FirehoseAggregator sets them
    "SERVICE_NAME": "FirehoseAggregator",
    "DATA_TABLE": cfg["table"],
    "PRIMARY_KEY_COLUMN": "tenantId",
    "PRIMARY_KEY_PATH": "tenantId",
    "AGGREGATE_KEY_PATH": "metric",
    "AGGREGATE_VALUE_PATH": "value",
    # no X-Ray daemon here; logs at WARNING as for our handler (no per-record log lines)
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
})

ddb = boto3.client("dynamodb")
ddb.create_table(
    TableName=cfg["table"],
    KeySchema=[{"AttributeName": "tenantId", "KeyType": "HASH"}],
    AttributeDefinitions=[{"AttributeName": "tenantId", "AttributeType": "S"}],
    BillingMode="PAY_PER_REQUEST",
)
s3 = boto3.client("s3")
s3.create_bucket(Bucket=cfg["bucket"])

batches = json.load(open(cfg["batches"]))
keys = []
for i, lines in enumerate(batches):
    key = f"firehose/2026/11/27/batch-{i:06d}"
    s3.put_object(Bucket=cfg["bucket"], Key=key, Body=("\n".join(lines) + "\n").encode("utf-8"))
    keys.append((key, sum(len(l) + 1 for l in lines)))

spec = importlib.util.spec_from_file_location(
    "sbt_aws_data_aggregator",
    os.path.join(cfg["package"], "resources", "functions", "data-aggregator", "index.py"),
)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)

counts = {"dynamodb": 0, "s3": 0}


def counter(service):
    def count(**_kwargs):
        counts[service] += 1
    return count


mod.data_table.meta.client.meta.events.register("before-send.dynamodb", counter("dynamodb"))
mod.s3_client.meta.events.register("before-send.s3", counter("s3"))


class Context:
    function_name = "DataAggregatorLambda"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:DataAggregatorLambda"
    aws_request_id = "bench"


start = time.perf_counter()
for key, size in keys:
    event = {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-27T00:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0", "configurationId": "bench",
            "bucket": {"name": cfg["bucket"], "arn": f"arn:aws:s3:::{cfg['bucket']}", "ownerIdentity": {"principalId": "x"}},
            "object": {"key": key, "size": size, "eTag": "0", "sequencer": "0"},
        },
    }]}
    mod.handler(event, Context())
elapsed = time.perf_counter() - start

print(json.dumps({"seconds": elapsed, "dynamodbRequests": counts["dynamodb"], "s3Requests": counts["s3"]}))
