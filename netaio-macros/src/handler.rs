//! A handler function's signature, checked, and the erased handler the router runs for it.
//!
//! The generated handler extracts each argument itself (`<T as FromRequest>::from_request`) rather
//! than going through the generic `Handler` impls: a wrong argument type is then one error at that
//! argument, a wrong return type one error at the return type, and there is no arity limit.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    FnArg, GenericArgument, Ident, PathArguments, ReceiverKind, ReturnType, Signature, Type,
};

/// Where the function lives.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// A free function under `#[on]` / `#[once]`.
    Free,
    /// A method in a `#[service]` impl block.
    Service,
}

/// How a service method receives the service.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Receiver {
    /// No `self`: an associated function.
    None,
    /// `&self`.
    Ref,
    /// `self: Arc<Self>`.
    Arc,
}

/// What the generated code needs to know about a handler function.
pub(crate) struct HandlerFn {
    pub ident: Ident,
    pub receiver: Receiver,
    pub args: Vec<Type>,
    pub output: Option<Type>,
}

impl HandlerFn {
    /// Check `sig` and collect what is wrong with it in `errors`; the result is usable either way.
    pub(crate) fn analyze(sig: &Signature, place: Place, errors: &mut Vec<syn::Error>) -> Self {
        let ident = sig.ident.clone();
        if sig.asyncness.is_none() {
            errors.push(syn::Error::new(
                sig.fn_token.span(),
                format!("a handler must be an `async fn`: write `async fn {ident}(...)`"),
            ));
        }
        if let Some(c) = &sig.constness {
            errors.push(syn::Error::new(
                c.span(),
                "a handler cannot be a `const fn`: remove `const`",
            ));
        }
        if let syn::Safety::Unsafe(u) = &sig.safety {
            errors.push(syn::Error::new(
                u.span(),
                "a handler cannot be `unsafe`: remove `unsafe`",
            ));
        }
        if let Some(abi) = &sig.abi {
            errors.push(syn::Error::new(
                abi.span(),
                "a handler cannot have an `extern` ABI: remove it",
            ));
        }
        if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
            errors.push(syn::Error::new(
                sig.generics.span(),
                "a handler cannot be generic: the router must know each argument's type; use \
                 concrete types (shared values go in `State<T>`)",
            ));
        }
        if let Some(v) = &sig.variadic {
            errors.push(syn::Error::new(
                v.dots.span(),
                "a handler cannot be variadic",
            ));
        }

