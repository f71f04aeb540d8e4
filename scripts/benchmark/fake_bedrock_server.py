"""The fake Bedrock runtime (tests.support.fake_bedrock) in its own process, for --model bedrock/...

It checks every request's SigV4 signature against the benchmark's AWS credentials
(the ones every child gets: aws_stack.CREDENTIALS), as Bedrock checks the caller's.

    python -m scripts.benchmark.fake_bedrock_server --port 0     (prints its URL, serves until SIGTERM)
"""

from __future__ import annotations

import argparse
import signal
import sys

from tests.support.fake_bedrock import FakeBedrock

from .aws_stack import CREDENTIALS, REGION


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    fake = FakeBedrock(access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                       secret_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"], region=REGION, port=args.port).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(fake.url, flush=True)
    try:
        while fake._thread and fake._thread.is_alive():
            fake._thread.join(1.0)
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
