//! Pure planning: the row changes of the failing transaction + the replica's schema → a
//! [`RepairPlan`]: which replica rows must go and which must exist *before* the
//! transaction can apply.
//!
//! The transaction is simulated per unique key (the PRIMARY key and every UNIQUE key; a
//! NULL in a key never conflicts): the first touch of a key value decides what the replica
//! must hold beforehand. A first touch by an INSERT (or by the new value of an UPDATE)
//! means the value must be absent: delete the replica rows holding it (1062). A first
//! touch by an UPDATE/DELETE before-image means that row must be present: insert it
//! (1032). Later touches of the same value are the transaction's own doing and need
//! nothing. This covers every conflicting row of the transaction in one pass, so the SQL
//! thread is restarted once.

use crate::binlog::rows::{Row, RowChange};
use crate::schema::{TableInfo, UniqueKey};
use crate::sql;
use std::collections::HashSet;
use std::sync::Arc;

/// Replica rows holding a key value the transaction is about to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteStep {
    pub table: Arc<TableInfo>,
    /// Index of the unique key in `table.unique_keys`.
    pub key_index: usize,
    /// The key's values, rendered, one per key part.
    pub literals: Vec<String>,
    /// Identity of a row that may keep the value (the before-image's own row).
    pub except: Option<String>,
    /// `WHERE` condition selecting the rows to remove.
    pub condition: String,
}

/// A before-image the transaction expects to find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertStep {
    pub table: Arc<TableInfo>,
    /// Condition that finds the row the way the SQL thread would (its identity).
    pub identity: String,
    /// `(col, …) VALUES (…)`, generated columns left out.
    pub columns: Vec<String>,
    pub values: Vec<String>,
    /// Table without any unique key: the replica may now hold a stale near-duplicate.
    pub keyless: bool,
}

/// Deletes first, then inserts: a before-image may need a unique value that a stale row
/// holds, and that row is removed by a delete step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairPlan {
    pub deletes: Vec<DeleteStep>,
    pub inserts: Vec<InsertStep>,
    /// Row changes simulated.
    pub rows_seen: u64,
}

/// Statements are batched: many keys per DELETE, many rows per INSERT, bounded in count
/// and in SQL text so no statement nears max_allowed_packet.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub rows: usize,
    pub bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            rows: 500,
            bytes: 1 << 20,
        }
    }
}

/// One statement's worth of steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batch<'a> {
    /// Delete the replica rows matching `condition` (the OR of `steps` conditions).
    Delete {
        table: &'a Arc<TableInfo>,
        condition: String,
        steps: usize,
    },
    /// Make sure these before-images exist.
    Insert {
        table: &'a Arc<TableInfo>,
        steps: Vec<&'a InsertStep>,
    },
}

impl Batch<'_> {
    /// The changing statement, as `--dry-run` prints it.
    pub fn statement(&self) -> String {
        match self {
            Batch::Delete {
                table, condition, ..
            } => sql::delete(table, condition),
            Batch::Insert { table, steps } => sql::insert_ignore_rows(
                table,
                &steps[0].columns,
                steps.iter().map(|s| s.values.as_slice()),
            ),
        }
    }
}

