package oscar_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"casesync/internal/fakes/oscar"
)

// seeded returns the seed clients by seed index: they are dealt
// round-robin over the integrated tenants (cif, fco, mtp by default).
func seeded(tb testing.TB, s *oscar.Server, orgs ...string) []map[string]any {
	tb.Helper()
	if len(orgs) == 0 {
		orgs = []string{"cif", "fco", "mtp"}
	}
	by := map[string][]map[string]any{}
	n := 0
	for _, c := range s.Clients() {
		by[c["tenant"].(string)] = append(by[c["tenant"].(string)], c)
		n++
	}
	out := make([]map[string]any, n)
	for i := range out {
		list := by[orgs[i%len(orgs)]]
		if i/len(orgs) >= len(list) {
			return out[:i]
		}
		out[i] = list[i/len(orgs)]
	}
	return out
}

// slot is one expected GET clients entry: a seed index and whether it is
// in the referred shape.
type slot struct {
	idx      int
	referred bool
}

type want []slot

// R is a client in the referred shape, S in the shared shape.
func R(i int) slot { return slot{i, true} }
func S(i int) slot { return slot{i, false} }

type entry struct {
	Slug     string
	Referred bool
}

func expect(seed []map[string]any, w want) []entry {
	out := []entry{}
	for _, x := range w {
		out = append(out, entry{seed[x.idx]["slug"].(string), x.referred})
	}
	return out
}

func got(list []map[string]any) []entry {
	out := []entry{}
	for _, m := range list {
		out = append(out, entry{m["slug"].(string), isReferredShape(m)})
	}
	return out
}

// The eleven designed seed clients were updated on 2024-05-31 at 23:00,
// 22:00, … 13:00 (index 0 latest). 0, 1 and 5 are referred to MoSVY; 6 is
// invisible. Tenants: cif 0,3,6,9; fco 1,4,7,10; mtp 2,5,8.
func TestServer_GetClients_OrderAndComparison(t *testing.T) {
	all := want{R(0), S(3), S(9), R(1), S(4), S(7), S(10), R(5), S(2), S(8)}
	tests := []struct {
		name  string
		query string
		want  want
	}{
		{"no since_date: every visible client", "", all},
		{"since the start of the day", "since_date=" + url.QueryEscape("2024-05-31 00:00:00"), all},
		{"referred_external is ignored", "since_date=" + url.QueryEscape("2024-05-31 00:00:00") + "&referred_external=true", all},
		{
			// Exact for the referred part: 1 (22:00) and 5 (18:00) miss it,
			// and fall into the day-granular part in the other shape.
			"exact for referred, day-granular for the rest",
			"since_date=" + url.QueryEscape("2024-05-31 22:30:00"),
			want{R(0), S(3), S(9), S(1), S(4), S(7), S(10), S(2), S(5), S(8)},
		},
		{"a later day finds nothing", "since_date=2024-06-01", want{}},
		{"pagination parameters are ignored", "page=2&per=1", all},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, c := startAuthed(t, oscar.Options{Clients: 11, Seed: 1})
			seed := seeded(t, s)
			p := pathClients
			if tc.query != "" {
				p += "?" + tc.query
			}
			list := c.do("GET", p, nil).data(t)
			if diff := cmp.Diff(expect(seed, tc.want), got(list)); diff != "" {
				t.Errorf("clients (-want +got):\n%s", diff)
			}
		})
	}
}

// Cambodia rounds since_date to midnight, so a second run on the same day
// gets the same shared clients again: the engine's upsert must be
// idempotent.
func TestServer_GetClients_SameDayRedelivers(t *testing.T) {
	s, c := startAuthed(t, oscar.Options{Clients: 11, Seed: 1})
	gid := seeded(t, s)[3]["global_id"].(string)
	s.Touch(gid, map[string]any{"mosvy_number": "1234567"}) // updated at testNow
	first := c.clients("2024-06-01 00:00:00")
	s.Advance(3 * time.Hour)
	second := c.clients("2024-06-01 00:00:00")
	if len(first) != 1 || first[0]["global_id"] != gid {
		t.Fatalf("first run: %v, want only the touched client", gids(first))
	}
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("second run on the same day (-first +second):\n%s", diff)
	}
}

