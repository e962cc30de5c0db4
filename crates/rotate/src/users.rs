//! User and group names to ids, from `/etc/passwd` and `/etc/group` (numeric ids pass
//! through).

use std::fs;

fn lookup(db: &str, name: &str, what: &str) -> Result<u32, String> {
    if let Ok(id) = name.parse::<u32>() {
        return Ok(id);
    }
    let text = fs::read_to_string(db).map_err(|e| {
        format!("cannot read {db} to find {what} {name:?}: {e}; write the numeric id")
    })?;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next() == Some(name)).then(|| f.nth(1)).flatten()
        })
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| {
            format!("unknown {what} {name:?} (not in {db}); write an existing name or a numeric id")
        })
}

/// Returns the uid of a user name (or a numeric uid).
pub(crate) fn uid(name: &str) -> Result<u32, String> {
    lookup("/etc/passwd", name, "user")
}

/// Returns the gid of a group name (or a numeric gid).
pub(crate) fn gid(name: &str) -> Result<u32, String> {
    lookup("/etc/group", name, "group")
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_and_numbers() {
        assert_eq!(super::uid("root").unwrap(), 0);
        assert_eq!(super::gid("0").unwrap(), 0);
        assert!(super::uid("no-such-user-xyz").is_err());
    }
}
