//! Where a webhook may go (OWASP SSRF prevention): an `http(s)` URL whose scheme, host
//! and port are fixed when the rule is written (templates fill only the path and query,
//! percent-encoded), never an address inside the platform's network (loopback, private,
//! link-local such as the instance metadata service, carrier-grade NAT, unique-local,
//! multicast, unspecified, and IPv4 addresses hidden in IPv6 forms), and no header that
//! would change where or how the request travels.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{Map, Value};

use super::rules::render_with;

/// Headers a rule may not set: routing and framing belong to the HTTP client, and the
/// signature headers to the platform.
pub const FORBIDDEN_HEADERS: [&str; 14] = [
    "host",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "x-signature-256",
    "x-idempotency-key",
    "x-event-id",
];

/// The operator's choice of where webhooks may go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookPolicy {
    /// Let webhooks reach private, loopback and link-local addresses
    /// (`WEBHOOK_ALLOW_PRIVATE_TARGETS=true`; off by default). For private deployments
    /// and tests with a local receiver only.
    pub allow_private: bool,
    /// The platform's own API, as `host` or `host:port` (lower case): a webhook may not
    /// call it, since a call would start a new chain of automations, free of the
    /// causation depth limit, with the tenant's own credentials.
    pub own_hosts: std::sync::Arc<[String]>,
}

impl WebhookPolicy {
    /// Why `ip` may not be reached under this policy, if it may not.
    pub fn refuses(&self, ip: IpAddr) -> Option<&'static str> {
        if self.allow_private {
            None
        } else {
            forbidden_address(ip)
        }
    }

    /// Why a webhook may not call `url` under this policy (a forbidden literal address,
    /// or the platform's own API), if it may not.
    pub fn refuses_url(&self, url: &WebhookUrl) -> Option<String> {
        if let Some(why) = url.literal_ip().and_then(|ip| self.refuses(ip)) {
            return Some(format!("names {why}: webhooks may not reach it"));
        }
        let host = url.host.trim_end_matches('.');
        let port = url.port.unwrap_or(if url.scheme == "https" { 443 } else { 80 });
        let with_port = format!("{host}:{port}");
        if self.own_hosts.iter().any(|own| *own == host || *own == with_port) {
            return Some("names the platform's own API: webhooks may not call it".to_string());
        }
        None
    }
}

/// Every fault of a webhook action's `url` and `headers`, as (field under the action's
/// `parameters`, message).
pub fn check_target(parameters: &Map<String, Value>, policy: &WebhookPolicy) -> Vec<(String, String)> {
    let mut faults = Vec::new();
    if let Some(url) = parameters.get("url").and_then(Value::as_str).filter(|u| !u.is_empty()) {
        match WebhookUrl::parse(url) {
            Err(message) => faults.push(("url".to_string(), message)),
            Ok(parsed) => {
                if let Some(why) = policy.refuses_url(&parsed) {
                    faults.push(("url".to_string(), why));
                }
            }
        }
    }
    match parameters.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(headers)) => {
            for (name, value) in headers {
                if FORBIDDEN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                    faults.push((format!("headers.{name}"), "may not be set by a rule".to_string()));
                } else if !value.is_string() {
                    faults.push((format!("headers.{name}"), "must be a string".to_string()));
                }
            }
        }
        Some(_) => faults.push(("headers".to_string(), "must be an object".to_string())),
    }
    faults
}

/// What stands in for a secret wherever a reader could see it.
pub const MASK: &str = "********";

/// Query parameter names that look like they carry a secret.
const SECRET_WORDS: [&str; 10] =
    ["token", "secret", "key", "password", "passwd", "pwd", "signature", "sig", "auth", "credential"];

