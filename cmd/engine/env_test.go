//go:build unix

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadSecrets_FileMode: a secrets file open to every user is refused
// (exit 2, naming the fix), one its group can read is used with a
// warning, a private one silently; no message shows a value.
func TestLoadSecrets_FileMode(t *testing.T) {
	tests := []struct {
		mode     os.FileMode
		wantCode int
		wantErr  string
	}{
		{0o600, 0, ""},
		{0o400, 0, ""},
		{0o640, 0, "is readable by its group (mode 0640)"},
		{0o644, 2, "is open to every user of this machine (mode 0644); make it private: chmod 600"},
		{0o606, 2, "is open to every user of this machine (mode 0606)"},
	}
	for _, tc := range tests {
		t.Run(tc.mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kh.env")
			if err := os.WriteFile(path, []byte("PRIMERO_PASSWORD=s3cr3t-Value\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			var errb bytes.Buffer
			a := newApp(&bytes.Buffer{}, &errb, func(string) string { return "" })
			s, err := a.loadSecrets(&common{secretsFile: path})
			msg := errb.String()
			code := 0
			if err != nil {
				msg += err.Error()
				code = err.(*exitError).code
			}
			if code != tc.wantCode {
				t.Fatalf("exit code %d, want %d (%s)", code, tc.wantCode, msg)
			}
			if tc.wantErr == "" && msg != "" || !strings.Contains(msg, tc.wantErr) {
				t.Errorf("said %q, want %q", msg, tc.wantErr)
			}
			if strings.Contains(msg, "s3cr3t") {
				t.Error("the message shows a secret value")
			}
			if code == 0 {
				if v, _ := s.Secret("PRIMERO_PASSWORD"); v != "s3cr3t-Value" {
					t.Errorf("secret = %q", v)
				}
			}
		})
	}
}
