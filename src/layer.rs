//! tower middleware that routes every request with a controller's current snapshot.
//!
//! See [IngressLayer] for the model.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, LOCATION};
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::canonical::{RejectStatus, Rejection};
use crate::snapshot::{MatchedRoute, SharedSnapshot};
use crate::table::OwnedKey;
use crate::tls::TlsInfo;

/// Why [`IngressService`] answered a request itself instead of calling the inner service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// No rule and no fallback routes the request (`404` by default).
    NoRoute,
    /// The host or path is malformed or ambiguous (`400` by default).
    BadRequest,
    /// The path is longer, or has more segments, than the table's limits (`414` by default).
    UriTooLong,
    /// Over TLS, the connection's SNI got another certificate than the request's host would
    /// (`421` by default).
    Misdirected,
    /// Over plain HTTP, the host has TLS configured: the answer redirects to `https` (`308` by
    /// default, with a `Location` header).
    RedirectToHttps,
}

impl Refusal {
    fn of(rejection: &Rejection) -> Refusal {
        match rejection.status() {
            RejectStatus::BadRequest => Refusal::BadRequest,
            RejectStatus::UriTooLong => Refusal::UriTooLong,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::NoRoute => "no route",
            Refusal::BadRequest => "bad request",
            Refusal::UriTooLong => "URI too long",
            Refusal::Misdirected => "misdirected request",
            Refusal::RedirectToHttps => "redirect to https",
        })
    }
}

/// The answer to one kind of [`Refusal`].
#[derive(Debug, Clone)]
struct Reply {
    status: StatusCode,
    /// `None`: a default body naming the reason.
    body: Option<Bytes>,
}

#[derive(Debug, Clone)]
struct Replies {
    no_route: Reply,
    bad_request: Reply,
    uri_too_long: Reply,
    misdirected: Reply,
    redirect: Reply,
}

impl Default for Replies {
    fn default() -> Self {
        Replies {
            no_route: Reply {
                status: StatusCode::NOT_FOUND,
                body: None,
            },
            bad_request: Reply {
                status: StatusCode::BAD_REQUEST,
                body: None,
            },
            uri_too_long: Reply {
                status: StatusCode::URI_TOO_LONG,
                body: None,
            },
            misdirected: Reply {
                status: StatusCode::MISDIRECTED_REQUEST,
                body: None,
            },
            redirect: Reply {
                status: StatusCode::PERMANENT_REDIRECT,
                body: None,
            },
        }
    }
}

impl Replies {
    fn get_mut(&mut self, refusal: Refusal) -> &mut Reply {
        match refusal {
            Refusal::NoRoute => &mut self.no_route,
            Refusal::BadRequest => &mut self.bad_request,
            Refusal::UriTooLong => &mut self.uri_too_long,
            Refusal::Misdirected => &mut self.misdirected,
            Refusal::RedirectToHttps => &mut self.redirect,
        }
    }

    fn get(&self, refusal: Refusal) -> &Reply {
        match refusal {
            Refusal::NoRoute => &self.no_route,
            Refusal::BadRequest => &self.bad_request,
            Refusal::UriTooLong => &self.uri_too_long,
            Refusal::Misdirected => &self.misdirected,
            Refusal::RedirectToHttps => &self.redirect,
        }
    }

    fn respond(&self, refusal: Refusal, rejection: Option<Rejection>) -> Response<Bytes> {
        let reply = self.get(refusal);
        let body = match (&reply.body, rejection, refusal) {
            (Some(body), _, _) => body.clone(),
            (None, Some(rejection), _) => {
                Bytes::from(format!("{refusal}: {}\n", rejection.reason()))
            }
            (None, None, Refusal::Misdirected) => Bytes::from_static(
                b"misdirected request: this connection's certificate is not the host's\n",
            ),
            (None, None, Refusal::RedirectToHttps) => Bytes::from_static(b"use https\n"),
            (None, None, _) => Bytes::from_static(b"no route for this host and path\n"),
        };
        let mut response = Response::new(body);
        *response.status_mut() = reply.status;
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response.extensions_mut().insert(refusal);
        if let Some(rejection) = rejection {
            response.extensions_mut().insert(rejection);
        }
        response
    }
}

