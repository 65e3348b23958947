//! `#[on(...)]` / `#[once(...)]` on a free `async fn`: the function stays as written, and a
//! same-named braced struct implementing `IntoRoute` is emitted next to it.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, ItemFn};

use crate::args::RouteArgs;
use crate::handler::{HandlerFn, Place};

/// Which attribute: `on` (persistent) or `once` (one-shot).
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    On,
    Once,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::On => "on",
            Kind::Once => "once",
        }
    }

    pub(crate) fn is_once(self) -> bool {
        matches!(self, Kind::Once)
    }

    /// The kind of a route attribute (`on`, `once`, `netaio::on`, `::netaio::once`), if it is one.
    pub(crate) fn of(attr: &Attribute) -> Option<Kind> {
        let path = attr.path();
        let n = path.segments.len();
        let in_netaio = match n {
            1 => path.leading_colon.is_none(),
            2 => path.segments.first().is_some_and(|s| s.ident == "netaio"),
            _ => false,
        };
        if !in_netaio {
            return None;
        }
        let last = path.segments.last()?;
        if last.ident == "on" {
            Some(Kind::On)
        } else if last.ident == "once" {
            Some(Kind::Once)
        } else {
            None
        }
    }
}

/// The attribute's arguments, parsed and checked; errors go to `errors`.
pub(crate) fn route_args(
    kind: Kind,
    args: TokenStream,
    span: Span,
    errors: &mut Vec<syn::Error>,
) -> RouteArgs {
    match RouteArgs::parse_tokens(args) {
        Ok(args) => {
            args.check(kind.name(), span, errors);
            args
        }
        Err(e) => {
            errors.push(e);
            RouteArgs::default()
        }
    }
}

/// Expand `#[on(args)] item` / `#[once(args)] item`.
pub(crate) fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let name = kind.name();
    let mut func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let hint = if syn::parse2::<syn::ItemImpl>(item.clone()).is_ok() {
                "; on an `impl` block, write `#[netaio::service]` and put `#[on(...)]` on its methods"
            } else {
                ""
            };
            let e = syn::Error::new(
                Span::call_site(),
                format!("`#[{name}(...)]` goes on an `async fn`{hint}"),
            )
            .into_compile_error();
            return quote!(#e #item);
        }
    };

    let mut errors = Vec::new();
    let args = route_args(kind, args, Span::call_site(), &mut errors);
    // A second route attribute is reported here and removed, so that it does not expand into a
    // second struct of the same name.
    let (extra, attrs): (Vec<Attribute>, Vec<Attribute>) = std::mem::take(&mut func.attrs)
        .into_iter()
        .partition(|a| Kind::of(a).is_some());
    func.attrs = attrs;
    for attr in extra {
        errors.push(syn::Error::new(
            attr.path().span(),
            "a function is one route: for a second key, write a second handler that calls this one \
             (or, in a `#[service]`, put both attributes on the method)",
        ));
    }
    let handler = HandlerFn::analyze(&func.sig, Place::Free, &mut errors);
    if func.sig.receiver().is_some() {
        // A method outside `#[service]`: a struct cannot be emitted inside an `impl` block.
        let errors = errors.iter().map(syn::Error::to_compile_error);
        return quote!(#func #(#errors)*);
    }

    let ident = &func.sig.ident;
    let vis = &func.vis;
    let body = if errors.is_empty() {
        let key = args.key_tokens();
        let boxed = handler.boxed_handler(quote!(#ident), None);
        let once = kind.is_once();
        let inner = args.inner_tokens();
        quote_spanned! {ident.span()=>
            ::netaio::router::Route::from_boxed(#key, #boxed, #once) #inner
        }
    } else {
        // The errors are reported below; this keeps the rest of the crate free of follow-up errors.
        quote!(::core::unreachable!())
    };
    let errors = errors.iter().map(syn::Error::to_compile_error);
    let doc = format!(
        "The route of [`{ident}`]: register it with `Router::routes(handlers![{ident}])` or \
         `Router::route({ident} {{}})`."
    );
    quote! {
        #func

        #[doc = #doc]
        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code)]
        #[derive(Debug, Clone, Copy, Default)]
        #vis struct #ident {}

        impl ::netaio::router::IntoRoute for #ident {
            fn into_route(self) -> ::netaio::router::Route {
                #body
            }
        }

        #(#errors)*
    }
}
