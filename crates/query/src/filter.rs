//! Filters: the expression tree that selects records, and its evaluation over a block.

use std::collections::HashSet;

use arrow_array::types::Int32Type;
use arrow_array::{Array, DictionaryArray, RecordBatch, StringArray};
use logyard_model::{hash_token, text_hashes, tokenize, Level, Record, RecordId};
use logyard_store::field_columns::{FieldArray, StoredFields};
use logyard_store::schema::{col, string_at, timestamps};
use logyard_store::{BlockRef, Columns};
use memchr::memmem;
use regex::Regex;

use crate::keys::FieldKeys;

/// A comparison of a level with a bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelOp {
    /// Exactly this level.
    Eq,
    /// This level or more severe.
    Ge,
    /// More severe.
    Gt,
    /// This level or less severe.
    Le,
    /// Less severe.
    Lt,
}

impl LevelOp {
    /// Returns whether `value` stands in this relation to `bound`.
    pub fn holds<T: PartialOrd>(self, value: T, bound: T) -> bool {
        match self {
            LevelOp::Eq => value == bound,
            LevelOp::Ge => value >= bound,
            LevelOp::Gt => value > bound,
            LevelOp::Le => value <= bound,
            LevelOp::Lt => value < bound,
        }
    }
}

/// A filter expression over records.
#[derive(Debug, Clone)]
pub enum Filter {
    /// Every record.
    All,
    /// A word or phrase, matched case-sensitively at token boundaries in the message, the raw
    /// line and the field values.
    Text(String),
    /// A regular expression over the message.
    Regex(Regex),
    /// `agent`, `host` or `source` equal to a value, or starting with it when `prefix`.
    Label {
        /// Which column.
        column: LabelColumn,
        /// The value.
        value: String,
        /// Match values that start with `value`.
        prefix: bool,
    },
    /// A key of the record's fields equal to a value (compared as text), or starting with it
    /// when `prefix`.
    Field {
        /// The field's key.
        name: String,
        /// The value, as text.
        value: String,
        /// Match values that start with `value`.
        prefix: bool,
    },
    /// A field compared as a number with a bound (`status:>=500`, `response_time_ms:>1000`);
    /// records whose field is absent or not a number never match.
    FieldCmp {
        /// The field's key.
        name: String,
        /// How the value compares with the bound.
        op: LevelOp,
        /// The bound.
        bound: f64,
    },
    /// The level compared with a bound; records without a level never match.
    Level(LevelOp, Level),
    /// Timestamps in `[start, end)`.
    Time {
        /// Inclusive lower bound, ns.
        start: Option<i64>,
        /// Exclusive upper bound, ns.
        end: Option<i64>,
    },
    /// Records older than an id: `(timestamp, seq) < (id.timestamp, id.seq)`; the paging cursor.
    Before(RecordId),
    /// Records newer than an id: `(timestamp, seq) > (id.timestamp, id.seq)`; the paging
    /// cursor of the oldest first.
    After(RecordId),
    /// Every one of the filters.
    And(Vec<Filter>),
    /// Any of the filters.
    Or(Vec<Filter>),
    /// Not the filter.
    Not(Box<Filter>),
}

/// What a block's token filters tell of a filter's words and phrases.
#[derive(Debug, Clone, Default)]
pub(crate) struct BlockTexts {
    /// The words and phrases certainly absent from the block's raw lines and field values:
    /// only its messages can hold them.
    message_only: Vec<String>,
}

/// The dictionary-encoded label columns a filter can compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelColumn {
    /// The agent.
    Agent,
    /// The host.
    Host,
    /// The source.
    Source,
}

impl LabelColumn {
    fn index(self) -> usize {
        match self {
            LabelColumn::Agent => col::AGENT,
            LabelColumn::Host => col::HOST,
            LabelColumn::Source => col::SOURCE,
        }
    }
}

impl Filter {
    /// Returns the conjunction of filters, dropping `All`.
    pub fn and(filters: Vec<Filter>) -> Filter {
        let mut parts: Vec<Filter> = filters
            .into_iter()
            .filter(|f| !matches!(f, Filter::All))
            .collect();
        match parts.len() {
            0 => Filter::All,
            1 => parts.pop().expect("one part"),
            _ => Filter::And(parts),
        }
    }

    /// Returns the columns the filter reads (timestamp and seq always included).
    pub fn columns(&self) -> Columns {
        self.columns_in(&BlockTexts::default())
            .with(Columns::of(&[col::TIMESTAMP, col::SEQ]))
    }

    /// Returns the columns the filter itself reads in a block of which `texts` is known:
    /// the timestamp (and seq) only when it filters by time, so that a count of a phrase
    /// decodes the messages alone.
    pub(crate) fn columns_in(&self, texts: &BlockTexts) -> Columns {
        let mut set = Columns(0);
        self.add_columns(&mut set, texts);
        set
    }

