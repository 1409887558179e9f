//! The replica as the pipeline sees it: one connection, owned here and never handed out.
//!
//! Reads go through a [`Reader`], which runs `SELECT` and `SHOW` only. The one way to
//! write is [`Replica::begin_repair`]: it takes the replica's repair lock
//! (`GET_LOCK('repl-repair:<connection>')`, so agents on different hosts never repair one
//! replica at once) and returns a [`RepairSession`] that hands out the
//! [`crate::apply::Applier`]; when the session ends, the session variables a repair set
//! are put back and the lock is released. gh-ost's split, held by the type system: the
//! inspector reads, the applier alone writes.

use crate::locate::{RelayLogs, Target};
use crate::status::{Flavor, Incident, ReplicaStatus};
use mysql::prelude::{AsStatement, Queryable};
use mysql::{Binary, Conn, Params, QueryResult, Statement, Text};
use std::path::PathBuf;
use std::time::Duration;

/// A connected replica and what the pipeline needs to know about it.
pub struct Replica {
    /// The instance's name in logs, locks and journals.
    pub name: String,
    pub flavor: Flavor,
    pub relay: RelayLogs,
    conn: Conn,
}

/// Why a repair session could not begin.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another agent holds the lock and is repairing this replica.
    #[error("another agent holds the lock {lock} on this replica and is repairing it")]
    Held { lock: String },
    /// The lock could not even be asked for: a query error is not a busy replica.
    #[error("cannot take the repair lock {lock}: {source}")]
    Query {
        lock: String,
        #[source]
        source: mysql::Error,
    },
}

impl Replica {
    /// Connects and reads version, datadir and relay-log index from the server.
    pub fn connect(name: String, opts: mysql::Opts) -> Result<Self, ConnectError> {
        let conn = Conn::new(opts).map_err(ConnectError::Connect)?;
        Replica::new(name, conn).map_err(ConnectError::Query)
    }

    fn new(name: String, mut conn: Conn) -> Result<Self, mysql::Error> {
        let (version, datadir, index): (String, String, Option<String>) = conn
            .query_first("SELECT /* repl-repair */ VERSION(), @@datadir, @@relay_log_index")?
            .unwrap_or_default();
        Ok(Replica {
            name,
            flavor: Flavor::from_version(&version),
            relay: RelayLogs {
                index: PathBuf::from(index.unwrap_or_default()),
                datadir: PathBuf::from(datadir),
            },
            conn,
        })
    }

    /// Read-only access: `SELECT` and `SHOW`.
    pub fn reader(&mut self) -> Reader<'_> {
        Reader(&mut self.conn)
    }

    /// The server's TCP port, the instance's default name.
    pub fn port(&mut self) -> Option<u16> {
        self.reader()
            .query_first("SELECT /* repl-repair */ @@port")
            .ok()
            .flatten()
    }

    /// Every replication connection/channel's status.
    pub fn status_all(&mut self) -> Result<Vec<ReplicaStatus>, mysql::Error> {
        let flavor = self.flavor.clone();
        crate::status::read_all(&mut self.reader(), &flavor)
    }

    /// One connection's status (`""`: the default one).
    pub fn status(&mut self, connection: &str) -> Result<Option<ReplicaStatus>, mysql::Error> {
        let flavor = self.flavor.clone();
        crate::status::read(&mut self.reader(), &flavor, connection)
    }

    /// Whether this user may keep a session out of the binlog (`sql_log_bin = 0`, which
    /// a repair needs): set and put back on this session, changing no data (`check`).
    pub fn probe_sql_log_bin(&mut self) -> Result<(), mysql::Error> {
        self.conn
            .query_drop(crate::sql::SQL_LOG_BIN_OFF)
            .and_then(|_| self.conn.query_drop(crate::sql::SQL_LOG_BIN_ON))
    }

    /// Takes the repair lock of `connection` and opens the only session that may write.
    pub fn begin_repair(&mut self, connection: &str) -> Result<RepairSession<'_>, LockError> {
        let lock = crate::sql::repair_lock_name(connection);
        let got: Option<Option<i64>> =
            self.conn
                .query_first(crate::sql::get_lock(&lock))
                .map_err(|source| LockError::Query {
                    lock: lock.clone(),
                    source,
                })?;
        if got.flatten() != Some(1) {
            return Err(LockError::Held { lock });
        }
        Ok(RepairSession {
            replica: self,
            lock,
        })
    }

    /// Where the incident's transaction is: the relay logs and the walk's target.
    pub fn locate(&self, incident: &Incident, tail_wait: Duration) -> (RelayLogs, Target) {
        let logs = self.relay_logs(&incident.relay_log_file, &incident.connection);
        let target = Target {
            relay_file: logs.resolve(&incident.relay_log_file),
            relay_pos: incident.relay_log_pos,
            master_server_id: incident.master_server_id,
            end_log_pos: incident.end_log_pos,
            tail_wait,
        };
        (logs, target)
    }

    /// The relay-log index, from `@@relay_log_index` or, when that is empty, the default
    /// `<relay log base name>.index` beside the current relay file.
    pub fn relay_logs(&self, relay_file: &str, connection: &str) -> RelayLogs {
        let mut logs = self.relay.clone();
        // A named MariaDB connection has its own index, `<base>-<name>.index`, named
        // like its relay files; @@relay_log_index is the default connection's.
        if logs.index.as_os_str().is_empty() || !connection.is_empty() {
            let current = logs.resolve(relay_file);
            logs.index = current.with_extension("index");
        } else {
            logs.index = logs.resolve(&logs.index.to_string_lossy());
        }
        logs
    }
}

