use netaio::Router;

struct NotAService;

fn main() {
    let _ = Router::new().mount(NotAService);
}
