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

use crate::binlog::Value;
use crate::binlog::rows::{Row, RowChange};
use crate::schema::{TableInfo, UniqueKey};
use crate::sql;
use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
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
    /// Key hashes that, if touched before the failing event, make this step moot.
    pub pending: Vec<u64>,
}

/// A before-image the transaction expects to find.
#[derive(Debug, Clone, PartialEq)]
pub struct InsertStep {
    pub table: Arc<TableInfo>,
    /// Condition that finds the row the way the SQL thread would (its identity).
    pub identity: String,
    /// Key hashes that, if touched before the failing event, make this step moot.
    pub pending: Vec<u64>,
    /// `(col, …) VALUES (…)`, generated columns left out.
    pub columns: Vec<String>,
    pub values: Vec<String>,
    /// Table without any unique key: the replica may now hold a stale near-duplicate.
    pub keyless: bool,
    /// How many rows with this identity the transaction needs: 1 for a keyed row; for a
    /// keyless table, the most identical copies its before-images consume at any point
    /// (the table is a multiset: `DELETE … WHERE a = 4` on two equal rows needs two).
    pub copies: u64,
    /// Values too large for one statement: (column, session variable) pairs; the value is
    /// sent in chunks into the variable first ([`sql::set_variable_chunks`]) and `values`
    /// names the variable.
    pub big: Vec<(usize, String)>,
    /// The before-image itself, for the audit trail.
    pub row: Row,
}

impl InsertStep {
    /// What the step costs a batch: its SQL text, and the bytes of its large values
    /// (held in session variables until the batch's INSERT runs), times its copies.
    pub fn weight(&self) -> usize {
        let big: usize = self
            .big
            .iter()
            .map(|(col, _)| match self.row.get(*col) {
                Some(Some(Value::Bytes(b))) => b.len(),
                _ => 0,
            })
            .sum();
        let text: usize = self.values.iter().map(|v| v.len() + 2).sum::<usize>();
        big + (text + self.identity.len()) * self.copies.max(1) as usize
    }

    /// The statements that load this step's large values into their session variables.
    pub fn variable_statements(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (col, var) in &self.big {
            if let Some(Some(Value::Bytes(b))) = self.row.get(*col) {
                out.extend(sql::set_variable_chunks(var, b));
            }
        }
        out
    }
}

/// Deletes first, then inserts: a before-image may need a unique value that a stale row
/// holds, and that row is removed by a delete step.
#[derive(Debug, Clone, Default, PartialEq)]
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
            rows: 5000,
            bytes: 1 << 20,
        }
    }
}

/// One statement's worth of steps.
#[derive(Debug, Clone, PartialEq)]
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
    /// The changing statement, as `--dry-run` prints it (every step once).
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

    /// Everything `--dry-run` prints for this batch, in order: the session variables of
    /// large values, then the statement (a keyless step once per copy it needs).
    pub fn script(&self) -> Vec<String> {
        match self {
            Batch::Delete { .. } => vec![self.statement()],
            Batch::Insert { table, steps } => {
                let mut out: Vec<String> =
                    steps.iter().flat_map(|s| s.variable_statements()).collect();
                out.push(sql::insert_ignore_rows(
                    table,
                    &steps[0].columns,
                    steps.iter().flat_map(|s| {
                        std::iter::repeat_n(s.values.as_slice(), s.copies.max(1) as usize)
                    }),
                ));
                out
            }
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
                    let lits: Vec<&str> = chunk.iter().map(|d| d.literals[0].as_str()).collect();
                    sql::in_list(&t.columns[key.parts[0].column], &lits)
                } else {
                    let conds: Vec<&str> = chunk.iter().map(|d| d.condition.as_str()).collect();
                    sql::any_of(&conds)
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
            for chunk in chunks(&run, limits, InsertStep::weight) {
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

/// Why a transaction is not repaired. An outcome, reported and counted by kind, not an
/// error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refusal {
    pub kind: RefusalKind,
    pub reason: String,
}

impl Refusal {
    pub fn new(kind: RefusalKind, reason: impl Into<String>) -> Self {
        Refusal {
            kind,
            reason: reason.into(),
        }
    }
}

/// The kinds of refusal, for metrics (`repl_repair_refusals_total{reason=…}`) and alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalKind {
    /// A row image lacks columns (binlog_row_image MINIMAL or NOBLOB).
    ImageIncomplete,
    /// A before-image with NULL in the key the SQL thread finds rows by.
    NullKey,
    /// A value the tool cannot render as SQL.
    Unrenderable,
    /// The replica's table is missing or no longer matches the event.
    Schema,
    /// `--tables` / `--ignore-tables` keep the agent off the table.
    Excluded,
    /// A fix would fire a trigger on the replica.
    Trigger,
    /// `--max-rows`.
    TooManyRows,
    /// The repair user lacks a privilege the repair needs.
    Privilege,
    /// Nothing to fix: the error is not explained by row drift.
    NotDrift,
    /// A statement-format 1062 that does not resolve to exactly one replica row.
    Statement,
    /// The transaction cannot be read from the primary (unreachable, purged binlog, a
    /// different server than the replica's primary).
    Primary,
}

impl RefusalKind {
    pub const ALL: [RefusalKind; 11] = [
        RefusalKind::ImageIncomplete,
        RefusalKind::NullKey,
        RefusalKind::Unrenderable,
        RefusalKind::Schema,
        RefusalKind::Excluded,
        RefusalKind::Trigger,
        RefusalKind::TooManyRows,
        RefusalKind::Privilege,
        RefusalKind::NotDrift,
        RefusalKind::Statement,
        RefusalKind::Primary,
    ];

    pub fn label(self) -> &'static str {
        match self {
            RefusalKind::ImageIncomplete => "image-incomplete",
            RefusalKind::NullKey => "null-key",
            RefusalKind::Unrenderable => "unrenderable",
            RefusalKind::Schema => "schema",
            RefusalKind::Excluded => "excluded",
            RefusalKind::Trigger => "trigger",
            RefusalKind::TooManyRows => "max-rows",
            RefusalKind::Privilege => "privilege",
            RefusalKind::NotDrift => "not-drift",
            RefusalKind::Statement => "statement",
            RefusalKind::Primary => "primary",
        }
    }
}

