//! Builds the eBPF program (C with CO-RE, by clang) and, for tests, the same HTTP
//! classifier for the host.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=bpf");
    println!("cargo::rerun-if-env-changed=CLANG");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let object = out.join("http.bpf.o");
    let clang = std::env::var("CLANG").unwrap_or_else(|_| String::from("clang"));
    let result = Command::new(&clang)
        .args([
            "-O2",
            "-g",
            "-target",
            "bpf",
            "-D__TARGET_ARCH_x86",
            "-Wall",
            "-Werror",
            "-c",
            "bpf/http.bpf.c",
            "-o",
        ])
        .arg(&object)
        .output();
    match result {
        Ok(output) if output.status.success() => {}
        // Without clang (or libbpf-dev) the plugin still builds; the HTTP collector then
        // reports at run time that it has no BPF program, and the rest runs.
        Ok(output) => {
            build_again_until_it_works();
            println!("cargo::warning=the eBPF HTTP collector is disabled: {clang} failed:");
            for line in String::from_utf8_lossy(&output.stderr).lines().take(10) {
                println!("cargo::warning={line}");
            }
            std::fs::write(&object, b"").expect("write placeholder");
        }
        Err(error) => {
            build_again_until_it_works();
            println!(
                "cargo::warning=the eBPF HTTP collector is disabled: cannot run {clang} ({error}); `make run` installs clang and libbpf-dev"
            );
            std::fs::write(&object, b"").expect("write placeholder");
        }
    }
    cc::Build::new()
        .file("bpf/http_scan_host.c")
        .warnings(true)
        .compile("http_scan_host");
}

/// Cargo cannot see clang being installed later, so without this the placeholder object
/// would stay after `make setup` installs it. A path that does not exist makes cargo run
/// this script on every build, until the program builds.
fn build_again_until_it_works() {
    println!("cargo::rerun-if-changed=bpf/.build-again-until-clang-works");
}
