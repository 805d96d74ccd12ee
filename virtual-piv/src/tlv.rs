//! BER-TLV as PIV uses it: one- or two-byte tags, definite lengths up to 0xFFFF.

/// A TLV that ends early or has a length form PIV never uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed TLV")]
pub(crate) struct Malformed;

/// Encodes one TLV.
pub(crate) fn tlv(tag: u16, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 5);
    if tag > 0xFF {
        out.extend_from_slice(&tag.to_be_bytes());
    } else {
        out.push(tag as u8);
    }
    let n = value.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n <= 0xFF {
        out.extend_from_slice(&[0x81, n as u8]);
    } else {
        out.push(0x82);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    }
    out.extend_from_slice(value);
    out
}

/// Splits `data` into its top-level TLVs, in order.
pub(crate) fn parse(mut data: &[u8]) -> Result<Vec<(u16, &[u8])>, Malformed> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (tag, rest) = take_tag(data)?;
        let (len, rest) = take_len(rest)?;
        if rest.len() < len {
            return Err(Malformed);
        }
        out.push((tag, &rest[..len]));
        data = &rest[len..];
    }
    Ok(out)
}

/// The value of the first TLV with `tag`, if any.
pub(crate) fn find(tlvs: &[(u16, &'_ [u8])], tag: u16) -> Option<Vec<u8>> {
    tlvs.iter()
        .find(|(t, _)| *t == tag)
        .map(|(_, v)| v.to_vec())
}

fn take_tag(data: &[u8]) -> Result<(u16, &[u8]), Malformed> {
    let (&first, rest) = data.split_first().ok_or(Malformed)?;
    if first & 0x1F != 0x1F {
        return Ok((u16::from(first), rest));
    }
    let (&second, rest) = rest.split_first().ok_or(Malformed)?;
    Ok((u16::from_be_bytes([first, second]), rest))
}

fn take_len(data: &[u8]) -> Result<(usize, &[u8]), Malformed> {
    let (&first, rest) = data.split_first().ok_or(Malformed)?;
    match first {
        n if n < 0x80 => Ok((usize::from(n), rest)),
        0x81 => {
            let (&n, rest) = rest.split_first().ok_or(Malformed)?;
            Ok((usize::from(n), rest))
        }
        0x82 if rest.len() >= 2 => Ok((
            usize::from(u16::from_be_bytes([rest[0], rest[1]])),
            &rest[2..],
        )),
        _ => Err(Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_all_length_forms() {
        for n in [0usize, 5, 0x7F, 0x80, 0xFF, 0x100, 0x1234] {
            let value = vec![0xAB; n];
            let encoded = [tlv(0x7F49, &value), tlv(0x53, b"x")].concat();
            let parsed = parse(&encoded).unwrap();
            assert_eq!(parsed, vec![(0x7F49, &value[..]), (0x53, &b"x"[..])]);
        }
    }

    #[test]
    fn rejects_truncated_input() {
        assert_eq!(parse(&[0x53, 0x05, 1, 2]), Err(Malformed));
        assert_eq!(parse(&[0x7F]), Err(Malformed));
        assert_eq!(parse(&[0x53, 0x83, 0, 0, 1]), Err(Malformed));
    }
}