/// Accumulates the plan while the transaction streams past. Memory grows with the key
/// values touched from the failing event on (8 bytes each), plus a fixed-size filter for
/// the events before it: a 300 MB transaction whose conflict is in its last event costs
/// a few megabytes, not a copy of its keys.
///
/// Why the events before the failing one need no fixes: the SQL thread applied them
/// without error just before it failed (then rolled back). They still matter for the
/// simulation (a key they touched is not a first touch later), so their key values go
/// into a Bloom filter; a step whose key the filter may have seen is kept *pending*,
/// and a second, exact pass over those events settles it (see [`Planner::pending`]).
#[derive(Debug, Default)]
pub struct Planner {
    touched: HashSet<u64>,
    prefix: Bloom,
    pending: HashSet<u64>,
    plan: RepairPlan,
    /// Keyless tables: per whole-row identity, the running balance of copies (after-images
    /// add one, before-images take one), the deepest deficit, and its insert step.
    copies: std::collections::HashMap<u64, Copies>,
    /// Session variables named so far for large values.
    variables: usize,
}

#[derive(Debug, Default)]
struct Copies {
    balance: i64,
    step: Option<usize>,
}

/// Index used for the whole-row identity of a table without unique keys.
const WHOLE_ROW: usize = usize::MAX;

enum Touch {
    /// Touched before in the failing part of the transaction: nothing to require.
    Seen,
    /// A first touch; `Some(hash)` when the events before the failing one may have
    /// touched it too (to be settled by the exact pass).
    First(Option<u64>),
}

/// A fixed 8 MiB Bloom filter (2^26 bits, 4 probes): about 2 % false positives at
/// 8 million keys, and a false positive only costs an exact check, never a wrong fix.
#[derive(Debug, Default)]
struct Bloom {
    bits: Vec<u64>,
}

impl Bloom {
    const BITS: u64 = 1 << 26;

    fn probes(h: u64) -> impl Iterator<Item = u64> {
        let (a, b) = (h, h.rotate_left(32) | 1);
        (0..4u64).map(move |i| a.wrapping_add(i.wrapping_mul(b)) % Self::BITS)
    }

    fn insert(&mut self, h: u64) {
        if self.bits.is_empty() {
            self.bits = vec![0; (Self::BITS / 64) as usize];
        }
        for p in Self::probes(h) {
            self.bits[(p / 64) as usize] |= 1 << (p % 64);
        }
    }

    fn may_contain(&self, h: u64) -> bool {
        !self.bits.is_empty()
            && Self::probes(h).all(|p| self.bits[(p / 64) as usize] & (1 << (p % 64)) != 0)
    }
}

