use netaio::on;

#[on(REQUEST_URI, url = "echo")]
async fn echo() {}

fn main() {}
