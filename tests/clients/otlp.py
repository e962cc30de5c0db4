"""Sends logs with the OpenTelemetry Python SDK's OTLP/HTTP (protobuf) exporter.

Usage: python3 tests/clients/otlp.py URL

With LOGYARD_TOKEN=token it sends `Authorization: Bearer <token>` as an exporter header.
"""
import logging
import os
import sys

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource

url = sys.argv[1]
provider = LoggerProvider(
    resource=Resource.create({"service.name": "checkout", "host.name": "web-7", "deployment.environment": "test"})
)
class CheckedExporter(OTLPLogExporter):
    """Remembers every export's result: the SDK only logs a failed one."""

    results = []

    def export(self, batch):
        result = super().export(batch)
        self.results.append((len(batch), result))
        return result


headers = {"authorization": f"Bearer {os.environ['LOGYARD_TOKEN']}"} if os.environ.get("LOGYARD_TOKEN") else None
exporter = CheckedExporter(endpoint=f"{url}/v1/logs", headers=headers)
provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
log = logging.getLogger("shop.checkout")
log.setLevel(logging.DEBUG)
log.addHandler(handler)
log.propagate = False

log.info("order placed", extra={"order_id": 42, "customer": "ana"})
log.warning("payment slow")
log.error("payment failed", extra={"amount": 9.5})

if not provider.force_flush(10_000):
    sys.exit("force_flush timed out")
provider.shutdown()
sent = sum(n for n, r in CheckedExporter.results if r.name == "SUCCESS")
if sent != 3:
    sys.exit(f"exports: {CheckedExporter.results}")
print("sent 3")
