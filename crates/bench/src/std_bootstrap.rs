//! A function bootstrap written with std only: one blocking loop, one
//! keep-alive connection to the Runtime API, no runtime client and no
//! allocation per call beyond the event's bytes. What it costs per call is
//! the platform's own cost: the bench's "std-only" rows measure Stratus,
//! not a language runtime.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

const ANSWER: &[u8] = br#"{"statusCode":200,"body":"ok"}"#;

pub(crate) fn run() -> anyhow::Result<()> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API")?;
    loop {
        let stream = TcpStream::connect(&api)?;
        stream.set_nodelay(true)?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut writer = stream;
        // Serve calls on this connection until the server closes it.
        while serve_one(&api, &mut reader, &mut writer).is_ok() {}
    }
}

fn serve_one(
    api: &str,
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
) -> anyhow::Result<()> {
    // Each request goes out in one write, as a real client buffers it.
    let mut out = Vec::with_capacity(256);
    write!(
        out,
        "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: {api}\r\n\r\n"
    )?;
    writer.write_all(&out)?;
    out.clear();
    let (request_id, _event) = read_response(reader)?;
    let request_id = request_id.ok_or_else(|| anyhow::anyhow!("no request id"))?;
    write!(
        out,
        "POST /2018-06-01/runtime/invocation/{request_id}/response HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        ANSWER.len()
    )?;
    out.extend_from_slice(ANSWER);
    writer.write_all(&out)?;
    read_response(reader)?;
    Ok(())
}

/// Reads one HTTP/1.1 response: its request id header (if any) and body.
fn read_response(reader: &mut BufReader<TcpStream>) -> anyhow::Result<(Option<String>, Vec<u8>)> {
    let mut line = String::new();
    let mut length = 0usize;
    let mut request_id = None;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            anyhow::bail!("connection closed");
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((name, value)) = l.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse()?;
            } else if name.eq_ignore_ascii_case("lambda-runtime-aws-request-id") {
                request_id = Some(value.to_owned());
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok((request_id, body))
}
