//! `repl-repair decode FILE…`: the decoder for DBAs. One line per row change, as JSON
//! shaped like a change event (op, schema, table, before/after column maps, source) or
//! as text. Works on relay logs and binlogs; column names (and signedness) come from a
//! live server when one is given, otherwise columns are `@1..@n` and integers signed.
//!
//! Rendering rows costs several times what reading them does, so the reading thread
//! copies rows events into batches and worker threads render them ([`Pool`]); batches
//! come back and are written in file order, so the output is the same whatever the
//! number of threads. The reading thread keeps everything with state: FORMAT_DESCRIPTION,
//! TABLE_MAP, GTID and XID events, and compressed transaction payloads.

use crate::binlog::digits;
use crate::binlog::events::{self, Decoded, TableMaps};
use crate::binlog::rows::{self, RowOp, RowsEvent, Side};
use crate::binlog::table_map::TableMap;
use crate::binlog::value::ValueRef;
use crate::binlog::{
    BinlogReader, DecodeErrorKind, Event, EventHeader, EventType, FormatDescription,
};
use crate::event::{ChangeEvent, Column, EventFrame, EventSource, write_entry, write_owned_image};
use crate::schema::{ColumnInfo, TableInfo};
use std::collections::HashMap;
use std::io::Write;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, mpsc};

#[derive(Debug, Clone)]
pub struct DumpOptions {
    pub files: Vec<PathBuf>,
    pub start: Option<u64>,
    pub stop: Option<u64>,
    pub json: bool,
    /// Threads that render rows; 1 renders them on the reading thread.
    pub threads: usize,
    /// Bytes of rows events per rendering batch: [`BATCH`] (tests use 1, an event a batch).
    pub batch: usize,
}

/// The default `--threads`: one per CPU, at most 8 (past that the single reading thread
/// is the limit).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error(transparent)]
    Binlog(#[from] crate::binlog::Error),
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

/// Column descriptions for a mapped table: the live schema when it matches, else what
/// the table map's optional metadata says (names, signedness, character sets), else
/// positional names (`@1`…), signed integers and an unknown character set (hex).
pub fn columns(map: &TableMap, live: Option<&TableInfo>) -> Vec<ColumnInfo> {
    if let Some(t) = live
        && t.check_matches(map).is_ok()
    {
        return t.columns.clone();
    }
    let meta = map.optional().unwrap_or_default();
    let mut numeric = meta.unsigned_numeric.iter();
    let mut collations = meta.collations.iter();
    map.columns
        .iter()
        .enumerate()
        .map(|(i, def)| {
            let charset = if def.is_character() {
                collations
                    .next()
                    .and_then(|&id| crate::event::collation_charset(id))
                    .filter(|&cs| cs != "binary")
                    .map(str::to_string)
            } else {
                None
            };
            ColumnInfo {
                name: meta
                    .column_names
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("@{}", i + 1)),
                data_type: String::new(),
                unsigned: def.column_type.is_numeric() && numeric.next() == Some(&true),
                nullable: true,
                generated: false,
                charset,
                binary_len: None,
                has_default: false,
            }
        })
        .collect()
}

/// A batch is handed to a renderer once its rows events hold this many bytes: large
/// enough that handing over costs nothing, small enough that a few batches in flight per
/// thread keep the peak RSS to a few MiB.
pub const BATCH: usize = 256 << 10;

/// A batch past this many bytes holds a huge event and is rendered alone.
const HUGE: usize = 8 * BATCH;

/// The fixed parts of one rows event's output lines (JSON: the change event's frame).
enum Frame {
    Json(EventFrame),
    Text { head: Vec<u8> },
}

/// One line per row change: head, before image, middle, after image, tail.
fn line_parts(frame: &Frame) -> Parts<'_> {
    match frame {
        Frame::Json(f) => Parts {
            head: f.head(),
            middle: f.middle(),
            tail: f.tail(),
            null: b"null",
        },
        Frame::Text { head } => Parts {
            head,
            middle: b" after=",
            tail: b"\n",
            null: b"-",
        },
    }
}

struct Where<'a> {
    file: &'a str,
    offset: u64,
    header: &'a EventHeader,
    gtid: &'a str,
}

