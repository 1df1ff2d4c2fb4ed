//! Integration tests of the plugin ABI, one binary:
//! - `header`: `t3000_plugin.h`, compiled by the system's C (and C++) compiler, agrees with this
//!   crate on every size, offset, type and constant.
//!
//! They need a C compiler: `$CC`, else `cc` (and `$CXX`, else `c++`, for the C++ checks, which are
//! skipped with a note when there is none). New tests of the ABI go in a module here.

mod cc;
mod header;
