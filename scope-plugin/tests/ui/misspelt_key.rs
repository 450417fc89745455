use scope_plugin::prelude::*;

#[scope_metric(topology = "host", id = "x", lable = "X")]
fn x() -> f64 {
    1.0
}

fn main() {}
