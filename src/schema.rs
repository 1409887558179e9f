//! Column names, signedness, charsets, generated columns and unique keys of a table, read
//! from the replica's information_schema (the binlog carries none of them unless MySQL 8's
//! binlog_row_metadata=FULL), and the check that the TABLE_MAP still matches the table.

use crate::binlog::table_map::{ColumnType, TableMap};
use mysql::prelude::Queryable;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    pub name: String,
    /// information_schema DATA_TYPE, lower case: `int`, `varchar`, `binary`, ...
    pub data_type: String,
    pub unsigned: bool,
    pub nullable: bool,
    /// Virtual or stored generated column: never written by a fix.
    pub generated: bool,
    /// Character set of a text column; `None` for binary and non-string columns.
    pub charset: Option<String>,
    /// Declared length in bytes of BINARY(n): the server pads stored values with 0x00,
    /// while the binlog image carries them without the padding.
    pub binary_len: Option<usize>,
    pub has_default: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPart {
    pub column: usize,
    /// Prefix length of a prefix index (`UNIQUE (name(10))`), in characters.
    pub prefix: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueKey {
    pub name: String,
    pub primary: bool,
    pub parts: Vec<KeyPart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    pub schema: String,
    pub name: String,
    pub columns: Vec<ColumnInfo>,
    /// PRIMARY first, then the other unique keys by name.
    pub unique_keys: Vec<UniqueKey>,
    /// How many leading columns the binlog's row images carry: row-based replication
    /// lets the replica's table have extra trailing columns, which the SQL thread fills
    /// with their defaults. Set by [`TableInfo::check_matches`].
    pub mapped: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("table {schema}.{table} does not exist on the replica")]
    NoSuchTable { schema: String, table: String },
    #[error("cannot read the schema of {schema}.{table}: {source}")]
    Query {
        schema: String,
        table: String,
        #[source]
        source: mysql::Error,
    },
}

impl TableInfo {
    pub fn load(
        conn: &mut impl Queryable,
        schema: &str,
        table: &str,
    ) -> Result<TableInfo, SchemaError> {
        let qerr = |source| SchemaError::Query {
            schema: schema.into(),
            table: table.into(),
            source,
        };
        type ColRow = (
            String,
            String,
            String,
            String,
            Option<String>,
            Option<u64>,
            String,
            Option<String>,
        );
        let cols: Vec<ColRow> = conn
            .exec(
                "SELECT /* repl-repair */ COLUMN_NAME, LOWER(DATA_TYPE), LOWER(COLUMN_TYPE), IS_NULLABLE, \
                 CHARACTER_SET_NAME, CHARACTER_OCTET_LENGTH, UPPER(EXTRA), COLUMN_DEFAULT \
                 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
                 ORDER BY ORDINAL_POSITION",
                (schema, table),
            )
            .map_err(qerr)?;
        if cols.is_empty() {
            return Err(SchemaError::NoSuchTable {
                schema: schema.into(),
                table: table.into(),
            });
        }
        let columns: Vec<ColumnInfo> = cols
            .into_iter()
            .map(
                |(name, data_type, column_type, nullable, charset, octets, extra, default)| {
                    // The row image drops trailing 0x00 of fixed binary values; MariaDB's
                    // INET6/UUID are 16 fixed bytes the same way (fixtures/mariadb-types).
                    let binary_len = match data_type.as_str() {
                        "binary" => Some(octets.unwrap_or(0) as usize),
                        "inet6" | "uuid" => Some(16),
                        _ => None,
                    };
                    ColumnInfo {
                        unsigned: column_type.contains("unsigned"),
                        nullable: nullable == "YES",
                        generated: extra.contains("GENERATED"),
                        charset,
                        binary_len,
                        has_default: default.is_some(),
                        data_type,
                        name,
                    }
                },
            )
            .collect();
        let parts: Vec<(String, String, Option<u32>)> = conn
            .exec(
                "SELECT /* repl-repair */ INDEX_NAME, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 \
                 ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX",
                (schema, table),
            )
            .map_err(qerr)?;
        let mut unique_keys: Vec<UniqueKey> = Vec::new();
        for (index, column, prefix) in parts {
            let Some(col) = columns.iter().position(|c| c.name == column) else {
                continue;
            };
            if unique_keys.last().is_none_or(|k| k.name != index) {
                unique_keys.push(UniqueKey {
                    primary: index == "PRIMARY",
                    name: index,
                    parts: Vec::new(),
                });
            }
            if let Some(k) = unique_keys.last_mut() {
                k.parts.push(KeyPart {
                    column: col,
                    prefix,
                });
            }
        }
        Ok(TableInfo {
            schema: schema.into(),
            name: table.into(),
            mapped: columns.len(),
            columns,
            unique_keys,
        })
    }

