//! `SHOW SLAVE STATUS` / `SHOW REPLICA STATUS` → a typed [`ReplicaStatus`], and a failed
//! SQL thread → an [`Incident`]. The SLAVE/REPLICA vocabulary lives here only: MySQL
//! 8.0.22+ renamed the statement and the fields (`Replica_SQL_Running`,
//! `Exec_Source_Log_Pos`, ...), MariaDB accepts the new statement but keeps the old names.

use std::collections::HashMap;

/// Which server we talk to, from `SELECT VERSION()`; decides the statements we send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flavor {
    pub mariadb: bool,
    pub version: (u32, u32, u32),
}

impl Flavor {
    pub fn from_version(v: &str) -> Self {
        Flavor {
            mariadb: v.contains("MariaDB"),
            version: crate::binlog::header::parse_version(v),
        }
    }

    /// MySQL 8.0.22 introduced `SHOW REPLICA STATUS`; 8.4 removed the old spelling.
    fn replica_words(&self) -> bool {
        !self.mariadb && self.version >= (8, 0, 22)
    }

    /// One row per replication connection: MariaDB's multi-source `SHOW ALL SLAVES
    /// STATUS` (with `Connection_name`), MySQL's status with one row per channel.
    pub fn show_status_sql(&self) -> &'static str {
        if self.mariadb {
            "SHOW ALL SLAVES STATUS"
        } else if self.replica_words() {
            "SHOW REPLICA STATUS"
        } else {
            "SHOW SLAVE STATUS"
        }
    }

    /// Restarts the SQL thread of one connection/channel (`""` = the default one).
    pub fn start_sql_thread_sql(&self, connection: &str) -> String {
        let name = crate::sql::string_literal(connection);
        match (self.mariadb, self.replica_words(), connection.is_empty()) {
            (true, _, true) => "START SLAVE SQL_THREAD".into(),
            (true, _, false) => format!("START SLAVE {name} SQL_THREAD"),
            (false, true, true) => "START REPLICA SQL_THREAD".into(),
            (false, true, false) => format!("START REPLICA SQL_THREAD FOR CHANNEL {name}"),
            (false, false, true) => "START SLAVE SQL_THREAD".into(),
            (false, false, false) => format!("START SLAVE SQL_THREAD FOR CHANNEL {name}"),
        }
    }
}

/// One row of the status statement, with both vocabularies folded into one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplicaStatus {
    /// MariaDB connection name / MySQL channel; empty for the default one.
    pub connection: String,
    pub io_running: String,
    pub sql_running: bool,
    pub last_sql_errno: u32,
    pub last_sql_error: String,
    pub last_io_errno: u32,
    pub last_io_error: String,
    pub relay_log_file: String,
    pub relay_log_pos: u64,
    /// The primary's binlog file and position of the last executed transaction's end.
    pub exec_master_log_file: String,
    pub exec_master_log_pos: u64,
    pub master_server_id: u32,
    pub seconds_behind: Option<u64>,
    pub read_master_log_file: String,
    pub read_master_log_pos: u64,
    /// The primary this connection replicates from, as the replica names it
    /// (`Master_Host`/`Master_Port`; `Source_*` on MySQL 8.0.22+).
    pub master_host: String,
    pub master_port: u16,
    /// MySQL MTS: the failed worker's (LAST_ERROR_NUMBER, LAST_ERROR_MESSAGE).
    pub worker_error: Option<(u32, String)>,
}

/// A named-field lookup that accepts the old or the new field name.
struct Fields(HashMap<String, Option<String>>);

impl Fields {
    fn get(&self, old: &str, new: &str) -> Option<&str> {
        self.0
            .get(old)
            .or_else(|| self.0.get(new))
            .and_then(|v| v.as_deref())
    }

    fn text(&self, old: &str, new: &str) -> String {
        self.get(old, new).unwrap_or_default().to_string()
    }