/// What an [`IngressLayer`] is set to do besides routing.
#[derive(Debug, Clone)]
struct Config {
    replies: Replies,
    ssl_redirect: bool,
    http_port: Option<u16>,
    https_port: Option<u16>,
    no_redirect_prefixes: Vec<String>,
    sni_host_check: bool,
    #[cfg(feature = "nginx")]
    nginx: Option<Arc<crate::nginx::NginxConfig>>,
}

/// The address of the client a request came from (the TCP peer), put into each request's
/// extensions by the server, as [`TlsInfo`] is. Allow- and deny-lists and rate limits read
/// it; behind a trusted proxy, `X-Forwarded-For` names the client instead (feature `nginx`,
/// [`NginxConfig::use_forwarded_headers`](crate::NginxConfig::use_forwarded_headers)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// The largest request body a route accepts, put into the extensions of every forwarded
/// request whose route has one (feature `nginx`, `proxy-body-size`). The layer answers `413`
/// itself when `Content-Length` says more; a body without a length must be cut by whoever
/// reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BodyLimit(pub u64);

/// Something kept alive for as long as a response is (a count of requests in flight).
type Hold = Box<dyn std::any::Any + Send + Sync>;

/// What happens to the inner service's response.
struct After {
    /// Headers added to it.
    headers: http::HeaderMap,
    hold: Option<Hold>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            replies: Replies::default(),
            ssl_redirect: true,
            http_port: None,
            https_port: None,
            no_redirect_prefixes: vec!["/.well-known/acme-challenge".to_owned()],
            sni_host_check: true,
            #[cfg(feature = "nginx")]
            nginx: None,
        }
    }
}

