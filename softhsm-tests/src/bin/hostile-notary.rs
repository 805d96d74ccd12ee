//! `hostile-notary`: a notary server an attacker runs, for the adversarial
//! tests. HTTPS on loopback, serving whatever files the test put in its
//! state directory, and misbehaving on request: one byte at a time, or an
//! answer that never ends.
//!
//! `hostile-notary --cert C --key K --dir D` serves `D/current/` (the test
//! swaps that symlink to change what is served): a GET of path P answers
//! the file named hex(sha256(P)), or 404 with notary's errcode body (`/v2/`,
//! the registry ping the stock CLI starts with, is 200). If
//! `<that name>.behaviour` exists it says how to send it: `slow MS` (one
//! byte every MS milliseconds) or `endless` (the file, then spaces for as
//! long as the client reads). The bound port goes to `D/port`, one line per
//! finished answer to `D/requests.log`: `GET P STATUS BYTES-SENT OUTCOME`.

use anyhow::{bail, Result};
use clap::Parser;
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use sha2::{Digest, Sha256};
use softhsm_tests::http_request::read_request;
use softhsm_tests::tls_server::{request_log, TlsFiles};
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    tls: TlsFiles,
    /// State directory: `current/` is served; `port` and `requests.log` are written.
    #[arg(long)]
    dir: PathBuf,
}

/// How a file is sent.
enum Behaviour {
    Normal,
    Slow(Duration),
    Endless,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let config = args.tls.server_config()?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let log = Arc::new(request_log(&args.dir)?);
    softhsm_tests::tls_server::announce_port(&args.dir, port)?;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let (config, dir, log) = (config.clone(), args.dir.clone(), log.clone());
        std::thread::spawn(move || {
            let _ = serve_connection(stream, config, &dir, &log);
        });
    }
    Ok(())
}

fn serve_connection(
    tcp: TcpStream,
    config: Arc<ServerConfig>,
    dir: &Path,
    log: &Mutex<std::fs::File>,
) -> Result<()> {
    let tls = StreamOwned::new(ServerConnection::new(config)?, tcp);
    let mut reader = BufReader::new(tls);
    loop {
        let Some(request) = read_request(&mut reader)? else {
            return Ok(());
        };
        let (method, path) = (&request.method, request.path());
        let (status, sent, outcome) = answer(reader.get_mut(), dir, path)?;
        if let Ok(mut log) = log.lock() {
            let _ = writeln!(log, "{method} {path} {status} {sent} {outcome}");
        }
        if outcome != "complete" {
            return Ok(());
        }
    }
}

/// Sends the file for `path`; returns the status, the body bytes sent, and
/// whether the answer completed or the client went away.
fn answer<W: Write>(out: &mut W, dir: &Path, path: &str) -> Result<(u16, u64, &'static str)> {
    let name = hex::encode(Sha256::digest(path.as_bytes()));
    let current = dir.join("current");
    if path == "/v2/" {
        let mut sent = 0;
        write_whole(out, b"{}", &mut sent)?;
        return Ok((200, sent, "complete"));
    }
    let Ok(body) = std::fs::read(current.join(&name)) else {
        let body = br#"{"errors":[{"code":"METADATA_NOT_FOUND","message":"You have requested a resource that does not exist."}]}"#;
        let head = format!(
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        out.write_all(head.as_bytes())?;
        out.write_all(body)?;
        out.flush()?;
        return Ok((404, body.len() as u64, "complete"));
    };
    let behaviour = match std::fs::read_to_string(current.join(format!("{name}.behaviour"))) {
        Ok(text) => parse_behaviour(&text)?,
        Err(_) => Behaviour::Normal,
    };
    let mut sent = 0u64;
    let result = match behaviour {
        Behaviour::Normal => write_whole(out, &body, &mut sent),
        Behaviour::Slow(every) => write_slowly(out, &body, every, &mut sent),
        Behaviour::Endless => write_endless(out, &body, &mut sent),
    };
    Ok(match result {
        Ok(()) => (200, sent, "complete"),
        Err(_) => (200, sent, "aborted"),
    })
}

fn parse_behaviour(text: &str) -> Result<Behaviour> {
    let mut words = text.split_whitespace();
    match (words.next(), words.next()) {
        (Some("slow"), Some(ms)) => Ok(Behaviour::Slow(Duration::from_millis(ms.parse()?))),
        (Some("endless"), None) => Ok(Behaviour::Endless),
        _ => bail!("unknown behaviour {text:?}"),
    }
}

fn head(length: usize) -> String {
    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n")
}

fn write_whole<W: Write>(out: &mut W, body: &[u8], sent: &mut u64) -> std::io::Result<()> {
    out.write_all(head(body.len()).as_bytes())?;
    out.write_all(body)?;
    out.flush()?;
    *sent = body.len() as u64;
    Ok(())
}

fn write_slowly<W: Write>(
    out: &mut W,
    body: &[u8],
    every: Duration,
    sent: &mut u64,
) -> std::io::Result<()> {
    out.write_all(head(body.len()).as_bytes())?;
    out.flush()?;
    for byte in body {
        std::thread::sleep(every);
        out.write_all(std::slice::from_ref(byte))?;
        out.flush()?;
        *sent += 1;
    }
    Ok(())
}

/// The file, then spaces in 64 KiB chunks until the client stops reading.
fn write_endless<W: Write>(out: &mut W, body: &[u8], sent: &mut u64) -> std::io::Result<()> {
    out.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    )?;
    let mut chunk = |data: &[u8]| -> std::io::Result<()> {
        out.write_all(format!("{:x}\r\n", data.len()).as_bytes())?;
        out.write_all(data)?;
        out.write_all(b"\r\n")?;
        out.flush()?;
        *sent += data.len() as u64;
        Ok(())
    };
    chunk(body)?;
    let filler = vec![b' '; 64 << 10];
    loop {
        chunk(&filler)?;
    }
}
