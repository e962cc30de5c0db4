"""Reads logyard's segments in a bucket as another engine would: pyarrow.dataset over the
Hive-style layout (`<prefix>/day=YYYY-MM-DD/seg-<id>.parquet`, and
`<prefix>/node=<id>/day=…` for the nodes of a cluster), its S3 file system.

Usage: python3 tests/clients/read_bucket.py ENDPOINT BUCKET PREFIX

Credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. Prints one JSON object:
the rows, the rows by day (the partition column), by level, and by node when the files are
in node folders.
"""
import json
import sys
from collections import Counter
from urllib.parse import urlparse

import pyarrow.dataset as ds
import pyarrow.fs as pafs

endpoint, bucket, prefix = sys.argv[1:4]
url = urlparse(endpoint)
s3 = pafs.S3FileSystem(
    endpoint_override=url.netloc,
    scheme=url.scheme,
    region="us-east-1",
)
# The .idx sidecars beside the data files are not Parquet: only *.parquet files are read.
selector = pafs.FileSelector(f"{bucket}/{prefix}", recursive=True)
files = [f.path for f in s3.get_file_info(selector) if f.path.endswith(".parquet")]
dataset = ds.dataset(
    files,
    filesystem=s3,
    format="parquet",
    partitioning=ds.partitioning(flavor="hive"),
    partition_base_dir=f"{bucket}/{prefix}",
)
columns = ["day", "level"]
if "node" in dataset.schema.names:
    columns.append("node")
table = dataset.to_table(columns=columns)
answer = {
    "rows": table.num_rows,
    "by_day": dict(Counter(str(d) for d in table.column("day").to_pylist())),
    "by_level": dict(Counter(table.column("level").to_pylist())),
}
if "node" in columns:
    answer["by_node"] = dict(Counter(str(n) for n in table.column("node").to_pylist()))
print(json.dumps(answer))
