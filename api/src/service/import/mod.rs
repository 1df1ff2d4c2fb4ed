//! Bringing an existing T3000 site in: each importer reads one kind of file, checks all of it before
//! anything is applied, and says what it would create or change (a preview); applying writes it to
//! the catalog with every change in the audit log.

pub mod csv;
pub mod prog;
pub mod webview;
