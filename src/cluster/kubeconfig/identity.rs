//! The identity resolver: the client certificate a kubeconfig's user entry presents
//! (`client-certificate[-data]` with `client-key[-data]`), both or neither.

use super::KubeconfigError;
use super::format::User;
use super::origin::Origin;
use crate::cluster::Identity;
use crate::secret::Secret;

/// Resolves the client certificate of a user entry; `at` anchors its relative paths and
/// names it in errors. A certificate without its key, or a key without its certificate,
/// is refused.
pub(super) fn resolve(user: &User, at: &Origin) -> Result<Option<Identity>, KubeconfigError> {
    let cert = at.data_or_file(
        ("client-certificate-data", &user.client_certificate_data),
        ("client-certificate", &user.client_certificate),
    )?;
    let key = at.data_or_file(
        ("client-key-data", &user.client_key_data),
        ("client-key", &user.client_key),
    )?;
    match (cert, key) {
        (Some(cert_pem), Some(key_pem)) => Ok(Some(Identity {
            cert_pem,
            key_pem: Secret::new(key_pem),
        })),
        (None, None) => Ok(None),
        // kubectl: "client-key-data or client-key must be specified".
        (Some(_), None) => Err(at.error(
            "client-key",
            "is missing: a client certificate needs its key",
        )),
        // Stricter than kubectl, which ignores a key without a certificate.
        (None, Some(_)) => Err(at.error(
            "client-certificate",
            "is missing: a client key needs its certificate",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::kubeconfig::testing::{assert_field_error, entry, kubeconfig_dir};

    /// (rule, user entry, the result: the certificate and key texts, or the field
    /// refused and a phrase of the message). In base64, `CERT-DATA` is `Q0VSVC1EQVRB`
    /// and `KEY-DATA` is `S0VZLURBVEE=`; `pki/c.crt` holds `CERT-FILE`, `pki/c.key`
    /// `KEY-FILE`.
    type Row = (
        &'static str,
        &'static str,
        Result<Option<(&'static str, &'static str)>, (&'static str, &'static str)>,
    );

    fn rows() -> Vec<Row> {
        vec![
            ("no client certificate: no identity", "{}", Ok(None)),
            ("a token alone is no identity", "{token: abc}", Ok(None)),
            (
                "certificate and key as data (base64)",
                "{client-certificate-data: Q0VSVC1EQVRB, client-key-data: S0VZLURBVEE=}",
                Ok(Some(("CERT-DATA", "KEY-DATA"))),
            ),
            (
                "relative certificate and key paths resolve against the kubeconfig's directory",
                "{client-certificate: pki/c.crt, client-key: pki/c.key}",
                Ok(Some(("CERT-FILE", "KEY-FILE"))),
            ),
            (
                "absolute certificate and key paths are read as they are",
                "{client-certificate: $DIR/pki/c.crt, client-key: $DIR/pki/c.key}",
                Ok(Some(("CERT-FILE", "KEY-FILE"))),
            ),
            (
                "the certificate as data, the key from a file",
                "{client-certificate-data: Q0VSVC1EQVRB, client-key: pki/c.key}",
                Ok(Some(("CERT-DATA", "KEY-FILE"))),
            ),
            (
                "the certificate from a file, the key as data",
                "{client-certificate: pki/c.crt, client-key-data: S0VZLURBVEE=}",
                Ok(Some(("CERT-FILE", "KEY-DATA"))),
            ),
            (
                "empty fields are unset",
                "{client-certificate-data: '', client-key-data: '', client-certificate: '', client-key: ''}",
                Ok(None),
            ),
            (
                "a certificate without its key is refused, as kubectl does",
                "{client-certificate-data: Q0VSVC1EQVRB}",
                Err(("client-key", "needs its key")),
            ),
            (
                "a certificate file without its key is refused",
                "{client-certificate: pki/c.crt, client-key: ''}",
                Err(("client-key", "needs its key")),
            ),
            (
                "a key without its certificate is refused (kubectl ignores the key)",
                "{client-key-data: S0VZLURBVEE=}",
                Err(("client-certificate", "needs its certificate")),
            ),
            (
                "client-certificate-data with client-certificate is refused, as kubectl does",
                "{client-certificate-data: Q0VSVC1EQVRB, client-certificate: pki/c.crt, client-key: pki/c.key}",
                Err(("client-certificate-data", "`client-certificate`")),
            ),
            (
                "client-key-data with client-key is refused, as kubectl does",
                "{client-certificate: pki/c.crt, client-key-data: S0VZLURBVEE=, client-key: pki/c.key}",
                Err(("client-key-data", "`client-key`")),
            ),
            (
                "client-key-data that is not base64 is refused",
                "{client-certificate-data: Q0VSVC1EQVRB, client-key-data: '%%%'}",
                Err(("client-key-data", "base64")),
            ),
            (
                "a certificate file that cannot be read is refused, naming the path",
                "{client-certificate: pki/missing.crt, client-key: pki/c.key}",
                Err(("client-certificate", "pki/missing.crt")),
            ),
            (
                "a key file that cannot be read is refused, naming the path",
                "{client-certificate: pki/c.crt, client-key: pki/missing.key}",
                Err(("client-key", "pki/missing.key")),
            ),
            (
                "the certificate is read before the key",
                "{client-certificate: pki/missing.crt, client-key: pki/missing.key}",
                Err(("client-certificate", "pki/missing.crt")),
            ),
        ]
    }

    #[test]
    fn identity_resolver_rules() {
        let (dir, config) =
            kubeconfig_dir(&[("pki/c.crt", "CERT-FILE"), ("pki/c.key", "KEY-FILE")]);
        for (rule, yaml, want) in rows() {
            let user: User = entry(yaml, dir.path());
            let got = resolve(&user, &Origin::new(&config, "user", "u"));
            match (got, want) {
                (Ok(got), Ok(want)) => {
                    let got = got.map(|i| {
                        (
                            String::from_utf8(i.cert_pem).unwrap(),
                            String::from_utf8(i.key_pem.expose().clone()).unwrap(),
                        )
                    });
                    let want = want.map(|(c, k)| (c.to_string(), k.to_string()));
                    assert_eq!(got, want, "{rule}");
                }
                (Err(err), Err((field, needle))) => {
                    assert_field_error(rule, &err, &config, field, needle);
                    assert!(err.to_string().contains(r#"user "u""#), "{rule}: {err}");
                }
                (Ok(got), Err(want)) => {
                    panic!(
                        "{rule}: resolved (identity: {}), want {want:?}",
                        got.is_some()
                    )
                }
                (Err(err), Ok(_)) => panic!("{rule}: {err}"),
            }
        }
    }

    #[test]
    fn the_key_never_shows_in_debug() {
        let (dir, config) = kubeconfig_dir(&[]);
        let user: User = entry(
            "{client-certificate-data: Q0VSVC1EQVRB, client-key-data: S0VZLURBVEE=}",
            dir.path(),
        );
        let identity = resolve(&user, &Origin::new(&config, "user", "u"))
            .unwrap()
            .unwrap();
        let debug = format!("{identity:?} {identity:#?}");
        let key_bytes = format!("{:?}", b"KEY-DATA".to_vec());
        assert!(
            !debug.contains(key_bytes.trim_matches(['[', ']'])),
            "{debug}"
        );
    }
}