impl Planner {
    pub fn new() -> Self {
        Self::default()
    }

    /// A row change from the failing event on: plan it.
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

    /// A row change before the failing event: applied fine, only remember its keys.
    pub fn feed_applied(&mut self, table: &Arc<TableInfo>, change: &RowChange) {
        self.plan.rows_seen += 1;
        for h in change_hashes(table, change) {
            self.prefix.insert(h);
        }
    }

    /// Key hashes the exact pass over the events before the failing one must look for.
    pub fn pending(&self) -> &HashSet<u64> {
        &self.pending
    }

    /// The plan, dropping steps whose key the events before the failing one did touch
    /// (`touched_before`: the pending hashes the exact pass found).
    pub fn finish(mut self, touched_before: &HashSet<u64>) -> RepairPlan {
        let keep = |p: &Vec<u64>| !p.iter().any(|h| touched_before.contains(h));
        self.plan.deletes.retain(|d| keep(&d.pending));
        self.plan.inserts.retain(|i| keep(&i.pending));
        self.plan
    }

    fn touch(&mut self, h: u64) -> Touch {
        if !self.touched.insert(h) {
            return Touch::Seen;
        }
        if self.prefix.may_contain(h) {
            self.pending.insert(h);
            Touch::First(Some(h))
        } else {
            Touch::First(None)
        }
    }

    /// After-image of an INSERT/UPDATE: every unique value it creates must not be held
    /// by another replica row, unless this transaction already touched it.
    fn require_absent(&mut self, t: &Arc<TableInfo>, after: &Row) -> Result<(), Refusal> {
        if t.identity_key().is_none() {
            // A keyless row the transaction inserts may be the one it deletes later: one
            // more copy of it exists from here on.
            if let Ok(h) = whole_row_hash(t, after) {
                self.touch(h);
                self.copies.entry(h).or_default().balance += 1;
            }
        }
        for (k, key) in t.unique_keys.iter().enumerate() {
            let Some(h) = key_hash(t, k, key, after, "after")? else {
                continue;
            };
            if let Touch::First(pending) = self.touch(h) {
                let lits = key_literals(t, key, after, "after")?.unwrap_or_default();
                self.plan.deletes.push(DeleteStep {
                    table: t.clone(),
                    key_index: k,
                    condition: key_condition(t, key, &lits),
                    literals: lits,
                    except: None,
                    pending: pending.into_iter().collect(),
                });
            }
        }
        Ok(())
    }

    /// Before-image of an UPDATE/DELETE: the row must exist as the SQL thread finds it.
    fn require_present(&mut self, t: &Arc<TableInfo>, before: &Row) -> Result<(), Refusal> {
        let Some(key) = t.identity_key() else {
            return self.require_copy(t, before);
        };
        let k = t.unique_keys.iter().position(|u| u == key).unwrap_or(0);
        let null_key = || {
            Refusal::new(
                RefusalKind::NullKey,
                format!(
                    "a before-image of {}.{} has NULL in its key {}",
                    t.schema, t.name, key.name
                ),
            )
        };
        let id_hash = key_hash(t, k, key, before, "before")?.ok_or_else(null_key)?;
        let lits = key_literals(t, key, before, "before")?.ok_or_else(null_key)?;
        let id_cond = key_condition(t, key, &lits);
        let Touch::First(id_pending) = self.touch(id_hash) else {
            // The transaction itself put this row here; nothing to require.
            for (k, key) in t.unique_keys.iter().enumerate() {
                if let Some(h) = key_hash(t, k, key, before, "before")? {
                    self.touch(h);
                }
            }
            return Ok(());
        };
        // Other unique values of the row must not be held by a different replica row.
        for (kk, key) in t.unique_keys.iter().enumerate() {
            if kk == k {
                continue;
            }
            let Some(h) = key_hash(t, kk, key, before, "before")? else {
                continue;
            };
            if let Touch::First(pending) = self.touch(h) {
                let lits = key_literals(t, key, before, "before")?.unwrap_or_default();
                self.plan.deletes.push(DeleteStep {
                    table: t.clone(),
                    key_index: kk,
                    condition: sql::but_not(&key_condition(t, key, &lits), &id_cond),
                    literals: lits,
                    except: Some(id_cond.clone()),
                    pending: id_pending.into_iter().chain(pending).collect(),
                });
            }
        }
        let (columns, values, big) = self.insert_columns(t, before)?;
        self.plan.inserts.push(InsertStep {
            table: t.clone(),
            identity: id_cond,
            columns,
            values,
            keyless: false,
            copies: 1,
            big,
            pending: id_pending.into_iter().collect(),
            row: before.clone(),
        });
        Ok(())
    }

