use netaio::on;

#[on(REQUEST_URI, uri = 7)]
async fn echo() {}

fn main() {}