    /// Returns the keys of the field columns the filter reads in a block of which `texts`
    /// is known: a word searched in field values reads every one.
    pub(crate) fn field_keys_in(&self, texts: &BlockTexts) -> FieldKeys {
        match self {
            Filter::Text(t) if !texts.message_only.contains(t) => FieldKeys::All,
            Filter::Field { name, .. } | Filter::FieldCmp { name, .. } => {
                FieldKeys::of([name.clone()])
            }
            Filter::And(fs) | Filter::Or(fs) => fs.iter().fold(FieldKeys::none(), |keys, f| {
                keys.union(&f.field_keys_in(texts))
            }),
            Filter::Not(f) => f.field_keys_in(texts),
            _ => FieldKeys::none(),
        }
    }

    /// Returns what a block's token filters tell of the filter's words and phrases: those
    /// certainly absent from its raw lines and field values.
    pub(crate) fn block_texts(&self, block: &BlockRef) -> BlockTexts {
        let mut out = BlockTexts::default();
        self.add_block_texts(block, &mut out);
        out
    }

    fn add_block_texts(&self, block: &BlockRef, out: &mut BlockTexts) {
        match self {
            Filter::Text(t) => {
                let mut hashes = Vec::new();
                text_hashes(t, |h| hashes.push(h));
                if !hashes.is_empty()
                    && !block.others_may_contain_all(&hashes)
                    && !out.message_only.contains(t)
                {
                    out.message_only.push(t.clone());
                }
            }
            Filter::And(fs) | Filter::Or(fs) => {
                fs.iter().for_each(|f| f.add_block_texts(block, out))
            }
            Filter::Not(f) => f.add_block_texts(block, out),
            _ => {}
        }
    }

    fn add_columns(&self, set: &mut Columns, texts: &BlockTexts) {
        match self {
            Filter::All => {}
            Filter::Time { .. } => set.0 |= Columns::of(&[col::TIMESTAMP]).0,
            Filter::Before(_) | Filter::After(_) => {
                set.0 |= Columns::of(&[col::TIMESTAMP, col::SEQ]).0
            }
            Filter::Text(t) if texts.message_only.contains(t) => {
                set.0 |= Columns::of(&[col::MESSAGE]).0
            }
            Filter::Text(_) => set.0 |= Columns::of(&[col::MESSAGE, col::RAW, col::FIELDS]).0,
            Filter::Regex(_) => set.0 |= Columns::of(&[col::MESSAGE]).0,
            Filter::Label { column, .. } => set.0 |= Columns::of(&[column.index()]).0,
            Filter::Level(..) => set.0 |= Columns::of(&[col::LEVEL]).0,
            Filter::Field { .. } | Filter::FieldCmp { .. } => {
                set.0 |= Columns::of(&[col::FIELDS]).0
            }
            Filter::And(fs) | Filter::Or(fs) => fs.iter().for_each(|f| f.add_columns(set, texts)),
            Filter::Not(f) => f.add_columns(set, texts),
        }
    }

    /// Returns the time range every match lies in, `(start, end)` with `end` exclusive.
    pub fn time_bounds(&self) -> (Option<i64>, Option<i64>) {
        match self {
            Filter::Time { start, end } => (*start, *end),
            Filter::Before(id) => (None, Some(id.timestamp.saturating_add(1))),
            Filter::After(id) => (Some(id.timestamp), None),
            Filter::And(fs) => fs.iter().fold((None, None), |(s, e), f| {
                let (fs_, fe) = f.time_bounds();
                (max_opt(s, fs_), min_opt(e, fe))
            }),
            _ => (None, None),
        }
    }

    /// Returns token hashes that every matching record must contain, for block skipping.
    pub fn required_tokens(&self) -> Vec<u64> {
        let mut out = HashSet::new();
        self.add_required(&mut out);
        out.into_iter().collect()
    }

    fn add_required(&self, out: &mut HashSet<u64>) {
        match self {
            Filter::Text(t) => text_hashes(t, |h| {
                out.insert(h);
            }),
            Filter::Label {
                value,
                prefix: false,
                ..
            } => {
                // Only whole tokens: a label value's tokens are all indexed.
                text_hashes(value, |h| {
                    out.insert(h);
                });
            }
            Filter::Field {
                value,
                prefix: false,
                ..
            } => text_hashes(value, |h| {
                out.insert(h);
            }),
            Filter::Regex(re) => {
                if let Some(lit) = literal_of(re.as_str()) {
                    // Only the inner tokens: the first and last may be parts of longer ones.
                    let tokens: Vec<&str> = tokenize(&lit).collect();
                    if tokens.len() > 2 {
                        out.extend(tokens[1..tokens.len() - 1].iter().map(|t| hash_token(t)));
                    }
                }
            }
            Filter::And(fs) => fs.iter().for_each(|f| f.add_required(out)),
            _ => {}
        }
    }

