//! TABLE_MAP: binds a table id to a schema, table name and column types with their
//! metadata. Rows events only carry the id, so a rows event is decodable only with the
//! TABLE_MAP that preceded it in the same transaction (possibly in an earlier relay file).

use super::DecodeErrorKind;
use super::cursor::Cursor;
use super::header::FormatDescription;

/// Column type codes as they appear in TABLE_MAP (`enum_field_types`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ColumnType(pub u8);

impl ColumnType {
    pub const DECIMAL: Self = Self(0);
    pub const TINY: Self = Self(1);
    pub const SHORT: Self = Self(2);
    pub const LONG: Self = Self(3);
    pub const FLOAT: Self = Self(4);
    pub const DOUBLE: Self = Self(5);
    pub const NULL: Self = Self(6);
    pub const TIMESTAMP: Self = Self(7);
    pub const LONGLONG: Self = Self(8);
    pub const INT24: Self = Self(9);
    pub const DATE: Self = Self(10);
    pub const TIME: Self = Self(11);
    pub const DATETIME: Self = Self(12);
    pub const YEAR: Self = Self(13);
    pub const NEWDATE: Self = Self(14);
    pub const VARCHAR: Self = Self(15);
    pub const BIT: Self = Self(16);
    pub const TIMESTAMP2: Self = Self(17);
    pub const DATETIME2: Self = Self(18);
    pub const TIME2: Self = Self(19);
    /// MariaDB `BLOB/TEXT ... COMPRESSED` (MYSQL_TYPE_BLOB_COMPRESSED = 140).
    pub const BLOB_COMPRESSED: Self = Self(140);
    /// MariaDB `VARCHAR ... COMPRESSED` (MYSQL_TYPE_VARCHAR_COMPRESSED = 141).
    pub const VARCHAR_COMPRESSED: Self = Self(141);
    pub const VECTOR: Self = Self(242);
    pub const JSON: Self = Self(245);
    pub const NEWDECIMAL: Self = Self(246);
    pub const ENUM: Self = Self(247);
    pub const SET: Self = Self(248);
    pub const TINY_BLOB: Self = Self(249);
    pub const MEDIUM_BLOB: Self = Self(250);
    pub const LONG_BLOB: Self = Self(251);
    pub const BLOB: Self = Self(252);
    pub const VAR_STRING: Self = Self(253);
    pub const STRING: Self = Self(254);
    pub const GEOMETRY: Self = Self(255);

    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "DECIMAL",
            1 => "TINYINT",
            2 => "SMALLINT",
            3 => "INT",
            4 => "FLOAT",
            5 => "DOUBLE",
            6 => "NULL",
            7 => "TIMESTAMP",
            8 => "BIGINT",
            9 => "MEDIUMINT",
            10 => "DATE",
            11 => "TIME",
            12 => "DATETIME",
            13 => "YEAR",
            14 => "NEWDATE",
            15 => "VARCHAR",
            16 => "BIT",
            17 => "TIMESTAMP2",
            18 => "DATETIME2",
            19 => "TIME2",
            20 => "TYPED_ARRAY",
            140 => "BLOB_COMPRESSED",
            141 => "VARCHAR_COMPRESSED",
            242 => "VECTOR",
            245 => "JSON",
            246 => "NEWDECIMAL",
            247 => "ENUM",
            248 => "SET",
            249 => "TINY_BLOB",
            250 => "MEDIUM_BLOB",
            251 => "LONG_BLOB",
            252 => "BLOB",
            253 => "VAR_STRING",
            254 => "STRING",
            255 => "GEOMETRY",
            _ => "UNKNOWN",
        }
    }

    /// Numeric types, in the order MySQL's SIGNEDNESS metadata lists them.
    pub fn is_numeric(self) -> bool {
        matches!(self.0, 1..=5 | 8 | 9 | 246)
    }

    /// Bytes of metadata this type has in the TABLE_MAP; `None` for a code we do not know,
    /// since then the rest of the metadata block cannot be split safely.
    fn meta_len(self) -> Option<usize> {
        Some(match self.0 {
            4 | 5 | 17 | 18 | 19 | 140 | 242 | 245 | 249..=252 | 255 => 1,
            15 | 16 | 141 | 246..=248 | 253 | 254 => 2,
            0..=3 | 6..=14 => 0,
            _ => return None,
        })
    }
}

/// One column as the TABLE_MAP describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnDef {
    pub column_type: ColumnType,
    /// Type metadata: pack length, max length, precision/scale or fsp, depending on type.
    pub meta: u16,
    pub nullable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMap {
    pub table_id: u64,
    pub flags: u16,
    pub schema: String,
    pub table: String,
    pub columns: Vec<ColumnDef>,
    /// Optional metadata (MySQL 8 `binlog_row_metadata`, MariaDB 10.5+), kept raw.
    pub optional_metadata: Vec<u8>,
}

