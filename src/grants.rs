//! `SHOW GRANTS` lines → what the connected user may do. The repair and `repl-repair
//! check` ask the server which privileges it granted instead of guessing from the
//! version: the same user can be set up with SUPER, the MariaDB 10.5+ split privileges
//! (BINLOG ADMIN, REPLICATION SLAVE ADMIN, SLAVE MONITOR) or MySQL 8's dynamic ones.
//!
//! Lines without `ON` (role memberships, `GRANT role TO user`) and `PROXY` grants carry
//! no privilege on data and are ignored; column-level grants (`SELECT (a)`) do not count
//! as table-level ones.

/// Where a grant applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// `*.*`
    Global,
    /// `` `db`.* `` — the name may hold the `%`/`_` wildcards of `GRANT … ON`.
    Database(String),
    /// `` `db`.`tbl` ``
    Table(String, String),
}

/// One `GRANT <privileges> ON <scope> TO …` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Upper-case privilege names, `ALL PRIVILEGES` as `ALL`.
    pub privileges: Vec<String>,
    pub scope: Scope,
}

/// The user's privileges, from its `SHOW GRANTS` lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    pub grants: Vec<Grant>,
}

/// Privileges that let `SET SESSION sql_log_bin = 0` run (MariaDB 10.5.2+: BINLOG
/// ADMIN; MySQL 8: SYSTEM_VARIABLES_ADMIN or SESSION_VARIABLES_ADMIN; SUPER everywhere).
pub const SQL_LOG_BIN: &[&str] = &[
    "SUPER",
    "BINLOG ADMIN",
    "SYSTEM_VARIABLES_ADMIN",
    "SESSION_VARIABLES_ADMIN",
];

/// Privileges that let `START SLAVE SQL_THREAD` run.
/// Reading a primary's binlog (COM_BINLOG_DUMP).
pub const DUMP: &[&str] = &["REPLICATION SLAVE", "ALL", "ALL PRIVILEGES"];

pub const RESTART: &[&str] = &[
    "SUPER",
    "REPLICATION SLAVE ADMIN",
    "REPLICATION_SLAVE_ADMIN",
];

/// Privileges that let the replica status be read (MariaDB 10.5.9+: SLAVE MONITOR;
/// before, and on MySQL: REPLICATION CLIENT or SUPER).
pub const STATUS: &[&str] = &["SLAVE MONITOR", "REPLICATION CLIENT", "SUPER"];

/// Privileges a repair uses on the repaired tables: read (and lock `FOR UPDATE`),
/// insert before-images, delete conflicting rows.
pub const DATA: &[&str] = &["SELECT", "INSERT", "DELETE"];

impl Grants {
    /// Parses `SHOW GRANTS` output; lines it does not understand grant nothing.
    pub fn parse<S: AsRef<str>>(lines: &[S]) -> Self {
        Grants {
            grants: lines
                .iter()
                .filter_map(|l| parse_line(l.as_ref()))
                .collect(),
        }
    }

    /// Whether one of `any_of` is granted on `*.*` (or `ALL` is).
    pub fn global_any(&self, any_of: &[&str]) -> bool {
        self.grants
            .iter()
            .any(|g| g.scope == Scope::Global && holds_any(&g.privileges, any_of))
    }

    /// Whether `privilege` is granted on `db.table` (`table` = `None`: on the whole
    /// schema), through a global, schema (wildcards included) or table grant.
    pub fn allows(&self, privilege: &str, db: &str, table: Option<&str>) -> bool {
        self.grants.iter().any(|g| {
            let applies = match &g.scope {
                Scope::Global => true,
                Scope::Database(pattern) => like(pattern, db),
                Scope::Table(d, t) => d == db && table.is_some_and(|tb| tb == t),
            };
            applies && holds_any(&g.privileges, &[privilege])
        })
    }

    /// The privileges of `wanted` not granted on `db.table` (or the whole schema).
    pub fn missing<'a>(&self, wanted: &[&'a str], db: &str, table: Option<&str>) -> Vec<&'a str> {
        wanted
            .iter()
            .copied()
            .filter(|p| !self.allows(p, db, table))
            .collect()
    }
}

fn holds_any(privileges: &[String], any_of: &[&str]) -> bool {
    privileges
        .iter()
        .any(|p| p == "ALL" || any_of.iter().any(|w| p.eq_ignore_ascii_case(w)))
}

