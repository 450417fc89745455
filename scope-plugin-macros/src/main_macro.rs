//! `scope_plugin::main!(id = "...", label = "...", description = "...")`: writes `fn main`.

use proc_macro2::{Span, TokenStream};
use quote::quote;

use crate::args::Args;

const VALID_KEYS: &[&str] = &["id", "label", "description", "crate"];

pub(crate) fn main(tokens: TokenStream) -> TokenStream {
    match expand(tokens) {
        Ok(tokens) => tokens,
        Err(error) => {
            // A stub main too, so the one mistake is the only error.
            let error = error.to_compile_error();
            quote!(#error fn main() {})
        }
    }
}

fn expand(tokens: TokenStream) -> syn::Result<TokenStream> {
    let args = Args::parse(tokens, VALID_KEYS)?;
    let id = args.required_string("id", Span::call_site(), "my-plugin")?;
    if !scope_plugin_rules::is_plugin_id(&id.value()) {
        return Err(syn::Error::new(
            id.span(),
            format!(
                "invalid plugin id {:?}: {}",
                id.value(),
                scope_plugin_rules::PLUGIN_ID_RULE
            ),
        ));
    }
    let label = args.required_string("label", Span::call_site(), "My plugin")?;
    if label.value().trim().is_empty() {
        return Err(syn::Error::new(
            label.span(),
            "the label is empty; Scope rejects the plugin with \"spec must contain a label\"",
        ));
    }
    let description = args
        .string("description")?
        .map_or_else(String::new, |d| d.value());
    let krate = args
        .path("crate")?
        .unwrap_or_else(|| syn::parse_quote!(::scope_plugin));
    Ok(quote! {
        fn main() -> ::std::process::ExitCode {
            #krate::__private::Plugin::new(#id, #label).description(#description).run()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_main() {
        let out = main(quote!(
            id = "my-plugin",
            label = "My plugin",
            description = "Adds X"
        ))
        .to_string();
        let expected = quote! {
            fn main() -> ::std::process::ExitCode {
                ::scope_plugin::__private::Plugin::new("my-plugin", "My plugin").description("Adds X").run()
            }
        };
        assert_eq!(out, expected.to_string());
    }

    #[test]
    fn rejects_bad_ids() {
        let out = main(quote!(id = "my_plugin", label = "P")).to_string();
        assert!(out.contains("invalid plugin id"), "{out}");
    }
}
