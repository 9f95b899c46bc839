package oscar_test

import (
	"bytes"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"casesync/internal/fakes/oscar"
)

var ulidRe = regexp.MustCompile(`^[0-7][0-9A-HJKMNP-TV-Z]{25}$`)

// body compares a raw answer byte for byte (key order included) and the
// status.
func body(t *testing.T, r resp, code int, want string) {
	t.Helper()
	if r.code != code || string(bytes.TrimSpace(r.body)) != want {
		t.Errorf("got %d %s\nwant %d %s", r.code, bytes.TrimSpace(r.body), code, want)
	}
}

func referralsOf(s *oscar.Server, externalID string) []map[string]any {
	var out []map[string]any
	for _, r := range s.Referrals() {
		if r["external_id"] == externalID {
			out = append(out, r)
		}
	}
	return out
}

const (
	extA = "aac935f2-5e01-450b-8575-423915a04e68"
	extB = "b1d2c3e4-0000-4000-8000-00000000000b"
)

func TestServer_Upsert_Preconditions(t *testing.T) {
	recordError := `{"message":"Record error. Please check OSCaR logs for details."}`
	tests := []struct {
		name string
		body any
		code int
		want string // "" means an HTML page
	}{
		{"no organization", map[string]any{}, 422, recordError},
		{"organization null", map[string]any{"organization": nil}, 422, recordError},
		{"organization empty", map[string]any{"organization": map[string]any{}}, 422, recordError},
		{"organization_name missing", map[string]any{"organization": map[string]any{"external_id": extA}}, 422, recordError},
		{"organization_name blank", map[string]any{"organization": map[string]any{"organization_name": " "}}, 422, recordError},
		{"organization not a hash", map[string]any{"organization": "cif"}, 500, ""},
		{"unknown tenant", map[string]any{"organization": newReferral(extA, "nosuch", "Kinship care")}, 500, ""},
		{"a JSON array", `[{"organization":{"organization_name":"cif"}}]`, 422, recordError},
		{"not JSON", "organization=cif", 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, c := startAuthed(t, oscar.Options{})
			r := c.do("POST", pathUpsert, tc.body)
			if tc.want == "" {
				if r.code != tc.code || !r.isHTML() {
					t.Errorf("got %d (html %v), want a %d HTML page", r.code, r.isHTML(), tc.code)
				}
			} else {
				body(t, r, tc.code, tc.want)
			}
			if n := len(s.Referrals()); n != 0 {
				t.Errorf("%d referrals stored, want none", n)
			}
		})
	}
}

// A known global_id with an unknown organization_name crashes on the
// tenant switch too.
func TestServer_Upsert_UnknownTenantWithGlobalID(t *testing.T) {
	s, c := startAuthed(t, oscar.Options{})
	gid := s.AddClient("cif", nil)
	org := newReferral(extA, "nosuch", "Kinship care")
	org["global_id"] = gid
	if r := c.upsert(org); r.code != 500 || !r.isHTML() {
		t.Errorf("got %d, want a 500 page", r.code)
	}
}

func TestServer_Upsert_NewReferral(t *testing.T) {
	s, c := startAuthed(t, oscar.Options{Clients: 11, Seed: 1})
	before := len(s.Clients())
	r := c.upsert(newReferral(extA, "cif", "Kinship care"))
	// The new global_id is not in the answer.
	body(t, r, 200, `{"external_id":"`+extA+`","message":"Record saved."}`)
	refs := referralsOf(s, extA)
	if len(refs) != 1 {
		t.Fatalf("%d referrals for %s, want 1", len(refs), extA)
	}
	got := refs[0]
	gid := got["global_id"].(string)
	if !ulidRe.MatchString(gid) || !s.KnownGlobalID(gid) {
		t.Errorf("global_id %q is not a known ULID", gid)
	}
	want := map[string]any{
		"tenant": "cif", "referral_status": "Referred", "ngo_name": "MoSVY", "referred_from": "MoSVY",
		"referred_to": "cif", "saved": false, "accepted": false, "services": []string{"Kinship care"},
		"client_name": "Voreak Thanary", "referral_reason": "needs care", "level_of_risk": "medium",
	}
	for k, v := range want {
		if diff := cmp.Diff(v, got[k]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", k, diff)
		}
	}
	if n := len(s.Clients()); n != before {
		t.Errorf("%d clients, want %d: a referral creates no client until accepted", n, before)
	}
	if find(c.clients(""), "global_id", gid) != nil {
		t.Error("a pending referral shows up in GET clients")
	}
	if w := s.Counters().Writes()["referral.create"]; w != 1 {
		t.Errorf("referral.create writes = %d, want 1", w)
	}
}

