package oscar_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"casesync/internal/fakes/oscar"
)

func TestServer_SeedIsDeterministic(t *testing.T) {
	tests := []struct {
		name  string
		a, b  uint64
		equal bool
	}{
		{"same seed", 7, 7, true},
		{"other seed", 7, 8, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Different wall clocks must not matter either.
			a := oscar.New(oscar.Options{Clients: 300, Seed: tc.a, Now: func() time.Time { return testNow }})
			b := oscar.New(oscar.Options{Clients: 300, Seed: tc.b, Now: func() time.Time { return testNow.Add(time.Hour) }})
			equal := reflect.DeepEqual(a.Clients(), b.Clients()) && reflect.DeepEqual(a.Referrals(), b.Referrals())
			if equal != tc.equal {
				t.Errorf("equal = %v, want %v", equal, tc.equal)
			}
		})
	}
}

// TestServer_SeedMix checks the mix doc.go promises for the Cambodia flows.
func TestServer_SeedMix(t *testing.T) {
	s := oscar.New(oscar.Options{Clients: 1000, Seed: 11, Now: func() time.Time { return testNow }})
	clients := s.Clients()
	if len(clients) != 1000 {
		t.Fatalf("%d clients, want 1000", len(clients))
	}
	provinces := map[string]bool{}
	levels := map[int]bool{}
	genders := map[string]bool{}
	var referred, linked, invisible, enrolled int
	slugs := map[string]bool{}
	for _, m := range clients {
		code := m["location_current_village_code"].(string)
		levels[len(code)] = true
		if len(code) >= 2 {
			provinces[code[:2]] = true
		}
		if g, ok := m["gender"].(string); ok {
			genders[g] = true
		}
		if !ulidRe.MatchString(m["global_id"].(string)) {
			t.Errorf("global_id %q is not a ULID", m["global_id"])
		}
		key := m["tenant"].(string) + "/" + m["slug"].(string)
		if slugs[key] {
			t.Errorf("slug %s twice", key)
		}
		slugs[key] = true
		created, _ := time.Parse(time.RFC3339, m["created_at"].(string))
		updated, _ := time.Parse(time.RFC3339, m["updated_at"].(string))
		if updated.Before(created) || !updated.Before(oscar.BaseTime) {
			t.Errorf("%s: created %v updated %v, want created ≤ updated < BaseTime", key, created, updated)
		}
		switch {
		case m["visible"] == false:
			invisible++
		case m["referred_external"] == true:
			referred++
			for _, sv := range m["services"].([]any) {
				x := sv.(map[string]any)
				if x["referral_id"] != nil && (x["enrollment_date"] != nil || x["referral_id"].(int) < 1001) {
					t.Errorf("%s: referral service %v", key, x)
				}
			}
		case m["external_id"] != nil && m["external_id"] != "":
			linked++
			if m["status"] != "Accepted" {
				t.Errorf("%s: Primero-originated client has status %v", key, m["status"])
			}
		default:
			if len(m["services"].([]any)) > 0 {
				enrolled++
			}
		}
	}
	for p := 1; p <= 25; p++ {
		code := []byte{byte('0' + p/10), byte('0' + p%10)}
		if !provinces[string(code)] {
			t.Errorf("no client in province %s", code)
		}
	}
	if !provinces["99"] {
		t.Error("no client with the unknown province code 99")
	}
	for _, n := range []int{8, 6, 4, 2, 0} {
		if !levels[n] {
			t.Errorf("no location code of length %d", n)
		}
	}
	for _, g := range []string{"female", "male", "lgbt", "unknown", "prefer_not_to_say", "other"} {
		if !genders[g] {
			t.Errorf("no client of gender %s", g)
		}
	}
	for name, n := range map[string]int{"referred": referred, "linked": linked, "invisible": invisible, "enrolled shared": enrolled} {
		if n < 10 {
			t.Errorf("only %d %s clients in 1000", n, name)
		}
	}
	pending := 0
	for _, r := range s.Referrals() {
		if r["ngo_name"] != "MoSVY" || r["id"].(int) < 1001 {
			t.Errorf("referral %v: want ngo_name MoSVY and an integer id from 1001", r)
		}
		switch {
		case r["referred_to"] == "MoSVY External System": // an NGO referred the client out
			if r["referred_from"] != r["tenant"] || r["accepted"] != true || r["external_id"] != nil {
				t.Errorf("referral to MoSVY %v", r)
			}
		case r["accepted"] == false:
			pending++
			if r["saved"] != false || r["referred_from"] != "MoSVY" || r["external_id"] == nil {
				t.Errorf("pending referral %v", r)
			}
		default: // a Primero referral the NGO accepted
			if r["saved"] != true || r["referred_to"] != r["tenant"] || r["external_id"] == nil {
				t.Errorf("accepted Primero referral %v", r)
			}
		}
	}
	if pending != 40 {
		t.Errorf("%d pending referrals, want 40 (one per 25 clients)", pending)
	}
}

// The seed invents its people: none of the names in the copied fixtures
// may appear.
func TestServer_SeedInventsNames(t *testing.T) {
	fixtureNames := []string{"Mamadou", "Testing123", "Erin", "Carter", "Alan", "Kim", "Mmu", "Referral",
		"Tikwiza", "Quin", "Aicha", "Diallo", "Eunice", "Abbott", "Dodo", "dada", "Janani", "Panchalingam",
		"Chanthy", "Sum", "Aleksa", "Krolls", "Am Mar", "Doeun"}
	s := oscar.New(oscar.Options{Clients: 2000, Seed: 5})
	for _, m := range s.Clients() {
		for _, k := range []string{"given_name", "family_name", "case_worker_name"} {
			v, _ := m[k].(string)
			for _, f := range fixtureNames {
				for _, part := range strings.Split(v, ", ") {
					if strings.EqualFold(part, f) || strings.HasPrefix(part, f+" ") || strings.HasSuffix(part, " "+f) {
						t.Errorf("%s %q uses fixture name %q", k, v, f)
					}
				}
			}
		}
	}
}

func TestServer_SeedScalesTo100k(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 100,000 clients")
	}
	s := oscar.New(oscar.Options{Clients: 100_000, Seed: 1})
	if n, _ := s.Count(); n != 100_000 {
		t.Errorf("%d clients, want 100000", n)
	}
}
