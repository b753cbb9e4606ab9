//! `jobwire-server`: the reference jobwire server as a program.
//!
//! Serves on `127.0.0.1:7878` with a durable store in `./jobwire-data` unless told
//! otherwise; prints its URL (and the token, when it generated one); stops cleanly on
//! Ctrl-C or SIGTERM. Run `jobwire-server --help` for the flags. The flags and the run
//! loop live in `jobwire_server::cli`, which `jobwire serve` runs too.

fn main() -> std::process::ExitCode {
    jobwire_server::cli::main_with_args(std::env::args().skip(1))
}
