"""Sends logs with python-logging-loki's LokiHandler (JSON push, Loki API v1).

Usage: python3 tests/clients/loki.py URL

With LOGYARD_BASIC=name:token it authenticates with HTTP Basic (the handler's `auth`).
"""
import logging
import os
import sys

import logging_loki

url = sys.argv[1]
auth = tuple(os.environ["LOGYARD_BASIC"].split(":", 1)) if os.environ.get("LOGYARD_BASIC") else None
handler = logging_loki.LokiHandler(
    url=f"{url}/loki/api/v1/push",
    tags={"app": "inventory", "host": "db-2", "env": "test"},
    auth=auth,
    version="1",
)


def fail(record):
    # A refused push is reported through logging's handleError: make it fail the script.
    raise SystemExit(f"the push of {record.getMessage()!r} was refused")


handler.handleError = fail
log = logging.getLogger("inventory.stock")
log.setLevel(logging.DEBUG)
log.addHandler(handler)
log.propagate = False

# The handler POSTs each record at once and raises unless the answer is 204.
log.info("reserved stock sku=X1 qty=3")
log.warning('{"message": "stock low", "sku": "X1", "level": "debug", "left": 2}')
log.error("restock failed", extra={"tags": {"supplier": "acme"}})
print("sent 3")
