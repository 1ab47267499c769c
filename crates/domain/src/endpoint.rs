//! S3-compatible endpoints, and which network addresses wharf refuses to send data to.

use crate::error::InvalidValue;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What kind of network an address belongs to, for the server-side request forgery guard: a user
/// who may create destinations must not be able to make wharf talk to its own machine, its
/// private network or the cloud metadata service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Public,
    Loopback,
    Private,
    LinkLocal,
    /// Cloud metadata services (169.254.169.254, 169.254.170.2, fd00:ec2::254). Refused even
    /// when the operator allows private endpoints: no S3 service lives there, credentials do.
    Metadata,
    /// 0.0.0.0, ::, multicast, broadcast and other addresses no S3 service answers on.
    Unroutable,
}

impl AddressClass {
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Public => "a public address",
            AddressClass::Loopback => "a loopback address",
            AddressClass::Private => "a private-network address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::Metadata => "a cloud metadata service address",
            AddressClass::Unroutable => "an unroutable address",
        }
    }

    /// Whether wharf may connect to an address of this class. `allow_private` is the operator's
    /// `--allow-private-endpoints` (tests and `local-s3` use it); it never opens metadata services.
    pub fn permitted(self, allow_private: bool) -> bool {
        match self {
            AddressClass::Public => true,
            AddressClass::Loopback | AddressClass::Private | AddressClass::LinkLocal => {
                allow_private
            }
            AddressClass::Metadata | AddressClass::Unroutable => false,
        }
    }
}

/// Classifies an address. IPv4 addresses embedded in IPv6 (`::ffff:127.0.0.1`, NAT64
/// `64:ff9b::/96`) are classified as the IPv4 address they carry, or they would be a bypass.
/// Refuses a URL whose host is, by its spelling, an address the operator has not allowed (an
/// IP literal, `localhost`): the reason, with its fix. Host names are resolved and checked
/// again before each connection (`delivery`). Shared by S3 endpoints and webhook URLs.
pub fn check_url_host(url: &url::Url, allow_private: bool) -> Result<(), String> {
    let class = match url.host() {
        None => None,
        Some(url::Host::Ipv4(v4)) => Some(classify_ip(IpAddr::V4(v4))),
        Some(url::Host::Ipv6(v6)) => Some(classify_ip(IpAddr::V6(v6))),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            (name == "localhost" || name.ends_with(".localhost")).then_some(AddressClass::Loopback)
        }
    };
    match class {
        Some(class) if !class.permitted(allow_private) => {
            let fix = match class {
                AddressClass::Metadata | AddressClass::Unroutable => "wharf never sends data there",
                _ => {
                    "the operator can allow private endpoints with --allow-private-endpoints or WHARF_ALLOW_PRIVATE_ENDPOINTS=1"
                }
            };
            Err(format!("the host is {}: {fix}", class.describe()))
        }
        _ => Ok(()),
    }
}

pub fn classify_ip(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return classify_v4(v4);
            }
            let s = v6.segments();
            let low_v4 = || {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                Ipv4Addr::new(a, b, c, d)
            };
            // NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48) reaches the embedded IPv4
            // address.
            if s[0] == 0x64 && s[1] == 0xff9b && (s[2..6] == [0, 0, 0, 0] || s[2] == 1) {
                return classify_v4(low_v4());
            }
            // IPv4-compatible addresses (`::127.0.0.1`, deprecated but still parsed and, on
            // some stacks, routed to the IPv4 address): judge the IPv4 address. `::` and `::1`
            // are not among them.
            if s[..6] == [0; 6] && (s[6] != 0 || s[7] > 1) {
                return match classify_v4(low_v4()) {
                    AddressClass::Public => AddressClass::Unroutable,
                    other => other,
                };
            }
            // 6to4 (2002::/16) carries an IPv4 address in its next 32 bits.
            if s[0] == 0x2002 {
                let [a, b] = s[1].to_be_bytes();
                let [c, d] = s[2].to_be_bytes();
                let inner = classify_v4(Ipv4Addr::new(a, b, c, d));
                if inner != AddressClass::Public {
                    return inner;
                }
            }
            classify_v6(v6)
        }
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, _, _] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(169, 254, 170, 2) {
        AddressClass::Metadata
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_link_local() {
        AddressClass::LinkLocal
    } else if ip.is_private()
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
    {
        // RFC 1918, carrier-grade NAT (100.64/10) and the benchmarking range (198.18/15) all
        // reach machines inside someone's network.
        AddressClass::Private
    } else if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || a == 0 || a >= 240 {
        AddressClass::Unroutable
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let first = ip.segments()[0];
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254) {
        AddressClass::Metadata
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if first & 0xffc0 == 0xfe80 {
        AddressClass::LinkLocal
    } else if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfec0 {
        // Unique local addresses, and the deprecated site-local range some networks still use.
        AddressClass::Private
    } else if ip.is_unspecified() || ip.is_multicast() {
        AddressClass::Unroutable
    } else {
        AddressClass::Public
    }
}

/// The base URL of an S3-compatible service (MinIO, Ceph, Cloudflare R2, a `wharf local-s3`):
/// `http(s)://host[:port]`, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: url::Url,
}