fn frame(json: bool, op: RowOp, map: &TableMap, at: &Where<'_>) -> Frame {
    if json {
        Frame::Json(EventFrame::new(&ChangeEvent {
            op: op.as_str(),
            schema: &map.schema,
            table: &map.table,
            before: None,
            after: None,
            source: EventSource {
                file: Some(at.file),
                pos: Some(at.offset),
                end_log_pos: Some(u64::from(at.header.log_pos)),
                server_id: Some(at.header.server_id),
                gtid: Some(at.gtid),
                event: Some(at.header.event_type.name()),
                ..EventSource::default()
            },
            errno: None,
            plan_id: None,
            ts: None,
        }))
    } else {
        let [a, b, c] = text_around(op, map, at);
        let head = [
            &a[..],
            at.offset.to_string().as_bytes(),
            &b,
            at.header.log_pos.to_string().as_bytes(),
            &c,
        ]
        .concat();
        Frame::Text { head }
    }
}

/// A text line's head around its two numbers:
/// `FILE:`, OFFSET, ` end_log_pos=`, END_LOG_POS, ` server_id=… gtid=… OP db.t before=`.
/// Names are inert: a newline in a file or table name cannot start a forged line.
fn text_around(op: RowOp, map: &TableMap, at: &Where<'_>) -> [Vec<u8>; 3] {
    use crate::record::inert;
    [
        format!("{}:", inert(at.file)).into_bytes(),
        b" end_log_pos=".to_vec(),
        format!(
            " server_id={} gtid={} {} {}.{} before=",
            at.header.server_id,
            if at.gtid.is_empty() {
                "-".into()
            } else {
                inert(at.gtid)
            },
            op.as_str(),
            inert(&map.schema),
            inert(&map.table),
        )
        .into_bytes(),
    ]
}

/// What makes two rows events' frames alike but for their numbers (offset, end_log_pos).
/// The shared parts are compared by identity: every event of one file, one TABLE_MAP and
/// one GTID holds the same `Arc`, and the key holds them too, so none can be freed and
/// its address reused while the key is alive.
struct FrameKey {
    source: Arc<Source>,
    table: Arc<Table>,
    gtid: Arc<str>,
    event_type: EventType,
    server_id: u32,
}

impl FrameKey {
    fn of(ev: &RowsAt) -> FrameKey {
        FrameKey {
            source: Arc::clone(&ev.source),
            table: Arc::clone(&ev.table),
            gtid: Arc::clone(&ev.gtid),
            event_type: ev.header.event_type,
            server_id: ev.header.server_id,
        }
    }

    fn matches(&self, ev: &RowsAt) -> bool {
        Arc::ptr_eq(&self.source, &ev.source)
            && Arc::ptr_eq(&self.table, &ev.table)
            && Arc::ptr_eq(&self.gtid, &ev.gtid)
            && self.event_type == ev.header.event_type
            && self.server_id == ev.header.server_id
    }
}

/// Each rows event's frame, serialized once per run of events of one table, operation
/// and GTID (a big transaction is thousands of them) with its two numbers cut out, and
/// completed per event.
#[derive(Default)]
struct Frames {
    key: Option<FrameKey>,
    /// JSON: the head and middle as they are, the tail around `pos` and `end_log_pos`.
    /// Text: the head around the offset and `end_log_pos`.
    head: Vec<u8>,
    middle: Vec<u8>,
    around: [Vec<u8>; 3],
    /// This event's part with the numbers in.
    filled: Vec<u8>,
}

/// Placeholders for the two numbers; searched for with their keys, whose quotes only
/// occur unescaped as JSON structure.
const POS_MARK: &[u8] = b"\"pos\":18446744073709551615";
const END_MARK: &[u8] = b"\"end_log_pos\":18446744073709551615";

impl Frames {
    fn of(&mut self, ev: &RowsAt, json: bool) -> Parts<'_> {
        if !self.key.as_ref().is_some_and(|k| k.matches(ev)) {
            self.prepare(ev, json);
            self.key = Some(FrameKey::of(ev));
        }
        let [a, b, c] = &self.around;
        let f = &mut self.filled;
        f.clear();
        f.extend_from_slice(a);
        digits::put::<20>(f, |b| digits::u64_at(b, ev.offset));
        f.extend_from_slice(b);
        digits::put::<20>(f, |b| digits::u64_at(b, u64::from(ev.header.log_pos)));
        f.extend_from_slice(c);
        if json {
            Parts {
                head: &self.head,
                middle: &self.middle,
                tail: &self.filled,
                null: b"null",
            }
        } else {
            Parts {
                head: &self.filled,
                middle: b" after=",
                tail: b"\n",
                null: b"-",
            }
        }
    }

    fn prepare(&mut self, ev: &RowsAt, json: bool) {
        let op = RowOp::from_event_type(ev.header.event_type).unwrap_or(RowOp::Insert);
        let mut header = ev.header;
        header.log_pos = u32::MAX;
        let at = Where {
            file: &ev.source.name,
            offset: u64::MAX,
            header: &header,
            gtid: &ev.gtid,
        };
        if !json {
            self.around = text_around(op, &ev.table.map, &at);
            return;
        }
        if let Frame::Json(f) = frame(json, op, &ev.table.map, &at) {
            // end_log_pos is a u32 on the wire, a u64 in the source object.
            let tail = replace_once(f.tail(), b"\"end_log_pos\":4294967295", END_MARK);
            self.around = cut(&tail, POS_MARK, END_MARK);
            self.head = f.head().to_vec();
            self.middle = f.middle().to_vec();
        }
    }
}

