package redact_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"

	"casesync/internal/redact"
)

const canary = `c4n4ry-S3cr3t/+&"<x>`

func TestRedactor_String(t *testing.T) {
	r := redact.New(canary, "", "abc", "Q7", "longer-secret-value", "secret")
	tests := []struct {
		name, in, want string
	}{
		{"plain", "pw=" + canary + ".", "pw=" + redact.Mask + "."},
		{"query escaped", "?p=" + url.QueryEscape(canary), "?p=" + redact.Mask},
		{"path escaped", "/x/" + url.PathEscape(canary), "/x/" + redact.Mask},
		{"json escaped", fmt.Sprintf("%q", canary), `"` + redact.Mask + `"`},
		{"short values masked too", "abc and xyz", redact.Mask + " and xyz"},
		{"two characters", "pin=Q7;", "pin=" + redact.Mask + ";"},
		{"empty value ignored", "", ""},
		{"longest wins", "longer-secret-value", redact.Mask},
		{"twice", "secret secret", redact.Mask + " " + redact.Mask},
		{"nothing", "hello", "hello"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.String(tc.in); got != tc.want {
				t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	if got := string(r.Bytes([]byte("x" + canary))); got != "x"+redact.Mask {
		t.Errorf("Bytes = %q", got)
	}
	var nilR *redact.Redactor
	if nilR.String(canary) != canary {
		t.Error("nil Redactor changed text")
	}
}

func TestRedactor_ConcurrentAdd(t *testing.T) {
	r := redact.New()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			s := fmt.Sprintf("token-%d-abcdef", i)
			r.Add(s)
			if got := r.String("x " + s); strings.Contains(got, s) {
				t.Errorf("token %d not redacted: %q", i, got)
			}
		})
	}
	wg.Wait()
}

type creds struct{ User, Password string }

func TestHandler_NoCanaryInAnyAttr(t *testing.T) {
	r := redact.New(canary)
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			opts := &slog.HandlerOptions{Level: slog.LevelDebug}
			var h slog.Handler = slog.NewTextHandler(&buf, opts)
			if format == "json" {
				h = slog.NewJSONHandler(&buf, opts)
			}
			log := slog.New(redact.Handler(h, r)).With("pre", "x"+canary)
			log.Debug("login with "+canary,
				"s", canary,
				"err", errors.New("bad password "+canary),
				"bytes", []byte(canary),
				"struct", creds{"u", canary},
				"map", map[string]string{"p": canary},
				"url", &url.URL{Scheme: "https", Host: "h", RawQuery: "q=" + url.QueryEscape(canary)},
				slog.Group("g", "inner", canary),
				"n", 42,
			)
			log.WithGroup("grp").Info("again", "v", canary)
			out := buf.String()
			for _, sp := range []string{canary, url.QueryEscape(canary), `c4n4ry-S3cr3t`} {
				if strings.Contains(out, sp) {
					t.Fatalf("canary spelling %q leaked:\n%s", sp, out)
				}
			}
			if !strings.Contains(out, "42") {
				t.Errorf("non-secret value lost:\n%s", out)
			}
		})
	}
}

func TestSafeURL(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"userinfo", "https://user:pw@h/p", "https://h/p"},
		{"token params", "https://h/p?access_token=abc&page=2", "https://h/p?access_token=%5Bredacted%5D&page=2"},
		{"dashes and case", "https://h/p?Access-Token=a&client_secret=b&x=1", "https://h/p?Access-Token=%5Bredacted%5D&client_secret=%5Bredacted%5D&x=1"},
		{"suffixes", "https://h/?subscription-key=a&sort=b", "https://h/?sort=b&subscription-key=%5Bredacted%5D"},
		{"sig and password", "https://h/?sig=a&password=b&key=c", "https://h/?key=%5Bredacted%5D&password=%5Bredacted%5D&sig=%5Bredacted%5D"},
		{"no query", "https://h/p", "https://h/p"},
		{"bad query", "https://h/p?a=%zz", "https://h/p?query=%5Bredacted%5D"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := redact.SafeURL(u); got != tc.want {
				t.Errorf("SafeURL(%s) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestIsSecretName(t *testing.T) {
	for name, want := range map[string]bool{
		"token": true, "api_key": true, "Ocp-Apim-Subscription-Key": true, "access-token": true,
		"Authorization": true, "page": false, "per": false, "since_date": false, "uid": false,
		"hisToken": true, "apiKey": true, "clientSecret": true, "X-Auth-Token": true, "SESSIONTOKEN": false, "pageSize": false, "updatedAt": false,
	} {
		if got := redact.IsSecretName(name); got != want {
			t.Errorf("IsSecretName(%q) = %v, want %v", name, got, want)
		}
	}
}