    /// A before-image of a table without a unique key takes one copy of its row: the
    /// replica must hold as many copies as the deepest deficit the transaction reaches.
    fn require_copy(&mut self, t: &Arc<TableInfo>, before: &Row) -> Result<(), Refusal> {
        let h = whole_row_hash(t, before)?;
        let pending = match self.touch(h) {
            Touch::First(p) => p,
            Touch::Seen => None,
        };
        let entry = self.copies.entry(h).or_default();
        entry.balance -= 1;
        let need = (-entry.balance).max(0) as u64;
        if need == 0 {
            return Ok(());
        }
        if let Some(i) = entry.step {
            if let Some(step) = self.plan.inserts.get_mut(i) {
                step.copies = step.copies.max(need);
            }
            return Ok(());
        }
        entry.step = Some(self.plan.inserts.len());
        let lits = whole_row_literals(t, before)?;
        let (columns, values, big) = self.insert_columns(t, before)?;
        self.plan.inserts.push(InsertStep {
            table: t.clone(),
            identity: whole_row_condition(t, &lits),
            columns,
            values,
            keyless: true,
            copies: need,
            big,
            pending: pending.into_iter().collect(),
            row: before.clone(),
        });
        Ok(())
    }

    /// Column names and values of an INSERT restoring `row`; a value too large for a
    /// statement goes through a session variable.
    #[allow(clippy::type_complexity)]
    fn insert_columns(
        &mut self,
        t: &TableInfo,
        row: &Row,
    ) -> Result<(Vec<String>, Vec<String>, Vec<(usize, String)>), Refusal> {
        let mut cols = Vec::new();
        let mut vals = Vec::new();
        let mut big = Vec::new();
        for (i, c) in t.columns[..t.mapped].iter().enumerate() {
            if c.generated {
                continue;
            }
            match row.get(i).and_then(|v| v.as_ref()) {
                Some(Value::Bytes(b)) if b.len() > sql::BIG_VALUE => {
                    self.variables += 1;
                    let var = format!("repl_repair_v{}", self.variables);
                    cols.push(c.name.clone());
                    vals.push(sql::variable_value(&var, c));
                    big.push((i, var));
                }
                Some(_) => {
                    cols.push(c.name.clone());
                    vals.push(render(t, row, i, "before")?.unwrap_or_else(|| "NULL".into()));
                }
                // A column the image lacks (MINIMAL/NOBLOB) is refused even when it has a
                // default: the default is not the primary's value, and once the
                // transaction applies on top of an invented row nothing would ever
                // report the difference.
                None => return Err(missing_column(t, i, "before")),
            }
        }
        Ok((cols, vals, big))
    }
}

/// Every key hash a row change touches (both images, every unique key, and the whole
/// row of a keyless table), for the events before the failing one.
pub fn change_hashes(t: &TableInfo, change: &RowChange) -> Vec<u64> {
    let mut out = Vec::new();
    for row in [&change.before, &change.after].into_iter().flatten() {
        if t.identity_key().is_none()
            && let Ok(h) = whole_row_hash(t, row)
        {
            out.push(h);
        }
        for (k, key) in t.unique_keys.iter().enumerate() {
            if let Ok(Some(h)) = key_hash(t, k, key, row, "") {
                out.push(h);
            }
        }
    }
    out
}

fn hash_value(h: &mut impl Hasher, v: &Value) {
    match v {
        Value::Null => 0u8.hash(h),
        Value::Int { raw, .. } => (1u8, raw).hash(h),
        Value::Float(f) => (2u8, f.to_bits()).hash(h),
        Value::Double(f) => (3u8, f.to_bits()).hash(h),
        Value::Decimal(s) => (4u8, s).hash(h),
        Value::Bytes(b) | Value::Json(b) | Value::Geometry(b) => (5u8, b).hash(h),
        // Every other variant is small and fixed: its debug form is a stable encoding.
        other => (6u8, format!("{other:?}")).hash(h),
    }
}

fn table_hasher(t: &TableInfo, key: usize) -> DefaultHasher {
    let mut h = DefaultHasher::new();
    (&t.schema, &t.name, key).hash(&mut h);
    h
}

