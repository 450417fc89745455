use scope_plugin::prelude::*;

#[scope_metric(topology = "host", id = "x", label = "X")]
fn x(count: u32) -> f64 {
    f64::from(count)
}

fn main() {}
