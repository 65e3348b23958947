//! A route remembers where its handler was declared, and a duplicate route names that place.

use netaio::router::{IntoRoute, RouteError};
use netaio::{Message, Router, handlers, on, once, service};

#[on(REQUEST_URI, uri = "a")]
async fn first() -> Message {
    Message::ok("a", "1")
}

#[on(REQUEST_URI, uri = "a")]
async fn second() -> Message {
    Message::ok("a", "2")
}

#[once(REQUEST_URI, uri = "a")]
async fn third() {}

struct Svc;

#[service]
impl Svc {
    #[on(REQUEST_URI, uri = "a")]
    async fn fourth(&self) {}
}

fn main() {
    let here = file!();
    let route = first {}.into_route();
    assert_eq!(route.location().file(), here);
    assert_eq!(route.location().line(), 7, "{}", route.location());

    // A persistent and a one-shot handler may share a key; two persistent ones may not.
    let router = Router::new().routes(handlers![first, third]);
    assert_eq!(router.len(), 2);
    let err = router.clone().try_routes(handlers![second]).unwrap_err();
    let RouteError::Duplicate { first: at, kind, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((at.file(), at.line(), *kind), (here, 7, "persistent"));
    let text = err.to_string();
    assert!(text.contains("location.rs:7"), "{text}");

    let err = router.try_mount(Svc).unwrap_err();
    assert!(err.to_string().contains("location.rs:7"), "{err}");
    let err = Router::new().mount(Svc).try_routes(handlers![first]).unwrap_err();
    assert!(err.to_string().contains("location.rs:24"), "{err}");
}
