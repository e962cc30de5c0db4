//! WAL frame payloads: damaged bytes are an error, never a panic or a huge allocation.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = logyard_store::codec::decode_batch(data);
});
