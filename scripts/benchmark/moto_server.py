"""The moto server the benchmark runs, with tests/support's fixes (moto_dynamodb.py, moto_secrets.py).

Stock moto's ledger writes cost more as the table grows, so the benchmark
would measure moto; see that module. Request logging is off, as in
scripts/devstack.py.

Served by uvicorn over WSGI rather than moto's own werkzeug server, which
closes the connection after every answer (werkzeug/serving.py: "Always close
the connection. This disables HTTP/1.1 keep-alive connections."): DynamoDB,
Secrets Manager and SQS keep a connection open, so against werkzeug every
usage write would also pay for a new TCP connection, which a deployed function
does not.

    python -m scripts.benchmark.moto_server -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import argparse

import uvicorn
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from tests.support import moto_dynamodb, moto_secrets


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m scripts.benchmark.moto_server",
                                     description="moto for the benchmark, with kept-alive connections")
    parser.add_argument("-H", "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("-p", "--port", type=int, required=True, help="port to bind")
    args = parser.parse_args()
    moto_dynamodb.install()
    moto_secrets.install()  # gateway-admin's compare-and-swap needs AWSCURRENT moves to show in GetSecretValue
    app = DomainDispatcherApplication(create_backend_app)
    uvicorn.run(app, host=args.host, port=args.port, interface="wsgi", log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
