//! Executor tests over a real store.

use super::*;
use logyard_model::Level;
use logyard_store::{Store, StoreConfig};

const T0: i64 = 1_705_276_800_000_000_000;

fn store(dir: &std::path::Path) -> Store {
    let mut c = StoreConfig::new(dir);
    c.storage = logyard_store::testing::storage_for(dir);
    c.retention_days = 0;
    c.block_rows = 10;
    c.flush_interval = std::time::Duration::from_secs(3600);
    Store::open(c).unwrap()
}

fn fill(store: &Store) {
    let records: Vec<Record> = (0..100)
        .map(|i| {
            let mut r = Record::new(T0 + i * 1_000_000_000, format!("request {i} served"));
            r.agent = if i % 2 == 0 {
                "web".into()
            } else {
                "db".into()
            };
            r.level = Some(if i % 10 == 0 {
                Level::Error
            } else {
                Level::Info
            });
            r.fields.insert(
                "status".into(),
                logyard_model::Value::Int(200 + (i % 3) * 100),
            );
            if i == 42 {
                r.message = "found NEEDLE-42-5 here".into();
            }
            r
        })
        .collect();
    store.append(records).unwrap();
}

fn run(store: &Store, q: &str, offset: usize, limit: usize) -> SearchResult {
    let f = parse_filter(q, T0).unwrap();
    search(&store.snapshot(), &f, Page { offset, limit }).unwrap()
}

#[test]
fn needle_skips_blocks_after_flush() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    fill(&s);
    let before = run(&s, "NEEDLE-42-5", 0, 10);
    assert_eq!(before.total, 1);
    s.flush().unwrap();
    let after = run(&s, "NEEDLE-42-5", 0, 10);
    assert_eq!(after.total, 1);
    assert_eq!(after.records[0].message, "found NEEDLE-42-5 here");
    assert_eq!(after.cost.blocks_skipped_by_filter, 9, "{:?}", after.cost);
    assert_eq!(
        run(&s, "NEEDLE-4", 0, 10).total,
        0,
        "words match whole tokens"
    );
    assert_eq!(
        run(&s, "NEEDLE-42", 0, 10).total,
        1,
        "a prefix of whole tokens matches"
    );
}

#[test]
fn pages_newest_first_with_total() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    fill(&s);
    s.flush().unwrap();
    let r = run(&s, "agent:web", 0, 3);
    assert_eq!(r.total, 50);
    let ts: Vec<i64> = r
        .records
        .iter()
        .map(|r| (r.timestamp - T0) / 1_000_000_000)
        .collect();
    assert_eq!(ts, [98, 96, 94]);
    let r = run(&s, "agent:web", 3, 2);
    let ts: Vec<i64> = r
        .records
        .iter()
        .map(|r| (r.timestamp - T0) / 1_000_000_000)
        .collect();
    assert_eq!(ts, [92, 90]);
    assert_eq!(run(&s, "level:ERROR", 0, 0).total, 10);
    assert_eq!(run(&s, "level:>=INFO -level:ERROR", 0, 0).total, 90);
    assert_eq!(run(&s, "agent:web OR agent:db", 0, 0).total, 100);
    assert_eq!(run(&s, "status:400", 0, 0).total, 33);
    assert_eq!(run(&s, "status:4*", 0, 0).total, 33);
    assert_eq!(run(&s, "nosuch:500", 0, 0).total, 0);
}