/// A URL as readers may see it: credentials (`user:pw@`) and secret-looking query
/// parameters masked.
pub fn mask_url(url: &str) -> String {
    let (head, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("{MASK}@{host}"),
        None => authority.to_string(),
    };
    let (tail, fragment) = match tail.split_once('#') {
        Some((t, f)) => (t, format!("#{f}")),
        None => (tail, String::new()),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if SECRET_WORDS.iter().any(|w| name.to_ascii_lowercase().contains(w)) => {
                        format!("{name}={MASK}")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", pairs.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{head}{authority}{tail}{fragment}")
}

/// An action's parameters as readers see them (rules, dry runs, runs, audit entries):
/// the signing `secret`, every header value and the URL's secrets masked. Every output
/// path goes through here.
pub fn mask_parameters(parameters: &Map<String, Value>) -> Map<String, Value> {
    let mut masked = parameters.clone();
    if masked.contains_key("secret") {
        masked.insert("secret".to_string(), Value::String(MASK.to_string()));
    }
    if let Some(Value::Object(headers)) = masked.get_mut("headers") {
        for value in headers.values_mut() {
            *value = Value::String(MASK.to_string());
        }
    }
    if let Some(Value::String(url)) = masked.get_mut("url") {
        *url = mask_url(url);
    }
    masked
}

/// A webhook URL template, split where templates may and may not reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// The host as written (a name, an IPv4 address or a bracketed IPv6 address).
    pub host: String,
    pub port: Option<u16>,
    /// Path and query, possibly with `{{field}}` placeholders.
    pub path_and_query: String,
}

impl WebhookUrl {
    /// Parses a template; the message says what is wrong.
    pub fn parse(template: &str) -> Result<WebhookUrl, String> {
        let (scheme, rest) = template.split_once("://").ok_or("must be an http(s) URL")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err("must be an http(s) URL".to_string());
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path_and_query) = rest.split_at(end);
        if authority.contains("{{") || authority.contains("}}") {
            return Err("the scheme, host and port are fixed: templates may fill only the path and query".to_string());
        }
        if authority.contains('@') {
            return Err("must not carry credentials (user:password@); use a header or the signing secret".to_string());
        }
        let (host, port) = split_port(authority)?;
        if host.is_empty() {
            return Err("must name a host".to_string());
        }
        let path_and_query = path_and_query.split('#').next().unwrap_or_default();
        let path_and_query = if path_and_query.is_empty() { "/".to_string() } else { path_and_query.to_string() };
        Ok(WebhookUrl { scheme, host: host.to_ascii_lowercase(), port, path_and_query })
    }

    /// The host as an address, when the URL names one literally.
    pub fn literal_ip(&self) -> Option<IpAddr> {
        let bare = self.host.trim_start_matches('[').trim_end_matches(']');
        bare.parse().ok()
    }

    /// The URL to call: path and query filled from `data`, each value percent-encoded so
    /// that it cannot add path segments, parameters or a fragment.
    pub fn render(&self, data: &Map<String, Value>) -> String {
        let path = render_with(&self.path_and_query, data, percent_encode);
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("{}://{}{port}{path}", self.scheme, self.host)
    }
}