func TestServer_GetClients_Visibility(t *testing.T) {
	tests := []struct {
		name    string
		fields  map[string]any
		visible bool
	}{
		{"complete", map[string]any{}, true},
		{"no date of birth", map[string]any{"date_of_birth": nil}, false},
		{"blank gender", map[string]any{"gender": ""}, false},
		{"null gender", map[string]any{"gender": nil}, false},
		{"no given name at all", map[string]any{"given_name": "", "local_given_name": nil}, false},
		{"family name of spaces", map[string]any{"family_name": "  ", "local_family_name": nil}, false},
		{"local given name only", map[string]any{"given_name": nil, "local_given_name": "សុភា"}, true},
		{"local family name only", map[string]any{"family_name": "", "local_family_name": "រីណា"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, c := startAuthed(t, oscar.Options{})
			gid := s.AddClient("cif", tc.fields)
			list := c.clients("")
			if got := find(list, "global_id", gid) != nil; got != tc.visible {
				t.Errorf("visible = %v, want %v", got, tc.visible)
			}
		})
	}
}

func TestServer_GetClients_TenantsInOrder(t *testing.T) {
	s, c := startAuthed(t, oscar.Options{Orgs: []string{"mtp", "cif"}})
	cif := s.AddClient("cif", map[string]any{"updated_at": testNow})
	mtp := s.AddClient("mtp", map[string]any{"updated_at": testNow.Add(-time.Hour)})
	demo := s.AddClient(oscar.NonIntegratedTenant, nil)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("AddClient to a tenant that does not exist did not panic")
			}
		}()
		s.AddClient("fco", nil)
	}()
	// Organization order first, then newest first inside each tenant:
	// mtp's older client still comes before cif's newer one.
	if diff := cmp.Diff([]string{mtp, cif}, gids(c.clients(""))); diff != "" {
		t.Errorf("order (-want +got):\n%s\nthe non-integrated tenant (%s) must not be walked", diff, demo)
	}
	if got := s.Counters().ServedRecords()["GET /api/v1/organizations/clients"]; got != 2 {
		t.Errorf("the counters say %d clients served, want 2", got)
	}
}

func TestServer_GetClients_Shapes(t *testing.T) {
	s, c := startAuthed(t, oscar.Options{Clients: 11, Seed: 1})
	seed := seeded(t, s)
	prov := s.AddClient("cif", map[string]any{"location_current_village_code": "12"})
	list := c.clients("")

	t.Run("referred client carries its referral services", func(t *testing.T) {
		m := find(list, "slug", seed[0]["slug"])
		if !isReferredShape(m) {
			t.Fatalf("client 0 not in the referred shape: %v", m)
		}
		var ref map[string]any
		for _, sv := range m["services"].([]any) {
			if x := sv.(map[string]any); x["referral_id"] != nil {
				ref = x
			}
		}
		if ref == nil {
			t.Fatalf("no referral service in %v", m["services"])
		}
		if ref["enrollment_date"] != nil || ref["program_name"] != nil || ref["referral_status"] != "Referred" {
			t.Errorf("referral service = %v, want not enrolled and Referred", ref)
		}
		if _, ok := ref["referral_id"].(float64); !ok {
			t.Errorf("referral_id %T, want an integer", ref["referral_id"])
		}
		if m["location_current_village_code"].(string)[:2] != "19" {
			t.Errorf("client 0 is in province %v, want 19 (Stung Treng)", m["location_current_village_code"])
		}
		if m["is_referred"] != true || len(m["referral_consent_form"].([]any)) == 0 {
			t.Errorf("is_referred %v, consent %v", m["is_referred"], m["referral_consent_form"])
		}
	})
	t.Run("Primero-linked client: resource primero and services", func(t *testing.T) {
		m := find(list, "slug", seed[2]["slug"])
		if isReferredShape(m) || m["resource"] != "primero" || m["external_id"] == "" {
			t.Fatalf("client 2 = %v", m)
		}
		if len(m["services"].([]any)) == 0 || m["is_referred"] != true {
			t.Errorf("services %v, is_referred %v", m["services"], m["is_referred"])
		}
	})
	t.Run("shared client: resource null, services empty despite enrolments", func(t *testing.T) {
		if n := len(seed[3]["services"].([]any)); n == 0 {
			t.Fatal("seed client 3 should have enrolments")
		}
		m := find(list, "slug", seed[3]["slug"])
		if m["resource"] != nil || len(m["services"].([]any)) != 0 || m["is_referred"] != false {
			t.Errorf("client 3: resource %v, services %v, is_referred %v", m["resource"], m["services"], m["is_referred"])
		}
		for _, k := range []string{"external_id", "external_id_display", "mosvy_number"} {
			if _, ok := m[k].(string); !ok {
				t.Errorf("%s is %T, always a string in this shape", k, m[k])
			}
		}
	})
	t.Run("shared shape reads no province-only code", func(t *testing.T) {
		if got := find(list, "global_id", prov)["location_current_village_code"]; got != "" {
			t.Errorf("location_current_village_code %q, want \"\"", got)
		}
	})
	t.Run("referred shape falls back to local names", func(t *testing.T) {
		gid := seed[0]["global_id"].(string)
		s.Touch(gid, map[string]any{"given_name": "", "local_given_name": "សុភា"})
		m := find(c.clients(""), "global_id", gid)
		if m["given_name"] != "សុភា" {
			t.Errorf("given_name %q, want the local name", m["given_name"])
		}
	})
}