#[test]
fn pages_oldest_first_with_the_cursor_after_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    fill(&s);
    s.flush().unwrap();
    // Ties of time are ordered by arrival in both orders.
    s.append(vec![
        Record::new(T0 + 2_000_000_000, "same second, later"),
        Record::new(T0 - 1, "before all"),
    ])
    .unwrap();
    let settings = Settings::default();
    let secs = |r: &[Record]| -> Vec<i64> {
        r.iter()
            .map(|r| (r.timestamp - T0).div_euclid(1_000_000_000))
            .collect()
    };
    let mut q = parse_query("*", T0, &settings).unwrap();
    q.order = Order::OldestFirst;
    let first = run_counting(&s.snapshot(), &q, &settings, 4, false).unwrap();
    let Answer::Records { records, total, .. } = first.answer else {
        panic!("records")
    };
    assert_eq!(secs(&records), [-1, 0, 1, 2]);
    assert_eq!(records[0].message, "before all");
    assert_eq!(total, 102);
    // The next page starts after the last one shown, the tie's second entry included.
    let mut next = q.clone();
    next.and_filter(Order::OldestFirst.after(records[3].id()));
    let Answer::Records { records: page2, .. } =
        run_counting(&s.snapshot(), &next, &settings, 3, false)
            .unwrap()
            .answer
    else {
        panic!("records")
    };
    assert_eq!(secs(&page2), [2, 3, 4]);
    assert_eq!(page2[0].message, "same second, later");
    // Only the first blocks are read for a page, whatever the store holds.
    assert!(first.cost.rows_scanned <= 20, "{:?}", first.cost);
    // Newest first is unchanged, with the matching cursor.
    let mut newest = parse_query("agent:web", T0, &settings).unwrap();
    newest.and_filter(Order::NewestFirst.after(records[3].id()));
    let Answer::Records { records: older, .. } =
        run_counting(&s.snapshot(), &newest, &settings, 5, true)
            .unwrap()
            .answer
    else {
        panic!("records")
    };
    assert_eq!(secs(&older), [0]);
}

#[test]
fn time_ranges_skip_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    fill(&s);
    s.flush().unwrap();
    let q = "_time:[2024-01-15T00:00:10Z, 2024-01-15T00:00:20Z)";
    let r = run(&s, q, 0, 100);
    assert_eq!(r.total, 10);
    assert_eq!(r.cost.blocks_skipped_by_time, 9);
}

#[test]
fn summary_and_agents() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    fill(&s);
    let sum = summary(&s.snapshot(), &Filter::All).unwrap();
    assert_eq!(sum.total, 100);
    assert_eq!(sum.by_level["ERROR"], 10);
    assert_eq!(sum.by_agent["db"], 50);
    assert_eq!(sum.oldest, Some(T0));
    assert_eq!(sum.newest, Some(T0 + 99_000_000_000));
    s.flush().unwrap();
    let a = agents(&s.snapshot(), &Filter::All).unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].name, "db");
    assert_eq!(a[0].last_seen, T0 + 99_000_000_000);
    assert_eq!(a[1].levels["ERROR"], 10);
}

fn table(store: &Store, q: &str) -> (Vec<Vec<crate::Cell>>, Cost) {
    let settings = Settings::default();
    let q = parse_query(q, T0, &settings).unwrap();
    let out = crate::run(&store.snapshot(), &q, &settings, 100).unwrap();
    match out.answer {
        Answer::Table(t) => (t.rows, out.cost),
        other => panic!("{other:?}"),
    }
}

/// Sums the counts of a `stats count() by (…)` table (its second column).
fn summed_counts(rows: &[Vec<crate::Cell>]) -> i64 {
    rows.iter()
        .map(|r| match r[1] {
            crate::Cell::Int(n) => n,
            _ => panic!("not a count: {r:?}"),
        })
        .sum()
}

