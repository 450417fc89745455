//! The scope-plugin collectors plugin: built-in collectors for Weave Scope.
//!
//! Run with: cargo run -p collectors
//! Each collector lives in its own file under `collectors/` and registers itself with
//! `#[scope_metric]`; nothing here lists them.

mod collectors {
    mod http;
    mod http_tracing;
    mod idle;
    mod io_pressure;
    mod iowait;
    mod steal;
}
mod cpu_times;
mod http_bpf;
mod psi;
mod shared_reading;

scope_plugin::main!(
    id = "scope-collectors",
    label = "Collectors",
    description = "Host IO wait, CPU idle and steal, IO pressure; HTTP request and response rates per process (eBPF)"
);
