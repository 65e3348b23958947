use netaio::on;

#[on(REQUEST_URI, uri = "secret", auth = (), cipher = ())]
async fn secret() {}

fn main() {}