    /// Says whether the filter reads only cheap columns: time, sequence and the
    /// dictionary-encoded labels (level, agent, host, source).
    pub fn is_cheap(&self) -> bool {
        let cheap = Columns::of(&[
            col::TIMESTAMP,
            col::SEQ,
            col::LEVEL,
            col::AGENT,
            col::HOST,
            col::SOURCE,
        ]);
        self.columns().0 & !cheap.0 == 0
    }

    /// Evaluates the filter on one record; the same answer as [`Filter::eval`] on the
    /// record's row.
    pub fn matches_record(&self, r: &Record) -> bool {
        fn text_of(v: &logyard_model::Value) -> std::borrow::Cow<'_, str> {
            match v {
                logyard_model::Value::Str(s) => std::borrow::Cow::Borrowed(s.as_str()),
                other => std::borrow::Cow::Owned(other.to_json().to_string()),
            }
        }
        match self {
            Filter::All => true,
            Filter::Text(t) => {
                // Most texts do not hold the needle at all: a plain search first, the
                // boundary check (and its searcher) only for those that do.
                let found = |s: &str| {
                    s.contains(t.as_str())
                        && contains_at_boundaries(&memmem::Finder::new(t.as_bytes()), s)
                };
                found(&r.message)
                    || r.raw.as_deref().is_some_and(found)
                    || r.fields.values().any(|v| found(&text_of(v)))
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
                    logyard_model::Value::Int(i) => *i as f64,
                    logyard_model::Value::Float(f) => *f,
                    logyard_model::Value::Str(s) => match s.trim().parse::<f64>() {
                        Ok(x) => x,
                        Err(_) => return false,
                    },
                    logyard_model::Value::Bool(_) => return false,
                };
                op.holds(x, *bound)
            }),
            Filter::Level(op, bound) => r.level.is_some_and(|l| compare(l, *op, *bound)),
            Filter::Time { start, end } => {
                start.is_none_or(|s| r.timestamp >= s) && end.is_none_or(|e| r.timestamp < e)
            }
            Filter::Before(id) => (r.timestamp, r.seq) < (id.timestamp, id.seq),
            Filter::After(id) => (r.timestamp, r.seq) > (id.timestamp, id.seq),
            Filter::And(fs) => fs.iter().all(|f| f.matches_record(r)),
            Filter::Or(fs) => fs.iter().any(|f| f.matches_record(r)),
            Filter::Not(f) => !f.matches_record(r),
        }
    }

    /// Evaluates the filter on a block read with at least [`Filter::columns`].
    pub fn eval(&self, batch: &RecordBatch) -> Vec<bool> {
        self.eval_in(batch, &BlockTexts::default())
    }

    /// Evaluates the filter on a block read with at least [`Filter::columns_in`] `texts`,
    /// searching the words and phrases `texts` proves absent from the raw lines and field
    /// values in the message alone.
    pub(crate) fn eval_in(&self, batch: &RecordBatch, texts: &BlockTexts) -> Vec<bool> {
        let n = batch.num_rows();
        match self {
            Filter::All => vec![true; n],
            Filter::Time { start, end } => timestamps(batch)
                .iter()
                .map(|&t| start.is_none_or(|s| t >= s) && end.is_none_or(|e| t < e))
                .collect(),
            Filter::Before(id) => {
                let seq = logyard_store::schema::seqs(batch);
                timestamps(batch)
                    .iter()
                    .zip(seq)
                    .map(|(&t, &s)| (t, s) < (id.timestamp, id.seq))
                    .collect()
            }
            Filter::After(id) => {
                let seq = logyard_store::schema::seqs(batch);
                timestamps(batch)
                    .iter()
                    .zip(seq)
                    .map(|(&t, &s)| (t, s) > (id.timestamp, id.seq))
                    .collect()
            }
            Filter::Level(op, bound) => {
                let column = column(batch, col::LEVEL);
                dict_mask(column.as_ref(), |name| {
                    name.and_then(Level::normalize)
                        .is_some_and(|l| compare(l, *op, *bound))
                })
            }
            Filter::Label {
                column: which,
                value,
                prefix,
            } => {
                let column = column(batch, which.index());
                dict_mask(column.as_ref(), |v| {
                    v.is_some_and(|v| like(v, value, *prefix))
                })
            }
            Filter::Field {
                name,
                value,
                prefix,
            } => {
                let stored = stored_fields(batch);
                let typed = stored.column(name);
                let mut mask = vec![false; n];
                if let Some(array) = typed {
                    mark_field_text(array, value, *prefix, &mut mask);
                }
                let finder = memmem::Finder::new(value.as_bytes());
                let plain = !escaped_in_json(value);
                for_rest_rows(&stored, typed, &mut mask, |json| {
                    (!plain || finder.find(json.as_bytes()).is_some())
                        && field_matches(json, name, value, *prefix)
                });
                mask
            }
            Filter::FieldCmp { name, op, bound } => {
                let stored = stored_fields(batch);
                let typed = stored.column(name);
                let mut mask = vec![false; n];
                if let Some(array) = typed {
                    for (row, m) in mask.iter_mut().enumerate() {
                        *m = typed_number(array, row).is_some_and(|x| op.holds(x, *bound));
                    }
                }
                let key = memmem::Finder::new(name.as_bytes());
                for_rest_rows(&stored, typed, &mut mask, |json| {
                    key.find(json.as_bytes()).is_some()
                        && field_number(json, name).is_some_and(|x| op.holds(x, *bound))
                });
                mask
            }
            Filter::Regex(re) => {
                let mut mask = vec![false; n];
                // Only rows holding the pattern's literal start can match.
                let prefix = required_prefix(re.as_str());
                let finder = prefix.as_ref().map(|p| memmem::Finder::new(p.as_bytes()));
                mark_rows(
                    column(batch, col::MESSAGE).as_ref(),
                    finder.as_ref(),
                    |m| re.is_match(m),
                    &mut mask,
                );
                mask
            }
            Filter::Text(text) => {
                let finder = memmem::Finder::new(text.as_bytes());
                let mut mask = vec![false; n];
                if texts.message_only.contains(text) {
                    mark_rows(
                        column(batch, col::MESSAGE).as_ref(),
                        Some(&finder),
                        |s| contains_at_boundaries(&finder, s),
                        &mut mask,
                    );
                    return mask;
                }
                for c in [col::MESSAGE, col::RAW] {
                    mark_rows(
                        column(batch, c).as_ref(),
                        Some(&finder),
                        |s| contains_at_boundaries(&finder, s),
                        &mut mask,
                    );
                }
                let stored = stored_fields(batch);
                if let Some(rest) = stored.rest {
                    // JSON escapes a quote, a backslash or a control character: the text is
                    // then not in the row's JSON as it is, and every row is looked at.
                    let plain = (!escaped_in_json(text)).then_some(&finder);
                    mark_rows(
                        rest,
                        plain,
                        |json| in_field_values(&finder, json),
                        &mut mask,
                    );
                }
                for (_, array) in &stored.columns {
                    match array {
                        FieldArray::Str(strings) => mark_rows(
                            *strings,
                            Some(&finder),
                            |s| contains_at_boundaries(&finder, s),
                            &mut mask,
                        ),
                        // A number's or a boolean's text can hold the text only if it is
                        // made of the characters such texts are made of.
                        scalar if could_be_in_scalar_text(text) => {
                            for (row, m) in mask.iter_mut().enumerate() {
                                if !*m {
                                    *m = scalar
                                        .text(row)
                                        .is_some_and(|t| contains_at_boundaries(&finder, &t));
                                }
                            }
                        }
                        _ => {}
                    }
                }
                mask
            }
            Filter::And(fs) => {
                let mut mask = vec![true; n];
                for f in fs {
                    if !mask.iter().any(|&m| m) {
                        break;
                    }
                    for (m, v) in mask.iter_mut().zip(f.eval_in(batch, texts)) {
                        *m &= v;
                    }
                }
                mask
            }
            Filter::Or(fs) => {
                let mut mask = vec![false; n];
                for f in fs {
                    for (m, v) in mask.iter_mut().zip(f.eval_in(batch, texts)) {
                        *m |= v;
                    }
                }
                mask
            }
            Filter::Not(f) => f.eval_in(batch, texts).into_iter().map(|m| !m).collect(),
        }
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

fn compare(level: Level, op: LevelOp, bound: Level) -> bool {
    match op {
        LevelOp::Eq => level == bound,
        LevelOp::Ge => level >= bound,
        LevelOp::Gt => level > bound,
        LevelOp::Le => level <= bound,
        LevelOp::Lt => level < bound,
    }
}

fn column(batch: &RecordBatch, index: usize) -> std::sync::Arc<dyn Array> {
    batch
        .column_by_name(col::NAMES[index])
        .cloned()
        .unwrap_or_else(|| panic!("column {} was not read", col::NAMES[index]))
}

/// Evaluates a predicate once per distinct value of a dictionary column, then per row.
fn dict_mask(column: &dyn Array, pred: impl Fn(Option<&str>) -> bool) -> Vec<bool> {
    if let Some(dict) = column.as_any().downcast_ref::<DictionaryArray<Int32Type>>() {
        if let Some(values) = dict.values().as_any().downcast_ref::<StringArray>() {
            let per_value: Vec<bool> = (0..values.len())
                .map(|i| pred((!values.is_null(i)).then(|| values.value(i))))
                .collect();
            let null = pred(None);
            return (0..dict.len())
                .map(|i| {
                    if dict.is_null(i) {
                        null
                    } else {
                        per_value[dict.keys().value(i) as usize]
                    }
                })
                .collect();
        }
    }
    (0..column.len())
        .map(|i| pred(string_at(column, i)))
        .collect()
}

/// Sets `mask[row]` for every row of a string column (plain or dictionary) whose value
/// `decide` accepts, offering it only the values that contain the needle when there is one.
/// A dictionary column is decided once per distinct value, then row by row from its keys.
fn mark_rows(
    column: &dyn Array,
    finder: Option<&memmem::Finder<'_>>,
    decide: impl Fn(&str) -> bool,
    mask: &mut [bool],
) {
    if let Some(dict) = column.as_any().downcast_ref::<DictionaryArray<Int32Type>>() {
        if let Some(values) = dict.values().as_any().downcast_ref::<StringArray>() {
            let mut per_value = vec![false; values.len()];
            match finder {
                Some(finder) => for_rows_containing(values, finder, |v, s| {
                    per_value[v] = decide(s);
                }),
                None => {
                    for (v, slot) in per_value.iter_mut().enumerate() {
                        *slot = !values.is_null(v) && decide(values.value(v));
                    }
                }
            }
            if !per_value.iter().any(|&m| m) {
                return;
            }
            for (row, (m, key)) in mask.iter_mut().zip(dict.keys().values()).enumerate() {
                if !*m && !dict.is_null(row) {
                    *m = usize::try_from(*key)
                        .ok()
                        .and_then(|k| per_value.get(k).copied())
                        .unwrap_or(false);
                }
            }
            return;
        }
    }
    match finder {
        Some(finder) => for_rows_containing(column, finder, |row, s| {
            mask[row] = mask[row] || decide(s);
        }),
        None => {
            for (row, m) in mask.iter_mut().enumerate() {
                *m = *m || string_at(column, row).is_some_and(&decide);
            }
        }
    }
}

/// Calls `f` once for each row of a string column whose value contains the needle somewhere
/// (not necessarily at token boundaries), in row order. A plain string column is searched
/// in one pass over its whole value buffer; other columns value by value.
fn for_rows_containing(
    column: &dyn Array,
    finder: &memmem::Finder<'_>,
    mut f: impl FnMut(usize, &str),
) {
    let Some(strings) = column.as_any().downcast_ref::<StringArray>() else {
        for row in 0..column.len() {
            if let Some(s) = string_at(column, row) {
                if finder.find(s.as_bytes()).is_some() {
                    f(row, s);
                }
            }
        }
        return;
    };
    let offsets = strings.value_offsets();
    let data = strings.value_data();
    let (Some(&first), Some(&last)) = (offsets.first(), offsets.last()) else {
        return;
    };
    let (first, last) = (first as usize, last as usize);
    let len = finder.needle().len().max(1);
    let mut row = 0;
    // Rows below this are decided.
    let mut next = 0;
    for pos in finder.find_iter(&data[first..last]) {
        let at = first + pos;
        while offsets[row + 1] as usize <= at {
            row += 1;
        }
        // A match across values is no match, and may hide one of the next values: each row
        // it touches is searched on its own.
        let mut touched = row;
        while touched + 1 < offsets.len() - 1 && (offsets[touched + 1] as usize) < at + len {
            touched += 1;
        }
        for r in row.max(next)..=touched {
            if !strings.is_null(r) {
                let value = strings.value(r);
                if finder.find(value.as_bytes()).is_some() {
                    f(r, value);
                }
            }
        }
        next = next.max(touched + 1);
    }
}

/// Returns a literal that every match of a regex contains, taken from its start, when it is
/// easy to tell: a run of plain characters at the start of a pattern without alternation (at
/// least 3 bytes, the last dropped when a quantifier follows it).
fn required_prefix(pattern: &str) -> Option<String> {
    if has_top_level_alternation(pattern) {
        return None;
    }
    let special = |c: char| "\\.+*?()|[]{}^$".contains(c);
    let mut prefix: String = pattern.chars().take_while(|&c| !special(c)).collect();
    if matches!(
        pattern[prefix.len()..].chars().next(),
        Some('*' | '?' | '{' | '+')
    ) {
        prefix.pop();
    }
    (prefix.len() >= 3).then_some(prefix)
}

/// Says whether a regex has a `|` outside every group (escapes and classes skipped), which
/// makes no literal start required.
fn has_top_level_alternation(pattern: &str) -> bool {
    let mut depth = 0usize;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' => {
                // A class: up to its closing `]` (a `]` first in it is literal).
                let mut first = true;
                for c in chars.by_ref() {
                    if c == ']' && !first {
                        break;
                    }
                    first = c == '^' && first;
                }
            }
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            '|' if depth == 0 => return true,
            _ => {}
        }
    }
    false
}

