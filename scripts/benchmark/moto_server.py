"""The moto server the benchmark runs, with tests/support's fixes (moto_dynamodb.py, moto_secrets.py).

Stock moto's ledger writes cost more as the table grows, so the benchmark
would measure moto; see that module. Request logging is off, as in
scripts/devstack.py.

    python -m scripts.benchmark.moto_server -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import logging

from moto import server

from tests.support import moto_dynamodb, moto_secrets


def main() -> None:
    moto_dynamodb.install()
    moto_secrets.install()  # gateway-admin's compare-and-swap needs AWSCURRENT moves to show in GetSecretValue
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server.main()


if __name__ == "__main__":
    main()
