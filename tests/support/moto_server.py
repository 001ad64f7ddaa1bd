#!/usr/bin/env python3
"""Serves moto (DynamoDB, S3, SNS, SQS) on a free loopback port for the tests.

Prints "READY <port>" once the server answers, then runs until its standard
input closes, so it ends with the test process that started it, however that
process exits.
"""
import logging
import os
import socket
import sys
import time
import urllib.request

from moto.server import ThreadedMotoServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if os.environ.get("MOTO_IAM_SKIP_SIGNATURES") == "1":
        # The least-privilege test checks which actions a key may call. moto
        # recomputes SigV4 for SNS's form bodies differently from the SDK, so
        # there the signature check would refuse every Publish; the policy
        # check stays.
        from moto.iam.access_control import IAMRequestBase

        IAMRequestBase.check_signature = lambda self: None
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1).read()
            break
        except Exception:
            if time.time() > deadline:
                print("moto did not start", file=sys.stderr)
                return 1
            time.sleep(0.05)
    print(f"READY {port}", flush=True)
    sys.stdin.read()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
