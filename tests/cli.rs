//! The `h2c-mux` binary's command line as a new user meets it: what `--help` says,
//! what `--listen` accepts, and how a failure to listen is reported.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

fn h2c_mux(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_h2c-mux"))
        .args(args)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run the h2c-mux binary")
}

#[test]
fn an_address_in_use_is_named_with_the_os_message_and_exits_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let out = h2c_mux(&["--listen", &addr]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr,
        format!("h2c-mux: cannot listen on {addr}: Address already in use (os error 98)\n")
    );
}

#[test]
fn listen_wants_ip_and_port_and_says_so() {
    let help = String::from_utf8_lossy(&h2c_mux(&["--help"]).stdout).into_owned();
    assert!(help.contains("--listen <IP:PORT>"), "{help}");
    for bad in ["8080", "127.0.0.1", "localhost:http"] {
        let out = h2c_mux(&["--listen", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("expected IP:PORT (such as 127.0.0.1:8080) or HOST:PORT"),
            "{bad}: {stderr}"
        );
    }
}

/// The binary's first log line (where it listens) with `args`, its environment
/// adjusted by `tune`; the binary is stopped after it.
fn first_log_line(args: &[&str], tune: impl FnOnce(&mut Command)) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_h2c-mux"));
    cmd.args(args)
        .args(["--quiet"])
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped());
    tune(&mut cmd);
    let mut child = cmd.spawn().expect("start the h2c-mux binary");
    // The binary listens, and logs it, at once: this read does not hang.
    let mut line = String::new();
    let read = BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line);
    let _ = child.kill();
    let _ = child.wait();
    read.expect("read the log");
    line
}

#[test]
fn listen_resolves_localhost_to_ipv4_loopback() {
    let line = first_log_line(&["--listen", "localhost:0"], |_| {});
    assert!(
        line.contains("listening addr=127.0.0.1:"),
        "localhost:0 listens on 127.0.0.1: {line}"
    );
}

/// A log written to a file or a pipe has no colour codes, with or without NO_COLOR.
#[test]
fn a_log_that_is_not_a_terminal_has_no_colours() {
    let args = ["--listen", "127.0.0.1:0"];
    let plain = first_log_line(&args, |cmd| {
        cmd.env_remove("NO_COLOR");
    });
    assert!(plain.contains("listening addr=127.0.0.1:"), "{plain:?}");
    assert!(!plain.contains('\x1b'), "{plain:?}");
    let no_color = first_log_line(&args, |_| {});
    assert!(!no_color.contains('\x1b'), "{no_color:?}");
}

/// `--help` lists every route of the demo, and names nothing a user cannot see (a
/// private module of the binary).
#[test]
fn help_lists_every_route_and_no_private_name() {
    let out = h2c_mux(&["--help"]);
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    for route in ["GET / ", "/echo", "/bytes/N", "/sha256", "/ws", "/drain"] {
        assert!(help.contains(route), "{route} missing from: {help}");
    }
    assert!(!help.contains("heap_trim"), "{help}");
}
