package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"casesync/engine"
	"casesync/engine/spec"
	"casesync/internal/sandbox"
)

// Issue 19.5: Primero merges services_section rows by unique_id (the
// connector's merge_key), so the dry-run of an update that appends one row
// shows one added row and no changed rows, in diff and in JSON alike. The
// update is real: an OSCaR client linked to a Primero case, whose NGO then
// refers the child to MoSVY (a new referral_from_oscar row).
func TestDryRun_MergedRowsDiffByKey(t *testing.T) {
	svc := map[string]any{"unique_id": "5e000000-0000-4000-8000-000000000001", "service_type": "counselling",
		"service_subtype": []any{"counselling_trauma"}, "service_response_type": "referral_to_oscar", "service_implementing_agency": "agency-cif"}
	ref := map[string]any{"id": "7e000000-0000-4000-8000-000000000001", "type": "Referral", "status": "in_progress",
		"transitioned_to": "agency-cif-user", "transitioned_to_agency": "agency-cif", "transitioned_by": "mgrpnh",
		"service_record_id": svc["unique_id"], "notes": "x", "created_at": "2025-01-02T08:00:00.000Z"}
	c := map[string]any{"id": "00000000-0000-4000-8000-000000000001", "case_id": "c0000000-0000-4000-8000-000000000001",
		"case_id_display": "0000001", "name_first": "Sokha", "name_last": "Chan", "sex": "female", "date_of_birth": "2014-03-02",
		"risk_level": "high", "location_current": "1070101", "owned_by": "mgrpnh", "consent_for_services": true,
		"disclosure_other_orgs": true, "module_id": "primeromodule-cp", "status": "open", "services_section": []any{svc},
		"referrals": []any{ref}, "created_at": "2025-01-02T03:04:05.000Z", "last_updated_at": "2025-01-03T03:04:05.000Z"}
	sb, err := sandbox.Start(sandbox.Options{CasesFrom: []map[string]any{c}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	env := sandboxEnv(t, sb)
	base := []string{"--specs", "../../specs/cambodia", "--state", filepath.Join(t.TempDir(), "state.db"),
		"--base-url", "primero=" + sb.URLs["primero"], "--base-url", "oscar=" + sb.URLs["oscar"]}
	run := func(args ...string) string {
		t.Helper()
		out, errOut, code := runCLI(t, env, append(args, base...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		return out
	}
	run("sync", "f1_referrals_to_oscar")
	if _, err := sb.Oscar.Accept(c["case_id"].(string)); err != nil {
		t.Fatal(err)
	}
	// Primero's login is throttled to 6 a minute: every command below logs
	// in once, so the test keeps to five.
	run("sync", "f1_referrals_to_oscar") // and the flow 2 pipelines chained after it
	var gid string
	for _, oc := range sb.Oscar.Clients() {
		if oc["external_id"] == c["case_id"] {
			gid = oc["global_id"].(string)
		}
	}
	if _, err := sb.Oscar.ReferToExternal(gid, "high", "Emergency foster care"); err != nil {
		t.Fatal(err)
	}

	diff := run("dry-run", "f2_linked_to_primero", "--format", "diff")
	var added, changed []string
	for _, line := range strings.Split(diff, "\n") {
		switch {
		case strings.HasPrefix(line, "+ services_section["):
			added = append(added, line)
		case strings.HasPrefix(line, "- services_section"):
			changed = append(changed, line)
		}
	}
	if len(added) != 1 || !strings.Contains(added[0], `"service_response_type":"referral_from_oscar"`) || len(changed) != 0 {
		t.Errorf("want one added row and no changed rows:\n%s", diff)
	}
	if !strings.Contains(added[0], "+ services_section[unique_id=") || strings.Contains(added[0], "].") {
		t.Errorf("the added row is not shown whole by its key: %s", added[0])
	}

	var js struct {
		Decisions []struct {
			Action  string            `json:"action"`
			Changes map[string][2]any `json:"changes"`
			Added   map[string]any    `json:"added_rows"`
		} `json:"decisions"`
	}
	if err := json.Unmarshal([]byte(run("dry-run", "f2_linked_to_primero", "--format", "json")), &js); err != nil {
		t.Fatal(err)
	}
	if len(js.Decisions) != 1 || js.Decisions[0].Action != "update" || len(js.Decisions[0].Added) != 1 {
		t.Fatalf("json: %+v", js.Decisions)
	}
	for k := range js.Decisions[0].Changes {
		if strings.HasPrefix(k, "services_section") {
			t.Errorf("a row shows as changed: %s", k)
		}
	}

	table := run("dry-run", "f2_linked_to_primero")
	if strings.Count(table, "+ new row") != 1 {
		t.Errorf("table: want one new row:\n%s", table)
	}
}

// A map field's own merge_key wins over the connector's; rows are paired
// by it at any position, a changed field of a kept row shows as a change,
// an appended row as one added row, and an array without the key (or not
// of objects) is compared by position.
func TestPreviewer_DiffByFieldMergeKey(t *testing.T) {
	before := map[string]any{
		"rows":  []any{map[string]any{"id": "a", "v": 1.0}, map[string]any{"id": "b", "v": 2.0}},
		"other": []any{map[string]any{"unique_id": "x", "v": 1.0}},
		"tags":  []any{"p", "q"},
	}
	payload := map[string]any{
		"rows":  []any{map[string]any{"id": "b", "v": 3.0}, map[string]any{"id": "c", "v": 4.0}},
		"other": []any{map[string]any{"unique_id": "x", "v": 1.0}},
		"tags":  []any{"p", "r"},
	}
	var buf strings.Builder
	p := &previewer{w: &buf, keys: mergeKeys{fields: map[string]string{"rows": "id"}, def: "unique_id"}}
	p.diff([]engine.Decision{{RecordKey: "k", Action: engine.ActionUpdated, Before: before, Payload: payload,
		Request: &engine.CallPreview{Method: "PATCH", Path: "/x"}}})
	got := buf.String()
	for _, want := range []string{
		"- rows[id=b].v: 2\n+ rows[id=b].v: 3\n",
		`+ rows[id=c]: {"id":"c","v":4}` + "\n",
		"- tags[1]: \"q\"\n+ tags[1]: \"r\"\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("diff lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "rows[id=a]") || strings.Contains(got, "other[") || strings.Contains(got, "rows[0]") {
		t.Errorf("an untouched or kept row shows:\n%s", got)
	}
}

// lib/primero declares Primero's merge key on the connector; a pipeline
// writing to Primero diffs by it.
func TestMergeKeysOf_ShippedSpec(t *testing.T) {
	plan, err := spec.Load("../../specs/cambodia", spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if k := mergeKeysOf(plan, plan.Pipelines["f2_linked_to_primero"]); k.of("services_section") != "unique_id" {
		t.Errorf("f2_linked_to_primero: merge key %+v", k)
	}
	if k := mergeKeysOf(plan, plan.Pipelines["f1_referrals_to_oscar"]); k.of("services") != "" {
		t.Errorf("an OSCaR body has a merge key: %+v", k)
	}
}
