//! Bringing an existing site in: each importer reads one kind of file, checks all of it before
//! anything is applied, and says what it would create or change (a preview) before it applies.

pub mod csv;
pub mod webview;