fn split_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let bad_port = || "has an invalid port".to_string();
    if let Some(rest) = authority.strip_prefix('[') {
        let close = rest.find(']').ok_or("has an unclosed IPv6 address")?;
        let host = &authority[..close + 2];
        return match &rest[close + 1..] {
            "" => Ok((host, None)),
            port => Ok((host, Some(port.strip_prefix(':').and_then(|p| p.parse().ok()).ok_or_else(bad_port)?))),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Ok((host, Some(port.parse().map_err(|_| bad_port())?))),
        None => Ok((authority, None)),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(byte as char),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// Why an address is no place for a webhook, or `None` for a public address.
pub fn forbidden_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, _, _] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address (such as the instance metadata service)")
    } else if ip.is_unspecified() || a == 0 {
        Some("an unspecified address")
    } else if ip.is_multicast() || ip.is_broadcast() {
        Some("a multicast or broadcast address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a carrier-grade NAT address")
    } else if a == 198 && (18..20).contains(&b) {
        Some("a benchmarking network address")
    } else if a >= 240 {
        Some("a reserved address")
    } else if a == 192 && b == 0 && ip.octets()[2] == 0 {
        Some("an IETF protocol assignment address")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_multicast() {
        return Some("a multicast address");
    }
    if segments[0] & 0xfe00 == 0xfc00 {
        return Some("a unique-local address");
    }
    if segments[0] & 0xffc0 == 0xfe80 {
        return Some("a link-local address");
    }
    if segments[0] & 0xffc0 == 0xfec0 {
        return Some("a site-local address");
    }
    // IPv4 hidden in IPv6: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64
    // (64:ff9b::a.b.c.d) and 6to4 (2002:AABB:CCDD::) are judged by their IPv4 address.
    let embedded = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    let mapped_or_compatible = segments[..5] == [0, 0, 0, 0, 0] && (segments[5] == 0xffff || segments[5] == 0);
    let nat64 = segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    let v4 = if mapped_or_compatible || nat64 {
        Some(embedded(segments[6], segments[7]))
    } else if segments[0] == 0x2002 {
        Some(embedded(segments[1], segments[2]))
    } else {
        None
    };
    v4.and_then(forbidden_v4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str) -> bool {
        forbidden_address(ip.parse().unwrap()).is_some()
    }

    #[test]
    fn addresses_inside_the_network_are_refused() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:0001::",
        ] {
            assert!(refused(ip), "{ip}");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "100.128.0.1"] {
            assert!(!refused(ip), "{ip}");
        }
    }

    #[test]
    fn templates_reach_only_the_path_and_query() {
        assert!(WebhookUrl::parse("https://{{host}}/x").is_err());
        assert!(WebhookUrl::parse("https://example.com:{{port}}/x").is_err());
        assert!(WebhookUrl::parse("{{scheme}}://example.com/x").is_err());
        assert!(WebhookUrl::parse("ftp://example.com/x").is_err());
        assert!(WebhookUrl::parse("https://user:pw@example.com/x").is_err());
        let url = WebhookUrl::parse("https://hooks.example.com:8443/deals/{{id}}?stage={{stage}}").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("hooks.example.com", Some(8443)));
        let data = serde_json::json!({"id": "../../admin", "stage": "won&x=1#frag"});
        let rendered = url.render(data.as_object().unwrap());
        assert_eq!(rendered, "https://hooks.example.com:8443/deals/..%2F..%2Fadmin?stage=won%26x%3D1%23frag");
    }

    #[test]
    fn secrets_in_urls_are_masked() {
        assert_eq!(
            mask_url("https://bob:hunter2@hooks.example.com/x?token=abc&stage=won&api_key=k#f"),
            "https://********@hooks.example.com/x?token=********&stage=won&api_key=********#f"
        );
        assert_eq!(mask_url("https://hooks.example.com/x"), "https://hooks.example.com/x");
    }

    #[test]
    fn rules_may_not_aim_inside_the_network_nor_steer_the_request() {
        let params = |v: serde_json::Value| v.as_object().unwrap().clone();
        let strict = WebhookPolicy::default();
        let metadata = params(serde_json::json!({"url": "http://169.254.169.254/latest/meta-data"}));
        assert_eq!(check_target(&metadata, &strict)[0].0, "url");
        let open = WebhookPolicy { allow_private: true, ..WebhookPolicy::default() };
        assert!(check_target(&metadata, &open).is_empty());
        let host =
            params(serde_json::json!({"url": "https://example.com/x", "headers": {"Host": "internal", "X-Ok": "1"}}));
        let faults = check_target(&host, &strict);
        assert_eq!(faults.len(), 1);
        assert_eq!(faults[0].0, "headers.Host");
    }

    #[test]
    fn webhooks_may_not_call_the_platforms_own_api() {
        let policy = WebhookPolicy {
            allow_private: true,
            own_hosts: vec!["api.example.com".to_string(), "127.0.0.1:3000".to_string()].into(),
        };
        let refused = |url: &str| policy.refuses_url(&WebhookUrl::parse(url).unwrap());
        assert!(refused("https://API.example.com./api/v1/automation/events").is_some());
        assert!(refused("http://api.example.com:8080/x").is_some(), "a bare host covers every port");
        assert!(refused("http://127.0.0.1:3000/api/v1/auth/login").is_some());
        assert!(refused("http://127.0.0.1:3001/receiver").is_none(), "another port on the host is another service");
        assert!(refused("https://hooks.example.com/x").is_none());
    }

    #[test]
    fn literal_addresses_are_recognised() {
        assert_eq!(
            WebhookUrl::parse("http://169.254.169.254/latest").unwrap().literal_ip(),
            Some("169.254.169.254".parse().unwrap())
        );
        assert_eq!(WebhookUrl::parse("http://[::1]:8080/x").unwrap().literal_ip(), Some("::1".parse().unwrap()));
        assert_eq!(WebhookUrl::parse("https://example.com/x").unwrap().literal_ip(), None);
    }
}