impl Config {
    /// Whether a canonical path is exempt from ssl-redirect: it is one of the prefixes or
    /// under one, by path element.
    fn exempt(&self, path: &str) -> bool {
        self.no_redirect_prefixes.iter().any(|prefix| {
            let prefix = prefix.trim_end_matches('/');
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }

    /// `https://host[:port]` followed by the canonical path and query.
    fn location(&self, host: &str, path_and_query: &str) -> Option<HeaderValue> {
        let location = match self.https_port {
            None | Some(443) => format!("https://{host}{path_and_query}"),
            Some(port) => format!("https://{host}:{port}{path_and_query}"),
        };
        HeaderValue::try_from(location).ok()
    }
}

/// tower middleware that routes every request with a controller's current
/// [`Snapshot`](crate::Snapshot) (feature `tower`).
///
/// [`IngressLayer`] wraps any `tower::Service<http::Request<_>>` — an axum `Router`, a hyper
/// proxy, a `service_fn` — in an [`IngressService`]. For each request it:
///
/// 1. takes the current snapshot from its [`SharedSnapshot`];
/// 2. canonicalises the host and path ([`canonical_path`](crate::canonical_path)) and answers `400` or `414` itself
///    when the request cannot be routed safely;
/// 3. on a TLS connection, answers `421 Misdirected Request` when the certificate chosen for
///    the connection's SNI is not the one the request's host gets (see below);
/// 4. routes it, and answers `404` itself when no rule and no fallback applies;
/// 5. on plain HTTP, answers `308 Permanent Redirect` to the same URL over `https` when the
///    request's host has TLS configured (ssl-redirect, see below);
/// 6. otherwise rewrites the request's path to the canonical one (the query is kept as
///    received), so that the inner service — and the backend behind it — receives exactly the
///    path that was matched, puts a [`MatchedRoute`] into the request extensions, and calls the
///    inner service.
///
/// # TLS
///
/// The layer learns that a request came over TLS, and with which SNI, from a [`TlsInfo`] in the
/// request's extensions: a server that terminates TLS inserts one into every request of the
/// connection (`TlsInfo::new(sni)`, cloned per request). A request without one is taken to be
/// plain HTTP. Both checks use the snapshot's [`TlsTable`](crate::TlsTable), compiled from the
/// same Ingresses as its routes.
///
/// - **ssl-redirect** (on by default, as in ingress-nginx): a plain-HTTP request that routes,
///   for a host with TLS configured (a `spec.tls` entry covers it), gets `308` with
///   `Location: https://host[:port]/canonical-path?query`. Switch it off per layer with
///   [`IngressLayer::ssl_redirect`] (one layer per controller), set the port with
///   [`IngressLayer::https_port`]. Paths under `/.well-known/acme-challenge` are never
///   redirected, so that HTTP-01 challenges keep working
///   ([`IngressLayer::no_redirect_prefixes`]). Behind a load balancer that terminates TLS
///   itself, insert a `TlsInfo` for its requests or switch the redirect off.
/// - **SNI/Host check** (on by default): a request over TLS whose host would get a different
///   certificate than the connection's SNI got ([`TlsTable::same_certificate`]) is answered
///   `421`, which tells HTTP/2 clients that reuse connections across hosts to open a new one,
///   and keeps a client from reaching a host through a connection set up for another. A
///   connection without SNI got the default certificate, so it may carry requests only for
///   hosts that get the default certificate too. Switch it off with
///   [`IngressLayer::sni_host_check`].
///
/// [`TlsTable::same_certificate`]: crate::TlsTable::same_certificate
///
/// # Answers
///
/// The status and body of each direct answer can be set with [`IngressLayer::reply`]; direct
/// answers carry the [`Refusal`] (and, for `400` and `414`, the [`Rejection`]) in their response
/// extensions, for logging. Errors are always the inner service's, so an inner service that
/// cannot fail (axum's `Infallible`) still cannot fail. Nothing on the request path is boxed: a
/// direct answer is one variant of [`ResponseFuture`] and of [`ResponseBody`].
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response, StatusCode};
/// use ingress_router::{IngressLayer, Manifests, MatchedRoute, SharedSnapshot, Snapshot, TableOptions};
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
///
/// # tokio_test_block_on(async {
/// let manifests = Manifests::parse(r#"
/// kind: Ingress
/// metadata: {name: shop, namespace: web}
/// spec:
///   rules:
///   - host: shop.example.com
///     http:
///       paths:
///       - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 8080}}}}
/// "#);
/// let table = SharedSnapshot::new(Snapshot::build(&manifests.ingresses, TableOptions::default()));
///
/// let service = ServiceBuilder::new()
///     .layer(IngressLayer::new(table.clone()))
///     .service(service_fn(|request: Request<String>| async move {
///         let route = request.extensions().get::<MatchedRoute>().unwrap();
///         let body = format!("{} {}", route.backend(), request.uri());
///         Ok::<_, Infallible>(Response::new(body))
///     }));
///
/// let request = Request::get("/api/v1/../items?page=2")
///     .header("host", "Shop.Example.com")
///     .body(String::new())
///     .unwrap();
/// let response = service.clone().oneshot(request).await.unwrap();
/// assert_eq!(response.status(), StatusCode::OK);
/// # use http_body_util::BodyExt;
/// let body = response.into_body().collect().await.unwrap().to_bytes();
/// assert_eq!(body, "service web/api:8080 /api/items?page=2");
///
/// let request = Request::get("/").header("host", "shop.example.com").body(String::new()).unwrap();
/// let response = service.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), StatusCode::NOT_FOUND);
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
///
/// A [`Layer`] that routes requests with a [`SharedSnapshot`]; see the [module docs](crate::IngressLayer).
#[derive(Debug, Clone)]
pub struct IngressLayer {
    table: SharedSnapshot,
    config: Arc<Config>,
}

impl IngressLayer {
    /// Routes with `table`: a [`SharedSnapshot`] (swap snapshots in through any clone of it),
    /// or a [`Snapshot`](crate::Snapshot) or plain [`RouteTable`](crate::RouteTable) that never
    /// changes.
    pub fn new(table: impl Into<SharedSnapshot>) -> IngressLayer {
        IngressLayer {
            table: table.into(),
            config: Arc::new(Config::default()),
        }
    }

