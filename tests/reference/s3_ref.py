#!/usr/bin/env python3
"""boto3 as the reference S3 client for interoperability tests.

  s3_ref.py ENDPOINT put BUCKET KEY FILE [--multipart]
  s3_ref.py ENDPOINT get BUCKET KEY FILE
"""
import sys

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config


def main():
    endpoint, op, bucket, key, path = sys.argv[1:6]
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="S3RVER",
                      aws_secret_access_key="S3RVER", region_name="us-east-1",
                      config=Config(s3={"addressing_style": "path"}))
    if op == "put":
        if "--multipart" in sys.argv:
            cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
            s3.upload_file(path, bucket, key, Config=cfg)
        else:
            with open(path, "rb") as f:
                s3.put_object(Bucket=bucket, Key=key, Body=f.read())
    elif op == "get":
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        with open(path, "wb") as f:
            f.write(body)
    else:
        raise SystemExit(f"unknown op {op}")


if __name__ == "__main__":
    main()
