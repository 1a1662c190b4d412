//! Just enough SASL to name the user of an `AUTH` exchange in the access log.
//!
//! PLAIN carries `authzid NUL authcid NUL password` in base64 (RFC 4616); LOGIN sends the
//! user name, base64-encoded, as the first client line. Only the authentication identity is
//! kept: the password is decoded into a buffer that is dropped at once and never logged.

/// Decodes standard base64 (padding optional); `None` on any other byte.
pub fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let text = trim(text);
    let text = text
        .strip_suffix(b"==")
        .or_else(|| text.strip_suffix(b"="))
        .unwrap_or(text);
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&bytes[1..4]),
            3 => out.extend_from_slice(&bytes[1..3]),
            2 => out.push(bytes[1]),
            _ => return None,
        }
    }
    Some(out)
}

fn trim(s: &[u8]) -> &[u8] {
    let end = s
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &s[..end]
}

/// The authentication identity in a PLAIN initial response.
pub fn plain_user(response: &[u8]) -> Option<String> {
    let decoded = decode_base64(response)?;
    let mut parts = decoded.split(|&c| c == 0);
    let _authzid = parts.next()?;
    let authcid = parts.next()?;
    parts.next()?; // the password must be there for this to be PLAIN
    Some(String::from_utf8_lossy(authcid).into_owned())
}

/// The user name in a LOGIN exchange's first client line.
pub fn login_user(response: &[u8]) -> Option<String> {
    decode_base64(response).map(|u| String::from_utf8_lossy(&u).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64() {
        assert_eq!(decode_base64(b"aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64(b"aGVsbG8h\r\n").unwrap(), b"hello!");
        assert_eq!(decode_base64(b"aGk").unwrap(), b"hi");
        assert_eq!(decode_base64(b"").unwrap(), b"");
        assert!(decode_base64(b"a$==").is_none());
        assert!(decode_base64(b"a").is_none());
    }

    #[test]
    fn users() {
        // "\0alice\0secret"
        assert_eq!(
            plain_user(b"AGFsaWNlAHNlY3JldA==").as_deref(),
            Some("alice")
        );
        assert_eq!(plain_user(b"YWxpY2U=").as_deref(), None);
        assert_eq!(login_user(b"Ym9i").as_deref(), Some("bob"));
    }
}
