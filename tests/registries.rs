//! Every format, pipe, notifier and source the code knows is described in its document, and
//! `docs/contributing.md` says how to add one of each kind.

use std::path::Path;

fn doc(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The names serde lists for an unknown variant of a `type = "…"` key: the registry as the
/// configuration reads it ("unknown variant `x`, expected one of `a`, `b`").
fn expected_variants(error: &str) -> Vec<String> {
    let list = error
        .split("expected one of ")
        .nth(1)
        .or_else(|| error.split("expected ").nth(1))
        .unwrap_or_else(|| panic!("no list of variants in {error:?}"));
    let list = list.split('\n').next().unwrap_or(list);
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn assert_described(kind: &str, names: &[String], doc_name: &str) {
    assert!(!names.is_empty(), "no {kind} found");
    let text = doc(doc_name);
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !text.contains(&format!("`{n}`")) && !text.contains(&format!("\"{n}\"")))
        .collect();
    assert!(
        missing.is_empty(),
        "{kind} missing from docs/{doc_name}: {missing:?}"
    );
}

#[test]
fn every_format_is_described() {
    let names: Vec<String> = logyard_parse::Format::NAMES
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_described("formats", &names, "parsing.md");
}

#[test]
fn every_pipe_is_described() {
    let names: Vec<String> = logyard_query::pipes::NAMES
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert_described("pipes", &names, "query.md");
}

#[test]
fn every_notifier_is_described() {
    let e = toml::from_str::<logyard_alert::AlertsConfig>(
        "[[notifiers]]\nname = \"n\"\ntype = \"carrier-pigeon\"\n",
    )
    .expect_err("an unknown type is refused")
    .to_string();
    let names = expected_variants(&e);
    assert!(names.contains(&"webhook".to_string()), "{names:?}");
    assert_described("notifiers", &names, "alerting.md");
}

#[test]
fn every_source_is_described() {
    #[derive(Debug, serde::Deserialize)]
    struct Doc {
        #[allow(dead_code)]
        sources: Vec<logyard_sources::SourceConfig>,
    }
    let e = toml::from_str::<Doc>("[[sources]]\ntype = \"carrier-pigeon\"\n")
        .expect_err("an unknown type is refused")
        .to_string();
    let names = expected_variants(&e);
    assert!(names.contains(&"file".to_string()), "{names:?}");
    assert_described("sources", &names, "sources.md");
}

#[test]
fn contributing_covers_every_kind_of_component() {
    let text = doc("contributing.md");
    for heading in [
        "## A line format",
        "## A pipe of the query language",
        "## A notifier",
        "## A source",
    ] {
        assert!(
            text.contains(heading),
            "docs/contributing.md lacks {heading:?}"
        );
    }
    for file in [
        "crates/parse/src/detect.rs",
        "crates/query/src/pipes/mod.rs",
        "crates/notify/src/config.rs",
        "crates/sources/src/lib.rs",
    ] {
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(file).is_file(),
            "docs/contributing.md names {file}, which is gone"
        );
        assert!(
            text.contains(file),
            "docs/contributing.md does not name {file}"
        );
    }
}
