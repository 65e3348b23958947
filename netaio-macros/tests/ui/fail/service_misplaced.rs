use netaio::service;

trait Named {
    fn name(&self) -> &str;
}

struct Svc;

#[service]
impl Named for Svc {
    fn name(&self) -> &str {
        "svc"
    }
}

#[service]
async fn handler() {}

#[service(shared)]
impl Svc {
    #[on(PUBLISH_URI)]
    async fn publish(&self) {}
}

fn main() {}
