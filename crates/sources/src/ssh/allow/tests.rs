use super::*;
use proptest::prelude::*;

fn list() -> AllowList {
    AllowList::new(&["/var/log/app.log".to_string()]).unwrap()
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

const NOW: i64 = 1_705_314_600_000_000_000; // 2024-01-15T10:30:00Z

#[test]
fn builds_each_allowed_command() {
    let l = list();
    let cases = [
        (
            RemoteCommand::DockerPs,
            "docker ps --all --no-trunc --format '{{json .}}'",
        ),
        (
            RemoteCommand::DockerLogs {
                container: "web-app".into(),
                since: Some(NOW),
                timestamps: true,
                tail: None,
            },
            "docker logs --timestamps --since 2024-01-15T10:30:00.000000000Z web-app 2>&1",
        ),
        (
            RemoteCommand::DockerLogs {
                container: "db_1.x".into(),
                since: None,
                timestamps: false,
                tail: Some(50),
            },
            "docker logs --tail 50 db_1.x 2>&1",
        ),
        (
            RemoteCommand::DockerInspect {
                containers: vec!["a".into(), "b".into()],
            },
            "docker inspect a b",
        ),
        (
            RemoteCommand::DockerStats { containers: vec![] },
            "docker stats --no-stream --no-trunc --format '{{json .}}'",
        ),
        (
            RemoteCommand::TailFrom {
                path: "/var/log/app.log".into(),
                from: 0,
            },
            "tail -c +1 /var/log/app.log",
        ),
        (
            RemoteCommand::TailLines {
                path: "/var/log/app.log".into(),
                lines: 20,
            },
            "tail -n 20 /var/log/app.log",
        ),
        (
            RemoteCommand::Cat {
                path: "/var/log/app.log".into(),
            },
            "cat /var/log/app.log",
        ),
    ];
    for (cmd, line) in cases {
        assert_eq!(l.command_line(&cmd).unwrap(), line);
    }
}

#[test]
fn refuses_bad_arguments_before_anything_is_built() {
    let l = list();
    for name in [
        "",
        "-rm",
        "web;rm -rf /",
        "a b",
        "$(id)",
        "web`id`",
        "é",
        "_x",
        "web\n",
    ] {
        let cmd = RemoteCommand::DockerLogs {
            container: name.into(),
            since: None,
            timestamps: true,
            tail: None,
        };
        assert!(l.command_line(&cmd).is_err(), "{name:?} accepted");
    }
    let long = "a".repeat(MAX_CONTAINER_NAME + 1);
    assert!(check_container(&long).is_err());
    for path in [
        "/etc/shadow",
        "/var/log/app.log ",
        "/var/log/../../etc/passwd",
    ] {
        let cmd = RemoteCommand::Cat { path: path.into() };
        let err = l.command_line(&cmd).unwrap_err();
        assert!(err.reason.contains("not among"), "{err}");
    }
    assert!(l
        .command_line(&RemoteCommand::DockerInspect { containers: vec![] })
        .is_err());
}

#[test]
fn prints_refused_requests_as_asked() {
    let cmd = RemoteCommand::DockerLogs {
        container: "web;id".into(),
        since: None,
        timestamps: true,
        tail: None,
    };
    assert_eq!(cmd.to_string(), "docker logs --timestamps 'web;id' 2>&1");
    let cat = RemoteCommand::Cat {
        path: "/etc/shadow".into(),
    };
    assert_eq!(cat.to_string(), "cat /etc/shadow");
    assert!(list().command_line(&cat).is_err());
}

#[test]
fn refuses_configured_paths_with_metacharacters() {
    for p in [
        "relative.log",
        "/var/log/$(id)",
        "/a/../b",
        "/a b",
        "/a;b",
        "/a*",
    ] {
        assert!(AllowList::new(&[p.to_string()]).is_err(), "{p:?} accepted");
    }
    assert!(AllowList::new(&["/srv/app-1/logs/out_2024.log".to_string()]).is_ok());
}

#[test]
fn parses_typed_commands_and_refuses_the_rest() {
    let l = list();
    let ok = [
        ("docker ps", RemoteCommand::DockerPs),
        ("docker ps -a", RemoteCommand::DockerPs),
        (
            "docker logs --since 1h -t web",
            RemoteCommand::DockerLogs {
                container: "web".into(),
                since: Some(NOW - 3_600_000_000_000),
                timestamps: true,
                tail: None,
            },
        ),
        (
            "docker stats --no-stream web",
            RemoteCommand::DockerStats {
                containers: vec!["web".into()],
            },
        ),
        (
            "tail -c +101 /var/log/app.log",
            RemoteCommand::TailFrom {
                path: "/var/log/app.log".into(),
                from: 100,
            },
        ),
        (
            "cat /var/log/app.log",
            RemoteCommand::Cat {
                path: "/var/log/app.log".into(),
            },
        ),
    ];
    for (text, cmd) in ok {
        assert_eq!(l.parse(&words(text), NOW).unwrap(), cmd, "{text}");
    }
    let refused = [
        "docker rm web",
        "docker exec web sh",
        "docker logs -f web",
        "docker logs web other",
        "docker stats",
        "docker ps --format {{.ID}}",
        "rm -rf /",
        "cat /etc/shadow",
        "tail -f /var/log/app.log",
        "tail -c 100 /var/log/app.log",
        "sh -c id",
        "",
    ];
    for text in refused {
        let err = l.parse(&words(text), NOW).unwrap_err();
        assert!(err.to_string().contains("nothing was sent"), "{err}");
    }
}

/// Runs `printf %s WORD` through sh and returns what it printed.
fn through_sh(quoted: &str) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("printf %s {quoted}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn quoting_survives_the_shell() {
    for w in [
        "plain", "a b", "it's", "$(id)", "`id`", "a;b|c&d", "'", "''", "\\", "*", "~", "-n",
    ] {
        assert_eq!(through_sh(&quote(w)), w, "{w:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// No word escapes its quotes: sh gives back exactly the word, whatever it holds.
    #[test]
    fn no_word_escapes_quoting(w in "[^\\x00]{0,40}") {
        prop_assume!(!w.is_empty());
        // `printf %s` prints a leading `-` word as is; a word that printf would read as an
        // option does not arise because the format comes first.
        prop_assert_eq!(through_sh(&quote(&w)), w);
    }

    /// Whatever a container name holds, the built line is either refused or names it bare
    /// as one word of the allowed alphabet.
    #[test]
    fn container_names_are_refused_or_plain(name in "\\PC{0,20}") {
        let cmd = RemoteCommand::DockerLogs { container: name.clone(), since: None, timestamps: true, tail: None };
        match list().command_line(&cmd) {
            Ok(line) => {
                let tail = format!(" {} 2>&1", name);
                prop_assert!(line.ends_with(&tail));
                prop_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
            }
            Err(e) => prop_assert!(e.to_string().contains("nothing was sent")),
        }
    }

    /// Whatever the typed words, a parsed command builds to a line whose every word sh
    /// gives back as built (no word splits or expands).
    #[test]
    fn parsed_commands_never_expand(a in "[a-z$;`' |&-]{0,8}", b in "\\PC{0,12}") {
        let l = list();
        let typed = vec!["docker".to_string(), "logs".to_string(), a, b];
        if let Ok(cmd) = l.parse(&typed, NOW) {
            let line = l.command_line(&cmd).unwrap();
            let line = line.trim_end_matches(" 2>&1");
            prop_assert!(!line.contains(['$', '`', ';', '|', '&', '>', '<', '\n']));
        }
    }
}
