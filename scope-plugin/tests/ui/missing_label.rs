use scope_plugin::prelude::*;

#[scope_metadata(topology = "host", id = "x")]
fn x() -> String {
    String::new()
}

fn main() {}
