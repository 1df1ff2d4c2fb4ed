//! The `t3000` binary: parses the command line and hands over to the library.

fn main() -> std::process::ExitCode {
    t3_api::cli::main()
}
