//! Entry point: parse, run, map errors to exit codes. All the work is in the library.

fn main() -> std::process::ExitCode {
    cadvisor_setup::commands::main()
}
