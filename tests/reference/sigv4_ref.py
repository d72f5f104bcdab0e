#!/usr/bin/env python3
"""botocore's S3 SigV4 signer as the reference for bistro's: generates a spread of requests
(queries that need sorting and encoding, keys with spaces, unicode and slashes, range headers,
empty and large bodies, session tokens), signs each with botocore.auth.S3SigV4Auth at a fixed
time, and prints them as JSON for tests/test_sigv4.cpp to re-sign and compare.
"""
import datetime
import hashlib
import json
import random
from urllib.parse import quote

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

FIXED = datetime.datetime(2026, 11, 22, 12, 34, 56)


class FixedDatetime(datetime.datetime):
    @classmethod
    def utcnow(cls):
        return FIXED


botocore.auth.datetime.datetime = FixedDatetime

KEYS = ["plain.bin", "dir/sub/file.safetensors", "with space/and+plus.txt", "unicode/caf\u00e9-\u00fc.bin",
        "gradient-12-5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty", "a/b//c", "tilde~and*star",
        "percent%20literal", "equals=and&amp"]
PARAMS = [[], [("list-type", "2"), ("prefix", "slice-12-")], [("prefix", "p/"), ("list-type", "2")],
          [("uploads", "")], [("partNumber", "3"), ("uploadId", "abc/def+ghi==")],
          [("continuation-token", "1/x y+z=="), ("list-type", "2"), ("max-keys", "1000")],
          [("prefix", "unicode/caf\u00e9"), ("delimiter", "/")]]


def main():
    rng = random.Random(7)
    cases = []
    for i in range(60):
        method = rng.choice(["GET", "PUT", "HEAD", "DELETE", "POST"])
        bucket = rng.choice(["bistro-updates", "my.bucket"])
        key = rng.choice(KEYS)
        params = rng.choice(PARAMS)
        host = rng.choice(["127.0.0.1:4568", "s3.us-east-1.amazonaws.com", "example.r2.cloudflarestorage.com"])
        body = b""
        if method in ("PUT", "POST"):
            body = rng.choice([b"", b"hello", bytes(rng.getrandbits(8) for _ in range(70000))])
        headers = {}
        if method == "GET" and rng.random() < 0.5:
            headers["Range"] = f"bytes={rng.randrange(100)}-{rng.randrange(100, 5000)}"
        if method == "PUT" and rng.random() < 0.5:
            headers["Content-Type"] = "application/octet-stream"
            headers["x-amz-meta-note"] = "  several   spaces  "
        token = rng.choice(["", "FQoGZXIvYXdzEJr//////////wEaDOtoken+/="])
        region = rng.choice(["us-east-1", "auto", "eu-west-3"])
        path = "/" + bucket + "/" + key
        query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in params)
        url = "http://" + host + quote(path, safe="/~") + ("?" + query if query else "")
        req = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token or None)
        botocore.auth.S3SigV4Auth(creds, "s3", region).add_auth(req)
        cases.append({
            "method": method, "host": host, "path": path, "query": params,
            "headers": list(headers.items()), "payload_sha256": hashlib.sha256(body).hexdigest(),
            "token": token, "region": region,
            "authorization": req.headers["Authorization"],
            "amz_date": req.headers["X-Amz-Date"],
        })
    print(json.dumps({"time": int(FIXED.replace(tzinfo=datetime.timezone.utc).timestamp()),
                      "cases": cases}, ensure_ascii=False))


if __name__ == "__main__":
    main()
