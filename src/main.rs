//! The `berth` program: parse the command line, run the library, exit with its code.

fn main() -> std::process::ExitCode {
    berth::commands::main()
}
