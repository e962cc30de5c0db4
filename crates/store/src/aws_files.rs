//! The AWS shared files, as the AWS SDKs and CLI read them: the access key of a profile
//! from `~/.aws/credentials` (or `AWS_SHARED_CREDENTIALS_FILE`), and the region from
//! `~/.aws/config` (or `AWS_CONFIG_FILE`); the profile is `AWS_PROFILE`, else `default`.
//! They come after the environment's own variables and before web identity and the
//! instance's metadata service, in the SDKs' order. Only static keys are read (not
//! `role_arn`, `sso_*` or `credential_process`).

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

/// An access key read from a credentials file.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct FileCredentials {
    /// `aws_access_key_id`.
    pub key_id: String,
    /// `aws_secret_access_key`.
    pub secret: String,
    /// `aws_session_token`, when the key is temporary.
    pub token: Option<String>,
}

impl fmt::Debug for FileCredentials {
    // The secret and the token never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileCredentials")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Reads the environment (a parameter, so that tests give their own).
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The profile's access key from the credentials file, or from the config file when the
/// credentials file has none; `None` when the environment has its own key, or no file holds
/// one. An error names the file and what is missing, never a secret.
pub(crate) fn credentials(env: Env) -> Result<Option<FileCredentials>, String> {
    if env("AWS_ACCESS_KEY_ID").is_some_and(|v| !v.is_empty()) {
        return Ok(None);
    }
    let profile = profile(env);
    let files = [
        (
            file(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials"),
            profile.clone(),
        ),
        (
            file(env, "AWS_CONFIG_FILE", "config"),
            config_section(&profile),
        ),
    ];
    for (path, section) in files {
        let Some(path) = path else { continue };
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let keys = ini_section(&text, &section);
        let Some(key_id) = keys.get("aws_access_key_id") else {
            continue;
        };
        let Some(secret) = keys.get("aws_secret_access_key") else {
            return Err(format!(
                "{}: [{section}] has aws_access_key_id but no aws_secret_access_key",
                path.display()
            ));
        };
        return Ok(Some(FileCredentials {
            key_id: key_id.clone(),
            secret: secret.clone(),
            token: keys.get("aws_session_token").cloned(),
        }));
    }
    Ok(None)
}

/// The profile's `region` from the config file, when the environment names none.
pub(crate) fn region(env: Env) -> Option<String> {
    if ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .any(|k| env(k).is_some_and(|v| !v.is_empty()))
    {
        return None;
    }
    let path = file(env, "AWS_CONFIG_FILE", "config")?;
    let text = std::fs::read_to_string(path).ok()?;
    ini_section(&text, &config_section(&profile(env)))
        .get("region")
        .cloned()
}

fn profile(env: Env) -> String {
    env("AWS_PROFILE")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "default".to_string())
}

/// The config file names a profile's section `[profile <name>]`, except `[default]`.
fn config_section(profile: &str) -> String {
    if profile == "default" {
        profile.to_string()
    } else {
        format!("profile {profile}")
    }
}

/// The file named by `variable`, else `~/.aws/<name>`.
fn file(env: Env, variable: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = env(variable).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let home = env("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".aws").join(name))
}

/// The `key = value` lines of one `[section]` of an INI file (keys lowercased; `#` and `;`
/// start comments).
fn ini_section(text: &str, section: &str) -> HashMap<String, String> {
    let mut keys = HashMap::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
            continue;
        }
        if inside {
            if let Some((k, v)) = line.split_once('=') {
                keys.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of<'a>(vars: &'a [(&'a str, String)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn the_profile_of_the_shared_files_gives_the_key_and_the_region() {
        let home = tempfile::tempdir().unwrap();
        let aws = home.path().join(".aws");
        std::fs::create_dir_all(&aws).unwrap();
        std::fs::write(
            aws.join("credentials"),
            "# keys\n[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = s1\n\n\
             [team]\nAWS_ACCESS_KEY_ID=AKIATEAM\naws_secret_access_key=s2\naws_session_token = t2\n",
        )
        .unwrap();
        std::fs::write(
            aws.join("config"),
            "[default]\nregion = eu-west-1\n[profile team]\nregion = eu-central-1\n\
             [profile ci]\naws_access_key_id = AKIACI\naws_secret_access_key = s3\n",
        )
        .unwrap();
        let home_var = ("HOME", home.path().display().to_string());
        let vars = [home_var.clone()];
        let env = env_of(&vars);
        let c = credentials(&env).unwrap().unwrap();
        assert_eq!(
            (c.key_id.as_str(), c.secret.as_str()),
            ("AKIADEFAULT", "s1")
        );
        assert_eq!(region(&env).as_deref(), Some("eu-west-1"));

        let vars = [home_var.clone(), ("AWS_PROFILE", "team".to_string())];
        let env = env_of(&vars);
        let c = credentials(&env).unwrap().unwrap();
        assert_eq!(c.key_id, "AKIATEAM");
        assert_eq!(c.token.as_deref(), Some("t2"));
        assert_eq!(region(&env).as_deref(), Some("eu-central-1"));
        assert!(!format!("{c:?}").contains("s2"), "{c:?}");

        // A key only in the config file.
        let vars = [home_var.clone(), ("AWS_PROFILE", "ci".to_string())];
        assert_eq!(
            credentials(&env_of(&vars)).unwrap().unwrap().key_id,
            "AKIACI"
        );

        // The environment's own key and region come first.
        let vars = [
            home_var.clone(),
            ("AWS_ACCESS_KEY_ID", "AKIAENV".to_string()),
            ("AWS_REGION", "us-west-2".to_string()),
        ];
        let env = env_of(&vars);
        assert_eq!(credentials(&env).unwrap(), None);
        assert_eq!(region(&env), None);

        // A half key is an error naming the file, not the secret.
        std::fs::write(
            aws.join("credentials"),
            "[default]\naws_access_key_id = AKIAX\n",
        )
        .unwrap();
        let vars = [home_var];
        let e = credentials(&env_of(&vars)).unwrap_err();
        assert!(
            e.contains("credentials") && e.contains("aws_secret_access_key"),
            "{e}"
        );
    }

    #[test]
    fn no_file_is_no_key() {
        let home = tempfile::tempdir().unwrap();
        let vars = [("HOME", home.path().display().to_string())];
        assert_eq!(credentials(&env_of(&vars)).unwrap(), None);
        assert_eq!(region(&env_of(&vars)), None);
    }
}
