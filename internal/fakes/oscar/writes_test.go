package oscar_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"casesync/internal/fakes/oscar"
)

func TestServer_UpdateLinks(t *testing.T) {
	tests := []struct {
		name string
		body any
		code int
		page bool
	}{
		{"known and unknown ids", nil, 200, false},
		{"no data", map[string]any{}, 500, true},
		{"empty data", map[string]any{"data": []any{}}, 500, true},
		{"data not a list", map[string]any{"data": map[string]any{"global_id": "x"}}, 500, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, c := startAuthed(t, oscar.Options{Clients: 11, Seed: 1})
			seed := seeded(t, s)
			shared := seed[3]["global_id"].(string) // also client 10, in fco
			b := tc.body
			if b == nil {
				b = map[string]any{"data": []any{
					map[string]any{"global_id": "01ZZZZZZZZZZZZZZZZZZZZZZZZ", "external_id": "nobody", "external_id_display": "n", "is_referred": false},
					map[string]any{"global_id": shared, "external_id": "case-3", "external_id_display": "c3", "is_referred": false},
				}}
			}
			r := c.do("PUT", pathLinks, b)
			if tc.page {
				if r.code != tc.code || !r.isHTML() {
					t.Errorf("got %d, want a %d page", r.code, tc.code)
				}
				return
			}
			body(t, r, 200, `{"message":"Record saved."}`)
			n := 0
			for _, m := range s.Clients() {
				if m["global_id"] != shared {
					if m["external_id"] == "nobody" {
						t.Errorf("unknown id was applied to %v", m["slug"])
					}
					continue
				}
				n++
				want := map[string]any{"external_id": "case-3", "external_id_display": "c3", "synced_date": "2024-06-01", "updated_at": "2024-06-01T10:00:00Z"}
				for k, v := range want {
					if m[k] != v {
						t.Errorf("%s client %s = %v, want %v", m["tenant"], k, m[k], v)
					}
				}
			}
			if n != 2 {
				t.Errorf("%d clients carry the global_id, want 2 (every linked tenant is updated)", n)
			}
			// Once linked, the client is a Primero one in GET clients.
			m := find(c.clients("2024-06-01"), "global_id", shared)
			if m == nil || m["resource"] != "primero" {
				t.Errorf("linked client in GET = %v, want resource primero", m)
			}
			// One item, one write, however many tenants it reached.
			if w := s.Counters().Writes()["client.link"]; w != 1 {
				t.Errorf("client.link writes = %d, want 1", w)
			}
		})
	}
}

// statusItem is one update_statuses item for the referral the seed made
// for designed client idx.
func statusItem(t *testing.T, s *oscar.Server, seed []map[string]any, idx int, status string) map[string]any {
	t.Helper()
	gid := seed[idx]["global_id"].(string)
	for _, r := range s.Referrals() {
		if r["global_id"] == gid {
			return map[string]any{"client_global_id": gid, "referral_id": r["id"], "referral_status": status,
				"external_id": "case", "external_id_display": "c"}
		}
	}
	t.Fatalf("no referral for seed client %d", idx)
	return nil
}