        let mut receiver = Receiver::None;
        let mut args = Vec::new();
        for input in &sig.inputs {
            match input {
                FnArg::Receiver(r) => {
                    if place == Place::Free {
                        errors.push(syn::Error::new(
                            r.self_token.span(),
                            "`#[on]` / `#[once]` on a method: put `#[netaio::service]` on the \
                             `impl` block, and take `&self`",
                        ));
                        continue;
                    }
                    receiver = match &r.kind {
                        ReceiverKind::Reference(_, _, None) if r.mutability.is_none() => {
                            Receiver::Ref
                        }
                        ReceiverKind::Reference(_, _, Some(m)) => {
                            errors.push(syn::Error::new(
                                m.span(),
                                "a service method takes `&self`, not `&mut self`: one value \
                                 serves every connection at once; keep mutable state behind a \
                                 `Mutex` or an atomic and write `&self`",
                            ));
                            Receiver::Ref
                        }
                        ReceiverKind::Typed(_, ty) if is_arc_self(ty) => Receiver::Arc,
                        ReceiverKind::Value => {
                            errors.push(syn::Error::new(
                                r.self_token.span(),
                                "a service method cannot take `self` by value: one value \
                                 serves every connection; write `&self` (or `self: Arc<Self>`)",
                            ));
                            Receiver::Ref
                        }
                        _ => {
                            errors.push(syn::Error::new(
                                r.span(),
                                "unsupported receiver: write `&self` (or `self: Arc<Self>`)",
                            ));
                            Receiver::Ref
                        }
                    };
                }
                FnArg::Typed(pt) => {
                    match &*pt.ty {
                        Type::Reference(r) => {
                            let elem = &r.elem;
                            let pat = &pt.pat;
                            errors.push(syn::Error::new(
                                r.and_token.span(),
                                format!(
                                    "a handler takes its arguments by value: write `{}: {}`",
                                    quote!(#pat),
                                    quote!(#elem)
                                ),
                            ));
                        }
                        Type::ImplTrait(_) => {
                            errors.push(syn::Error::new(
                                pt.ty.span(),
                                "a handler argument needs a concrete type: `Message`, \
                                 `Context`, `PeerAddr`, `Uri`, `Content`, `Postcard<T>`, \
                                 `State<T>`, `MessageType` or your own `FromRequest` type",
                            ));
                        }
                        _ => {}
                    }
                    args.push((*pt.ty).clone());
                }
            }
        }
        let output = match &sig.output {
            ReturnType::Default => None,
            ReturnType::Type(_, ty) => Some((**ty).clone()),
        };
        Self {
            ident,
            receiver,
            args,
            output,
        }
    }

    /// A `netaio::router::BoxedHandler` expression calling `callee` (`echo`, `Self::echo`). For a
    /// service, `svc` names an `Arc<Self>` in scope that the handler clones.
    pub(crate) fn boxed_handler(&self, callee: TokenStream, svc: Option<&Ident>) -> TokenStream {
        let req = Ident::new("__netaio_req", Span::call_site());
        let names: Vec<Ident> = (0..self.args.len())
            .map(|i| format_ident!("__netaio_arg{}", i))
            .collect();
        // The last argument takes the request by value (`from_request_owned`): a final `Message`
        // is moved out of it rather than cloned.
        let last = self.args.len().checked_sub(1);
        let extracts = self
            .args
            .iter()
            .zip(&names)
            .enumerate()
            .map(|(i, (ty, name))| {
                let (from_request, arg) = if Some(i) == last {
                    (
                        quote_spanned! {ty.span()=>
                            <#ty as ::netaio::router::FromRequest>::from_request_owned
                        },
                        quote!(#req),
                    )
                } else {
                    (
                        quote_spanned! {ty.span()=>
                            <#ty as ::netaio::router::FromRequest>::from_request
                        },
                        quote!(&#req),
                    )
                };
                quote! {
                    let #name = match #from_request(#arg) {
                        ::core::result::Result::Ok(value) => value,
                        ::core::result::Result::Err(rejection) => {
                            return ::core::option::Option::Some(rejection.into_message());
                        }
                    };
                }
            });
        // Without arguments nothing consumed the request: drop it before the call's await.
        let drop_req = if self.args.is_empty() {
            quote!(::core::mem::drop(#req);)
        } else {
            TokenStream::new()
        };
        let (svc_clone, self_arg) = match (svc, self.receiver) {
            (Some(svc), Receiver::Ref) => (
                quote!(let #svc = ::std::sync::Arc::clone(&#svc);),
                quote!(&*#svc,),
            ),
            (Some(svc), Receiver::Arc) => (
                quote!(let #svc = ::std::sync::Arc::clone(&#svc);),
                quote!(#svc,),
            ),
            _ => (TokenStream::new(), TokenStream::new()),
        };
        let ident_span = self.ident.span();
        let call = quote_spanned! {ident_span=> #callee(#self_arg #(#names),*).await };
        let out_span = self.output.as_ref().map_or(ident_span, Spanned::span);
        let into_reply =
            quote_spanned!(out_span=> ::netaio::router::IntoReply::into_reply(__netaio_out));
        // Spanned at the function's name, so that "future cannot be sent between threads safely"
        // points there rather than at the attribute.
        let future = quote_spanned! {ident_span=>
            async move {
                #(#extracts)*
                #drop_req
                let __netaio_out = #call;
                #into_reply
            }
        };
        // The state each argument needs, checked when the node is bound.
        let tys = &self.args;
        quote_spanned! {ident_span=>
            ::netaio::router::BoxedHandler::from_fn_needing(
                [#(<#tys as ::netaio::router::FromRequest>::needed_state()),*],
                move |#req: ::netaio::router::Request| {
                    #svc_clone
                    #future
                },
            )
        }
    }
}

/// `Arc<Self>` (any path ending in `Arc`).
fn is_arc_self(ty: &Type) -> bool {
    let Type::Path(p) = ty else { return false };
    let Some(last) = p.path.segments.last() else {
        return false;
    };
    if last.ident != "Arc" {
        return false;
    }
    let PathArguments::AngleBracketed(a) = &last.arguments else {
        return false;
    };
    matches!(
        a.args.first(),
        Some(GenericArgument::Type(Type::Path(inner))) if inner.path.is_ident("Self")
    ) && a.args.len() == 1
}
