//! Option files the way MySQL clients read them: `--defaults-file` (only that file), or
//! `~/.my.cnf` then `--defaults-extra-file`, later files winning; groups `[client]`,
//! `[client-server]`, `[client-mariadb]` (as MariaDB's client), then `[repl-repair]`. Only
//! the connection options are taken (user, password, socket, host, port): credentials never have to be on the command line, where `ps` shows them.

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
    /// `[repl-repair-primary]` `user`/`password`: the login on the primaries, for reading
    /// their binlogs.
    pub primary_user: Option<String>,
    pub primary_password: Option<String>,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("socket", &self.socket)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("primary_user", &self.primary_user)
            .field(
                "primary_password",
                &self.primary_password.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

/// The groups MariaDB's client reads, in its order; `[repl-repair]` is applied after
/// them wherever it stands in the file, so the agent's own settings always win.
const CLIENT_GROUPS: [&str; 3] = ["client", "client-server", "client-mariadb"];
const OWN_GROUP: &str = "repl-repair";
/// The login on the primaries (binlog reads); only `user` and `password` are read.
const PRIMARY_GROUP: &str = "repl-repair-primary";

/// Parses one option file's client groups and `[repl-repair]` into `into`.
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
    parse(&text, path, into)
}

#[derive(Clone, Copy, PartialEq)]
enum Group {
    Client,
    Own,
    Primary,
    Other,
}

/// Parses option-file text (`path` only names it in errors) the way MariaDB's client
/// does: see [`strip_comment`] and [`unquote`] for the value rules.
pub fn parse(text: &str, path: &Path, into: &mut ClientOptions) -> Result<(), OptionFileError> {
    let syntax = |line: usize, what: String| OptionFileError::Syntax {
        path: path.to_path_buf(),
        line,
        what,
    };
    // Later lines win within a level; the own group's level is applied last.
    let mut client: HashMap<String, (String, usize)> = HashMap::new();
    let mut own: HashMap<String, (String, usize)> = HashMap::new();
    let mut primary: HashMap<String, (String, usize)> = HashMap::new();
    let mut group = Group::Other;
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
            // Like the server: text after `]` is ignored, trailing blanks in the name
            // are not part of it, and group names match case-insensitively.
            let (name, _) = g
                .split_once(']')
                .ok_or_else(|| syntax(n + 1, format!("unterminated group header {line:?}")))?;
            let name = name.trim_end();
            group = if CLIENT_GROUPS.iter().any(|c| c.eq_ignore_ascii_case(name)) {
                Group::Client
            } else if OWN_GROUP.eq_ignore_ascii_case(name) {
                Group::Own
            } else if PRIMARY_GROUP.eq_ignore_ascii_case(name) {
                Group::Primary
            } else {
                Group::Other
            };
            continue;
        }
        let values = match group {
            Group::Client => &mut client,
            Group::Own => &mut own,
            Group::Primary => &mut primary,
            Group::Other => continue,
        };
        let line = strip_comment(line);
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), unquote(v)),
            None => (line.trim(), String::new()),
        };
        values.insert(key.replace('_', "-").to_ascii_lowercase(), (value, n + 1));
    }
    for (k, (v, _)) in primary {
        match k.as_str() {
            "user" => into.primary_user = Some(v),
            "password" => into.primary_password = Some(v),
            _ => {}
        }
    }
    for (k, (v, line)) in client.into_iter().chain(own) {
        match k.as_str() {
            "user" => into.user = Some(v),
            "password" => into.password = Some(v),
            "socket" => into.socket = Some(v),
            "host" => into.host = Some(v),
            "port" => {
                into.port = Some(
                    v.parse()
                        .map_err(|_| syntax(line, format!("port {v:?} is not a number")))?,
                )
            }
            _ => {}
        }
    }
    Ok(())
}

/// Cuts a trailing comment: a `#` outside quotes starts one anywhere in the line (also
/// without a blank before it: `password=a#b` is `a` to the mysql client too); inside
/// `'…'` or `"…"` it is text, and a backslash there escapes the next quote. A `;`
/// starts a comment only at the beginning of a line. This runs before [`unquote`], so
/// `password="a #b"` keeps its `#`.
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if (c == '"' || c == '\'') && !escaped {
            match quote {
                None => quote = Some(c),
                Some(q) if q == c => quote = None,
                Some(_) => {}
            }
        }
        if quote.is_none() && c == '#' {
            return line.get(..i).unwrap_or(line);
        }
        escaped = quote.is_some() && c == '\\' && !escaped;
    }
    line
}

