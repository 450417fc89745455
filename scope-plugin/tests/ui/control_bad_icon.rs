use scope_plugin::prelude::*;

#[scope_control(topology = "host", id = "a", human = "A", icon = "pause")]
fn no_prefix(_: ThisHost) {}

#[scope_control(topology = "host", id = "b", human = "B", icon = "fa-Pause!")]
fn not_a_class(_: ThisHost) {}

// Docker's own buttons on containers would be hidden by a plugin's list.
#[scope_control(topology = "container", id = "c", human = "C", icon = "fa-stop")]
fn on_a_container(_: ContainerId) {}

// Which processes show it is for the plugin to say.
#[scope_control(topology = "process", id = "d", human = "D", icon = "fa-stop")]
fn no_shown(_: Pid) {}

fn main() {}