    fn num(&self, old: &str, new: &str) -> u64 {
        self.get(old, new)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl ReplicaStatus {
    /// Builds a status from (field name, value) pairs as the server returned them.
    pub fn from_fields(pairs: impl IntoIterator<Item = (String, Option<String>)>) -> Self {
        let f = Fields(pairs.into_iter().collect());
        ReplicaStatus {
            connection: f.text("Connection_name", "Channel_Name"),
            io_running: f.text("Slave_IO_Running", "Replica_IO_Running"),
            sql_running: f.get("Slave_SQL_Running", "Replica_SQL_Running") == Some("Yes"),
            last_sql_errno: f.num("Last_SQL_Errno", "Last_SQL_Errno") as u32,
            last_sql_error: f.text("Last_SQL_Error", "Last_SQL_Error"),
            last_io_errno: f.num("Last_IO_Errno", "Last_IO_Errno") as u32,
            last_io_error: f.text("Last_IO_Error", "Last_IO_Error"),
            relay_log_file: f.text("Relay_Log_File", "Relay_Log_File"),
            relay_log_pos: f.num("Relay_Log_Pos", "Relay_Log_Pos"),
            exec_master_log_file: f.text("Relay_Master_Log_File", "Relay_Source_Log_File"),
            exec_master_log_pos: f.num("Exec_Master_Log_Pos", "Exec_Source_Log_Pos"),
            master_server_id: f.num("Master_Server_Id", "Source_Server_Id") as u32,
            seconds_behind: f
                .get("Seconds_Behind_Master", "Seconds_Behind_Source")
                .and_then(|v| v.parse().ok()),
            read_master_log_file: f.text("Master_Log_File", "Source_Log_File"),
            read_master_log_pos: f.num("Read_Master_Log_Pos", "Read_Source_Log_Pos"),
            master_host: f.text("Master_Host", "Source_Host"),
            master_port: u16::try_from(f.num("Master_Port", "Source_Port")).unwrap_or(0),
            worker_error: None,
        }
    }

    /// The incident this status describes, if the SQL thread stopped on an error we repair.
    ///
    /// On a MySQL multi-threaded replica the status carries the coordinator's message
    /// (with the position) and the worker's error must come from
    /// performance_schema.replication_applier_status_by_worker (`worker_error`).
    pub fn incident(&self) -> Option<Incident> {
        if self.sql_running {
            return None;
        }
        let (errno, worker_message) = match &self.worker_error {
            Some((n, m)) if self.is_coordinator_stop() => (*n, Some(m.as_str())),
            _ => (self.last_sql_errno, None),
        };
        if !Incident::is_repairable(errno) {
            return None;
        }
        let parsed = ErrorText::parse(&self.last_sql_error);
        let detail = worker_message.map(ErrorText::parse).unwrap_or_default();
        Some(Incident {
            connection: self.connection.clone(),
            errno,
            message: match worker_message {
                Some(m) => format!("{m} (coordinator: {})", self.last_sql_error),
                None => self.last_sql_error.clone(),
            },
            relay_log_file: self.relay_log_file.clone(),
            relay_log_pos: self.relay_log_pos,
            exec_master_log_file: self.exec_master_log_file.clone(),
            exec_master_log_pos: self.exec_master_log_pos,
            master_server_id: self.master_server_id,
            end_log_pos: parsed.end_log_pos.or(detail.end_log_pos),
            master_log_file: parsed.master_log_file.or(detail.master_log_file),
            table: parsed.table.or(detail.table),
            key_name: parsed.key_name.or(detail.key_name),
        })
    }

    /// MySQL's multi-threaded replica stops with the coordinator's summary message.
    pub fn is_coordinator_stop(&self) -> bool {
        self.last_sql_error.starts_with("Coordinator stopped")
    }
}

/// A stopped SQL thread with an error we repair, and where its transaction is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// The replication connection (MariaDB) or channel (MySQL) that stopped.
    pub connection: String,
    pub errno: u32,
    pub message: String,
    /// Start of the failing transaction in the relay log.
    pub relay_log_file: String,
    pub relay_log_pos: u64,
    pub exec_master_log_file: String,
    pub exec_master_log_pos: u64,
    pub master_server_id: u32,
    /// End of the failing *event*, in the primary's binlog coordinates (from the message).
    pub end_log_pos: Option<u64>,
    pub master_log_file: Option<String>,
    /// `schema.table` named by the message.
    pub table: Option<String>,
    /// The key named by a 1062 message (`PRIMARY`, `uk_k`, or MySQL 8's `t1.PRIMARY`).
    pub key_name: Option<String>,
}

impl Incident {
    pub const DUP_KEY: u32 = 1062;
    pub const ROW_NOT_FOUND: u32 = 1032;

    pub fn is_repairable(errno: u32) -> bool {
        errno == Self::DUP_KEY || errno == Self::ROW_NOT_FOUND
    }
}

/// What can be read out of Last_SQL_Error (see MYSQL_FACTS.md for the observed shapes).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ErrorText {
    pub table: Option<String>,
    pub key_name: Option<String>,
    pub master_log_file: Option<String>,
    pub end_log_pos: Option<u64>,
}

impl ErrorText {
    pub fn parse(msg: &str) -> Self {
        let after = |marker: &str| msg.find(marker).map(|i| &msg[i + marker.len()..]);
        let word = |s: &str| {
            s.split(|c: char| c.is_whitespace() || c == ',' || c == ';')
                .next()
                .unwrap_or("")
                .to_string()
        };
        let table = after(" event on table ").map(|s| word(s).trim_end_matches(';').to_string());
        let key_name = after("for key '").and_then(|s| s.find('\'').map(|i| s[..i].to_string()));
        let master_log_file = after("the event's master log ")
            .or_else(|| after("the event's source log "))
            .or_else(|| after(" at master log "))
            .or_else(|| after(" at source log "))
            .map(word);
        let end_log_pos = after("end_log_pos ").and_then(|s| {
            s.chars()
                .take_while(|c| c.is_ascii_digit())
                .collect::<String>()
                .parse()
                .ok()
        });
        ErrorText {
            table,
            key_name,
            master_log_file,
            end_log_pos,
        }
    }
}

