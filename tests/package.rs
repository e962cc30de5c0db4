//! The Debian package and the plain tarball of `packaging/`: `packaging/deb/build.sh` builds
//! a package from this build's binary; `dpkg -i` installs it (the `logyard` user, the data
//! directory, the conffile); its binary serves as that user with the default configuration
//! and follows `/tmp/*.log`; a reinstall keeps an edited conffile; `dpkg -r` keeps the data
//! and the configuration; `dpkg --purge` removes them and the user. `packaging/tarball.sh`
//! builds a tarball whose binary runs.

mod util;

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use util::Server;

fn root_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    #[allow(unsafe_code)]
    unsafe {
        libc::geteuid() == 0
    }
}

fn has(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Runs a command and returns its output; a failure panics with its stderr.
fn ok(command: &mut Command) -> Output {
    let out = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?}: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether dpkg knows a `logyard` package in any state (installed, or removed with its
/// configuration files left).
fn package_known() -> bool {
    match Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Status}", "logyard"])
        .output()
    {
        Ok(out) if out.status.success() => {
            let status = String::from_utf8_lossy(&out.stdout);
            !status.trim().is_empty() && status.trim() != "not-installed"
        }
        _ => false,
    }
}

fn user_exists(name: &str) -> bool {
    Command::new("getent")
        .args(["passwd", name])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn id_of(flag: &str, name: &str) -> u32 {
    text(&ok(Command::new("id").args([flag, name])))
        .trim()
        .parse()
        .unwrap()
}

/// Purges the package and removes the followed file, even when the test fails.
struct Cleanup {
    log_file: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log_file);
        if package_known() {
            let _ = Command::new("dpkg")
                .args(["--purge", "logyard"])
                .stdin(Stdio::null())
                .output();
        }
    }
}

fn build_package(out_dir: &Path) -> PathBuf {
    let out = ok(Command::new("bash")
        .arg(root_dir().join("packaging/deb/build.sh"))
        .arg(util::bin())
        .arg("0.1.0~test1")
        .arg(out_dir)
        // The debug binary is big: a quick compression keeps the test short.
        .env("DPKG_DEB_COMPRESSOR_TYPE", "gzip")
        .env("DPKG_DEB_COMPRESSOR_LEVEL", "1"));
    let path = PathBuf::from(text(&out).lines().last().unwrap_or_default().trim());
    assert!(path.is_file(), "build.sh printed {path:?}");
    path
}

