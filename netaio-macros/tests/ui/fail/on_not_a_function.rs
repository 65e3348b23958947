use netaio::on;

#[on(REQUEST_URI)]
struct Echo;

struct Svc;

#[on(REQUEST_URI)]
impl Svc {}

fn main() {}