impl Endpoint {
    /// Parses an endpoint and checks it by shape. A host given as an IP address (in any of the
    /// spellings URL parsers accept: `2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]`) or as
    /// `localhost` is classified here; a host name is resolved and checked by `delivery` before
    /// each connection, since DNS can change after validation.
    pub fn parse(value: &str, allow_private: bool) -> Result<Self, InvalidValue> {
        let fail = |reason: String| Err(InvalidValue::new("endpoint", value, reason));
        let url = match url::Url::parse(value) {
            Ok(url) => url,
            Err(e) => {
                return fail(format!(
                    "expected a URL like \"https://s3.example.com\" ({e})"
                ));
            }
        };
        if url.scheme() != "http" && url.scheme() != "https" {
            return fail(format!(
                "the scheme is \"https\" or \"http\", not {:?}",
                url.scheme()
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Reported without echoing the value: it may hold a password.
            return Err(InvalidValue::new(
                "endpoint",
                "[URL with credentials]",
                "an endpoint URL cannot carry a user name or password: give them as the access key id and secret of the access-key auth",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() || url.path() != "/" {
            return fail(
                "an endpoint is only scheme, host and port (\"https://s3.example.com:9000\"), with no path, query or fragment".into(),
            );
        }
        if url.host().is_none() {
            return fail("an endpoint URL needs a host".into());
        }
        if let Err(reason) = check_url_host(&url, allow_private) {
            return fail(reason);
        }
        Ok(Self { url })
    }

    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// The URL without the trailing `/` the parser adds, as SDKs expect it.
    pub fn as_str(&self) -> &str {
        self.url.as_str().trim_end_matches('/')
    }

    /// Host name or address and port, for resolution.
    pub fn host_and_port(&self) -> (String, u16) {
        let host = match self.url.host() {
            Some(url::Host::Ipv6(v6)) => v6.to_string(),
            Some(host) => host.to_string(),
            None => String::new(),
        };
        (host, self.url.port_or_known_default().unwrap_or(443))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_endpoints_pass() {
        for ok in [
            "https://s3.example.com",
            "http://minio.example.com:9000/",
            "https://8.8.8.8",
        ] {
            Endpoint::parse(ok, false).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let e = Endpoint::parse("http://127.0.0.1:9000", true).expect("allowed by operator");
        assert_eq!(e.as_str(), "http://127.0.0.1:9000");
        assert_eq!(e.host_and_port(), ("127.0.0.1".to_string(), 9000));
    }

    #[test]
    fn refused_endpoints_say_why() {
        let cases = [
            ("http://169.254.169.254", "cloud metadata service"),
            (
                "http://169.254.169.254/latest/meta-data",
                "no path, query or fragment",
            ),
            ("http://[fd00:ec2::254]", "cloud metadata service"),
            ("http://169.254.170.2", "cloud metadata service"),
            (
                "http://127.0.0.1",
                "loopback address: the operator can allow",
            ),
            ("http://127.1.2.3:9000", "loopback address"),
            ("http://2130706433", "loopback address"),
            ("http://0x7f.1", "loopback address"),
            ("http://localhost:9000", "loopback address"),
            ("http://[::1]", "loopback address"),
            ("http://[::ffff:127.0.0.1]", "loopback address"),
            ("http://[::ffff:169.254.169.254]", "cloud metadata service"),
            ("http://[64:ff9b::a9fe:a9fe]", "cloud metadata service"),
            // IPv4-compatible, local-use NAT64 and 6to4 spellings of private addresses.
            ("http://[::127.0.0.1]", "loopback address"),
            ("http://[::169.254.169.254]", "cloud metadata service"),
            ("http://[::10.0.0.1]", "private-network address"),
            ("http://[64:ff9b:1::7f00:1]", "loopback address"),
            ("http://[2002:7f00:1::]", "loopback address"),
            ("http://[2002:a9fe:a9fe::1]", "cloud metadata service"),
            ("http://10.0.0.1", "private-network address"),
            ("http://172.16.5.4", "private-network address"),
            ("http://192.168.1.1", "private-network address"),
            ("http://100.64.0.1", "private-network address"),
            ("http://[fd12::1]", "private-network address"),
            ("http://169.254.1.1", "link-local address"),
            ("http://[fe80::1]", "link-local address"),
            ("http://0.0.0.0", "unroutable address"),
            (
                "ftp://s3.example.com",
                "the scheme is \"https\" or \"http\"",
            ),
            ("s3.example.com", "expected a URL"),
            ("https://s3.example.com/bucket", "no path"),
            ("https://s3.example.com?x=1", "no path, query"),
        ];
        for (value, expected) in cases {
            let err = Endpoint::parse(value, false).expect_err(value);
            assert_eq!(err.field, "endpoint");
            assert!(err.to_string().contains(expected), "{value}: {err}");
        }
        // The operator flag opens private networks, never the metadata service.
        assert!(Endpoint::parse("http://10.0.0.1", true).is_ok());
        assert!(Endpoint::parse("http://[::1]:9000", true).is_ok());
        assert!(Endpoint::parse("http://169.254.169.254", true).is_err());
    }

    #[test]
    fn credentials_in_the_url_are_refused_without_echoing_them() {
        let err = Endpoint::parse("https://AKIAXXXX:hunter2@s3.example.com", false)
            .expect_err("credentials");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(err.to_string().contains("user name or password"), "{err}");
    }
}
