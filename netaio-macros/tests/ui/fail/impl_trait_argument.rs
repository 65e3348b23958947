use netaio::on;

#[on(REQUEST_URI, uri = "echo")]
async fn echo(content: impl AsRef<[u8]>) {
    let _ = content.as_ref();
}

fn main() {}
