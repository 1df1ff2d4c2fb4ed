//! Importers that bring an existing T3000 site in: each reads one kind of file, previews what it
//! would create and applies it on request.

pub mod webview;
