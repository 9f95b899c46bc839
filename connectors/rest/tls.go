package rest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"

	"casesync/engine"
)

// tlsConfig is a connector's TLS: TLS 1.2 at least (1.3 when the spec
// says so), the spec's CA bundle instead of the system's when it names
// one, and a client certificate for mutual TLS. Verification is never
// turned off: the spec language has no way to ask for it.
func tlsConfig(c *engine.Connector, secrets engine.Secrets) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	t := c.Spec.TLS
	if t == nil {
		return tc, nil
	}
	if t.MinVersion == "1.3" {
		tc.MinVersion = tls.VersionTLS13
	}
	if len(c.CAPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(c.CAPEM) {
			return nil, errors.New("ca_file holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	if !t.ClientCert.IsZero() || !t.ClientKey.IsZero() {
		certPEM, err := t.ClientCert.Resolve(secrets)
		if err != nil {
			return nil, err
		}
		keyPEM, err := t.ClientKey.Resolve(secrets)
		if err != nil {
			return nil, err
		}
		cert, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
		if err != nil {
			// The error may quote PEM headers, never the key: still, say
			// only which pair failed.
			return nil, errors.New("client_cert and client_key are not a matching PEM certificate and key")
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