    /// Answers `refusal` with `status` and the plain-text `body` instead of the defaults
    /// (`404`, `400`, `414`, `421`, `308`, each with a one-line body naming the reason). A
    /// [`Refusal::RedirectToHttps`] answer always carries its `Location`.
    pub fn reply(mut self, refusal: Refusal, status: StatusCode, body: impl Into<Bytes>) -> Self {
        let reply = Arc::make_mut(&mut self.config).replies.get_mut(refusal);
        reply.status = status;
        reply.body = Some(body.into());
        self
    }

    /// Whether plain-HTTP requests for hosts with TLS configured are redirected to `https`
    /// (default: yes); see [TLS](crate::IngressLayer#tls).
    pub fn ssl_redirect(mut self, enabled: bool) -> Self {
        Arc::make_mut(&mut self.config).ssl_redirect = enabled;
        self
    }

    /// The port that ssl-redirect sends clients to (default: none in the URL, that is 443).
    pub fn https_port(mut self, port: u16) -> Self {
        Arc::make_mut(&mut self.config).https_port = Some(port);
        self
    }

    /// The port that clients reach the plain-HTTP listener on, for the redirects that name
    /// it (feature `nginx`'s `from-to-www-redirect`; default 80).
    pub fn http_port(mut self, port: u16) -> Self {
        Arc::make_mut(&mut self.config).http_port = Some(port);
        self
    }

    /// Applies the request-level part of the routes' [`NginxPolicy`](crate::NginxPolicy)
    /// (feature `nginx`), and `config`'s controller-wide settings to every request:
    ///
    /// 1. `from-to-www-redirect`, `app-root`, then `permanent-redirect` / `temporal-redirect`
    ///    are answered directly;
    /// 2. CORS: an `OPTIONS` request from an allowed origin is answered `204` with the CORS
    ///    headers, which every other response of the route also gets;
    /// 3. ssl-redirect replaces the layer's own: `ssl-redirect` (per route, else the
    ///    ConfigMap's, for hosts with TLS) and `force-ssl-redirect` answer
    ///    `http-redirect-code` with `https://host[:port]` and the canonical path and query
    ///    minus one trailing `/` (`preserve-trailing-slash` keeps it);
    /// 4. `limit-rps` and `limit-connections` answer `503` past the limit, allow- and
    ///    deny-lists `403`, and a `Content-Length` over `proxy-body-size` `413`;
    /// 5. `rewrite-target` rewrites the path (with `x-forwarded-prefix`), and a canary route
    ///    chooses its backend ([`MatchedRoute::pick_backend`](crate::MatchedRoute::pick_backend)).
    ///
    /// The client address is the [`ClientAddr`] of the request's extensions (or, from a
    /// trusted proxy, its `X-Forwarded-For`); a request without one is refused by
    /// allow-lists.
    #[cfg(feature = "nginx")]
    pub fn nginx(mut self, config: Arc<crate::nginx::NginxConfig>) -> Self {
        Arc::make_mut(&mut self.config).nginx = Some(config);
        self
    }

    /// Canonical path prefixes (by path element) that ssl-redirect leaves on plain HTTP;
    /// replaces the default, `/.well-known/acme-challenge`.
    pub fn no_redirect_prefixes<I>(mut self, prefixes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Arc::make_mut(&mut self.config).no_redirect_prefixes =
            prefixes.into_iter().map(Into::into).collect();
        self
    }

    /// Whether requests over TLS whose host would get another certificate than the
    /// connection's SNI got are answered `421` (default: yes); see [TLS](crate::IngressLayer#tls).
    pub fn sni_host_check(mut self, enabled: bool) -> Self {
        Arc::make_mut(&mut self.config).sni_host_check = enabled;
        self
    }

    /// The snapshot handle requests are routed with.
    pub fn snapshot(&self) -> &SharedSnapshot {
        &self.table
    }
}

impl<S> Layer<S> for IngressLayer {
    type Service = IngressService<S>;