/// `s` with the first `from` replaced by `to`.
fn replace_once(s: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    match find(s, from) {
        Some(i) => [&s[..i], to, &s[i + from.len()..]].concat(),
        None => s.to_vec(),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `s` cut around the number at the end of `first` and of `second` (each kept up to its
/// number): `[before first's number, between, after second's number]`.
fn cut(s: &[u8], first: &[u8], second: &[u8]) -> [Vec<u8>; 3] {
    let digits = |m: &[u8]| m.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    match (find(s, first), find(s, second)) {
        (Some(i), Some(j)) if i + first.len() <= j => {
            let a = i + first.len() - digits(first);
            let b = i + first.len();
            let c = j + second.len() - digits(second);
            let d = j + second.len();
            [s[..a].to_vec(), s[b..c].to_vec(), s[d..].to_vec()]
        }
        // Unreachable with the frames above; an empty line shows up in every test.
        _ => Default::default(),
    }
}

/// The file being read: its path for errors, its name as the output shows it.
struct Source {
    path: PathBuf,
    name: String,
}

/// A mapped table as its rows events are rendered: the map and each column's renderer.
struct Table {
    map: TableMap,
    cols: Vec<Column>,
}

/// A rows event copied into a batch, with everything its lines say.
struct RowsAt {
    source: Arc<Source>,
    offset: u64,
    header: EventHeader,
    fde: Arc<FormatDescription>,
    table: Arc<Table>,
    gtid: Arc<str>,
    /// The event's body within [`Batch::input`].
    body: Range<usize>,
}

impl RowsAt {
    fn error(&self, kind: DecodeErrorKind) -> DumpError {
        DumpError::Binlog(crate::binlog::Error::Event {
            path: self.source.path.clone(),
            offset: self.offset,
            event: self.header.event_type,
            kind,
        })
    }
}

/// Rows events to render, or output the reading thread rendered itself (`events` empty,
/// `out` filled). The buffers go back and forth between threads and are reused.
#[derive(Default)]
struct Batch {
    input: Vec<u8>,
    events: Vec<RowsAt>,
    out: Vec<u8>,
    rows: u64,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.events.is_empty() && self.out.is_empty()
    }
}

/// A rendered batch: its lines in `batch.out` (all of them, or those of the events before
/// the one that failed to decode) and that failure.
struct Done {
    batch: Batch,
    error: Option<DumpError>,
}

/// Renders every rows event of `batch` into `batch.out`. An event that fails to decode
/// leaves no line: the output stops at the event before it.
fn render(mut batch: Batch, json: bool) -> Done {
    let Batch {
        input,
        events,
        out,
        rows,
    } = &mut batch;
    let mut error = None;
    let mut frames = Frames::default();
    for ev in events.iter() {
        let start = out.len();
        let t = ev.header.event_type;
        let parts = frames.of(ev, json);
        let body = &input[ev.body.clone()];
        let (map, cols) = (&ev.table.map, &ev.table.cols[..]);
        let streamed = if json {
            RowsEvent::stream(
                t,
                body,
                &ev.fde,
                map,
                &mut Lines::<true>::new(out, cols, parts),
            )
        } else {
            RowsEvent::stream(
                t,
                body,
                &ev.fde,
                map,
                &mut Lines::<false>::new(out, cols, parts),
            )
        };
        match streamed {
            Ok(n) => *rows += n,
            Err(kind) => {
                out.truncate(start);
                error = Some(ev.error(kind));
                break;
            }
        }
    }
    Done { batch, error }
}

/// The fixed bytes of one rows event's lines: head, before image, middle, after image,
/// tail; `null` stands for an image the row does not have.
#[derive(Clone, Copy)]
struct Parts<'f> {
    head: &'f [u8],
    middle: &'f [u8],
    tail: &'f [u8],
    null: &'static [u8],
}

/// Writes each value the moment [`RowsEvent::stream`] decodes it: a line per row.
struct Lines<'o, 'f, const JSON: bool> {
    out: &'o mut Vec<u8>,
    cols: &'f [Column],
    parts: Parts<'f>,
    /// No value of the current image written yet.
    first: bool,
}

impl<'o, 'f, const JSON: bool> Lines<'o, 'f, JSON> {
    fn new(out: &'o mut Vec<u8>, cols: &'f [Column], parts: Parts<'f>) -> Self {
        Lines {
            out,
            cols,
            parts,
            first: true,
        }
    }
}

impl<const JSON: bool> rows::RowSink for Lines<'_, '_, JSON> {
    #[inline(always)]
    fn row_start(&mut self) {
        self.out.extend_from_slice(self.parts.head);
    }
    #[inline(always)]
    fn no_image(&mut self, side: Side) {
        if side == Side::After {
            self.out.extend_from_slice(self.parts.middle);
        }
        self.out.extend_from_slice(self.parts.null);
    }
    #[inline(always)]
    fn image_start(&mut self, side: Side) {
        if side == Side::After {
            self.out.extend_from_slice(self.parts.middle);
        }
        self.out.push(if JSON { b'{' } else { b'(' });
        self.first = true;
    }
    #[inline(always)]
    fn value(&mut self, column: usize, v: ValueRef<'_>) -> Result<(), DecodeErrorKind> {
        // One renderer per map column (`columns`); a value past them is left out.
        let Some(col) = self.cols.get(column) else {
            return Ok(());
        };
        write_entry::<JSON>(self.out, &v, col, self.first)?;
        self.first = false;
        Ok(())
    }
    #[inline(always)]
    fn image_end(&mut self) {
        self.out.push(if JSON { b'}' } else { b')' });
    }
    #[inline(always)]
    fn row_end(&mut self) {
        self.out.extend_from_slice(self.parts.tail);
    }
}

/// Worker threads rendering batches in turn: batch `n` goes to worker `n % workers` and
/// its result is taken from that worker when every batch before it has been, so results
/// come back in the order the batches were submitted. At most two batches per worker
/// are in flight. With no workers, `submit` renders on the calling thread.
struct Pool {
    links: Vec<(mpsc::SyncSender<Batch>, mpsc::Receiver<Done>)>,
    json: bool,
    sent: usize,
    taken: usize,
}

impl Pool {
    fn start<'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        workers: usize,
        json: bool,
    ) -> Pool {
        let links = (0..workers)
            .map(|_| {
                let (job_tx, job_rx) = mpsc::sync_channel::<Batch>(2);
                let (done_tx, done_rx) = mpsc::sync_channel::<Done>(2);
                scope.spawn(move || {
                    while let Ok(batch) = job_rx.recv() {
                        if done_tx.send(render(batch, json)).is_err() {
                            break;
                        }
                    }
                });
                (job_tx, done_rx)
            })
            .collect();
        Pool {
            links,
            json,
            sent: 0,
            taken: 0,
        }
    }

    fn submit(&mut self, batch: Batch, sink: &mut Sink<'_>) -> Result<(), DumpError> {
        if self.links.is_empty() {
            return sink.take(render(batch, self.json));
        }
        // A batch of a huge event (a 24 MB row) waits until nothing else is in flight:
        // memory stays bounded by the largest event, not by the queue depth times it.
        let huge = batch.input.len() > HUGE;
        while self.sent - self.taken == 2 * self.links.len() || (huge && self.taken < self.sent) {
            self.take_one(sink)?;
        }
        let (tx, _) = &self.links[self.sent % self.links.len()];
        tx.send(batch).map_err(|_| worker_gone())?;
        self.sent += 1;
        Ok(())
    }

    fn take_one(&mut self, sink: &mut Sink<'_>) -> Result<(), DumpError> {
        let (_, rx) = &self.links[self.taken % self.links.len()];
        let done = rx.recv().map_err(|_| worker_gone())?;
        self.taken += 1;
        sink.take(done)
    }

    /// Takes every batch still in flight, in order, then lets the workers end.
    fn finish(&mut self, sink: &mut Sink<'_>) -> Result<(), DumpError> {
        let mut first = Ok(());
        while self.taken < self.sent {
            let r = self.take_one(sink);
            if first.is_ok() {
                first = r;
            }
        }
        self.links.clear();
        first
    }
}

