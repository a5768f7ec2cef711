//! The front router of the local AWS stack, on the port moto believes is its own.
//!
//! moto's Step Functions interpreter calls Lambda at `localhost:<MOTO_PORT>`; this
//! router sends Lambda Invoke calls to `cargo lambda watch` (an ARN reduced to the bare
//! function name) and everything else to moto. It makes the two fixes the interpreter
//! needs: cargo-lambda answers a function error with HTTP 500 where Lambda answers 200
//! plus `X-Amz-Function-Error: Unhandled`, and every response gets an
//! `x-amzn-RequestId`. Emulator plumbing only: product code never sees it.
//!
//! Tests can also make it answer chosen invocations with a function error
//! ([`Router::inject`]), as a Lambda whose call failed transiently would.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};

const INVOKE_PREFIX: &str = "/2015-03-31/functions/";

struct Routes {
    moto: u16,
    lambda: u16,
    client: Client<HttpConnector, Full<Bytes>>,
    next_id: AtomicU64,
    faults: Arc<Mutex<Vec<Fault>>>,
}

/// Answer the next `times` invocations of `function` whose payload contains
/// `payload_contains` with the function error `error_type`, without running it.
#[derive(Debug, Clone)]
pub struct Fault {
    pub function: String,
    pub payload_contains: String,
    pub error_type: String,
    pub times: u32,
}

/// A running router; stops when dropped.
pub struct Router {
    pub port: u16,
    faults: Arc<Mutex<Vec<Fault>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Router {
    /// Listens on 127.0.0.1:`port`, forwarding to moto and cargo-lambda.
    pub fn start(port: u16, moto: u16, lambda: u16) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(SocketAddr::from((
                [127, 0, 0, 1],
                port,
            ))))
            .with_context(|| format!("router: binding 127.0.0.1:{port}"))?;
        let faults = Arc::new(Mutex::new(Vec::new()));
        let routes = Arc::new(Routes {
            moto,
            lambda,
            client: Client::builder(TokioExecutor::new()).build_http(),
            next_id: AtomicU64::new(1),
            faults: faults.clone(),
        });
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let routes = routes.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| route(routes.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Router {
            port,
            faults,
            _runtime: runtime,
        })
    }

    pub fn inject(&self, fault: Fault) {
        if let Ok(mut f) = self.faults.lock() {
            f.push(fault);
        }
    }

    /// Injected faults not yet used up.
    pub fn faults_left(&self) -> u32 {
        self.faults
            .lock()
            .map(|f| f.iter().map(|f| f.times).sum())
            .unwrap_or(0)
    }
}

impl Routes {
    /// The error to answer this invocation with, if a fault matches it.
    fn take_fault(&self, path: &str, body: &[u8]) -> Option<String> {
        let body = String::from_utf8_lossy(body);
        let mut faults = self.faults.lock().ok()?;
        let f = faults.iter_mut().find(|f| {
            f.times > 0
                && path.starts_with(&format!("{INVOKE_PREFIX}{}/", f.function))
                && body.contains(&f.payload_contains)
        })?;
        f.times -= 1;
        Some(f.error_type.clone())
    }
}

/// `%3A` and friends, as SDKs encode an ARN in a path segment.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `/2015-03-31/functions/<name or ARN>/<rest>` -> the path cargo-lambda serves.
fn lambda_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix(INVOKE_PREFIX)?;
    let (name, tail) = rest.split_once('/')?;
    let name = percent_decode(name);
    // arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
    let bare = match name.split(':').collect::<Vec<_>>().as_slice() {
        ["arn", _, "lambda", _, _, "function", n, ..] => n.to_string(),
        _ => name.clone(),
    };
    Some(format!("{INVOKE_PREFIX}{bare}/{tail}"))
}

async fn route(
    routes: Arc<Routes>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let request_id = format!(
        "ferry-local-{}",
        routes.next_id.fetch_add(1, Ordering::Relaxed)
    );
    let resp = match forward(&routes, req).await {
        Ok(r) => r,
        Err(e) => Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Full::new(Bytes::from(format!("router: {e:#}"))))
            .unwrap_or_default(),
    };
    let (mut parts, body) = resp.into_parts();
    if !parts.headers.contains_key("x-amzn-requestid") {
        if let Ok(v) = request_id.parse() {
            parts.headers.insert("x-amzn-RequestId", v);
        }
    }
    Ok(Response::from_parts(parts, body))
}

async fn forward(routes: &Routes, req: Request<Incoming>) -> Result<Response<Full<Bytes>>> {
    let path_q = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let (port, path, is_invoke) = match lambda_path(req.uri().path()) {
        Some(p) => (routes.lambda, p, true),
        None => (routes.moto, path_q, false),
    };
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    if is_invoke {
        if let Some(error_type) = routes.take_fault(&path, &body) {
            let payload = serde_json::json!({
                "errorType": error_type,
                "errorMessage": "injected by the test router",
            });
            return Ok(Response::builder()
                .status(StatusCode::OK)
                .header("X-Amz-Function-Error", "Unhandled")
                .header("Content-Type", "application/json")
                .body(Full::new(Bytes::from(payload.to_string())))?);
        }
    }
    let mut out = Request::builder()
        .method(parts.method)
        .uri(format!("http://127.0.0.1:{port}{path}"));
    for (k, v) in &parts.headers {
        out = out.header(k, v);
    }
    let resp = routes.client.request(out.body(Full::new(body))?).await?;
    let (mut parts, body) = resp.into_parts();
    let body = body.collect().await?.to_bytes();
    if is_invoke && parts.status == StatusCode::INTERNAL_SERVER_ERROR {
        parts.status = StatusCode::OK;
        parts
            .headers
            .insert("X-Amz-Function-Error", "Unhandled".parse()?);
    }
    Ok(Response::from_parts(parts, Full::new(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoke_paths_lose_the_arn() {
        assert_eq!(
            lambda_path("/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Alaunch/invocations").as_deref(),
            Some("/2015-03-31/functions/launch/invocations")
        );
        assert_eq!(
            lambda_path("/2015-03-31/functions/launch/invocations").as_deref(),
            Some("/2015-03-31/functions/launch/invocations")
        );
        assert_eq!(lambda_path("/ferry-store/config"), None);
    }
}
