//! The arguments of `#[on(...)]` / `#[once(...)]`: a message type, then `uri = ...`, `auth = ...`,
//! `cipher = ...`.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, Ident, Lit, Token};

/// Parsed route arguments. Which attribute they belong to (`on` or `once`) is known by the caller.
#[derive(Default)]
pub(crate) struct RouteArgs {
    pub message_type: Option<Expr>,
    pub uri: Option<Expr>,
    pub auth: Option<(Ident, Expr)>,
    pub cipher: Option<(Ident, Expr)>,
}

impl Parse for RouteArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = RouteArgs::default();
        let mut named_seen = false;
        while !input.is_empty() {
            if input.peek(Ident) && input.peek2(Token![=]) {
                let name: Ident = input.parse()?;
                input.parse::<Token![=]>()?;
                let value: Expr = input.parse()?;
                named_seen = true;
                let slot_taken = match name.to_string().as_str() {
                    "uri" => args.uri.replace(value).is_some(),
                    "auth" => args.auth.replace((name.clone(), value)).is_some(),
                    "cipher" => args.cipher.replace((name.clone(), value)).is_some(),
                    _ => {
                        return Err(syn::Error::new(
                            name.span(),
                            format!(
                                "unknown route argument `{name}`: write `uri = \"...\"`, \
                                 `auth = <plugin>` or `cipher = <plugin>`"
                            ),
                        ));
                    }
                };
                if slot_taken {
                    return Err(syn::Error::new(
                        name.span(),
                        format!("`{name}` is given twice: keep one"),
                    ));
                }
            } else {
                let value: Expr = input.parse()?;
                if args.message_type.is_some() || named_seen {
                    return Err(syn::Error::new(
                        value.span(),
                        "unexpected argument: the message type comes first and once, the rest \
                         is `name = value` (e.g. `#[on(REQUEST_URI, uri = \"echo\")]`)",
                    ));
                }
                if let Expr::Lit(lit) = &value
                    && matches!(lit.lit, Lit::Str(_) | Lit::ByteStr(_))
                {
                    let text = lit.lit.to_token_stream();
                    return Err(syn::Error::new(
                        value.span(),
                        format!(
                            "the first argument is the message type, not the uri: write \
                             `REQUEST_URI, uri = {text}`"
                        ),
                    ));
                }
                args.message_type = Some(value);
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }
}

impl RouteArgs {
    /// Parse the attribute's arguments.
    pub(crate) fn parse_tokens(tokens: TokenStream) -> Result<Self, syn::Error> {
        syn::parse2(tokens)
    }

    /// Check what parsing cannot: the message type is required. `attr` names the attribute for
    /// the message, `span` is where to point when it is missing.
    pub(crate) fn check(&self, attr: &str, span: Span, errors: &mut Vec<syn::Error>) {
        if self.message_type.is_none() {
            errors.push(syn::Error::new(
                span,
                format!(
                    "missing message type: write `#[{attr}(REQUEST_URI, uri = \"...\")]`, or \
                     `#[{attr}(PUBLISH_URI)]` for every message of that type"
                ),
            ));
        }
    }

    /// `.with_inner(plugins)` for a `netaio::router::Route` expression, when `auth = ...` or
    /// `cipher = ...` is given. Each expression is a plugin value, evaluated when the route is built
    /// (in a service, `self` is the service's `Arc`).
    pub(crate) fn inner_tokens(&self) -> TokenStream {
        if self.auth.is_none() && self.cipher.is_none() {
            return TokenStream::new();
        }
        let auth = self.auth.iter().map(|(name, expr)| {
            quote_spanned!(expr.span()=> let inner = ::netaio::plugin::Plugins::#name(inner, #expr);)
        });
        let cipher = self.cipher.iter().map(|(name, expr)| {
            quote_spanned!(expr.span()=> let inner = ::netaio::plugin::Plugins::#name(inner, #expr);)
        });
        quote! {
            .with_inner({
                let inner = ::netaio::plugin::Plugins::new();
                #(#auth)*
                #(#cipher)*
                inner
            })
        }
    }

    /// The `netaio::router::RouteKey` expression for these arguments (only called after `check`).
    pub(crate) fn key_tokens(&self) -> TokenStream {
        let Some(message_type) = &self.message_type else {
            return quote!(::core::unreachable!());
        };
        let message_type = message_type_tokens(message_type);
        match &self.uri {
            None => quote!(::netaio::router::RouteKey::Type(#message_type)),
            Some(uri) => quote_spanned! {uri.span()=>
                <::netaio::router::RouteKey as ::core::convert::From<_>>::from((#message_type, #uri))
            },
        }
    }
}

/// The message type expression, in a scope where the assigned type names (`REQUEST_URI`, ...) are
/// glob-imported: a bare name is `MessageType::REQUEST_URI`, a typo gets the compiler's "similar
/// name" hint, and any other expression of type `MessageType` (`MessageType::OK`, `crate::PING`,
/// `MessageType::custom(40)`) means what it means where the attribute is written.
fn message_type_tokens(expr: &Expr) -> TokenStream {
    quote! {{
        #[allow(unused_imports)]
        use ::netaio::message::names::*;
        let message_type: ::netaio::MessageType = #expr;
        message_type
    }}
}
