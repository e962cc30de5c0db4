//! SQL statements through `logyard_sql::execute`, as `POST /api/sql` runs them, over a small
//! store: any text is answered or refused, never a panic or a stack overflow; a syntax
//! error's position lies inside the text. Each input runs within 200 ms and 16 MiB. The
//! check is the one of the SQL crate's property test (crates/sql/tests/statement/check.rs).
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../../crates/sql/tests/statement/check.rs"]
mod check;

fuzz_target!(|text: &str| check::run(text));