#[test]
fn counts_by_level_and_agent_come_from_block_metadata() {
    use crate::Cell::{Int, Str};
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    fill(&s);
    for flushed in [false, true] {
        if flushed {
            s.flush().unwrap();
        }
        let (rows, cost) = table(&s, "* | stats count() by (level)");
        assert_eq!(
            rows,
            [
                vec![Str("ERROR".into()), Int(10)],
                vec![Str("INFO".into()), Int(90)]
            ]
        );
        assert_eq!(cost.rows_scanned, 0, "flushed {flushed}: {cost:?}");
        let (rows, cost) = table(&s, "* | stats count() by (agent)");
        assert_eq!(
            rows,
            [
                vec![Str("db".into()), Int(50)],
                vec![Str("web".into()), Int(50)]
            ]
        );
        assert_eq!(cost.rows_scanned, 0);
        let (rows, cost) = table(&s, "* | stats count()");
        assert_eq!(rows, [vec![Int(100)]]);
        assert_eq!(cost.rows_scanned, 0);
    }
    // A range that cuts one block: the others are counted from metadata, that one is read.
    let (rows, cost) = table(
        &s,
        "_time:[2024-01-15T00:00:05Z, 2024-01-15T00:01:00Z) | stats count() by (level)",
    );
    assert_eq!(
        rows,
        [
            vec![Str("ERROR".into()), Int(5)],
            vec![Str("INFO".into()), Int(50)]
        ]
    );
    assert_eq!(cost.rows_scanned, 10, "{cost:?}");
    assert_eq!(cost.blocks_skipped_by_time, 4);
    // By agent too: the blocks inside the range summed from metadata, the cut one read,
    // both into the same groups.
    let (rows, cost) = table(
        &s,
        "_time:[2024-01-15T00:00:05Z, 2024-01-15T00:01:00Z) | stats count() by (agent)",
    );
    assert_eq!(summed_counts(&rows), 55, "{rows:?}");
    assert_eq!(rows.len(), 2, "one group per agent: {rows:?}");
    assert_eq!(cost.rows_scanned, 10, "{cost:?}");
    // Grouping by host reads only the host column.
    let (rows, cost) = table(&s, "* | stats count() by (host)");
    assert_eq!(rows, [vec![Str(String::new()), Int(100)]]);
    assert_eq!(cost.rows_scanned, 100);
}

#[test]
fn a_page_reads_only_its_blocks_and_counts_the_rest_from_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    fill(&s);
    s.flush().unwrap();
    // 10 blocks of 10 records, one second apart: the newest 5 are in the newest block.
    // (one ERROR in each block, so 5 of them take 5 blocks).
    for (q, total, rows) in [
        ("*", 100, 10),
        ("level:ERROR", 10, 50),
        ("agent:web", 50, 10),
    ] {
        let r = run(&s, q, 0, 5);
        assert_eq!(r.total, total, "{q}");
        assert!(r.total_exact);
        assert_eq!(r.records.len(), 5);
        assert_eq!(r.cost.rows_scanned, rows, "{q}: {:?}", r.cost);
    }
    // A filter the metadata cannot count: exact when asked, else a lower bound.
    let f = parse_filter("served", T0).unwrap();
    let page = Page {
        offset: 0,
        limit: 5,
    };
    let exact = search_counting(&s.snapshot(), &f, page, Order::NewestFirst, true).unwrap();
    assert_eq!((exact.total, exact.total_exact), (99, true));
    assert_eq!(exact.cost.rows_scanned, 100);
    let cheap = search_counting(&s.snapshot(), &f, page, Order::NewestFirst, false).unwrap();
    assert!(!cheap.total_exact);
    assert_eq!(cheap.total, 10);
    assert_eq!(cheap.cost.rows_scanned, 10);
    let ts = |r: &SearchResult| r.records.iter().map(|r| r.timestamp).collect::<Vec<_>>();
    assert_eq!(ts(&cheap), ts(&exact));
    // Counting reads every block (on as many threads as the machine has cores).
    use crate::Cell::{Int, Str};
    let (rows, cost) = table(&s, "served | stats count() by (agent)");
    assert_eq!(
        rows,
        [
            vec![Str("db".into()), Int(50)],
            vec![Str("web".into()), Int(49)]
        ]
    );
    assert_eq!(cost.rows_scanned, 100);
}

#[test]
fn histograms_count_blocks_inside_one_bucket_from_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    fill(&s);
    s.flush().unwrap();
    let settings = Settings::default();
    let by_level = Some(FieldRef::new("level"));
    // Buckets of 1 minute: blocks of 10 seconds fall in one, except none here cross.
    let (counts, cost, _) = histogram(
        &s.snapshot(),
        &Filter::All,
        60_000_000_000,
        by_level.clone(),
        &settings,
    )
    .unwrap();
    assert_eq!(cost.rows_scanned, 0, "{cost:?}");
    let minute = |m: i64| &counts.buckets[&(T0 + m * 60_000_000_000)];
    assert_eq!(minute(0)[&Some("ERROR".to_string())], 6);
    assert_eq!(minute(0)[&Some("INFO".to_string())], 54);
    assert_eq!(minute(1)[&Some("INFO".to_string())], 36);
    // Buckets of 5 seconds cut every block: they are read, and count the same.
    let f = parse_filter("level:ERROR", T0).unwrap();
    let (fine, cost, _) = histogram(&s.snapshot(), &f, 5_000_000_000, None, &settings).unwrap();
    assert_eq!(cost.rows_scanned, 100);
    let (coarse, cost, _) = histogram(&s.snapshot(), &f, 60_000_000_000, None, &settings).unwrap();
    assert_eq!(cost.rows_scanned, 0);
    let sum = |c: &crate::pipes::HistogramCounts| -> u64 {
        c.buckets.values().flat_map(|m| m.values()).sum()
    };
    assert_eq!((sum(&fine), sum(&coarse)), (10, 10));
}