/// Returns whether a value of the fields object (JSON text) contains the needle at token
/// boundaries; keys do not count, as the token index holds only values. The caller looks
/// for the needle in the text first where it can ([`escaped_in_json`]).
fn in_field_values(finder: &memmem::Finder<'_>, json: &str) -> bool {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(json) else {
        return false;
    };
    map.values().any(|v| match v {
        serde_json::Value::String(s) => contains_at_boundaries(finder, s),
        other => contains_at_boundaries(finder, &other.to_string()),
    })
}

/// The stored fields of a block: `fields` (every field, or what no field column took) and
/// the field columns of a segment block read with [`Columns::FIELD_COLUMNS`].
fn stored_fields(batch: &RecordBatch) -> StoredFields<'_> {
    let stored =
        StoredFields::of(batch).unwrap_or_else(|e| panic!("a block read by this crate: {e}"));
    assert!(
        stored.rest.is_some(),
        "column {} was not read",
        col::NAMES[col::FIELDS]
    );
    stored
}

/// Marks the rows whose value in `fields` is decided by `decide` (its JSON text), among the
/// rows not marked yet whose field column (if the key has one) holds no value.
fn for_rest_rows(
    stored: &StoredFields<'_>,
    typed: Option<&FieldArray<'_>>,
    mask: &mut [bool],
    decide: impl Fn(&str) -> bool,
) {
    let Some(rest) = stored.rest else { return };
    for (row, m) in mask.iter_mut().enumerate() {
        if !*m && typed.is_none_or(|a| !a.is_valid(row)) {
            *m = string_at(rest, row).is_some_and(&decide);
        }
    }
}

