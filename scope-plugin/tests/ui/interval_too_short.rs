use scope_plugin::prelude::*;

// "1m30s" is accepted, as `--interval 1m30s` is; below 100ms is refused by both.
#[scope_metric(topology = "host", id = "x", label = "X", interval = "1m30s", timeout = "50ms")]
fn x() -> f64 {
    1.0
}

fn main() {}