/// Hash of `key`'s values in `row`; `None` when one is NULL (a NULL never conflicts).
fn key_hash(
    t: &TableInfo,
    k: usize,
    key: &UniqueKey,
    row: &Row,
    image: &str,
) -> Result<Option<u64>, Refusal> {
    let mut h = table_hasher(t, k);
    for p in &key.parts {
        let v = row
            .get(p.column)
            .and_then(|v| v.as_ref())
            .ok_or_else(|| missing_column(t, p.column, image))?;
        if v.is_null() {
            return Ok(None);
        }
        hash_value(&mut h, v);
    }
    Ok(Some(h.finish()))
}

fn whole_row_hash(t: &TableInfo, row: &Row) -> Result<u64, Refusal> {
    let mut h = table_hasher(t, WHOLE_ROW);
    for (i, c) in t.columns[..t.mapped].iter().enumerate() {
        if c.generated {
            continue;
        }
        let v = row
            .get(i)
            .and_then(|v| v.as_ref())
            .ok_or_else(|| missing_column(t, i, "before"))?;
        hash_value(&mut h, v);
    }
    Ok(h.finish())
}

fn missing_column(t: &TableInfo, col: usize, image: &str) -> Refusal {
    Refusal::new(
        RefusalKind::ImageIncomplete,
        format!(
            "the {image}-image of a row in {}.{} does not carry column `{}` (binlog_row_image MINIMAL or NOBLOB?); the row cannot be rebuilt from the binlog",
            t.schema, t.name, t.columns[col].name
        ),
    )
}

fn render(t: &TableInfo, row: &Row, col: usize, image: &str) -> Result<Option<String>, Refusal> {
    let v = row
        .get(col)
        .and_then(|v| v.as_ref())
        .ok_or_else(|| missing_column(t, col, image))?;
    if v.is_null() {
        return Ok(None);
    }
    sql::literal(v, &t.columns[col]).map(Some).map_err(|e| {
        Refusal::new(
            RefusalKind::Unrenderable,
            format!("{}.{}: {e}", t.schema, t.name),
        )
    })
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
    let parts: Vec<String> = key
        .parts
        .iter()
        .zip(lits)
        .map(|(p, l)| sql::condition(&t.columns[p.column], l, p.prefix, false))
        .collect();
    sql::all_of(&parts)
}

fn whole_row_literals(t: &TableInfo, row: &Row) -> Result<Vec<String>, Refusal> {
    (0..t.mapped)
        .filter(|&i| !t.columns[i].generated)
        .map(|i| Ok(render(t, row, i, "before")?.unwrap_or_else(|| "NULL".into())))
        .collect()
}

fn whole_row_condition(t: &TableInfo, lits: &[String]) -> String {
    let parts: Vec<String> = t.columns[..t.mapped]
        .iter()
        .filter(|c| !c.generated)
        .zip(lits)
        .map(|(c, l)| sql::condition(c, l, None, true))
        .collect();
    sql::all_of(&parts)
}