// The rest of branch 3, driven as the engine would see it.
func TestServer_Upsert_ReferralKeyedOnExternalID(t *testing.T) {
	type step struct {
		name   string
		org    map[string]any
		accept bool // Accept(extA) before this step
		code   int
		want   string // exact body; "" for a 500 page
		refs   int    // referrals for extA afterwards
		dups   int64
	}
	withGID := func(org map[string]any, gid string) map[string]any {
		org = clone(org)
		org["global_id"] = gid
		return org
	}
	withUUID := func(org map[string]any, uuid string) map[string]any {
		org = clone(org)
		org["services"] = []any{map[string]any{"uuid": uuid, "name": org["services"].([]any)[0].(map[string]any)["name"]}}
		return org
	}
	saved := `{"external_id":"` + extA + `","message":"Record saved."}`
	tests := []struct {
		name  string
		steps []step
	}{
		{"second service reuses the pending global_id", []step{
			{org: newReferral(extA, "cif", "Kinship care"), code: 200, want: saved, refs: 1},
			{org: newReferral(extA, "cif", "Emergency foster care"), code: 200, want: saved, refs: 2},
		}},
		{"a retried upsert duplicates the referral", []step{
			{org: newReferral(extA, "cif", "Kinship care"), code: 200, want: saved, refs: 1},
			{org: newReferral(extA, "cif", "Kinship care"), code: 200, want: saved, refs: 2, dups: 1},
		}},
		{"two services of one name, told apart by uuid: two referrals, no duplicate", []step{
			{org: newReferral(extA, "cif", "Kinship care"), code: 200, want: saved, refs: 1},
			{org: withUUID(newReferral(extA, "cif", "Kinship care"), "00000000-0000-4000-8000-000000000002"), code: 200, want: saved, refs: 2},
			{org: withUUID(newReferral(extA, "cif", "Kinship care"), "00000000-0000-4000-8000-000000000002"), code: 200, want: saved, refs: 3, dups: 1},
		}},
		{"accepted: global_id required", []step{
			{org: newReferral(extA, "cif", "Kinship care"), code: 200, want: saved, refs: 1},
			{org: newReferral(extA, "cif", "Trauma counselling"), accept: true, code: 422, refs: 1,
				want: `{"external_id":"` + extA + `","message":"Record was found.","errors":{"global_id":"global_id must exist.","referral_status":"referral_status must be present."}}`},
		}},
		{"accepted, unknown global_id sent: errors empty", []step{
			{org: newReferral(extA, "cif", "Kinship care"), code: 200, want: saved, refs: 1},
			{org: withGID(newReferral(extA, "cif", "Trauma counselling"), "01ARZ3NDEKTSV4RRFFQ69G5FAV"), accept: true, code: 422, refs: 1,
				want: `{"external_id":"` + extA + `","message":"Record was found.","errors":{}}`},
		}},
		{"unknown global_id: referral saved, then 500", []step{
			{org: withGID(newReferral(extA, "cif", "Kinship care"), "01ARZ3NDEKTSV4RRFFQ69G5FAV"), code: 500, refs: 1},
			{org: withGID(newReferral(extA, "cif", "Trauma counselling"), "01ARZ3NDEKTSV4RRFFQ69G5FAV"), code: 200, want: saved, refs: 2},
		}},
		{"same external_id in another tenant is a new referral", []step{
			{org: newReferral(extA, "cif", "Kinship care"), code: 200, want: saved, refs: 1},
			{org: newReferral(extA, "fco", "Kinship care"), code: 200, want: saved, refs: 2},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, c := startAuthed(t, oscar.Options{})
			for i, st := range tc.steps {
				if st.accept {
					if _, err := s.Accept(extA); err != nil {
						t.Fatalf("step %d: Accept: %v", i, err)
					}
				}
				r := c.upsert(st.org)
				if st.want == "" {
					if r.code != st.code || !r.isHTML() {
						t.Errorf("step %d: %d, want a %d page", i, r.code, st.code)
					}
				} else {
					body(t, r, st.code, st.want)
				}
				refs := referralsOf(s, extA)
				if len(refs) != st.refs {
					t.Fatalf("step %d: %d referrals, want %d", i, len(refs), st.refs)
				}
				if len(refs) == 2 && refs[0]["tenant"] == refs[1]["tenant"] && refs[0]["global_id"] != refs[1]["global_id"] {
					t.Errorf("step %d: second referral has global_id %v, want the first's %v", i, refs[1]["global_id"], refs[0]["global_id"])
				}
				if got := s.Counters().Duplicates.Load(); got != st.dups {
					t.Errorf("step %d: duplicates %d, want %d", i, got, st.dups)
				}
			}
		})
	}
}

