package ping_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"casesync/internal/fakes/ping"
)

func TestServer_SeedIsDeterministic(t *testing.T) {
	a := ping.New(ping.Options{Interventions: 50, Decisions: 20, Seed: 7})
	b := ping.New(ping.Options{Interventions: 50, Decisions: 20, Seed: 7})
	other := ping.New(ping.Options{Interventions: 50, Decisions: 20, Seed: 8})
	if diff := cmp.Diff(a.Pending(), b.Pending()); diff != "" {
		t.Errorf("same seed, different SHP-2747 rows (-a +b):\n%s", diff)
	}
	if diff := cmp.Diff(a.Decisions(), b.Decisions()); diff != "" {
		t.Errorf("same seed, different referrals (-a +b):\n%s", diff)
	}
	for _, r := range a.Pending() {
		id := r["progres_lpinterventionid"].(string)
		ra, _ := a.Intervention(id)
		rb, _ := b.Intervention(id)
		if diff := cmp.Diff(ra, rb); diff != "" {
			t.Errorf("same seed, different detail for %s (-a +b):\n%s", id, diff)
		}
	}
	if cmp.Equal(a.Pending(), other.Pending()) {
		t.Error("another seed gave the same rows")
	}
	// More interventions leave the decisions alone, and the first rows too.
	bigger := ping.New(ping.Options{Interventions: 80, Decisions: 20, Seed: 7})
	if diff := cmp.Diff(a.Decisions(), bigger.Decisions()); diff != "" {
		t.Errorf("asking for more interventions changed the decisions:\n%s", diff)
	}
	if diff := cmp.Diff(a.Pending(), bigger.Pending()[:50]); diff != "" {
		t.Errorf("asking for more interventions changed the first ones:\n%s", diff)
	}
}

func TestServer_SeedMix(t *testing.T) {
	srv, c := start(t, ping.Options{Interventions: 5, Decisions: 4})
	pending := srv.Pending()
	if len(pending) != 5 {
		t.Fatalf("%d pending, want 5", len(pending))
	}
	detail := func(i int) []map[string]any {
		return rows(t, c.retrieve(ping.SHPInterventionDetail, "{record_ids}", pending[i]["progres_lpinterventionid"].(string)))
	}
	const ind = "progres_individual.individuals."
	typeKey := "progres_interventiontype2.interventiontype.progres_description"
	langKey := "progres_language.progres_languagecodeidname"
	tests := []struct {
		name  string
		index int
		check func(t *testing.T, rows []map[string]any)
	}{
		{"0: 2 languages x 2 needs, female", 0, func(t *testing.T, rows []map[string]any) {
			if len(rows) != 4 || rows[0][ind+"progres_sex"] != 125080000.0 {
				t.Errorf("%d rows, sex %v", len(rows), rows[0][ind+"progres_sex"])
			}
		}},
		{"1: type outside the allow-list, male", 1, func(t *testing.T, rows []map[string]any) {
			if rows[0][typeKey] != "Legal Assistance" || rows[0][ind+"progres_sex"] != 125080001.0 {
				t.Errorf("type %v, sex %v", rows[0][typeKey], rows[0][ind+"progres_sex"])
			}
		}},
		{"2: no date of birth, sex other", 2, func(t *testing.T, rows []map[string]any) {
			if _, ok := rows[0][ind+"progres_dateofbirth"]; ok || rows[0][ind+"progres_sex"] != 125080002.0 {
				t.Errorf("dob %v, sex %v", rows[0][ind+"progres_dateofbirth"], rows[0][ind+"progres_sex"])
			}
		}},
		{"3: unknown language, sex unknown", 3, func(t *testing.T, rows []map[string]any) {
			var langs []any
			for _, r := range rows {
				langs = append(langs, r[langKey])
			}
			if !slices.Contains(langs, any("Tigrinya")) || rows[0][ind+"progres_sex"] != 125080003.0 {
				t.Errorf("languages %v, sex %v", langs, rows[0][ind+"progres_sex"])
			}
		}},
		{"4: one row, listed again after Delivery Fail", 4, func(t *testing.T, rows []map[string]any) {
			if len(rows) != 1 || rows[0][langKey] != nil || rows[0]["progres_primerotransferstatus"] != 125080001.0 {
				t.Errorf("%d rows, %v", len(rows), rows[0])
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, detail(tc.index)) })
	}

	t.Run("decisions: accepted, rejected, unknown code, new", func(t *testing.T) {
		var got []any
		for _, r := range srv.Decisions() {
			got = append(got, []any{r["progres_interoperabilityreferralstatus"], r["progres_reviewdecision"],
				r["progres_interoperabiltyreferralrejectionreasonname"] != nil})
		}
		want := []any{
			[]any{ping.ReferralAccepted, 125080000, false},
			[]any{ping.ReferralRejected, 125080001, true},
			[]any{ping.ReferralUnknownCode, nil, false},
			[]any{ping.ReferralNew, nil, false},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(status, review decision, has reason) (-want +got):\n%s", diff)
		}
	})

	t.Run("drawn interventions cover every allow-listed type and sex code", func(t *testing.T) {
		big := ping.New(ping.Options{Interventions: 400})
		types, sexes := map[any]bool{}, map[any]bool{}
		for _, p := range big.Pending() {
			r, _ := big.Intervention(p["progres_lpinterventionid"].(string))
			types[r[typeKey]] = true
			sexes[r[ind+"progres_sex"]] = true
		}
		if len(types) != 6 || len(sexes) != 4 {
			t.Errorf("types %v, sexes %v; want 5 allow-listed + 1 off-list, and 4 codes", types, sexes)
		}
	})
}

