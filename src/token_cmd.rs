//! `logyard token new`: a new token and the lines that configure it.

/// Prints a new token and its configuration lines.
pub fn run(
    name: &str,
    role: &str,
    scope: Option<&str>,
    labels: &[String],
    argon2: bool,
) -> anyhow::Result<()> {
    use logyard_api::auth;
    let Some(parsed_role) = auth::Role::parse(role) else {
        anyhow::bail!("--role {role}: a role is one of ingest, read, admin");
    };
    if name.is_empty() || name.contains(':') || name.chars().any(char::is_whitespace) {
        anyhow::bail!("--name: a name is needed, without `:` or spaces");
    }
    if let Some(scope) = scope {
        if parsed_role != auth::Role::Read {
            anyhow::bail!("--scope: only a read token may have a scope");
        }
        auth::Scope::parse(scope).map_err(|e| anyhow::anyhow!("--scope: {e}"))?;
    }
    if !labels.is_empty() && parsed_role != auth::Role::Ingest {
        anyhow::bail!("--label: only an ingest token may fix labels");
    }
    let mut fixed = Vec::new();
    for label in labels {
        let Some((key, value)) = label.split_once('=') else {
            anyhow::bail!("--label {label}: write NAME=VALUE, e.g. host=web-1");
        };
        auth::Labels::default()
            .set(key, value.to_string())
            .map_err(|e| anyhow::anyhow!("--label {label}: {e}"))?;
        fixed.push(format!("{key} = {}", toml_string(value)));
    }
    let secret = auth::new_secret();
    let hash = if argon2 {
        auth::argon2_hash(&secret)
    } else {
        auth::format_hash(&auth::sha256(secret.as_bytes()))
    };
    println!("token (shown once; give it to the client, keep it secret):\n\n  {secret}\n");
    println!("add to logyard.toml (the hash only, never the token):\n");
    println!("[[auth.tokens]]\nname = \"{name}\"\nrole = \"{role}\"\nhash = \"{hash}\"");
    if let Some(scope) = scope {
        println!("scope = {}", toml_string(scope));
    }
    if !fixed.is_empty() {
        println!("labels = {{ {} }}", fixed.join(", "));
    }
    Ok(())
}

/// A TOML string of `text`, quoted and escaped.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}