    fn layer(&self, inner: S) -> IngressService<S> {
        IngressService {
            inner,
            table: self.table.clone(),
            config: Arc::clone(&self.config),
        }
    }
}

/// Middleware that routes each request and answers those it cannot route; see the
/// [module docs](crate::IngressLayer).
#[derive(Debug, Clone)]
pub struct IngressService<S> {
    inner: S,
    table: SharedSnapshot,
    config: Arc<Config>,
}

impl<S> IngressService<S> {
    /// Wraps `inner`, routing with `table`.
    pub fn new(inner: S, table: impl Into<SharedSnapshot>) -> IngressService<S> {
        IngressLayer::new(table).layer(inner)
    }

    /// A layer that wraps services in `IngressService`, routing with `table`.
    pub fn layer(table: impl Into<SharedSnapshot>) -> IngressLayer {
        IngressLayer::new(table)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The snapshot handle requests are routed with.
    pub fn snapshot(&self) -> &SharedSnapshot {
        &self.table
    }
}

/// What routing decided for one request.
enum Decided {
    Forward {
        matched: OwnedKey,
        rewrite: Option<String>,
    },
    Refuse(Refusal, Option<Rejection>),
    Redirect(Option<HeaderValue>),
    /// Forwarded as the route's ingress-nginx policy says (feature `nginx`).
    #[cfg(feature = "nginx")]
    Nginx {
        matched: OwnedKey,
        rewrite: Option<String>,
        forwarding: crate::nginx::Forwarding,
    },
    #[cfg(feature = "nginx")]
    Answer(crate::nginx::Answer),
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for IngressService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let snapshot = self.table.load();
        let table = snapshot.routes();
        let config = &*self.config;
        let tls = request.extensions().get::<TlsInfo>();
        let decided = match table.route_request(&request) {
            Err(rejection) => Decided::Refuse(Refusal::of(&rejection), Some(rejection)),
            Ok(routed) => {
                // Only asked for when there is TLS to consider: it checks the name is UTF-8.
                let host = || routed.host.name();
                let names = snapshot.tls();
                let tls_hosts = !names.is_empty();
                match (tls, routed.route) {
                    (Some(tls), _)
                        if config.sni_host_check
                            && !names.same_certificate(tls.server_name(), host()) =>
                    {
                        Decided::Refuse(Refusal::Misdirected, None)
                    }
                    (_, None) => Decided::Refuse(Refusal::NoRoute, None),
                    #[cfg(feature = "nginx")]
                    (_, Some(route)) if config.nginx.is_some() => {
                        match nginx_decide(config, &request, &routed, &route, names) {
                            Ok(forwarding) => Decided::Nginx {
                                matched: OwnedKey::of(&route),
                                rewrite: match &forwarding.rewrite {
                                    Some(rewrite) => Some(rewrite.clone()),
                                    None => routed
                                        .path
                                        .is_modified()
                                        .then(|| routed.path.path_and_query().into_owned()),
                                },
                                forwarding,
                            },
                            Err(answer) => Decided::Answer(answer),
                        }
                    }
                    (None, Some(_))
                        if config.ssl_redirect
                            && tls_hosts
                            && host().is_some_and(|h| names.lookup(h).is_some())
                            && !config.exempt(routed.path.path()) =>
                    {
                        let host = host().unwrap_or_default();
                        Decided::Redirect(config.location(host, &routed.path.path_and_query()))
                    }
                    (_, Some(route)) => Decided::Forward {
                        matched: OwnedKey::of(&route),
                        rewrite: routed
                            .path
                            .is_modified()
                            .then(|| routed.path.path_and_query().into_owned()),
                    },
                }
            }
        };
        match decided {
            Decided::Refuse(refusal, rejection) => {
                ResponseFuture::refused(config.replies.respond(refusal, rejection))
            }
            Decided::Redirect(None) => {
                // Canonical hosts and paths make valid header values; defence in depth.
                ResponseFuture::refused(config.replies.respond(Refusal::BadRequest, None))
            }
            Decided::Redirect(Some(location)) => {
                let mut response = config.replies.respond(Refusal::RedirectToHttps, None);
                response.headers_mut().insert(LOCATION, location);
                ResponseFuture::refused(response)
            }
            Decided::Forward { matched, rewrite } => {
                if let Some(path_and_query) = rewrite {
                    if set_path_and_query(&mut request, path_and_query).is_err() {
                        // Canonical paths are valid request targets; this is defence in depth.
                        let response = config.replies.respond(Refusal::BadRequest, None);
                        return ResponseFuture::refused(response);
                    }
                }
                request
                    .extensions_mut()
                    .insert(MatchedRoute::with_key(snapshot, matched));
                ResponseFuture {
                    kind: FutureKind::Inner {
                        future: self.inner.call(request),
                        after: None,
                    },
                }
            }
            #[cfg(feature = "nginx")]
            Decided::Answer(answer) => {
                let mut response = Response::new(Bytes::from_static(answer.body.as_bytes()));
                *response.status_mut() = answer.status;
                *response.headers_mut() = answer.headers;
                if !answer.body.is_empty() {
                    response.headers_mut().insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; charset=utf-8"),
                    );
                }
                ResponseFuture::refused(response)
            }
            #[cfg(feature = "nginx")]
            Decided::Nginx {
                matched,
                rewrite,
                forwarding,
            } => {
                if let Some(path_and_query) = rewrite {
                    if set_path_and_query(&mut request, path_and_query).is_err() {
                        let response = config.replies.respond(Refusal::BadRequest, None);
                        return ResponseFuture::refused(response);
                    }
                }
                let crate::nginx::Forwarding {
                    request_headers,
                    response_headers,
                    backend,
                    body_limit,
                    in_flight,
                    ..
                } = forwarding;
                for (name, value) in request_headers {
                    request.headers_mut().insert(name, value);
                }
                let extensions = request.extensions_mut();
                if let Some(limit) = body_limit {
                    extensions.insert(BodyLimit(limit));
                }
                let mut route = MatchedRoute::with_key(snapshot, matched);
                if let Some(backend) = backend {
                    route = route.with_choice(backend);
                }
                extensions.insert(route);
                let after = (response_headers.is_some() || in_flight.is_some()).then(|| {
                    Box::new(After {
                        headers: response_headers.unwrap_or_default(),
                        hold: in_flight.map(|h| Box::new(h) as Hold),
                    })
                });
                ResponseFuture {
                    kind: FutureKind::Inner {
                        future: self.inner.call(request),
                        after,
                    },
                }
            }
        }
    }
}

