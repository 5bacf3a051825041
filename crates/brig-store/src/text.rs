//! [`Text`]: a `String` column that decodes on every engine, including MySQL text columns with
//! a binary collation.
//!
//! The MySQL schema uses `utf8mb4_bin` so names compare byte for byte, as on SQLite and
//! PostgreSQL (`acme` and `Acme` are two tenants everywhere). MySQL then flags those columns
//! `BINARY`, and sqlx refuses to decode them as `String` ("not compatible with SQL type
//! VARBINARY"). `Text` accepts them and checks the bytes are UTF-8 itself.

use sqlx::error::BoxDynError;
use sqlx::mysql::{MySql, MySqlTypeInfo, MySqlValueRef};
use sqlx::postgres::{PgTypeInfo, PgValueRef, Postgres};
use sqlx::sqlite::{Sqlite, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Type};

/// A text column, read into a `String`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Text(pub String);

impl From<Text> for String {
    fn from(text: Text) -> String {
        text.0
    }
}

/// Reads an optional text column.
pub(crate) fn opt(text: Option<Text>) -> Option<String> {
    text.map(String::from)
}

// SQLite and PostgreSQL: exactly `String`.
macro_rules! as_string {
    ($db:ty, $info:ty, $value:ty) => {
        impl Type<$db> for Text {
            fn type_info() -> $info {
                <String as Type<$db>>::type_info()
            }
            fn compatible(ty: &$info) -> bool {
                <String as Type<$db>>::compatible(ty)
            }
        }
        impl<'r> Decode<'r, $db> for Text {
            fn decode(value: $value) -> Result<Text, BoxDynError> {
                <String as Decode<'r, $db>>::decode(value).map(Text)
            }
        }
    };
}
as_string!(Sqlite, SqliteTypeInfo, SqliteValueRef<'r>);
as_string!(Postgres, PgTypeInfo, PgValueRef<'r>);

impl Type<MySql> for Text {
    fn type_info() -> MySqlTypeInfo {
        <String as Type<MySql>>::type_info()
    }
    fn compatible(ty: &MySqlTypeInfo) -> bool {
        // A `_bin` collation makes VARCHAR/TEXT look like VARBINARY/BLOB.
        <String as Type<MySql>>::compatible(ty) || <Vec<u8> as Type<MySql>>::compatible(ty)
    }
}

impl<'r> Decode<'r, MySql> for Text {
    fn decode(value: MySqlValueRef<'r>) -> Result<Text, BoxDynError> {
        let bytes = <&[u8] as Decode<'r, MySql>>::decode(value)?;
        Ok(Text(String::from_utf8(bytes.to_vec())?))
    }
}
