//! Implementation detail of `scope-plugin`: depend on `scope-plugin`, which re-exports
//! these macros and documents them.
//!
//! One module per macro, each a plain struct with `parse` and `expand`.

mod args;
mod collector;
mod main_macro;

use proc_macro::TokenStream;

use collector::AttrKind;

/// Registers a function as a metric collector. See `scope_plugin` for the keys.
#[proc_macro_attribute]
pub fn scope_metric(args: TokenStream, item: TokenStream) -> TokenStream {
    collector::attribute(AttrKind::Metric, args.into(), item.into()).into()
}

/// Registers a function as a metadata (text row) collector. See `scope_plugin`.
#[proc_macro_attribute]
pub fn scope_metadata(args: TokenStream, item: TokenStream) -> TokenStream {
    collector::attribute(AttrKind::Metadata, args.into(), item.into()).into()
}

/// Writes `fn main` for a plugin: `scope_plugin::main!(id = "my-plugin", label = "My plugin")`.
#[proc_macro]
pub fn main(args: TokenStream) -> TokenStream {
    main_macro::main(args.into()).into()
}