#[test]
fn records_without_the_sort_field_come_last_in_both_directions() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let records: Vec<Record> = (0..6)
        .map(|i| {
            let mut r = Record::new(T0 + i * 1_000_000_000, format!("request {i}"));
            if i % 2 == 0 {
                r.fields
                    .insert("ms".into(), logyard_model::Value::Int(100 * i));
            }
            r
        })
        .collect();
    s.append(records).unwrap();
    let settings = Settings::default();
    for (q, want) in [
        (
            "* | sort by (ms) desc",
            ["request 4", "request 2", "request 0"],
        ),
        ("* | sort by (ms)", ["request 0", "request 2", "request 4"]),
    ] {
        let q = parse_query(q, T0, &settings).unwrap();
        let out = crate::run(&s.snapshot(), &q, &settings, 100).unwrap();
        let Answer::Records { records, .. } = out.answer else {
            panic!("records expected");
        };
        let messages: Vec<&str> = records.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(messages[..3], want, "{messages:?}");
        assert!(records[3..].iter().all(|r| !r.fields.contains_key("ms")));
    }
}

/// Random records over 48 hours in many small blocks, some flushed to segments (with their
/// messages dictionary-encoded), the rest in the memtable.
fn random_store(dir: &std::path::Path, seed: u64) -> Store {
    let mut c = StoreConfig::new(dir);
    c.storage = logyard_store::testing::storage_for(dir);
    c.retention_days = 0;
    c.block_rows = 16;
    c.flush_interval = std::time::Duration::from_secs(3600);
    let s = Store::open(c).unwrap();
    let words = [
        "error",
        "timeout",
        "connection",
        "refused",
        "user",
        "disk",
        "full",
    ];
    let agents = ["web", "db", "api"];
    let mut x = seed | 1;
    let mut next = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    for batch in 0..4 {
        let records: Vec<Record> = (0..300)
            .map(|_| {
                let n = 1 + next(4) as usize;
                let message: Vec<&str> = (0..n).map(|_| words[next(7) as usize]).collect();
                let mut r = Record::new(
                    T0 + next(48 * 3600) as i64 * 1_000_000_000,
                    message.join(" "),
                );
                r.agent = agents[next(3) as usize].into();
                r.level = Level::from_rank(next(7) as u8);
                r.fields
                    .insert("ms".into(), logyard_model::Value::Int(next(1000) as i64));
                if next(3) == 0 {
                    r.fields
                        .insert("user".into(), logyard_model::Value::Str("ana".into()));
                }
                r
            })
            .collect();
        s.append(records).unwrap();
        if batch < 3 {
            s.flush().unwrap();
        }
    }
    s
}

