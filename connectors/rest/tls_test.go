package rest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"casesync/connectors/rest"
	"casesync/engine"
)

// selfSigned makes a CA-capable self-signed certificate, PEM encoded,
// with its key.
func selfSigned(t *testing.T, cn string) (certPEM, keyPEM []byte, cert tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM, cert
}

// TestTLS_PerConnector: a private CA from ca_file is trusted, the system's
// trust is not widened or skipped, a client certificate from secrets
// satisfies a server that requires one, and min_version 1.3 refuses a
// server that stops at 1.2.
func TestTLS_PerConnector(t *testing.T) {
	clientCert, clientKey, _ := selfSigned(t, "casesync-client")
	clientPool := x509.NewCertPool()
	clientPool.AppendCertsFromPEM(clientCert)
	ok := func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]any{"ok": true}) }

	start := func(cfg *tls.Config) *httptest.Server {
		s := httptest.NewUnstartedServer(http.HandlerFunc(ok))
		s.TLS = cfg
		s.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
		s.StartTLS()
		t.Cleanup(s.Close)
		return s
	}
	plain := start(nil)
	mutual := start(&tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientPool})
	old := start(&tls.Config{MaxVersion: tls.VersionTLS12})
	caOf := func(s *httptest.Server) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	}
	secrets := secretMap{"CERT": string(clientCert), "KEY": string(clientKey), "OTHER_KEY": "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"}

	tests := []struct {
		name    string
		srv     *httptest.Server
		tls     *engine.TLSSpec
		ca      bool
		wantErr string // "" = the call succeeds
	}{
		{"system trust only: the test CA is refused", plain, nil, false, "certificate"},
		{"ca_file trusted", plain, &engine.TLSSpec{}, true, ""},
		{"mutual TLS without a client certificate", mutual, &engine.TLSSpec{}, true, "certificate"},
		{"mutual TLS", mutual, &engine.TLSSpec{ClientCert: engine.Text{Secret: "CERT"}, ClientKey: engine.Text{Secret: "KEY"}}, true, ""},
		{"min_version 1.3 against a 1.2 server", old, &engine.TLSSpec{MinVersion: "1.3"}, true, "version"},
		{"min_version 1.2 against a 1.2 server", old, &engine.TLSSpec{MinVersion: "1.2"}, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := connector(tc.srv.URL, func(c *engine.Connector) {
				c.Spec.TLS = tc.tls
				c.Spec.Retry.MaxAttempts = 1
				if tc.ca {
					c.CAPEM = caOf(tc.srv)
				}
			})
			cl, err := rest.New(c, secrets, rest.Options{Sleep: (&sleeps{}).Sleep})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			_, err = cl.Do(context.Background(), &rest.Call{Path: "/x"})
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Do: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Do = %v, want an error about %q", err, tc.wantErr)
			}
		})
	}

	// A certificate and a key that do not match fail when the connector is
	// built, without quoting either.
	c := connector(plain.URL, func(c *engine.Connector) {
		c.Spec.TLS = &engine.TLSSpec{ClientCert: engine.Text{Secret: "CERT"}, ClientKey: engine.Text{Secret: "OTHER_KEY"}}
	})
	_, err := rest.New(c, secrets, rest.Options{})
	if err == nil || !strings.Contains(err.Error(), "client_cert and client_key are not a matching") || strings.Contains(err.Error(), "AAAA") {
		t.Errorf("mismatched pair: %v", err)
	}
}
