//! The fleet options of the command line (long options only): who may send a PROXY header,
//! and how the client's address is carried to the origin.

use crate::net::cidr::Cidr;
use getopts::{Matches, Options};

/// How the client's real address travels.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FleetOptions {
    /// Connections from these networks must begin with a PROXY header (v1 or v2).
    pub proxy_from: Vec<Cidr>,
    /// Send XCLIENT to an origin whose greeting offers it.
    pub origin_xclient: bool,
    /// Send a PROXY v2 header to the origin right after connecting.
    pub origin_proxy_protocol: bool,
}

/// Declares the options.
pub fn options(o: &mut Options) {
    o.optopt(
        "",
        "proxy-from",
        "connections from these networks (CIDRs, comma-separated) must begin with a \
         PROXY protocol header, v1 or v2 (e.g. from HAProxy)",
        "NETS",
    );
    o.optflag(
        "",
        "origin-xclient",
        "tell the origin the client's address with XCLIENT when its greeting offers it",
    );
    o.optflag(
        "",
        "origin-proxy-protocol",
        "send the origin a PROXY v2 header with the client's address",
    );
}

/// Reads the options.
pub fn parse(m: &Matches) -> Result<FleetOptions, String> {
    let proxy_from = match m.opt_str("proxy-from") {
        None => Vec::new(),
        Some(list) => Cidr::parse_list(&list).map_err(|e| format!("invalid --proxy-from: {e}"))?,
    };
    Ok(FleetOptions {
        proxy_from,
        origin_xclient: m.opt_present("origin-xclient"),
        origin_proxy_protocol: m.opt_present("origin-proxy-protocol"),
    })
}