#[cfg(test)]
mod tests {
    use super::*;
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
            mapped: 3,
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
        let plan = p.finish(&HashSet::new());
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
        let plan = p.finish(&HashSet::new());
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
        let plan = p.finish(&HashSet::new());
        let b = plan.batches(BatchLimits::default());
        assert_eq!(
            b.last().unwrap().statement(),
            "INSERT IGNORE /* repl-repair */ INTO `lab`.`t` (`id`, `k`, `v`) VALUES (1, NULL, 7), (2, NULL, 7)"
        );
    }

    #[test]
    fn keys_touched_before_the_failing_event_are_settled_exactly() {
        let t = table();
        let mut p = Planner::new();
        // Applied before the failing event: row 5 deleted (so id 5 / k 50 are touched).
        p.feed_applied(
            &t,
            &RowChange {
                op: RowOp::Delete,
                before: Some(vec![int(5), int(50), int(1)]),
                after: None,
            },
        );
        // The failing event re-inserts id 5 and inserts id 6.
        p.feed(&t, &ins(5, Some(50))).unwrap();
        p.feed(&t, &ins(6, Some(60))).unwrap();
        assert_eq!(
            p.pending().len(),
            2,
            "id 5 and k 50 may have been touched before"
        );
        let pending = p.pending().clone();
        let plan = p.finish(&pending);
        let conds: Vec<&str> = plan.deletes.iter().map(|d| d.condition.as_str()).collect();
        assert_eq!(conds, vec!["`id` = 6", "`k` = 60"]);
    }

    #[test]
    fn large_values_go_through_session_variables_one_row_per_batch() {
        let mut t = (*table()).clone();
        t.columns[2].data_type = "longblob".into();
        let t = Arc::new(t);
        let big = vec![0x27u8; sql::BIG_VALUE + 1];
        let mut p = Planner::new();
        for id in [1, 2] {
            p.feed(
                &t,
                &RowChange {
                    op: RowOp::Delete,
                    before: Some(vec![
                        int(id),
                        Some(Value::Null),
                        Some(Value::Bytes(big.clone())),
                    ]),
                    after: None,
                },
            )
            .unwrap();
        }
        let plan = p.finish(&HashSet::new());
        let limits = BatchLimits {
            rows: 5000,
            bytes: sql::BIG_VALUE + 1024,
        };
        let inserts: Vec<Vec<String>> = plan
            .batches(limits)
            .iter()
            .filter(|b| matches!(b, Batch::Insert { .. }))
            .map(|b| b.script())
            .collect();
        assert_eq!(inserts.len(), 2, "each large row is its own batch");
        let script = &inserts[0];
        assert!(
            script[0].starts_with("SET @repl_repair_v1 = X'2727"),
            "{}",
            &script[0][..40]
        );
        assert!(
            script
                .last()
                .unwrap()
                .ends_with("VALUES (1, NULL, @repl_repair_v1)"),
            "{}",
            script.last().unwrap()
        );
        assert!(script.iter().all(|s| s.len() < 2 * sql::CHUNK + 100));
    }

    #[test]
    fn keyless_identical_rows_need_as_many_copies_as_the_deepest_deficit() {
        let mut t = (*table()).clone();
        t.unique_keys.clear();
        let t = Arc::new(t);
        let row = vec![int(4), int(40), int(0)];
        let del = |r: &Row| RowChange {
            op: RowOp::Delete,
            before: Some(r.clone()),
            after: None,
        };
        let mut p = Planner::new();
        // Delete two copies, insert one back, delete two more: the deepest deficit is 3.
        p.feed(&t, &del(&row)).unwrap();
        p.feed(&t, &del(&row)).unwrap();
        p.feed(&t, &ins(4, Some(40))).unwrap();
        p.feed(&t, &del(&row)).unwrap();
        p.feed(&t, &del(&row)).unwrap();
        let plan = p.finish(&HashSet::new());
        assert_eq!(plan.inserts.len(), 1);
        assert_eq!(plan.inserts[0].copies, 3);
        let script = plan.batches(BatchLimits::default())[0].script();
        assert_eq!(script.last().unwrap().matches("(4, 40, 0)").count(), 3);
    }

    #[test]
    fn a_keyless_row_inserted_then_deleted_needs_nothing() {
        let mut t = (*table()).clone();
        t.unique_keys.clear();
        let t = Arc::new(t);
        let row = vec![int(1), int(2), int(0)];
        let mut p = Planner::new();
        p.feed(&t, &ins(1, Some(2))).unwrap();
        p.feed(
            &t,
            &RowChange {
                op: RowOp::Delete,
                before: Some(row),
                after: None,
            },
        )
        .unwrap();
        let plan = p.finish(&HashSet::new());
        assert!(plan.is_empty(), "{plan:?}");
    }

    #[test]
    fn null_in_unique_key_never_conflicts() {
        let t = table();
        let mut p = Planner::new();
        p.feed(&t, &ins(7, None)).unwrap();
        assert_eq!(p.finish(&HashSet::new()).deletes.len(), 1);
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
        let plan = p.finish(&HashSet::new());
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
        let plan = p.finish(&HashSet::new());
        assert_eq!(plan.inserts.len(), 1);
        let conds: Vec<&str> = plan.deletes.iter().map(|d| d.condition.as_str()).collect();
        assert_eq!(conds, vec!["`k` = 10 AND NOT (`id` = 1)", "`k` = 11"]);
    }

    #[test]
    fn every_refusal_kind_has_its_own_metric_label() {
        let labels: HashSet<&str> = RefusalKind::ALL.iter().map(|k| k.label()).collect();
        assert_eq!(labels.len(), RefusalKind::ALL.len());
        assert!(
            labels
                .iter()
                .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
        );
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
        assert!(err.reason.contains("does not carry column `k`"), "{err}");
    }
}