fn worker_gone() -> DumpError {
    DumpError::Output(std::io::Error::other(
        "a rendering thread ended unexpectedly",
    ))
}

/// Where rendered batches go, in order: the output, until the first failure; nothing
/// after it is written.
struct Sink<'o> {
    out: &'o mut dyn Write,
    rows: u64,
    failed: bool,
    /// Emptied batches, for reuse.
    spare: Vec<Batch>,
}

impl Sink<'_> {
    fn take(&mut self, done: Done) -> Result<(), DumpError> {
        let Done { mut batch, error } = done;
        if self.failed {
            return Ok(());
        }
        let written = self.out.write_all(&batch.out);
        self.rows += batch.rows;
        batch.out.clear();
        batch.input.clear();
        batch.events.clear();
        batch.rows = 0;
        if self.spare.len() < 4 {
            // Buffers grown by a huge event are not kept.
            batch.input.shrink_to(2 * BATCH);
            batch.out.shrink_to(8 * BATCH);
            self.spare.push(batch);
        }
        let r = match (written, error) {
            (Err(e), _) => Err(e.into()),
            (Ok(()), Some(e)) => Err(e),
            (Ok(()), None) => Ok(()),
        };
        self.failed = r.is_err();
        r
    }

    fn batch(&mut self) -> Batch {
        self.spare.pop().unwrap_or_default()
    }
}

