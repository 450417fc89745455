//! The HTTP classifier compiled for the host, as collectors/build.rs does for the tests,
//! with libFuzzer's coverage instrumentation so that the fuzzer sees its branches.

fn main() {
    println!("cargo::rerun-if-changed=../bpf");
    let mut build = cc::Build::new();
    build.file("../bpf/http_scan_host.c").warnings(true);
    // Only clang instruments C code the way libFuzzer reads coverage.
    if std::process::Command::new("clang").arg("--version").output().is_ok() {
        build.compiler("clang");
    }
    if build.get_compiler().is_like_clang() {
        build.flag("-fsanitize=fuzzer-no-link").flag("-fsanitize=address");
    }
    build.compile("http_scan_host");
}
