//! `#[scope_control]`: register a function as a button on nodes in Scope.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn};

use scope_plugin_rules::Topology;

use crate::args::Args;

const KEYS: &[&str] = &[
    "topology",
    "id",
    "human",
    "icon",
    "confirmation",
    "rank",
    "shown",
    "crate",
];

/// The topologies a control may go on, with the key type of their nodes. Containers and
/// pods are left out: Scope's own buttons there (stop, pause, exec...) depend on state a
/// plugin cannot see, and a plugin's list would hide them (docs/protocol.md §5.7).
fn key_type(topology: Topology) -> Option<&'static str> {
    match topology {
        Topology::Host => Some("ThisHost"),
        Topology::Process => Some("Pid"),
        _ => None,
    }
}

/// A Font Awesome class: `fa-` and lower-case letters, digits and dashes.
fn is_icon(icon: &str) -> bool {
    icon.strip_prefix("fa-").is_some_and(|name| {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

pub(crate) fn attribute(args: TokenStream, item: TokenStream) -> TokenStream {
    let function: ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            let error = syn::Error::new(Span::call_site(), "#[scope_control] goes on a function")
                .to_compile_error();
            return quote!(#item #error);
        }
    };
    match expand(args, &function) {
        Ok(tokens) => tokens,
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#function #error)
        }
    }
}

fn expand(args: TokenStream, function: &ItemFn) -> syn::Result<TokenStream> {
    let args = Args::parse(args, KEYS)?;
    let call_site = Span::call_site();
    let topology_text = args.required_string("topology", call_site, "host")?;
    let topology =
        Topology::from_name(&topology_text.value()).and_then(|t| key_type(t).map(|key| (t, key)));
    let Some((topology, key)) = topology else {
        return Err(syn::Error::new(
            topology_text.span(),
            "controls go on \"host\" or \"process\" nodes: on containers and pods Scope's own buttons depend on state a plugin cannot see, and a plugin's list of buttons would hide them",
        ));
    };
    let id = args.required_string("id", call_site, "restart")?;
    if !scope_plugin_rules::is_key(&id.value()) {
        return Err(syn::Error::new(
            id.span(),
            format!(
                "invalid control id {:?}: {} (Scope joins control ids with ';', puts them in URLs, and prefixes them with '<plugin>~')",
                id.value(),
                scope_plugin_rules::KEY_RULE
            ),
        ));
    }
    let human = args.required_string("human", call_site, "Restart")?;
    scope_plugin_rules::check_label(&human.value())
        .map_err(|problem| syn::Error::new(human.span(), problem))?;
    let icon = args.required_string("icon", call_site, "fa-refresh")?;
    if !is_icon(&icon.value()) {
        return Err(syn::Error::new(
            icon.span(),
            format!(
                "invalid icon {:?}: a Font Awesome class, \"fa-\" and a name such as \"fa-pause\"",
                icon.value()
            ),
        ));
    }
    let confirmation = match args.string("confirmation")? {
        Some(text) => quote!(::core::option::Option::Some(#text)),
        None => quote!(::core::option::Option::None),
    };
    let rank = match args.number("rank")? {
        Some((value, span)) if value.fract() != 0.0 || value.abs() > 1e9 => {
            return Err(syn::Error::new(span, "rank is a whole number"));
        }
        #[allow(
            clippy::cast_possible_truncation,
            reason = "checked whole and small above"
        )]
        Some((value, _)) => value as i64,
        None => 0,
    };
    let krate = args
        .path("crate")?
        .unwrap_or_else(|| syn::parse_quote!(::scope_plugin));
    let signature = &function.sig;
    if signature.asyncness.is_some() || !signature.generics.params.is_empty() {
        return Err(syn::Error::new(
            signature.span(),
            "a control is a plain function: not async, not generic (it runs on a blocking thread)",
        ));
    }
    if signature.inputs.len() != 1 || !matches!(signature.inputs.first(), Some(FnArg::Typed(_))) {
        return Err(syn::Error::new(
            signature.inputs.span(),
            format!("a control takes one parameter, the node it was clicked on: `{key}`"),
        ));
    }
    let name = &signature.ident;
    let key = syn::Ident::new(key, Span::call_site());
    let topology_variant = syn::Ident::new(topology.variant_name(), Span::call_site());
    let shown = match args.path("shown")? {
        Some(path) => quote_spanned!(path.span()=>
            #krate::__private::shown_nodes::<#krate::__private::#key, _>(#path(), __scope_plugin_context)),
        None if topology == Topology::Host => {
            quote!(#krate::__private::shown_nodes::<#krate::__private::ThisHost, _>(true, __scope_plugin_context))
        }
        None => {
            return Err(syn::Error::new(
                call_site,
                "say which nodes show the control: shown = a function returning the keys (Vec<Pid>) of the nodes that show it now",
            ));
        }
    };
    let location = quote!(#krate::__private::ControlLocation {
        module_path: ::core::module_path!(),
        file: ::core::file!(),
        line: ::core::line!(),
    });
    // The call is spanned on the parameter, so a parameter of another key type is reported
    // there ("expected `Pid`").
    let parameter_span = signature.inputs.first().map_or(name.span(), Spanned::span);
    let call = quote_spanned!(parameter_span=> #name(__scope_plugin_key));
    let run = quote_spanned!(name.span()=> {
        let __scope_plugin_key: #krate::__private::#key =
            #krate::__private::clicked_key(__scope_plugin_node_id, __scope_plugin_context)?;
        #krate::__private::ControlOutcome::into_result(#call)
    });
    Ok(quote! {
        #function

        const _: () = {
            fn __scope_plugin_shown(
                __scope_plugin_context: &#krate::__private::Context,
            ) -> #krate::__private::anyhow::Result<::std::vec::Vec<::std::string::String>> {
                #shown
            }

            // Parameters named so that no user function (`context`, `node_id`) is shadowed.
            fn __scope_plugin_run(
                __scope_plugin_node_id: &str,
                __scope_plugin_context: &#krate::__private::Context,
            ) -> #krate::__private::anyhow::Result<()> {
                #run
            }

            #krate::__private::inventory::submit! {
                #krate::__private::Control {
                    topology: #krate::__private::Topology::#topology_variant,
                    id: #id,
                    human: #human,
                    icon: #icon,
                    confirmation: #confirmation,
                    rank: #rank,
                    location: #location,
                    shown: __scope_plugin_shown,
                    run: __scope_plugin_run,
                }
            }
        };
    })
}