func TestServer_GetClients_SinceDateParsing(t *testing.T) {
	tests := []struct {
		name    string
		since   string
		wantErr bool
	}{
		{"date and time", "2024-05-31 00:00:00", false},
		{"date only", "2024-05-31", false},
		{"quoted", "'2024-05-31 00:00:00'", false},
		{"ISO with milliseconds", "2024-05-31T00:00:00.000Z", false},
		{"with offset", "2024-05-31 07:00:00 +07:00", false},
		{"slashes", "2024/05/31", false},
		{"no date", "yesterday", true},
		{"impossible date", "2024-13-45", true},
		{"february 30", "2024-02-30", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, c := startAuthed(t, oscar.Options{Clients: 11, Seed: 1})
			r := c.do("GET", pathClients+"?since_date="+url.QueryEscape(tc.since), nil)
			if tc.wantErr {
				if r.code != 500 || !r.isHTML() {
					t.Errorf("status %d, html %v; want a 500 HTML page", r.code, r.isHTML())
				}
				return
			}
			if diff := cmp.Diff(gids(c.clients("2024-05-31 00:00:00")), gids(r.data(t))); diff != "" {
				t.Errorf("differs from the canonical form (-want +got):\n%s", diff)
			}
		})
	}
}

// end_date switches to historical mode: created between the two, oldest
// first, everything in the shared shape.
func TestServer_GetClients_EndDate(t *testing.T) {
	tests := []struct {
		name     string
		query    string
		wantCode int
		want     want
	}{
		// Designed client i was created at 2024-05-02 minus i days.
		{"window", "since_date=2024-04-01&end_date=" + url.QueryEscape("2024-05-31 23:59:59"), 200,
			want{S(9), S(3), S(0), S(10), S(7), S(4), S(1), S(8), S(5), S(2)}},
		{"narrow window", "since_date=2024-04-29&end_date=2024-05-01", 200, want{S(3), S(1), S(2)}},
		{"end_date without since_date", "end_date=2024-05-31", 500, nil},
		{"bad end_date", "since_date=2024-04-01&end_date=never", 500, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, c := startAuthed(t, oscar.Options{Clients: 11, Seed: 1})
			r := c.do("GET", pathClients+"?"+tc.query, nil)
			if r.code != tc.wantCode {
				t.Fatalf("status %d, want %d", r.code, tc.wantCode)
			}
			if tc.wantCode != 200 {
				if !r.isHTML() {
					t.Error("500 is not the HTML page")
				}
				return
			}
			if diff := cmp.Diff(expect(seeded(t, s), tc.want), got(r.data(t))); diff != "" {
				t.Errorf("clients (-want +got):\n%s", diff)
			}
		})
	}
}

// One array, however many clients: no paging, no total.
func TestServer_GetClients_NoPagination(t *testing.T) {
	s, c := startAuthed(t, oscar.Options{Clients: 600, Seed: 3})
	visible := 0
	for _, m := range s.Clients() {
		if m["visible"] == true && m["tenant"] != oscar.NonIntegratedTenant {
			visible++
		}
	}
	r := c.do("GET", pathClients, nil)
	body := r.obj(t)
	if len(body) != 1 {
		t.Errorf("top-level keys %v, want only data", body)
	}
	if got := len(r.data(t)); got != visible {
		t.Errorf("%d clients in one answer, want all %d visible", got, visible)
	}
}
