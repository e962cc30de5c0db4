//! Executor tests over a real store.

use super::*;
use logyard_model::Level;
use logyard_store::{Store, StoreConfig};

const T0: i64 = 1_705_276_800_000_000_000;

fn store(dir: &std::path::Path) -> Store {
    let mut c = StoreConfig::new(dir);
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
    let exact = search_counting(&s.snapshot(), &f, page, true).unwrap();
    assert_eq!((exact.total, exact.total_exact), (99, true));
    assert_eq!(exact.cost.rows_scanned, 100);
    let cheap = search_counting(&s.snapshot(), &f, page, false).unwrap();
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