/// Decodes `opts.files` to `out`. `schema` looks a table up on a live server.
///
/// Rows are rendered straight from the event's bytes ([`RowsEvent::stream`]) into reused
/// buffers: nothing is allocated per row or per value. Errors come in file order: the
/// output holds every row of every event before the one named.
pub fn run(
    opts: &DumpOptions,
    schema: impl FnMut(&str, &str) -> Option<TableInfo>,
    out: &mut impl Write,
) -> Result<u64, DumpError> {
    let workers = if opts.threads > 1 { opts.threads } else { 0 };
    let mut sink = Sink {
        out,
        rows: 0,
        failed: false,
        spare: Vec::new(),
    };
    let read = std::thread::scope(|scope| {
        let mut pool = Pool::start(scope, workers, opts.json);
        let read = read_all(opts, schema, &mut pool, &mut sink);
        // A batch before the failing event may hold an earlier failure: it wins.
        let drained = pool.finish(&mut sink);
        drained.and(read)
    });
    read?;
    sink.out.flush()?;
    Ok(sink.rows)
}

/// The reading thread: every event of every file, rows events batched for the pool.
fn read_all(
    opts: &DumpOptions,
    schema: impl FnMut(&str, &str) -> Option<TableInfo>,
    pool: &mut Pool,
    sink: &mut Sink<'_>,
) -> Result<(), DumpError> {
    let mut batch = sink.batch();
    let read = read_files(opts, schema, pool, sink, &mut batch);
    // The rows before a failure are rendered too; a failure among them comes first.
    let last = if batch.is_empty() {
        Ok(())
    } else {
        pool.submit(batch, sink)
    };
    last.and(read)
}