/// Why a replica could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Connect(mysql::Error),
    #[error("connected, but cannot query the server: {0}")]
    Query(mysql::Error),
}

/// A repair in progress: holds the lock; hands out reads and the applier.
pub struct RepairSession<'a> {
    replica: &'a mut Replica,
    lock: String,
}

impl RepairSession<'_> {
    pub fn replica(&self) -> &Replica {
        self.replica
    }

    pub fn reader(&mut self) -> Reader<'_> {
        self.replica.reader()
    }

    pub fn status(&mut self, connection: &str) -> Result<Option<ReplicaStatus>, mysql::Error> {
        self.replica.status(connection)
    }

    /// The only thing that can write to the replica.
    pub fn applier(&mut self) -> crate::apply::Applier<'_> {
        crate::apply::Applier::new(&mut self.replica.conn, &self.replica.flavor)
    }
}

impl Drop for RepairSession<'_> {
    fn drop(&mut self) {
        if let Err(e) = self
            .replica
            .conn
            .query_drop(crate::sql::release_lock(&self.lock))
        {
            // The server drops a named lock with the connection; drop ours so it does.
            tracing::warn!(
                instance = %crate::record::inert(&self.replica.name),
                "cannot release the repair lock {}: {e}; reconnecting releases it",
                self.lock
            );
            let _ = self.replica.conn.reset();
        }
    }
}

/// A read-only handle on the replica's connection: statements other than `SELECT` and
/// `SHOW` are refused before they reach the server.
pub struct Reader<'a>(&'a mut Conn);

/// Whether `q` is a statement a reader may run: `SELECT`/`SHOW`, after any leading
/// comments and white space.
fn is_read(q: &str) -> bool {
    let mut rest = q.trim_start();
    while let Some(after) = rest.strip_prefix("/*") {
        match after.find("*/") {
            Some(end) => rest = after[end + 2..].trim_start(),
            None => return false,
        }
    }
    let verb: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    matches!(verb.as_str(), "SELECT" | "SHOW")
}

fn refuse(q: &str) -> mysql::Error {
    mysql::Error::IoError(std::io::Error::other(format!(
        "refused to run a writing statement through a read-only handle: {}",
        crate::record::preview(q, 80)
    )))
}

impl Queryable for Reader<'_> {
    fn query_iter<Q: AsRef<str>>(
        &mut self,
        query: Q,
    ) -> mysql::Result<QueryResult<'_, '_, '_, Text>> {
        if !is_read(query.as_ref()) {
            return Err(refuse(query.as_ref()));
        }
        self.0.query_iter(query)
    }

    fn prep<Q: AsRef<str>>(&mut self, query: Q) -> mysql::Result<Statement> {
        if !is_read(query.as_ref()) {
            return Err(refuse(query.as_ref()));
        }
        self.0.prep(query)
    }

    fn close(&mut self, stmt: Statement) -> mysql::Result<()> {
        self.0.close(stmt)
    }

    fn exec_iter<S, P>(
        &mut self,
        stmt: S,
        params: P,
    ) -> mysql::Result<QueryResult<'_, '_, '_, Binary>>
    where
        S: AsStatement,
        P: Into<Params>,
    {
        // A statement text is prepared through `prep` above, so it is checked there.
        let stmt = stmt.as_statement(self)?.into_owned();
        self.0.exec_iter(stmt, params)
    }

    fn exec_batch<S, P, I>(&mut self, _stmt: S, _params: I) -> mysql::Result<()>
    where
        Self: Sized,
        S: AsStatement,
        P: Into<Params>,
        I: IntoIterator<Item = P>,
    {
        Err(refuse("a batch execution"))
    }
}

#[cfg(test)]
mod tests {
    use super::is_read;

    #[test]
    fn only_select_and_show_pass_the_reader() {
        for ok in [
            "SELECT 1",
            "  /* repl-repair */ select @@port",
            "SHOW SLAVE STATUS",
            "/* a */ /* b */ SHOW GRANTS",
        ] {
            assert!(is_read(ok), "{ok}");
        }
        for no in [
            "DELETE FROM t",
            "/* SELECT */ DELETE FROM t",
            "SET SESSION sql_log_bin = 0",
            "START SLAVE",
            "/* unterminated SELECT",
            "INSERT INTO t SELECT 1",
            "DO RELEASE_LOCK('x')",
        ] {
            assert!(!is_read(no), "{no}");
        }
    }
}
