package specs_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"casesync/internal/sandbox"
)

// A case file exported from a deployment refers to OSCaR organisations
// and clients the fake OSCaR has never heard of: OSCaR answers a 500 for
// an unknown tenant or global_id, so `engine bench --cases-from` would
// measure error handling. With OSCaRFromCases the sandbox seeds both, and
// every referral is written.
func TestCambodia_CaseFileReferencesAreSeeded(t *testing.T) {
	const gid = "01JB8V6Q3M7Z2K4N5P6R7S8T9V"
	cases := func(t *testing.T) []map[string]any {
		newOrg, _ := goldenCase(t)
		known, _ := goldenCase(t)
		for _, tc := range []struct {
			c      map[string]any
			org    string
			id, no string
		}{{newOrg, "kpt", "7b0e4a52-1c2d-4e3f-8a9b-0c1d2e3f4a01", "case-new-org"}, {known, "svr", "7b0e4a52-1c2d-4e3f-8a9b-0c1d2e3f4a02", "case-known-client"}} {
			tc.c["id"], tc.c["case_id"] = tc.id, tc.no
			for _, s := range tc.c["services_section"].([]any) {
				s.(map[string]any)["service_implementing_agency"] = "agency-" + tc.org
			}
		}
		known["oscar_number"] = gid
		return []map[string]any{newOrg, known}
	}
	tests := []struct {
		name    string
		seed    bool
		failed  int
		created int
		// referrals are tenant/external_id/global_id of what OSCaR holds.
		referrals []string
	}{
		{"as the fakes start", false, 4, 0, nil},
		{"with the file's organisations and clients", true, 0, 4, []string{
			"kpt/case-new-org/", "kpt/case-new-org/",
			"svr/case-known-client/" + gid, "svr/case-known-client/" + gid,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := start(t, khDir, sandbox.Options{CasesFrom: cases(t), OSCaRFromCases: tc.seed})
			res := d.sync("f1_referrals_to_oscar")
			if res.Counts.Failed != tc.failed || res.Counts.Created != tc.created {
				t.Errorf("failed %d created %d, want %d and %d (%v)", res.Counts.Failed, res.Counts.Created, tc.failed, tc.created, res.Reasons)
			}
			var got []string
			for _, r := range d.sb.Oscar.Referrals() {
				g := ""
				if r["global_id"] == gid {
					g = gid
				}
				got = append(got, fmt.Sprintf("%v/%v/%s", r["tenant"], r["external_id"], g))
			}
			slices.Sort(got)
			if diff := cmp.Diff(tc.referrals, got); diff != "" {
				t.Errorf("OSCaR's referrals (-want +got):\n%s", diff)
			}
		})
	}
}