/// `GRANT a, b ON scope TO …` → its privileges and scope.
fn parse_line(line: &str) -> Option<Grant> {
    let rest = strip_prefix_ci(line.trim_start(), "GRANT ")?;
    // Privileges end at the first ` ON ` outside backquotes and parentheses (column
    // lists: `SELECT (`a`, `b`)`).
    let (privs, after) = split_top_level(rest, " ON ")?;
    let after = after.trim_start();
    let after = strip_prefix_ci(after, "TABLE ").unwrap_or(after);
    let (target, _) = split_top_level(after, " TO ")?;
    let scope = parse_scope(target.trim())?;
    let privileges = split_commas(privs)
        .into_iter()
        .map(|p| p.trim().to_ascii_uppercase())
        // A column grant (`SELECT (a)`) is not a table-level privilege.
        .filter(|p| !p.is_empty() && !p.contains('('))
        .map(|p| {
            let p = p.split_whitespace().collect::<Vec<_>>().join(" ");
            if p == "ALL PRIVILEGES" {
                "ALL".into()
            } else {
                p
            }
        })
        .collect();
    Some(Grant { privileges, scope })
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

/// Splits at the first `sep` (case-insensitive) outside backquotes, quotes and
/// parentheses.
fn split_top_level<'a>(s: &'a str, sep: &str) -> Option<(&'a str, &'a str)> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '`' | '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth = depth.saturating_sub(1),
            (None, _) if depth == 0 => {
                if let Some(tail) = s.get(i..)
                    && strip_prefix_ci(tail, sep).is_some()
                {
                    return Some((s.get(..i)?, s.get(i + sep.len()..)?));
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits a privilege list at commas outside parentheses and backquotes.
fn split_commas(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut in_quote, mut start) = (0usize, false, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '`' => in_quote = !in_quote,
            '(' if !in_quote => depth += 1,
            ')' if !in_quote => depth = depth.saturating_sub(1),
            ',' if !in_quote && depth == 0 => {
                out.extend(s.get(start..i));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.extend(s.get(start..));
    out
}

/// `*.*`, `` `db`.* ``, `` `db`.`t` `` (backquotes optional, ``` `` ``` inside one is a
/// backquote).
fn parse_scope(s: &str) -> Option<Scope> {
    let (db, rest) = identifier(s)?;
    let rest = rest.strip_prefix('.')?;
    let (table, tail) = identifier(rest)?;
    if !tail.trim().is_empty() {
        return None;
    }
    Some(match (db.as_str(), table.as_str()) {
        ("*", "*") => Scope::Global,
        // A PROXY grant's target (`''@'%'`) is no db.table and was refused above.
        (_, "*") => Scope::Database(db),
        _ => Scope::Table(db, table),
    })
}

/// One identifier at the start of `s`: backquoted, `*`, or bare up to `.`/space.
fn identifier(s: &str) -> Option<(String, &str)> {
    if let Some(body) = s.strip_prefix('`') {
        let mut name = String::new();
        let mut chars = body.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '`' {
                if chars.peek().map(|&(_, n)| n) == Some('`') {
                    chars.next();
                    name.push('`');
                } else {
                    return Some((name, body.get(i + 1..)?));
                }
            } else {
                name.push(c);
            }
        }
        None
    } else {
        let end = s.find(['.', ' ']).unwrap_or(s.len());
        let (name, rest) = (s.get(..end)?, s.get(end..)?);
        (!name.is_empty() && !name.contains(['\'', '@'])).then(|| (name.to_string(), rest))
    }
}

/// `LIKE` as `GRANT … ON` schema names use it: `%` any run, `_` one character, `\`
/// escapes the next one (`lab\_1` is exactly `lab_1`).
fn like(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('%', rest)) => (0..=n.len()).any(|k| n.get(k..).is_some_and(|t| go(rest, t))),
            Some(('_', rest)) => n.split_first().is_some_and(|(_, t)| go(rest, t)),
            Some(('\\', rest)) if !rest.is_empty() => match (rest.split_first(), n.split_first()) {
                (Some((pc, pr)), Some((nc, nr))) => pc == nc && go(pr, nr),
                _ => false,
            },
            Some((c, rest)) => n
                .split_first()
                .is_some_and(|(nc, t)| nc == c && go(rest, t)),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// Reads the connected user's grants (`SHOW GRANTS`, which includes its enabled roles'
/// privileges on MariaDB).
pub fn read(conn: &mut impl mysql::prelude::Queryable) -> Result<Grants, String> {
    let lines: Vec<String> = conn
        .query("SHOW GRANTS /* repl-repair */")
        .map_err(|e| format!("cannot read the repair user's grants (SHOW GRANTS): {e}"))?;
    Ok(Grants::parse(&lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As MariaDB 10.11 prints them for the README's tested repair user.
    const MARIADB: &[&str] = &[
        "GRANT BINLOG ADMIN, REPLICATION SLAVE ADMIN, SLAVE MONITOR ON *.* TO `repair`@`localhost` IDENTIFIED BY PASSWORD '*A4B6157319038724E3560894F7F932C8886EBFCF'",
        "GRANT SELECT, INSERT, DELETE ON `lab`.* TO `repair`@`localhost`",
    ];

    #[test]
    fn mariadb_split_privileges() {
        let g = Grants::parse(MARIADB);
        assert!(g.global_any(RESTART));
        assert!(g.global_any(SQL_LOG_BIN));
        assert!(g.global_any(STATUS));
        assert!(g.missing(DATA, "lab", None).is_empty());
        assert!(g.missing(DATA, "lab", Some("t")).is_empty());
        assert_eq!(g.missing(DATA, "other", None), DATA);
    }

    #[test]
    fn all_and_super() {
        let g =
            Grants::parse(&["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"]);
        assert!(g.global_any(RESTART) && g.global_any(SQL_LOG_BIN));
        assert!(g.missing(DATA, "x", None).is_empty());
        let g = Grants::parse(&["GRANT SUPER ON *.* TO 'r'@'%'"]);
        assert!(g.global_any(RESTART) && g.global_any(SQL_LOG_BIN) && g.global_any(STATUS));
        assert_eq!(g.missing(DATA, "x", None), DATA);
    }

    #[test]
    fn mysql8_dynamic_privileges() {
        let g = Grants::parse(&[
            "GRANT REPLICATION CLIENT ON *.* TO `r`@`%`",
            "GRANT REPLICATION_SLAVE_ADMIN,SYSTEM_VARIABLES_ADMIN ON *.* TO `r`@`%`",
            "GRANT SELECT, INSERT, DELETE ON `shop`.`orders` TO `r`@`%`",
        ]);
        assert!(g.global_any(RESTART) && g.global_any(SQL_LOG_BIN) && g.global_any(STATUS));
        assert!(g.missing(DATA, "shop", Some("orders")).is_empty());
        assert_eq!(g.missing(DATA, "shop", Some("items")), DATA);
        assert_eq!(g.missing(DATA, "shop", None), DATA);
    }

    #[test]
    fn privileges_on_a_schema_are_not_global() {
        let g = Grants::parse(&["GRANT SUPER, ALL ON `lab`.* TO `r`@`%`"]);
        assert!(!g.global_any(RESTART));
        assert!(g.missing(DATA, "lab", None).is_empty());
    }

    #[test]
    fn one_missing_privilege_is_named() {
        let g = Grants::parse(&["GRANT SELECT, DELETE ON `lab`.* TO `r`@`%`"]);
        assert_eq!(g.missing(DATA, "lab", None), ["INSERT"]);
        let g = Grants::parse(&["GRANT BINLOG ADMIN, SLAVE MONITOR ON *.* TO `r`@`%`"]);
        assert!(!g.global_any(RESTART));
    }

    #[test]
    fn wildcards_escapes_and_quoted_names() {
        let g = Grants::parse(&[
            "GRANT SELECT, INSERT, DELETE ON `shop\\_%`.* TO `r`@`%`",
            "GRANT SELECT ON `we``ird db`.* TO `r`@`%`",
        ]);
        assert!(g.allows("DELETE", "shop_eu", None));
        assert!(!g.allows("DELETE", "shopXeu", None));
        assert!(g.allows("SELECT", "we`ird db", None));
        assert!(!g.allows("INSERT", "we`ird db", None));
    }

    #[test]
    fn column_grants_roles_proxy_and_usage_grant_nothing() {
        let g = Grants::parse(&[
            "GRANT USAGE ON *.* TO `r`@`%`",
            "GRANT SELECT (`a`, `b`), INSERT (`a`) ON `lab`.`t` TO `r`@`%`",
            "GRANT `dba_role` TO `r`@`%`",
            "GRANT PROXY ON ''@'%' TO 'r'@'%' WITH GRANT OPTION",
            "",
            "garbage",
        ]);
        assert!(!g.global_any(RESTART));
        assert_eq!(g.missing(DATA, "lab", Some("t")), DATA);
    }

    #[test]
    fn like_matches_as_grant_patterns_do() {
        assert!(like("lab", "lab"));
        assert!(!like("lab", "lab2"));
        assert!(like("lab%", "lab2"));
        assert!(like("l_b", "lab"));
        assert!(!like("l\\_b", "lab"));
        assert!(like("l\\_b", "l_b"));
        assert!(like("%", ""));
    }
}
