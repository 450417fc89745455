use scope_plugin::prelude::*;

struct NoDefault;

#[scope_metric(topology = "host", id = "x", label = "X")]
fn x(state: &mut NoDefault) -> f64 {
    let _ = state;
    1.0
}

fn main() {}
