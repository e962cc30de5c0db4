"""Sends documents with the official Elasticsearch Python client's `helpers.bulk`.

Usage: python3 tests/clients/es_bulk.py URL

With LOGYARD_BASIC=name:token it authenticates with HTTP Basic, with LOGYARD_API_KEY=name:token
with an API key (id, key), as the client's own options do.
"""
import os
import sys

from elasticsearch import Elasticsearch, helpers

url = sys.argv[1]
credentials = {}
if os.environ.get("LOGYARD_BASIC"):
    credentials["basic_auth"] = tuple(os.environ["LOGYARD_BASIC"].split(":", 1))
if os.environ.get("LOGYARD_API_KEY"):
    credentials["api_key"] = tuple(os.environ["LOGYARD_API_KEY"].split(":", 1))
es = Elasticsearch(url, request_timeout=30, **credentials)
docs = [
    {
        "_index": "logs-shop",
        "_id": "a1",
        "_source": {
            "@timestamp": "2024-01-15T10:30:00Z",
            "message": "cart saved",
            "log": {"level": "info"},
            "service": {"name": "cart"},
            "host": {"name": "web-3"},
            "http": {"response": {"status_code": 200}},
        },
    },
    {
        "_index": "logs-shop",
        "_source": {
            "@timestamp": "2024-01-15T10:30:01.250Z",
            "message": "cart lost",
            "log.level": "error",
            "service.name": "cart",
            "host": {"hostname": "web-4"},
        },
    },
    {
        "_op_type": "create",
        "_index": "logs-other",
        "_source": {"@timestamp": "2024-01-15T10:30:02Z", "message": "third", "service": {"name": "cart"}},
    },
]
ok, errors = helpers.bulk(es, docs)
assert ok == 3 and not errors, (ok, errors)

# A delete is answered with a per-item error, which helpers.bulk raises.
try:
    helpers.bulk(es, [{"_op_type": "delete", "_index": "logs-shop", "_id": "a1"}])
    sys.exit("a delete was accepted")
except helpers.BulkIndexError as e:
    item = e.errors[0]["delete"]
    assert item["status"] == 400, item
    assert "not supported" in item["error"]["reason"], item

info = es.info()
assert info["version"]["number"].startswith("8."), info
print("sent 3")