func TestServer_Upsert_ReferralValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(map[string]any)
		code   int
		msg    string // the message value, exact
	}{
		{"valid", func(map[string]any) {}, 200, `"Record saved."`},
		{"blank referee", func(o map[string]any) { o["external_case_worker_name"] = "" }, 422, `{"name_of_referee":["can't be blank"]}`},
		{"no referee phone", func(o map[string]any) { delete(o, "external_case_worker_mobile") }, 422, `{"referral_phone":["can't be blank"]}`},
		{"no client name", func(o map[string]any) { o["given_name"], o["family_name"] = " ", nil }, 422, `{"client_name":["can't be blank"]}`},
		{"no level_of_risk", func(o map[string]any) { delete(o, "level_of_risk") }, 422, `{"level_of_risk":["can't be blank","is not included in the list"]}`},
		{"Primero's no_action", func(o map[string]any) { o["level_of_risk"] = "no_action" }, 422, `{"level_of_risk":["is not included in the list"]}`},
		{"no action with a space", func(o map[string]any) { o["level_of_risk"] = "no action" }, 200, `"Record saved."`},
		{"no services", func(o map[string]any) { delete(o, "services") }, 422, `{"services":["can't be blank"]}`},
		{"service not in the catalogue", func(o map[string]any) {
			o["services"] = []any{map[string]any{"uuid": "x", "name": "Kinship Care"}} // case matters
		}, 422, `{"services":["can't be blank"]}`},
		{"Not Specified is in the catalogue", func(o map[string]any) {
			o["services"] = []any{map[string]any{"name": "Not Specified"}}
		}, 200, `"Record saved."`},
		{"several at once, in declaration order", func(o map[string]any) {
			o["external_case_worker_name"] = ""
			o["services"] = []any{}
		}, 422, `{"name_of_referee":["can't be blank"],"services":["can't be blank"]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, c := startAuthed(t, oscar.Options{})
			org := newReferral(extA, "cif", "Kinship care")
			tc.mutate(org)
			body(t, c.upsert(org), tc.code, `{"external_id":"`+extA+`","message":`+tc.msg+`}`)
			if want := map[int]int{200: 1, 422: 0}[tc.code]; len(s.Referrals()) != want {
				t.Errorf("%d referrals stored, want %d", len(s.Referrals()), want)
			}
		})
	}
}

func TestServer_Upsert_ReferralDefaultsAndCatalogue(t *testing.T) {
	s, c := startAuthed(t, oscar.Options{})
	org := newReferral(extA, "cif", "Therapeutic interventions")
	org["reason_for_referral"] = ""
	org["services"] = append(org["services"].([]any), map[string]any{"name": "No Such Service"})
	if r := c.upsert(org); r.code != 200 {
		t.Fatalf("%d %s", r.code, r.body)
	}
	ref := referralsOf(s, extA)[0]
	if ref["referral_reason"] != "N/A" {
		t.Errorf("referral_reason %q, want N/A", ref["referral_reason"])
	}
	// The name sits in two catalogue categories, and Service.where(name:)
	// matches both rows; the unknown name is dropped.
	if diff := cmp.Diff([]string{"Therapeutic interventions", "Therapeutic interventions"}, ref["services"]); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}
}

// updateBody is an upsert for a client OSCaR knows, in the shape of
// upsert_request_update_existing_client.json.
func updateBody(gid string) map[string]any {
	return map[string]any{
		"global_id": gid, "external_id": "case-1", "external_id_display": "se-1",
		"given_name": "Sokhavy", "family_name": "Ratanak", "gender": "male", "date_of_birth": "2014-02-03",
		"mosvy_number": "M-1", "location_current_village_code": "08080906",
		"external_case_worker_name": "Worker", "external_case_worker_id": "w1",
		"is_referred": false, "organization_name": "cif", "level_of_risk": "medium",
	}
}

func TestServer_Upsert_UpdateKnownClient(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(map[string]any)
		code   int
		want   string // exact body
		check  map[string]any
	}{
		{"overwrites and blanks", func(map[string]any) {}, 200, `{"external_id":"case-1","message":"Record saved."}`,
			map[string]any{"given_name": "Sokhavy", "local_given_name": nil, "local_family_name": nil,
				"reason_for_referral": nil, "mosvy_number": "M-1", "external_id": "case-1",
				"location_current_village_code": "08080906", "visible": true}},
		{"missing keys become null", func(o map[string]any) { delete(o, "mosvy_number"); delete(o, "date_of_birth") }, 200,
			`{"external_id":"case-1","message":"Record saved."}`,
			map[string]any{"mosvy_number": nil, "date_of_birth": nil, "visible": false}},
		{"external_id kept when not sent", func(o map[string]any) { delete(o, "external_id"); delete(o, "external_id_display") }, 200,
			`{"external_id":"old-case","message":"Record saved."}`,
			map[string]any{"external_id": "old-case", "external_id_display": "old"}},
		{"missing location clears the address", func(o map[string]any) { delete(o, "location_current_village_code") }, 200,
			`{"external_id":"case-1","message":"Record saved."}`, map[string]any{"location_current_village_code": ""}},
		{"seven digits are padded to a village", func(o map[string]any) { o["location_current_village_code"] = "8080906" }, 200,
			`{"external_id":"case-1","message":"Record saved."}`, map[string]any{"location_current_village_code": "08080906"}},
		{"three digits are a district", func(o map[string]any) { o["location_current_village_code"] = "808" }, 200,
			`{"external_id":"case-1","message":"Record saved."}`, map[string]any{"location_current_village_code": "0808"}},
		{"an empty address code wins over the location", func(o map[string]any) { o["address_current_village_code"] = "" }, 200,
			`{"external_id":"case-1","message":"Record saved."}`, map[string]any{"location_current_village_code": ""}},
		{"junk date of birth is stored as null", func(o map[string]any) { o["date_of_birth"] = "2014-02-30" }, 200,
			`{"external_id":"case-1","message":"Record saved."}`, map[string]any{"date_of_birth": nil}},
		{"short date is read", func(o map[string]any) { o["date_of_birth"] = "2022-05-1" }, 200,
			`{"external_id":"case-1","message":"Record saved."}`, map[string]any{"date_of_birth": "2022-05-01"}},
		{"missing gender", func(o map[string]any) { delete(o, "gender") }, 422,
			`{"external_id":"case-1","message":{"gender":["can't be blank"]}}`,
			map[string]any{"given_name": "Kanira", "external_id": "old-case"}},
		{"gender outside the domain", func(o map[string]any) { o["gender"] = "Male" }, 422,
			`{"external_id":"case-1","message":{"gender":["is not included in the list"]}}`,
			map[string]any{"given_name": "Kanira"}},
		{"bad referral_status after the update is saved", func(o map[string]any) { o["referral_status"] = "Rejected" }, 422,
			`{"external_id":"case-1","message":"Referral status must be one of ['Accepted', 'Exited', 'Referred']."}`,
			map[string]any{"given_name": "Sokhavy"}},
		{"blank referral_status is checked too", func(o map[string]any) { o["referral_status"] = "" }, 422,
			`{"external_id":"case-1","message":"Referral status must be one of ['Accepted', 'Exited', 'Referred']."}`,
			map[string]any{"given_name": "Sokhavy"}},
		{"extra keys are ignored", func(o map[string]any) {
			o["local_given_name"], o["resource"], o["date_of_referral"] = "ដូដូ", "Primero", "2022-10-04"
		}, 200, `{"external_id":"case-1","message":"Record saved."}`, map[string]any{"local_given_name": nil}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, c := startAuthed(t, oscar.Options{})
			gid := s.AddClient("cif", map[string]any{
				"local_given_name": "សុភា", "local_family_name": "រីណា", "reason_for_referral": "old reason",
				"external_id": "old-case", "external_id_display": "old", "location_current_village_code": "12010101",
			})
			org := updateBody(gid)
			tc.mutate(org)
			body(t, c.upsert(org), tc.code, tc.want)
			got, _ := s.Client(gid)
			for k, v := range tc.check {
				if diff := cmp.Diff(v, got[k]); diff != "" {
					t.Errorf("%s (-want +got):\n%s", k, diff)
				}
			}
		})
	}
}

func TestServer_Upsert_UnchangedUpdateKeepsUpdatedAt(t *testing.T) {
	s, c := startAuthed(t, oscar.Options{})
	gid := s.AddClient("cif", nil)
	c.upsert(updateBody(gid))
	first, _ := s.Client(gid)
	s.Advance(time.Hour)
	c.upsert(updateBody(gid))
	second, _ := s.Client(gid)
	if first["updated_at"] != second["updated_at"] {
		t.Errorf("updated_at moved from %v to %v on an identical update", first["updated_at"], second["updated_at"])
	}
	if w := s.Counters().Writes()["client.update"]; w != 1 {
		t.Errorf("client.update writes = %d, want 1", w)
	}
}

// referral_status sets the latest referral received from, and the latest
// delivered to, the external system.
func TestServer_Upsert_ReferralStatusOnKnownClient(t *testing.T) {
	tests := []struct {
		name string
		idx  int // designed seed client: 2 received a Primero referral, 0 was referred out
	}{
		{"received from MoSVY", 2},
		{"delivered to MoSVY", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, c := startAuthed(t, oscar.Options{Clients: 11, Seed: 1})
			m := seeded(t, s)[tc.idx]
			org := updateBody(m["global_id"].(string))
			org["organization_name"] = m["tenant"]
			org["referral_status"] = "Exited"
			if r := c.upsert(org); r.code != 200 {
				t.Fatalf("%d %s", r.code, r.body)
			}
			got, _ := s.Client(m["global_id"].(string))
			var statuses []any
			for _, sv := range got["services"].([]any) {
				if st, ok := sv.(map[string]any)["referral_status"]; ok {
					statuses = append(statuses, st)
				}
			}
			if len(statuses) == 0 {
				t.Fatal("no referral services")
			}
			for _, st := range statuses {
				if st != "Exited" {
					t.Errorf("referral_status %v, want Exited", st)
				}
			}
		})
	}
}

func TestServer_Upsert_IsReferredOnKnownClient(t *testing.T) {
	tests := []struct {
		name       string
		clientIn   string
		isReferred any
		mutate     func(map[string]any)
		code       int
		want       string
		newRefs    int
		updated    bool
	}{
		{"adds a referral", "cif", true, nil, 200, `{"external_id":"case-1","message":"Record saved."}`, 1, true},
		{"the string false is truthy in Ruby", "cif", "false", nil, 200, `{"external_id":"case-1","message":"Record saved."}`, 1, true},
		{"false adds none", "cif", false, nil, 200, `{"external_id":"case-1","message":"Record saved."}`, 0, true},
		{"client in another tenant: no referral", "fco", true, nil, 200, `{"external_id":"case-1","message":"Record saved."}`, 0, true},
		{"invalid referral: 422, client untouched", "cif", true, func(o map[string]any) { delete(o, "services") }, 422,
			`{"external_id":"case-1","message":{"services":["can't be blank"]}}`, 0, false},
		{"referral saved, then gender fails", "cif", true, func(o map[string]any) { delete(o, "gender") }, 422,
			`{"external_id":"case-1","message":{"gender":["can't be blank"]}}`, 1, false},
		{"referral saved, then the status fails", "cif", true, func(o map[string]any) { o["referral_status"] = "Rejected" }, 422,
			`{"external_id":"case-1","message":"Referral status must be one of ['Accepted', 'Exited', 'Referred']."}`, 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, c := startAuthed(t, oscar.Options{})
			gid := s.AddClient(tc.clientIn, map[string]any{"external_id": "old-case"})
			org := updateBody(gid)
			org["is_referred"] = tc.isReferred
			org["external_case_worker_mobile"] = "000000000"
			org["services"] = []any{map[string]any{"name": "Family preservation"}}
			if tc.mutate != nil {
				tc.mutate(org)
			}
			body(t, c.upsert(org), tc.code, tc.want)
			if n := len(referralsOf(s, "case-1")); n != tc.newRefs {
				t.Errorf("%d new referrals, want %d", n, tc.newRefs)
			}
			got, _ := s.Client(gid)
			if updated := got["given_name"] == "Sokhavy"; updated != tc.updated {
				t.Errorf("client updated = %v, want %v", updated, tc.updated)
			}
			if tc.newRefs == 1 {
				ref := referralsOf(s, "case-1")[0]
				if ref["accepted"] != true || ref["referral_status"] != "Referred" || ref["global_id"] != gid {
					t.Errorf("referral %v, want Referred and linked to the client", ref)
				}
			}
		})
	}
}

// The client update lands in the first tenant linked to the global_id,
// whatever organization_name says.
func TestServer_Upsert_FirstLinkedTenantWins(t *testing.T) {
	s, c := startAuthed(t, oscar.Options{Clients: 11, Seed: 1})
	seed := seeded(t, s)
	gid := seed[3]["global_id"].(string)
	if seed[10]["global_id"] != gid || seed[10]["tenant"] != "fco" {
		t.Fatal("seed client 10 should share client 3's global_id, in fco")
	}
	org := updateBody(gid)
	org["organization_name"] = "fco"
	if r := c.upsert(org); r.code != 200 {
		t.Fatalf("%d %s", r.code, r.body)
	}
	for _, m := range s.Clients() {
		if m["global_id"] != gid {
			continue
		}
		if updated := m["given_name"] == "Sokhavy"; updated != (m["tenant"] == "cif") {
			t.Errorf("%s client updated = %v; only the cif one (linked first) should be", m["tenant"], updated)
		}
	}
}

// A global_id that only a pending referral knows has no tenant linked: the
// request falls through to the referral branch.
func TestServer_Upsert_PendingGlobalIDFallsThrough(t *testing.T) {
	s, c := startAuthed(t, oscar.Options{})
	c.upsert(newReferral(extA, "cif", "Kinship care"))
	gid := referralsOf(s, extA)[0]["global_id"].(string)
	tests := []struct {
		name string
		ext  string
		refs int
	}{
		{"same external_id: one more referral", extA, 2},
		{"new external_id: a referral with that global_id", extB, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			org := newReferral(tc.ext, "cif", "Trauma counselling")
			org["global_id"] = gid
			body(t, c.upsert(org), 200, `{"external_id":"`+tc.ext+`","message":"Record saved."}`)
			refs := referralsOf(s, tc.ext)
			if len(refs) != tc.refs || refs[len(refs)-1]["global_id"] != gid {
				t.Errorf("referrals %v, want %d carrying %s", refs, tc.refs, gid)
			}
		})
	}
}

func TestServer_Upsert_AutoAccept(t *testing.T) {
	s, c := startAuthed(t, oscar.Options{AutoAccept: true})
	body(t, c.upsert(newReferral(extA, "cif", "Kinship care")), 200, `{"external_id":"`+extA+`","message":"Record saved."}`)
	// Until clients are listed nobody has accepted: a second service of
	// the same case is one more pending referral, not "Record was found."
	body(t, c.upsert(newReferral(extA, "cif", "Trauma counselling")), 200, `{"external_id":"`+extA+`","message":"Record saved."}`)
	gid := referralsOf(s, extA)[0]["global_id"].(string)
	if _, ok := s.Client(gid); ok {
		t.Fatal("accepted inside the upsert call")
	}
	c.clients("")
	m, ok := s.Client(gid)
	if !ok || m["external_id"] != extA || m["status"] != "Accepted" {
		t.Fatalf("client %v, want one accepted with external_id %s", m, extA)
	}
	r := c.upsert(newReferral(extA, "cif", "Trauma counselling"))
	if r.code != 422 || r.obj(t)["message"] != "Record was found." {
		t.Errorf("upsert without global_id after acceptance: %d %s, want Record was found.", r.code, r.body)
	}
	// A referral for the client the NGO now has (branch 2) is accepted on
	// that client at the next listing, like the first ones.
	third := newReferral(extA, "cif", "Family reunification")
	third["global_id"] = gid
	body(t, c.upsert(third), 200, `{"external_id":"`+extA+`","message":"Record saved."}`)
	if st := referralStatuses(s, extA); st["Family reunification"] != "Referred" {
		t.Fatalf("before the listing: %v, want the new referral Referred", st)
	}
	c.clients("")
	if st := referralStatuses(s, extA); st["Family reunification"] != "Accepted" || st["Kinship care"] != "Accepted" {
		t.Errorf("after the listing: %v, want every referral Accepted", st)
	}
}

// referralStatuses maps each referral of externalID by its first service
// name to its status.
func referralStatuses(s *oscar.Server, externalID string) map[string]any {
	out := map[string]any{}
	for _, r := range referralsOf(s, externalID) {
		if svcs, _ := r["services"].([]string); len(svcs) > 0 {
			out[svcs[0]] = r["referral_status"]
		}
	}
	return out
}

// Re-sending an accepted referral with its global_id (branch 2) adds the
// same referral again: the duplicate the engine must never cause.
func TestServer_Upsert_ResentAcceptedReferralDuplicates(t *testing.T) {
	s, c := startAuthed(t, oscar.Options{})
	c.upsert(newReferral(extA, "cif", "Kinship care"))
	gid, err := s.Accept(extA)
	if err != nil {
		t.Fatal(err)
	}
	org := newReferral(extA, "cif", "Kinship care")
	org["global_id"] = gid
	body(t, c.upsert(org), 200, `{"external_id":"`+extA+`","message":"Record saved."}`)
	if n := len(referralsOf(s, extA)); n != 2 {
		t.Errorf("%d referrals, want 2", n)
	}
	if d := s.Counters().Duplicates.Load(); d != 1 {
		t.Errorf("duplicates %d, want 1", d)
	}
}
