//! Differential test: the executor (block skipping, segments and memtable, streaming pipes)
//! answers what a naive evaluation over every record answers.

use std::collections::{BTreeMap, HashMap, HashSet};

use logyard_model::{Level, Record, Value};
use logyard_query::{
    parse_query, run, Answer, Cell, FieldRef, Filter, LabelColumn, LevelOp, Settings,
};
use logyard_store::field_columns::{records_to_batch_with, FieldColumn, FieldColumnRule};
use logyard_store::schema::records_to_batch;
use logyard_store::{Store, StoreConfig};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const T0: i64 = 1_705_276_800_000_000_000; // 2024-01-15T00:00:00Z
const HOUR: i64 = 3_600_000_000_000;
const WORDS: [&str; 9] = [
    "error",
    "timeout",
    "connection",
    "refused",
    "user",
    "42",
    "NEEDLE-7",
    "disk",
    "full",
];
const AGENTS: [&str; 4] = ["web", "db", "api", "worker"];

fn record_strategy() -> impl Strategy<Value = Record> {
    (
        0..48 * HOUR,
        proptest::collection::vec(0..WORDS.len(), 1..5),
        0..7usize,
        0..AGENTS.len(),
        any::<bool>(),
        0..4usize,
        0..3usize,
        0..1000i64,
        0..5usize,
    )
        .prop_map(|(dt, words, level, agent, host, status, user, ms, ratio)| {
            let message: Vec<&str> = words.iter().map(|&w| WORDS[w]).collect();
            let mut r = Record::new(T0 + dt - dt % 1_000_000, message.join(" "));
            r.level = Level::from_rank(level as u8);
            r.agent = AGENTS[agent].into();
            r.host = if host { "h1" } else { "h2" }.into();
            r.source = format!("file:/var/log/{}.log", AGENTS[agent]);
            if status < 3 {
                r.fields
                    .insert("status".into(), Value::Int([200, 404, 500][status]));
            }
            if ratio < 3 {
                r.fields
                    .insert("ratio".into(), Value::Float([0.25, 0.5, 1.0][ratio]));
            } else if ratio == 3 {
                // A key whose values are not all of one type (not grouped by: which of two
                // equal values of two types names a group depends on the order of rows).
                r.fields.insert("ratio".into(), Value::Str("1.0".into()));
            }
            if user < 2 {
                r.fields
                    .insert("user".into(), Value::Str(["ana", "bob"][user].into()));
            }
            r.fields.insert("ms".into(), Value::Int(ms));
            r
        })
}

fn term_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        (0..WORDS.len()).prop_map(|w| WORDS[w].to_string()),
        Just("\"connection refused\"".to_string()),
        Just("\"disk full\"".to_string()),
        Just("status:500".to_string()),
        Just("status:4*".to_string()),
        Just("status:>=404".to_string()),
        Just("ms:<100".to_string()),
        Just("ms:>=250.5".to_string()),
        Just("user:ana".to_string()),
        Just("ratio:1.0".to_string()),
        Just("ratio:>=0.5".to_string()),
        Just("\"1.0\"".to_string()),
        (0..AGENTS.len()).prop_map(|a| format!("agent:{}", AGENTS[a])),
        Just("agent:w*".to_string()),
        Just("host:h1".to_string()),
        Just("level:ERROR".to_string()),
        Just("level:>=WARNING".to_string()),
        Just("level:<INFO".to_string()),
        (0..48i64, 1..30i64).prop_map(|(a, len)| format!(
            "_time:[{}, {})",
            logyard_model::format_rfc3339(T0 + a * HOUR),
            logyard_model::format_rfc3339(T0 + (a + len) * HOUR)
        )),
        Just("~\"conn.*refused\"".to_string()),
        Just("ana".to_string()),
        Just("NEEDLE".to_string()),
        Just("500".to_string()),
        Just("\"user error\"".to_string()),
    ]
}

fn filter_strategy() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        term_strategy(),
        term_strategy().prop_map(|t| format!("-{t}")),
        Just("*".to_string()),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} OR {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} AND {b}")),
            inner.prop_map(|a| format!("NOT ({a})")),
        ]
    })
}