func TestServer_UpdateStatuses(t *testing.T) {
	const recordError = `"message":"Record error. Please check OSCaR logs for details."`
	tests := []struct {
		name  string
		items func(t *testing.T, s *oscar.Server, seed []map[string]any) []any
		code  int
		want  string // exact body
		after map[int]string
	}{
		{"all applied", func(t *testing.T, s *oscar.Server, seed []map[string]any) []any {
			return []any{statusItem(t, s, seed, 0, "Accepted"), statusItem(t, s, seed, 1, "Exited")}
		}, 200, `{"message":"Record saved."}`, map[int]string{0: "Accepted", 1: "Exited", 5: "Referred"}},
		{"stops at the first bad status, earlier items kept", func(t *testing.T, s *oscar.Server, seed []map[string]any) []any {
			return []any{statusItem(t, s, seed, 0, "Accepted"), statusItem(t, s, seed, 1, "Rejected"), statusItem(t, s, seed, 5, "Accepted")}
		}, 422, `{"error":"Referral status is not included in the list. Referral status must be one of ['Accepted', 'Exited', 'Referred'].",` + recordError + `}`,
			map[int]string{0: "Accepted", 1: "Referred", 5: "Referred"}},
		{"blank status", func(t *testing.T, s *oscar.Server, seed []map[string]any) []any {
			return []any{statusItem(t, s, seed, 0, "")}
		}, 422, `{"error":"Referral status can't be blank. Referral status is not included in the list. Referral status must be one of ['Accepted', 'Exited', 'Referred'].",` + recordError + `}`,
			map[int]string{0: "Referred"}},
		{"the model takes Active, a client status", func(t *testing.T, s *oscar.Server, seed []map[string]any) []any {
			return []any{statusItem(t, s, seed, 0, "Active")}
		}, 200, `{"message":"Record saved."}`, map[int]string{0: "Active"}},
		{"unknown global id", func(t *testing.T, s *oscar.Server, seed []map[string]any) []any {
			it := statusItem(t, s, seed, 0, "Accepted")
			it["client_global_id"] = "01ZZZZZZZZZZZZZZZZZZZZZZZZ"
			return []any{it}
		}, 422, `{"error":"ActiveRecord::RecordNotFound",` + recordError + `}`, map[int]string{0: "Referred"}},
		{"global id of a pending referral has no tenant", func(t *testing.T, s *oscar.Server, seed []map[string]any) []any {
			for _, r := range s.Referrals() {
				if r["accepted"] == false {
					return []any{map[string]any{"client_global_id": r["global_id"], "referral_id": r["id"], "referral_status": "Accepted"}}
				}
			}
			t.Fatal("no pending referral in the seed")
			return nil
		}, 422, `{"error":"ActiveRecord::RecordNotFound",` + recordError + `}`, nil},
		{"unknown referral", func(t *testing.T, s *oscar.Server, seed []map[string]any) []any {
			it := statusItem(t, s, seed, 0, "Accepted")
			it["referral_id"] = 99999
			return []any{it}
		}, 422, `{"error":"Couldn't find Referral with 'id'=99999",` + recordError + `}`, nil},
		{"referral id as text", func(t *testing.T, s *oscar.Server, seed []map[string]any) []any {
			it := statusItem(t, s, seed, 0, "Accepted")
			it["referral_id"] = "1001"
			return []any{it}
		}, 200, `{"message":"Record saved."}`, map[int]string{0: "Accepted"}},
		{"no referral id", func(t *testing.T, s *oscar.Server, seed []map[string]any) []any {
			it := statusItem(t, s, seed, 0, "Accepted")
			delete(it, "referral_id")
			return []any{it}
		}, 422, `{"error":"Couldn't find Referral without an ID",` + recordError + `}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// No sign-in: the endpoint checks no headers.
			s, c := start(t, oscar.Options{Clients: 11, Seed: 1})
			seed := seeded(t, s)
			body(t, c.do("PUT", pathStatuses, map[string]any{"data": tc.items(t, s, seed)}), tc.code, tc.want)
			for idx, want := range tc.after {
				gid := seed[idx]["global_id"]
				for _, r := range s.Referrals() {
					if r["global_id"] == gid && r["referral_status"] != want {
						t.Errorf("seed client %d referral %v: %v, want %v", idx, r["id"], r["referral_status"], want)
					}
				}
			}
		})
	}
}

func TestServer_UpdateStatuses_NoData(t *testing.T) {
	_, c := start(t, oscar.Options{})
	if r := c.do("PUT", pathStatuses, map[string]any{}); r.code != 500 || !r.isHTML() {
		t.Errorf("got %d, want a 500 page", r.code)
	}
}

func TestServer_Organizations(t *testing.T) {
	_, c := start(t, oscar.Options{})
	for _, p := range []string{pathOrgs, pathOrgs + "/listing"} {
		r := c.do("GET", p, nil)
		if r.code != 200 {
			t.Fatalf("%s: %d", p, r.code)
		}
		var list []map[string]any
		if err := json.Unmarshal(r.body, &list); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, o := range list {
			names = append(names, fmt.Sprintf("%v integrated=%v", o["short_name"], o["integrated"]))
		}
		wantNames := []string{"cif integrated=true", "fco integrated=true", "mtp integrated=true", "demo integrated=false"}
		if diff := cmp.Diff(wantNames, names); diff != "" {
			t.Errorf("%s short names (-want +got):\n%s", p, diff)
		}
	}
}

func TestServer_CheckDuplication(t *testing.T) {
	tests := []struct {
		name  string
		query string
		code  int
		want  string
	}{
		{"same names and birth date", "?given_name=kanira&family_name=Solyta&date_of_birth=2015-01-01", 200, `{"similar_fields":"Record was Found"}`},
		{"another birth date", "?given_name=Kanira&family_name=Solyta&date_of_birth=2016-01-01", 200, `{"similar_fields":"Record was not found"}`},
		{"nobody", "?given_name=Nobody", 200, `{"similar_fields":"Record was not found"}`},
		{"no parameters", "", 500, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, c := start(t, oscar.Options{})
			s.AddClient("fco", nil)
			r := c.do("GET", pathDup+tc.query, nil)
			if tc.want == "" {
				if r.code != tc.code || !r.isHTML() {
					t.Errorf("got %d, want a %d page", r.code, tc.code)
				}
				return
			}
			body(t, r, tc.code, tc.want)
		})
	}
}
