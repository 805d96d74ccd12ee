//! The key object as JSON: `{"keytype":T,"keyval":{"private":null,"public":b64}}`.

use super::{KeyError, KeyType, PublicKey};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

#[derive(Deserialize)]
struct KeyObject {
    keytype: String,
    keyval: KeyVal,
}

#[derive(Deserialize)]
struct KeyVal {
    public: String,
    #[serde(default)]
    private: Option<Value>,
}

#[derive(Serialize)]
struct KeyValOut<'a> {
    private: Option<()>,
    public: &'a str,
}

impl PublicKey {
    /// Reads a key object, refusing any that carries a private key.
    pub fn from_json(value: &Value) -> Result<Self, KeyError> {
        let object =
            KeyObject::deserialize(value).map_err(|e| KeyError::Malformed(e.to_string()))?;
        object.try_into()
    }
}

impl TryFrom<KeyObject> for PublicKey {
    type Error = KeyError;

    fn try_from(object: KeyObject) -> Result<Self, KeyError> {
        if object.keyval.private.is_some() {
            return Err(KeyError::PrivateMaterial);
        }
        let keytype: KeyType = object.keytype.parse()?;
        let public = B64
            .decode(object.keyval.public.as_bytes())
            .map_err(|e| KeyError::Malformed(format!("public is not base64: {e}")))?;
        Ok(PublicKey::new(keytype, public))
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let public = self.public_b64();
        let mut object = s.serialize_struct("PublicKey", 2)?;
        object.serialize_field("keytype", self.keytype().as_str())?;
        object.serialize_field(
            "keyval",
            &KeyValOut {
                private: None,
                public: &public,
            },
        )?;
        object.end()
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let object = KeyObject::deserialize(d)?;
        object.try_into().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::to_canonical;
    use serde_json::json;

    #[test]
    fn reads_server_answer_in_any_field_order() {
        let v = json!({"keytype":"ed25519","keyval":{"public":"bCDhA6Gb79d6hCaFubHojc9H3LtyRLnVAhNpVaglyho=","private":null}});
        let key = PublicKey::from_json(&v).unwrap();
        assert_eq!(key.keytype(), KeyType::Ed25519);
        assert_eq!(
            key.key_id(),
            "69854116bc422ce5d69f12565315a35fc96c76a8ad3e0bc2559fbeecb50d8487"
        );
        assert_eq!(
            to_canonical(&key).unwrap(),
            key.canonical_json().into_bytes()
        );
        let back: PublicKey = serde_json::from_value(serde_json::to_value(&key).unwrap()).unwrap();
        assert_eq!(back, key);
    }

    #[test]
    fn refuses_private_material_and_junk() {
        let v = json!({"keytype":"ed25519","keyval":{"public":"AAAA","private":"AAAA"}});
        let err = PublicKey::from_json(&v).unwrap_err();
        assert_eq!(err.to_string(), "key object carries private material");
        let v = json!({"keytype":"ecdsa-sha2-nistp256","keyval":{"public":"AAAA","private":null}});
        assert!(matches!(
            PublicKey::from_json(&v),
            Err(KeyError::UnknownKeyType(_))
        ));
        let v = json!({"keytype":"ecdsa","keyval":{"public":"!!","private":null}});
        assert!(matches!(
            PublicKey::from_json(&v),
            Err(KeyError::Malformed(_))
        ));
        assert!(PublicKey::from_json(&json!({"keytype":"ecdsa"})).is_err());
    }
}