    /// The key the replica's SQL thread finds a row by: the PRIMARY key, else the first
    /// unique key whose columns are all NOT NULL; `None` means whole-row comparison.
    pub fn identity_key(&self) -> Option<&UniqueKey> {
        self.unique_keys.iter().find(|k| {
            k.primary
                || k.parts
                    .iter()
                    .all(|p| p.prefix.is_none() && !self.columns[p.column].nullable)
        })
    }

    /// [`TableInfo::check_matches`], then plans with the first `map.columns.len()`
    /// columns.
    pub fn map_to(&mut self, map: &TableMap) -> Result<(), String> {
        self.check_matches(map)?;
        self.mapped = map.columns.len();
        Ok(())
    }

    /// Refuses a TABLE_MAP that no longer describes this table (column dropped, type
    /// changed, columns reordered where the map names them), mapping the event's columns
    /// to the first N of the replica's as the SQL thread does: extra trailing replica
    /// columns are allowed and keep their defaults. A unique key on such an extra column
    /// is refused: every inserted row would take the same default there, and no image
    /// says which replica row holds which value.
    pub fn check_matches(&self, map: &TableMap) -> Result<(), String> {
        let n = map.columns.len();
        if n > self.columns.len() {
            return Err(format!(
                "the table map of {}.{} has {} columns, the table on the replica has only {}",
                self.schema,
                self.name,
                n,
                self.columns.len()
            ));
        }
        if let Some(k) = self
            .unique_keys
            .iter()
            .find(|k| k.parts.iter().any(|p| p.column >= n))
        {
            return Err(format!(
                "unique key '{}' of {}.{} covers a column the primary's table does not have (the table map has {} of its {} columns)",
                k.name,
                self.schema,
                self.name,
                n,
                self.columns.len()
            ));
        }
        // Names are in the map only with MySQL's binlog_row_metadata=FULL (or MariaDB's).
        let names = map.optional().map(|m| m.column_names).unwrap_or_default();
        if let Some((i, (c, name))) = self
            .columns
            .iter()
            .zip(&names)
            .enumerate()
            .find(|(_, (c, name))| c.name != **name)
        {
            return Err(format!(
                "column {} of {}.{} is `{}` on the replica but `{name}` in the table map (columns reordered?)",
                i + 1,
                self.schema,
                self.name,
                c.name,
            ));
        }

        for (i, (def, col)) in map.columns.iter().zip(&self.columns).enumerate() {
            if !type_compatible(def.column_type, def.meta, &col.data_type) {
                return Err(format!(
                    "column {} (`{}`) of {}.{} is {} on the replica but {} in the table map",
                    i + 1,
                    col.name,
                    self.schema,
                    self.name,
                    col.data_type,
                    def.column_type.name()
                ));
            }
        }
        Ok(())
    }
}

/// Whether a binlog column type can hold values of an information_schema DATA_TYPE.
fn type_compatible(t: ColumnType, meta: u16, data_type: &str) -> bool {
    let expected: &[&str] = match t {
        ColumnType::TINY => &["tinyint", "boolean"],
        ColumnType::SHORT => &["smallint"],
        ColumnType::INT24 => &["mediumint"],
        ColumnType::LONG => &["int", "integer"],
        ColumnType::LONGLONG => &["bigint"],
        ColumnType::FLOAT => &["float"],
        ColumnType::DOUBLE => &["double", "real"],
        ColumnType::NEWDECIMAL | ColumnType::DECIMAL => &["decimal", "numeric"],
        ColumnType::VARCHAR | ColumnType::VAR_STRING | ColumnType::VARCHAR_COMPRESSED => {
            &["varchar", "varbinary", "inet6"]
        }
        ColumnType::STRING => match (meta >> 8) as u8 {
            247 => &["enum"],
            248 => &["set"],
            _ => &["char", "binary", "inet6", "uuid", "inet4"],
        },
        ColumnType::ENUM => &["enum"],
        ColumnType::SET => &["set"],
        ColumnType::BLOB
        | ColumnType::TINY_BLOB
        | ColumnType::MEDIUM_BLOB
        | ColumnType::LONG_BLOB
        | ColumnType::BLOB_COMPRESSED => &[
            "tinyblob",
            "blob",
            "mediumblob",
            "longblob",
            "tinytext",
            "text",
            "mediumtext",
            "longtext",
            "json",
        ],
        ColumnType::JSON => &["json"],
        ColumnType::GEOMETRY => &[
            "geometry",
            "point",
            "linestring",
            "polygon",
            "multipoint",
            "multilinestring",
            "multipolygon",
            "geometrycollection",
            "geomcollection",
        ],
        ColumnType::BIT => &["bit"],
        ColumnType::YEAR => &["year"],
        ColumnType::DATE | ColumnType::NEWDATE => &["date"],
        ColumnType::TIME | ColumnType::TIME2 => &["time"],
        ColumnType::DATETIME | ColumnType::DATETIME2 => &["datetime"],
        ColumnType::TIMESTAMP | ColumnType::TIMESTAMP2 => &["timestamp"],
        ColumnType::VECTOR => &["vector"],
        _ => return false,
    };
    expected.contains(&data_type)
}