#[test]
fn parallel_scans_answer_as_the_serial_one() {
    let queries = [
        "\"connection refused\" | histogram 1h",
        "error | histogram 30m by level",
        "~\"time.*user\" | stats count(), sum(ms), avg(ms), p95(ms) by (agent)",
        "* | top 3 agent",
        "level:>=WARNING | patterns",
        "disk | stats count_distinct(user), min(ms), max(ms) by (level, agent)",
        "* | histogram 1h",
        "user:ana | histogram 2h by agent",
        "refused | sort by (ms) desc | limit 5",
    ];
    for seed in [1, 7, 42] {
        let dir = tempfile::tempdir().unwrap();
        let s = random_store(dir.path(), seed);
        let snapshot = s.snapshot();
        assert!(snapshot.blocks.len() > 40, "{}", snapshot.blocks.len());
        let settings = Settings::default();
        for text in queries {
            let q = parse_query(text, T0, &settings).unwrap();
            let answer = |workers| {
                crate::parallel::tests::with_workers(workers, || {
                    let out = crate::run(&snapshot, &q, &settings, 100).unwrap();
                    assert!(out.partial.is_none(), "{text}: {:?}", out.partial);
                    (format!("{:?}", out.answer), out.cost.rows_scanned)
                })
            };
            let serial = answer(1);
            for workers in [2, 3, 4] {
                assert_eq!(answer(workers), serial, "{text} on {workers} threads");
            }
        }
        // The histogram of the API too.
        let f = parse_filter("error OR timeout", T0).unwrap();
        let counts = |workers| {
            crate::parallel::tests::with_workers(workers, || {
                let (c, _, partial) =
                    histogram(&snapshot, &f, 3_600_000_000_000, None, &settings).unwrap();
                assert!(partial.is_none());
                c
            })
        };
        assert_eq!(counts(4), counts(1));
    }
}

#[test]
fn a_parallel_scan_stops_at_the_same_group_budget_as_the_serial_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = random_store(dir.path(), 3);
    let snapshot = s.snapshot();
    let settings = Settings {
        max_groups: 40,
        ..Settings::default()
    };
    let q = parse_query("* | stats count() by (ms)", T0, &settings).unwrap();
    let answer = |workers| {
        crate::parallel::tests::with_workers(workers, || {
            let out = crate::run(&snapshot, &q, &settings, 100).unwrap();
            let reason = out.partial.expect("cut by max_groups");
            assert!(reason.contains("max_groups"), "{reason}");
            format!("{:?}", out.answer)
        })
    };
    let serial = answer(1);
    assert_eq!(answer(2), serial);
    assert_eq!(answer(4), serial);
}

/// The columns a filter reads in a block, as the executor asks for them.
fn columns_read(block: &logyard_store::BlockRef, q: &str) -> logyard_store::Columns {
    let f = parse_filter(q, T0).unwrap();
    f.columns_in(&f.block_texts(block))
}

#[test]
fn words_absent_from_raw_lines_and_fields_read_only_the_messages() {
    use logyard_store::schema::col;
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    fill(&s);
    s.flush().unwrap();
    let snapshot = s.snapshot();
    let block = &snapshot.blocks[0];
    let columns = |q: &str| {
        let c = columns_read(block, q);
        (c.has(col::MESSAGE), c.has(col::RAW), c.has(col::FIELDS))
    };
    // `served` is in every message and no field value; `300` is a status value.
    assert_eq!(columns("served"), (true, false, false));
    assert_eq!(columns("-served"), (true, false, false));
    assert_eq!(columns("\"request 3 served\""), (true, false, false));
    assert_eq!(columns("300"), (true, true, true));
    assert_eq!(columns("served OR 300"), (true, true, true));
    // The answers are those of every column read.
    for (q, want) in [
        ("served", 99),
        ("-served", 1),
        ("\"request 3 served\"", 1),
        ("300", 33),
        ("served 300", 33),
        ("NOT (served OR 300)", 1),
    ] {
        assert_eq!(run(&s, q, 0, 0).total, want, "{q}");
        let f = parse_filter(q, T0).unwrap();
        let whole: usize = snapshot
            .blocks
            .iter()
            .map(|b| {
                let batch = b.read(f.columns()).unwrap();
                f.eval(&batch).iter().filter(|m| **m).count()
            })
            .sum();
        assert_eq!(whole as u64, want, "{q}");
    }
}

