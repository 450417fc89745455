use scope_plugin::prelude::*;

// Scope joins control ids with ';', prefixes them with '<plugin>~', and the UI puts them in
// URLs unencoded: none of ; / ~ % ? # can be in one.
#[scope_control(topology = "host", id = "a;b", human = "A", icon = "fa-play")]
fn semicolon(_: ThisHost) {}

#[scope_control(topology = "host", id = "a/b", human = "A", icon = "fa-play")]
fn slash(_: ThisHost) {}

#[scope_control(topology = "host", id = "a~b", human = "A", icon = "fa-play")]
fn tilde(_: ThisHost) {}

#[scope_control(topology = "host", id = "a%b", human = "A", icon = "fa-play")]
fn percent(_: ThisHost) {}

#[scope_control(topology = "host", id = "a?b", human = "A", icon = "fa-play")]
fn question(_: ThisHost) {}

#[scope_control(topology = "host", id = "a#b", human = "A", icon = "fa-play")]
fn hash(_: ThisHost) {}

fn main() {}