const PIPES: [&str; 16] = [
    "",
    " | stats count()",
    " | stats count() by (level)",
    " | stats count() by (agent, level)",
    " | stats count(), sum(ms), min(ms), max(ms), p50(ms), p95(ms), count_distinct(user), count(status) by (agent)",
    " | stats avg(ms) as mean, max(_time) by (host)",
    " | top 3 agent",
    " | top 5 status",
    " | limit 7",
    " | stats count() by (status, user)",
    " | histogram 2h by level",
    " | patterns",
    " | sort by (ms) desc | limit 5",
    " | limit 10 | stats count() by (agent)",
    " | stats count() by (agent)",
    " | stats count() by (host)",
];

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii()
}

/// Whether `needle` occurs in `text` with no token character glued to a word-like end.
fn at_boundaries(text: &str, needle: &str) -> bool {
    let starts_word = needle.starts_with(is_token_char);
    let ends_word = needle.ends_with(is_token_char);
    text.match_indices(needle).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + needle.len()..].chars().next();
        (!starts_word || !before.is_some_and(is_token_char))
            && (!ends_word || !after.is_some_and(is_token_char))
    })
}

/// Evaluates a filter on one record, written apart from the executor's columnar evaluation.
fn matches(f: &Filter, r: &Record) -> bool {
    let text_of = |v: &Value| match v {
        Value::Str(s) => s.clone(),
        other => other.to_json().to_string(),
    };
    let like = |actual: &str, value: &str, prefix: bool| {
        if prefix {
            actual.starts_with(value)
        } else {
            actual == value
        }
    };
    match f {
        Filter::All => true,
        Filter::Text(t) => {
            at_boundaries(&r.message, t)
                || r.raw.as_deref().is_some_and(|raw| at_boundaries(raw, t))
                || r.fields.values().any(|v| at_boundaries(&text_of(v), t))
        }
        Filter::Regex(re) => re.is_match(&r.message),
        Filter::Label {
            column,
            value,
            prefix,
        } => {
            let actual = match column {
                LabelColumn::Agent => &r.agent,
                LabelColumn::Host => &r.host,
                LabelColumn::Source => &r.source,
            };
            like(actual, value, *prefix)
        }
        Filter::Field {
            name,
            value,
            prefix,
        } => r
            .fields
            .get(name)
            .is_some_and(|v| like(&text_of(v), value, *prefix)),
        Filter::FieldCmp { name, op, bound } => r.fields.get(name).is_some_and(|v| {
            let x = match v {
                Value::Int(i) => *i as f64,
                Value::Float(f) => *f,
                Value::Str(s) => match s.trim().parse::<f64>() {
                    Ok(x) => x,
                    Err(_) => return false,
                },
                Value::Bool(_) => return false,
            };
            match op {
                LevelOp::Eq => x == *bound,
                LevelOp::Ge => x >= *bound,
                LevelOp::Gt => x > *bound,
                LevelOp::Le => x <= *bound,
                LevelOp::Lt => x < *bound,
            }
        }),
        Filter::Level(op, bound) => r.level.is_some_and(|l| match op {
            LevelOp::Eq => l == *bound,
            LevelOp::Ge => l >= *bound,
            LevelOp::Gt => l > *bound,
            LevelOp::Le => l <= *bound,
            LevelOp::Lt => l < *bound,
        }),
        Filter::Time { start, end } => {
            start.is_none_or(|s| r.timestamp >= s) && end.is_none_or(|e| r.timestamp < e)
        }
        Filter::Before(id) => (r.timestamp, r.seq) < (id.timestamp, id.seq),
        Filter::After(id) => (r.timestamp, r.seq) > (id.timestamp, id.seq),
        Filter::And(fs) => fs.iter().all(|f| matches(f, r)),
        Filter::Or(fs) => fs.iter().any(|f| matches(f, r)),
        Filter::Not(f) => !matches(f, r),
    }
}

