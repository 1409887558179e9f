//! Option files the way MySQL clients read them: `--defaults-file` (only that file), or
//! `~/.my.cnf` then `--defaults-extra-file`; groups `[client]` then `[repl-repair]`, later
//! values winning. Only the connection options are taken (user, password, socket, host,
//! port): credentials never have to be on the command line, where `ps` shows them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum OptionFileError {
    #[error("cannot read option file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("option file {path} is not a regular file (a FIFO or device is never read)")]
    NotAFile { path: PathBuf },
    #[error("option file {path}, line {line}: {what}")]
    Syntax {
        path: PathBuf,
        line: usize,
        what: String,
    },
}

/// Connection options gathered from option files; the password is never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientOptions {
    pub user: Option<String>,
    pub password: Option<String>,
    pub socket: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("socket", &self.socket)
            .field("host", &self.host)
            .field("port", &self.port)
            .finish()
    }
}

const GROUPS: [&str; 2] = ["client", "repl-repair"];

/// Parses one option file's `[client]` and `[repl-repair]` groups into `into`.
pub fn read_file(path: &Path, into: &mut ClientOptions) -> Result<(), OptionFileError> {
    let read_err = |source| OptionFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    // A FIFO would block the open forever and /dev/zero never ends: only regular files.
    if !std::fs::metadata(path).map_err(read_err)?.is_file() {
        return Err(OptionFileError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(read_err)?;
    let mut values: HashMap<String, String> = HashMap::new();
    let mut in_group = false;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty()
            || line.starts_with('#')
            || line.starts_with(';')
            || line.starts_with('!')
        {
            // `!include`/`!includedir` are not followed: say so in the docs, not here.
            continue;
        }
        if let Some(g) = line.strip_prefix('[') {
            let name = g.strip_suffix(']').ok_or_else(|| OptionFileError::Syntax {
                path: path.to_path_buf(),
                line: n + 1,
                what: format!("unterminated group header {line:?}"),
            })?;
            in_group = GROUPS.contains(&name.trim());
            continue;
        }
        if !in_group {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), unquote(v.trim())),
            None => (line, String::new()),
        };
        values.insert(key.replace('_', "-").to_ascii_lowercase(), value);
    }
    for (k, v) in values {
        match k.as_str() {
            "user" => into.user = Some(v),
            "password" => into.password = Some(v),
            "socket" => into.socket = Some(v),
            "host" => into.host = Some(v),
            "port" => {
                into.port = Some(v.parse().map_err(|_| OptionFileError::Syntax {
                    path: path.to_path_buf(),
                    line: 0,
                    what: format!("port {v:?} is not a number"),
                })?)
            }
            _ => {}
        }
    }
    Ok(())
}

fn unquote(v: &str) -> String {
    let v = v.split(" #").next().unwrap_or(v).trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

/// Reads the option files as the `mysql` client would for these flags.
pub fn load(
    defaults_file: Option<&Path>,
    extra_file: Option<&Path>,
) -> Result<ClientOptions, OptionFileError> {
    let mut opts = ClientOptions::default();
    if let Some(f) = defaults_file {
        read_file(f, &mut opts)?;
        return Ok(opts);
    }
    if let Some(home) = std::env::var_os("HOME") {
        let mycnf = Path::new(&home).join(".my.cnf");
        if mycnf.is_file() {
            read_file(&mycnf, &mut opts)?;
        }
    }
    if let Some(f) = extra_file {
        read_file(f, &mut opts)?;
    }
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_then_own_group_and_quotes() {
        let dir = std::env::temp_dir().join(format!("rr-cnf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("my.cnf");
        std::fs::write(
            &f,
            "[mysqld]\nuser=mysql\n[client]\nuser = app\npassword=\"s3 cret\"\nport=3307\n[repl-repair]\nuser=repair\n",
        )
        .unwrap();
        let mut o = ClientOptions::default();
        read_file(&f, &mut o).unwrap();
        assert_eq!(o.user.as_deref(), Some("repair"));
        assert_eq!(o.password.as_deref(), Some("s3 cret"));
        assert_eq!(o.port, Some(3307));
        assert!(
            !format!("{o:?}").contains("s3 cret"),
            "Debug hides the password"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn devices_and_directories_are_refused_without_reading() {
        for p in ["/dev/zero", "/"] {
            let e = load(Some(Path::new(p)), None).unwrap_err();
            assert!(matches!(e, OptionFileError::NotAFile { .. }), "{p}: {e}");
        }
    }

    #[test]
    fn a_missing_file_is_a_clear_error() {
        let e = load(Some(Path::new("/nonexistent/my.cnf")), None).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/my.cnf"), "{e}");
    }
}
