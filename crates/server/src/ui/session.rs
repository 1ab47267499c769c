//! Who is signed in, for every page: the session cookie, the layout's context (who, which
//! workspace, the CSRF token), and forms whose CSRF token and origin are checked before a
//! handler sees them.

use super::assets::{self, AssetPaths};
use crate::AppState;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use wharf_service::{SESSION_LIFETIME, SessionView};

/// The largest form accepted (a model's SQL is the largest field).
const MAX_FORM_BYTES: usize = 1 << 20;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "wharf_session";

/// What the layout shows on every page.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Chrome {
    pub email: String,
    pub role: &'static str,
    pub workspace: String,
    pub workspaces: Vec<WorkspaceChoice>,
    pub csrf: String,
    pub assets: AssetPaths,
    pub is_admin: bool,
    pub can_edit: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct WorkspaceChoice {
    pub name: String,
    pub role: &'static str,
}

/// A signed-in request: the session and the layout's context.
pub(crate) struct Page {
    pub session: SessionView,
    pub chrome: Chrome,
    pub token: String,
}

impl Page {
    pub fn caller(&self) -> &wharf_service::Caller {
        &self.session.caller
    }
}

/// The value of cookie `name` in `headers`.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_string())
}

/// `Set-Cookie` for a new session (or, with `None`, one that clears it).
pub(crate) fn session_cookie(token: Option<&str>, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = match token {
        Some(token) => format!(
            "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
            SESSION_LIFETIME.as_secs()
        ),
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Where a request comes from: the peer, or behind the operator's HTTPS proxy the address the
/// proxy appended last to `X-Forwarded-For` (earlier entries are the client's to forge).
pub(crate) fn client_address(
    parts_headers: &HeaderMap,
    peer: Option<SocketAddr>,
    behind_proxy: bool,
) -> IpAddr {
    let peer = peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| p.ip());
    if !behind_proxy {
        return peer;
    }
    parts_headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .next_back()
        .unwrap_or(peer)
}

pub(crate) fn peer(parts: &Parts) -> Option<SocketAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// Sends the browser to the sign-in page, then back to `next`.
fn to_sign_in(parts: &Parts) -> Response {
    let next = if parts.method == axum::http::Method::GET {
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let target = if next.is_empty() || next == "/" {
        "/sign-in".to_string()
    } else {
        format!(
            "/sign-in?next={}",
            form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        )
    };
    if parts.headers.contains_key("hx-request") {
        // htmx swaps a redirect's target into the page; this makes it load the page instead.
        let mut response = StatusCode::NO_CONTENT.into_response();
        if let Ok(value) = HeaderValue::from_str(&target) {
            response.headers_mut().insert("hx-redirect", value);
        }
        return response;
    }
    Redirect::to(&target).into_response()
}

impl FromRequestParts<AppState> for Page {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(token) = cookie(&parts.headers, COOKIE) else {
            return Err(to_sign_in(parts));
        };
        let session = match state.service.session(&token).await {
            Ok(session) => session,
            Err(e) if e.kind == wharf_service::ErrorKind::Unauthorized => {
                return Err(to_sign_in(parts));
            }
            Err(e) => return Err(super::error_page(e)),
        };
        let chrome = Chrome {
            email: session.email.clone(),
            role: session.role.as_str(),
            workspace: session.caller.workspace.clone(),
            workspaces: session
                .workspaces
                .iter()
                .map(|(name, role)| WorkspaceChoice {
                    name: name.clone(),
                    role: role.as_str(),
                })
                .collect(),
            csrf: session.csrf_token.clone(),
            assets: assets::paths(),
            is_admin: session.role >= wharf_service::Role::Admin,
            can_edit: session.role >= wharf_service::Role::Editor,
        };
        Ok(Page {
            session,
            chrome,
            token,
        })
    }
}

/// The fields of a submitted form, in order.
#[derive(Debug, Default)]
pub(crate) struct Fields(pub Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &[u8]) -> Self {
        Fields(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The field's first value, as sent.
    pub fn text(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The field's first value, trimmed; `None` when blank.
    pub fn opt(&self, name: &str) -> Option<String> {
        let value = self.text(name).trim();
        (!value.is_empty()).then(|| value.to_string())
    }
}

/// A state-changing form from a signed-in user: refused unless it carries the session's CSRF
/// token (the `csrf` field, or htmx's `X-CSRF-Token` header) and, when the browser says where
/// it comes from, comes from this site.
pub(crate) struct SignedForm {
    pub page: Page,
    pub fields: Fields,
}

impl FromRequest<AppState> for SignedForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let page = Page::from_request_parts(&mut parts, state).await?;
        if !same_site(&parts.headers) {
            return Err(cross_site_refused());
        }
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| {
                super::error_page(wharf_service::ServiceError::bad_input(
                    "form",
                    format!("the form is larger than {MAX_FORM_BYTES} bytes"),
                ))
            })?;
        let fields = Fields::parse(&bytes);
        let sent = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or_else(|| fields.text("csrf").to_string());
        if !constant_time_eq(sent.as_bytes(), page.session.csrf_token.as_bytes()) {
            return Err(forbidden(
                "this form has expired or did not come from wharf's own pages; reload the page and try again",
            ));
        }
        Ok(SignedForm { page, fields })
    }
}

/// Whether a request may be from this site: a browser marks one sent from another site with
/// `Sec-Fetch-Site: cross-site`, or an `Origin` that is not this host.
pub(crate) fn same_site(headers: &HeaderMap) -> bool {
    let cross = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site");
    let origin_host = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| *o != "null")
        .and_then(|o| url::Url::parse(o).ok())
        .map(|u| match u.port() {
            Some(port) => format!("{}:{port}", u.host_str().unwrap_or_default()),
            None => u.host_str().unwrap_or_default().to_string(),
        });
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let other_origin = matches!((&origin_host, host), (Some(o), Some(h)) if o != h);
    !(cross || other_origin)
}

/// The answer to a form sent from another site.
pub(crate) fn cross_site_refused() -> Response {
    forbidden("this form was sent from another site; wharf refuses it")
}

fn forbidden(message: &str) -> Response {
    super::error_page(wharf_service::ServiceError::new(
        wharf_service::ErrorKind::Forbidden,
        "csrf.refused",
        message,
    ))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; wharf_session=abc; b=2"),
        );
        assert_eq!(cookie(&headers, COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
    }

    #[test]
    fn session_cookies_are_http_only_lax_and_secure_behind_https() {
        let plain = session_cookie(Some("t"), false);
        let plain = plain.to_str().unwrap_or_default();
        assert!(
            plain.contains("HttpOnly") && plain.contains("SameSite=Lax"),
            "{plain}"
        );
        assert!(!plain.contains("Secure"), "{plain}");
        let secure = session_cookie(Some("t"), true);
        assert!(secure.to_str().unwrap_or_default().ends_with("; Secure"));
    }

    #[test]
    fn the_proxy_appended_address_counts_not_the_client_supplied_one() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 10.1.2.3"),
        );
        let peer: SocketAddr = ([127, 0, 0, 1], 9).into();
        assert_eq!(
            client_address(&headers, Some(peer), true),
            IpAddr::from([10, 1, 2, 3])
        );
        assert_eq!(
            client_address(&headers, Some(peer), false),
            IpAddr::from([127, 0, 0, 1])
        );
    }

    #[test]
    fn a_form_from_another_origin_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_site(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_site(&headers));
        headers.remove(header::ORIGIN);
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_site(&headers));
    }
}
