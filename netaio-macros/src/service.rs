//! `#[service]` on an `impl` block: the block stays as written (minus the `#[on]` / `#[once]`
//! attributes on its methods), and `netaio::router::Service` is implemented for the type, one
//! route per marked method.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, Ident, ImplItem, ItemImpl, Meta};

use crate::handler::{HandlerFn, Place, Receiver};
use crate::route::{Kind, route_args};

/// Expand `#[service(args)] item`.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut block: ItemImpl = match syn::parse2(item.clone()) {
        Ok(b) => b,
        Err(_) => {
            let e = syn::Error::new(
                Span::call_site(),
                "`#[service]` goes on an `impl` block whose methods carry `#[on(...)]`; on a \
                 single function, write `#[netaio::on(...)]`",
            )
            .into_compile_error();
            return quote!(#e #item);
        }
    };
    let mut errors = Vec::new();
    if !args.is_empty() {
        errors.push(syn::Error::new(
            args.span(),
            "`#[service]` takes no arguments: write `#[netaio::service]`",
        ));
    }
    if let Some((path, _)) = &block.trait_ {
        errors.push(syn::Error::new(
            path.span(),
            "`#[service]` goes on an inherent `impl` block (`impl MyService { ... }`), not on a \
             trait impl",
        ));
    }

    let svc = Ident::new("__netaio_svc", Span::call_site());
    let mut routes = Vec::new();
    for item in &mut block.items {
        let ImplItem::Fn(method) = item else {
            if let Some(attrs) = item_attrs(item) {
                for attr in take_route_attrs(attrs) {
                    errors.push(syn::Error::new(
                        attr.path().span(),
                        "`#[on]` / `#[once]` go on the `async fn` methods of a service",
                    ));
                }
            }
            continue;
        };
        let marks = take_route_attrs(&mut method.attrs);
        if marks.is_empty() {
            continue;
        }
        let mut method_errors = Vec::new();
        let handler = HandlerFn::analyze(&method.sig, Place::Service, &mut method_errors);
        for mark in &marks {
            let Some(kind) = Kind::of(mark) else { continue };
            let tokens = match &mark.meta {
                Meta::List(list) => list.tokens.clone(),
                _ => TokenStream::new(),
            };
            let args = route_args(kind, tokens, mark.path().span(), &mut method_errors);
            if !method_errors.is_empty() {
                continue;
            }
            let ident = &method.sig.ident;
            let key = args.key_tokens();
            let boxed = handler.boxed_handler(quote!(Self::#ident), Some(&svc));
            let once = kind.is_once();
            let inner = args.inner_tokens();
            let clone = (handler.receiver != Receiver::None)
                .then(|| quote!(let #svc = ::std::sync::Arc::clone(&self);));
            routes.push(quote_spanned! {ident.span()=>
                {
                    #clone
                    ::netaio::router::Route::from_boxed(#key, #boxed, #once) #inner
                }
            });
        }
        errors.extend(method_errors);
    }
    if routes.is_empty() && errors.is_empty() {
        errors.push(syn::Error::new(
            block.self_ty.span(),
            "this service has no routes: mark its handler methods with `#[on(...)]` or \
             `#[once(...)]`",
        ));
    }

    if block.trait_.is_some() {
        let errors = errors.iter().map(syn::Error::to_compile_error);
        return quote!(#block #(#errors)*);
    }
    let (impl_generics, _, where_clause) = block.generics.split_for_impl();
    let self_ty = &block.self_ty;
    let body = if errors.is_empty() {
        quote!(::std::vec![#(#routes),*])
    } else {
        quote!(::core::unreachable!())
    };
    let service_trait = quote_spanned!(self_ty.span()=> ::netaio::router::Service);
    let errors = errors.iter().map(syn::Error::to_compile_error);
    quote! {
        #block

        impl #impl_generics #service_trait for #self_ty #where_clause {
            fn routes(
                self: ::std::sync::Arc<Self>,
            ) -> ::std::vec::Vec<::netaio::router::Route> {
                #body
            }
        }

        #(#errors)*
    }
}

/// Remove the `#[on]` / `#[once]` attributes from `attrs` and return them.
fn take_route_attrs(attrs: &mut Vec<Attribute>) -> Vec<Attribute> {
    let (marks, rest) = std::mem::take(attrs)
        .into_iter()
        .partition(|a| Kind::of(a).is_some());
    *attrs = rest;
    marks
}

fn item_attrs(item: &mut ImplItem) -> Option<&mut Vec<Attribute>> {
    match item {
        ImplItem::Const(c) => Some(&mut c.attrs),
        ImplItem::Fn(f) => Some(&mut f.attrs),
        ImplItem::Type(t) => Some(&mut t.attrs),
        ImplItem::Macro(m) => Some(&mut m.attrs),
        _ => None,
    }
}
