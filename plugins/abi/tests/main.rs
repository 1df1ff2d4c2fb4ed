//! Integration tests of the plugin ABI, one binary:
//! - `header`: `t3000_plugin.h`, compiled by the system's C (and C++) compiler, agrees with this
//!   crate on every size, offset, type and constant.
//! - `example_c`: the C example plugin (`plugins/example-c`), compiled and loaded the way the
//!   server loads a plugin, answers every function as documented, never crashes on garbage, and
//!   runs clean under valgrind and the sanitizers.
//!
//! They need a C compiler: `$CC`, else `cc` (and `$CXX`, else `c++`, for the C++ checks, which are
//! skipped with a note when there is none). New tests of the ABI go in a module here.

mod cc;
mod example_c;
mod header;
