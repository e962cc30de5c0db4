//! A node's answer to a query node (`GET /api/node/recent`): damaged bytes are an error,
//! never a panic or a huge allocation.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = logyard_store::Recent::decode(data);
});
