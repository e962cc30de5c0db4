//! The shippers' bodies (Elasticsearch `_bulk`, Loki push in JSON and protobuf, OTLP logs
//! in JSON and protobuf): any bytes are refused or mapped item by item, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logyard_sources::http::{bulk, loki, otlp};
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => {
            if let Ok(parsed) = bulk::parse_bulk(body, Some("fuzz"), 4096, 1000, 0) {
                let answer = bulk::answer(&parsed.items, 1);
                assert!(serde_json::from_str::<serde_json::Value>(&answer).is_ok());
            }
        }
        1 => {
            if let Ok(streams) = loki::from_json(body) {
                let _ = loki::to_records(streams, 4096, true);
            }
        }
        2 => {
            if let Ok(streams) = loki::from_protobuf(body) {
                let _ = loki::to_records(streams, 4096, true);
            }
        }
        3 => {
            if let Ok(request) = otlp::from_json(body) {
                let _ = otlp::to_records(request, 4096, 0);
            }
        }
        _ => {
            if let Ok(request) = otlp::proto::ExportLogsServiceRequest::decode(body) {
                let _ = otlp::to_records(request, 4096, 0);
            }
        }
    }
});