#[test]
fn a_count_reads_the_timestamps_only_when_it_filters_by_time() {
    use crate::Cell::Int;
    use logyard_store::schema::col;
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    fill(&s);
    s.flush().unwrap();
    let snapshot = s.snapshot();
    let block = &snapshot.blocks[0];
    let time_columns = |q: &str| {
        let c = columns_read(block, q);
        (c.has(col::TIMESTAMP), c.has(col::SEQ))
    };
    let range = "_time:[2024-01-15T00:00:05Z, 2024-01-15T00:01:00Z)";
    assert_eq!(time_columns("served"), (false, false));
    assert_eq!(time_columns("~\"request [0-9]+\""), (false, false));
    assert_eq!(time_columns(&format!("{range} served")), (true, false));
    assert_eq!(time_columns(&format!("served OR {range}")), (true, false));
    // Records 5 to 59 are in the range; record 42's message is the needle's.
    for (q, want) in [
        ("served | stats count()".to_string(), 99),
        ("NOT served | stats count()".to_string(), 1),
        (format!("{range} served | stats count()"), 54),
        (format!("served -{range} | stats count()"), 45),
    ] {
        let (rows, _) = table(&s, &q);
        assert_eq!(rows, [vec![Int(want)]], "{q}");
    }
}

#[test]
fn counts_add_whole_segments_partial_segments_and_the_memtable_alike() {
    use crate::Cell::{Int, Str};
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    // Two segments and a memtable batch with the same 100 records each.
    fill(&s);
    s.flush().unwrap();
    fill(&s);
    s.flush().unwrap();
    fill(&s);
    let count = |rows: &[Vec<crate::Cell>], key: &str| {
        rows.iter()
            .find(|r| r[0] == Str(key.into()))
            .map(|r| r[1].clone())
    };
    let (rows, cost) = table(&s, "* | stats count() by (agent)");
    assert_eq!(count(&rows, "web"), Some(Int(150)), "{rows:?}");
    assert_eq!(count(&rows, "db"), Some(Int(150)), "{rows:?}");
    assert_eq!(cost.rows_scanned, 0, "{cost:?}");
    let (rows, cost) = table(&s, "* | stats count() by (level)");
    assert_eq!(count(&rows, "ERROR"), Some(Int(30)), "{rows:?}");
    assert_eq!(count(&rows, "INFO"), Some(Int(270)), "{rows:?}");
    assert_eq!(cost.rows_scanned, 0, "{cost:?}");
    // A range that cuts a block of each segment and the memtable batch (one block): the
    // blocks inside it counted from metadata, the cut ones read.
    let (rows, cost) = table(
        &s,
        "_time:[2024-01-15T00:00:05Z, 2024-01-15T00:01:00Z) | stats count() by (agent)",
    );
    assert_eq!(summed_counts(&rows), 3 * 55, "{rows:?}");
    assert_eq!(cost.rows_scanned, 2 * 10 + 100, "{cost:?}");
}

/// A page whose rows are found but whose whole records cannot be read any more (the bucket
/// went away between the two reads) is answered without them, saying so.
#[test]
fn records_the_bucket_no_longer_serves_are_left_out_of_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = logyard_store::MemoryDir::new();
    let mut c = StoreConfig::new(dir.path());
    c.storage = logyard_store::Storage::Dir(std::sync::Arc::new(bucket.clone()));
    c.retention_days = 0;
    c.block_rows = 10;
    c.flush_interval = std::time::Duration::from_secs(3600);
    let store = Store::open(c).unwrap();
    fill(&store);
    store.flush().unwrap();
    let snap = store.snapshot();
    let filter = parse_filter("served", T0 + 1000 * 1_000_000_000).unwrap();
    // The first search reads the message, time and sequence columns of every block, which
    // the cache keeps, and the whole records of the newest block only.
    let first = search(
        &snap,
        &filter,
        Page {
            offset: 0,
            limit: 1,
        },
    )
    .unwrap();
    assert_eq!(first.records.len(), 1);
    assert!(first.cost.segments_unreachable.is_empty());
    bucket.fail(logyard_store::dir::DirOp::Get, u64::MAX);
    let deep = search(
        &snap,
        &filter,
        Page {
            offset: 50,
            limit: 5,
        },
    )
    .unwrap();
    assert!(deep.records.is_empty(), "{:?}", deep.records);
    assert_eq!(deep.total, 99, "the matches are still counted");
    assert_eq!(deep.cost.segments_unreachable.len(), 1, "{:?}", deep.cost);
    assert!(deep.cost.unreadable_reason().is_some());
}
