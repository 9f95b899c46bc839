package ping_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"casesync/internal/fakes/ping"
)

// readFixture reads a copy of a real PING or DTP body under testdata/
// (origins in testdata/README.md).
func readFixture(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// kind is a value's JSON type, nested objects spelled out by key so that an
// entity reference compares by shape.
func kind(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "array"
	case map[string]any:
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(x)) {
			parts = append(parts, k+":"+kind(x[k]))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	return "?"
}

// kinds collects, per key, the set of JSON kinds seen across rows.
func kinds(rows []map[string]any) map[string][]string {
	out := map[string][]string{}
	for _, r := range rows {
		for k, v := range r {
			if !slices.Contains(out[k], kind(v)) {
				out[k] = append(out[k], kind(v))
				slices.Sort(out[k])
			}
		}
	}
	return out
}

func asRows(xs []any) []map[string]any {
	out := make([]map[string]any, len(xs))
	for i, x := range xs {
		out[i] = x.(map[string]any)
	}
	return out
}

func TestServer_RetrieveMatchesFixtureShapes(t *testing.T) {
	t.Run("SHP-2747 against ping_retrieve_pending_referrals_response.json", func(t *testing.T) {
		var fixture map[string]any
		readFixture(t, "ping_retrieve_pending_referrals_response.json", &fixture)
		_, c := start(t, ping.Options{Interventions: 40})
		got := c.retrieve(ping.SHPPendingInterventions)

		// The envelope: same keys, and the same kinds once Data is set aside.
		envKinds := func(m map[string]any) map[string]string {
			out := map[string]string{}
			for k, v := range m {
				if k != "Data" {
					out[k] = kind(v)
				}
			}
			return out
		}
		if diff := cmp.Diff(envKinds(fixture), envKinds(got)); diff != "" {
			t.Errorf("envelope kinds (-fixture +fake):\n%s", diff)
		}

		// Rows: every fixture key with the fixture's kind, plus only
		// progres_lpinterventionid (ping.md §10: the fake returns the union).
		want := kinds(asRows(fixture["Data"].([]any)))
		want["progres_lpinterventionid"] = []string{"string"}
		if diff := cmp.Diff(want, kinds(rows(t, got))); diff != "" {
			t.Errorf("row keys and kinds (-fixture +fake):\n%s", diff)
		}
		// A key the fixture has on every row is on every fake row.
		for _, k := range keysOnEveryRow(asRows(fixture["Data"].([]any))) {
			for _, r := range rows(t, got) {
				if _, ok := r[k]; !ok {
					t.Errorf("fake row lacks %s, which every fixture row has", k)
					break
				}
			}
		}
	})

	t.Run("SHP-2358 against dtp_intervention_rows_kakuma.json", func(t *testing.T) {
		var fixture []map[string]any
		readFixture(t, "dtp_intervention_rows_kakuma.json", &fixture)
		srv, c := start(t, ping.Options{Interventions: 40})
		var fake []map[string]any
		for _, p := range srv.Pending() {
			fake = append(fake, rows(t, c.retrieve(ping.SHPInterventionDetail, "{record_ids}", p["progres_lpinterventionid"].(string)))...)
		}
		fk, dk := kinds(fixture), kinds(fake)

		// The DTP sample predates PING: individual attributes sat under the
		// alias "individuals." where SHP-2358 has "progres_individual.individuals.".
		renamed := map[string]string{
			"individuals.progres_givenname":   "progres_individual.individuals.progres_givenname",
			"individuals.progres_familyname":  "progres_individual.individuals.progres_familyname",
			"individuals.progres_id":          "progres_individual.individuals.progres_id",
			"individuals.progres_dateofbirth": "progres_individual.individuals.progres_dateofbirth",
		}
		// Kept apart on purpose, with the reason:
		differ := map[string]string{
			"individuals.progres_sex":                 "DTP sent the label; PING sends the option-set code (ping.md §9)",
			"individuals.progres_registrationgroupid": "DTP sent an EntityReference; PING flattens it to a GUID plus ...idname",
			"individuals.progres_coalocationlevel6":   "a plain string in this one DTP sample; an EntityReference elsewhere, read as .Name",
		}
		shared := 0
		for k, want := range fk {
			if _, skip := differ[k]; skip {
				continue
			}
			name := k
			if r, ok := renamed[k]; ok {
				name = r
			}
			got, ok := dk[name]
			if !ok {
				continue // a DTP-era attribute the PING query does not select
			}
			shared++
			if !cmp.Equal(want, got) {
				t.Errorf("%s: fixture kinds %v, fake kinds %v", k, want, got)
			}
		}
		for _, k := range []string{"progres_interventionnumber", "progres_interventionstartdate", "individuals.progres_coalocationlevel1"} {
			if _, ok := dk[k]; !ok {
				t.Errorf("fake detail rows lack %s", k)
			}
		}
		if shared < 9 {
			t.Errorf("only %d fixture keys compared; the templates drifted apart", shared)
		}

		// Dates carry the midnight time part in both.
		dt := regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T00:00:00$`)
		for _, r := range fake {
			for _, k := range []string{"progres_interventionstartdate", "progres_individual.individuals.progres_dateofbirth"} {
				if v, ok := r[k].(string); ok && !dt.MatchString(v) {
					t.Errorf("%s = %q, want the fixture's YYYY-MM-DDT00:00:00", k, v)
				}
			}
		}
		for _, r := range fixture {
			if v := r["progres_interventionstartdate"].(string); !dt.MatchString(v) {
				t.Fatalf("fixture date %q changed format; update this test", v)
			}
		}

		// Joins multiply rows in both: some intervention number repeats.
		if maxRepeat(fixture, "progres_interventionnumber") < 2 || maxRepeat(fake, "progres_interventionnumber") < 2 {
			t.Errorf("joined rows: fixture repeats %d, fake %d, want both >= 2",
				maxRepeat(fixture, "progres_interventionnumber"), maxRepeat(fake, "progres_interventionnumber"))
		}
	})
}

func keysOnEveryRow(rows []map[string]any) []string {
	var out []string
	for k := range rows[0] {
		all := true
		for _, r := range rows {
			_, ok := r[k]
			all = all && ok
		}
		if all {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func maxRepeat(rows []map[string]any, key string) int {
	n := map[any]int{}
	best := 0
	for _, r := range rows {
		n[r[key]]++
		best = max(best, n[r[key]])
	}
	return best
}

// fill replaces the <placeholders> of a fixture body with values the fake
// holds, field by field, and drops the annotation keys ("_comment",
// "_endpoint"), which describe a body rather than belong to it.
func fill(v any, values map[string]any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if strings.HasPrefix(k, "_") {
				continue
			}
			out[k] = fill(e, values)
		}
		if name, ok := x["Name"].(string); ok {
			if s, ok := x["Value"].(string); ok && strings.HasPrefix(s, "<") {
				if nv, ok := values[name]; ok {
					out["Value"] = nv
				}
			}
		}
		for _, k := range []string{"ExternalId", "ExternalGUID", "SPHTransactionId"} {
			if s, ok := x[k].(string); ok && strings.HasPrefix(s, "<") {
				out[k] = values[k]
			}
		}
		if qp, ok := x["ParameterName"].(string); ok && qp == "{record_ids}" {
			out["Value"] = values[x["Value"].(string)]
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = fill(e, values)
		}
		return out
	}
	return v
}

func endpointOf(body map[string]any, def string) string {
	ep, _ := body["_endpoint"].(string)
	if _, path, ok := strings.Cut(ep, " "); ok {
		return path
	}
	return def
}

func TestServer_AcceptsFixtureRequestBodies(t *testing.T) {
	var retrieves, ingestions map[string]any
	var statusUpdate map[string]any
	readFixture(t, "ping_retrieve_request_examples.json", &retrieves)
	readFixture(t, "ping_ingestion_request_examples.json", &ingestions)
	readFixture(t, "ping_ingestion_referral_status_update_request.json", &statusUpdate)

	srv, c := start(t, ping.Options{Interventions: 3, Decisions: 2})
	intervention := srv.Pending()[0]["progres_lpinterventionid"].(string)
	ref := srv.Decisions()[0]["progres_interoperabilityreferralid"].(string)
	values := referralFields("case-1", "3f2a91c0-0000-4000-8000-000000000001")
	maps.Copy(values, map[string]any{
		"progres_lpinterventionid":             intervention,
		"progres_businessunit":                 ping.DefaultBusinessUnitID,
		"progres_primerotransferstatus":        "125080003",
		"progres_primerotransferstatusdate":    "2026-06-01",
		"progres_primeroid":                    "case-1",
		"progres_primerocaseworker":            "primero_cp",
		"progres_interoperabilityreferralid":   ref,
		"ExternalId":                           "case-1",
		"ExternalGUID":                         values["progres_externalguid"],
		"<progres_lpinterventionid>":           intervention,
		"<progres_interoperabilityreferralid>": ref,
	})

	var txID string
	for _, name := range slices.Sorted(maps.Keys(ingestions)) {
		if strings.HasPrefix(name, "_") {
			continue
		}
		t.Run("ingestion "+name, func(t *testing.T) {
			raw := ingestions[name].(map[string]any)
			path := endpointOf(raw, "")
			st, resp := c.post(path, fill(raw, values))
			if st != http.StatusOK || resp["ErrorMessage"] != nil {
				t.Fatalf("POST %s: %d %v", path, st, resp)
			}
			if strings.HasSuffix(path, "/asyncdata") {
				txID = resp["SPHTransactionId"].(string)
				srv.Advance()
				srv.Advance()
				if got := srv.Transactions()[txID]; got != ping.StateSucceeded {
					t.Errorf("async fixture body ended %s", got)
				}
				return
			}
			for _, it := range resp["Data"].([]any) {
				if st := it.(map[string]any)["Status"]; st != ping.StateSucceeded {
					t.Errorf("item %v", it)
				}
			}
		})
	}

	values["<SPHTransactionId returned by asyncdata>"] = txID
	values["SPHTransactionId"] = txID
	for _, name := range slices.Sorted(maps.Keys(retrieves)) {
		if strings.HasPrefix(name, "_") {
			continue
		}
		t.Run("retrieve "+name, func(t *testing.T) {
			raw := retrieves[name].(map[string]any)
			path := endpointOf(raw, ping.RetrievePath)
			st, resp := c.post(path, fill(raw, values))
			if st != http.StatusOK || resp["ErrorMessage"] != nil {
				t.Fatalf("POST %s: %d %v", path, st, resp)
			}
			if d, ok := resp["Data"].([]any); !ok || len(d) == 0 {
				t.Errorf("no rows or items: %v", resp["Data"])
			}
		})
	}

	t.Run("referral status update as published", func(t *testing.T) {
		// Its referral id belongs to a UAT installation, so the body is well
		// formed and the item fails on its unknown target.
		st, resp := c.post(ingestPath(ping.DefaultPartnerID, "data"), statusUpdate)
		if st != http.StatusOK {
			t.Fatalf("status %d: %v", st, resp)
		}
		item := resp["Data"].([]any)[0].(map[string]any)
		if item["Status"] != ping.StateFailed || item["ExternalId"] != "12345" {
			t.Errorf("item %v, want Failed for the unknown referral", item)
		}
	})
	t.Run("referral status update aimed at a held referral", func(t *testing.T) {
		b := fill(statusUpdate, values).(map[string]any)
		b["Data"].([]any)[0].(map[string]any)["Fields"].([]any)[0].(map[string]any)["Value"] = ref
		if got := c.ingest(ping.SHPMarkSynced, b["Data"].([]any)[0].(map[string]any)); got[0] != ping.StateSucceeded {
			t.Errorf("item %v", got)
		}
		rec, _ := srv.Referral(ref)
		if rec["progres_comments"] != "Add here a comment for the Referral record in proGres" {
			t.Errorf("comment not stored: %v", rec["progres_comments"])
		}
	})
}