/// Applies the route's ingress-nginx policy to a request that routed.
#[cfg(feature = "nginx")]
fn nginx_decide<B>(
    config: &Config,
    request: &Request<B>,
    routed: &crate::table::RoutedRequest<'_, '_>,
    route: &crate::table::RouteMatch<'_>,
    names: &crate::tls::TlsTable,
) -> Result<crate::nginx::Forwarding, crate::nginx::Answer> {
    let nginx = config.nginx.as_deref().expect("called in nginx mode");
    let headers = request.headers();
    let peer = request.extensions().get::<ClientAddr>().map(|c| c.0.ip());
    let forwarded_https = || {
        peer.is_some_and(|p| nginx.trusts(p))
            && headers
                .get(X_FORWARDED_PROTO)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
    };
    let tls = request.extensions().get::<TlsInfo>().is_some() || forwarded_https();
    let host = routed.host.name();
    let raw_host = request.uri().authority().map(|a| a.as_str()).or_else(|| {
        headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
    });
    // Asked for only when a redirect needs them. Redirects carry the canonical path that was
    // routed, as the layer's own do; the layer's own switch turns the TLS hosts' redirect off
    // (force-ssl-redirect stays).
    let target = || routed.path.path_and_query();
    let tls_host = || {
        config.ssl_redirect && !names.is_empty() && host.is_some_and(|h| names.lookup(h).is_some())
    };
    let exempt = || config.exempt(routed.path.path());
    let view = crate::nginx::RequestView {
        method: request.method(),
        headers,
        tls,
        host,
        raw_host,
        path: routed.path.path(),
        query: routed.path.query(),
        target: &target,
        peer,
        tls_host: &tls_host,
        exempt: &exempt,
        http_port: config.http_port,
        https_port: config.https_port,
    };
    let policy = route
        .policy()
        .and_then(|p| p.get::<crate::nginx::NginxPolicy>());
    crate::nginx::decide(policy, nginx, &view)
}