fn read_files(
    opts: &DumpOptions,
    mut schema: impl FnMut(&str, &str) -> Option<TableInfo>,
    pool: &mut Pool,
    sink: &mut Sink<'_>,
    batch: &mut Batch,
) -> Result<(), DumpError> {
    let mut live: HashMap<(String, String), Option<TableInfo>> = HashMap::new();
    for (i, file) in opts.files.iter().enumerate() {
        let mut r = match (i, opts.start) {
            (0, Some(pos)) => BinlogReader::open_at(file, pos)?,
            _ => BinlogReader::open(file)?,
        };
        let source = Arc::new(Source {
            path: file.clone(),
            name: file.display().to_string(),
        });
        let mut maps = TableMaps::default();
        // Each mapped table as rendered, rebuilt at each TABLE_MAP.
        let mut tables: HashMap<u64, Arc<Table>> = HashMap::new();
        let mut fde: Option<Arc<FormatDescription>> = None;
        let mut gtid: Arc<str> = Arc::from("");
        while let Some(next) = r.next_header()? {
            let offset = r.position();
            if opts.stop.is_some_and(|s| offset >= s) && i + 1 == opts.files.len() {
                break;
            }
            let t = next.event_type;
            let event_err = |kind| crate::binlog::Error::Event {
                path: file.clone(),
                offset,
                event: t,
                kind,
            };
            // The fast path: a rows event of a mapped table is read straight into the
            // batch and left to a renderer.
            let mut unmapped = Vec::new();
            let unmapped_fde;
            let rows_event = t.is_rows() || t.is_compressed_rows();
            let ev = match &fde {
                Some(fde) if rows_event => {
                    let from = batch.input.len();
                    let (header, _, body) = r.read_body_into(&mut batch.input)?;
                    let id = rows::table_id(&batch.input[body.clone()], fde);
                    if let Some(table) = id.as_ref().ok().and_then(|id| tables.get(id)) {
                        batch.events.push(RowsAt {
                            source: Arc::clone(&source),
                            offset,
                            header,
                            fde: Arc::clone(fde),
                            table: Arc::clone(table),
                            gtid: Arc::clone(&gtid),
                            body,
                        });
                        if batch.input.len() >= opts.batch {
                            let full = std::mem::replace(batch, sink.batch());
                            pool.submit(full, sink)?;
                        }
                        continue;
                    }
                    // No TABLE_MAP for it (or no table id): decoded below, which says so.
                    unmapped.extend_from_slice(&batch.input[body]);
                    batch.input.truncate(from);
                    unmapped_fde = Arc::clone(fde);
                    Event {
                        header,
                        offset,
                        body: &unmapped,
                        fde: &unmapped_fde,
                    }
                }
                _ => r.read_body()?,
            };
            let header = ev.header;
            if t == EventType::FORMAT_DESCRIPTION || fde.is_none() {
                fde = Some(Arc::new(ev.fde.clone()));
            }
            let decoded = events::decode(&ev, &mut maps).map_err(event_err)?;
            for decoded in decoded.flatten() {
                match decoded {
                    Decoded::Gtid { gtid: g, .. } => gtid = Arc::from(g),
                    Decoded::TableMap(map) => {
                        let info = live
                            .entry((map.schema.clone(), map.table.clone()))
                            .or_insert_with(|| schema(&map.schema, &map.table));
                        let cols = Column::all(&columns(&map, info.as_ref()));
                        tables.insert(map.table_id, Arc::new(Table { map, cols }));
                    }
                    // Rows inside a TRANSACTION_PAYLOAD, decoded as owned values and
                    // rendered here into the batch's output, which a renderer appends
                    // to: so only while the batch holds no rows events yet.
                    Decoded::Rows(rows_ev) => {
                        let (Some(map), Some(table)) =
                            (maps.get(rows_ev.table_id), tables.get(&rows_ev.table_id))
                        else {
                            continue;
                        };
                        if !batch.events.is_empty() {
                            let full = std::mem::replace(batch, sink.batch());
                            pool.submit(full, sink)?;
                        }
                        let at = Where {
                            file: &source.name,
                            offset,
                            header: &header,
                            gtid: &gtid,
                        };
                        let frame = frame(opts.json, rows_ev.op, map, &at);
                        let Parts {
                            head,
                            middle,
                            tail,
                            null,
                        } = line_parts(&frame);
                        let out = &mut batch.out;
                        for change in &rows_ev.rows {
                            batch.rows += 1;
                            out.extend_from_slice(head);
                            for (k, image) in
                                [&change.before, &change.after].into_iter().enumerate()
                            {
                                if k == 1 {
                                    out.extend_from_slice(middle);
                                }
                                match image {
                                    Some(row) => {
                                        write_owned_image(out, row, &table.cols, opts.json)
                                    }
                                    None => out.extend_from_slice(null),
                                }
                            }
                            out.extend_from_slice(tail);
                        }
                    }
                    Decoded::Xid(_) => gtid = Arc::from(""),
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_head_keeps_names_on_their_line() {
        let map = TableMap {
            table_id: 1,
            flags: 0,
            schema: "db\n1".into(),
            table: "t\r\\u".into(),
            columns: Vec::new(),
            optional_metadata: Vec::new(),
        };
        let header = EventHeader {
            timestamp: 0,
            event_type: EventType(30),
            server_id: 7,
            event_size: 0,
            log_pos: 99,
            flags: 0,
        };
        let at = Where {
            file: "relay\nbin.000001",
            offset: 4,
            header: &header,
            gtid: "0-7-1\n",
        };
        let Frame::Text { head } = frame(false, RowOp::Insert, &map, &at) else {
            panic!("text frame expected");
        };
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "relay\\nbin.000001:4 end_log_pos=99 server_id=7 gtid=0-7-1\\n insert db\\n1.t\\r\\\\u before="
        );
    }
}
