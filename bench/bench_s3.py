#!/usr/bin/env python3
"""bistro's S3 client vs the AWS CLI (Debian awscli), same objects, same local S3 server (s3rver,
started here on a free loopback port), in one run: upload and download throughput for 1 MB, 64 MB
and 512 MB objects, best of `--rounds`, and bistro's peak RSS for each transfer.

  /usr/bin/python3 bench/bench_s3.py [--bistro build/bistro] [--rounds 2] [--sizes 1,64,512]
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(cmd, env):
    """Seconds and peak RSS (MB) of a command, through GNU time."""
    t0 = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, env=env, capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1)) / 1024
    return secs, rss


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--bistro", default=os.path.join(ROOT, "build", "bistro"))
    a.add_argument("--rounds", type=int, default=2)
    a.add_argument("--sizes", default="1,64,512")
    args = a.parse_args()
    work = tempfile.mkdtemp(prefix="bistro_bench_s3_")
    port = free_port()
    server = subprocess.Popen(
        ["node", "--openssl-legacy-provider",
         os.path.join(ROOT, "tools/node/node_modules/s3rver/bin/s3rver.js"), "-d",
         os.path.join(work, "server"), "-a", "127.0.0.1", "-p", str(port), "--silent",
         "--configure-bucket", "bistro"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{port}"
        env = dict(os.environ, AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER",
                   AWS_DEFAULT_REGION="us-east-1", BISTRO_S3_ENDPOINT=endpoint)
        print(f"{'size':>6s} {'direction':9s} {'bistro MB/s':>11s} {'aws MB/s':>9s} {'ratio':>6s}"
              f" {'bistro RSS':>10s} {'aws RSS':>8s}")
        for mb in [int(x) for x in args.sizes.split(",")]:
            src = os.path.join(work, f"src-{mb}")
            with open(src, "wb") as f:
                f.write(os.urandom(mb << 20))
            best = {}
            for _ in range(args.rounds):
                runs = {
                    ("up", "bistro"): [args.bistro, "bucket", "put", "s3://bistro", f"b-{mb}", src],
                    ("up", "aws"): ["/usr/bin/aws", "--endpoint-url", endpoint, "s3", "cp", src,
                                    f"s3://bistro/a-{mb}", "--only-show-errors"],
                    ("down", "bistro"): [args.bistro, "bucket", "get", "s3://bistro", f"b-{mb}",
                                         os.path.join(work, "dl-b")],
                    ("down", "aws"): ["/usr/bin/aws", "--endpoint-url", endpoint, "s3", "cp",
                                      f"s3://bistro/a-{mb}", os.path.join(work, "dl-a"),
                                      "--only-show-errors"],
                }
                for key, cmd in runs.items():
                    secs, rss = timed(cmd, env)
                    if key not in best or secs < best[key][0]:
                        best[key] = (secs, rss)
            for d in ("up", "down"):
                b, w = best[(d, "bistro")], best[(d, "aws")]
                print(f"{mb:4d}MB {d:9s} {mb / b[0]:11.1f} {mb / w[0]:9.1f} {w[0] / b[0]:6.2f}"
                      f" {b[1]:8.0f}MB {w[1]:6.0f}MB")
            for f in ("dl-a", "dl-b"):
                with open(os.path.join(work, f), "rb") as got, open(src, "rb") as want:
                    assert got.read() == want.read(), f"{f} differs"
            os.remove(src)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
