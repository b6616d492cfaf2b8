//! A static Helm chart repository on loopback, as a site behind a firewall serves its mirror of
//! an upstream one: packaged charts (`*.tgz`) and the `index.yaml` that `helm repo index` writes
//! for them, over plain HTTP.
//!
//! Helm reads a chart repository with two GETs (`<url>/index.yaml`, then the chart's archive),
//! so a file server is all a repository is; this one answers `GET` and `HEAD` for the files of
//! one directory and 404 for anything else. It runs on a thread of the test process for as long
//! as that process lives (the listener is never closed: a test's repository outlives nothing
//! but the test binary).

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Serves the packaged charts of `charts` (every `*.tgz` in it, copied into `dir`) at
/// `http://127.0.0.1:<port>/charts`, indexed by `helm` (`helm repo index --url`). Returns the
/// repository's URL.
///
/// # Errors
/// When `charts` holds no chart, a copy fails, `helm repo index` fails, or no port is free.
pub fn serve(charts: &Path, dir: &Path, helm: &Path) -> Result<String> {
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create `{}`", dir.display()))?;
    let mut count = 0;
    for entry in
        std::fs::read_dir(charts).with_context(|| format!("failed to read `{}`", charts.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "tgz") {
            let name = path.file_name().context("a chart file has a name")?;
            std::fs::copy(&path, dir.join(name))
                .with_context(|| format!("failed to copy `{}`", path.display()))?;
            count += 1;
        }
    }
    if count == 0 {
        bail!("no packaged chart (*.tgz) in `{}`", charts.display());
    }
    let listener = TcpListener::bind("127.0.0.1:0").context("failed to bind a loopback port")?;
    let url = format!("http://127.0.0.1:{}/charts", listener.local_addr()?.port());
    let o = Command::new(helm)
        .args(["repo", "index"])
        .arg(dir)
        .args(["--url", &url])
        .output()
        .with_context(|| format!("failed to run `{}`", helm.display()))?;
    if !o.status.success() {
        bail!("helm repo index failed: {}", String::from_utf8_lossy(&o.stderr));
    }
    let root = dir.to_path_buf();
    std::thread::Builder::new()
        .name("helm-repo".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let root = root.clone();
                std::thread::spawn(move || {
                    // A client that goes away mid-request is its own problem.
                    let _ = answer(stream, &root);
                });
            }
        })
        .context("failed to start the Helm repository's thread")?;
    Ok(url)
}

/// One request: `GET|HEAD /charts/<file>` of `root`'s files; anything else is 404 (or 405).
fn answer(stream: TcpStream, root: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // The headers (ignored) end with an empty line.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut parts = request.split_whitespace();
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let file: Option<PathBuf> = target
        .split('?')
        .next()
        .and_then(|p| p.strip_prefix("/charts/"))
        .filter(|name| !name.is_empty() && !name.contains('/') && !name.starts_with('.'))
        .map(|name| root.join(name));
    let mut out = stream;
    let (status, body, kind) = match (method, file.and_then(|f| std::fs::read(&f).ok().map(|b| (f, b)))) {
        ("GET" | "HEAD", Some((f, bytes))) => {
            let kind =
                if f.extension().is_some_and(|e| e == "yaml") { "text/yaml" } else { "application/gzip" };
            ("200 OK", bytes, kind)
        }
        ("GET" | "HEAD", None) => ("404 Not Found", b"not found\n".to_vec(), "text/plain"),
        _ => ("405 Method Not Allowed", b"GET or HEAD\n".to_vec(), "text/plain"),
    };
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        out.write_all(&body)?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(url: &str) -> (String, Vec<u8>) {
        let rest = url.strip_prefix("http://").expect("http");
        let (host, path) = rest.split_once('/').expect("path");
        let mut s = TcpStream::connect(host).expect("connect");
        write!(s, "GET /{path} HTTP/1.1\r\nHost: {host}\r\n\r\n").expect("write");
        let mut all = Vec::new();
        std::io::Read::read_to_end(&mut s, &mut all).expect("read");
        let split = all.windows(4).position(|w| w == b"\r\n\r\n").expect("headers");
        (String::from_utf8_lossy(&all[..split]).into_owned(), all[split + 4..].to_vec())
    }

    #[test]
    fn serves_the_files_of_its_directory_and_nothing_else() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("repo");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("index.yaml"), "apiVersion: v1\nentries: {}\n").expect("write");
        std::fs::write(dir.join("c-1.0.0.tgz"), b"\x1f\x8bchart").expect("write");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                let _ = answer(s, &dir);
            }
        });
        let base = format!("http://127.0.0.1:{port}/charts");
        let (head, body) = get(&format!("{base}/index.yaml"));
        assert!(head.starts_with("HTTP/1.1 200") && head.contains("text/yaml"), "{head}");
        assert_eq!(body, b"apiVersion: v1\nentries: {}\n");
        let (head, body) = get(&format!("{base}/c-1.0.0.tgz"));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, b"\x1f\x8bchart");
        for missing in ["missing.tgz", "../Cargo.toml", ".hidden", ""] {
            let (head, _) = get(&format!("{base}/{missing}"));
            assert!(head.starts_with("HTTP/1.1 404"), "{missing}: {head}");
        }
    }
}