#[cfg(feature = "nginx")]
const X_FORWARDED_PROTO: http::HeaderName = http::HeaderName::from_static("x-forwarded-proto");

fn set_path_and_query<B>(request: &mut Request<B>, path_and_query: String) -> Result<(), ()> {
    let mut parts = request.uri().clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(path_and_query).map_err(drop)?);
    *request.uri_mut() = Uri::from_parts(parts).map_err(drop)?;
    Ok(())
}

pin_project! {
    /// The response future of [`IngressService`]: the inner service's, or a direct answer.
    pub struct ResponseFuture<F> {
        #[pin]
        kind: FutureKind<F>,
    }
}

pin_project! {
    #[project = FutureKindProj]
    enum FutureKind<F> {
        Inner { #[pin] future: F, after: Option<Box<After>> },
        Refused { response: Option<Response<Bytes>> },
    }
}

impl<F> ResponseFuture<F> {
    fn refused(response: Response<Bytes>) -> Self {
        ResponseFuture {
            kind: FutureKind::Refused {
                response: Some(response),
            },
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            FutureKind::Inner { .. } => "inner",
            FutureKind::Refused { .. } => "refused",
        };
        f.debug_struct("ResponseFuture")
            .field("kind", &kind)
            .finish()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            FutureKindProj::Inner { future, after } => match future.poll(cx) {
                Poll::Ready(Ok(response)) => {
                    let Some(after) = after.take() else {
                        return Poll::Ready(Ok(response.map(ResponseBody::inner)));
                    };
                    let After { headers, hold } = *after;
                    let (mut parts, body) = response.into_parts();
                    for (name, value) in headers {
                        if let Some(name) = name {
                            parts.headers.insert(name, value);
                        }
                    }
                    let body = ResponseBody {
                        kind: BodyKind::Inner { body, hold },
                    };
                    Poll::Ready(Ok(Response::from_parts(parts, body)))
                }
                Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
                Poll::Pending => Poll::Pending,
            },
            FutureKindProj::Refused { response } => {
                let response = response
                    .take()
                    .expect("ResponseFuture polled after completion");
                Poll::Ready(Ok(response.map(ResponseBody::full)))
            }
        }
    }
}

pin_project! {
    /// The response body of [`IngressService`]: the inner service's, or the short plain-text
    /// body of a direct answer.
    pub struct ResponseBody<B> {
        #[pin]
        kind: BodyKind<B>,
    }
}

pin_project! {
    #[project = BodyKindProj]
    enum BodyKind<B> {
        Inner { #[pin] body: B, hold: Option<Hold> },
        Full { data: Option<Bytes> },
    }
}

impl<B> ResponseBody<B> {
    fn inner(body: B) -> Self {
        ResponseBody {
            kind: BodyKind::Inner { body, hold: None },
        }
    }

    fn full(data: Bytes) -> Self {
        let data = (!data.is_empty()).then_some(data);
        ResponseBody {
            kind: BodyKind::Full { data },
        }
    }
}

impl<B> ResponseBody<B> {
    /// The inner service's body; `None` for a direct answer.
    pub fn into_inner(self) -> Option<B> {
        match self.kind {
            BodyKind::Inner { body, .. } => Some(body),
            BodyKind::Full { .. } => None,
        }
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            BodyKind::Inner { .. } => f.write_str("ResponseBody::Inner"),
            BodyKind::Full { data } => f
                .debug_tuple("ResponseBody::Full")
                .field(&data.as_ref().map_or(0, Bytes::len))
                .finish(),
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.project().kind.project() {
            BodyKindProj::Inner { body, .. } => body.poll_frame(cx),
            BodyKindProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            BodyKind::Inner { body, .. } => body.is_end_stream(),
            BodyKind::Full { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            BodyKind::Inner { body, .. } => body.size_hint(),
            BodyKind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}