impl TableMap {
    pub fn parse(body: &[u8], fde: &FormatDescription) -> Result<Self, DecodeErrorKind> {
        let mut c = Cursor::new(body);
        let table_id = c.uint_le(fde.table_id_len())?;
        let flags = c.u16()?;
        let schema = name(&mut c)?;
        let table = name(&mut c)?;
        let ncols = c.packed_len()?;
        let types = c.take(ncols)?;
        let meta_block_len = c.packed_len()?;
        let mut meta = Cursor::new(c.take(meta_block_len)?);
        let nulls = c.take(ncols.div_ceil(8))?;
        let mut columns = Vec::with_capacity(ncols);
        for (i, &t) in types.iter().enumerate() {
            let column_type = ColumnType(t);
            let meta_value = match column_type.meta_len() {
                Some(0) => 0,
                Some(1) => u16::from(meta.u8()?),
                Some(_) => match column_type {
                    // STRING/ENUM/SET and BIT/NEWDECIMAL keep their two bytes in wire
                    // order as (first << 8 | second); VARCHAR is a little-endian u16.
                    ColumnType::VARCHAR
                    | ColumnType::VAR_STRING
                    | ColumnType::VARCHAR_COMPRESSED => meta.u16()?,
                    _ => {
                        let a = meta.u8()?;
                        let b = meta.u8()?;
                        (u16::from(a) << 8) | u16::from(b)
                    }
                },
                None => {
                    return Err(DecodeErrorKind::UnsupportedType {
                        type_name: column_type.name(),
                        code: t,
                        column: i + 1,
                    });
                }
            };
            columns.push(ColumnDef {
                column_type,
                meta: meta_value,
                nullable: nulls[i / 8] & (1 << (i % 8)) != 0,
            });
        }
        if !meta.is_empty() {
            return Err(DecodeErrorKind::Invalid(format!(
                "table map for {schema}.{table}: {} bytes of column metadata left over",
                meta.remaining()
            )));
        }
        let optional_metadata = c.rest().to_vec();
        Ok(TableMap {
            table_id,
            flags,
            schema,
            table,
            columns,
            optional_metadata,
        })
    }
}

/// What MySQL 8's optional metadata (binlog_row_metadata, TLVs after the null bitmap)
/// says about the columns; empty when the server wrote none (MariaDB, MINIMAL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptionalMetadata {
    /// COLUMN_NAME (type 4), one per column, when binlog_row_metadata=FULL.
    pub column_names: Vec<String>,
    /// SIGNEDNESS (type 1): for each *numeric* column in order, whether it is unsigned.
    pub unsigned_numeric: Vec<bool>,
    /// DEFAULT_CHARSET (type 2) or COLUMN_CHARSET (type 3): the collation id of each
    /// *character* column ([`ColumnDef::is_character`]) in order; MySQL 8 writes it even
    /// with binlog_row_metadata=MINIMAL, MariaDB with MINIMAL/FULL.
    pub collations: Vec<u64>,
}

impl ColumnDef {
    /// CHAR/VARCHAR/BINARY/VARBINARY/TEXT/BLOB: the columns the charset metadata lists
    /// (ENUM/SET travel as STRING with their real type in the metadata, and are not).
    pub fn is_character(&self) -> bool {
        match self.column_type {
            ColumnType::VARCHAR | ColumnType::VAR_STRING | ColumnType::BLOB => true,
            ColumnType::STRING => {
                let real = (self.meta >> 8) as u8;
                real != ColumnType::ENUM.0 && real != ColumnType::SET.0
            }
            _ => false,
        }
    }
}

impl TableMap {
    /// Parses the optional metadata TLVs; unknown types are skipped by their length.
    pub fn optional(&self) -> Result<OptionalMetadata, DecodeErrorKind> {
        let mut out = OptionalMetadata::default();
        let mut c = Cursor::new(&self.optional_metadata);
        let numeric = self
            .columns
            .iter()
            .filter(|d| d.column_type.is_numeric())
            .count();
        while !c.is_empty() {
            let t = c.u8()?;
            let len = c.packed_len()?;
            let mut v = Cursor::new(c.take(len)?);
            match t {
                1 => {
                    let bits = v.take(numeric.div_ceil(8).min(len))?;
                    out.unsigned_numeric = (0..numeric)
                        .map(|i| bits.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0))
                        .collect();
                }
                2 => {
                    // The most common collation, then (character column index, collation)
                    // for the columns that differ.
                    let chars = self.columns.iter().filter(|d| d.is_character()).count();
                    let default = v.packed()?;
                    out.collations = vec![default; chars];
                    while !v.is_empty() {
                        let i = v.packed()?;
                        let id = v.packed()?;
                        if let Some(slot) = usize::try_from(i)
                            .ok()
                            .and_then(|i| out.collations.get_mut(i))
                        {
                            *slot = id;
                        }
                    }
                }
                3 => {
                    while !v.is_empty() {
                        out.collations.push(v.packed()?);
                    }
                }
                4 => {
                    while !v.is_empty() {
                        let n = v.packed_len()?;
                        out.column_names
                            .push(String::from_utf8_lossy(v.take(n)?).into_owned());
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// A length-prefixed, NUL-terminated name.
fn name(c: &mut Cursor<'_>) -> Result<String, DecodeErrorKind> {
    let len = usize::from(c.u8()?);
    let s = String::from_utf8_lossy(c.take(len)?).into_owned();
    if c.u8()? != 0 {
        return Err(DecodeErrorKind::Invalid(format!(
            "name {s:?} is not NUL-terminated"
        )));
    }
    Ok(s)
}
