//! Parsing `key = value` attribute arguments with spans, shared by every macro.

use std::collections::BTreeSet;

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, ExprUnary, Ident, Lit, LitStr, Token, UnOp};

/// One `key = value` pair.
pub(crate) struct Arg {
    pub(crate) key: Ident,
    pub(crate) value: Expr,
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        // `crate` is a keyword, so parse any identifier-like token.
        let key = input.call(syn::ext::IdentExt::parse_any)?;
        input
            .parse::<Token![=]>()
            .map_err(|e| syn::Error::new(e.span(), format!("expected `{key} = <value>`")))?;
        let value = input.parse()?;
        Ok(Self { key, value })
    }
}

/// " did you mean `x`?" for the closest of `candidates` to a misspelt `word`, if one is
/// within an edit or two (a swap counts as one), else nothing.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    candidates
        .map(|candidate| {
            let similarity = strsim::normalized_damerau_levenshtein(word, candidate);
            (similarity, candidate)
        })
        .filter(|(similarity, _)| *similarity >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| format!(" did you mean `{candidate}`?"))
        .unwrap_or_default()
}

/// All pairs, checked for unknown and repeated keys.
pub(crate) struct Args {
    pub(crate) pairs: Vec<Arg>,
}

impl Args {
    pub(crate) fn parse(tokens: proc_macro2::TokenStream, valid: &[&str]) -> syn::Result<Self> {
        let pairs: Vec<Arg> =
            syn::parse::Parser::parse2(Punctuated::<Arg, Token![,]>::parse_terminated, tokens)?
                .into_iter()
                .collect();
        let mut seen = BTreeSet::new();
        for arg in &pairs {
            let key = arg.key.to_string();
            if !valid.contains(&key.as_str()) {
                return Err(syn::Error::new(
                    arg.key.span(),
                    format!(
                        "unknown key `{key}`;{} valid keys are: {}",
                        did_you_mean(&key, valid.iter().copied()),
                        valid.join(", ")
                    ),
                ));
            }
            if !seen.insert(key.clone()) {
                return Err(syn::Error::new(
                    arg.key.span(),
                    format!("`{key}` is given twice; keep one"),
                ));
            }
        }
        Ok(Self { pairs })
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Arg> {
        self.pairs.iter().find(|arg| arg.key == key)
    }

    pub(crate) fn string(&self, key: &str) -> syn::Result<Option<LitStr>> {
        let Some(arg) = self.get(key) else {
            return Ok(None);
        };
        match &arg.value {
            Expr::Lit(ExprLit {
                lit: Lit::Str(text),
                ..
            }) => Ok(Some(text.clone())),
            other => Err(syn::Error::new_spanned(
                other,
                format!("`{key}` takes a string literal, like {key} = \"...\""),
            )),
        }
    }

    pub(crate) fn required_string(
        &self,
        key: &str,
        span: Span,
        example: &str,
    ) -> syn::Result<LitStr> {
        self.string(key)?.ok_or_else(|| {
            syn::Error::new(span, format!("missing `{key}`; add {key} = \"{example}\""))
        })
    }

    pub(crate) fn number(&self, key: &str) -> syn::Result<Option<(f64, Span)>> {
        let Some(arg) = self.get(key) else {
            return Ok(None);
        };
        let (negative, literal) = match &arg.value {
            Expr::Unary(ExprUnary {
                op: UnOp::Neg(_),
                expr,
                ..
            }) => (true, &**expr),
            other => (false, other),
        };
        let value = match literal {
            Expr::Lit(ExprLit {
                lit: Lit::Float(f), ..
            }) => f.base10_parse::<f64>()?,
            Expr::Lit(ExprLit {
                lit: Lit::Int(i), ..
            }) => i.base10_parse::<f64>()?,
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    format!("`{key}` takes a number literal, like {key} = 3.5"),
                ));
            }
        };
        Ok(Some((
            if negative { -value } else { value },
            syn::spanned::Spanned::span(&arg.value),
        )))
    }

    pub(crate) fn boolean(&self, key: &str) -> syn::Result<Option<bool>> {
        let Some(arg) = self.get(key) else {
            return Ok(None);
        };
        match &arg.value {
            Expr::Lit(ExprLit {
                lit: Lit::Bool(b), ..
            }) => Ok(Some(b.value)),
            other => Err(syn::Error::new_spanned(
                other,
                format!("`{key}` takes true or false"),
            )),
        }
    }

    pub(crate) fn path(&self, key: &str) -> syn::Result<Option<syn::Path>> {
        let Some(arg) = self.get(key) else {
            return Ok(None);
        };
        match &arg.value {
            Expr::Path(path) => Ok(Some(path.path.clone())),
            other => Err(syn::Error::new_spanned(
                other,
                format!("`{key}` takes a path, like {key} = ::my_framework::scope"),
            )),
        }
    }
}
