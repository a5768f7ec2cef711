//! `ferry-probe`: does a host's service answer? One [`HealthCheck`] at one address,
//! within a timeout: a TCP connect, or an HTTP(S) GET whose status is below 400.
//! The appliance probes the origin with it, and the `dr` function probes recovery
//! instances and the origin's public endpoint from AWS. Certificates are not verified:
//! like Route 53's and ELB's health checks, a probe asks whether the service answers,
//! not whom to trust.

use std::time::Duration;

use ferry_core::group::HealthCheck;
use futures::future::join_all;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("{target}: no answer within {timeout_ms} ms")]
    Timeout { target: String, timeout_ms: u128 },
    #[error("{target}: {reason}")]
    Refused { target: String, reason: String },
    #[error("{target}: HTTP {status}")]
    Status { target: String, status: u16 },
}

/// One check's outcome, named as the check was written at its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    pub target: String,
    pub result: Result<(), ProbeError>,
}

fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
}

/// The body of a GET of `url` (a status below 400), as text: a user's load figure.
pub async fn get_text(url: &str, timeout: Duration) -> Result<String, ProbeError> {
    let refused = |reason: String| ProbeError::Refused {
        target: url.to_string(),
        reason,
    };
    let c = client(timeout).map_err(|e| refused(e.to_string()))?;
    let r = c.get(url).send().await.map_err(|e| match e.is_timeout() {
        true => ProbeError::Timeout {
            target: url.to_string(),
            timeout_ms: timeout.as_millis(),
        },
        false => refused(e.to_string()),
    })?;
    if r.status().as_u16() >= 400 {
        return Err(ProbeError::Status {
            target: url.to_string(),
            status: r.status().as_u16(),
        });
    }
    r.text().await.map_err(|e| refused(e.to_string()))
}

/// Probes `check` at `addr` (an IPv4 or IPv6 address or a host name).
pub async fn probe(check: &HealthCheck, addr: &str, timeout: Duration) -> Probed {
    let target = check.at(addr);
    let result = match check {
        HealthCheck::Tcp { port } => tcp(&target, addr, *port, timeout).await,
        HealthCheck::Http { .. } => http(&target, timeout).await,
    };
    Probed { target, result }
}

/// Probes every check at `addr` at once.
pub async fn probe_all(checks: &[HealthCheck], addr: &str, timeout: Duration) -> Vec<Probed> {
    join_all(checks.iter().map(|c| probe(c, addr, timeout))).await
}

async fn tcp(target: &str, addr: &str, port: u16, timeout: Duration) -> Result<(), ProbeError> {
    let host = addr.trim_start_matches('[').trim_end_matches(']');
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(ProbeError::Refused {
            target: target.to_string(),
            reason: e.to_string(),
        }),
        Err(_) => Err(ProbeError::Timeout {
            target: target.to_string(),
            timeout_ms: timeout.as_millis(),
        }),
    }
}

async fn http(target: &str, timeout: Duration) -> Result<(), ProbeError> {
    let refused = |reason: String| ProbeError::Refused {
        target: target.to_string(),
        reason,
    };
    let c = client(timeout).map_err(|e| refused(e.to_string()))?;
    match c.get(target).send().await {
        Ok(r) if r.status().as_u16() < 400 => Ok(()),
        Ok(r) => Err(ProbeError::Status {
            target: target.to_string(),
            status: r.status().as_u16(),
        }),
        Err(e) if e.is_timeout() => Err(ProbeError::Timeout {
            target: target.to_string(),
            timeout_ms: timeout.as_millis(),
        }),
        Err(e) => Err(refused(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-page HTTP server on loopback answering `status` to every request.
    async fn http_server(status: u16) -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = s.write_all(resp.as_bytes()).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn answers_refusals_and_bad_statuses_are_told_apart() {
        let t = Duration::from_secs(2);
        let ok = http_server(200).await;
        let bad = http_server(503).await;
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let check = |s: String| s.parse::<HealthCheck>().unwrap();
        let r = probe(&check(format!("tcp:{ok}")), "127.0.0.1", t).await;
        assert_eq!(r.result, Ok(()), "{r:?}");
        let r = probe(&check(format!("http://x:{ok}/health")), "127.0.0.1", t).await;
        assert_eq!(r.result, Ok(()), "{r:?}");
        assert_eq!(r.target, format!("http://127.0.0.1:{ok}/health"));
        let r = probe(&check(format!("http://x:{bad}/")), "127.0.0.1", t).await;
        assert!(
            matches!(r.result, Err(ProbeError::Status { status: 503, .. })),
            "{r:?}"
        );
        let all = probe_all(
            &[check(format!("tcp:{closed}")), check(format!("tcp:{ok}"))],
            "127.0.0.1",
            t,
        )
        .await;
        assert!(
            matches!(all[0].result, Err(ProbeError::Refused { .. })),
            "{all:?}"
        );
        assert!(all[1].result.is_ok());
        assert!(all[0]
            .result
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains(&format!("tcp://127.0.0.1:{closed}")));
    }
}