impl RepairPlan {
    /// Groups the steps into statements: deletes per (table, key), a single-column key
    /// as `col IN (…)`, others as an OR of conditions; inserts per table and column list.
    pub fn batches(&self, limits: BatchLimits) -> Vec<Batch<'_>> {
        let mut out = Vec::new();
        let mut groups: Vec<(&DeleteStep, Vec<&DeleteStep>)> = Vec::new();
        for d in &self.deletes {
            let same = |g: &DeleteStep| {
                Arc::ptr_eq(&g.table, &d.table)
                    && g.key_index == d.key_index
                    && g.except.is_none() == d.except.is_none()
            };
            match groups.iter_mut().find(|(g, _)| same(g)) {
                Some((_, v)) => v.push(d),
                None => groups.push((d, vec![d])),
            }
        }
        for (first, steps) in groups {
            let t = &first.table;
            let key = &t.unique_keys[first.key_index];
            let single = key.parts.len() == 1 && key.parts[0].prefix.is_none();
            for chunk in chunks(&steps, limits, |d| d.condition.len() + 8) {
                let condition = if chunk.len() == 1 {
                    chunk[0].condition.clone()
                } else if single && first.except.is_none() {
                    let col = sql::ident(&t.columns[key.parts[0].column].name);
                    let lits: Vec<&str> = chunk.iter().map(|d| d.literals[0].as_str()).collect();
                    format!("{col} IN ({})", lits.join(", "))
                } else {
                    chunk
                        .iter()
                        .map(|d| format!("({})", d.condition))
                        .collect::<Vec<_>>()
                        .join(" OR ")
                };
                out.push(Batch::Delete {
                    table: t,
                    condition,
                    steps: chunk.len(),
                });
            }
        }
        let mut i = 0;
        while i < self.inserts.len() {
            let first = &self.inserts[i];
            let run: Vec<&InsertStep> = self.inserts[i..]
                .iter()
                .take_while(|s| Arc::ptr_eq(&s.table, &first.table) && s.columns == first.columns)
                .collect();
            i += run.len();
            for chunk in chunks(&run, limits, |s| {
                s.values.iter().map(|v| v.len() + 2).sum::<usize>() + s.identity.len()
            }) {
                out.push(Batch::Insert {
                    table: &first.table,
                    steps: chunk,
                });
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.deletes.is_empty() && self.inserts.is_empty()
    }
}

/// Splits `items` into runs bounded by `limits` (every run holds at least one item).
fn chunks<'a, T>(
    items: &[&'a T],
    limits: BatchLimits,
    size: impl Fn(&T) -> usize,
) -> Vec<Vec<&'a T>> {
    let mut out: Vec<Vec<&'a T>> = Vec::new();
    let mut cur: Vec<&'a T> = Vec::new();
    let mut bytes = 0;
    for &it in items {
        let n = size(it);
        if !cur.is_empty() && (cur.len() >= limits.rows || bytes + n > limits.bytes) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes += n;
        cur.push(it);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Why a transaction is not repaired. An outcome, reported and counted, not an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// Accumulates the plan while the transaction streams past: memory grows with the
/// number of distinct key values touched, not with the size of the row images.
#[derive(Debug, Default)]
pub struct Planner {
    touched: HashSet<(String, usize, Vec<String>)>,
    plan: RepairPlan,
}

/// Index used in `touched` for the whole-row identity of a table without unique keys.
const WHOLE_ROW: usize = usize::MAX;

impl Planner {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, table: &Arc<TableInfo>, change: &RowChange) -> Result<(), Refusal> {
        self.plan.rows_seen += 1;
        if let Some(before) = &change.before {
            self.require_present(table, before)?;
        }
        if let Some(after) = &change.after {
            self.require_absent(table, after)?;
        }
        Ok(())
    }

    pub fn finish(self) -> RepairPlan {
        self.plan
    }

    fn first_touch(&mut self, t: &TableInfo, key: usize, values: Vec<String>) -> bool {
        self.touched
            .insert((format!("{}.{}", t.schema, t.name), key, values))
    }

    /// After-image of an INSERT/UPDATE: every unique value it creates must not be held
    /// by another replica row, unless this transaction already touched it.
    fn require_absent(&mut self, t: &Arc<TableInfo>, after: &Row) -> Result<(), Refusal> {
        for (k, key) in t.unique_keys.iter().enumerate() {
            let Some(lits) = key_literals(t, key, after, "after")? else {
                continue;
            };
            if self.first_touch(t, k, lits.clone()) {
                self.plan.deletes.push(DeleteStep {
                    table: t.clone(),
                    key_index: k,
                    condition: key_condition(t, key, &lits),
                    literals: lits,
                    except: None,
                });
            }
        }
        Ok(())
    }

    /// Before-image of an UPDATE/DELETE: the row must exist as the SQL thread finds it.
    fn require_present(&mut self, t: &Arc<TableInfo>, before: &Row) -> Result<(), Refusal> {
        let identity = t.identity_key();
        let (id_index, id_lits, id_cond) = match identity {
            Some(key) => {
                let k = t.unique_keys.iter().position(|u| u == key).unwrap_or(0);
                let lits = key_literals(t, key, before, "before")?.ok_or_else(|| {
                    Refusal(format!(
                        "a before-image of {}.{} has NULL in its key {}",
                        t.schema, t.name, key.name
                    ))
                })?;
                let cond = key_condition(t, key, &lits);
                (k, lits, cond)
            }
            None => {
                let lits = whole_row_literals(t, before)?;
                let cond = whole_row_condition(t, &lits);
                (WHOLE_ROW, lits, cond)
            }
        };
        if !self.first_touch(t, id_index, id_lits) {
            // The transaction itself put this row here; nothing to require.
            for (k, key) in t.unique_keys.iter().enumerate() {
                if let Some(lits) = key_literals(t, key, before, "before")? {
                    self.first_touch(t, k, lits);
                }
            }
            return Ok(());
        }
        // Other unique values of the row must not be held by a different replica row.
        for (k, key) in t.unique_keys.iter().enumerate() {
            if k == id_index {
                continue;
            }
            let Some(lits) = key_literals(t, key, before, "before")? else {
                continue;
            };
            if self.first_touch(t, k, lits.clone()) {
                self.plan.deletes.push(DeleteStep {
                    table: t.clone(),
                    key_index: k,
                    condition: format!("{} AND NOT ({})", key_condition(t, key, &lits), id_cond),
                    literals: lits,
                    except: Some(id_cond.clone()),
                });
            }
        }
        let (columns, values) = insert_columns(t, before)?;
        self.plan.inserts.push(InsertStep {
            table: t.clone(),
            identity: id_cond,
            columns,
            values,
            keyless: identity.is_none(),
        });
        Ok(())
    }
}

fn missing_column(t: &TableInfo, col: usize, image: &str) -> Refusal {
    Refusal(format!(
        "the {image}-image of a row in {}.{} does not carry column `{}` (binlog_row_image MINIMAL or NOBLOB?); the row cannot be rebuilt from the binlog",
        t.schema, t.name, t.columns[col].name
    ))
}

fn render(t: &TableInfo, row: &Row, col: usize, image: &str) -> Result<Option<String>, Refusal> {
    let v = row
        .get(col)
        .and_then(|v| v.as_ref())
        .ok_or_else(|| missing_column(t, col, image))?;
    if v.is_null() {
        return Ok(None);
    }
    sql::literal(v, &t.columns[col])
        .map(Some)
        .map_err(|e| Refusal(format!("{}.{}: {e}", t.schema, t.name)))
}

/// Literals of `key`'s columns in `row`; `None` when one is NULL (a NULL never conflicts).
fn key_literals(
    t: &TableInfo,
    key: &UniqueKey,
    row: &Row,
    image: &str,
) -> Result<Option<Vec<String>>, Refusal> {
    let mut out = Vec::with_capacity(key.parts.len());
    for p in &key.parts {
        match render(t, row, p.column, image)? {
            Some(l) => out.push(l),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

fn key_condition(t: &TableInfo, key: &UniqueKey, lits: &[String]) -> String {
    key.parts
        .iter()
        .zip(lits)
        .map(|(p, l)| sql::condition(&t.columns[p.column], l, p.prefix, false))
        .collect::<Vec<_>>()
        .join(" AND ")
}

fn whole_row_literals(t: &TableInfo, row: &Row) -> Result<Vec<String>, Refusal> {
    (0..t.columns.len())
        .filter(|&i| !t.columns[i].generated)
        .map(|i| Ok(render(t, row, i, "before")?.unwrap_or_else(|| "NULL".into())))
        .collect()
}

fn whole_row_condition(t: &TableInfo, lits: &[String]) -> String {
    t.columns
        .iter()
        .filter(|c| !c.generated)
        .zip(lits)
        .map(|(c, l)| sql::condition(c, l, None, true))
        .collect::<Vec<_>>()
        .join(" AND ")
}

fn insert_columns(t: &TableInfo, row: &Row) -> Result<(Vec<String>, Vec<String>), Refusal> {
    let mut cols = Vec::new();
    let mut vals = Vec::new();
    for (i, c) in t.columns.iter().enumerate() {
        if c.generated {
            continue;
        }
        match row.get(i).and_then(|v| v.as_ref()) {
            Some(_) => {
                cols.push(c.name.clone());
                vals.push(render(t, row, i, "before")?.unwrap_or_else(|| "NULL".into()));
            }
            // A column the image lacks (MINIMAL/NOBLOB) is refused even when it has a
            // default: the default is not the primary's value, and once the transaction
            // applies on top of an invented row nothing would ever report the difference.
            None => return Err(missing_column(t, i, "before")),
        }
    }
    Ok((cols, vals))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binlog::Value;
    use crate::binlog::rows::RowOp;
    use crate::schema::{ColumnInfo, KeyPart};

    fn int(v: i64) -> Option<Value> {
        Some(Value::Int {
            raw: v as u64 & 0xffff_ffff,
            width: 4,
        })
    }

    fn table() -> Arc<TableInfo> {
        let c = |name: &str, nullable| ColumnInfo {
            name: name.into(),
            data_type: "int".into(),
            unsigned: false,
            nullable,
            generated: false,
            charset: None,
            binary_len: None,
            has_default: false,
        };
        Arc::new(TableInfo {
            schema: "lab".into(),
            name: "t".into(),
            columns: vec![c("id", false), c("k", true), c("v", true)],
            unique_keys: vec![
                UniqueKey {
                    name: "PRIMARY".into(),
                    primary: true,
                    parts: vec![KeyPart {
                        column: 0,
                        prefix: None,
                    }],
                },
                UniqueKey {
                    name: "uk_k".into(),
                    primary: false,
                    parts: vec![KeyPart {
                        column: 1,
                        prefix: None,
                    }],
                },
            ],
        })
    }

    fn ins(id: i64, k: Option<i64>) -> RowChange {
        RowChange {
            op: RowOp::Insert,
            before: None,
            after: Some(vec![
                int(id),
                Some(k.map_or(Value::Null, |k| int(k).unwrap())),
                int(0),
            ]),
        }
    }

    #[test]
    fn insert_requires_pk_and_uk_absent() {
        let t = table();
        let mut p = Planner::new();
        p.feed(&t, &ins(6, Some(60))).unwrap();
        let plan = p.finish();
        let sqls: Vec<String> = plan
            .batches(BatchLimits::default())
            .iter()
            .map(|b| b.statement())
            .collect();
        assert_eq!(
            sqls,
            vec![
                "DELETE /* repl-repair */ FROM `lab`.`t` WHERE `id` = 6",
                "DELETE /* repl-repair */ FROM `lab`.`t` WHERE `k` = 60",
            ]
        );
    }

    #[test]
    fn deletes_are_batched_per_key_and_bounded() {
        let t = table();
        let mut p = Planner::new();
        for id in 1..=5 {
            p.feed(&t, &ins(id, Some(id * 10))).unwrap();
        }
        let plan = p.finish();
        let limits = BatchLimits {
            rows: 3,
            bytes: 1 << 20,
        };
        let sqls: Vec<String> = plan.batches(limits).iter().map(|b| b.statement()).collect();
        assert_eq!(
            sqls,
            vec![
                "DELETE /* repl-repair */ FROM `lab`.`t` WHERE `id` IN (1, 2, 3)",
                "DELETE /* repl-repair */ FROM `lab`.`t` WHERE `id` IN (4, 5)",
                "DELETE /* repl-repair */ FROM `lab`.`t` WHERE `k` IN (10, 20, 30)",
                "DELETE /* repl-repair */ FROM `lab`.`t` WHERE `k` IN (40, 50)",
            ]
        );
    }

    #[test]
    fn inserts_are_multi_row() {
        let t = table();
        let mut p = Planner::new();
        for id in [1, 2] {
            p.feed(
                &t,
                &RowChange {
                    op: RowOp::Delete,
                    before: Some(vec![int(id), Some(Value::Null), int(7)]),
                    after: None,
                },
            )
            .unwrap();
        }
        let plan = p.finish();
        let b = plan.batches(BatchLimits::default());
        assert_eq!(
            b.last().unwrap().statement(),
            "INSERT IGNORE /* repl-repair */ INTO `lab`.`t` (`id`, `k`, `v`) VALUES (1, NULL, 7), (2, NULL, 7)"
        );
    }

    #[test]
    fn null_in_unique_key_never_conflicts() {
        let t = table();
        let mut p = Planner::new();
        p.feed(&t, &ins(7, None)).unwrap();
        assert_eq!(p.finish().deletes.len(), 1);
    }

    #[test]
    fn delete_then_reinsert_of_one_key_needs_the_row_present_only() {
        let t = table();
        let mut p = Planner::new();
        let row = vec![int(5), int(50), int(1)];
        p.feed(
            &t,
            &RowChange {
                op: RowOp::Delete,
                before: Some(row.clone()),
                after: None,
            },
        )
        .unwrap();
        p.feed(&t, &ins(5, Some(50))).unwrap();
        let plan = p.finish();
        assert_eq!(plan.inserts.len(), 1);
        assert_eq!(
            plan.inserts[0].values,
            vec!["5".to_string(), "50".into(), "1".into()]
        );
        // The uk value of the row must not be held by a *different* replica row.
        assert_eq!(plan.deletes.len(), 1);
        assert_eq!(plan.deletes[0].condition, "`k` = 50 AND NOT (`id` = 5)");
    }

    #[test]
    fn update_moving_a_row_onto_a_new_uk_value() {
        let t = table();
        let mut p = Planner::new();
        p.feed(
            &t,
            &RowChange {
                op: RowOp::Update,
                before: Some(vec![int(1), int(10), int(0)]),
                after: Some(vec![int(1), int(11), int(0)]),
            },
        )
        .unwrap();
        let plan = p.finish();
        assert_eq!(plan.inserts.len(), 1);
        let conds: Vec<&str> = plan.deletes.iter().map(|d| d.condition.as_str()).collect();
        assert_eq!(conds, vec!["`k` = 10 AND NOT (`id` = 1)", "`k` = 11"]);
    }

    #[test]
    fn minimal_image_is_refused_with_its_reason() {
        let t = table();
        let mut p = Planner::new();
        let err = p
            .feed(
                &t,
                &RowChange {
                    op: RowOp::Delete,
                    before: Some(vec![int(1), None, None]),
                    after: None,
                },
            )
            .unwrap_err();
        assert!(err.0.contains("does not carry column `k`"), "{err}");
    }
}
