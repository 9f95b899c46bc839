package engine_test

import (
	"testing"

	"casesync/engine"
)

// TestScrubRemote: what a remote's error says about the request survives;
// what it quotes of the record (names, dates of birth, ids, addresses,
// e-mails, non-Latin names) does not.
func TestScrubRemote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"given_name is invalid", "given_name is invalid"},
		{"Record was found.", "Record was found."},
		{"Validation failed: Date of birth can't be blank", "Validation failed: Date of birth can't be blank"},
		{`Client "Sokha Chan" born 2014-02-01 already exists`, "Client … born … already exists"},
		{"Sokha Chan (2014-02-01) already exists", "… (…) already exists"},
		{"duplicate of case 6b2f0c1e-77aa-4c1e-9d11-0f3a1d2e4b5c for Dara Sok", "duplicate of case … for …"},
		{"unhcr_individual_no NUR-15-05300 is already taken", "unhcr_individual_no … is already taken"},
		{"contact sokha.chan@example.org or https://primero.example.org/cases/7", "contact … or …"},
		{"សុខា ចាន់ មានរួចហើយ", "…"},
		{"José Ramírez: invalid date_of_birth", "…: invalid date_of_birth"},
		{"status 422: 'date_of_birth' must be before 2026-01-01", "status …: … must be before …"},
		{"Invalid Record JSON: /age, /services_section/0/unique_id", "Invalid Record JSON: /age, /services_section/0/unique_id"},
		{"age 12 is not allowed", "age … is not allowed"},
		{"Not Found: Couldn't find Child with 'id'=abc", "Not Found: Couldn't find Child with … =…"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := engine.ScrubRemote(tc.in); got != tc.want {
			t.Errorf("ScrubRemote(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