#[test]
fn the_debian_package_installs_serves_as_its_user_and_purges() {
    if !is_root() {
        eprintln!("skipped: installing a Debian package needs root");
        return;
    }
    if !has("dpkg-deb") || !has("dpkg") {
        eprintln!("skipped: dpkg-deb is missing (not a Debian machine)");
        return;
    }
    if package_known() {
        eprintln!("skipped: a logyard package is installed on this machine; not touching it");
        return;
    }
    if user_exists("logyard") {
        eprintln!("skipped: a logyard user exists on this machine; not touching it");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let deb = build_package(dir.path());

    // Contents and fields.
    let contents = text(&ok(Command::new("dpkg-deb").arg("--contents").arg(&deb)));
    for path in [
        "./usr/bin/logyard",
        "./lib/systemd/system/logyard.service",
        "./etc/logyard/logyard.toml",
        "./usr/share/doc/logyard/copyright",
        "./usr/share/doc/logyard/README.md",
    ] {
        assert!(contents.contains(path), "{path} missing from:\n{contents}");
    }
    let field = |name: &str| {
        text(&ok(Command::new("dpkg-deb")
            .arg("--field")
            .arg(&deb)
            .arg(name)))
        .trim()
        .to_string()
    };
    assert_eq!(field("Package"), "logyard");
    assert_eq!(field("Version"), "0.1.0~test1");
    let arch = text(&ok(Command::new("dpkg").arg("--print-architecture")));
    assert_eq!(field("Architecture"), arch.trim());
    assert!(field("Depends").contains("libc6"), "{}", field("Depends"));
    assert!(field("Installed-Size").parse::<u64>().unwrap() > 0);
    let conffiles = text(&ok(Command::new("dpkg-deb")
        .arg("--info")
        .arg(&deb)
        .arg("conffiles")));
    assert_eq!(conffiles.trim(), "/etc/logyard/logyard.toml");

    let log_file = PathBuf::from(format!(
        "/tmp/logyard-package-{}-{}.log",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let agent = log_file.file_stem().unwrap().to_str().unwrap().to_string();
    let _cleanup = Cleanup {
        log_file: log_file.clone(),
    };

    // Install: the user, its data directory, the conffile.
    ok(Command::new("dpkg").arg("-i").arg(&deb));
    assert!(Path::new("/usr/bin/logyard").is_file());
    assert!(Path::new("/etc/logyard/logyard.toml").is_file());
    assert!(user_exists("logyard"));
    let uid = id_of("-u", "logyard");
    let groups = text(&ok(Command::new("id").args(["-nG", "logyard"])));
    assert!(
        groups.split_whitespace().any(|g| g == "logyard"),
        "{groups}"
    );
    assert!(groups.split_whitespace().any(|g| g == "adm"), "{groups}");
    let data = std::fs::metadata("/var/lib/logyard").unwrap();
    assert!(data.is_dir());
    assert_eq!(data.uid(), uid);
    assert_eq!(data.mode() & 0o777, 0o750);
    if Path::new("/run/systemd/system").is_dir() {
        // Where systemd runs, the package started the service: stop it so that this test's
        // server can hold the data directory.
        ok(Command::new("systemctl").args(["stop", "logyard"]));
    }

    // The binary, as its user, with its default configuration and nothing else but a free
    // port.
    let mut command = Command::new("setpriv");
    command
        .args([
            "--reuid=logyard",
            "--regid=logyard",
            "--init-groups",
            "--",
            "/usr/bin/logyard",
            "--config",
            "/etc/logyard/logyard.toml",
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .current_dir("/");
    let server =
        Server::try_spawn(command, Path::new("/var/lib/logyard")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(server.get("/health").0, 200);
    // The default configuration follows /tmp/*.log; the agent is the file's stem.
    std::fs::write(
        &log_file,
        "the package's default configuration follows /tmp\n",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = server.all_of_agent(&agent);
        if got.iter().any(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("follows /tmp"))
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the line of {log_file:?} was not stored as agent {agent}: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    server.stop();
    // What it wrote belongs to its user.
    assert!(std::fs::read_dir("/var/lib/logyard").unwrap().count() > 0);

    // A reinstall (an upgrade) keeps an edited conffile without asking, and the data.
    let edited = format!(
        "{}\n# edited by the administrator\n",
        std::fs::read_to_string("/etc/logyard/logyard.toml").unwrap()
    );
    std::fs::write("/etc/logyard/logyard.toml", &edited).unwrap();
    ok(Command::new("dpkg").arg("-i").arg(&deb));
    assert_eq!(
        std::fs::read_to_string("/etc/logyard/logyard.toml").unwrap(),
        edited
    );
    assert!(std::fs::read_dir("/var/lib/logyard").unwrap().count() > 0);

    // Remove keeps the configuration, the data and the user.
    ok(Command::new("dpkg").args(["-r", "logyard"]));
    assert!(!Path::new("/usr/bin/logyard").exists());
    assert!(Path::new("/etc/logyard/logyard.toml").is_file());
    assert!(Path::new("/var/lib/logyard").is_dir());
    assert!(user_exists("logyard"));

    // Purge removes them all.
    ok(Command::new("dpkg").args(["--purge", "logyard"]));
    assert!(!Path::new("/usr/bin/logyard").exists());
    assert!(!Path::new("/etc/logyard").exists());
    assert!(!Path::new("/var/lib/logyard").exists());
    assert!(!user_exists("logyard"));
    assert!(!package_known());
}

#[test]
fn the_default_configuration_is_valid() {
    let out = util::run(
        &root_dir(),
        &["--config", "packaging/logyard.toml", "check-config"],
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_tarball_holds_a_binary_that_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(Command::new("bash")
        .arg(root_dir().join("packaging/tarball.sh"))
        .arg(util::bin())
        .arg("0.1.0")
        .arg(dir.path()));
    let tarball = PathBuf::from(text(&out).lines().last().unwrap_or_default().trim());
    let name = tarball.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with("logyard-0.1.0-") && name.ends_with(".tar.gz"),
        "{name}"
    );
    ok(Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(dir.path()));
    let top = dir.path().join(name.trim_end_matches(".tar.gz"));
    for file in [
        "bin/logyard",
        "logyard.service",
        "logyard.toml",
        "README.md",
        "docs/install.md",
    ] {
        assert!(top.join(file).is_file(), "{file} missing from {name}");
    }
    let version = ok(Command::new(top.join("bin/logyard")).arg("version"));
    assert!(text(&version).starts_with("logyard "), "{}", text(&version));
}