// nameKey matches the keys that hold a person's name in any fixture.
var nameKey = regexp.MustCompile(`(?i)(given|family|middle|commonyused|first|last|nick)_?name$|^name_(first|last|middle|nickname)$|full_name$`)

// fixtureNames collects every person name in the real bodies the fakes
// keep under their testdata/ folders (this one holds the DTP-era ones no
// other test reads), so the seed is checked against all of them, not a
// hand-picked few.
func fixtureNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && nameKey.MatchString(k) {
					for _, part := range strings.Fields(s) {
						names[strings.ToLower(part)] = true
					}
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	files, err := filepath.Glob(filepath.Join("..", "*", "testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		walk(v)
	}
	if len(names) < 10 {
		t.Fatalf("found only %d fixture names; the key pattern is stale", len(names))
	}
	return names
}

func TestServer_SeedIsInvented(t *testing.T) {
	banned := fixtureNames(t)
	isName := map[string]bool{} // per key, so the regexp runs once per key, not per row
	check := func(where string, r map[string]any) {
		for k, v := range r {
			s, ok := v.(string)
			if !ok || s == "" {
				continue
			}
			named, seen := isName[k]
			if !seen {
				named = nameKey.MatchString(strings.TrimPrefix(k, "progres_individual.individuals.")) ||
					strings.HasPrefix(k, "progres_poc") && strings.HasSuffix(k, "name")
				isName[k] = named
			}
			switch {
			case named:
				if banned[strings.ToLower(s)] {
					t.Errorf("%s: %s = %q is a fixture name", where, k, s)
				}
			case strings.Contains(k, "email") && !strings.HasSuffix(s, "@example.org"):
				t.Errorf("%s: %s = %q is not an example.org address", where, k, s)
			case strings.Contains(k, "phone") && !strings.HasPrefix(s, "+999 "):
				t.Errorf("%s: %s = %q is not in the unassigned +999 code", where, k, s)
			}
		}
	}
	// The default seed (demos use it) and two others, 10,000 people each.
	for _, seed := range []uint64{0, 1, 99} {
		srv := ping.New(ping.Options{Interventions: 8000, Decisions: 2000, Seed: seed})
		for _, p := range srv.Pending() {
			r, _ := srv.Intervention(p["progres_lpinterventionid"].(string))
			check("intervention", r)
		}
		for _, d := range srv.Decisions() {
			r, _ := srv.Referral(d["progres_interoperabilityreferralid"].(string))
			check("referral", r)
		}
	}
}

func TestServer_SeedScales(t *testing.T) {
	const n = 10000
	srv, c := start(t, ping.Options{Interventions: n, Decisions: n, PageSize: 1000})
	for _, shp := range []string{ping.SHPPendingInterventions, ping.SHPDecisions} {
		all, pages := c.retrieveAll(shp)
		if len(all) != n || pages != n/1000 {
			t.Errorf("%s: %d rows in %d pages, want %d in %d", shp, len(all), pages, n, n/1000)
		}
	}
	ids, numbers := map[any]bool{}, map[any]bool{}
	for _, r := range srv.Pending() {
		ids[r["progres_lpinterventionid"]] = true
		numbers[r["progres_individual.indiv.progres_id"]] = true
	}
	if len(ids) != n || len(numbers) != n {
		t.Errorf("%d distinct intervention ids and %d individual numbers, want %d", len(ids), len(numbers), n)
	}
}