/// Marks the rows whose value in a field column has the text `value` (starts with it when
/// `prefix`), as [`field_matches`] compares a value of `fields`.
fn mark_field_text(array: &FieldArray<'_>, value: &str, prefix: bool, mask: &mut [bool]) {
    match array {
        // An integer's text is the number's shortest form: another text matches none.
        FieldArray::Int(ints) if !prefix => {
            let Some(wanted) = value.parse::<i64>().ok().filter(|i| i.to_string() == value) else {
                return;
            };
            for (row, m) in mask.iter_mut().enumerate() {
                *m = ints.is_valid(row) && ints.value(row) == wanted;
            }
        }
        // A string's text is borrowed: no copy a row.
        other => {
            for (row, m) in mask.iter_mut().enumerate() {
                *m = other.text(row).is_some_and(|t| like(&t, value, prefix));
            }
        }
    }
}

/// A value of a field column as a number, as [`field_number`] reads a value of `fields`: a
/// number (not a float that is not finite, which JSON writes `null`), or a string that is
/// one.
fn typed_number(array: &FieldArray<'_>, row: usize) -> Option<f64> {
    if !array.is_valid(row) {
        return None;
    }
    match array {
        FieldArray::Int(a) => Some(a.value(row) as f64),
        FieldArray::Float(a) => Some(a.value(row)).filter(|x| x.is_finite()),
        FieldArray::Str(a) => a.value(row).trim().parse().ok(),
        FieldArray::Bool(_) => None,
    }
}

