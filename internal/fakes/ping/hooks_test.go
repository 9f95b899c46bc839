package ping_test

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"casesync/internal/fakes/ping"
)

func TestServer_AddIntervention(t *testing.T) {
	tests := []struct {
		name  string
		in    ping.NewIntervention
		check func(t *testing.T, detail []map[string]any)
	}{
		{"named person", ping.NewIntervention{GivenName: "Kelo", FamilyName: "Tavomi", DateOfBirth: "2014-02-03", Sex: 125080001},
			func(t *testing.T, d []map[string]any) {
				got := map[string]any{
					"given": d[0]["progres_individual.individuals.progres_givenname"],
					"dob":   d[0]["progres_individual.individuals.progres_dateofbirth"],
					"sex":   d[0]["progres_individual.individuals.progres_sex"],
				}
				want := map[string]any{"given": "Kelo", "dob": "2014-02-03T00:00:00", "sex": 125080001.0}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			}},
		{"type outside the allow-list", ping.NewIntervention{InterventionType: "Shelter"}, func(t *testing.T, d []map[string]any) {
			if d[0]["progres_interventiontype2.interventiontype.progres_description"] != "Shelter" {
				t.Errorf("type %v", d[0]["progres_interventiontype2.interventiontype.progres_description"])
			}
		}},
		{"no date of birth, three languages", ping.NewIntervention{NoDateOfBirth: true, Languages: []string{"Nuer", "Bari", "Kunama"}},
			func(t *testing.T, d []map[string]any) {
				if _, ok := d[0]["progres_individual.individuals.progres_dateofbirth"]; ok {
					t.Errorf("date of birth present")
				}
				langs := map[any]bool{}
				for _, r := range d {
					langs[r["progres_language.progres_languagecodeidname"]] = true
				}
				if len(langs) != 3 {
					t.Errorf("languages %v", langs)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := start(t, ping.Options{Interventions: 2})
			id := srv.AddIntervention(tc.in)
			pending := rows(t, c.retrieve(ping.SHPPendingInterventions))
			if len(pending) != 3 || pending[2]["progres_lpinterventionid"] != id {
				t.Fatalf("new intervention is not last in the queue: %v", pending)
			}
			tc.check(t, rows(t, c.retrieve(ping.SHPInterventionDetail, "{record_ids}", id)))
		})
	}
}

func TestServer_Decide(t *testing.T) {
	srv, c := start(t, ping.Options{Decisions: 4})
	ref := srv.Decisions()[3]["progres_interoperabilityreferralid"].(string) // seeded as new
	if err := srv.Decide(ref, ping.ReferralRejected, "Outside of mandate", "Refer to the education partner."); err != nil {
		t.Fatal(err)
	}
	r := rows(t, c.retrieve(ping.SHPDecisionDetail, "{record_ids}", ref))[0]
	got := map[string]any{
		"status":  r["progres_interoperabilityreferralstatus"],
		"review":  r["progres_reviewdecision"],
		"reason":  r["progres_interoperabiltyreferralrejectionreasonname"],
		"comment": r["progres_interoperabilityreferralrejectionomment"],
	}
	want := map[string]any{"status": 125080002.0, "review": 125080001.0, "reason": "Outside of mandate", "comment": "Refer to the education partner."}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rejected referral (-want +got):\n%s", diff)
	}
	if err := srv.Decide(ref, ping.ReferralAccepted, "", ""); err != nil {
		t.Fatal(err)
	}
	r = rows(t, c.retrieve(ping.SHPDecisionDetail, "{record_ids}", ref))[0]
	if r["progres_reviewdecision"] != 125080000.0 || r["progres_interoperabiltyreferralrejectionreasonname"] != nil {
		t.Errorf("accepted referral keeps rejection details: %v", r)
	}
	if err := srv.Decide("0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f", ping.ReferralAccepted, "", ""); !errors.Is(err, ping.ErrNotFound) {
		t.Errorf("unknown referral: %v", err)
	}
}

func TestServer_RequestLog(t *testing.T) {
	srv, c := start(t, ping.Options{Interventions: 3, PageSize: 2})
	c.retrieveAll(ping.SHPPendingInterventions)
	c.post(ping.RetrievePath, retrieveBody("SHP-0000"))
	var got []ping.LoggedRequest
	for _, l := range srv.RequestLog() {
		if l.Path == ping.RetrievePath {
			got = append(got, l)
		}
	}
	want := []ping.LoggedRequest{
		{Method: http.MethodPost, Path: ping.RetrievePath, ShippingProcessID: "SHP-2747", Status: 200},
		{Method: http.MethodPost, Path: ping.RetrievePath, ShippingProcessID: "SHP-2747", PageNumber: 2, Status: 200},
		{Method: http.MethodPost, Path: ping.RetrievePath, ShippingProcessID: "SHP-0000", Status: 400},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request log (-want +got):\n%s", diff)
	}
}

func TestServer_InjectedIDsAndClock(t *testing.T) {
	var mu sync.Mutex
	n := 0
	newID := func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
	}
	clock := newClock()
	srv, c := start(t, ping.Options{NewID: newID, Now: clock.Now})
	tx := c.sendAsync("case-1", referralFields("case-1", "3f2a91c0-0000-4000-8000-000000000001"))
	if !strings.HasPrefix(tx, "00000000-0000-4000-8000-") {
		t.Errorf("SPHTransactionId %q did not come from Options.NewID", tx)
	}
	id := srv.AddIntervention(ping.NewIntervention{})
	row := rows(t, c.retrieve(ping.SHPInterventionDetail, "{record_ids}", id))[0]
	if got := row["progres_interventionstartdate"]; got != "2026-06-01T00:00:00" {
		t.Errorf("start date %v, want the injected clock's day", got)
	}
}

func TestServer_ConcurrentUse(t *testing.T) {
	// Run under -race: clients acknowledge, page, send async referrals and
	// poll while a test hook steps the queue.
	srv, c := start(t, ping.Options{Interventions: 40, Decisions: 10, PageSize: 7})
	var ids []string
	for _, r := range srv.Pending() {
		ids = append(ids, r["progres_lpinterventionid"].(string))
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			c := &client{tb: goroutineTB{t}, base: c.base, key: c.key, token: c.token}
			for i := w; i < len(ids); i += 4 {
				c.ingest(ping.SHPTransferStatus, ackItem(ids[i], "125080002"))
				c.retrieveAll(ping.SHPDecisions)
				tx := c.sendAsync(fmt.Sprintf("case-%d", i), referralFields(fmt.Sprintf("case-%d", i), fmt.Sprintf("3f2a91c0-0000-4000-8000-%012d", i)))
				c.checkStatus(tx)
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			srv.Advance()
			srv.Transactions()
		}
	})
	wg.Wait()
	srv.Advance()
	srv.Advance()
	if n := len(srv.Pending()); n != 0 {
		t.Errorf("%d still pending", n)
	}
	if n := len(srv.Ingested(ping.SHPCreateReferral)); n != 40 {
		t.Errorf("%d referrals created, want 40", n)
	}
}

// goroutineTB lets the client helpers run off the test goroutine, where
// FailNow must not be called: a fatal error is reported and ends only that
// goroutine.
type goroutineTB struct{ testing.TB }

func (g goroutineTB) Fatal(args ...any) {
	g.Error(args...)
	runtime.Goexit()
}

func (g goroutineTB) Fatalf(format string, args ...any) {
	g.Errorf(format, args...)
	runtime.Goexit()
}