/// Reads every replication connection's status row; empty when the server is not a
/// replica.
pub fn read_all(
    conn: &mut impl mysql::prelude::Queryable,
    flavor: &Flavor,
) -> Result<Vec<ReplicaStatus>, mysql::Error> {
    let rows: Vec<mysql::Row> = conn.query(flavor.show_status_sql())?;
    let mut all: Vec<ReplicaStatus> = rows
        .into_iter()
        .map(|row| {
            let names: Vec<String> = row
                .columns_ref()
                .iter()
                .map(|c| c.name_str().into_owned())
                .collect();
            let values = row.unwrap();
            ReplicaStatus::from_fields(names.into_iter().zip(values).map(|(n, v)| {
                let text = match v {
                    mysql::Value::NULL => None,
                    mysql::Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                    other => Some(other.as_sql(true).trim_matches('\'').to_string()),
                };
                (n, text)
            }))
        })
        .collect();
    if !flavor.mariadb {
        for st in all.iter_mut().filter(|s| s.is_coordinator_stop()) {
            let worker: Option<(u32, String)> = conn.exec_first(
                "SELECT /* repl-repair */ LAST_ERROR_NUMBER, LAST_ERROR_MESSAGE \
                 FROM performance_schema.replication_applier_status_by_worker \
                 WHERE CHANNEL_NAME = ? AND LAST_ERROR_NUMBER <> 0 \
                 ORDER BY LAST_ERROR_TIMESTAMP DESC LIMIT 1",
                (st.connection.as_str(),),
            )?;
            st.worker_error = worker;
        }
    }
    Ok(all)
}

/// The status row of one connection/channel.
pub fn read(
    conn: &mut impl mysql::prelude::Queryable,
    flavor: &Flavor,
    connection: &str,
) -> Result<Option<ReplicaStatus>, mysql::Error> {
    Ok(read_all(conn, flavor)?
        .into_iter()
        .find(|s| s.connection == connection))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_1062_text_as_observed() {
        let e = ErrorText::parse(
            "Could not execute Write_rows_v1 event on table lab.t; Duplicate entry '6' for key 'PRIMARY', Error_code: 1062; handler error HA_ERR_FOUND_DUPP_KEY; the event's master log primary-bin.000002, end_log_pos 1294",
        );
        assert_eq!(e.table.as_deref(), Some("lab.t"));
        assert_eq!(e.key_name.as_deref(), Some("PRIMARY"));
        assert_eq!(e.master_log_file.as_deref(), Some("primary-bin.000002"));
        assert_eq!(e.end_log_pos, Some(1294));
    }

    #[test]
    fn mysql8_source_log_and_qualified_key() {
        let e = ErrorText::parse(
            "Could not execute Write_rows event on table test.t1; Duplicate entry '1' for key 't1.PRIMARY', Error_code: 1062; handler error HA_ERR_FOUND_DUPP_KEY; the event's source log binlog.000003, end_log_pos 1234",
        );
        assert_eq!(e.key_name.as_deref(), Some("t1.PRIMARY"));
        assert_eq!(e.master_log_file.as_deref(), Some("binlog.000003"));
        assert_eq!(e.end_log_pos, Some(1234));
    }

    #[test]
    fn mysql_mts_coordinator_text() {
        let e = ErrorText::parse(
            "Coordinator stopped because there were error(s) in the worker(s). The most recent failure being: Worker 1 failed executing transaction 'ANONYMOUS' at master log mysql-bin.000002, end_log_pos 2056. See error log and/or performance_schema.replication_applier_status_by_worker table for more details about this failure or others, if any.",
        );
        assert_eq!(e.master_log_file.as_deref(), Some("mysql-bin.000002"));
        assert_eq!(e.end_log_pos, Some(2056));
    }

    #[test]
    fn replica_vocabulary_is_folded() {
        let s = ReplicaStatus::from_fields([
            ("Replica_SQL_Running".to_string(), Some("No".to_string())),
            ("Last_SQL_Errno".to_string(), Some("1032".to_string())),
            ("Exec_Source_Log_Pos".to_string(), Some("777".to_string())),
            (
                "Relay_Source_Log_File".to_string(),
                Some("b.000001".to_string()),
            ),
        ]);
        assert!(!s.sql_running);
        assert_eq!(s.exec_master_log_pos, 777);
        assert_eq!(s.exec_master_log_file, "b.000001");
        assert_eq!(s.incident().map(|i| i.errno), Some(1032));
    }

    #[test]
    fn statements_by_flavor() {
        let maria = Flavor::from_version("10.11.19-MariaDB-log");
        assert_eq!(maria.show_status_sql(), "SHOW ALL SLAVES STATUS");
        assert_eq!(
            maria.start_sql_thread_sql("b"),
            "START SLAVE 'b' SQL_THREAD"
        );
        assert_eq!(
            Flavor::from_version("8.4.0").start_sql_thread_sql("ch1"),
            "START REPLICA SQL_THREAD FOR CHANNEL 'ch1'"
        );
        assert_eq!(
            Flavor::from_version("8.0.22").show_status_sql(),
            "SHOW REPLICA STATUS"
        );
        assert_eq!(
            Flavor::from_version("8.0.21").start_sql_thread_sql(""),
            "START SLAVE SQL_THREAD"
        );
    }
}