/// Whether a text can occur in the JSON text of a number or a boolean (digits, signs,
/// points, exponents, `true`, `false`, `null`).
fn could_be_in_scalar_text(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || b"+-.eEtrufalsn".contains(&b))
}

/// Whether JSON writes the text otherwise than as it is (a quote, a backslash or a control
/// character escaped): a search for it in a JSON text as it is would miss it.
fn escaped_in_json(text: &str) -> bool {
    text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20)
}

/// Returns whether the fields object (JSON text) has `name` with a value whose text equals
/// `value`, or starts with it when `prefix`.
fn field_matches(json: &str, name: &str, value: &str, prefix: bool) -> bool {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(json) else {
        return false;
    };
    map.get(name).is_some_and(|v| {
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        like(&text, value, prefix)
    })
}

/// Whether a value's text is `value`, or starts with it when `prefix`: how a label or a
/// field is compared.
fn like(actual: &str, value: &str, prefix: bool) -> bool {
    if prefix {
        actual.starts_with(value)
    } else {
        actual == value
    }
}

/// Returns a field of a fields JSON object as a number: a JSON number, or a string that is one.
fn field_number(json: &str, name: &str) -> Option<f64> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(json) else {
        return None;
    };
    match map.get(name)? {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// Returns whether `text` contains the needle with no token character glued to either end
/// (so `error` matches `an error:` but not `errors`).
fn contains_at_boundaries(finder: &memmem::Finder<'_>, text: &str) -> bool {
    let needle = finder.needle();
    let bytes = text.as_bytes();
    let starts_word = needle.first().is_some_and(|&b| is_token_byte(b));
    let ends_word = needle.last().is_some_and(|&b| is_token_byte(b));
    let mut from = 0;
    while let Some(pos) = finder.find(&bytes[from..]) {
        let start = from + pos;
        let end = start + needle.len();
        let left_ok = !starts_word || start == 0 || !is_token_byte(bytes[start - 1]);
        let right_ok = !ends_word || end == bytes.len() || !is_token_byte(bytes[end]);
        if left_ok && right_ok {
            return true;
        }
        from = start + 1;
    }
    false
}

/// Returns the pattern's text if it has no regex syntax at all (a literal search).
fn literal_of(pattern: &str) -> Option<String> {
    let special = |c: char| "\\.+*?()|[]{}^$".contains(c);
    (!pattern.contains(special)).then(|| pattern.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows whose value contains the needle, found value by value.
    fn naive(values: &[Option<&str>], needle: &str) -> Vec<usize> {
        (0..values.len())
            .filter(|&i| values[i].is_some_and(|v| v.contains(needle)))
            .collect()
    }

    fn scanned(values: &[Option<&str>], needle: &str) -> Vec<usize> {
        let array = StringArray::from(values.to_vec());
        let finder = memmem::Finder::new(needle.as_bytes());
        let mut rows = Vec::new();
        for_rows_containing(&array, &finder, |row, v| {
            assert_eq!(Some(v), values[row]);
            rows.push(row);
        });
        rows
    }

    #[test]
    fn a_column_scan_finds_each_row_once_and_no_match_across_rows() {
        let values = [
            Some("xxab"),
            Some("abab"),
            None,
            Some("b"),
            Some("abab abab"),
            Some(""),
            Some("a"),
            Some("bab"),
        ];
        for needle in ["abab", "ab", "ba", "b", "xx", "zz"] {
            assert_eq!(scanned(&values, needle), naive(&values, needle), "{needle}");
        }
        // A slice of a larger array: offsets do not start at 0.
        let array = StringArray::from(vec!["abab", "xab", "abx"]);
        let sliced = array.slice(1, 2);
        let finder = memmem::Finder::new(b"ab");
        let mut rows = Vec::new();
        for_rows_containing(&sliced, &finder, |row, _| rows.push(row));
        assert_eq!(rows, [0, 1]);
    }

    proptest::proptest! {
        #[test]
        fn column_scan_equals_row_by_row(
            values in proptest::collection::vec(proptest::option::of("[ab ]{0,6}"), 0..12),
            needle in "[ab]{1,3}",
        ) {
            let refs: Vec<Option<&str>> = values.iter().map(|v| v.as_deref()).collect();
            proptest::prop_assert_eq!(scanned(&refs, &needle), naive(&refs, &needle));
        }
    }

    /// A block of records with the message column dictionary-encoded, as segments read it.
    fn with_dictionary_messages(batch: &RecordBatch) -> RecordBatch {
        use arrow_array::builder::StringDictionaryBuilder;
        let plain = batch.column_by_name("message").unwrap();
        let mut b = StringDictionaryBuilder::<Int32Type>::new();
        for row in 0..plain.len() {
            b.append_option(string_at(plain.as_ref(), row));
        }
        let mut fields: Vec<arrow_schema::Field> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        let mut columns = batch.columns().to_vec();
        let i = batch.schema().index_of("message").unwrap();
        fields[i] = fields[i]
            .clone()
            .with_data_type(arrow_schema::DataType::Dictionary(
                Box::new(arrow_schema::DataType::Int32),
                Box::new(arrow_schema::DataType::Utf8),
            ));
        columns[i] = std::sync::Arc::new(b.finish());
        RecordBatch::try_new(
            std::sync::Arc::new(arrow_schema::Schema::new(fields)),
            columns,
        )
        .unwrap()
    }

    proptest::proptest! {
        #[test]
        fn dictionary_messages_filter_as_plain_ones(
            messages in proptest::collection::vec("(ab|a b|b-a|xa|c){1,4}", 1..40),
            raw in proptest::collection::vec(proptest::option::of("[ab ]{0,5}"), 40),
            pattern in 0..6usize,
        ) {
            let records: Vec<Record> = messages
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let mut r = Record::new(i as i64, m.clone());
                    r.raw = raw[i].clone();
                    if i % 3 == 0 {
                        r.fields.insert("k".into(), logyard_model::Value::Str(m.clone()));
                    }
                    r
                })
                .collect();
            let plain = logyard_store::schema::records_to_batch(&records);
            let dict = with_dictionary_messages(&plain);
            let filters = [
                Filter::Text("ab".into()),
                Filter::Text("a b".into()),
                Filter::Text("b-a".into()),
                Filter::Regex(Regex::new("a.b").unwrap()),
                Filter::Regex(Regex::new("xab+c").unwrap()),
                Filter::Not(Box::new(Filter::Regex(Regex::new("^ab").unwrap()))),
            ];
            let f = &filters[pattern];
            let want: Vec<bool> = records.iter().map(|r| f.matches_record(r)).collect();
            proptest::prop_assert_eq!(f.eval(&plain), want.clone());
            proptest::prop_assert_eq!(f.eval(&dict), want);
        }
    }

    #[test]
    fn regex_prefixes_are_required_literals_only() {
        assert_eq!(
            required_prefix("response_time: [0-9]{4,}ms").as_deref(),
            Some("response_time: ")
        );
        assert_eq!(required_prefix("abcd*").as_deref(), Some("abc"));
        assert_eq!(required_prefix("ab"), None);
        assert_eq!(required_prefix("foo|barbaz"), None);
        assert_eq!(
            required_prefix("connection (refused|reset)").as_deref(),
            Some("connection ")
        );
        assert_eq!(required_prefix("abc[|]|x"), None);
        assert_eq!(required_prefix(r"abc\|d").as_deref(), Some("abc"));
        assert_eq!(required_prefix("(?i)error"), None);
        assert_eq!(required_prefix(".*timeout"), None);
    }

    #[test]
    fn boundaries() {
        let f = memmem::Finder::new("error");
        assert!(contains_at_boundaries(&f, "an error: x"));
        assert!(contains_at_boundaries(&f, "error"));
        assert!(!contains_at_boundaries(&f, "errors only"));
        assert!(contains_at_boundaries(&f, "errors and error"));
        let f = memmem::Finder::new("NEEDLE-42-5");
        assert!(contains_at_boundaries(&f, "x NEEDLE-42-5 y"));
        assert!(!contains_at_boundaries(&f, "x NEEDLE-42-50 y"));
    }

    #[test]
    fn texts_json_escapes_are_found_in_fields_and_in_field_columns() {
        use logyard_store::field_columns::{records_to_batch_with, FieldColumn, FieldColumnRule};
        let mut r = Record::new(1, "m");
        r.fields.insert(
            "note".into(),
            logyard_model::Value::Str("a \"b\" c\\d".into()),
        );
        let records = vec![r];
        let plain = logyard_store::schema::records_to_batch(&records);
        let columns = FieldColumn::choose(&records, FieldColumnRule::DEFAULT);
        assert_eq!(columns.len(), 1);
        let typed = records_to_batch_with(&records, &columns);
        for filter in [
            Filter::Text("\"b\"".into()),
            Filter::Text("c\\d".into()),
            Filter::Field {
                name: "note".into(),
                value: "a \"b\" c\\d".into(),
                prefix: false,
            },
        ] {
            assert_eq!(filter.eval(&plain), [true], "{filter:?} in fields");
            assert_eq!(filter.eval(&typed), [true], "{filter:?} in a field column");
        }
    }

    #[test]
    fn words_match_field_values_not_keys() {
        let f = memmem::Finder::new("user");
        assert!(!in_field_values(&f, r#"{"user":"ana"}"#));
        // A text JSON escapes is found in the value it decodes to.
        let quoted = memmem::Finder::new(r#"say "hi""#.as_bytes());
        assert!(in_field_values(
            &quoted,
            r#"{"note":"they say \"hi\" twice"}"#
        ));
        assert!(in_field_values(&f, r#"{"who":"user 7"}"#));
        let f = memmem::Finder::new("500");
        assert!(in_field_values(&f, r#"{"status":500}"#));
    }

    #[test]
    fn required_tokens_of_literal_regex_skip_edges() {
        let f = Filter::Regex(Regex::new("xNEEDLE-42-5y").unwrap());
        assert_eq!(f.required_tokens(), vec![hash_token("42")]);
        let f = Filter::Regex(Regex::new("a.b").unwrap());
        assert!(f.required_tokens().is_empty());
    }

    #[test]
    fn time_bounds_intersect() {
        let f = Filter::and(vec![
            Filter::Time {
                start: Some(5),
                end: Some(50),
            },
            Filter::Time {
                start: Some(10),
                end: None,
            },
        ]);
        assert_eq!(f.time_bounds(), (Some(10), Some(50)));
    }
}
