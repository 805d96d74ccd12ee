//! One HTTP/1.1 request as this crate's test servers (hostile-notary,
//! faulty-front) read it: the request line, the headers, and a body by
//! `Content-Length` or in chunks. Enough HTTP for the clients under test,
//! and no more.

use anyhow::{bail, Result};
use std::io::BufRead;

/// A request as read from the client.
pub struct Request {
    pub method: String,
    pub target: String,
    /// Header lines but `Connection`, `Content-Length` and
    /// `Transfer-Encoding`, which a server that forwards it sets itself.
    pub headers: Vec<String>,
    pub body: Vec<u8>,
}

impl Request {
    /// The target without its query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

/// Reads one request (headers, and a body by length or in chunks); `None`
/// when the client is gone before sending one.
pub fn read_request<R: BufRead>(reader: &mut R) -> Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        bail!("bad request line {line:?}");
    };
    let (method, target) = (method.to_string(), target.to_string());
    let (mut length, mut chunked, mut headers) = (0usize, false, Vec::new());
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            return Ok(None);
        }
        let header = header.trim_end().to_string();
        if header.is_empty() {
            break;
        }
        let lower = header.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse()?;
        } else if lower.starts_with("transfer-encoding:") {
            chunked = lower.contains("chunked");
        } else if !lower.starts_with("connection:") {
            headers.push(header);
        }
    }
    let body = if chunked {
        read_chunks(reader)?
    } else {
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        body
    };
    Ok(Some(Request {
        method,
        target,
        headers,
        body,
    }))
}

fn read_chunks<R: BufRead>(reader: &mut R) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size)?;
        let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)?;
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk)?;
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}
