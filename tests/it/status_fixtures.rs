//! Status rows of MySQL flavours that cannot run here (fixtures/mysql-status), turned
//! into incidents the way the watcher does it.

use repl_repair::status::{Flavor, ReplicaStatus};
use std::path::Path;

/// Parses `SHOW ... STATUS\G` text (and an optional worker-table section).
fn load(name: &str) -> ReplicaStatus {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/mysql-status")
        .join(name);
    let text = std::fs::read_to_string(&p).unwrap();
    let (status, worker) =
        match text.split_once("-- performance_schema.replication_applier_status_by_worker") {
            Some((a, b)) => (a, Some(b)),
            None => (text.as_str(), None),
        };
    let fields = status.lines().filter_map(|l| {
        let (k, v) = l
            .split_once(": ")
            .or_else(|| l.trim_end().strip_suffix(':').map(|k| (k, "")))?;
        let v = v.trim_end();
        Some((
            k.trim().to_string(),
            if v == "NULL" {
                None
            } else {
                Some(v.to_string())
            },
        ))
    });
    let mut st = ReplicaStatus::from_fields(fields);
    if let Some(w) = worker {
        let get = |k: &str| {
            w.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_string())
        };
        st.worker_error = Some((
            get("LAST_ERROR_NUMBER:").unwrap().parse().unwrap(),
            get("LAST_ERROR_MESSAGE:").unwrap(),
        ));
    }
    st
}

#[test]
fn mysql_5_7_row_not_found() {
    let st = load("mysql-5.7-1032.txt");
    let i = st.incident().expect("an incident");
    assert_eq!(i.errno, 1032);
    assert_eq!(
        (i.relay_log_file.as_str(), i.relay_log_pos),
        ("relay-bin.000004", 1708)
    );
    assert_eq!(i.end_log_pos, Some(2056));
    assert_eq!(i.master_server_id, 1);
    assert_eq!(i.table.as_deref(), Some("lab.t"));
    assert_eq!(
        Flavor::from_version("5.7.44-log").start_sql_thread_sql(""),
        "START SLAVE SQL_THREAD"
    );
}

#[test]
fn mysql_8_0_replica_vocabulary_and_qualified_key() {
    let st = load("mysql-8.0.36-1062.txt");
    let i = st.incident().expect("an incident");
    assert_eq!(i.errno, 1062);
    assert_eq!(i.key_name.as_deref(), Some("t1.PRIMARY"));
    assert_eq!(i.exec_master_log_file, "binlog.000003");
    assert_eq!(i.exec_master_log_pos, 968);
    assert_eq!(i.master_log_file.as_deref(), Some("binlog.000003"));
    let f = Flavor::from_version("8.0.36");
    assert_eq!(f.show_status_sql(), "SHOW REPLICA STATUS");
    assert_eq!(
        f.start_sql_thread_sql(&i.connection),
        "START REPLICA SQL_THREAD"
    );
}

#[test]
fn mysql_8_4_multi_threaded_replica_on_a_channel() {
    let mut st = load("mysql-8.4-mts-channel.txt");
    let worker = st.worker_error.take();
    // Without the worker table's row, the coordinator's text alone names no table.
    let coordinator_only = st.incident().expect("errno 1062 is still an incident");
    assert_eq!(coordinator_only.table, None);
    st.worker_error = worker;
    let i = st.incident().expect("an incident");
    assert_eq!(i.errno, 1062);
    assert_eq!(i.connection, "ch1");
    assert_eq!(i.end_log_pos, Some(2056));
    assert_eq!(i.table.as_deref(), Some("shop.orders"));
    assert_eq!(i.key_name.as_deref(), Some("orders.PRIMARY"));
    assert_eq!(i.master_server_id, 11);
    assert_eq!(
        Flavor::from_version("8.4.0").start_sql_thread_sql(&i.connection),
        "START REPLICA SQL_THREAD FOR CHANNEL 'ch1'"
    );
}
