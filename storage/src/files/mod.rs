//! What is durable and visible: the manifest of live files and the Parquet files it lists.

pub mod manifest;
pub mod parquet_io;
