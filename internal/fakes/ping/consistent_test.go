package ping_test

import (
	"testing"

	"casesync/internal/fakes/ping"
)

// Clean seeds none of doc.go's designed edge cases (the default seed has
// them): every intervention is allow-listed and has a date of birth, every
// decision is an acceptance or a rejection.
func TestServer_CleanSeed(t *testing.T) {
	for _, clean := range []bool{false, true} {
		srv, _ := start(t, ping.Options{Interventions: 10, Decisions: 10, Clean: clean})
		odd := 0
		for _, p := range srv.Pending() {
			in, _ := srv.Intervention(p["progres_lpinterventionid"].(string))
			if in["progres_interventiontype2.interventiontype.progres_description"] == "Legal Assistance" ||
				in["progres_individual.individuals.progres_dateofbirth"] == nil {
				odd++
			}
		}
		for _, d := range srv.Decisions() {
			if st := d["progres_interoperabilityreferralstatus"]; st != ping.ReferralAccepted && st != ping.ReferralRejected {
				odd++
			}
		}
		if clean && odd != 0 || !clean && odd < 4 {
			t.Errorf("clean %v: %d designed edge cases", clean, odd)
		}
	}
}

// A transferred intervention is not pending, and a transfer status
// written for it applies; AutoDecide decides each new referral at the next
// SHP-2795 listing, two accepted and the third rejected.
func TestServer_TransferredAndAutoDecide(t *testing.T) {
	const id = "4c2f6b1e-0d3a-4e5f-8a9b-1c2d3e4f5a6b"
	srv, c := start(t, ping.Options{AutoDecide: true,
		Transferred: []ping.TransferredIntervention{{ID: id, Number: "GMB-24-PRTITV-0000001", BusinessUnit: ping.DefaultBusinessUnitID}}})
	if n := len(srv.Pending()); n != 0 {
		t.Errorf("%d pending, want 0", n)
	}
	if st := c.ingest(ping.SHPTransferStatus, ackItem(id, "125080003")); len(st) != 1 || st[0] != "Succeeded" {
		t.Errorf("transfer status on a transferred intervention: %v", st)
	}
	for i, svc := range []string{"a1", "a2", "a3"} {
		tx := c.sendAsync("c0000000-0000-4000-8000-00000000000"+svc[1:], referralFields("c0000000-0000-4000-8000-00000000000"+svc[1:], "5e000000-0000-4000-8000-00000000000"+svc[1:]))
		srv.Advance()
		srv.Advance()
		if st := c.checkStatus(tx); st == nil {
			t.Fatalf("referral %d: no status", i)
		}
	}
	got := map[float64]int{}
	for _, r := range rows(t, c.retrieve(ping.SHPDecisions)) {
		v, _ := r["progres_interoperabilityreferralstatus"].(float64)
		got[v]++
	}
	if got[float64(ping.ReferralAccepted)] != 2 || got[float64(ping.ReferralRejected)] != 1 {
		t.Errorf("statuses after AutoDecide: %v", got)
	}
}
