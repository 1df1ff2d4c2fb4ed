//! T3000 Control BASIC: the language T3 controllers run their building logic in.
//!
//! - [`ast`]: the program as a tree, shared by everything below.
//! - [`parse`]: program text as T3000 writes it -> [`ast::Program`], with errors that name line,
//!   column and what was expected.
//! - [`print`](mod@print): [`ast::Program`] -> text in T3000's own layout (what its editor shows).
//! - [`bytecode`]: the compiled program blocks of a panel's `.prog` file -> [`ast::Program`] (and
//!   back).
//! - [`run`]: one scan of a program against an [`run::Env`] that reads and writes points, with the
//!   controller's fixed-point values, timers, edges and WAIT.
//!
//! The language's facts (grammar, byte code, run-time semantics) come from Temco's public sources:
//! the Control BASIC EBNF of T3000_CrossPlatform, the token table and decompiler of T3000
//! (`PARSER.H`, `BacNetProgram_transplant.cpp`) and the firmware interpreter (`decode.c`). No code was
//! taken from them.

pub mod ast;
pub mod bytecode;
pub(crate) mod lex;
pub mod parse;
pub mod print;
pub mod run;