/// A value as the server's option-file reader makes it: blanks trimmed, one pair of
/// matching quotes around the whole value removed, then the escapes `\b \t \n \r \s
/// \\ \" \'` replaced (in quoted and bare values alike); any other backslash is kept.
fn unquote(v: &str) -> String {
    let v = v.trim();
    let inner = ['"', '\'']
        .iter()
        .find_map(|&q| v.strip_prefix(q).and_then(|r| r.strip_suffix(q)))
        .unwrap_or(v);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') => out.push('\u{8}'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('s') => out.push(' '),
            Some(e @ ('\\' | '"' | '\'')) => out.push(e),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
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

    /// The password `parse` finds in a `[client]` group holding `line`.
    fn password(line: &str) -> Option<String> {
        let mut o = ClientOptions::default();
        parse(&format!("[client]\n{line}\n"), Path::new("t.cnf"), &mut o).unwrap();
        o.password
    }

    // Expected values below are what MariaDB 10.11's `my_print_defaults` prints for
    // the same lines.

    #[test]
    fn quotes_are_removed_after_the_comment_is_cut() {
        assert_eq!(password(r#"password="a #b""#).as_deref(), Some("a #b"));
        assert_eq!(password("password='a #b'").as_deref(), Some("a #b"));
        assert_eq!(
            password(r#"password = "s3 cret"   "#).as_deref(),
            Some("s3 cret")
        );
        assert_eq!(password(r#"password="a" # note"#).as_deref(), Some("a"));
        // Only a pair around the whole value is removed.
        assert_eq!(password(r#"password="a"b""#).as_deref(), Some(r#"a"b"#));
        assert_eq!(
            password(r#"password=ab"c#d"e"#).as_deref(),
            Some(r#"ab"c#d"e"#)
        );
        assert_eq!(password(r#"password = ""#).as_deref(), Some("\""));
        assert_eq!(password(r#"password = """#).as_deref(), Some(""));
        // An unterminated quote runs to the end of the line: no comment in it.
        assert_eq!(password(r#"password = "a#b"#).as_deref(), Some("\"a#b"));
    }

    #[test]
    fn hash_outside_quotes_starts_a_comment_anywhere() {
        assert_eq!(password("password=a #b").as_deref(), Some("a"));
        assert_eq!(password("password=a#b").as_deref(), Some("a"));
        assert_eq!(password("password=#b").as_deref(), Some(""));
    }

    #[test]
    fn semicolon_starts_a_comment_only_at_the_start_of_a_line() {
        assert_eq!(password("password=a;b").as_deref(), Some("a;b"));
        assert_eq!(password("password=a ;b").as_deref(), Some("a ;b"));
        assert_eq!(password("  ; password=x"), None);
        assert_eq!(password("  # password=x"), None);
    }

    #[test]
    fn backslash_escapes_in_quoted_and_bare_values() {
        assert_eq!(
            password(r#"password="\b\t\n\r\s\\""#).as_deref(),
            Some("\u{8}\t\n\r \\")
        );
        assert_eq!(password(r"password=a\sb\tc").as_deref(), Some("a b\tc"));
        assert_eq!(password(r#"password='a\'b'"#).as_deref(), Some("a'b"));
        // An escaped quote neither ends the quoted part nor hides the comment after it.
        assert_eq!(
            password(r##"password="a\"#b" # c"##).as_deref(),
            Some(r##"a"#b"##)
        );
        // Unknown escapes and a trailing backslash stay as they are.
        assert_eq!(password(r"password=a\qb").as_deref(), Some(r"a\qb"));
        assert_eq!(password(r"password=a\").as_deref(), Some(r"a\"));
        // `\\` is one escaped backslash, so the quote after it closes the value.
        assert_eq!(password(r##"password="a\\\\"#x"##).as_deref(), Some(r"a\\"));
    }

    #[test]
    fn mariadb_client_groups_are_read_and_own_group_wins() {
        let mut o = ClientOptions::default();
        let text = "[repl-repair]\nuser=repair\n[client]\nuser=app\nport=3307\n\
                    [client-server]\nhost=db1\n[Client-MariaDB] # c\nsocket=/s.sock\n\
                    user=maria\n[mysqld]\nsocket=/other.sock\n";
        parse(text, Path::new("t.cnf"), &mut o).unwrap();
        assert_eq!(o.user.as_deref(), Some("repair"), "[repl-repair] wins");
        assert_eq!(o.host.as_deref(), Some("db1"));
        assert_eq!(o.socket.as_deref(), Some("/s.sock"));
        assert_eq!(o.port, Some(3307));
    }

    #[test]
    fn primary_group_holds_only_the_primary_login() {
        let mut o = ClientOptions::default();
        let text = "[client]\nuser=repair\npassword=r\n[repl-repair-primary]\nuser=repl\n\
                    password=\"p #1\"\nhost=ignored\n";
        parse(text, Path::new("t.cnf"), &mut o).unwrap();
        assert_eq!(o.user.as_deref(), Some("repair"));
        assert_eq!(o.password.as_deref(), Some("r"));
        assert_eq!(o.primary_user.as_deref(), Some("repl"));
        assert_eq!(o.primary_password.as_deref(), Some("p #1"));
        assert_eq!(o.host, None, "[repl-repair-primary] names no replica");
        assert!(!format!("{o:?}").contains("p #1"));
    }

    #[test]
    fn bad_port_names_its_line_and_bad_header_is_an_error() {
        let mut o = ClientOptions::default();
        let e = parse("[client]\n\nport=x\n", Path::new("t.cnf"), &mut o).unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
        let e = parse("[client\n", Path::new("t.cnf"), &mut o).unwrap_err();
        assert!(e.to_string().contains("group header"), "{e}");
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
