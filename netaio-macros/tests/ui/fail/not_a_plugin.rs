use netaio::on;

struct NotAPlugin;

#[on(REQUEST_URI, uri = "secret", auth = NotAPlugin, cipher = "key")]
async fn secret() {}

fn main() {}
