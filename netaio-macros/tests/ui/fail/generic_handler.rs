use netaio::on;
use netaio::router::FromRequest;

#[on(REQUEST_URI, uri = "echo")]
async fn echo<T: FromRequest>(value: T) {
    let _ = value;
}

fn main() {}
