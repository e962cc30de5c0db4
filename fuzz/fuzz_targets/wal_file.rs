//! Whole WAL files found on disk at recovery: any bytes are read frame by frame, never a
//! panic, and the batches read have growing sequence numbers.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logyard_store::wal;

fuzz_target!(|data: &[u8]| {
    let mut next_seq = 0;
    let mut report = wal::ReplayReport::default();
    let mut last: Option<u64> = None;
    let end = wal::scan(data, &mut next_seq, &mut report, &mut |records, _| {
        for r in &records {
            assert!(last.is_none_or(|l| r.seq > l), "sequence numbers go back");
            last = Some(r.seq);
        }
    });
    assert!(end <= data.len());
});