/// The naive answer: filter every record, then aggregate in the simplest way.
fn naive(records: &[Record], query: &str) -> Answer {
    let q = parse_query(query, T0, &Settings::default()).unwrap();
    let matching: Vec<&Record> = records.iter().filter(|r| matches(&q.filter, r)).collect();
    // The columnar evaluation over all records in one block agrees with the record one.
    let mask = q.filter.eval(&records_to_batch(records));
    assert_eq!(
        mask.iter().filter(|m| **m).count(),
        matching.len(),
        "columnar and per-record evaluation differ on {query}"
    );
    // And on a block of a segment whose frequent fields are columns of their own, some of
    // them (the others, and values of another type than their column's, in `fields`).
    let typed = FieldColumn::choose(
        records,
        FieldColumnRule {
            max: 2,
            min_share: 0.2,
        },
    );
    assert_eq!(
        q.filter.eval(&records_to_batch_with(records, &typed)),
        mask,
        "columnar evaluation over field columns {typed:?} differs on {query}"
    );
    // So do the executor's own per-record evaluation and the memtable matching of the
    // tail and the alert rules (cheap conditions on columns, the rest per record).
    for (r, m) in records.iter().zip(&mask) {
        assert_eq!(
            q.filter.matches_record(r),
            *m,
            "matches_record differs on {query}: {r:?}"
        );
    }
    let mut numbered = records.to_vec();
    for (i, r) in numbered.iter_mut().enumerate() {
        r.seq = i as u64;
    }
    let batch = logyard_store::MemBatch::new(numbered);
    let matched: Vec<u64> = logyard_query::matching_records(&q.filter, &batch)
        .iter()
        .map(|r| r.seq)
        .collect();
    let want: Vec<u64> = (0..records.len() as u64)
        .filter(|&i| mask[i as usize])
        .collect();
    assert_eq!(matched, want, "matching_records differs on {query}");
    let pipe = query.split(" | ").nth(1).unwrap_or("");
    let columns = q.columns();
    if pipe == "sort by (ms) desc" {
        let mut sorted = matching.clone();
        let ms = |r: &Record| match r.fields.get("ms") {
            Some(Value::Int(i)) => *i,
            _ => unreachable!(),
        };
        sorted.sort_by_key(|r| std::cmp::Reverse((ms(r), r.timestamp)));
        return Answer::Records {
            total_exact: true,
            total: matching.len().min(5) as u64,
            records: sorted.into_iter().take(5).cloned().collect(),
        };
    }
    if pipe == "limit 10" {
        let mut newest = matching.clone();
        newest.sort_by_key(|r| std::cmp::Reverse(r.timestamp));
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        for r in newest.iter().take(10) {
            *counts.entry(r.agent.clone()).or_default() += 1;
        }
        return Answer::Table(logyard_query::Table {
            columns: columns.unwrap(),
            rows: counts
                .into_iter()
                .map(|(a, n)| vec![Cell::Str(a), Cell::Int(n)])
                .collect(),
        });
    }
    if pipe.starts_with("histogram") {
        let mut counts: BTreeMap<(i64, Option<String>), (Cell, i64)> = BTreeMap::new();
        for r in &matching {
            let t = r.timestamp.div_euclid(2 * HOUR) * 2 * HOUR;
            let level = FieldRef::new("level").of_record(r);
            counts.entry((t, level.key_text())).or_insert((level, 0)).1 += 1;
        }
        let mut rows: Vec<Vec<Cell>> = counts
            .into_iter()
            .map(|((t, _), (l, n))| vec![Cell::Time(t), l, Cell::Int(n)])
            .collect();
        rows.sort_by(|a, b| a[0].total_cmp(&b[0]).then_with(|| a[1].total_cmp(&b[1])));
        return Answer::Table(logyard_query::Table {
            columns: columns.unwrap(),
            rows,
        });
    }
    if pipe == "patterns" {
        let mut counts: HashMap<String, i64> = HashMap::new();
        for r in &matching {
            *counts
                .entry(logyard_query::template(&r.message))
                .or_default() += 1;
        }
        let mut rows: Vec<(String, i64)> = counts.into_iter().collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        return Answer::Table(logyard_query::Table {
            columns: columns.unwrap(),
            rows: rows
                .into_iter()
                .map(|(p, n)| vec![Cell::Str(p), Cell::Int(n), Cell::Null])
                .collect(),
        });
    }
    if pipe.is_empty() || pipe.starts_with("limit") {
        let mut ts: Vec<&Record> = matching.clone();
        ts.sort_by_key(|r| std::cmp::Reverse(r.timestamp));
        let k = if pipe.is_empty() { 50 } else { 7 };
        let total = if pipe.is_empty() {
            matching.len()
        } else {
            matching.len().min(7)
        };
        return Answer::Records {
            records: ts.into_iter().take(k).cloned().collect(),
            total: total as u64,
            total_exact: true,
        };
    }
    let columns = columns.unwrap();
    if let Some(rest) = pipe.strip_prefix("top ") {
        let (n, field) = rest.split_once(' ').unwrap();
        let f = FieldRef::new(field);
        let mut counts: HashMap<Option<String>, (Cell, i64)> = HashMap::new();
        for r in &matching {
            let c = f.of_record(r);
            counts.entry(c.key_text()).or_insert((c, 0)).1 += 1;
        }
        let mut rows: Vec<(Cell, i64)> = counts.into_values().collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.total_cmp(&b.0)));
        rows.truncate(n.parse().unwrap());
        return Answer::Table(logyard_query::Table {
            columns,
            rows: rows
                .into_iter()
                .map(|(c, n)| vec![c, Cell::Int(n)])
                .collect(),
        });
    }
    // stats
    let Some(logyard_query::Pipe::Stats(stats)) = q.pipes.first() else {
        unreachable!()
    };
    type Groups<'a> = BTreeMap<Vec<Option<String>>, (Vec<Cell>, Vec<&'a Record>)>;
    let mut groups: Groups<'_> = BTreeMap::new();
    for r in &matching {
        let key: Vec<Cell> = stats.by.iter().map(|f| f.of_record(r)).collect();
        let text = key.iter().map(Cell::key_text).collect();
        groups.entry(text).or_insert((key, Vec::new())).1.push(r);
    }
    if groups.is_empty() && stats.by.is_empty() {
        groups.insert(Vec::new(), (Vec::new(), Vec::new()));
    }
    let mut rows = Vec::new();
    for (_, (key, recs)) in groups {
        let mut row = key;
        for s in &stats.stats {
            let values: Vec<Cell> = match &s.field {
                Some(f) => recs
                    .iter()
                    .map(|r| f.of_record(r))
                    .filter(|c| *c != Cell::Null)
                    .collect(),
                None => Vec::new(),
            };
            let nums: Vec<f64> = values.iter().filter_map(Cell::as_f64).collect();
            use logyard_query::pipes::StatFn;
            row.push(match s.func {
                StatFn::Count if s.field.is_none() => Cell::Int(recs.len() as i64),
                StatFn::Count => Cell::Int(values.len() as i64),
                StatFn::CountDistinct => Cell::Int(
                    values
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<HashSet<_>>()
                        .len() as i64,
                ),
                _ if values.is_empty() => Cell::Null,
                StatFn::Sum => Cell::number(nums.iter().sum()),
                StatFn::Avg => Cell::Float(nums.iter().sum::<f64>() / nums.len() as f64),
                StatFn::Min => values
                    .iter()
                    .min_by(|a, b| a.total_cmp(b))
                    .cloned()
                    .unwrap(),
                StatFn::Max => values
                    .iter()
                    .max_by(|a, b| a.total_cmp(b))
                    .cloned()
                    .unwrap(),
                StatFn::Percentile(p) => {
                    let mut v = nums.clone();
                    v.sort_by(f64::total_cmp);
                    let rank = ((f64::from(p) / 100.0) * v.len() as f64).ceil() as usize;
                    Cell::number(v[rank.clamp(1, v.len()) - 1])
                }
            });
        }
        rows.push(row);
    }
    let nby = stats.by.len();
    rows.sort_by(|a, b| {
        a[..nby]
            .iter()
            .zip(&b[..nby])
            .map(|(x, y)| x.total_cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    Answer::Table(logyard_query::Table { columns, rows })
}

fn same(got: &Answer, want: &Answer, query: &str) -> Result<(), TestCaseError> {
    match (got, want) {
        (
            Answer::Records {
                records: g,
                total: gt,
                ..
            },
            Answer::Records {
                records: w,
                total: wt,
                ..
            },
        ) => {
            prop_assert_eq!(gt, wt, "total of {}", query);
            let gts: Vec<i64> = g.iter().map(|r| r.timestamp).collect();
            let wts: Vec<i64> = w.iter().map(|r| r.timestamp).collect();
            prop_assert_eq!(gts, wts, "timestamps of {}", query);
        }
        (Answer::Table(g), Answer::Table(w)) => {
            prop_assert_eq!(&g.columns, &w.columns, "columns of {}", query);
            prop_assert_eq!(
                g.rows.len(),
                w.rows.len(),
                "rows of {}: {:?} vs {:?}",
                query,
                g.rows,
                w.rows
            );
            let example = g.columns.iter().position(|c| c == "example");
            for (a, b) in g.rows.iter().zip(&w.rows) {
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    if Some(i) == example {
                        continue;
                    }
                    let close = match (x.as_f64(), y.as_f64()) {
                        (Some(p), Some(q))
                            if matches!(x, Cell::Float(_)) || matches!(y, Cell::Float(_)) =>
                        {
                            (p - q).abs() <= 1e-9 * p.abs().max(1.0)
                        }
                        _ => x == y,
                    };
                    prop_assert!(close, "{}: {:?} vs {:?}", query, g.rows, w.rows);
                }
            }
        }
        _ => prop_assert!(false, "{query}: answers of different kinds"),
    }
    Ok(())
}

#[test]
fn executor_matches_naive_evaluation() {
    let mut runner = TestRunner::new(Config {
        cases: 12,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        proptest::collection::vec(proptest::collection::vec(record_strategy(), 1..60), 1..6),
        proptest::collection::vec(any::<bool>(), 6),
        proptest::collection::vec((filter_strategy(), 0..PIPES.len()), 25),
    );
    runner
        .run(&strategy, |(batches, flushes, queries)| {
            let dir = tempfile::tempdir().unwrap();
            let mut config = StoreConfig::new(dir.path());
            config.storage = logyard_store::testing::storage_for(dir.path());
            config.retention_days = 0;
            config.block_rows = 8;
            config.flush_interval = std::time::Duration::from_secs(3600);
            let store = Store::open(config).unwrap();
            let mut all = Vec::new();
            for (i, batch) in batches.iter().enumerate() {
                store.append(batch.clone()).unwrap();
                all.extend(batch.iter().cloned());
                if flushes[i] {
                    store.flush().unwrap();
                }
            }
            let snapshot = store.snapshot();
            // The paths answered from block metadata need a filter that keeps whole blocks.
            let fixed = [
                ("*".to_string(), 2),
                ("*".to_string(), 14),
                ("*".to_string(), 1),
                (
                    "_time:[2024-01-15T05:00:00Z, 2024-01-16T06:00:00Z)".to_string(),
                    2,
                ),
                (
                    "_time:[2024-01-15T05:00:00Z, 2024-01-16T06:00:00Z)".to_string(),
                    14,
                ),
            ];
            for (filter, pipe) in queries.iter().chain(&fixed) {
                let text = format!("{filter}{}", PIPES[*pipe]);
                let q = parse_query(&text, T0, &Settings::default()).unwrap();
                let got = run(&snapshot, &q, &Settings::default(), 50).unwrap();
                prop_assert!(got.partial.is_none());
                let want = naive(&all, &text);
                same(&got.answer, &want, &text)?;
                // Counting only as far as cheap: the same records, and a total that is
                // exact when it says so and a lower bound otherwise.
                let cheap =
                    logyard_query::run_counting(&snapshot, &q, &Settings::default(), 50, false)
                        .unwrap();
                if let (
                    Answer::Records {
                        records: c,
                        total: ct,
                        total_exact,
                    },
                    Answer::Records {
                        records: w,
                        total: wt,
                        ..
                    },
                ) = (&cheap.answer, &want)
                {
                    let cts: Vec<i64> = c.iter().map(|r| r.timestamp).collect();
                    let wts: Vec<i64> = w.iter().map(|r| r.timestamp).collect();
                    prop_assert_eq!(cts, wts, "records of {} counted cheaply", text);
                    if *total_exact {
                        prop_assert_eq!(ct, wt, "exact total of {}", text);
                    } else {
                        prop_assert!(ct <= wt, "lower bound of {}: {} > {}", text, ct, wt);
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}
