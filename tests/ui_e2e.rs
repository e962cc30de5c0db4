//! The web UI end to end: runs `tests/e2e/run.mjs`, which starts this build's `logyard
//! serve`, ingests entries and drives headless Chromium (Debian's `chromium`) through the
//! explorer, live tail, dashboard, alerts and sources views, at 1440x900 and 390x844, in the
//! light and the dark theme. Screenshots land in `target/e2e-screenshots/`.
//!
//! Needs `node`, `/usr/bin/chromium` (or `$CHROMIUM`) and `npm ci --prefix tests/e2e`;
//! `.ci/test` installs all three. Without them the test fails and says what is missing.

use std::path::Path;
use std::process::Command;

#[test]
fn web_ui_end_to_end() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let e2e = root.join("tests/e2e");
    assert!(
        e2e.join("node_modules/playwright-core").is_dir(),
        "tests/e2e/node_modules is missing: run `npm ci --prefix tests/e2e` (or .ci/test, which does)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).is_file(),
        "{chromium} is missing: `apt-get install chromium` (or .ci/test, which does)"
    );
    // Every scenario on both screens, in both themes.
    let mut failed = Vec::new();
    for (screen, scheme) in [
        ("desktop", "light"),
        ("desktop", "dark"),
        ("phone", "light"),
        ("phone", "dark"),
    ] {
        let status = Command::new("node")
            .arg(e2e.join("run.mjs"))
            .arg(env!("CARGO_BIN_EXE_logyard"))
            .env("E2E_SCREEN", screen)
            .env("E2E_SCHEME", scheme)
            .current_dir(root)
            .status()
            .expect("cannot run node: install Node.js 20 or later");
        if !status.success() {
            failed.push(format!("{screen} in {scheme} ({status})"));
        }
    }
    assert!(
        failed.is_empty(),
        "the web UI end-to-end run failed on {}; see its output above and target/e2e-screenshots/",
        failed.join(", ")
    );
}
