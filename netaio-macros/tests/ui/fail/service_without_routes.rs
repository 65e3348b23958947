use netaio::service;

struct Svc;

#[service]
impl Svc {
    fn helper(&self) {}
}

fn main() {}
