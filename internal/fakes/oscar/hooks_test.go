package oscar_test

import (
	"errors"
	"regexp"
	"testing"
	"time"

	"casesync/internal/fakes/oscar"
)

var slugRe = regexp.MustCompile(`^[a-z]{4}-\d+$`)

// Accepting a Primero referral creates the client OSCaR will report back
// with its global_id and slug: the id sync-back (Flow 0) starts here.
func TestServer_Accept(t *testing.T) {
	s, c := startAuthed(t, oscar.Options{})
	c.upsert(newReferral(extA, "cif", "Kinship care"))
	c.upsert(newReferral(extA, "cif", "Trauma counselling"))
	pending := referralsOf(s, extA)[0]["global_id"].(string)
	s.Advance(2 * time.Hour)

	gid, err := s.Accept(extA)
	if err != nil {
		t.Fatal(err)
	}
	if gid != pending {
		t.Errorf("client global_id %s, want the referral's %s", gid, pending)
	}
	list := c.clients("2024-06-01 00:00:00")
	m := find(list, "global_id", gid)
	if m == nil {
		t.Fatalf("accepted client not in GET clients since today")
	}
	checks := map[string]any{"external_id": extA, "external_id_display": extA[:7], "resource": "primero", "status": "Accepted", "is_referred": true}
	for k, v := range checks {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if !slugRe.MatchString(m["slug"].(string)) {
		t.Errorf("slug %q", m["slug"])
	}
	snap, _ := s.Client(gid)
	if snap["updated_at"] != "2024-06-01T12:00:00Z" {
		t.Errorf("updated_at %v, want the accept time", snap["updated_at"])
	}
	// Both referrals of the child are now accepted and show as decisions.
	for _, r := range referralsOf(s, extA) {
		if r["accepted"] != true || r["referral_status"] != "Accepted" {
			t.Errorf("referral %v after accept", r)
		}
	}
	if n := len(m["services"].([]any)); n != 2 {
		t.Errorf("%d services in GET, want the 2 accepted referral services", n)
	}
	if _, err := s.Accept(extA); !errors.Is(err, oscar.ErrNoPendingReferral) {
		t.Errorf("second Accept: %v, want ErrNoPendingReferral", err)
	}
	if s.Counters().Writes()["client.create"] != 0 {
		t.Error("a hook counted as an API write")
	}
}

func TestServer_AcceptSeededPending(t *testing.T) {
	s, _ := start(t, oscar.Options{Clients: 11, Seed: 1})
	for _, r := range s.Referrals() {
		if r["accepted"] == false {
			if _, err := s.Accept(r["external_id"].(string)); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatal("seed has no pending referral")
}

func TestServer_Exit(t *testing.T) {
	s, c := startAuthed(t, oscar.Options{Clients: 11, Seed: 1})
	gid := seeded(t, s)[2]["global_id"].(string)
	if err := s.Exit(gid); err != nil {
		t.Fatal(err)
	}
	m := find(c.clients("2024-06-01"), "global_id", gid)
	if m == nil || m["status"] != "Exited" {
		t.Errorf("exited client in GET = %v", m)
	}
	if err := s.Exit("01ZZZZZZZZZZZZZZZZZZZZZZZZ"); !errors.Is(err, oscar.ErrUnknownGlobalID) {
		t.Errorf("Exit(unknown) = %v", err)
	}
}

func TestServer_SetReferralStatus(t *testing.T) {
	tests := []struct {
		name    string
		gid     func(seed []map[string]any) string
		id      int
		wantErr error
	}{
		{"decision on a Primero referral", func(seed []map[string]any) string { return seed[2]["global_id"].(string) }, 0, nil},
		{"unknown global_id", func([]map[string]any) string { return "01ZZZZZZZZZZZZZZZZZZZZZZZZ" }, 1001, oscar.ErrUnknownGlobalID},
		{"unknown referral", func(seed []map[string]any) string { return seed[2]["global_id"].(string) }, 42, oscar.ErrUnknownReferral},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, c := startAuthed(t, oscar.Options{Clients: 11, Seed: 1})
			gid := tc.gid(seeded(t, s))
			id := tc.id
			if id == 0 {
				for _, r := range s.Referrals() {
					if r["global_id"] == gid {
						id = r["id"].(int)
					}
				}
			}
			err := s.SetReferralStatus(gid, id, "Exited")
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			m := find(c.clients("2024-06-01"), "global_id", gid)
			if m == nil {
				t.Fatal("decided client not re-delivered")
			}
			for _, sv := range m["services"].([]any) {
				if x := sv.(map[string]any); x["referral_id"] != nil && x["referral_status"] != "Exited" {
					t.Errorf("service %v, want Exited", x)
				}
			}
		})
	}
}

func TestServer_TouchAndAdvance(t *testing.T) {
	s, _ := start(t, oscar.Options{})
	gid := s.AddClient("cif", nil)
	s.Advance(90 * time.Minute)
	s.Touch(gid, map[string]any{"mosvy_number": "77"})
	m, _ := s.Client(gid)
	if m["updated_at"] != "2024-06-01T11:30:00Z" || m["mosvy_number"] != "77" {
		t.Errorf("after Touch: updated_at %v, mosvy %v", m["updated_at"], m["mosvy_number"])
	}
	if got := s.Now(); !got.Equal(testNow.Add(90 * time.Minute)) {
		t.Errorf("Now %v", got)
	}
	for name, f := range map[string]func(){
		"unknown key":       func() { s.Touch(gid, map[string]any{"nickname": "x"}) },
		"unknown global_id": func() { s.Touch("01ZZZZZZZZZZZZZZZZZZZZZZZZ", nil) },
		"wrong type":        func() { s.Touch(gid, map[string]any{"gender": 1}) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		})
	}
}
