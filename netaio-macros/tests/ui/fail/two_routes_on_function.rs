use netaio::on;

#[on(REQUEST_URI, uri = "a")]
#[on(REQUEST_URI, uri = "b")]
async fn both() {}

fn main() {}
