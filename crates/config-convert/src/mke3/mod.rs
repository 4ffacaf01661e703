//! The MKE 3 side: the schema of the config-toml as data, its typed model, and the parser that
//! checks every key with its line and column.

pub(crate) mod de;
pub mod model;
pub mod parse;
pub mod schema;

pub use model::Mke3Config;
