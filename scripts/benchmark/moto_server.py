"""The moto server the benchmark runs, with tests/support/moto_dynamodb.py's fixes.

Stock moto's ledger writes cost more as the table grows, so the benchmark
would measure moto; see that module. Request logging is off, as in
scripts/devstack.py.

    python -m scripts.benchmark.moto_server -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import logging

from moto import server

from tests.support.moto_dynamodb import install


def main() -> None:
    install()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server.main()


if __name__ == "__main__":
    main()
