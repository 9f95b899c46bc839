// Package testenv holds helpers that tests in several packages share:
// finding the module root and asking the fakes which records a shipped
// deployment should move. Only tests import it.
package testenv

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"casesync/internal/sandbox"
)

// RepoRoot is the module root, found from the test's directory.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// ReferredCases lists, sorted, the record ids of the fake Primero cases
// that specs/example sends to OSCaR: consent given and a referral_to_oscar
// service.
func ReferredCases(sb *sandbox.Sandbox) []string {
	var ids []string
	for _, c := range sb.Primero.Cases() {
		if c["consent_for_services"] != true {
			continue
		}
		svcs, _ := c["services_section"].([]any)
		for _, s := range svcs {
			if m, ok := s.(map[string]any); ok && m["service_response_type"] == "referral_to_oscar" {
				ids = append(ids, c["id"].(string))
				break
			}
		}
	}
	sort.Strings(ids)
	return ids
}
