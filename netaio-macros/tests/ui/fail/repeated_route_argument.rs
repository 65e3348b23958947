use netaio::on;

#[on(REQUEST_URI, uri = "a", uri = "b")]
async fn echo() {}

#[on(REQUEST_URI, PUBLISH_URI)]
async fn two_types() {}

fn main() {}
